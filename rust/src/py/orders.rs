//! `admf._core.Portfolio`, `Position` and `analyze`: the one fold of fills seen from Python.
//!
//! Numbers a strategy reads are in units (floats); the same names with `_fx` give the
//! engine's fixed-point integers.

use std::borrow::Cow;

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use super::event::{events_from_bytes, PyEvent};
use super::kernel::PyKernelCore;
use crate::event::{Event, SCALE};
use crate::orders::{analyze as analyze_events, Portfolio, Position};

#[inline]
fn units(fixed: i64) -> f64 {
    fixed as f64 / SCALE as f64
}

/// One instrument's position: a snapshot, not a live view.
#[pyclass(frozen, module = "admf._core", name = "Position")]
pub struct PyPosition {
    #[pyo3(get)]
    instrument: u32,
    inner: Position,
}

#[pymethods]
impl PyPosition {
    /// Signed quantity in units (negative: short).
    #[getter]
    fn qty(&self) -> f64 {
        units(self.inner.qty)
    }
    #[getter]
    fn qty_fx(&self) -> i64 {
        self.inner.qty
    }
    /// Volume-weighted entry price of the open quantity (0 when flat).
    #[getter]
    fn avg_price(&self) -> f64 {
        units(self.inner.avg_price)
    }
    #[getter]
    fn avg_price_fx(&self) -> i64 {
        self.inner.avg_price
    }
    /// Realized P&L (before fees).
    #[getter]
    fn realized(&self) -> f64 {
        units(self.inner.realized)
    }
    #[getter]
    fn realized_fx(&self) -> i64 {
        self.inner.realized
    }
    /// Fees paid on this instrument.
    #[getter]
    fn fees(&self) -> f64 {
        units(self.inner.fees)
    }
    #[getter]
    fn fees_fx(&self) -> i64 {
        self.inner.fees
    }
    /// The price of the last fill.
    #[getter]
    fn last_fill_fx(&self) -> i64 {
        self.inner.last_fill
    }

    fn __repr__(&self) -> String {
        format!(
            "Position(instrument={}, qty={}, avg_price={}, realized={}, fees={})",
            self.instrument,
            units(self.inner.qty),
            units(self.inner.avg_price),
            units(self.inner.realized),
            units(self.inner.fees)
        )
    }
}

/// Cash, positions and P&L folded from fills (see `admf.portfolio`). Positions are valued
/// at the market's last price once `attach_market` gave it a kernel, else at the last fill.
#[pyclass(module = "admf._core", name = "Portfolio")]
pub struct PyPortfolio {
    pub(crate) inner: Portfolio,
    market: Option<Py<PyKernelCore>>,
}

impl PyPortfolio {
    fn marked(&mut self, py: Python<'_>) -> &Portfolio {
        if let Some(kernel) = &self.market {
            let kernel = kernel.borrow(py);
            let held: Vec<u32> = self.inner.positions().map(|(i, _)| i).collect();
            for instrument in held {
                if let Some(price) = kernel.last_price(instrument) {
                    self.inner.mark(instrument, price);
                }
            }
        }
        &self.inner
    }
}

#[pymethods]
impl PyPortfolio {
    /// A portfolio holding `initial_cash_fx` (fixed point) and nothing else.
    #[new]
    fn new(initial_cash_fx: i64) -> Self {
        PyPortfolio {
            inner: Portfolio::new(initial_cash_fx),
            market: None,
        }
    }

    /// Values positions at `kernel`'s last market prices from now on.
    fn attach_market(&mut self, kernel: Py<PyKernelCore>) {
        self.market = Some(kernel);
    }

    /// Folds one fill (before the strategy hears of it); False if this sequenced fill was
    /// folded already.
    fn apply(&mut self, fill: &Bound<'_, PyEvent>) -> bool {
        self.inner.apply(&fill.get().inner)
    }

    /// Marks `instrument` at the market price `price_fx` (fixed point).
    fn mark(&mut self, instrument: u32, price_fx: i64) {
        self.inner.mark(instrument, price_fx);
    }

    #[getter]
    fn initial_cash(&self) -> f64 {
        units(self.inner.initial_cash)
    }
    #[getter]
    fn initial_cash_fx(&self) -> i64 {
        self.inner.initial_cash
    }
    /// Cash in currency units.
    #[getter]
    fn cash(&self) -> f64 {
        units(self.inner.cash)
    }
    #[getter]
    fn cash_fx(&self) -> i64 {
        self.inner.cash
    }
    /// Fills folded so far.
    #[getter]
    fn fills(&self) -> u64 {
        self.inner.fills
    }
    /// Sum of the notionals of all fills, fixed point.
    #[getter]
    fn traded_fx(&self) -> i128 {
        self.inner.traded
    }

