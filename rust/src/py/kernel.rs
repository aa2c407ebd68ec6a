//! `admf._core.KernelCore` and `merge`: the kernel's hot loop seen from Python.

use std::collections::BTreeMap;

use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::book::PySimVenue;
use super::event::{events_from_bytes, PyEvent};
use crate::event::{flags, Event, Kind};
use crate::kernel::KernelCore;
use crate::merge;

fn is_book_delta(kind: u8) -> bool {
    (Kind::BookAdd as u8..=Kind::BookClear as u8).contains(&kind)
}

fn merged(sources: Vec<PyReadonlyArray1<'_, u8>>) -> PyResult<Vec<Event>> {
    let owned = sources
        .iter()
        .map(|s| events_from_bytes(s.as_slice()?))
        .collect::<PyResult<Vec<_>>>()?;
    merge::merge_owned(owned).map_err(|e| PyValueError::new_err(e.to_string()))
}

fn to_array<'py>(py: Python<'py>, events: &[Event]) -> Bound<'py, PyArray1<u8>> {
    PyArray1::from_slice(py, bytemuck::cast_slice(events))
}

/// Merges time-ordered event buffers (uint8 views of EVENT_DTYPE arrays) by (ts, source,
/// row); returns the merged records as bytes.
#[pyfunction]
#[pyo3(name = "merge")]
fn merge_sources<'py>(
    py: Python<'py>,
    sources: Vec<PyReadonlyArray1<'py, u8>>,
) -> PyResult<Bound<'py, PyArray1<u8>>> {
    Ok(to_array(py, &merged(sources)?))
}

/// Sequencer, clock and output buffer of one run; iterating yields the subscribed inputs.
#[pyclass(module = "admf._core", name = "KernelCore")]
pub struct PyKernelCore {
    core: KernelCore,
    /// Simulated venues by instrument: book deltas of that instrument go to its venue in Rust.
    venues: BTreeMap<u32, Py<PySimVenue>>,
    /// Market data the venue refused: (seq of the delta, why).
    venue_errors: Vec<(u64, String)>,
}

#[pymethods]
impl PyKernelCore {
    #[new]
    #[pyo3(signature = (sources, first_seq = 1, flush_at = 65536))]
    fn new(
        sources: Vec<PyReadonlyArray1<'_, u8>>,
        first_seq: u64,
        flush_at: usize,
    ) -> PyResult<Self> {
        Ok(PyKernelCore {
            core: KernelCore::new(merged(sources)?, first_seq, flush_at),
            venues: BTreeMap::new(),
            venue_errors: Vec::new(),
        })
    }

