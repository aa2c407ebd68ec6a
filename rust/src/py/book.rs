//! `admf._core.OrderBook` and `admf._core.SimVenue`: the book and the simulated venue seen
//! from Python.
//!
//! One-message methods (`add`, `cancel`, `execute`, `bbo` ...) are compiled methods with
//! plain integer arguments, so a call per message costs one pyo3 call. Batches cross as a
//! uint8 view of an `EVENT_DTYPE` array (or as the Arrow columns) and are applied without
//! leaving Rust; records produced (fills, snapshots, venue answers) come back as bytes that
//! the Python layer views as an `EVENT_DTYPE` array.

use numpy::PyReadonlyArray1;
use pyo3::create_exception;
use pyo3::exceptions::{PyMemoryError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use super::event::{events_from_bytes, PyEvent};
use crate::book::{BookError as RustBookError, Fees, Latency, Order, OrderBook, SimVenue, Status};
use crate::event::{Event, Side, EVENT_SIZE};

create_exception!(
    admf._core,
    BookError,
    PyValueError,
    "A book operation was refused (unknown or duplicate order id, crossing, bad size, price \
     off tick ...). The message names the order and the reason; the book is unchanged."
);

fn book_err(e: RustBookError) -> PyErr {
    BookError::new_err(e.to_string())
}

fn batch_err(i: usize, e: RustBookError) -> PyErr {
    BookError::new_err(format!(
        "event {i} of the batch: {e} (the events before it were applied)"
    ))
}

#[inline]
fn side_of(id: i64, side: u8) -> PyResult<Side> {
    match Side::from_code(side) {
        Some(s @ (Side::Buy | Side::Sell)) => Ok(s),
        _ => Err(book_err(RustBookError::BadSide { id, side })),
    }
}

fn any_side(side: u8) -> PyResult<Side> {
    Side::from_code(side).ok_or_else(|| {
        PyValueError::new_err(format!(
            "side must be 0 (none), 1 (buy) or 2 (sell), got {side}"
        ))
    })
}

fn to_bytes<'py>(py: Python<'py>, events: &[Event]) -> Bound<'py, PyBytes> {
    PyBytes::new(py, bytemuck::cast_slice(events))
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Filled => "filled",
        Status::Resting => "resting",
        Status::Canceled => "canceled",
        Status::Rejected => "rejected",
    }
}

/// Best bid and ask prices.
type Bbo = (Option<i64>, Option<i64>);

/// An L3 limit order book with price-time priority (see `admf.OrderBook`).
#[pyclass(module = "admf._core", name = "OrderBook", subclass)]
pub struct PyOrderBook {
    pub(crate) inner: OrderBook,
    /// The last `bbo()` answer: reading the same prices again returns the same tuple, so a
    /// polling loop allocates nothing while the top of the book stays put.
    bbo_cache: Option<(Bbo, Py<PyTuple>)>,
}

#[pymethods]
impl PyOrderBook {
    #[new]
    #[pyo3(signature = (tick = 1, instrument = 0, *, maker_fee = 0, taker_fee = 0, capacity = 0))]
    fn new(
        tick: i64,
        instrument: u32,
        maker_fee: i64,
        taker_fee: i64,
        capacity: usize,
    ) -> PyResult<Self> {
        let mut inner = OrderBook::new(tick)
            .map_err(book_err)?
            .with_instrument(instrument)
            .with_fees(Fees {
                maker: maker_fee,
                taker: taker_fee,
            });
        inner.reserve(capacity).map_err(|e| {
            PyMemoryError::new_err(format!(
                "cannot reserve an OrderBook for capacity={capacity} orders ({e}); the \
                 capacity is limited by memory (about 64 bytes per order) and to 2^32-1 orders"
            ))
        })?;
        Ok(PyOrderBook {
            inner,
            bbo_cache: None,
        })
    }

    /// Price increment (fixed point); every price must be a multiple of it.
    #[getter]
    fn tick(&self) -> i64 {
        self.inner.tick()
    }

    #[getter]
    fn instrument(&self) -> u32 {
        self.inner.instrument()
    }

    /// Number of resting known orders.
    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __contains__(&self, order_id: i64) -> bool {
        self.inner.order(order_id).is_some()
    }

    /// Adds a resting order at the back of its level.
    #[pyo3(signature = (order_id, side, price, qty, ts = 0))]
    fn add(&mut self, order_id: i64, side: u8, price: i64, qty: i64, ts: i64) -> PyResult<()> {
        let side = side_of(order_id, side)?;
        self.inner
            .add(order_id, side, price, qty, ts)
            .map_err(book_err)
    }

