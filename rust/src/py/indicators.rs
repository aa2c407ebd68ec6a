//! `admf._core.SMA`, `EMA`, `RSI`, `ATR` and `Bollinger`: the incremental indicators of
//! [`crate::indicators`] seen from Python.
//!
//! `update(x)` takes a price as a float and `update_fixed(x)` the engine's fixed-point
//! integer (an event's `price`); both return the new value, or `None` while warming up.
//! `compute(array)` / `compute_fixed(array)` run a fresh copy of the indicator over a whole
//! numpy series in Rust (with the GIL released) and return float64 arrays with `NaN` for the
//! warm-up; they leave the object's own state alone.

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::event::{Event, SCALE};
use crate::indicators::{self, Bands, IndicatorError};

fn value_error(err: IndicatorError) -> PyErr {
    PyValueError::new_err(err.to_string())
}

/// Largest magnitude (in whole units) a float input may have to fit the fixed-point i64.
const MAX_INPUT: f64 = i64::MAX as f64 / SCALE as f64;

fn to_fixed(x: f64) -> PyResult<i64> {
    if !x.is_finite() || x.abs() >= MAX_INPUT {
        return Err(PyValueError::new_err(format!(
            "indicator input must be a finite number of magnitude below {MAX_INPUT:.3e}, got {x}"
        )));
    }
    Ok((x * SCALE as f64).round() as i64)
}

fn to_fixed_all(values: &[f64]) -> PyResult<Vec<i64>> {
    values.iter().map(|&x| to_fixed(x)).collect()
}

fn slice<'a, T: numpy::Element>(array: &'a PyReadonlyArray1<'_, T>) -> PyResult<&'a [T]> {
    array.as_slice().map_err(|_| {
        PyValueError::new_err("expected a contiguous 1-D array; use numpy.ascontiguousarray")
    })
}

/// The current value of an indicator whose value is one number (for the plain `value`
/// getter of `super::fastcall`).
pub(crate) trait CurrentValue: pyo3::PyClass + pyo3::type_object::PyTypeInfo {
    fn current(&self) -> Option<f64>;
}

impl CurrentValue for PyAtr {
    fn current(&self) -> Option<f64> {
        self.inner.value()
    }
}

macro_rules! single_input {
    ($py_name:literal, $wrapper:ident, $inner:ty, $batch:path, $doc:literal) => {
        #[doc = $doc]
        #[pyclass(module = "admf._core", name = $py_name)]
        pub struct $wrapper {
            inner: $inner,
        }

        #[pymethods]
        impl $wrapper {
            #[new]
            fn new(period: usize) -> PyResult<Self> {
                Ok($wrapper {
                    inner: <$inner>::new(period).map_err(value_error)?,
                })
            }

            /// Feeds one price (a float); returns the value, or None while warming up.
            fn update(&mut self, x: f64) -> PyResult<Option<f64>> {
                Ok(self.inner.update(to_fixed(x)?))
            }

            /// Feeds one fixed-point price (an event's `price`); returns the value or None.
            fn update_fixed(&mut self, x: i64) -> Option<f64> {
                self.inner.update(x)
            }

            /// The current value, None while warming up.
            #[getter]
            fn value(&self) -> Option<f64> {
                self.inner.value()
            }

            /// True once the indicator has a value.
            #[getter]
            fn ready(&self) -> bool {
                self.inner.value().is_some()
            }

            #[getter]
            fn period(&self) -> usize {
                self.inner.period()
            }

            /// Back to the state of a new indicator.
            fn reset(&mut self) {
                self.inner.reset();
            }

            /// The indicator over a whole float64 series, NaN during the warm-up.
            fn compute<'py>(
                &self,
                py: Python<'py>,
                values: PyReadonlyArray1<'py, f64>,
            ) -> PyResult<Bound<'py, PyArray1<f64>>> {
                let fixed = to_fixed_all(slice(&values)?)?;
                let period = self.inner.period();
                let out = py.detach(|| $batch(&fixed, period)).map_err(value_error)?;
                Ok(out.into_pyarray(py))
            }

            /// The indicator over a whole int64 fixed-point series, NaN during the warm-up.
            fn compute_fixed<'py>(
                &self,
                py: Python<'py>,
                values: PyReadonlyArray1<'py, i64>,
            ) -> PyResult<Bound<'py, PyArray1<f64>>> {
                let values = slice(&values)?;
                let period = self.inner.period();
                let out = py.detach(|| $batch(values, period)).map_err(value_error)?;
                Ok(out.into_pyarray(py))
            }

            fn __repr__(&self) -> String {
                format!(
                    "{}(period={}, value={:?})",
                    $py_name,
                    self.inner.period(),
                    self.inner.value()
                )
            }
        }

        impl CurrentValue for $wrapper {
            fn current(&self) -> Option<f64> {
                self.inner.value()
            }
        }
    };
}