    /// Hands inputs of `kind` to Python (True) or keeps them in Rust (False).
    #[pyo3(signature = (kind, on = true))]
    fn subscribe(&mut self, kind: u8, on: bool) {
        self.core.subscribe(kind, on);
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The next subscribed input or venue answer, sequenced; stops when the output buffer
    /// needs draining, the alarm is due, or everything is done (see `done`, `alarm_due`).
    fn __next__(&mut self, py: Python<'_>) -> Option<PyEvent> {
        let PyKernelCore {
            core,
            venues,
            venue_errors,
        } = self;
        let next = if venues.is_empty() {
            core.advance()
        } else {
            core.advance_with(|e, out| {
                if !is_book_delta(e.kind) {
                    return;
                }
                if let Some(venue) = venues.get(&e.instrument) {
                    if let Err(err) = venue.borrow_mut(py).inner.on_market(e, out) {
                        // The delta is logged already; the error becomes an ERROR event
                        // right after it, its message kept for the Python side.
                        venue_errors.push((e.seq, err.to_string()));
                        out.push(Event {
                            order_id: e.seq as i64,
                            instrument: e.instrument,
                            flags: flags::HAS_PAYLOAD,
                            ..Event::new(Kind::Error, e.ts)
                        });
                    }
                }
            })
        };
        next.map(|inner| PyEvent { inner })
    }

    /// Routes the book deltas of `instrument` to `venue` inside the kernel (no Python per
    /// delta); the venue's answers come back from iteration at their time.
    fn attach_venue(&mut self, instrument: u32, venue: Py<PySimVenue>) {
        self.venues.insert(instrument, venue);
    }

    /// Sends an order command to the venue of its instrument; its answers come back from
    /// iteration at their time.
    fn venue_submit(&mut self, py: Python<'_>, event: &Bound<'_, PyEvent>) -> PyResult<()> {
        let cmd = event.get().inner;
        let venue = self.venues.get(&cmd.instrument).ok_or_else(|| {
            PyValueError::new_err(format!(
                "no simulated venue for instrument {}",
                cmd.instrument
            ))
        })?;
        let mut out = Vec::new();
        venue
            .borrow_mut(py)
            .inner
            .submit(&cmd, &mut out)
            .map_err(|e| PyValueError::new_err(format!("order {}: {e}", cmd.order_id)))?;
        for e in out {
            self.core.schedule(e);
        }
        Ok(())
    }

    /// The venue's errors on market data so far, as (seq of the delta, message); clears them.
    fn take_venue_errors(&mut self) -> Vec<(u64, String)> {
        std::mem::take(&mut self.venue_errors)
    }

    /// Appends inputs (bytes of EVENT_DTYPE records) that arrived after the kernel started,
    /// in arrival order: how a live source feeds the kernel batch by batch.
    fn extend(&mut self, events: PyReadonlyArray1<'_, u8>) -> PyResult<()> {
        self.core.extend(&events_from_bytes(events.as_slice()?)?);
        Ok(())
    }

    /// Sequences an event made by a component; a zero ts means now. Returns it sequenced.
    fn emit(&mut self, event: &Bound<'_, PyEvent>) -> PyEvent {
        PyEvent {
            inner: self.core.emit(event.get().inner),
        }
    }

    /// Takes the events sequenced so far, as bytes of EVENT_DTYPE records.
    fn drain<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyArray1<u8>> {
        to_array(py, &self.core.drain())
    }

    /// Events sequenced per kind code (kinds never seen are left out).
    fn counts(&self) -> Vec<(u8, u64)> {
        self.core
            .counts()
            .0
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(k, &n)| (k as u8, n))
            .collect()
    }

    /// Stops iteration before the first input at or after `ts` (None: no alarm).
    #[pyo3(signature = (ts = None))]
    fn set_alarm(&mut self, ts: Option<i64>) {
        self.core.set_alarm(ts);
    }

    /// Whether the alarm is due (the next input is at or after it, or there is none).
    #[getter]
    fn alarm_due(&self) -> bool {
        self.core.alarm_due()
    }

    /// Moves the clock forward to `ts` (a timer firing between inputs).
    fn advance_clock(&mut self, ts: i64) {
        self.core.advance_clock(ts);
    }

    /// The instrument's last price (bar close, trade price, quote mid), or None.
    pub(crate) fn last_price(&self, instrument: u32) -> Option<i64> {
        self.core.last_price(instrument)
    }

    /// Events of `kind` sequenced so far.
    fn count(&self, kind: u8) -> u64 {
        self.core.count(kind)
    }

    /// Whether every input has been sequenced.
    #[getter]
    fn done(&self) -> bool {
        self.core.done()
    }

    /// The kernel clock in ns: the timestamp of the last sequenced event.
    #[getter]
    fn now(&self) -> i64 {
        self.core.now()
    }

    /// The next sequence number.
    #[getter]
    fn next_seq(&self) -> u64 {
        self.core.next_seq()
    }

    /// Inputs not yet sequenced.
    #[getter]
    fn remaining(&self) -> usize {
        self.core.remaining()
    }

    /// Timestamp of the next input, or None at the end.
    #[getter]
    fn peek_ts(&self) -> Option<i64> {
        self.core.peek_ts()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyKernelCore>()?;
    m.add_function(wrap_pyfunction!(merge_sources, m)?)?;
    Ok(())
}
