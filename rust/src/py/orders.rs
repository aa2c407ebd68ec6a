//! `admf._core.Portfolio`, `Position` and `analyze`: the one fold of fills seen from Python;
//! `curve_statistics` and `periods_per_year`: the statistics of its equity curve
//! (`crate::stats`).
//!
//! Numbers a strategy reads are in units (floats); the same names with `_fx` give the
//! engine's fixed-point integers.

use std::borrow::Cow;

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use super::event::{events_from_bytes, PyEvent};
use super::kernel::PyKernelCore;
use crate::event::{Event, SCALE};
use crate::orders::{analyze_with, Columns, Portfolio, Position};
use crate::stats::{self, CurveStats, Steps};

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

/// (events of each kind code, risk decisions that refused an order)
type Tally<'py> = (Bound<'py, PyArray1<u64>>, u64);

/// Folds a run's events (bytes of EVENT_DTYPE records in seq order) into its equity curve,
/// round trips and position steps, all fixed point, as columns, and its event counts.
/// `cash_and_exposure=False` leaves those two columns of the curve empty.
#[pyfunction]
#[pyo3(signature = (events, initial_cash_fx, cash_and_exposure=true))]
fn analyze<'py>(
    py: Python<'py>,
    events: PyReadonlyArray1<'py, u8>,
    initial_cash_fx: i64,
    cash_and_exposure: bool,
) -> PyResult<(Curve<'py>, Trips<'py>, (I64s<'py>, I64s<'py>), Tally<'py>)> {
    let bytes = events.as_slice()?;
    // Read in place when numpy's buffer is aligned for the record (it nearly always is).
    let records: Cow<'_, [Event]> = match bytemuck::try_cast_slice(bytes) {
        Ok(slice) => Cow::Borrowed(slice),
        Err(_) => Cow::Owned(events_from_bytes(bytes)?),
    };
    let columns = if cash_and_exposure {
        Columns::All
    } else {
        Columns::Equity
    };
    let a = py.detach(|| analyze_with(&records, initial_cash_fx, columns));
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
    let tally = (a.tally.kinds.to_vec().into_pyarray(py), a.tally.risk_denied);
    Ok((curve, trips, steps, tally))
}

/// The statistics of an equity curve that need all of its points (see `admf.metrics`).
#[pyclass(frozen, module = "admf._core", name = "CurveStatistics")]
pub struct PyCurveStatistics {
    inner: CurveStats,
}

#[pymethods]
impl PyCurveStatistics {
    #[getter]
    fn returns(&self) -> usize {
        self.inner.returns
    }
    #[getter]
    fn mean_return(&self) -> f64 {
        self.inner.mean_return
    }
    #[getter]
    fn std_return(&self) -> f64 {
        self.inner.std_return
    }
    #[getter]
    fn downside_deviation(&self) -> f64 {
        self.inner.downside_deviation
    }
    #[getter]
    fn max_drawdown(&self) -> f64 {
        self.inner.max_drawdown
    }
    #[getter]
    fn max_drawdown_duration_ns(&self) -> i64 {
        self.inner.max_drawdown_duration_ns
    }
    #[getter]
    fn max_drawdown_peak_ns(&self) -> i64 {
        self.inner.max_drawdown_peak_ns
    }
    #[getter]
    fn max_drawdown_trough_ns(&self) -> i64 {
        self.inner.max_drawdown_trough_ns
    }
    #[getter]
    fn mean_equity(&self) -> f64 {
        self.inner.mean_equity
    }
    #[getter]
    fn exposure(&self) -> f64 {
        self.inner.exposure
    }

    fn __repr__(&self) -> String {
        format!("CurveStatistics({:?})", self.inner)
    }
}

/// An equity curve's values: fixed point (int64) or whole units (float64).
#[derive(FromPyObject)]
enum EquityValues<'py> {
    Fixed(PyReadonlyArray1<'py, i64>),
    Units(PyReadonlyArray1<'py, f64>),
}

/// The statistics of the curve `(ts, equity)` (in time order, lengths checked by the
/// caller), with the exposure from the position steps `(positions_ts, positions_qty)` when
/// given.
#[pyfunction]
#[pyo3(signature = (ts, equity, positions_ts=None, positions_qty=None))]
fn curve_statistics<'py>(
    py: Python<'py>,
    ts: PyReadonlyArray1<'py, i64>,
    equity: EquityValues<'py>,
    positions_ts: Option<PyReadonlyArray1<'py, i64>>,
    positions_qty: Option<PyReadonlyArray1<'py, i64>>,
) -> PyResult<PyCurveStatistics> {
    let ts = ts.as_slice()?;
    let positions = match (&positions_ts, &positions_qty) {
        (Some(t), Some(q)) => Some(Steps {
            ts: t.as_slice()?,
            qty: q.as_slice()?,
        }),
        (None, None) => None,
        _ => {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "positions_ts and positions_qty go together",
            ))
        }
    };
    let inner = match &equity {
        EquityValues::Fixed(values) => {
            let values = values.as_slice()?;
            py.detach(|| stats::curve_stats(ts, values, units, positions))
        }
        EquityValues::Units(values) => {
            let values = values.as_slice()?;
            py.detach(|| stats::curve_stats(ts, values, |v| v, positions))
        }
    };
    Ok(PyCurveStatistics { inner })
}

/// Periods per year of stamps in time order (see `admf.metrics`); NaN below 2 stamps or
/// without a positive median spacing.
#[pyfunction]
fn periods_per_year(py: Python<'_>, ts: PyReadonlyArray1<'_, i64>) -> PyResult<f64> {
    let ts = ts.as_slice()?;
    Ok(py.detach(|| stats::periods_per_year(ts)))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyCurveStatistics>()?;
    m.add_function(wrap_pyfunction!(curve_statistics, m)?)?;
    m.add_function(wrap_pyfunction!(periods_per_year, m)?)?;
    m.add_class::<PyPortfolio>()?;
    m.add_class::<PyPosition>()?;
    m.add_function(wrap_pyfunction!(analyze, m)?)?;
    Ok(())
}
