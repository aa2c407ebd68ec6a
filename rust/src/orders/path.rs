//! The order path inside the kernel: validation, risk, execution (the bar venue, or the book
//! venue of an instrument that has one), with the portfolio folding every fill as it is
//! sequenced. A command is processed when the strategy makes it: the command, the risk
//! decision and the venue's reports take consecutive sequence numbers.
//!
//! A live node adds the live gate ([`LiveGate`]) between risk and execution, and its
//! execution is either the simulated venues (`--exec-adapter sim`) or an external venue: the
//! commands that passed every stage are collected ([`OrderPath::take_commands`]) for the
//! session to hand to the venue adapter once the log holds them; the venue's reports and
//! fills come back as inputs ([`OrderPath::apply`]).

use crate::event::{flags, Event, Kind};
use crate::kernel::KernelCore;

use super::bar_venue::{BarVenue, VenueSink};
use super::gate::{closing, Action, Code, LiveGate};
use super::portfolio::Portfolio;
use super::risk::{Exposure, Reason, RiskEngine};
use super::validation::Validation;

/// The order path's stages and what they produced for the caller.
pub struct OrderPath {
    pub validation: Validation,
    pub risk: RiskEngine,
    pub venue: BarVenue,
    /// A live node's gate (None: a backtest or replay of one).
    pub gate: Option<LiveGate>,
    /// Commands for an external venue, in seq order, until taken (None: the simulated venues
    /// take them).
    external: Option<Vec<Event>>,
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
    /// The next order id of the run (shared with the strategies' orders).
    pub order_ids: &'a mut i64,
}