    /// The position in `instrument` (flat if never traded).
    fn position(&self, instrument: u32) -> PyPosition {
        PyPosition {
            instrument,
            inner: self.inner.position(instrument),
        }
    }

    /// The signed quantity held in `instrument`, fixed point (the hot path of
    /// `ctx.position`).
    fn qty_fx(&self, instrument: u32) -> i64 {
        self.inner.position(instrument).qty
    }

    /// Every instrument ever traded, in instrument order.
    fn positions(&self) -> Vec<PyPosition> {
        self.inner
            .positions()
            .map(|(instrument, inner)| PyPosition { instrument, inner })
            .collect()
    }

    /// Cash plus positions at the market's last price, in currency units.
    fn equity(&mut self, py: Python<'_>) -> f64 {
        units(self.marked(py).equity())
    }
    fn equity_fx(&mut self, py: Python<'_>) -> i64 {
        self.marked(py).equity()
    }
    /// Sum of `|qty|` at the market's last price, in currency units.
    fn exposure(&mut self, py: Python<'_>) -> f64 {
        units(self.marked(py).exposure())
    }
    fn exposure_fx(&mut self, py: Python<'_>) -> i64 {
        self.marked(py).exposure()
    }
    fn realized(&self) -> f64 {
        units(self.inner.realized())
    }
    fn realized_fx(&self) -> i64 {
        self.inner.realized()
    }
    fn unrealized(&mut self, py: Python<'_>) -> f64 {
        units(self.marked(py).unrealized())
    }
    fn unrealized_fx(&mut self, py: Python<'_>) -> i64 {
        self.marked(py).unrealized()
    }

    fn __repr__(&mut self, py: Python<'_>) -> String {
        let p = self.marked(py);
        format!(
            "Portfolio(cash={}, equity={}, fills={})",
            units(p.cash),
            units(p.equity()),
            p.fills
        )
    }
}

type I64s<'py> = Bound<'py, PyArray1<i64>>;
/// (ts, equity, cash, exposure)
type Curve<'py> = (I64s<'py>, I64s<'py>, I64s<'py>, I64s<'py>);
/// (entry_ts, exit_ts, instrument, side, qty, entry_price, exit_price, fees, pnl)
type Trips<'py> = (
    I64s<'py>,
    I64s<'py>,
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<u8>>,
    I64s<'py>,
    I64s<'py>,
    I64s<'py>,
    I64s<'py>,
    I64s<'py>,
);

/// Folds a run's events (bytes of EVENT_DTYPE records in seq order) into its equity curve,
/// round trips and position steps, all fixed point, as columns.
#[pyfunction]
fn analyze<'py>(
    py: Python<'py>,
    events: PyReadonlyArray1<'py, u8>,
    initial_cash_fx: i64,
) -> PyResult<(Curve<'py>, Trips<'py>, (I64s<'py>, I64s<'py>))> {
    let bytes = events.as_slice()?;
    // Read in place when numpy's buffer is aligned for the record (it nearly always is).
    let records: Cow<'_, [Event]> = match bytemuck::try_cast_slice(bytes) {
        Ok(slice) => Cow::Borrowed(slice),
        Err(_) => Cow::Owned(events_from_bytes(bytes)?),
    };
    let a = py.detach(|| analyze_events(&records, initial_cash_fx));
    let col = |f: &dyn Fn(usize) -> i64, n: usize| (0..n).map(f).collect::<Vec<i64>>();
    let c = a.curve;
    let curve = (
        c.ts.into_pyarray(py),
        c.equity.into_pyarray(py),
        c.cash.into_pyarray(py),
        c.exposure.into_pyarray(py),
    );
    let t = &a.trips;
    let trips = (
        col(&|i| t[i].entry_ts, t.len()).into_pyarray(py),
        col(&|i| t[i].exit_ts, t.len()).into_pyarray(py),
        t.iter()
            .map(|x| x.instrument)
            .collect::<Vec<_>>()
            .into_pyarray(py),
        t.iter()
            .map(|x| x.side)
            .collect::<Vec<_>>()
            .into_pyarray(py),
        col(&|i| t[i].qty, t.len()).into_pyarray(py),
        col(&|i| t[i].entry_price, t.len()).into_pyarray(py),
        col(&|i| t[i].exit_price, t.len()).into_pyarray(py),
        col(&|i| t[i].fees, t.len()).into_pyarray(py),
        col(&|i| t[i].pnl, t.len()).into_pyarray(py),
    );
    let s = &a.steps;
    let steps = (
        col(&|i| s[i].0, s.len()).into_pyarray(py),
        col(&|i| s[i].1, s.len()).into_pyarray(py),
    );
    Ok((curve, trips, steps))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPortfolio>()?;
    m.add_class::<PyPosition>()?;
    m.add_function(wrap_pyfunction!(analyze, m)?)?;
    Ok(())
}
