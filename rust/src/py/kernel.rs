//! `admf._core.KernelCore` and `merge`: the kernel's hot loop seen from Python.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use numpy::{IntoPyArray, PyArray1, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple, PyType};

use super::book::PySimVenue;
use super::event::{check, events_from_bytes, PyEvent};
use super::fastcall::new_event;
use super::indicators::BarFed;
use super::orders::PyPortfolio;
use super::queue::PyEventQueue;
use crate::event::{flags, Event, Kind};
use crate::kernel::KernelCore;
use crate::merge;
use crate::orders::bar_venue::{BarVenue, FillAt};
use crate::orders::fees::{FeeModel, SlippageModel};
use crate::orders::gate::Code;
use crate::orders::path::{Engine, OrderPath};
use crate::orders::risk::{RiskEngine, RiskLimits};
use crate::orders::validation::Validation;

/// `obj.name += amount` (a handler's statistics).
fn add_to(
    obj: &Bound<'_, PyAny>,
    name: &Bound<'_, pyo3::types::PyString>,
    amount: u64,
) -> PyResult<()> {
    let before: u64 = obj.getattr(name)?.extract()?;
    obj.setattr(name, before + amount)
}

/// Inputs that move an attached venue: the market data it takes (book deltas and quotes) and
/// live `CLOCK` readings, which advance every venue's clock so that commands still in flight
/// (latency) after the last market data are answered once their time has passed. Backtests
/// have no `CLOCK` inputs, so they are not changed by it.
fn moves_venue(kind: u8) -> bool {
    kind == Kind::Clock as u8 || crate::book::SimVenue::takes(kind)
}

/// The book venues' route for the order path: an order of an instrument with a book goes to
/// its venue, whose answers are scheduled at their time.
fn book_route<'v>(
    venues: &'v BTreeMap<u32, Py<PySimVenue>>,
    py: Python<'v>,
) -> impl FnMut(&Event, &mut KernelCore) -> Option<Result<(), String>> + 'v {
    move |cmd, core| {
        let venue = venues.get(&cmd.instrument)?;
        let mut answers = Vec::new();
        let done = venue
            .borrow_mut(py)
            .inner
            .submit(cmd, &mut answers)
            .map_err(|e| format!("order {}: {e}", cmd.order_id));
        for e in answers {
            core.schedule(e);
        }
        Some(done)
    }
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

/// Events a kernel loads at a time from a source it streams.
const STREAM_CHUNK: usize = 16_384;

/// A single time-ordered source the kernel reads where it is, a chunk at a time, instead of
/// copying it whole: a backtest's 1M bars are 64 MB, and fresh memory for a copy of them is
/// mapped a page at a time, which cost more than running the bars (tens of ms on a virtual
/// machine). The chunks go into the kernel's own input buffer, whose memory is reused.
struct Streamed {
    /// The source (a uint8 view of an EVENT_DTYPE array), kept alive by this reference.
    array: Py<PyArray1<u8>>,
    /// The next event to load.
    next: usize,
    len: usize,
}

impl Streamed {
    fn left(&self) -> usize {
        self.len - self.next
    }

    /// Appends events `from..to` of the source to `core`'s inputs, read where they are.
    fn load_into(&self, core: &mut KernelCore, py: Python<'_>, from: usize, to: usize) {
        // `kernel_over` streams only a contiguous, 8-aligned buffer of whole records, and a
        // numpy buffer does not move; a readonly borrow of it only fails while Rust code holds
        // it writable, which nothing does.
        let array = self.array.bind(py).readonly();
        let bytes = array.as_slice().expect("a streamed source is contiguous");
        let events: &[Event] = bytemuck::cast_slice(bytes);
        core.extend(&events[from..to]);
    }
}

/// Loads the next chunk of `source` into `core` once `core` has no input left; true if it
/// loaded any. Keeps the invariant the Python side relies on: while a source has events
/// left, the kernel holds at least one of them (so `done`, `peek_ts` and `alarm_due` are
/// right).
fn refill(core: &mut KernelCore, source: &mut Option<Streamed>, py: Python<'_>) -> bool {
    let Some(src) = source else {
        return false;
    };
    if core.remaining() > 0 {
        return false;
    }
    let end = (src.next + STREAM_CHUNK).min(src.len);
    src.load_into(core, py, src.next, end);
    src.next = end;
    if src.left() == 0 {
        *source = None;
    }
    true
}

