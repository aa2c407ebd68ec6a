//! A bounded lock-free multi-producer single-consumer ring of [`Event`] records.
//!
//! This is the only module of the pure core with `unsafe` code; each block says why it is sound.
//! (The bindings have one more: the CPython entry points of `push` and `pop` in `py/fastcall.rs`.)
//!
//! # Why our own ring
//! crossbeam's `ArrayQueue` is the well-kept alternative, but it is multi-consumer and moves one
//! element per compare-and-swap. The engine's producers hand over whole batches (a numpy
//! array, an Arrow record batch, a venue packet) and there is exactly one consumer, the
//! kernel. A producer here claims a run of `n` slots with one CAS and publishes each slot with
//! a release store; the consumer drains a run with acquire loads and frees it with one store.
//! That is the multi-producer sequencer of the LMAX Disruptor reduced to one consumer.
//!
//! # Protocol
//! Positions grow forever (`u64`); slot `p & mask` holds position `p`. A slot is a record in
//! one array and its stamp in another: records sit 64-byte aligned, one to a cache line, and a
//! claimed or readable run of slots is at most two contiguous pieces of the record array, so
//! batches move in and out with plain memory copies (or a transposition straight into place,
//! for Arrow's columns).
//! - `tail` is the next position to claim. Producers advance it by CAS, and only while
//!   `tail + n <= head + capacity`, so a claimed slot's previous occupant (`p - capacity`) has
//!   already been read. The top bit of `tail` is the closed flag: once set, claims fail and the
//!   tail is frozen, so the consumer knows exactly how many events it still has to drain.
//! - A producer writes the record into its slot, then stores `stamp = p + 1` (release).
//! - `head` is the next position to read; only the consumer writes it. It reads slot `p` once
//!   `stamp == p + 1` (acquire), and after a run stores `head = p + n` (release), which hands
//!   the slots back to producers.
//!
//! Producers of one thread never reorder: each claim starts where its previous claim ended or
//! later, and the consumer reads positions in order. Waiting (consumer on empty, producers on
//! full) parks on a condition variable; the waiter announces itself in an atomic, and the
//! other side notifies only when someone waits, so the fast path never takes the lock. The
//! consumer's wake-up is exact (a sequentially consistent handshake that costs nothing extra on
//! the producers' CAS); a producer waiting for room also looks again every millisecond, which
//! lets the consumer hand slots back with a plain release store.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::event::Event;

/// Top bit of `tail`: the queue is closed.
const CLOSED: u64 = 1 << 63;

/// Checks (spinning, then yielding) before a waiting consumer parks.
const SPIN_ROUNDS: u32 = 64;

/// Spin-loop hints before each of a waiting consumer's spinning checks (about 0.8 us on the
/// AMD EPYC the figures come from, where one takes 26 ns).
const SPIN_PAUSES: u32 = 32;

/// How many positions ahead a producer prefetches the record it will write.
const PREFETCH_AHEAD: u64 = 8;

/// Longest a producer waiting for room sleeps before it looks at the queue again.
const ROOM_RECHECK: Duration = Duration::from_millis(1);

/// Largest capacity a queue may have.
pub const MAX_CAPACITY: usize = 1 << 30;

/// Why a push did not take the event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushError {
    /// No free slot (back-pressure); the event is handed back.
    Full(Event),
    /// The queue was closed; it accepts nothing more.
    Closed(Event),
}

/// The queue was closed; it accepts nothing more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closed;

/// The queue was closed while a batch was going in: the first `pushed` events of it are in
/// the queue (and will be popped), the rest are not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClosedAfter {
    pub pushed: usize,
}

/// Why a pop returned no event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PopError {
    /// Nothing to read now (or the wait timed out); producers may still push.
    Empty,
    /// The queue is closed and drained: end of stream.
    EndOfStream,
}

/// The capacity asked for is not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapacityError {
    /// Outside 1 ..= [`MAX_CAPACITY`].
    OutOfRange(usize),
    /// In range, but the memory for that many slots (rounded up to a power of two) could not
    /// be allocated.
    NoMemory(usize),
}

impl std::fmt::Display for CapacityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            CapacityError::OutOfRange(n) => write!(
                f,
                "capacity must be between 1 and {MAX_CAPACITY} events, got {n}"
            ),
            CapacityError::NoMemory(n) => write!(
                f,
                "cannot allocate an EventQueue of {n} events ({} bytes)",
                n.saturating_mul(std::mem::size_of::<Record>() + 8)
            ),
        }
    }
}

