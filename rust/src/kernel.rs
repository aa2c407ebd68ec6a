//! The kernel's hot loop: sequencing, logging and dispatch of the merged input stream.
//!
//! One thread applies events in `seq` order. Inputs that no Python handler subscribed to
//! (book deltas, ticks feeding Rust consumers) are sequenced and appended to the output
//! buffer here in bulk without touching Python; the loop stops at each subscribed input and
//! hands it to the caller, which dispatches it and emits the commands it causes through
//! [`KernelCore::emit`], so they take the next sequence numbers. The output buffer is the
//! run's event log, in `seq` order, flushed by the caller in batches.
//!
//! Components in Rust (the simulated venue) see every input through a hook of
//! [`KernelCore::advance_with`] and answer with events stamped at or after the input's time;
//! those wait in a time-ordered queue ([`KernelCore::schedule`]) and are delivered, sequenced,
//! when the clock reaches them: before any input of a later or equal time.

use std::collections::BTreeMap;

use crate::event::{flags, Event};
use crate::orders::mark_price;

/// Counters per event kind.
#[derive(Clone, Debug)]
pub struct KindCounts(pub [u64; 256]);

impl Default for KindCounts {
    fn default() -> Self {
        KindCounts([0; 256])
    }
}

/// Sequencer, clock and output buffer of one run.
pub struct KernelCore {
    inputs: Vec<Event>,
    pos: usize,
    next_seq: u64,
    now: i64,
    subscribed: [bool; 256],
    output: Vec<Event>,
    flush_at: usize,
    alarm: Option<i64>,
    counts: KindCounts,
    last_price: Vec<Option<i64>>,
    delayed: BTreeMap<(i64, u64), Event>,
    delayed_count: u64,
}

impl KernelCore {
    /// A kernel over the merged `inputs`, flagging each as an input, with sequence numbers
    /// starting at `first_seq` and the output handed back every `flush_at` events.
    pub fn new(inputs: Vec<Event>, first_seq: u64, flush_at: usize) -> KernelCore {
        // Inputs are flagged `INPUT` as they are sequenced, not here: one pass over them
        // instead of two.
        let now = inputs.first().map_or(0, |e| e.ts);
        KernelCore {
            inputs,
            pos: 0,
            next_seq: first_seq,
            now,
            subscribed: [false; 256],
            output: Vec::with_capacity(flush_at.max(1)),
            flush_at: flush_at.max(1),
            alarm: None,
            counts: KindCounts::default(),
            last_price: Vec::new(),
            delayed: BTreeMap::new(),
            delayed_count: 0,
        }
    }

    /// Routes inputs of `kind` to the caller (true) or keeps them in Rust (false).
    pub fn subscribe(&mut self, kind: u8, on: bool) {
        self.subscribed[kind as usize] = on;
    }

    fn sequence(&mut self, mut e: Event) -> Event {
        e.seq = self.next_seq;
        self.next_seq += 1;
        if e.ts < self.now {
            // Commands and outputs happen at the kernel's time, never in its past.
            e.ts = self.now;
        }
        self.now = e.ts;
        self.counts.0[e.kind as usize] += 1;
        self.mark(&e);
        self.output.push(e);
        e
    }

    /// Remembers the instrument's last price (see [`mark_price`]).
    fn mark(&mut self, e: &Event) {
        let Some(price) = mark_price(e) else {
            return;
        };
        let i = e.instrument as usize;
        if i >= self.last_price.len() {
            self.last_price.resize(i + 1, None);
        }
        self.last_price[i] = Some(price);
    }

    /// The last price of an instrument (bar close, trade price, quote mid), if any.
    pub fn last_price(&self, instrument: u32) -> Option<i64> {
        self.last_price.get(instrument as usize).copied().flatten()
    }

    /// Events of `kind` sequenced so far.
    pub fn count(&self, kind: u8) -> u64 {
        self.counts.0[kind as usize]
    }

    /// Stops [`KernelCore::advance`] before the first input at or after `ts` (a timer's
    /// deadline), or never with `None`.
    pub fn set_alarm(&mut self, ts: Option<i64>) {
        self.alarm = ts;
    }

    /// Whether the alarm's time has come: the next event is at or after it, or there is none.
    pub fn alarm_due(&self) -> bool {
        match self.alarm {
            None => false,
            Some(a) => self.peek_ts().is_none_or(|ts| ts >= a),
        }
    }

    /// Holds an event (a venue's answer) until the clock reaches its `ts`; it is then
    /// sequenced and handed to the caller like a subscribed input. Ties keep the order of
    /// scheduling.
    pub fn schedule(&mut self, mut e: Event) {
        e.ts = e.ts.max(self.now);
        e.flags &= !flags::INPUT;
        self.delayed.insert((e.ts, self.delayed_count), e);
        self.delayed_count += 1;
    }