    /// Removes a resting order; returns its size.
    fn cancel(&mut self, order_id: i64) -> PyResult<i64> {
        self.inner.cancel(order_id).map_err(book_err)
    }

    /// Takes `qty` off a resting order keeping its priority (all of it removes the order);
    /// returns the size taken off.
    fn reduce(&mut self, order_id: i64, qty: i64) -> PyResult<i64> {
        self.inner.reduce(order_id, qty).map_err(book_err)
    }

    /// Executes `qty` of a resting order; returns the size left.
    fn execute(&mut self, order_id: i64, qty: i64) -> PyResult<i64> {
        self.inner.execute(order_id, qty).map_err(book_err)
    }

    /// New price and size; a new price or a larger size loses the order's priority.
    #[pyo3(signature = (order_id, price, qty, ts = 0))]
    fn modify(&mut self, order_id: i64, price: i64, qty: i64, ts: i64) -> PyResult<()> {
        self.inner
            .modify(order_id, price, qty, ts)
            .map_err(book_err)
    }

    /// Adds size that belongs to no known order (seeding from a snapshot).
    fn add_anonymous(&mut self, side: u8, price: i64, qty: i64) -> PyResult<()> {
        let side = side_of(0, side)?;
        self.inner.add_anonymous(side, price, qty).map_err(book_err)
    }

    /// Takes anonymous size off a level (a cancel or execution of an order never seen).
    #[pyo3(signature = (side, price, qty, order_id = 0))]
    fn reduce_anonymous(&mut self, side: u8, price: i64, qty: i64, order_id: i64) -> PyResult<()> {
        let side = side_of(order_id, side)?;
        self.inner
            .reduce_anonymous(order_id, side, price, qty)
            .map_err(book_err)
    }

    /// Empties one side (0: both).
    #[pyo3(signature = (side = 0))]
    fn clear(&mut self, side: u8) -> PyResult<()> {
        self.inner.clear(any_side(side)?);
        Ok(())
    }

    /// Applies one delta given by its fields (kind is a `Kind.BOOK_*` code).
    #[pyo3(signature = (kind, order_id, side, price, qty, ts = 0))]
    fn apply_delta(
        &mut self,
        kind: u8,
        order_id: i64,
        side: u8,
        price: i64,
        qty: i64,
        ts: i64,
    ) -> PyResult<()> {
        let ev = Event {
            kind,
            order_id,
            side,
            price,
            qty,
            ts,
            ..Event::default()
        };
        self.inner.apply(&ev).map_err(book_err)
    }

    /// Applies one delta record.
    fn apply(&mut self, event: &Bound<'_, PyEvent>) -> PyResult<()> {
        self.inner.apply(&event.get().inner).map_err(book_err)
    }

    /// Applies the records of a uint8 view of an EVENT_DTYPE array; returns how many.
    fn _apply_bytes(&mut self, data: PyReadonlyArray1<'_, u8>) -> PyResult<usize> {
        let bytes = data.as_slice()?;
        if bytes.len() % EVENT_SIZE != 0 {
            return Err(PyValueError::new_err(format!(
                "a batch of events must be a multiple of {EVENT_SIZE} bytes, got {}",
                bytes.len()
            )));
        }
        for (i, chunk) in bytes.chunks_exact(EVENT_SIZE).enumerate() {
            let ev: Event = bytemuck::pod_read_unaligned(chunk);
            self.inner.apply(&ev).map_err(|e| batch_err(i, e))?;
        }
        Ok(bytes.len() / EVENT_SIZE)
    }

    /// Applies a batch given as the columns a delta needs (Arrow record batches).
    #[allow(clippy::too_many_arguments)]
    fn _apply_columns(
        &mut self,
        ts: PyReadonlyArray1<'_, i64>,
        order_id: PyReadonlyArray1<'_, i64>,
        price: PyReadonlyArray1<'_, i64>,
        qty: PyReadonlyArray1<'_, i64>,
        kind: PyReadonlyArray1<'_, u8>,
        side: PyReadonlyArray1<'_, u8>,
        flags: PyReadonlyArray1<'_, u16>,
    ) -> PyResult<usize> {
        let (ts, order_id, price, qty) = (
            ts.as_slice()?,
            order_id.as_slice()?,
            price.as_slice()?,
            qty.as_slice()?,
        );
        let (kind, side, flags) = (kind.as_slice()?, side.as_slice()?, flags.as_slice()?);
        let n = ts.len();
        if [
            order_id.len(),
            price.len(),
            qty.len(),
            kind.len(),
            side.len(),
            flags.len(),
        ]
        .iter()
        .any(|&l| l != n)
        {
            return Err(PyValueError::new_err(
                "the columns of a batch differ in length",
            ));
        }
        for i in 0..n {
            let ev = Event {
                ts: ts[i],
                order_id: order_id[i],
                price: price[i],
                qty: qty[i],
                kind: kind[i],
                side: side[i],
                flags: flags[i],
                instrument: self.inner.instrument(),
                ..Event::default()
            };
            self.inner.apply(&ev).map_err(|e| batch_err(i, e))?;
        }
        Ok(n)
    }