single_input!(
    "SMA",
    PySma,
    indicators::Sma,
    indicators::sma,
    "Simple moving average over `period` prices (exact fixed-point window sums)."
);
single_input!(
    "EMA",
    PyEma,
    indicators::Ema,
    indicators::ema,
    "Exponential moving average, alpha = 2 / (period + 1), seeded with the SMA of the first \
     `period` prices."
);
single_input!(
    "RSI",
    PyRsi,
    indicators::Rsi,
    indicators::rsi,
    "Relative strength index (0..100) with Wilder's smoothing; first value on the \
     `period + 1`-th price."
);

/// Average true range with Wilder's smoothing, from each bar's high, low and close; first
/// value on the `period + 1`-th bar.
#[pyclass(module = "admf._core", name = "ATR")]
pub struct PyAtr {
    inner: indicators::Atr,
}

fn check_lengths(n: &[usize]) -> PyResult<()> {
    if n.iter().any(|&x| x != n[0]) {
        return Err(PyValueError::new_err(format!(
            "high, low and close must have the same length, got {}, {} and {}",
            n[0], n[1], n[2]
        )));
    }
    Ok(())
}

#[pymethods]
impl PyAtr {
    #[new]
    fn new(period: usize) -> PyResult<Self> {
        Ok(PyAtr {
            inner: indicators::Atr::new(period).map_err(value_error)?,
        })
    }

    /// Feeds one bar (floats); returns the value, or None while warming up.
    fn update(&mut self, high: f64, low: f64, close: f64) -> PyResult<Option<f64>> {
        Ok(self
            .inner
            .update(to_fixed(high)?, to_fixed(low)?, to_fixed(close)?))
    }

    /// Feeds one bar in fixed point; returns the value, or None while warming up.
    fn update_fixed(&mut self, high: i64, low: i64, close: i64) -> Option<f64> {
        self.inner.update(high, low, close)
    }

    /// The current value, None while warming up.
    #[getter]
    fn value(&self) -> Option<f64> {
        self.inner.value()
    }

    /// True once the indicator has a value.
    #[getter]
    fn ready(&self) -> bool {
        self.inner.value().is_some()
    }

    #[getter]
    fn period(&self) -> usize {
        self.inner.period()
    }

    /// Back to the state of a new indicator.
    fn reset(&mut self) {
        self.inner.reset();
    }

    /// The ATR over whole float64 series of highs, lows and closes, NaN during the warm-up.
    fn compute<'py>(
        &self,
        py: Python<'py>,
        high: PyReadonlyArray1<'py, f64>,
        low: PyReadonlyArray1<'py, f64>,
        close: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let (h, l, c) = (slice(&high)?, slice(&low)?, slice(&close)?);
        check_lengths(&[h.len(), l.len(), c.len()])?;
        let (h, l, c) = (to_fixed_all(h)?, to_fixed_all(l)?, to_fixed_all(c)?);
        let period = self.inner.period();
        let out = py
            .detach(|| indicators::atr(&h, &l, &c, period))
            .map_err(value_error)?;
        Ok(out.into_pyarray(py))
    }

    /// The ATR over whole int64 fixed-point series, NaN during the warm-up.
    fn compute_fixed<'py>(
        &self,
        py: Python<'py>,
        high: PyReadonlyArray1<'py, i64>,
        low: PyReadonlyArray1<'py, i64>,
        close: PyReadonlyArray1<'py, i64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let (h, l, c) = (slice(&high)?, slice(&low)?, slice(&close)?);
        check_lengths(&[h.len(), l.len(), c.len()])?;
        let period = self.inner.period();
        let out = py
            .detach(|| indicators::atr(h, l, c, period))
            .map_err(value_error)?;
        Ok(out.into_pyarray(py))
    }

    fn __repr__(&self) -> String {
        format!(
            "ATR(period={}, value={:?})",
            self.inner.period(),
            self.inner.value()
        )
    }
}

type BandArrays<'py> = (
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
);

fn bands_tuple(b: Option<Bands>) -> Option<(f64, f64, f64)> {
    b.map(|b| (b.mid, b.upper, b.lower))
}

/// Bollinger bands: the SMA of `period` prices (mid) ± `k` population standard deviations
/// (upper, lower), from exact fixed-point window sums.
#[pyclass(module = "admf._core", name = "Bollinger")]
pub struct PyBollinger {
    inner: indicators::Bollinger,
}

#[pymethods]
impl PyBollinger {
    #[new]
    #[pyo3(signature = (period, k = 2.0))]
    fn new(period: usize, k: f64) -> PyResult<Self> {
        Ok(PyBollinger {
            inner: indicators::Bollinger::new(period, k).map_err(value_error)?,
        })
    }

    /// Feeds one price; returns (mid, upper, lower), or None while warming up.
    fn update(&mut self, x: f64) -> PyResult<Option<(f64, f64, f64)>> {
        Ok(bands_tuple(self.inner.update(to_fixed(x)?)))
    }

