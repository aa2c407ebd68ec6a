//! `admf._core.EventQueue`: the lock-free queue seen from Python.
//!
//! Single events cross as `Event` objects; batches cross as numpy buffers (the structured
//! array viewed as bytes) or as the eleven Arrow columns, copied straight into or out of the
//! ring without a Python object per event. Every wait releases the GIL and wakes up every
//! 50 ms to let Python deliver signals (Ctrl-C interrupts a blocked `pop_wait`).

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use numpy::{PyReadonlyArray1, PyReadwriteArray1};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyMemoryError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use super::arrow;
use super::event::PyEvent;
use crate::columns::Columns;
use crate::event::{Event, EVENT_SIZE};
use crate::queue::{
    channel, CapacityError, ClosedAfter, Consumer, ConsumerGuard, PopError, Producer, PushError,
    SharedConsumer,
};

create_exception!(
    admf._core,
    QueueClosed,
    PyException,
    "The queue is closed: it accepts no more events."
);
create_exception!(
    admf._core,
    EndOfStream,
    QueueClosed,
    "The queue is closed and every event in it has been popped."
);
create_exception!(
    admf._core,
    QueueFull,
    PyException,
    "A push waited for room until its timeout and the queue stayed full."
);

const SLICE: Duration = Duration::from_millis(50);

fn closed_error() -> PyErr {
    QueueClosed::new_err("push to a closed EventQueue")
}

/// A `QueueClosed` of the tail of a batch (from event `first` on) as one of the whole batch.
fn rebase_closed(py: Python<'_>, err: PyErr, first: usize, of: usize) -> PyErr {
    if !err.is_instance_of::<QueueClosed>(py) {
        return err;
    }
    let pushed = err
        .value(py)
        .getattr("pushed")
        .and_then(|p| p.extract::<usize>())
        .unwrap_or(0);
    closed_after_error(py, first + pushed, of)
}

/// `QueueClosed` for a batch of which the first `pushed` events went in before the queue
/// closed; the exception's `pushed` attribute holds that count.
fn closed_after_error(py: Python<'_>, pushed: usize, of: usize) -> PyErr {
    let err = QueueClosed::new_err(format!(
        "push to a closed EventQueue: {pushed} of {of} events of the batch were pushed before \
         it closed (they will be popped; the rest were not pushed)"
    ));
    // An attribute on a fresh exception instance of our own class cannot fail to be set.
    let _ = err.value(py).setattr("pushed", pushed);
    err
}

pub(super) fn busy_error() -> PyErr {
    PyRuntimeError::new_err(
        "EventQueue has a single consumer, and another thread is popping from it now",
    )
}

pub(super) fn pop_result(popped: Result<Event, PopError>) -> PyResult<Option<Event>> {
    match popped {
        Ok(event) => Ok(Some(event)),
        Err(PopError::Empty) => Ok(None),
        Err(PopError::EndOfStream) => Err(end_error()),
    }
}

fn end_error() -> PyErr {
    EndOfStream::new_err("the EventQueue is closed and drained")
}

fn timeout_duration(timeout: Option<f64>) -> PyResult<Option<Duration>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_finite() && t >= 0.0 => Ok(Some(Duration::from_secs_f64(t.min(1e9)))),
        Some(t) => Err(PyValueError::new_err(format!(
            "timeout must be None or a non-negative number of seconds, got {t}"
        ))),
    }
}

/// `dst.copy_from_slice(src)` in pieces of 64 KiB. glibc's `memcpy` switches to
/// non-temporal stores for copies of megabytes, which send the data past the caches to
/// memory; a batch in the queue is read again soon (by the consumer), so it should stay cached.
fn copy_cached(dst: &mut [u8], src: &[u8]) {
    const PIECE: usize = 64 << 10;
    for (d, s) in dst.chunks_mut(PIECE).zip(src.chunks(PIECE)) {
        d.copy_from_slice(s);
    }
}

