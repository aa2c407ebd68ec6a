//! `admf._core.Event`: one event record as an immutable Python object.

use std::hash::Hash;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::event::{self, flags, Event, Kind, Side};

/// One event record (64 bytes). The engine keeps prices, quantities and money as fixed-point
/// integers with `SCALE` units per whole; the getters a strategy reads (`price`, `qty`,
/// `close`, `bid`, `fee` ...) give them in units as floats, and the same names with `_fx`
/// give the fixed-point integers. `aux`, `order_id` and `payload` are the record's raw slots.
/// The constructor and `replace` take the record's fixed-point slots.
///
/// Dead `Event` objects are kept in a pool for reuse (see `fastcall`): `EventQueue.pop`
/// creates one per call.
#[pyclass(frozen, eq, hash, module = "admf._core", name = "Event")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PyEvent {
    pub(crate) inner: Event,
}

/// Reads whole event records from a byte buffer (a uint8 view of an EVENT_DTYPE array).
pub(crate) fn events_from_bytes(bytes: &[u8]) -> PyResult<Vec<Event>> {
    if !bytes.len().is_multiple_of(event::EVENT_SIZE) {
        return Err(PyValueError::new_err(format!(
            "a batch of events must be a multiple of {} bytes, got {}",
            event::EVENT_SIZE,
            bytes.len()
        )));
    }
    // A numpy buffer is normally 8-aligned: then one copy of the whole buffer.
    if let Ok(events) = bytemuck::try_cast_slice::<u8, Event>(bytes) {
        return Ok(events.to_vec());
    }
    Ok(bytes
        .chunks_exact(event::EVENT_SIZE)
        .map(bytemuck::pod_read_unaligned)
        .collect())
}

/// A fixed-point value in units: the nearest `f64` (exact for values below 2**53 / SCALE).
#[inline]
fn units(fixed: i64) -> f64 {
    fixed as f64 / event::SCALE as f64
}

pub(crate) fn check(kind: u8, side: u8) -> PyResult<()> {
    if Kind::from_code(kind).is_none() {
        return Err(PyValueError::new_err(format!(
            "unknown event kind {kind}; expected one of admf.Kind"
        )));
    }
    if Side::from_code(side).is_none() {
        return Err(PyValueError::new_err(format!(
            "unknown side {side}; expected 0 (none), 1 (buy) or 2 (sell)"
        )));
    }
    Ok(())
}