/// `n` zero-filled values of `T` in memory from the allocator's zeroed path.
///
/// Why not `Box<[T]>`: a zeroed allocation aligned beyond 16 bytes (a `Record` is aligned to
/// its cache line) is served by `posix_memalign` plus a `memset`, which commits every page at
/// once: a queue of 2^24 events would take its gigabyte up front. At an alignment of 16,
/// `calloc` hands out fresh `mmap` pages for a large ring, committed only when first written;
/// so this asks for 16-byte alignment and `align_of::<T>()` bytes more, and starts the slice
/// at the first aligned address. An allocation that fails is an error instead of an abort.
struct ZeroedSlice<T> {
    base: std::ptr::NonNull<u8>,
    layout: std::alloc::Layout,
    ptr: std::ptr::NonNull<T>,
    len: usize,
}

impl<T: AllZeroValid> ZeroedSlice<T> {
    fn new(len: usize) -> Option<ZeroedSlice<T>> {
        let bytes = std::mem::size_of::<T>().checked_mul(len)?;
        let layout =
            std::alloc::Layout::from_size_align(bytes.checked_add(std::mem::align_of::<T>())?, 16)
                .ok()?;
        // SAFETY: the layout has a non-zero size (at least `align_of::<T>()`).
        let base = std::ptr::NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })?;
        let offset = base.as_ptr().align_offset(std::mem::align_of::<T>());
        if offset > std::mem::align_of::<T>() {
            // SAFETY: `base` was allocated above with `layout`.
            unsafe { std::alloc::dealloc(base.as_ptr(), layout) };
            return None;
        }
        // SAFETY: `offset <= align_of::<T>()`, so `base + offset` and the `bytes` after it lie
        // inside the allocation of `bytes + align_of::<T>()` bytes.
        let ptr = unsafe { base.as_ptr().add(offset) }.cast::<T>();
        Some(ZeroedSlice {
            base,
            layout,
            ptr: std::ptr::NonNull::new(ptr)?,
            len,
        })
    }
}