/// The kernel over `sources`: one time-ordered source is streamed (see `Streamed`), several
/// are merged into the kernel's own buffer.
fn kernel_over(
    sources: Vec<PyReadonlyArray1<'_, u8>>,
    first_seq: u64,
    flush_at: usize,
) -> PyResult<(KernelCore, Option<Streamed>)> {
    // Streamed when the one source's buffer reads as events in place (contiguous, 8-aligned,
    // whole records); anything else is copied, and checked, by `merged`.
    let in_place = match sources.as_slice() {
        [only] => only
            .as_slice()
            .ok()
            .and_then(|bytes| bytemuck::try_cast_slice::<u8, Event>(bytes).ok())
            .map(|all| (only, all)),
        _ => None,
    };
    let Some((only, all)) = in_place else {
        return Ok((KernelCore::new(merged(sources)?, first_seq, flush_at), None));
    };
    merge::check_sorted(&[all]).map_err(|e| PyValueError::new_err(e.to_string()))?;
    let first = all.len().min(STREAM_CHUNK);
    let core = KernelCore::new(all[..first].to_vec(), first_seq, flush_at);
    let source = (first < all.len()).then(|| Streamed {
        array: only.as_unbound().clone_ref(only.py()),
        next: first,
        len: all.len(),
    });
    Ok((core, source))
}

/// Sequencer, clock and output buffer of one run; iterating yields the subscribed inputs.
#[pyclass(module = "admf._core", name = "KernelCore")]
pub struct PyKernelCore {
    core: KernelCore,
    /// Simulated venues by instrument: book deltas of that instrument go to its venue in Rust.
    venues: BTreeMap<u32, Py<PySimVenue>>,
    /// Market data the venue refused: (seq of the delta, why).
    venue_errors: Vec<(u64, String)>,
    /// The order path in Rust, with the portfolio it folds fills into (see `attach_orders`).
    orders: Option<(OrderPath, Py<PyPortfolio>)>,
    /// Kinds some Python handler subscribed to.
    notify: [bool; 256],
    /// The next order id of the run: the strategies' orders and the live gate's take theirs
    /// from here.
    order_ids: i64,
    /// Sequenced events waiting to be handed to Python, in seq order.
    ready: VecDeque<Event>,
    /// The Python kernel's queue of events to dispatch after the current handler (a
    /// `collections.deque`): what a command caused and Python subscribed to goes there.
    pending: Option<Py<PyAny>>,
    /// Indicators fed every bar of their instrument (see `feed_indicator`).
    fed: Vec<(u32, BarFed)>,
    /// The rest of a streamed source, not yet loaded into `core`.
    source: Option<Streamed>,
}

impl PyKernelCore {
    /// Loads what is left of a streamed source: it comes before anything appended later.
    fn load_source_rest(&mut self, py: Python<'_>) {
        if let Some(src) = self.source.take() {
            src.load_into(&mut self.core, py, src.next, src.len);
        }
    }

    /// Whether the order path needs events of `kind` to stop in Rust even when no Python
    /// handler wants them (bars for the venue, fills for the portfolio, reports and the
    /// session's records for a live gate).
    fn needs_in_rust(&self, kind: u8) -> bool {
        self.orders
            .as_ref()
            .is_some_and(|(path, _)| path.applies(kind))
            || (!self.fed.is_empty() && kind == Kind::Bar as u8)
    }

    /// Sequences `cmd` and runs it down the order path; the events Python subscribed to go
    /// to the pending queue.
    fn run_command(&mut self, py: Python<'_>, cmd: Event) -> PyResult<()> {
        let PyKernelCore {
            core,
            venues,
            orders,
            notify,
            order_ids,
            ..
        } = self;
        let Some((path, portfolio)) = orders else {
            return Err(PyValueError::new_err(
                "no order path attached to this kernel",
            ));
        };
        let mut portfolio = portfolio.borrow_mut(py);
        let mut out = Vec::new();
        let mut engine = Engine {
            core,
            portfolio: &mut portfolio.inner,
            notify,
            out: &mut out,
            order_ids,
        };
        path.command(cmd, &mut engine, &mut book_route(venues, py));
        if !out.is_empty() {
            if let Some(pending) = &self.pending {
                let pending = pending.bind(py);
                for inner in out {
                    pending.call_method1("append", (PyEvent { inner },))?;
                }
            }
        }
        Ok(())
    }