    /// Sequences inputs until one is subscribed (returned), or the output buffer is full, or
    /// the alarm is due, or the inputs are exhausted (`None` for the last three; see
    /// [`KernelCore::done`] and [`KernelCore::alarm_due`]).
    pub fn advance(&mut self) -> Option<Event> {
        self.advance_with(|_, _| {})
    }

    /// Like [`KernelCore::advance`], calling `hook` with every input once it is sequenced;
    /// what the hook pushes is scheduled (see [`KernelCore::schedule`]). Scheduled events are
    /// delivered before inputs of a later or the same time.
    pub fn advance_with(&mut self, mut hook: impl FnMut(&Event, &mut Vec<Event>)) -> Option<Event> {
        let mut produced = Vec::new();
        loop {
            if self.output.len() >= self.flush_at {
                return None;
            }
            let next_input = self.inputs.get(self.pos).map(|e| e.ts);
            if let Some(entry) = self.delayed.first_entry() {
                let ts = entry.key().0;
                if next_input.is_none_or(|t| ts <= t) {
                    if self.alarm.is_some_and(|a| ts >= a) {
                        return None;
                    }
                    let e = entry.remove();
                    return Some(self.sequence(e));
                }
            }
            let ts = next_input?;
            if self.alarm.is_some_and(|a| ts >= a) {
                return None;
            }
            let mut e = self.inputs[self.pos];
            e.flags |= flags::INPUT;
            self.pos += 1;
            let e = self.sequence(e);
            hook(&e, &mut produced);
            for p in produced.drain(..) {
                self.schedule(p);
            }
            if self.subscribed[e.kind as usize] {
                return Some(e);
            }
        }
    }

    /// Appends inputs that arrived after the kernel started (a live source draining its
    /// queue), flagged as inputs and in arrival order; the inputs already consumed are
    /// dropped first, so a long session keeps only what it has not sequenced yet.
    pub fn extend(&mut self, more: &[Event]) {
        self.inputs.drain(..self.pos);
        self.pos = 0;
        self.inputs.extend(more.iter().map(|e| Event {
            seq: 0,
            flags: e.flags | flags::INPUT,
            ..*e
        }));
    }

    /// Sequences an event made by a component (a command, a venue report, a signal). A zero
    /// timestamp means now.
    pub fn emit(&mut self, mut e: Event) -> Event {
        if e.ts == 0 {
            e.ts = self.now;
        }
        e.flags &= !flags::INPUT;
        self.sequence(e)
    }

    /// Whether every input has been sequenced and every scheduled event delivered.
    pub fn done(&self) -> bool {
        self.pos >= self.inputs.len() && self.delayed.is_empty()
    }

    /// The kernel's clock: the timestamp of the last sequenced event, in ns.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// The next sequence number.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Inputs not yet sequenced.
    pub fn remaining(&self) -> usize {
        self.inputs.len() - self.pos
    }

    /// The timestamp of the next event to deliver (an input or a scheduled event), if any.
    pub fn peek_ts(&self) -> Option<i64> {
        let input = self.inputs.get(self.pos).map(|e| e.ts);
        let delayed = self.delayed.keys().next().map(|k| k.0);
        match (input, delayed) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Advances the clock to `ts` (a timer firing between inputs); never backwards.
    pub fn advance_clock(&mut self, ts: i64) {
        self.now = self.now.max(ts);
    }

    /// Takes the sequenced events so far. A full buffer (a backtest's flush) is handed over
    /// whole, without a copy; a short one (a live batch of a few events) is copied out and
    /// the buffer kept: a fresh `flush_at`-sized allocation per batch would cost a map and an
    /// unmap of megabytes each time, and the caller may keep what it takes for a while.
    pub fn drain(&mut self) -> Vec<Event> {
        if self.output.len() * 2 < self.output.capacity() {
            let taken = self.output.clone();
            self.output.clear();
            return taken;
        }
        std::mem::replace(&mut self.output, Vec::with_capacity(self.flush_at))
    }

    /// Events sequenced per kind.
    pub fn counts(&self) -> &KindCounts {
        &self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Kind;

    #[test]
    fn extended_inputs_continue_the_sequence() {
        let mut k = KernelCore::new(vec![Event::new(Kind::Bar, 1)], 1, 100);
        k.subscribe(Kind::Bar as u8, true);
        assert_eq!(k.advance().unwrap().seq, 1);
        assert!(k.advance().is_none() && k.done());
        k.extend(&[Event::new(Kind::Bar, 5), Event::new(Kind::Bar, 3)]);
        assert!(!k.done());
        let a = k.advance().unwrap();
        let b = k.advance().unwrap();
        assert_eq!((a.seq, a.ts, b.seq, b.ts), (2, 5, 3, 5));
        assert_ne!(b.flags & flags::INPUT, 0);
        assert_eq!(k.remaining(), 0);
    }

    #[test]
    fn unsubscribed_inputs_stay_in_rust_and_commands_take_the_next_seq() {
        let inputs = vec![
            Event::new(Kind::BookAdd, 1),
            Event::new(Kind::Bar, 2),
            Event::new(Kind::BookAdd, 3),
        ];
        let mut k = KernelCore::new(inputs, 1, 100);
        k.subscribe(Kind::Bar as u8, true);
        let bar = k.advance().unwrap();
        assert_eq!((bar.seq, bar.kind), (2, Kind::Bar as u8));
        let cmd = k.emit(Event::new(Kind::OrderSubmit, 0));
        assert_eq!((cmd.seq, cmd.ts), (3, 2));
        assert_eq!(cmd.flags & flags::INPUT, 0);
        assert!(k.advance().is_none());
        assert!(k.done());
        let out = k.drain();
        let seqs: Vec<u64> = out.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4]);
        assert!(out[3].flags & flags::INPUT != 0);
        assert_eq!(k.counts().0[Kind::BookAdd as usize], 2);
        assert_eq!(k.count(Kind::OrderSubmit as u8), 1);
    }