#[pymethods]
impl PyEvent {
    #[new]
    #[pyo3(signature = (kind, ts=0, *, instrument=0, order_id=0, side=0, price=0, qty=0, aux=0, payload=0, flags=0, seq=0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        kind: u8,
        ts: i64,
        instrument: u32,
        order_id: i64,
        side: u8,
        price: i64,
        qty: i64,
        aux: i64,
        payload: i64,
        flags: u16,
        seq: u64,
    ) -> PyResult<Self> {
        check(kind, side)?;
        Ok(PyEvent {
            inner: Event {
                seq,
                ts,
                order_id,
                price,
                qty,
                aux,
                payload,
                instrument,
                kind,
                side,
                flags,
            },
        })
    }

    /// A copy with the given fields replaced.
    #[pyo3(signature = (*, kind=None, ts=None, instrument=None, order_id=None, side=None, price=None, qty=None, aux=None, payload=None, flags=None, seq=None))]
    #[allow(clippy::too_many_arguments)]
    fn replace(
        &self,
        kind: Option<u8>,
        ts: Option<i64>,
        instrument: Option<u32>,
        order_id: Option<i64>,
        side: Option<u8>,
        price: Option<i64>,
        qty: Option<i64>,
        aux: Option<i64>,
        payload: Option<i64>,
        flags: Option<u16>,
        seq: Option<u64>,
    ) -> PyResult<Self> {
        let e = self.inner;
        let out = Event {
            seq: seq.unwrap_or(e.seq),
            ts: ts.unwrap_or(e.ts),
            order_id: order_id.unwrap_or(e.order_id),
            price: price.unwrap_or(e.price),
            qty: qty.unwrap_or(e.qty),
            aux: aux.unwrap_or(e.aux),
            payload: payload.unwrap_or(e.payload),
            instrument: instrument.unwrap_or(e.instrument),
            kind: kind.unwrap_or(e.kind),
            side: side.unwrap_or(e.side),
            flags: flags.unwrap_or(e.flags),
        };
        check(out.kind, out.side)?;
        Ok(PyEvent { inner: out })
    }

    /// A copy of this event as another kind, not yet sequenced (seq 0, ts 0 = "now"): how a
    /// venue turns an order into its report without re-reading every field.
    fn as_kind(&self, kind: u8) -> PyResult<Self> {
        check(kind, self.inner.side)?;
        Ok(PyEvent {
            inner: Event {
                kind,
                seq: 0,
                ts: 0,
                ..self.inner
            },
        })
    }

    #[getter]
    fn seq(&self) -> u64 {
        self.inner.seq
    }
    #[getter]
    fn ts(&self) -> i64 {
        self.inner.ts
    }
    #[getter]
    fn order_id(&self) -> i64 {
        self.inner.order_id
    }
    #[getter]
    fn aux(&self) -> i64 {
        self.inner.aux
    }
    #[getter]
    fn payload(&self) -> i64 {
        self.inner.payload
    }
    #[getter]
    fn instrument(&self) -> u32 {
        self.inner.instrument
    }
    #[getter]
    fn kind(&self) -> u8 {
        self.inner.kind
    }
    #[getter]
    fn side(&self) -> u8 {
        self.inner.side
    }
    #[getter]
    fn flags(&self) -> u16 {
        self.inner.flags
    }
    /// Price: of an order, a fill, a trade or a book delta, in units (shares, currency); `price_fx` is the fixed-point integer.
    #[getter]
    fn price(&self) -> f64 {
        units(self.inner.price)
    }
    /// Price: of an order, a fill, a trade or a book delta, fixed point (`SCALE` per unit).
    #[getter]
    fn price_fx(&self) -> i64 {
        self.inner.price
    }
    /// Quantity: of an order, a fill, a trade or a book delta, in units (shares, currency); `qty_fx` is the fixed-point integer.
    #[getter]
    fn qty(&self) -> f64 {
        units(self.inner.qty)
    }
    /// Quantity: of an order, a fill, a trade or a book delta, fixed point (`SCALE` per unit).
    #[getter]
    fn qty_fx(&self) -> i64 {
        self.inner.qty
    }
    /// Fee of a fill, in units (shares, currency); `fee_fx` is the fixed-point integer.
    #[getter]
    fn fee(&self) -> f64 {
        units(self.inner.aux)
    }
    /// Fee of a fill, fixed point (`SCALE` per unit).
    #[getter]
    fn fee_fx(&self) -> i64 {
        self.inner.aux
    }
    /// Bar open, in units (shares, currency); `open_fx` is the fixed-point integer.
    #[getter]
    fn open(&self) -> f64 {
        units(self.inner.aux)
    }
    /// Bar open, fixed point (`SCALE` per unit).
    #[getter]
    fn open_fx(&self) -> i64 {
        self.inner.aux
    }
    /// Bar high, in units (shares, currency); `high_fx` is the fixed-point integer.
    #[getter]
    fn high(&self) -> f64 {
        units(self.inner.order_id)
    }
    /// Bar high, fixed point (`SCALE` per unit).
    #[getter]
    fn high_fx(&self) -> i64 {
        self.inner.order_id
    }
    /// Bar low, in units (shares, currency); `low_fx` is the fixed-point integer.
    #[getter]
    fn low(&self) -> f64 {
        units(self.inner.payload)
    }
    /// Bar low, fixed point (`SCALE` per unit).
    #[getter]
    fn low_fx(&self) -> i64 {
        self.inner.payload
    }
    /// Bar close, in units (shares, currency); `close_fx` is the fixed-point integer.
    #[getter]
    fn close(&self) -> f64 {
        units(self.inner.price)
    }
    /// Bar close, fixed point (`SCALE` per unit).
    #[getter]
    fn close_fx(&self) -> i64 {
        self.inner.price
    }
    /// Bar volume, in units (shares, currency); `volume_fx` is the fixed-point integer.
    #[getter]
    fn volume(&self) -> f64 {
        units(self.inner.qty)
    }
    /// Bar volume, fixed point (`SCALE` per unit).
    #[getter]
    fn volume_fx(&self) -> i64 {
        self.inner.qty
    }
    /// Quote bid price, in units (shares, currency); `bid_fx` is the fixed-point integer.
    #[getter]
    fn bid(&self) -> f64 {
        units(self.inner.price)
    }
    /// Quote bid price, fixed point (`SCALE` per unit).
    #[getter]
    fn bid_fx(&self) -> i64 {
        self.inner.price
    }
    /// Quote bid size, in units (shares, currency); `bid_size_fx` is the fixed-point integer.
    #[getter]
    fn bid_size(&self) -> f64 {
        units(self.inner.qty)
    }
    /// Quote bid size, fixed point (`SCALE` per unit).
    #[getter]
    fn bid_size_fx(&self) -> i64 {
        self.inner.qty
    }
    /// Quote ask price, in units (shares, currency); `ask_fx` is the fixed-point integer.
    #[getter]
    fn ask(&self) -> f64 {
        units(self.inner.aux)
    }
    /// Quote ask price, fixed point (`SCALE` per unit).
    #[getter]
    fn ask_fx(&self) -> i64 {
        self.inner.aux
    }
    /// Quote ask size, in units (shares, currency); `ask_size_fx` is the fixed-point integer.
    #[getter]
    fn ask_size(&self) -> f64 {
        units(self.inner.order_id)
    }
    /// Quote ask size, fixed point (`SCALE` per unit).
    #[getter]
    fn ask_size_fx(&self) -> i64 {
        self.inner.order_id
    }

    /// The record's 64 bytes, in the layout of `EVENT_DTYPE`.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.as_bytes())
    }

    /// Reads a record from 64 bytes in the layout of `EVENT_DTYPE`.
    #[staticmethod]
    fn from_bytes(data: &[u8]) -> PyResult<Self> {
        let inner = Event::from_bytes(data).ok_or_else(|| {
            PyValueError::new_err(format!(
                "an event record is {} bytes, got {}",
                event::EVENT_SIZE,
                data.len()
            ))
        })?;
        Ok(PyEvent { inner })
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let py = slf.py();
        let from_bytes = slf.get_type().getattr("from_bytes")?;
        Ok((from_bytes, (slf.get().to_bytes(py),)))
    }

    fn __repr__(&self) -> String {
        let e = &self.inner;
        let kind = Kind::ALL
            .iter()
            .find(|(k, _)| *k as u8 == e.kind)
            .map_or("?", |(_, name)| name);
        format!(
            "Event({kind}, seq={}, ts={}, instrument={}, order_id={}, side={}, price={}, qty={}, aux={}, payload={}, flags={:#x})",
            e.seq, e.ts, e.instrument, e.order_id, e.side, e.price, e.qty, e.aux, e.payload, e.flags
        )
    }
}