    /// Best bid and best ask prices, (None when a side is empty).
    fn bbo(&mut self, py: Python<'_>) -> PyResult<Py<PyTuple>> {
        let now = self.inner.bbo();
        if let Some((prices, tuple)) = &self.bbo_cache {
            if *prices == now {
                return Ok(tuple.clone_ref(py));
            }
        }
        let tuple: Py<PyTuple> = now.into_pyobject(py)?.unbind();
        self.bbo_cache = Some((now, tuple.clone_ref(py)));
        Ok(tuple)
    }

    /// Best bid (price, size), or None.
    fn best_bid(&self) -> Option<(i64, i64)> {
        self.inner.best_bid()
    }

    /// Best ask (price, size), or None.
    fn best_ask(&self) -> Option<(i64, i64)> {
        self.inner.best_ask()
    }

    /// The best `n` levels of a side, best first, as (price, size, number of orders).
    #[pyo3(signature = (side, n = 10))]
    fn depth(&self, side: u8, n: usize) -> PyResult<Vec<(i64, i64, u32)>> {
        let side = side_of(0, side)?;
        Ok(self
            .inner
            .depth(side, n)
            .map(|l| (l.price, l.qty, l.count))
            .collect())
    }

    /// Number of price levels on a side.
    fn level_count(&self, side: u8) -> PyResult<usize> {
        Ok(self.inner.level_count(side_of(0, side)?))
    }

    /// Total size at a price (0 if none).
    fn size_at(&self, side: u8, price: i64) -> PyResult<i64> {
        Ok(self.inner.size_at(side_of(0, side)?, price))
    }

    /// Number of known orders at a price.
    fn orders_at(&self, side: u8, price: i64) -> PyResult<u32> {
        Ok(self
            .inner
            .level(side_of(0, side)?, price)
            .map_or(0, |l| l.count))
    }

    /// Size at a price that belongs to no known order.
    fn anonymous_at(&self, side: u8, price: i64) -> PyResult<i64> {
        Ok(self
            .inner
            .level(side_of(0, side)?, price)
            .map_or(0, |l| l.anonymous))
    }

    /// The known orders at a price in time order, as (order id, size).
    fn queue(&self, side: u8, price: i64) -> PyResult<Vec<(i64, i64)>> {
        Ok(self.inner.queue(side_of(0, side)?, price))
    }

    /// A resting order as (side, price, size, ts), or None.
    fn order(&self, order_id: i64) -> Option<(u8, i64, i64, i64)> {
        self.inner
            .order(order_id)
            .map(|o| (o.side as u8, o.price, o.qty, o.ts))
    }

    /// True when best bid >= best ask (never, unless something is badly wrong).
    fn is_crossed(&self) -> bool {
        self.inner.is_crossed()
    }

    /// Raises AssertionError naming the first broken internal invariant (for tests).
    fn check_invariants(&self) -> PyResult<()> {
        self.inner
            .check_invariants()
            .map_err(pyo3::exceptions::PyAssertionError::new_err)
    }

    fn _snapshot_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        to_bytes(py, &self.inner.snapshot())
    }

    fn _restore_bytes(&mut self, data: PyReadonlyArray1<'_, u8>) -> PyResult<()> {
        let events = events_from_bytes(data.as_slice()?)?;
        self.inner
            .restore(&events)
            .map_err(|(i, e)| batch_err(i, e))
            .map_err(|e| BookError::new_err(format!("restore failed, the book is unchanged: {e}")))
    }

    /// Matches an order (`ORDER_SUBMIT` record) against the book; returns (status, filled,
    /// remaining, fill records as bytes).
    fn _submit<'py>(
        &mut self,
        py: Python<'py>,
        event: &Bound<'_, PyEvent>,
    ) -> PyResult<(&'static str, i64, i64, Bound<'py, PyBytes>)> {
        let order = Order::from_event(&event.get().inner).map_err(book_err)?;
        let mut fills = Vec::new();
        let out = self.inner.submit(&order, &mut fills).map_err(book_err)?;
        Ok((
            status_name(out.status),
            out.filled,
            out.remaining,
            to_bytes(py, &fills),
        ))
    }
}

/// The simulated venue: a market book driven by data plus own orders with queue positions,
/// latency and fees (see `admf.SimVenue`).
#[pyclass(module = "admf._core", name = "SimVenue", subclass)]
pub struct PySimVenue {
    pub(crate) inner: SimVenue,
}