    #[test]
    fn remembers_last_prices_per_instrument() {
        let bar = Event {
            price: 7,
            instrument: 2,
            ..Event::new(Kind::Bar, 1)
        };
        let quote = Event {
            price: 10,
            aux: 13,
            instrument: 3,
            ..Event::new(Kind::Quote, 2)
        };
        let mut k = KernelCore::new(vec![bar, quote], 1, 10);
        assert!(k.advance().is_none());
        assert_eq!(k.last_price(2), Some(7));
        assert_eq!(k.last_price(3), Some(11));
        assert_eq!(k.last_price(9), None);
    }

    #[test]
    fn scheduled_events_come_back_in_time_order_before_later_inputs() {
        let inputs = vec![
            Event::new(Kind::BookAdd, 10),
            Event::new(Kind::BookAdd, 20),
            Event::new(Kind::BookAdd, 30),
        ];
        let mut k = KernelCore::new(inputs, 1, 100);
        // The hook answers the first delta with a fill at 25 and an ack at 10.
        let mut first = true;
        let mut hook = |e: &Event, out: &mut Vec<Event>| {
            if first {
                first = false;
                out.push(Event::new(Kind::Fill, e.ts + 15));
                out.push(Event::new(Kind::OrderAccepted, e.ts));
            }
        };
        let ack = k.advance_with(&mut hook).unwrap();
        assert_eq!(
            (ack.seq, ack.kind, ack.ts),
            (2, Kind::OrderAccepted as u8, 10)
        );
        let fill = k.advance_with(&mut hook).unwrap();
        assert_eq!((fill.seq, fill.ts), (4, 25));
        assert!(fill.flags & flags::INPUT == 0);
        assert!(!k.done());
        assert!(k.advance_with(&mut hook).is_none());
        assert!(k.done());
        let kinds: Vec<u8> = k.drain().iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [10, Kind::OrderAccepted as u8, 10, Kind::Fill as u8, 10]
        );
    }

    #[test]
    fn stops_at_the_alarm() {
        let inputs = (0..10).map(|t| Event::new(Kind::Trade, t * 10)).collect();
        let mut k = KernelCore::new(inputs, 1, 100);
        k.set_alarm(Some(35));
        assert!(k.advance().is_none());
        assert!(k.alarm_due());
        assert_eq!(k.peek_ts(), Some(40));
        k.advance_clock(35);
        let timer = k.emit(Event::new(Kind::Timer, 0));
        assert_eq!((timer.seq, timer.ts), (5, 35));
        k.set_alarm(None);
        assert!(k.advance().is_none());
        assert!(k.done());
    }

    #[test]
    fn stops_when_the_output_buffer_is_full() {
        let inputs = (0..10).map(|t| Event::new(Kind::Trade, t)).collect();
        let mut k = KernelCore::new(inputs, 0, 4);
        assert!(k.advance().is_none());
        assert!(!k.done());
        assert_eq!(k.drain().len(), 4);
        assert!(k.advance().is_none());
        assert_eq!(k.drain().len(), 4);
        assert!(k.advance().is_none());
        assert!(k.done());
        assert_eq!(k.drain().len(), 2);
    }
}
