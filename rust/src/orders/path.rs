//! The order path inside the kernel: validation, risk, execution (the bar venue, or the book
//! venue of an instrument that has one), with the portfolio folding every fill as it is
//! sequenced. A command is processed when the strategy makes it: the command, the risk
//! decision and the venue's reports take consecutive sequence numbers.

use crate::event::{flags, Event, Kind};
use crate::kernel::KernelCore;

use super::bar_venue::{BarVenue, VenueSink};
use super::portfolio::Portfolio;
use super::risk::{Exposure, Reason, RiskEngine};
use super::validation::Validation;

/// The order path's stages and what they produced for the caller.
pub struct OrderPath {
    pub validation: Validation,
    pub risk: RiskEngine,
    pub venue: BarVenue,
    /// Reasons in words of the events flagged `HAS_PAYLOAD`, by seq, until taken.
    pub payloads: Vec<(u64, String)>,
}

/// The engine around the order path during one call.
pub struct Engine<'a> {
    pub core: &'a mut KernelCore,
    pub portfolio: &'a mut Portfolio,
    /// Kinds some handler outside Rust wants to hear of.
    pub notify: &'a [bool; 256],
    /// The sequenced events of those kinds, in seq order.
    pub out: &'a mut Vec<Event>,
}

struct Sink<'e, 'a> {
    engine: &'e mut Engine<'a>,
    payloads: &'e mut Vec<(u64, String)>,
}

impl Sink<'_, '_> {
    fn emit(&mut self, mut e: Event, reason: Option<String>) -> Event {
        if reason.is_some() {
            e.flags |= flags::HAS_PAYLOAD;
        }
        let e = self.engine.core.emit(e);
        if let Some(words) = reason {
            self.payloads.push((e.seq, words));
        }
        if self.engine.notify[e.kind as usize] {
            self.engine.out.push(e);
        }
        e
    }
}

impl VenueSink for Sink<'_, '_> {
    fn cash(&self) -> i64 {
        self.engine.portfolio.cash
    }

    fn last_price(&self, instrument: u32) -> Option<i64> {
        self.engine.core.last_price(instrument)
    }

    fn report(&mut self, kind: Kind, order: &Event, reason: Option<String>) {
        let report = Event {
            kind: kind as u8,
            seq: 0,
            ts: 0,
            ..*order
        };
        self.emit(report, reason);
    }

    fn fill(&mut self, fill: Event) {
        let fill = self.emit(fill, None);
        self.engine.portfolio.apply(&fill);
    }
}

/// Cash plus positions at the market's last prices.
pub fn marked_equity(portfolio: &mut Portfolio, core: &KernelCore) -> i64 {
    let held: Vec<u32> = portfolio.positions().map(|(i, _)| i).collect();
    for instrument in held {
        if let Some(price) = core.last_price(instrument) {
            portfolio.mark(instrument, price);
        }
    }
    portfolio.equity()
}

/// Where an order of an instrument traded on an order book goes: `None` when the instrument
/// has no book (the bar venue takes it), else the book venue's answer (`Err`: refused, with
/// why).
pub type BookRoute<'r> = &'r mut dyn FnMut(&Event, &mut KernelCore) -> Option<Result<(), String>>;

impl OrderPath {
    pub fn new(validation: Validation, risk: RiskEngine, venue: BarVenue) -> OrderPath {
        OrderPath {
            validation,
            risk,
            venue,
            payloads: Vec::new(),
        }
    }

    /// Sequences a command (submit, cancel, modify; ts 0 = now) and runs it down the path.
    pub fn command(&mut self, cmd: Event, engine: &mut Engine<'_>, book: BookRoute<'_>) {
        let mut sink = Sink {
            engine,
            payloads: &mut self.payloads,
        };
        let cmd = sink.emit(cmd, None);
        if let Some(problem) = self.validation.problem(&cmd) {
            sink.report(Kind::OrderRejected, &cmd, Some(problem));
            return;
        }
        if cmd.kind == Kind::OrderSubmit as u8 {
            let seen = Exposure {
                equity: if self.risk.needs_equity() {
                    marked_equity(sink.engine.portfolio, sink.engine.core)
                } else {
                    0
                },
                held: sink.engine.portfolio.position(cmd.instrument).qty,
                last_price: sink.engine.core.last_price(cmd.instrument),
            };
            let now = sink.engine.core.now();
            let (reason, words) = self.risk.check(&cmd, now, &seen);
            let allowed = reason == Reason::Allowed;
            let decision = Event {
                instrument: cmd.instrument,
                order_id: cmd.order_id,
                side: cmd.side,
                price: cmd.price,
                qty: cmd.qty,
                aux: reason as i64,
                ..Event::new(Kind::Risk, 0)
            };
            // An allowed order's code says it all; a denial carries its reason in words.
            sink.emit(decision, (!allowed).then_some(words));
            if !allowed {
                sink.report(Kind::OrderRejected, &cmd, Some("denied by risk".into()));
                return;
            }
        }
        match book(&cmd, sink.engine.core) {
            Some(Ok(())) => {}
            Some(Err(why)) => sink.report(Kind::OrderRejected, &cmd, Some(why)),
            None => self.venue.process(&cmd, &mut sink),
        }
    }

    /// Lets the bar venue fill its open orders on a bar just sequenced.
    pub fn on_bar(&mut self, bar: &Event, engine: &mut Engine<'_>) {
        if self.venue.open_orders() == 0 {
            return;
        }
        let mut sink = Sink {
            engine,
            payloads: &mut self.payloads,
        };
        self.venue.on_bar(bar, &mut sink);
    }
}