    /// Feeds one fixed-point price; returns (mid, upper, lower), or None while warming up.
    fn update_fixed(&mut self, x: i64) -> Option<(f64, f64, f64)> {
        bands_tuple(self.inner.update(x))
    }

    /// The current (mid, upper, lower), None while warming up.
    #[getter]
    fn value(&self) -> Option<(f64, f64, f64)> {
        bands_tuple(self.inner.value())
    }

    /// True once the bands have a value.
    #[getter]
    fn ready(&self) -> bool {
        self.inner.value().is_some()
    }

    #[getter]
    fn period(&self) -> usize {
        self.inner.period()
    }

    #[getter]
    fn k(&self) -> f64 {
        self.inner.k()
    }

    /// Back to the state of new bands.
    fn reset(&mut self) {
        self.inner.reset();
    }

    /// The bands over a whole float64 series: arrays (mid, upper, lower), NaN during the
    /// warm-up.
    fn compute<'py>(
        &self,
        py: Python<'py>,
        values: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<BandArrays<'py>> {
        let fixed = to_fixed_all(slice(&values)?)?;
        self.run(py, &fixed)
    }

    /// The bands over a whole int64 fixed-point series.
    fn compute_fixed<'py>(
        &self,
        py: Python<'py>,
        values: PyReadonlyArray1<'py, i64>,
    ) -> PyResult<BandArrays<'py>> {
        self.run(py, slice(&values)?)
    }

    fn __repr__(&self) -> String {
        format!(
            "Bollinger(period={}, k={}, value={:?})",
            self.inner.period(),
            self.inner.k(),
            bands_tuple(self.inner.value())
        )
    }
}

impl PyBollinger {
    fn run<'py>(&self, py: Python<'py>, values: &[i64]) -> PyResult<BandArrays<'py>> {
        let (period, k) = (self.inner.period(), self.inner.k());
        let (mid, upper, lower) = py
            .detach(|| indicators::bollinger(values, period, k))
            .map_err(value_error)?;
        Ok((
            mid.into_pyarray(py),
            upper.into_pyarray(py),
            lower.into_pyarray(py),
        ))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySma>()?;
    m.add_class::<PyEma>()?;
    m.add_class::<PyRsi>()?;
    m.add_class::<PyAtr>()?;
    m.add_class::<PyBollinger>()?;
    Ok(())
}

/// An indicator the kernel feeds with every bar of one instrument before any handler sees
/// the bar (`KernelCore.feed_indicator`): a strategy then reads its `value` in `on_bar`
/// instead of calling `update_fixed` itself, as a backtrader strategy reads the indicators
/// it declared. The single-price indicators take the bar's close; ATR its high, low and
/// close.
pub(crate) enum BarFed {
    Sma(Py<PySma>),
    Ema(Py<PyEma>),
    Rsi(Py<PyRsi>),
    Atr(Py<PyAtr>),
    Bollinger(Py<PyBollinger>),
}

impl BarFed {
    /// The indicator behind `obj`, or a TypeError naming what it is.
    pub(crate) fn of(obj: &Bound<'_, PyAny>) -> PyResult<BarFed> {
        if let Ok(i) = obj.cast::<PySma>() {
            return Ok(BarFed::Sma(i.clone().unbind()));
        }
        if let Ok(i) = obj.cast::<PyEma>() {
            return Ok(BarFed::Ema(i.clone().unbind()));
        }
        if let Ok(i) = obj.cast::<PyRsi>() {
            return Ok(BarFed::Rsi(i.clone().unbind()));
        }
        if let Ok(i) = obj.cast::<PyAtr>() {
            return Ok(BarFed::Atr(i.clone().unbind()));
        }
        if let Ok(i) = obj.cast::<PyBollinger>() {
            return Ok(BarFed::Bollinger(i.clone().unbind()));
        }
        Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "the kernel feeds admf.indicators (SMA, EMA, RSI, ATR, Bollinger), not {}",
            obj.get_type()
                .name()
                .map_or_else(|_| "?".to_owned(), |n| n.to_string())
        )))
    }

    /// Feeds one bar (see the slot table of `crate::event`: close in `price`, high in
    /// `order_id`, low in `payload`).
    pub(crate) fn update(&self, py: Python<'_>, bar: &Event) {
        match self {
            BarFed::Sma(i) => {
                i.borrow_mut(py).inner.update(bar.price);
            }
            BarFed::Ema(i) => {
                i.borrow_mut(py).inner.update(bar.price);
            }
            BarFed::Rsi(i) => {
                i.borrow_mut(py).inner.update(bar.price);
            }
            BarFed::Atr(i) => {
                i.borrow_mut(py)
                    .inner
                    .update(bar.order_id, bar.payload, bar.price);
            }
            BarFed::Bollinger(i) => {
                i.borrow_mut(py).inner.update(bar.price);
            }
        }
    }
}