/// Converts a float in units to fixed point, rounding half away from zero (the rule of
/// `admf.events.to_fixed`, to the bit: the scaled magnitude plus one half, truncated).
/// ValueError for NaN, an infinity, or a value past the fixed-point range.
#[pyfunction]
fn to_fixed(value: f64) -> PyResult<i64> {
    let scaled = value.abs() * event::SCALE as f64 + 0.5;
    // 2**63 is exactly representable; anything at or above it does not fit an i64.
    if !scaled.is_finite() || scaled >= 9_223_372_036_854_775_808.0 {
        return Err(PyValueError::new_err(format!(
            "cannot convert {value} to fixed point"
        )));
    }
    let whole = scaled as i64;
    Ok(if value >= 0.0 { whole } else { -whole })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEvent>()?;
    m.add_function(wrap_pyfunction!(to_fixed, m)?)?;
    m.add("EVENT_SIZE", event::EVENT_SIZE)?;
    m.add("SCALE", event::SCALE)?;
    m.add("FIELDS", event::FIELDS.to_vec())?;
    let kinds: Vec<(&str, u8)> = Kind::ALL.iter().map(|(k, n)| (*n, *k as u8)).collect();
    m.add("KINDS", kinds)?;
    m.add(
        "FLAGS",
        vec![
            ("LAST", flags::LAST),
            ("SNAPSHOT", flags::SNAPSHOT),
            ("HAS_PAYLOAD", flags::HAS_PAYLOAD),
            ("MARKET", flags::MARKET),
            ("IOC", flags::IOC),
            ("FOK", flags::FOK),
            ("POST_ONLY", flags::POST_ONLY),
            ("OWN", flags::OWN),
            ("AGGRESSOR", flags::AGGRESSOR),
            ("INPUT", flags::INPUT),
        ],
    )?;
    Ok(())
}