    /// The next subscribed input, venue answer or order path event, sequenced.
    fn next_event(&mut self, py: Python<'_>) -> Option<Event> {
        let PyKernelCore {
            core,
            venues,
            venue_errors,
            orders,
            notify,
            ready,
            fed,
            order_ids,
            source,
            ..
        } = self;
        loop {
            if let Some(e) = ready.pop_front() {
                return Some(e);
            }
            let e = if venues.is_empty() {
                core.advance()
            } else {
                core.advance_with(|e, out| {
                    if !moves_venue(e.kind) {
                        return;
                    }
                    if e.kind == Kind::Clock as u8 {
                        // By instrument (a BTreeMap): the answers come out in a fixed order.
                        for venue in venues.values() {
                            venue.borrow_mut(py).inner.advance(e.ts, out);
                        }
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
            let Some(e) = e else {
                // The loaded inputs ran out: the next chunk of a streamed source, if any.
                if refill(core, source, py) {
                    continue;
                }
                return None;
            };
            if e.kind == Kind::Bar as u8 {
                for (instrument, indicator) in fed.iter() {
                    if *instrument == e.instrument {
                        indicator.update(py, &e);
                    }
                }
            }
            if let Some((path, portfolio)) = orders {
                if path.acts_on(&e) {
                    // What the path does about the event comes before anyone sees it: the
                    // venue's fills on a bar, the orders a live record (FLATTEN) makes.
                    let mut portfolio = portfolio.borrow_mut(py);
                    let mut out = Vec::new();
                    let mut engine = Engine {
                        core,
                        portfolio: &mut portfolio.inner,
                        notify,
                        out: &mut out,
                        order_ids,
                    };
                    path.apply(&e, &mut engine, &mut book_route(venues, py));
                    ready.extend(out);
                }
            }
            if notify[e.kind as usize] {
                ready.push_back(e);
            }
        }
    }
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
        let (core, source) = kernel_over(sources, first_seq, flush_at)?;
        Ok(PyKernelCore {
            core,
            source,
            venues: BTreeMap::new(),
            venue_errors: Vec::new(),
            orders: None,
            notify: [false; 256],
            order_ids: 1,
            ready: VecDeque::new(),
            pending: None,
            fed: Vec::new(),
        })
    }

    /// Feeds `indicator` (an `admf.indicators` object) every bar of `instrument` from now on,
    /// in Rust, before any handler sees the bar; in the order the indicators were given.
    fn feed_indicator(&mut self, instrument: u32, indicator: &Bound<'_, PyAny>) -> PyResult<()> {
        self.fed.push((instrument, BarFed::of(indicator)?));
        self.core.subscribe(Kind::Bar as u8, true);
        Ok(())
    }

    /// Hands events of `kind` to Python (True) or keeps them in Rust (False).
    #[pyo3(signature = (kind, on = true))]
    fn subscribe(&mut self, kind: u8, on: bool) {
        self.notify[kind as usize] = on;
        self.core.subscribe(kind, on || self.needs_in_rust(kind));
    }

    /// Runs order commands through the order path in Rust (validation, risk, the bar venue,
    /// or the book venue of an instrument with one), folding every fill into `portfolio`.
    /// Amounts are fixed point; the limits' None means no limit. What a command causes that
    /// Python subscribed to is appended to `pending` (a deque).
    #[pyo3(signature = (portfolio, instruments, pending, *, fill_at, fee_rate, fee_per_unit_fx, fee_minimum_fx, slippage_bps, lot_fx, max_order_qty_fx=None, max_notional_fx=None, max_position_fx=None, max_orders_per_second=None, daily_loss_limit_fx=None, kill_switch=false))]
    #[allow(clippy::too_many_arguments)]
    fn attach_orders(
        &mut self,
        portfolio: Py<PyPortfolio>,
        instruments: Vec<u32>,
        pending: Py<PyAny>,
        fill_at: &str,
        fee_rate: f64,
        fee_per_unit_fx: i64,
        fee_minimum_fx: i64,
        slippage_bps: f64,
        lot_fx: i64,
        max_order_qty_fx: Option<i64>,
        max_notional_fx: Option<i64>,
        max_position_fx: Option<i64>,
        max_orders_per_second: Option<u32>,
        daily_loss_limit_fx: Option<i64>,
        kill_switch: bool,
    ) -> PyResult<()> {
        let fill_at = match fill_at {
            "next_open" => FillAt::NextOpen,
            "close" => FillAt::Close,
            other => {
                return Err(PyValueError::new_err(format!(
                    "fill_at must be one of next_open, close, got {other:?}"
                )))
            }
        };
        let venue = BarVenue::new(
            fill_at,
            FeeModel {
                rate: fee_rate,
                per_unit: fee_per_unit_fx,
                minimum: fee_minimum_fx,
            },
            SlippageModel { bps: slippage_bps },
            lot_fx,
        );
        let risk = RiskEngine::new(RiskLimits {
            max_order_qty: max_order_qty_fx,
            max_notional: max_notional_fx,
            max_position: max_position_fx,
            max_orders_per_second,
            daily_loss_limit: daily_loss_limit_fx,
            kill_switch,
        });
        let validation = Validation {
            instruments: instruments.into_iter().collect(),
        };
        self.orders = Some((OrderPath::new(validation, risk, venue), portfolio));
        self.pending = Some(pending);
        for kind in [Kind::Bar as u8, Kind::Fill as u8] {
            self.core.subscribe(kind, true);
        }
        Ok(())
    }

    /// Makes the order path a live node's (after `attach_orders`): the live gate after risk,
    /// reading the session's records (`admf.live.codes`), and the commands that pass it
    /// collected for an `external` venue (`take_commands`) instead of going to the simulated
    /// venues. An external venue is reconciled before new exposure goes out.
    #[pyo3(signature = (*, external))]
    fn attach_live(&mut self, external: bool) -> PyResult<()> {
        let Some((path, _)) = &mut self.orders else {
            return Err(PyValueError::new_err(
                "attach_orders before attach_live: the live gate is a stage of the order path",
            ));
        };
        path.go_live(external);
        for kind in [
            Kind::Custom,
            Kind::OrderRejected,
            Kind::OrderCanceled,
            Kind::OrderExpired,
        ] {
            self.core.subscribe(kind as u8, true);
        }
        Ok(())
    }

    /// The commands for the external venue that passed the order path since the last call,
    /// in seq order (sequenced: they are in this flush's events).
    fn take_commands(&mut self) -> Vec<PyEvent> {
        match &mut self.orders {
            Some((path, _)) => path
                .take_commands()
                .into_iter()
                .map(|inner| PyEvent { inner })
                .collect(),
            None => Vec::new(),
        }
    }

    /// The seq of the last `STOP` record the live gate applied, or None.
    #[getter]
    fn stop_seq(&self) -> Option<u64> {
        self.orders
            .as_ref()
            .and_then(|(path, _)| path.gate.as_ref())
            .and_then(|gate| gate.stop_seq)
    }

    /// A fresh order id of the run.
    fn next_order_id(&mut self) -> i64 {
        let id = self.order_ids;
        self.order_ids += 1;
        id
    }

    /// Sequences an order command (submit, cancel, modify) and runs it down the order path
    /// at once; the events it caused that Python handlers subscribed to (the command
    /// included) are appended to the pending queue, in seq order.
    fn command(&mut self, py: Python<'_>, event: &Bound<'_, PyEvent>) -> PyResult<()> {
        self.run_command(py, event.get().inner)
    }

    /// `command` of an order submit given by its fields (fixed point; price 0 for a market
    /// order, qty 0 with a value to size at the fill): the strategy's hot path, with no
    /// `Event` built in Python.
    #[allow(clippy::too_many_arguments)]
    fn submit(
        &mut self,
        py: Python<'_>,
        instrument: u32,
        order_id: i64,
        side: u8,
        price: i64,
        qty: i64,
        value: i64,
        flags: u16,
    ) -> PyResult<()> {
        check(Kind::OrderSubmit as u8, side)?;
        let cmd = Event {
            instrument,
            order_id,
            side,
            price,
            qty,
            aux: value,
            flags,
            ..Event::new(Kind::OrderSubmit, 0)
        };
        self.run_command(py, cmd)
    }

    /// The reasons in words of the order path's events flagged HAS_PAYLOAD so far, as
    /// (seq, text); clears them.
    fn take_payloads(&mut self) -> Vec<(u64, String)> {
        match &mut self.orders {
            Some((path, _)) => std::mem::take(&mut path.payloads),
            None => Vec::new(),
        }
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The next subscribed input or venue answer, sequenced; stops when the output buffer
    /// needs draining, the alarm is due, or everything is done (see `done`, `alarm_due`).
    fn __next__(&mut self, py: Python<'_>) -> Option<PyEvent> {
        self.next_event(py).map(|inner| PyEvent { inner })
    }

    /// Hands every subscribed event to its handlers until the output buffer needs draining,
    /// the alarm is due or everything is done; returns the number of events counted so far.
    /// The loop of `Kernel.run` in Rust: `handlers[kind]` is a tuple of (callable, stats);
    /// after each handler, `drain()` runs if `pending` is not empty; for one event in
    /// `sample_every`, each handler call is timed into its stats (`sampled_ns`,
    /// `sampled_calls`); a handler's exception goes to `error(stats, event, exc)`, except
    /// `stop` (an exception class), which ends the loop.
    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        slf: &Bound<'_, Self>,
        handlers: &Bound<'_, PyList>,
        pending: &Bound<'_, PyAny>,
        drain: &Bound<'_, PyAny>,
        error: &Bound<'_, PyAny>,
        stop: &Bound<'_, PyType>,
        sample_every: u64,
        count: u64,
    ) -> PyResult<u64> {
        let py = slf.py();
        let mut n = count;
        loop {
            let next = slf.borrow_mut().next_event(py);
            let Some(inner) = next else {
                return Ok(n);
            };
            n += 1;
            // The sample is timed here, not in a Python wrapper: the clock is read around
            // each handler call of one event in `sample_every` and nothing else changes.
            let timed = n.is_multiple_of(sample_every);
            let event = new_event(py, inner)?.into_bound(py);
            let chosen = handlers.get_item(inner.kind as usize)?;
            let chosen = chosen.cast::<PyTuple>()?;
            for pair in chosen.iter_borrowed() {
                let pair = pair.cast::<PyTuple>()?;
                let handler = pair.get_borrowed_item(0)?;
                let start = timed.then(Instant::now);
                if let Err(err) = handler.call1((&event,)) {
                    // Only an `Exception` is the handler's error (an ERROR event); Ctrl-C
                    // (KeyboardInterrupt), SystemExit and a stop end the run, as in Python.
                    if err.is_instance(py, stop) || !err.is_instance_of::<PyException>(py) {
                        return Err(err);
                    }
                    error.call1((pair.get_item(1)?, &event, err.value(py)))?;
                }
                if let Some(start) = start {
                    let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    let stats = pair.get_borrowed_item(1)?;
                    add_to(&stats, intern!(py, "sampled_ns"), ns)?;
                    add_to(&stats, intern!(py, "sampled_calls"), 1)?;
                }
                if pending.len()? > 0 {
                    drain.call0()?;
                }
            }
        }
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
        self.load_source_rest(events.py());
        self.core.extend(&events_from_bytes(events.as_slice()?)?);
        Ok(())
    }

    /// The live node's feed: waits like `EventQueue.pop_batch(max_events, timeout, spin)`
    /// (the core is not borrowed meanwhile) and appends what it pops as inputs, straight from
    /// the queue's ring: no numpy array between the queue and the kernel on the path from a
    /// tick to its order. Returns the `payload` slots of the popped events flagged
    /// HAS_PAYLOAD (the keys of their payloads in the producers' table), or None once the
    /// queue is closed and drained.
    #[pyo3(signature = (queue, max_events, timeout, spin))]
    fn extend_from_queue(
        slf: &Bound<'_, Self>,
        queue: &Bound<'_, PyEventQueue>,
        max_events: usize,
        timeout: Option<f64>,
        spin: f64,
    ) -> PyResult<Option<Vec<i64>>> {
        let py = slf.py();
        let queue = queue.get();
        loop {
            queue.wait(py, timeout, spin)?;
            let mut this = slf.borrow_mut();
            let this = &mut *this;
            this.load_source_rest(py);
            let mut keys = Vec::new();
            let popped = queue.consumer()?.pop_runs(max_events, |run| {
                keys.extend(
                    run.iter()
                        .filter(|e| e.flags & flags::HAS_PAYLOAD != 0)
                        .map(|e| e.payload),
                );
                this.core.extend(run);
            });
            match popped {
                Ok(0) => continue,
                Ok(_) => return Ok(Some(keys)),
                Err(_) => return Ok(None),
            }
        }
    }

    /// Sequences an event made by a component; a zero ts means now. Returns it sequenced.
    fn emit(&mut self, event: &Bound<'_, PyEvent>) -> PyEvent {
        PyEvent {
            inner: self.core.emit(event.get().inner),
        }
    }

    /// Takes the events sequenced so far, as EVENT_DTYPE records in a uint64 array (8 words
    /// a record; `.view(EVENT_DTYPE)` reads them). The buffer is handed over, not copied.
    fn drain<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        let words: Vec<u64> = bytemuck::allocation::cast_vec(self.core.drain());
        words.into_pyarray(py)
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
        self.source.is_none() && self.core.done()
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
        self.core.remaining() + self.source.as_ref().map_or(0, Streamed::left)
    }

    /// Timestamp of the next input, or None at the end.
    #[getter]
    fn peek_ts(&self) -> Option<i64> {
        self.core.peek_ts()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyKernelCore>()?;
    let codes: Vec<(&str, i64)> = Code::ALL.iter().map(|(c, n)| (*n, *c as i64)).collect();
    m.add("LIVE_GATE_CODES", codes)?;
    m.add_function(wrap_pyfunction!(merge_sources, m)?)?;
    Ok(())
}