impl<T> std::ops::Deref for ZeroedSlice<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` is aligned for `T` and points at `len` values of `T` inside the live
        // allocation, all valid since they were zeroed (`T: AllZeroValid`, checked by `new`,
        // the only constructor) and are only ever changed through `&T` (atomics, cells).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> Drop for ZeroedSlice<T> {
    fn drop(&mut self) {
        // The values need no drop (all-zero-valid types here are plain data and atomics).
        // SAFETY: `base` was allocated with `layout` in `new` and is freed only here.
        unsafe { std::alloc::dealloc(self.base.as_ptr(), self.layout) };
    }
}

// SAFETY: a `ZeroedSlice<T>` owns its values like a `Box<[T]>` does; it is Send and Sync
// exactly when `T` is.
unsafe impl<T: Send> Send for ZeroedSlice<T> {}
// SAFETY: as above; shared access hands out only `&[T]`.
unsafe impl<T: Sync> Sync for ZeroedSlice<T> {}

impl std::error::Error for CapacityError {}

/// One record of the ring, on a cache line of its own.
#[repr(C, align(64))]
struct Record(UnsafeCell<Event>);

const _: () = assert!(std::mem::size_of::<Record>() == std::mem::size_of::<Event>());

/// Types whose all-zero bit pattern is a valid value.
///
/// # Safety
/// An implementor must be valid when every byte is zero.
#[allow(dead_code)] // only ever a bound (of `ZeroedSlice::new`), which the lint does not count
unsafe trait AllZeroValid {}

// SAFETY: a `Record` is an `UnsafeCell<Event>` (`repr(C)`, no padding beyond the event's own
// 64 bytes), and an all-zero `Event` is valid (`Event: bytemuck::Zeroable`).
unsafe impl AllZeroValid for Record {}
// SAFETY: an `AtomicU64` has the representation of a `u64`; zero is 0.
unsafe impl AllZeroValid for AtomicU64 {}

struct Ring {
    tail: CachePadded<AtomicU64>,
    head: CachePadded<AtomicU64>,
    /// A recent value of `head`, read by producers instead of `head` itself while it shows
    /// room: `head` is written by the consumer after every run, and reading it on every push
    /// would bounce its cache line between the cores. A stale value only understates the room.
    head_cache: CachePadded<AtomicU64>,
    /// Set once the queue is closed (after the CLOSED bit of `tail`): lets the consumer check
    /// for the end without reading `tail`, the producers' busiest line.
    closed_hint: AtomicBool,
    records: ZeroedSlice<Record>,
    /// `stamps[i] == p + 1` once position `p` (with `p & mask == i`) is written.
    stamps: ZeroedSlice<AtomicU64>,
    mask: u64,
    capacity: u64,
    consumer_waiting: AtomicBool,
    producers_waiting: AtomicUsize,
    lock: Mutex<()>,
    not_empty: Condvar,
    not_full: Condvar,
}

// SAFETY: the only non-Sync field is the `UnsafeCell` of each record. The protocol in the
// module documentation gives every slot one writer at a time (the producer that claimed its
// position) and lets the single consumer read it only after the writer's release store of the
// stamp, and lets no producer claim it again before the consumer's release store of `head`.
// So no two threads ever access one cell concurrently.
unsafe impl Sync for Ring {}
// SAFETY: `Event` is plain data; moving the ring between threads moves only owned memory and
// atomics.
unsafe impl Send for Ring {}

impl Ring {
    fn new(capacity: usize) -> Result<Ring, CapacityError> {
        if capacity == 0 || capacity > MAX_CAPACITY {
            return Err(CapacityError::OutOfRange(capacity));
        }
        let capacity = capacity.next_power_of_two();
        let records = ZeroedSlice::new(capacity).ok_or(CapacityError::NoMemory(capacity))?;
        let stamps = ZeroedSlice::new(capacity).ok_or(CapacityError::NoMemory(capacity))?;
        Ok(Ring {
            tail: CachePadded::new(AtomicU64::new(0)),
            head: CachePadded::new(AtomicU64::new(0)),
            head_cache: CachePadded::new(AtomicU64::new(0)),
            closed_hint: AtomicBool::new(false),
            records,
            stamps,
            mask: capacity as u64 - 1,
            capacity: capacity as u64,
            consumer_waiting: AtomicBool::new(false),
            producers_waiting: AtomicUsize::new(0),
            lock: Mutex::new(()),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
        })
    }

    fn guard(&self) -> MutexGuard<'_, ()> {
        // The mutex guards no data, so a poisoned lock carries no broken invariant.
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stamp(&self, pos: u64) -> &AtomicU64 {
        &self.stamps[(pos & self.mask) as usize]
    }

    /// The positions `start..start + n` as at most two runs of slot indices, in order.
    fn runs(&self, start: u64, n: u64) -> [std::ops::Range<usize>; 2] {
        let first = (start & self.mask) as usize;
        let len = n as usize;
        let cap = self.capacity as usize;
        if first + len <= cap {
            [first..first + len, 0..0]
        } else {
            [first..cap, 0..first + len - cap]
        }
    }

    /// The records of slot indices `run`, to write.
    ///
    /// # Safety
    /// The caller must have claimed every position of `run` and not yet published it (so it
    /// is the only thread touching those records), and must not keep the slice beyond that.
    #[allow(clippy::mut_from_ref)]
    unsafe fn records_mut(&self, run: std::ops::Range<usize>) -> &mut [Event] {
        let records = &self.records[run];
        // SAFETY: `Record` is `repr(C)` around an `UnsafeCell<Event>` of the same size, so the
        // records of a run are `run.len()` contiguous events; the pointer comes from
        // `UnsafeCell::raw_get`, which permits writing through it; exclusivity is the caller's
        // promise above.
        unsafe {
            std::slice::from_raw_parts_mut(
                UnsafeCell::raw_get(records.as_ptr().cast::<UnsafeCell<Event>>()),
                records.len(),
            )
        }
    }

    /// The records of slot indices `run`, to read.
    ///
    /// # Safety
    /// Every position of `run` must be published (its stamp read with acquire ordering) and
    /// not yet handed back to producers by a store of `head` past it.
    unsafe fn records(&self, run: std::ops::Range<usize>) -> &[Event] {
        let records = &self.records[run];
        // SAFETY: the layout argument of `records_mut`; no producer writes these records
        // until the consumer moves `head` past them, which it does only after this borrow.
        unsafe {
            std::slice::from_raw_parts(
                UnsafeCell::raw_get(records.as_ptr().cast::<UnsafeCell<Event>>()),
                records.len(),
            )
        }
    }

    /// Claims up to `want` positions; returns the first and how many (0 when full).
    fn claim(&self, want: u64) -> Result<(u64, u64), Closed> {
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            if tail & CLOSED != 0 {
                return Err(Closed);
            }
            let mut head = self.head_cache.load(Ordering::Acquire);
            if head > tail {
                // `tail` is stale: the consumer has already read past it.
                tail = self.tail.load(Ordering::Relaxed);
                continue;
            }
            if tail - head + want > self.capacity {
                // Looks short of room: look at the consumer's real position.
                head = self.head.load(Ordering::Acquire);
                self.head_cache.fetch_max(head, Ordering::AcqRel);
                if head > tail {
                    tail = self.tail.load(Ordering::Relaxed);
                    continue;
                }
            }
            let n = want.min(self.capacity - (tail - head));
            if n == 0 {
                return Ok((tail, 0));
            }
            // SeqCst: this RMW and the load in `wake_consumer` form the producer's half of
            // the handshake with `wait_readable` (see there).
            match self.tail.compare_exchange_weak(
                tail,
                tail + n,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok((tail, n)),
                Err(current) => tail = current,
            }
        }
    }

    /// Claims up to `want` slots and fills them in order: `fill(offset, records)` is called
    /// once or twice (when the run wraps around the ring) with the records of the run from
    /// `offset` on, to be written in full. Returns how many were claimed.
    fn push_fill(
        &self,
        want: usize,
        mut fill: impl FnMut(usize, &mut [Event]),
    ) -> Result<usize, Closed> {
        let (start, n) = self.claim(want as u64)?;
        if n == 0 {
            return Ok(0);
        }
        let mut offset = 0;
        for run in self.runs(start, n) {
            let len = run.len();
            if len > 0 {
                // SAFETY: this producer claimed positions `start..start + n` above and has
                // not published them, so it is their records' only user (see `Sync`).
                fill(offset, unsafe { self.records_mut(run) });
                offset += len;
            }
        }
        for pos in start..start + n {
            self.stamp(pos).store(pos + 1, Ordering::Release);
        }
        self.wake_consumer();
        self.prefetch_for_write(start + n + PREFETCH_AHEAD);
        Ok(n as usize)
    }

    /// Asks for the record (and stamp) of position `pos` in a writable state ahead of time.
    /// The consumer read that line last, so the write that claims it back has to wait for
    /// the other core; without the hint, the next claim's compare-and-swap (a full barrier)
    /// waits for it, and a producer pushing one event at a time runs at the speed of that
    /// round trip.
    #[inline(always)]
    fn prefetch_for_write(&self, pos: u64) {
        #[cfg(target_arch = "x86_64")]
        {
            let index = (pos & self.mask) as usize;
            let record = self.records[index].0.get().cast_const();
            let stamp = self.stamps[index].as_ptr().cast_const();
            // SAFETY: PREFETCHW only hints the cache; it reads and writes nothing, cannot
            // fault (both addresses are inside live allocations anyway), and is a no-op on
            // processors that lack it. It touches no registers or flags besides its operand.
            unsafe {
                std::arch::asm!(
                    "prefetchw [{0}]",
                    "prefetchw [{1}]",
                    in(reg) record,
                    in(reg) stamp,
                    options(nostack, preserves_flags, readonly)
                );
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = pos;
    }

    /// Claims up to `want` slots and fills slot `i` of the run with `make(i)`.
    fn push_with(
        &self,
        want: usize,
        mut make: impl FnMut(usize) -> Event,
    ) -> Result<usize, Closed> {
        self.push_fill(want, |offset, records| {
            for (i, record) in records.iter_mut().enumerate() {
                *record = make(offset + i);
            }
        })
    }

    fn wake_consumer(&self) {
        // Our claim of `tail` and this load are SeqCst, as are the consumer's store of its
        // flag and its load of `tail` in `wait_readable`. In the single total order of SeqCst
        // operations either the consumer's load sees our claim (and it does not sleep), or our
        // load sees its flag and we notify under the lock it waits with. No fence on the fast
        // path: on x86 the CAS is the barrier and this is a plain load.
        if self.consumer_waiting.load(Ordering::SeqCst) {
            let _guard = self.guard();
            self.not_empty.notify_one();
        }
    }

    fn wake_producers(&self) {
        // Not a strict handshake, on purpose: the consumer stores `head` with release ordering
        // (a plain store on x86; a sequentially consistent one is a full barrier, and popping
        // one event at a time paid for it on every pop). So this load may be ordered before
        // that store, and miss a producer that is just going to sleep while it sees the old
        // `head`. Such a producer sleeps at most `ROOM_RECHECK` before it looks again (see
        // `wait_room`): a rare, bounded delay on the back-pressure path only.
        if self.producers_waiting.load(Ordering::SeqCst) > 0 {
            let _guard = self.guard();
            self.not_full.notify_all();
        }
    }

    fn readable(&self, head: u64) -> bool {
        self.stamp(head).load(Ordering::Acquire) == head + 1
    }

    fn is_end(&self, head: u64) -> bool {
        if !self.closed_hint.load(Ordering::SeqCst) {
            return false;
        }
        let tail = self.tail.load(Ordering::Acquire);
        tail & CLOSED != 0 && tail & !CLOSED == head
    }

    fn has_room(&self) -> bool {
        let tail = self.tail.load(Ordering::SeqCst);
        tail & CLOSED != 0 || (tail - self.head.load(Ordering::SeqCst)) < self.capacity
    }

    /// Parks the consumer until position `head` is readable, the stream ends, or `deadline`.
    fn wait_readable(&self, head: u64, deadline: Option<Instant>) {
        let mut guard = self.guard();
        self.consumer_waiting.store(true, Ordering::SeqCst);
        while !self.readable(head) && !self.is_end(head) {
            if self.tail.load(Ordering::SeqCst) & !CLOSED != head {
                // A producer has claimed `head` and is writing it: it publishes within
                // nanoseconds, and may have looked at our flag before we set it, so do not
                // sleep on the condition variable; let it run instead.
                drop(guard);
                std::thread::yield_now();
                guard = self.guard();
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                continue;
            }
            guard = match deadline {
                None => self
                    .not_empty
                    .wait(guard)
                    .unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    self.not_empty
                        .wait_timeout(guard, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
        self.consumer_waiting.store(false, Ordering::Relaxed);
    }

    /// Parks a producer until there is room, the queue closes, or `deadline`; it looks again
    /// at least every `ROOM_RECHECK` (see `wake_producers`).
    fn wait_room(&self, deadline: Option<Instant>) {
        let mut guard = self.guard();
        self.producers_waiting.fetch_add(1, Ordering::SeqCst);
        while !self.has_room() {
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                break;
            }
            let nap = deadline.map_or(ROOM_RECHECK, |d| (d - now).min(ROOM_RECHECK));
            guard = self
                .not_full
                .wait_timeout(guard, nap)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        self.producers_waiting.fetch_sub(1, Ordering::Relaxed);
    }

    fn close(&self) -> bool {
        let before = self.tail.fetch_or(CLOSED, Ordering::SeqCst);
        self.closed_hint.store(true, Ordering::SeqCst);
        let _guard = self.guard();
        self.not_empty.notify_all();
        self.not_full.notify_all();
        before & CLOSED == 0
    }
}

fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    // A timeout too large to represent is no timeout at all.
    timeout.and_then(|t| Instant::now().checked_add(t))
}

/// Creates a queue holding at least `capacity` events (rounded up to a power of two).
pub fn channel(capacity: usize) -> Result<(Producer, Consumer), CapacityError> {
    let ring = Arc::new(Ring::new(capacity)?);
    Ok((Producer { ring: ring.clone() }, Consumer { ring, head: 0 }))
}

/// The pushing end. Clone it for every producer thread.
#[derive(Clone)]
pub struct Producer {
    ring: Arc<Ring>,
}

impl Producer {
    /// Pushes one event unless the queue is full or closed.
    pub fn try_push(&self, event: Event) -> Result<(), PushError> {
        match self.ring.push_with(1, |_| event) {
            Ok(1) => Ok(()),
            Ok(_) => Err(PushError::Full(event)),
            Err(Closed) => Err(PushError::Closed(event)),
        }
    }

    /// Pushes one event, waiting up to `timeout` (forever with `None`) for room.
    pub fn push_timeout(&self, event: Event, timeout: Option<Duration>) -> Result<(), PushError> {
        let deadline = deadline(timeout);
        loop {
            match self.try_push(event) {
                Err(PushError::Full(_)) => {}
                done => return done,
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(PushError::Full(event));
            }
            self.ring.wait_room(deadline);
        }
    }

    /// Pushes the longest prefix of `events` that fits now; returns how many were pushed.
    pub fn push_slice(&self, events: &[Event]) -> Result<usize, Closed> {
        self.ring.push_fill(events.len(), |offset, records| {
            records.copy_from_slice(&events[offset..offset + records.len()]);
        })
    }

    /// Pushes up to `n` events, at most as many as fit now, writing them in place:
    /// `fill(offset, records)` must write every record of `records`, which stand for events
    /// `offset..offset + records.len()` of the `n` (called once, or twice when the run wraps
    /// around the ring). Returns how many were pushed.
    pub fn push_fill(
        &self,
        n: usize,
        fill: impl FnMut(usize, &mut [Event]),
    ) -> Result<usize, Closed> {
        self.ring.push_fill(n, fill)
    }

    /// Pushes `n` events made by `make(i)` in order, at most as many as fit now; returns how
    /// many were pushed (`make` is called only for those).
    pub fn push_with(&self, n: usize, make: impl FnMut(usize) -> Event) -> Result<usize, Closed> {
        self.ring.push_with(n, make)
    }

    /// Pushes `n` events made by `make(i)` in order, waiting for room as needed, up to
    /// `timeout` in all. Returns how many were pushed (fewer than `n` only on timeout); if
    /// the queue closes on the way, the error says how many went in before.
    pub fn push_all_with(
        &self,
        n: usize,
        timeout: Option<Duration>,
        mut make: impl FnMut(usize) -> Event,
    ) -> Result<usize, ClosedAfter> {
        let deadline = deadline(timeout);
        let mut done = 0;
        while done < n {
            done += self
                .ring
                .push_with(n - done, |i| make(done + i))
                .map_err(|Closed| ClosedAfter { pushed: done })?;
            if done == n || deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            self.ring.wait_room(deadline);
        }
        Ok(done)
    }

    /// Closes the queue: later pushes fail, the consumer drains what is in it and then sees
    /// the end of the stream. Returns false when it was closed already.
    pub fn close(&self) -> bool {
        self.ring.close()
    }

    /// Whether the queue is closed.
    pub fn is_closed(&self) -> bool {
        self.ring.tail.load(Ordering::Acquire) & CLOSED != 0
    }

    /// The number of slots.
    pub fn capacity(&self) -> usize {
        self.ring.capacity as usize
    }

    /// Events claimed but not yet consumed (a snapshot; it may change at once).
    pub fn len(&self) -> usize {
        let head = self.ring.head.load(Ordering::Acquire);
        let tail = self.ring.tail.load(Ordering::Acquire) & !CLOSED;
        tail.saturating_sub(head) as usize
    }

    /// Whether [`Producer::len`] is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The popping end. There is exactly one; it is not `Clone`.
pub struct Consumer {
    ring: Arc<Ring>,
    head: u64,
}

impl Consumer {
    /// Pops up to `max` events, handing them to `take` in order as contiguous runs (one run,
    /// or two when they wrap around the ring); returns how many. `Err(EndOfStream)` only when
    /// nothing was popped and the queue is closed and drained.
    pub fn pop_runs(
        &mut self,
        max: usize,
        mut take: impl FnMut(&[Event]),
    ) -> Result<usize, PopError> {
        let ring = &*self.ring;
        let mut n = 0u64;
        while (n as usize) < max && ring.readable(self.head + n) {
            n += 1;
        }
        if n == 0 {
            return if max > 0 && ring.is_end(self.head) {
                Err(PopError::EndOfStream)
            } else {
                Ok(0)
            };
        }
        for run in ring.runs(self.head, n) {
            if !run.is_empty() {
                // SAFETY: every position of the run was read as published above (acquire
                // loads of its stamp, pairing with the producers' release stores), and no
                // producer can claim them again before the store of `head` below.
                take(unsafe { ring.records(run) });
            }
        }
        self.hand_back(n);
        Ok(n as usize)
    }

    /// Moves `head` past `n` read positions, handing their slots back to producers.
    fn hand_back(&mut self, n: u64) {
        self.head += n;
        // Release, not SeqCst: see `wake_producers`.
        self.ring.head.store(self.head, Ordering::Release);
        self.ring.wake_producers();
    }

    /// Pops up to `max` events, handing each to `take` in order; returns how many.
    /// `Err(EndOfStream)` only when nothing was popped and the queue is closed and drained.
    pub fn pop_with(
        &mut self,
        max: usize,
        mut take: impl FnMut(&Event),
    ) -> Result<usize, PopError> {
        self.pop_runs(max, |run| run.iter().for_each(&mut take))
    }

    /// Pops one event if there is one.
    pub fn try_pop(&mut self) -> Result<Event, PopError> {
        let ring = &*self.ring;
        let head = self.head;
        if !ring.readable(head) {
            return Err(if ring.is_end(head) {
                PopError::EndOfStream
            } else {
                PopError::Empty
            });
        }
        let index = (head & ring.mask) as usize;
        // SAFETY: as in `pop_runs`, for the single position `head`, just read as published.
        let event = unsafe { ring.records(index..index + 1) }[0];
        self.hand_back(1);
        Ok(event)
    }

    /// Whether an event can be read now.
    pub fn ready(&self) -> bool {
        self.ring.readable(self.head)
    }

    /// Waits up to `timeout` (forever with `None`) until an event can be read or the stream
    /// ends; meant for a consumer that found the queue empty (it pauses before it looks,
    /// see below). Returns true when an event is readable.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        let ring = &*self.ring;
        // Spin a little before parking: a producer that finds the consumer parked must take
        // the lock and wake it (a system call), which at high rates costs far more than the
        // few microseconds a busy queue takes to deliver the next event.
        //
        // Each check comes after the pause, the first one too. The consumer waits because it
        // found the queue empty: checking again at once would find at most the one event the
        // producer is writing, and each such look takes that cache line from the producer's
        // core, which then waits to get it back for the next event. Pausing first lets a run
        // of events gather; one producer pushing single events went from about 30M/s to
        // 55-65M/s. The cost is latency: up to one pause (under a microsecond) for the first
        // event after the queue ran empty. A consumer that wants it lower polls `try_pop`.
        let deadline = deadline(timeout);
        for round in 0..SPIN_ROUNDS {
            if round < SPIN_ROUNDS / 2 {
                for _ in 0..SPIN_PAUSES {
                    std::hint::spin_loop();
                }
            } else {
                std::thread::yield_now();
            }
            if ring.readable(self.head) {
                return true;
            }
            if ring.is_end(self.head) || deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
        }
        ring.wait_readable(self.head, deadline);
        ring.readable(self.head)
    }

    /// Whether the queue is closed and every event in it has been popped.
    pub fn at_end(&self) -> bool {
        self.ring.is_end(self.head)
    }

    /// Pops one event, waiting up to `timeout` (forever with `None`).
    pub fn pop_timeout(&mut self, timeout: Option<Duration>) -> Result<Event, PopError> {
        match self.try_pop() {
            Err(PopError::Empty) => {
                self.wait(timeout);
                self.try_pop()
            }
            done => done,
        }
    }

    /// Pops up to `max` events into `out` (appending); returns how many.
    pub fn pop_into(&mut self, max: usize, out: &mut Vec<Event>) -> Result<usize, PopError> {
        out.reserve(max.min(self.ring.capacity as usize));
        self.pop_with(max, |e| out.push(*e))
    }

    /// A producer handle for the same queue.
    pub fn producer(&self) -> Producer {
        Producer {
            ring: self.ring.clone(),
        }
    }
}

/// A [`Consumer`] that several threads may hold a reference to, used by one at a time: for
/// bindings (Python) where the type system cannot prove there is one consumer. `try_lock` is
/// one compare-and-swap and never blocks.
pub struct SharedConsumer {
    busy: AtomicBool,
    consumer: UnsafeCell<Consumer>,
}

// SAFETY: the `UnsafeCell` is reached only through a `ConsumerGuard`, and `try_lock` hands out
// at most one guard at a time (the acquire CAS on `busy`, released by the guard's drop), which
// is exactly the exclusion a `Mutex<Consumer>` would give. `Consumer` itself is `Send`.
unsafe impl Sync for SharedConsumer {}

impl SharedConsumer {
    /// Wraps the queue's consumer.
    pub fn new(consumer: Consumer) -> SharedConsumer {
        SharedConsumer {
            busy: AtomicBool::new(false),
            consumer: UnsafeCell::new(consumer),
        }
    }

    /// The consumer without taking the lock, or `None` while a guard is out.
    ///
    /// # Safety
    /// Until the returned borrow ends, no other thread may call `try_lock` or this method: the
    /// caller and every other user of this consumer must hold one common lock (Python's GIL,
    /// for the bindings) across their call and their use of the result.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn get_unlocked(&self) -> Option<&mut Consumer> {
        if self.busy.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: no guard is out (checked above) and, by the caller's promise, none can be
        // taken until this borrow ends, so it is the only reference to the consumer.
        Some(unsafe { &mut *self.consumer.get() })
    }

    /// The consumer, unless another thread is using it now.
    pub fn try_lock(&self) -> Option<ConsumerGuard<'_>> {
        self.busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| ConsumerGuard { owner: self })
    }
}

/// Exclusive use of a [`SharedConsumer`] until dropped.
pub struct ConsumerGuard<'a> {
    owner: &'a SharedConsumer,
}

impl std::ops::Deref for ConsumerGuard<'_> {
    type Target = Consumer;
    fn deref(&self) -> &Consumer {
        // SAFETY: this guard is the only one (see `SharedConsumer`), so no `&mut` to the
        // consumer exists while this shared borrow lives.
        unsafe { &*self.owner.consumer.get() }
    }
}

impl std::ops::DerefMut for ConsumerGuard<'_> {
    fn deref_mut(&mut self) -> &mut Consumer {
        // SAFETY: as in `deref`; `&mut self` makes this borrow unique within the guard too.
        unsafe { &mut *self.owner.consumer.get() }
    }
}

impl Drop for ConsumerGuard<'_> {
    fn drop(&mut self) {
        self.owner.busy.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Kind;

    fn ev(seq: u64) -> Event {
        Event {
            seq,
            ..Event::new(Kind::Trade, seq as i64)
        }
    }

    #[test]
    fn shared_consumer_admits_one_user_at_a_time() {
        let (p, c) = channel(4).unwrap();
        let shared = SharedConsumer::new(c);
        p.try_push(ev(1)).unwrap();
        let mut first = shared.try_lock().unwrap();
        assert!(shared.try_lock().is_none());
        assert_eq!(first.try_pop(), Ok(ev(1)));
        drop(first);
        assert!(shared.try_lock().is_some());
    }

    #[test]
    fn capacity_rounds_up_and_rejects_zero() {
        assert_eq!(channel(0).err(), Some(CapacityError::OutOfRange(0)));
        assert_eq!(
            channel(MAX_CAPACITY + 1).err(),
            Some(CapacityError::OutOfRange(MAX_CAPACITY + 1))
        );
        let (p, _c) = channel(5).unwrap();
        assert_eq!(p.capacity(), 8);
    }

    #[test]
    fn full_queue_reports_back_pressure_and_keeps_order() {
        let (p, mut c) = channel(4).unwrap();
        for i in 0..4 {
            p.try_push(ev(i)).unwrap();
        }
        assert_eq!(p.try_push(ev(9)), Err(PushError::Full(ev(9))));
        assert_eq!(p.len(), 4);
        assert_eq!(c.try_pop(), Ok(ev(0)));
        p.try_push(ev(4)).unwrap();
        let mut out = Vec::new();
        assert_eq!(c.pop_into(10, &mut out), Ok(4));
        assert_eq!(out, (1..5).map(ev).collect::<Vec<_>>());
        assert_eq!(c.try_pop(), Err(PopError::Empty));
    }

    #[test]
    fn push_slice_takes_the_prefix_that_fits() {
        let (p, mut c) = channel(4).unwrap();
        let batch: Vec<Event> = (0..6).map(ev).collect();
        assert_eq!(p.push_slice(&batch), Ok(4));
        assert_eq!(p.push_slice(&batch[4..]), Ok(0));
        let mut out = Vec::new();
        c.pop_into(2, &mut out).unwrap();
        assert_eq!(p.push_slice(&batch[4..]), Ok(2));
        c.pop_into(10, &mut out).unwrap();
        assert_eq!(out, batch);
    }

    #[test]
    fn close_drains_then_ends() {
        let (p, mut c) = channel(8).unwrap();
        p.try_push(ev(1)).unwrap();
        assert!(p.close());
        assert!(!p.close());
        assert_eq!(p.try_push(ev(2)), Err(PushError::Closed(ev(2))));
        assert_eq!(p.push_slice(&[ev(3)]), Err(Closed));
        assert_eq!(c.try_pop(), Ok(ev(1)));
        assert_eq!(c.try_pop(), Err(PopError::EndOfStream));
        assert_eq!(c.pop_timeout(None), Err(PopError::EndOfStream));
    }

    #[test]
    fn pop_timeout_times_out_when_empty() {
        let (_p, mut c) = channel(8).unwrap();
        let start = Instant::now();
        assert_eq!(
            c.pop_timeout(Some(Duration::from_millis(20))),
            Err(PopError::Empty)
        );
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn blocked_consumer_wakes_on_push_and_on_close() {
        let (p, mut c) = channel(8).unwrap();
        let p2 = p.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            p2.try_push(ev(5)).unwrap();
            std::thread::sleep(Duration::from_millis(10));
            p2.close();
        });
        assert_eq!(c.pop_timeout(None), Ok(ev(5)));
        assert_eq!(c.pop_timeout(None), Err(PopError::EndOfStream));
        t.join().unwrap();
    }

    #[test]
    fn blocked_producer_wakes_when_consumer_frees_room() {
        let (p, mut c) = channel(2).unwrap();
        p.try_push(ev(0)).unwrap();
        p.try_push(ev(1)).unwrap();
        let t = std::thread::spawn(move || p.push_timeout(ev(2), None));
        std::thread::sleep(Duration::from_millis(10));
        assert_eq!(c.try_pop(), Ok(ev(0)));
        assert_eq!(t.join().unwrap(), Ok(()));
        assert_eq!(c.pop_timeout(None), Ok(ev(1)));
        assert_eq!(c.pop_timeout(None), Ok(ev(2)));
    }

    #[test]
    fn push_timeout_on_full_queue_gives_the_event_back() {
        let (p, _c) = channel(1).unwrap();
        p.try_push(ev(0)).unwrap();
        let r = p.push_timeout(ev(1), Some(Duration::from_millis(5)));
        assert_eq!(r, Err(PushError::Full(ev(1))));
    }

    #[test]
    fn push_all_with_waits_for_room_across_laps() {
        let (p, mut c) = channel(4).unwrap();
        let t = std::thread::spawn(move || p.push_all_with(100, None, |i| ev(i as u64)));
        let mut out = Vec::new();
        while out.len() < 100 {
            c.wait(None);
            c.pop_into(100, &mut out).unwrap();
        }
        assert_eq!(t.join().unwrap(), Ok(100));
        assert_eq!(out, (0..100).map(ev).collect::<Vec<_>>());
    }
}
