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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Side, SCALE};
    use crate::orders::bar_venue::FillAt;
    use crate::orders::fees::{FeeModel, SlippageModel};
    use crate::orders::risk::RiskLimits;

    fn bar(ts: i64, open: i64, close: i64) -> Event {
        Event {
            instrument: 1,
            price: close * SCALE,
            aux: open * SCALE,
            order_id: open.max(close) * SCALE,
            payload: open.min(close) * SCALE,
            ..Event::new(Kind::Bar, ts)
        }
    }

    fn order(id: i64, side: Side, qty: i64, value: i64) -> Event {
        Event {
            instrument: 1,
            order_id: id,
            side: side as u8,
            qty: qty * SCALE,
            aux: value * SCALE,
            flags: flags::MARKET,
            ..Event::new(Kind::OrderSubmit, 0)
        }
    }

    struct Run {
        core: KernelCore,
        portfolio: Portfolio,
        path: OrderPath,
        notify: [bool; 256],
    }

    impl Run {
        fn new(bars: Vec<Event>, limits: RiskLimits, fee_rate: f64) -> Run {
            let mut core = KernelCore::new(bars, 1, 1 << 16);
            core.subscribe(Kind::Bar as u8, true);
            let mut notify = [false; 256];
            notify[Kind::Fill as usize] = true;
            notify[Kind::OrderRejected as usize] = true;
            let venue = BarVenue::new(
                FillAt::NextOpen,
                FeeModel {
                    rate: fee_rate,
                    ..FeeModel::default()
                },
                SlippageModel::default(),
                SCALE,
            );
            let validation = Validation {
                instruments: [1].into_iter().collect(),
            };
            Run {
                core,
                portfolio: Portfolio::new(1_000 * SCALE),
                path: OrderPath::new(validation, RiskEngine::new(limits), venue),
                notify,
            }
        }

        /// The next bar, after the venue filled on it; the events Python would hear of.
        fn bar(&mut self) -> Vec<Event> {
            let bar = self.core.advance().unwrap();
            let mut out = Vec::new();
            let mut engine = Engine {
                core: &mut self.core,
                portfolio: &mut self.portfolio,
                notify: &self.notify,
                out: &mut out,
            };
            self.path.on_bar(&bar, &mut engine);
            out
        }

        fn submit(&mut self, cmd: Event) -> Vec<Event> {
            let mut out = Vec::new();
            let mut engine = Engine {
                core: &mut self.core,
                portfolio: &mut self.portfolio,
                notify: &self.notify,
                out: &mut out,
            };
            self.path.command(cmd, &mut engine, &mut |_, _| None);
            out
        }
    }

    #[test]
    fn a_value_sized_buy_fills_at_the_next_open_within_the_cash_fees_included() {
        let mut run = Run::new(
            vec![bar(1, 10, 10), bar(2, 10, 11)],
            RiskLimits::default(),
            0.01,
        );
        run.bar();
        assert!(run.submit(order(1, Side::Buy, 0, 1_000)).is_empty());
        let fills = run.bar();
        assert_eq!(fills.len(), 1);
        // 99 shares cost 990 + 9.90 in fees; 100 would cost 1,010.
        assert_eq!((fills[0].qty, fills[0].price), (99 * SCALE, 10 * SCALE));
        assert_eq!(fills[0].aux, 9_900_000_000);
        assert_eq!(run.portfolio.cash, 100_000_000);
        let kinds: Vec<u8> = run.core.drain().iter().map(|e| e.kind).collect();
        let expected = [
            Kind::Bar,
            Kind::OrderSubmit,
            Kind::Risk,
            Kind::OrderAccepted,
            Kind::Bar,
            Kind::Fill,
        ];
        assert_eq!(kinds, expected.map(|k| k as u8));
    }

    #[test]
    fn a_buy_the_cash_cannot_pay_is_rejected_with_its_reason() {
        let mut run = Run::new(
            vec![bar(1, 10, 10), bar(2, 10, 10)],
            RiskLimits::default(),
            0.0,
        );
        run.bar();
        run.submit(order(1, Side::Buy, 101, 0));
        let out = run.bar();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, Kind::OrderRejected as u8);
        assert_ne!(out[0].flags & flags::HAS_PAYLOAD, 0);
        let (seq, reason) = run.path.payloads.last().unwrap();
        assert_eq!(*seq, out[0].seq);
        assert_eq!(
            reason,
            "insufficient cash: buying 101 at 10 leaves -10.00 after fees (cash 1000.00)"
        );
        assert_eq!(run.portfolio.cash, 1_000 * SCALE);
    }

    #[test]
    fn risk_denies_past_the_max_position_and_logs_each_decision() {
        let limits = RiskLimits {
            max_position: Some(15 * SCALE),
            ..RiskLimits::default()
        };
        let mut run = Run::new(vec![bar(1, 1, 1)], limits, 0.0);
        run.bar();
        assert!(run.submit(order(1, Side::Buy, 10, 0)).is_empty());
        assert!(run.submit(order(2, Side::Buy, 10, 0)).is_empty());
        let risk: Vec<Event> = run
            .core
            .drain()
            .into_iter()
            .filter(|e| e.kind == Kind::Risk as u8)
            .collect();
        // The first order is not filled yet: the limit counts what is held.
        assert_eq!(risk.len(), 2);
        assert_eq!(risk[0].aux, Reason::Allowed as i64);
        assert_eq!(risk[1].aux, Reason::Allowed as i64);
        run.portfolio.apply(&Event {
            seq: 0,
            instrument: 1,
            side: Side::Buy as u8,
            price: SCALE,
            qty: 10 * SCALE,
            ..Event::new(Kind::Fill, 1)
        });
        let denied = run.submit(order(3, Side::Buy, 10, 0));
        assert_eq!(denied.len(), 1);
        assert_eq!(denied[0].kind, Kind::OrderRejected as u8);
        let decision = run
            .core
            .drain()
            .into_iter()
            .find(|e| e.kind == Kind::Risk as u8)
            .unwrap();
        assert_eq!(decision.aux, Reason::MaxPosition as i64);
        let words = &run
            .path
            .payloads
            .iter()
            .find(|p| p.0 == decision.seq)
            .unwrap()
            .1;
        assert_eq!(words, "position would be 20, max 15");
    }
}