/// Runs `step` with the GIL released, in slices of at most `SLICE`, until it reports done or
/// `timeout` passes; checks for Python signals between slices.
fn wait_sliced<T: Send>(
    py: Python<'_>,
    timeout: Option<Duration>,
    mut step: impl FnMut(Duration) -> Option<T> + Send,
) -> PyResult<Option<T>> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        let slice = match deadline {
            None => SLICE,
            Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
        };
        if let Some(done) = py.detach(|| step(slice)) {
            return Ok(Some(done));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
        py.check_signals()?;
    }
}

/// A bounded lock-free multi-producer single-consumer queue of events.
#[pyclass(frozen, subclass, module = "admf._core", name = "EventQueue")]
pub struct PyEventQueue {
    producer: Producer,
    pub(super) consumer: SharedConsumer,
    /// What the consumer is doing, for `hand_off`: one of the `C_*` states.
    consumer_state: AtomicU8,
}

/// The consumer is not waiting (it runs Python with the GIL, or has not come to `wait`).
const C_BUSY: u8 = 0;
/// The consumer polls the queue in `wait`, the GIL released.
const C_POLLING: u8 = 1;
/// The consumer saw an event while polling and is taking the GIL back to apply it.
const C_TAKING: u8 = 2;
/// The consumer is parked in `wait` (a push wakes it with a system call).
const C_PARKED: u8 = 3;

/// Pauses between two looks at the queue of a polling thread: a look takes the cache line
/// the other side writes, and a pause is tens of cycles (about 65 on AMD Zen, 140 on
/// recent Intel), so a look every 8 pauses answers within a few hundred nanoseconds.
const POLL_PAUSES: usize = 8;

fn pause() {
    for _ in 0..POLL_PAUSES {
        std::hint::spin_loop();
    }
}

impl PyEventQueue {
    /// The body of `push` (see `fastcall`): pushes one event without waiting; false when full.
    pub(crate) fn push_one(&self, event: Event) -> PyResult<bool> {
        match self.producer.try_push(event) {
            Ok(()) => Ok(true),
            Err(PushError::Full(_)) => Ok(false),
            Err(PushError::Closed(_)) => Err(closed_error()),
        }
    }

    /// The body of `pop`: pops one event without waiting; None when empty.
    pub(crate) fn pop_one(&self) -> PyResult<Option<Event>> {
        pop_result(self.consumer()?.try_pop())
    }

    /// The consumer end (also the kernel's live feed's); fails while another thread pops.
    pub(crate) fn consumer(&self) -> PyResult<ConsumerGuard<'_>> {
        self.consumer.try_lock().ok_or_else(busy_error)
    }

    /// Pushes a batch of columns, written straight into the ring's records (waiting up to
    /// `timeout` for room when `wait`); returns how many were pushed.
    fn push_columns(
        &self,
        py: Python<'_>,
        cols: &Columns<'_>,
        wait: bool,
        timeout: Option<f64>,
    ) -> PyResult<usize> {
        let n = cols
            .len()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let mut done = self
            .producer
            .push_fill(n, |offset, records| cols.to_rows(offset, records))
            .map_err(|_| closed_after_error(py, 0, n))?;
        if wait && done < n {
            let first = done;
            done += self
                .push_all(py, n - done, timeout, |i| cols.get(first + i))
                .map_err(|e| rebase_closed(py, e, first, n))?;
        }
        Ok(done)
    }

    /// Pushes every event `make(i)` for `i < n`, waiting as needed; returns how many.
    fn push_all(
        &self,
        py: Python<'_>,
        n: usize,
        timeout: Option<f64>,
        make: impl Fn(usize) -> Event,
    ) -> PyResult<usize> {
        let timeout = timeout_duration(timeout)?;
        let done = self
            .producer
            .push_with(n, &make)
            .map_err(|_| closed_after_error(py, 0, n))?;
        if done == n {
            return Ok(n);
        }
        // Copy the rest out of the caller's buffers before letting other threads run.
        let rest: Vec<Event> = (done..n).map(make).collect();
        let mut sent = 0;
        let producer = &self.producer;
        let mut outcome: Result<(), ClosedAfter> = Ok(());
        wait_sliced(py, timeout, |slice| {
            match producer.push_all_with(rest.len() - sent, Some(slice), |i| rest[sent + i]) {
                Ok(k) => sent += k,
                Err(e) => {
                    sent += e.pushed;
                    outcome = Err(e);
                }
            }
            (sent == rest.len() || outcome.is_err()).then_some(())
        })?;
        outcome.map_err(|_| closed_after_error(py, done + sent, n))?;
        Ok(done + sent)
    }
}

