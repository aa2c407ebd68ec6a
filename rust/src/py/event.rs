//! `admf._core.Event`: one event record as an immutable Python object.

use std::hash::Hash;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::event::{self, flags, Event, Kind, Side};

/// One event record (64 bytes). Prices, quantities and money are fixed-point integers with
/// `SCALE` units per whole.
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
    Ok(bytes
        .chunks_exact(event::EVENT_SIZE)
        .map(bytemuck::pod_read_unaligned)
        .collect())
}

fn check(kind: u8, side: u8) -> PyResult<()> {
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
    fn price(&self) -> i64 {
        self.inner.price
    }
    #[getter]
    fn qty(&self) -> i64 {
        self.inner.qty
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

    /// Bar open (fixed point).
    #[getter]
    fn open(&self) -> i64 {
        self.inner.aux
    }
    /// Bar high (fixed point).
    #[getter]
    fn high(&self) -> i64 {
        self.inner.order_id
    }
    /// Bar low (fixed point).
    #[getter]
    fn low(&self) -> i64 {
        self.inner.payload
    }
    /// Bar close (fixed point).
    #[getter]
    fn close(&self) -> i64 {
        self.inner.price
    }
    /// Bar volume (fixed point).
    #[getter]
    fn volume(&self) -> i64 {
        self.inner.qty
    }
    /// Quote bid price (fixed point).
    #[getter]
    fn bid(&self) -> i64 {
        self.inner.price
    }
    /// Quote bid size (fixed point).
    #[getter]
    fn bid_size(&self) -> i64 {
        self.inner.qty
    }
    /// Quote ask price (fixed point).
    #[getter]
    fn ask(&self) -> i64 {
        self.inner.aux
    }
    /// Quote ask size (fixed point).
    #[getter]
    fn ask_size(&self) -> i64 {
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

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEvent>()?;
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