#[pymethods]
impl PySimVenue {
    #[new]
    #[pyo3(signature = (tick = 1, instrument = 0, *, maker_fee = 0, taker_fee = 0, latency_to_venue = 0, latency_to_strategy = 0))]
    fn new(
        tick: i64,
        instrument: u32,
        maker_fee: i64,
        taker_fee: i64,
        latency_to_venue: i64,
        latency_to_strategy: i64,
    ) -> PyResult<Self> {
        if latency_to_venue < 0 || latency_to_strategy < 0 {
            return Err(PyValueError::new_err(format!(
                "latencies must be non-negative nanoseconds, got {latency_to_venue} and \
                 {latency_to_strategy}"
            )));
        }
        let book = OrderBook::new(tick)
            .map_err(book_err)?
            .with_instrument(instrument);
        Ok(PySimVenue {
            inner: SimVenue::new(
                book,
                Fees {
                    maker: maker_fee,
                    taker: taker_fee,
                },
                Latency {
                    to_venue: latency_to_venue,
                    to_strategy: latency_to_strategy,
                },
            ),
        })
    }

    /// Whether the venue takes market data of this kind: book deltas (an L3 book) and quotes
    /// (an L1 book, each quote replacing it whole); trades and bars it does not.
    #[staticmethod]
    fn takes(kind: u8) -> bool {
        SimVenue::takes(kind)
    }

    /// The venue's clock (ns).
    #[getter]
    fn now(&self) -> i64 {
        self.inner.now()
    }

    /// Commands sent but not yet at the venue.
    #[getter]
    fn pending(&self) -> usize {
        self.inner.pending()
    }

    /// Best bid and ask prices of the market's book.
    fn bbo(&self) -> (Option<i64>, Option<i64>) {
        self.inner.book().bbo()
    }

    /// The market's book levels of a side, as in `OrderBook.depth`.
    #[pyo3(signature = (side, n = 10))]
    fn depth(&self, side: u8, n: usize) -> PyResult<Vec<(i64, i64, u32)>> {
        let side = side_of(0, side)?;
        Ok(self
            .inner
            .book()
            .depth(side, n)
            .map(|l| (l.price, l.qty, l.count))
            .collect())
    }

    /// An own open order as (side, price, open size, filled size, market size ahead), or None.
    fn order(&self, order_id: i64) -> Option<(u8, i64, i64, i64, i64)> {
        self.inner
            .order(order_id)
            .map(|o| (o.side as u8, o.price, o.qty, o.filled, o.ahead))
    }

    /// Ids of own open orders, ascending.
    fn open_orders(&self) -> Vec<i64> {
        self.inner.open_orders().map(|o| o.id).collect()
    }

    fn _submit<'py>(
        &mut self,
        py: Python<'py>,
        event: &Bound<'_, PyEvent>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut out = Vec::new();
        self.inner
            .submit(&event.get().inner, &mut out)
            .map_err(book_err)?;
        Ok(to_bytes(py, &out))
    }

    fn _advance<'py>(&mut self, py: Python<'py>, ts: i64) -> Bound<'py, PyBytes> {
        let mut out = Vec::new();
        self.inner.advance(ts, &mut out);
        to_bytes(py, &out)
    }

    fn _on_market_bytes<'py>(
        &mut self,
        py: Python<'py>,
        data: PyReadonlyArray1<'_, u8>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = data.as_slice()?;
        if bytes.len() % EVENT_SIZE != 0 {
            return Err(PyValueError::new_err(format!(
                "a batch of events must be a multiple of {EVENT_SIZE} bytes, got {}",
                bytes.len()
            )));
        }
        let mut out = Vec::new();
        for (i, chunk) in bytes.chunks_exact(EVENT_SIZE).enumerate() {
            let ev: Event = bytemuck::pod_read_unaligned(chunk);
            self.inner
                .on_market(&ev, &mut out)
                .map_err(|e| batch_err(i, e))?;
        }
        Ok(to_bytes(py, &out))
    }
}

/// `n` deltas of a deterministic LOBSTER-like day (the benchmarks' stream), as bytes.
#[pyfunction]
fn _lobster_like(py: Python<'_>, n: usize, seed: u64) -> Bound<'_, PyBytes> {
    to_bytes(py, &crate::book::synthetic::lobster_like(n, seed))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_function(wrap_pyfunction!(_lobster_like, m)?)?;
    m.add_class::<PyOrderBook>()?;
    m.add_class::<PySimVenue>()?;
    m.add("BookError", py.get_type::<BookError>())?;
    Ok(())
}