#[pymethods]
impl PyEventQueue {
    #[new]
    #[pyo3(signature = (capacity = 65536))]
    fn new(capacity: usize) -> PyResult<Self> {
        let (producer, consumer) = channel(capacity).map_err(|e| match e {
            CapacityError::NoMemory(_) => PyMemoryError::new_err(e.to_string()),
            CapacityError::OutOfRange(_) => PyValueError::new_err(e.to_string()),
        })?;
        Ok(PyEventQueue {
            producer,
            consumer: SharedConsumer::new(consumer),
            consumer_state: AtomicU8::new(C_BUSY),
        })
    }

    /// Number of slots (the capacity asked for, rounded up to a power of two).
    #[getter]
    fn capacity(&self) -> usize {
        self.producer.capacity()
    }

    /// Whether `close()` has been called.
    #[getter]
    fn closed(&self) -> bool {
        self.producer.is_closed()
    }

    fn __len__(&self) -> usize {
        self.producer.len()
    }

    /// Pushes one event, waiting up to `timeout` seconds (forever with None) for room.
    /// Raises QueueFull when the timeout passes.
    #[pyo3(signature = (event, timeout = None))]
    fn push_wait(
        &self,
        py: Python<'_>,
        event: &Bound<'_, PyEvent>,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        let ev = event.get().inner;
        let pushed = self.push_all(py, 1, timeout, |_| ev)?;
        if pushed == 1 {
            Ok(())
        } else {
            Err(QueueFull::new_err(format!(
                "EventQueue stayed full for {:.3} s",
                timeout.unwrap_or(0.0)
            )))
        }
    }

    /// Pops one event, waiting up to `timeout` seconds (forever with None), with the GIL
    /// released. Returns None on timeout; raises EndOfStream once closed and drained.
    #[pyo3(signature = (timeout = None))]
    fn pop_wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<PyEvent>> {
        if !self.wait(py, timeout, 0.0)? && !self.producer.is_closed() {
            return Ok(None);
        }
        Ok(self.pop_one()?.map(|inner| PyEvent { inner }))
    }

    /// Waits up to `timeout` seconds (forever with None), with the GIL released, until an
    /// event can be popped or the stream has ended. Returns True when an event is ready.
    /// `spin` seconds are spent polling before the thread may park: a parked thread takes
    /// a system call to wake (tens of microseconds on a virtual machine), so a consumer that
    /// must answer fast (a live node's kernel thread) trades that much CPU for latency.
    #[pyo3(signature = (timeout = None, spin = 0.0))]
    pub(crate) fn wait(&self, py: Python<'_>, timeout: Option<f64>, spin: f64) -> PyResult<bool> {
        let timeout = timeout_duration(timeout)?;
        if !(spin.is_finite() && spin >= 0.0) {
            return Err(PyValueError::new_err(format!(
                "spin must be a number of seconds >= 0, got {spin}"
            )));
        }
        let consumer = self.consumer()?;
        let consumer: &Consumer = &consumer;
        if consumer.ready() {
            return Ok(true);
        }
        let state = &self.consumer_state;
        if spin > 0.0 {
            let spin = Duration::from_secs_f64(spin).min(timeout.unwrap_or(Duration::MAX));
            let polled = py.detach(|| {
                state.store(C_POLLING, Ordering::Release);
                let until = Instant::now() + spin;
                loop {
                    pause();
                    if consumer.ready() {
                        state.store(C_TAKING, Ordering::Release);
                        return true;
                    }
                    if consumer.at_end() || Instant::now() >= until {
                        return false;
                    }
                }
            });
            if polled {
                state.store(C_BUSY, Ordering::Release);
                return Ok(true);
            }
        }
        let ready = wait_sliced(py, timeout, |slice| {
            state.store(C_PARKED, Ordering::Release);
            let woke = consumer.wait(Some(slice));
            state.store(C_TAKING, Ordering::Release);
            if woke {
                Some(true)
            } else if consumer.at_end() {
                Some(false)
            } else {
                None
            }
        });
        state.store(C_BUSY, Ordering::Release);
        Ok(ready?.unwrap_or(false))
    }