struct Sink<'e, 'a> {
    engine: &'e mut Engine<'a>,
    payloads: &'e mut Vec<(u64, String)>,
    gate: Option<&'e mut LiveGate>,
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
        if let Some(gate) = self.gate.as_deref_mut() {
            gate.observe(&e);
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
            gate: None,
            external: None,
            payloads: Vec::new(),
        }
    }

    /// Makes it a live node's path: the gate after risk, and commands that pass it collected
    /// for an `external` venue (else the simulated venues take them). An external venue is
    /// reconciled before new exposure goes out.
    pub fn go_live(&mut self, external: bool) {
        self.gate = Some(LiveGate::new(external));
        self.external = external.then(Vec::new);
    }

    /// Whether [`OrderPath::apply`] wants events of `kind` (the rest it ignores).
    pub fn applies(&self, kind: u8) -> bool {
        match Kind::from_code(kind) {
            Some(Kind::Bar | Kind::Fill) => true,
            Some(
                Kind::Custom
                | Kind::OrderRejected
                | Kind::OrderCanceled
                | Kind::OrderExpired
                | Kind::OrderModified,
            ) => self.gate.is_some(),
            _ => false,
        }
    }

    /// Whether `e` needs [`OrderPath::apply`] now: what it [`applies`](Self::applies) to,
    /// except a bar while the bar venue holds no order (most bars: the kernel then skips the
    /// call and its borrow of the portfolio).
    pub fn acts_on(&self, e: &Event) -> bool {
        if e.kind == Kind::Bar as u8 {
            return self.venue.open_orders() > 0;
        }
        self.applies(e.kind)
    }

    /// The commands for the external venue collected since the last call, in seq order.
    pub fn take_commands(&mut self) -> Vec<Event> {
        self.external
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Sequences a command (submit, cancel, modify; ts 0 = now) and runs it down the path.
    pub fn command(&mut self, cmd: Event, engine: &mut Engine<'_>, book: BookRoute<'_>) {
        let mut sink = Sink {
            engine,
            payloads: &mut self.payloads,
            gate: self.gate.as_mut(),
        };
        let cmd = sink.emit(cmd, None);
        if let Some(problem) = self.validation.problem(&cmd) {
            sink.report(Kind::OrderRejected, &cmd, Some(problem));
            return;
        }
        let submit = cmd.kind == Kind::OrderSubmit as u8;
        if submit {
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
            let held = sink.engine.portfolio.position(cmd.instrument).qty;
            if let Some(why) = sink.gate.as_deref_mut().and_then(|g| g.admit(&cmd, held)) {
                sink.report(Kind::OrderRejected, &cmd, Some(why.into()));
                return;
            }
        }
        if let Some(commands) = &mut self.external {
            commands.push(cmd);
            return;
        }
        match book(&cmd, sink.engine.core) {
            Some(Ok(())) => {}
            Some(Err(why)) => sink.report(Kind::OrderRejected, &cmd, Some(why)),
            None => self.venue.process(&cmd, &mut sink),
        }
    }

    /// Takes in an event sequenced outside the path (an input, or a venue's answer at its
    /// time): the bar venue fills on a bar, the portfolio folds a fill, the gate follows
    /// reports and applies the session's records (running the cancels and closing orders
    /// they ask for).
    pub fn apply(&mut self, e: &Event, engine: &mut Engine<'_>, book: BookRoute<'_>) {
        match Kind::from_code(e.kind) {
            Some(Kind::Bar) => self.on_bar(e, engine),
            Some(Kind::Fill) => {
                engine.portfolio.apply(e);
                if let Some(gate) = &mut self.gate {
                    gate.observe(e);
                }
            }
            Some(Kind::Custom) => {
                let (Some(gate), Some(code)) = (&mut self.gate, Code::of(e)) else {
                    return;
                };
                let action = gate.record(code, e.aux, e.seq);
                if action == Action::None {
                    return;
                }
                for cancel in gate.cancels() {
                    self.command(cancel, engine, book);
                }
                if action == Action::Flatten {
                    let instruments: Vec<u32> =
                        self.validation.instruments.iter().copied().collect();
                    for instrument in instruments {
                        let held = engine.portfolio.position(instrument).qty;
                        if held != 0 {
                            let order_id = *engine.order_ids;
                            *engine.order_ids += 1;
                            self.command(closing(instrument, held, order_id), engine, book);
                        }
                    }
                }
            }
            _ => {
                if let Some(gate) = &mut self.gate {
                    gate.observe(e);
                }
            }
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
            gate: self.gate.as_mut(),
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
        order_ids: i64,
    }

    impl Run {
        fn new(bars: Vec<Event>, limits: RiskLimits, fee_rate: f64) -> Run {
            let mut core = KernelCore::new(bars, 1, 1 << 16);
            for kind in [Kind::Bar, Kind::Fill, Kind::Custom] {
                core.subscribe(kind as u8, true);
            }
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
                order_ids: 100,
            }
        }

        /// The next input, after the path took it in (a bar: after the venue filled on
        /// it); the events Python would hear of.
        fn bar(&mut self) -> Vec<Event> {
            let input = self.core.advance().unwrap();
            let mut out = Vec::new();
            let mut engine = Engine {
                core: &mut self.core,
                portfolio: &mut self.portfolio,
                notify: &self.notify,
                out: &mut out,
                order_ids: &mut self.order_ids,
            };
            self.path.apply(&input, &mut engine, &mut |_, _| None);
            out
        }

        fn submit(&mut self, cmd: Event) -> Vec<Event> {
            let mut out = Vec::new();
            let mut engine = Engine {
                core: &mut self.core,
                portfolio: &mut self.portfolio,
                notify: &self.notify,
                out: &mut out,
                order_ids: &mut self.order_ids,
            };
            self.path.command(cmd, &mut engine, &mut |_, _| None);
            out
        }

        /// The kinds sequenced since the last call, with their reasons in words.
        fn logged(&mut self) -> Vec<(Kind, Option<String>)> {
            let payloads = std::mem::take(&mut self.path.payloads);
            self.core
                .drain()
                .iter()
                .map(|e| {
                    let words = payloads.iter().find(|p| p.0 == e.seq).map(|p| p.1.clone());
                    (Kind::from_code(e.kind).unwrap(), words)
                })
                .collect()
        }
    }

    fn record(ts: i64, code: Code, aux: i64) -> Event {
        Event {
            order_id: code as i64,
            aux,
            ..Event::new(Kind::Custom, ts)
        }
    }

    fn input_fill(ts: i64, order_id: i64, qty: i64, price: i64) -> Event {
        Event {
            instrument: 1,
            order_id,
            side: Side::Buy as u8,
            qty: qty * SCALE,
            price: price * SCALE,
            flags: flags::OWN,
            ..Event::new(Kind::Fill, ts)
        }
    }

    #[test]
    fn an_external_venue_gets_the_commands_that_passed_the_gate_and_its_fills_come_back() {
        let inputs = vec![
            bar(1, 10, 10),
            record(2, Code::Reconciled, 0),
            bar(3, 10, 10),
            input_fill(4, 2, 4, 10),
        ];
        let mut run = Run::new(inputs, RiskLimits::default(), 0.0);
        run.path.go_live(true);
        run.bar();
        // Reconciling: new exposure waits, refused with the reason.
        let refused = run.submit(order(1, Side::Buy, 5, 0));
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].kind, Kind::OrderRejected as u8);
        assert!(run.path.take_commands().is_empty());
        run.bar(); // RECONCILED
        run.submit(order(2, Side::Buy, 5, 0));
        run.submit(Event {
            kind: Kind::OrderCancel as u8,
            ..order(7, Side::Buy, 0, 0)
        });
        let taken = run.path.take_commands();
        let kinds: Vec<(u8, i64)> = taken.iter().map(|e| (e.kind, e.order_id)).collect();
        assert_eq!(
            kinds,
            [(Kind::OrderSubmit as u8, 2), (Kind::OrderCancel as u8, 7)]
        );
        assert!(run.path.take_commands().is_empty());
        // No simulated venue is involved: nothing accepted or filled on the next bar.
        assert!(run.bar().is_empty());
        assert_eq!(run.path.venue.open_orders(), 0);
        let logged: Vec<Kind> = run.logged().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            logged,
            [
                Kind::Bar,
                Kind::OrderSubmit,
                Kind::Risk,
                Kind::OrderRejected,
                Kind::Custom,
                Kind::OrderSubmit,
                Kind::Risk,
                Kind::OrderCancel,
                Kind::Bar,
            ]
        );
        // The venue's fill (an input) is folded and leaves the order partly open.
        run.bar();
        assert_eq!(run.portfolio.position(1).qty, 4 * SCALE);
        let open = run.path.gate.as_ref().unwrap().open_order(2).unwrap();
        assert_eq!(open.filled, 4 * SCALE);
    }

    #[test]
    fn flatten_on_an_external_venue_hands_it_the_cancels_and_the_closing_order() {
        let inputs = vec![
            bar(1, 10, 10),
            record(2, Code::Reconciled, 0),
            input_fill(3, 1, 10, 10),
            record(4, Code::Flatten, 0),
            record(5, Code::Stop, 1),
        ];
        let mut run = Run::new(inputs, RiskLimits::default(), 0.0);
        run.path.go_live(true);
        run.bar();
        run.bar(); // RECONCILED
        run.submit(order(1, Side::Buy, 10, 0));
        let resting = Event {
            price: 5 * SCALE,
            flags: 0,
            ..order(2, Side::Buy, 10, 0)
        };
        run.submit(resting);
        assert_eq!(run.path.take_commands().len(), 2);
        run.bar(); // order 1 filled at the venue
        assert_eq!(run.portfolio.position(1).qty, 10 * SCALE);
        run.bar(); // FLATTEN
        let taken: Vec<(u8, i64, u8)> = run
            .path
            .take_commands()
            .iter()
            .map(|e| (e.kind, e.order_id, e.side))
            .collect();
        assert_eq!(
            taken,
            [
                (Kind::OrderCancel as u8, 2, 0),
                (Kind::OrderSubmit as u8, 100, Side::Sell as u8),
            ]
        );
        // Nothing is canceled until the venue says so: the STOP cancels both again.
        run.bar();
        let ids: Vec<i64> = run
            .path
            .take_commands()
            .iter()
            .map(|e| e.order_id)
            .collect();
        assert_eq!(ids, [2, 100]);
        assert_eq!(
            run.path.gate.as_ref().unwrap().stop_seq,
            Some(run.core.next_seq() - 3)
        );
    }

    #[test]
    fn flatten_cancels_open_orders_then_closes_positions_through_the_path() {
        let inputs = vec![
            bar(1, 10, 10),
            bar(2, 10, 10),
            record(3, Code::Flatten, 0),
            bar(4, 12, 12),
        ];
        let mut run = Run::new(inputs, RiskLimits::default(), 0.0);
        run.path.go_live(false);
        run.bar();
        run.submit(order(1, Side::Buy, 10, 0));
        let resting = Event {
            price: 5 * SCALE,
            flags: 0,
            ..order(2, Side::Buy, 10, 0)
        };
        run.submit(resting);
        run.bar(); // the market buy fills at 10, the limit rests
        assert_eq!(run.portfolio.position(1).qty, 10 * SCALE);
        run.logged();
        run.bar(); // FLATTEN
        let logged = run.logged();
        let kinds: Vec<Kind> = logged.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            kinds,
            [
                Kind::Custom,
                Kind::OrderCancel,
                Kind::OrderCanceled,
                Kind::OrderSubmit,
                Kind::Risk,
                Kind::OrderAccepted,
            ]
        );
        // Paused now: a new buy is refused, the closing sell (id from the run's counter)
        // reduces and passes.
        assert_eq!(run.order_ids, 101);
        let refused = run.submit(order(101, Side::Buy, 1, 0));
        assert_eq!(refused[0].kind, Kind::OrderRejected as u8);
        let (_, words) = run.logged().pop().unwrap();
        assert_eq!(words.as_deref(), Some(super::super::gate::PAUSED));
        let fills = run.bar();
        assert_eq!(fills.len(), 1);
        assert_eq!((fills[0].order_id, fills[0].side), (100, Side::Sell as u8));
        assert_eq!(run.portfolio.position(1).qty, 0);
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