    /// Ends a producer's burst of pushes: when the consumer is polling (`wait` with `spin`)
    /// and has events to take, releases the GIL until the consumer has applied them and
    /// waits again, for at most `max_wait` seconds; returns whether it did. A Python
    /// consumer needs the GIL to apply what it pops; a producer thread that keeps running
    /// Python after its push holds the GIL, and the consumer that asked for it sleeps until
    /// it is released and then takes a system call to wake (10-30 us on a virtual
    /// machine). Handing it over here lets the consumer go on at once. A producer pushing
    /// as fast as it can does not call it between pushes, so the consumer takes long
    /// batches.
    #[pyo3(signature = (max_wait = 0.0002))]
    fn hand_off(&self, py: Python<'_>, max_wait: f64) -> PyResult<bool> {
        if !(max_wait.is_finite() && max_wait >= 0.0) {
            return Err(PyValueError::new_err(format!(
                "max_wait must be a number of seconds >= 0, got {max_wait}"
            )));
        }
        let state = &self.consumer_state;
        let producer = &self.producer;
        match state.load(Ordering::Acquire) {
            C_POLLING if !producer.is_empty() => {}
            C_TAKING => {}
            _ => return Ok(false),
        }
        let max_wait = Duration::from_secs_f64(max_wait.min(1.0));
        Ok(py.detach(|| {
            let until = Instant::now() + max_wait;
            loop {
                pause();
                // The queue first, then the state: a consumer that emptied the queue stored
                // C_TAKING before it (release) and stores C_POLLING or C_PARKED again only
                // once it has applied what it popped and waits again.
                if producer.is_empty()
                    && matches!(state.load(Ordering::Acquire), C_POLLING | C_PARKED)
                {
                    return true;
                }
                if Instant::now() >= until {
                    return false;
                }
            }
        }))
    }

    /// Closes the queue. Producers get QueueClosed from now on; the consumer drains what is
    /// left, then gets EndOfStream. Returns False when it was closed already.
    fn close(&self) -> bool {
        self.producer.close()
    }

    /// Pushes the records of a uint8 view of an EVENT_DTYPE array (the length a multiple of
    /// 64) without waiting; returns how many were pushed (a prefix).
    fn _push_bytes(&self, data: PyReadonlyArray1<'_, u8>) -> PyResult<usize> {
        let bytes = data.as_slice()?;
        let n = bytes.len() / EVENT_SIZE;
        self.producer
            .push_fill(n, |offset, records| {
                let dst: &mut [u8] = bytemuck::cast_slice_mut(records);
                copy_cached(dst, &bytes[offset * EVENT_SIZE..][..dst.len()]);
            })
            .map_err(|_| closed_after_error(data.py(), 0, n))
    }

    /// Like `_push_bytes`, waiting up to `timeout` for room; returns how many were pushed.
    #[pyo3(signature = (data, timeout = None))]
    fn _push_bytes_wait(
        &self,
        py: Python<'_>,
        data: PyReadonlyArray1<'_, u8>,
        timeout: Option<f64>,
    ) -> PyResult<usize> {
        let bytes = data.as_slice()?;
        let n = bytes.len() / EVENT_SIZE;
        self.push_all(py, n, timeout, |i| {
            bytemuck::pod_read_unaligned(&bytes[i * EVENT_SIZE..(i + 1) * EVENT_SIZE])
        })
    }

    /// Pushes a batch given as its eleven columns (waiting up to `timeout` when `wait`);
    /// returns how many were pushed.
    #[pyo3(signature = (seq, ts, order_id, price, qty, aux, payload, instrument, kind, side, flags, wait = false, timeout = None))]
    #[allow(clippy::too_many_arguments)]
    fn _push_columns(
        &self,
        py: Python<'_>,
        seq: PyReadonlyArray1<'_, u64>,
        ts: PyReadonlyArray1<'_, i64>,
        order_id: PyReadonlyArray1<'_, i64>,
        price: PyReadonlyArray1<'_, i64>,
        qty: PyReadonlyArray1<'_, i64>,
        aux: PyReadonlyArray1<'_, i64>,
        payload: PyReadonlyArray1<'_, i64>,
        instrument: PyReadonlyArray1<'_, u32>,
        kind: PyReadonlyArray1<'_, u8>,
        side: PyReadonlyArray1<'_, u8>,
        flags: PyReadonlyArray1<'_, u16>,
        wait: bool,
        timeout: Option<f64>,
    ) -> PyResult<usize> {
        let cols = Columns {
            seq: seq.as_slice()?,
            ts: ts.as_slice()?,
            order_id: order_id.as_slice()?,
            price: price.as_slice()?,
            qty: qty.as_slice()?,
            aux: aux.as_slice()?,
            payload: payload.as_slice()?,
            instrument: instrument.as_slice()?,
            kind: kind.as_slice()?,
            side: side.as_slice()?,
            flags: flags.as_slice()?,
        };
        self.push_columns(py, &cols, wait, timeout)
    }

    /// Pushes a batch given as the capsules of the Arrow C data interface
    /// (`__arrow_c_array__`), reading the columns where the exporter keeps them (waiting up to
    /// `timeout` when `wait`); returns how many were pushed, or None when the batch is not
    /// plain `EVENT_SCHEMA` columns without nulls, aligned (the caller checks it then).
    #[pyo3(signature = (schema, array, wait = false, timeout = None))]
    fn _push_arrow(
        &self,
        py: Python<'_>,
        schema: &Bound<'_, PyAny>,
        array: &Bound<'_, PyAny>,
        wait: bool,
        timeout: Option<f64>,
    ) -> PyResult<Option<usize>> {
        match arrow::import_columns(schema, array)? {
            Some(cols) => self.push_columns(py, &cols, wait, timeout).map(Some),
            None => Ok(None),
        }
    }

    /// Pops up to len(out) // 64 records into a uint8 view of an EVENT_DTYPE array; returns
    /// how many. Raises EndOfStream when none were left and the queue is closed.
    fn _pop_into(&self, mut out: PyReadwriteArray1<'_, u8>) -> PyResult<usize> {
        let out = out.as_slice_mut()?;
        let max = out.len() / EVENT_SIZE;
        let mut k = 0;
        let popped = self.consumer()?.pop_runs(max, |run| {
            let src: &[u8] = bytemuck::cast_slice(run);
            copy_cached(&mut out[k..k + src.len()], src);
            k += src.len();
        });
        popped.map_err(|_| end_error())
    }

    /// Pops up to `max_events` events as an Arrow batch of `EVENT_SCHEMA`: the capsules
    /// `(arrow_schema, arrow_array)` of the C data interface, the columns transposed straight
    /// out of the ring into the batch's memory. Raises EndOfStream when none were left and
    /// the queue is closed.
    fn _pop_arrow(&self, py: Python<'_>, max_events: usize) -> PyResult<arrow::Capsules> {
        let mut consumer = self.consumer()?;
        arrow::export_batch(py, max_events, |cols| {
            let mut k = 0;
            consumer
                .pop_runs(max_events, |run| {
                    cols.set_rows(k, run);
                    k += run.len();
                })
                .map_err(|_| end_error())?;
            Ok(k)
        })
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<PyEventQueue>()?;
    super::fastcall::install(py)?;
    m.add("QueueClosed", py.get_type::<QueueClosed>())?;
    m.add("EndOfStream", py.get_type::<EndOfStream>())?;
    m.add("QueueFull", py.get_type::<QueueFull>())?;
    Ok(())
}
