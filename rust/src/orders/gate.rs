//! The live gate: the stage of a live node's order path between risk and the venue, deciding
//! which orders may go out from the session's own records (`admf.live.codes`: `CUSTOM` input
//! events whose `order_id` is a [`Code`]).
//!
//! - New exposure waits while the execution side reconciles (from `RECONCILING` until
//!   `RECONCILED`), while paused and once stopping; cancels, modifies and orders that only
//!   reduce a position still pass (a refused order gets `ORDER_REJECTED` with the reason).
//! - `FLATTEN` cancels every open order and sends a market order closing each position.
//! - `STOP` with `aux` 1 cancels every open order.
//!
//! Everything is decided from events in the log, so a replay decides the same. The gate only
//! decides and keeps its state; [`super::path::OrderPath`] runs the commands it asks for.

use std::collections::BTreeMap;

use crate::event::{flags, Event, Kind, Side};

/// The codes of a live session's records the gate reads (`order_id` of a `CUSTOM` input;
/// `admf.live.codes.LiveCode` holds every code, these included). Part of the log format.
#[repr(i64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    Reconciling = 1,
    Reconciled = 2,
    Pause = 10,
    Resume = 11,
    Flatten = 12,
    Stop = 13,
    Resumed = 30,
}

impl Code {
    /// Every code with its Python name.
    pub const ALL: &'static [(Code, &'static str)] = &[
        (Code::Reconciling, "RECONCILING"),
        (Code::Reconciled, "RECONCILED"),
        (Code::Pause, "PAUSE"),
        (Code::Resume, "RESUME"),
        (Code::Flatten, "FLATTEN"),
        (Code::Stop, "STOP"),
        (Code::Resumed, "RESUMED"),
    ];

    /// The code of a live record (a `CUSTOM` input event) the gate reads, if it is one.
    pub fn of(e: &Event) -> Option<Code> {
        if e.kind != Kind::Custom as u8 || e.flags & flags::INPUT == 0 {
            return None;
        }
        Code::ALL
            .iter()
            .find(|(c, _)| *c as i64 == e.order_id)
            .map(|(c, _)| *c)
    }
}

pub const STOPPING: &str = "live: the session is stopping; only reducing orders pass";
pub const RECONCILING: &str =
    "live: reconciling with the venue; new exposure waits until it is done";
pub const PAUSED: &str = "live: paused (admf live ctl ... resume); only reducing orders pass";

/// An order the gate let out and has not seen finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenOrder {
    pub instrument: u32,
    pub qty: i64,
    pub filled: i64,
}

/// What a record asks of the order path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    None,
    /// Cancel every open order.
    CancelAll,
    /// Cancel every open order, then close every position at market.
    Flatten,
}

#[derive(Clone, Debug, Default)]
pub struct LiveGate {
    /// The venue is external: it is reconciled at the start and again on each resume.
    reconciles: bool,
    pub reconciling: bool,
    pub paused: bool,
    pub stopping: bool,
    /// Open orders by id, each with the rank of its arrival: flattening cancels in the order
    /// the orders were sent.
    open: BTreeMap<i64, (u64, OpenOrder)>,
    arrivals: u64,
    /// The seq of the last `STOP` record applied.
    pub stop_seq: Option<u64>,
}

impl LiveGate {
    /// A gate in front of an external venue (`reconciles`: no new exposure before the first
    /// `RECONCILED`) or a simulated one.
    pub fn new(reconciles: bool) -> LiveGate {
        LiveGate {
            reconciles,
            reconciling: reconciles,
            ..LiveGate::default()
        }
    }

    /// Why a submit may not go out now (`held`: the position in its instrument), if it may
    /// not; else it is counted open from now on.
    pub fn admit(&mut self, order: &Event, held: i64) -> Option<&'static str> {
        if (self.reconciling || self.paused || self.stopping) && !reduces(order, held) {
            return Some(if self.stopping {
                STOPPING
            } else if self.reconciling {
                RECONCILING
            } else {
                PAUSED
            });
        }
        let open = OpenOrder {
            instrument: order.instrument,
            qty: order.qty,
            filled: 0,
        };
        match self.open.get_mut(&order.order_id) {
            // The same id again keeps its place (as a Python dict would).
            Some(entry) => entry.1 = open,
            None => {
                self.open.insert(order.order_id, (self.arrivals, open));
                self.arrivals += 1;
            }
        }
        None
    }

    /// Follows the venue's reports and fills (sequenced inputs and outputs alike).
    pub fn observe(&mut self, e: &Event) {
        match Kind::from_code(e.kind) {
            Some(Kind::Fill) => {
                if let Some((_, order)) = self.open.get_mut(&e.order_id) {
                    order.filled += e.qty;
                    // An order sized by value (qty 0) is done with its fill.
                    if order.qty == 0 || order.filled >= order.qty {
                        self.open.remove(&e.order_id);
                    }
                }
            }
            Some(Kind::OrderRejected) => {
                if let Some((_, order)) = self.open.get(&e.order_id) {
                    // A refused cancel or modify (no side, or not the order's qty) leaves
                    // its order open.
                    if e.side == Side::None as u8 || e.qty != order.qty {
                        return;
                    }
                }
                self.open.remove(&e.order_id);
            }
            Some(Kind::OrderCanceled | Kind::OrderExpired) => {
                self.open.remove(&e.order_id);
            }
            Some(Kind::OrderModified) => {
                // Its qty is what stays open: the order's qty is what was filled plus that.
                if let Some((_, order)) = self.open.get_mut(&e.order_id) {
                    order.qty = order.filled + e.qty;
                }
            }
            _ => {}
        }
    }

    /// Applies a live record (see [`Code::of`]) sequenced at `seq`; returns what the order
    /// path must do about it.
    pub fn record(&mut self, code: Code, aux: i64, seq: u64) -> Action {
        match code {
            Code::Reconciling => self.reconciling = true,
            Code::Reconciled => self.reconciling = false,
            Code::Pause => self.paused = true,
            Code::Resume => self.paused = false,
            Code::Flatten => {
                self.paused = true;
                return Action::Flatten;
            }
            Code::Resumed => {
                // A new session on the same log: the last one's stop is over; a venue's
                // orders are reconciled again before new exposure.
                self.stopping = false;
                self.reconciling = self.reconciling || self.reconciles;
            }
            Code::Stop => {
                self.stopping = true;
                self.stop_seq = Some(seq);
                if aux != 0 {
                    return Action::CancelAll;
                }
            }
        }
        Action::None
    }

    /// The cancels of every open order, in the order the orders were sent.
    pub fn cancels(&self) -> Vec<Event> {
        let mut open: Vec<(u64, i64, u32)> = self
            .open
            .iter()
            .map(|(&id, &(rank, order))| (rank, id, order.instrument))
            .collect();
        open.sort_unstable();
        open.into_iter()
            .map(|(_, order_id, instrument)| Event {
                instrument,
                order_id,
                ..Event::new(Kind::OrderCancel, 0)
            })
            .collect()
    }

    /// Orders open now, by id.
    pub fn open_order(&self, order_id: i64) -> Option<OpenOrder> {
        self.open.get(&order_id).map(|(_, order)| *order)
    }
}

/// Whether a submit only reduces the position `held` in its instrument.
fn reduces(order: &Event, held: i64) -> bool {
    let qty = order.qty;
    if qty <= 0 {
        return false;
    }
    if order.side == Side::Sell as u8 {
        held > 0 && qty <= held
    } else {
        held < 0 && qty <= -held
    }
}

/// The market order closing a position of `held` (not 0) in `instrument`.
pub fn closing(instrument: u32, held: i64, order_id: i64) -> Event {
    Event {
        instrument,
        order_id,
        side: if held > 0 { Side::Sell } else { Side::Buy } as u8,
        qty: held.abs(),
        flags: flags::MARKET,
        ..Event::new(Kind::OrderSubmit, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::SCALE;

    fn submit(id: i64, side: Side, qty: i64) -> Event {
        Event {
            instrument: 1,
            order_id: id,
            side: side as u8,
            qty: qty * SCALE,
            flags: flags::MARKET,
            ..Event::new(Kind::OrderSubmit, 0)
        }
    }

    fn record(code: Code, aux: i64) -> Event {
        Event {
            order_id: code as i64,
            aux,
            flags: flags::INPUT,
            ..Event::new(Kind::Custom, 0)
        }
    }

    fn report(kind: Kind, order: &Event) -> Event {
        Event {
            kind: kind as u8,
            ..*order
        }
    }

    #[test]
    fn only_inputs_with_a_gate_code_are_records() {
        assert_eq!(Code::of(&record(Code::Flatten, 0)), Some(Code::Flatten));
        let strategy_own = Event {
            flags: 0,
            ..record(Code::Flatten, 0)
        };
        assert_eq!(Code::of(&strategy_own), None);
        let other = Event {
            order_id: 20, // DUPLICATE_FILL: not the gate's
            ..record(Code::Stop, 0)
        };
        assert_eq!(Code::of(&other), None);
    }

    #[test]
    fn an_external_venue_admits_new_exposure_only_once_reconciled() {
        let mut gate = LiveGate::new(true);
        assert_eq!(gate.admit(&submit(1, Side::Buy, 10), 0), Some(RECONCILING));
        // Reducing a position passes even while reconciling.
        assert_eq!(gate.admit(&submit(2, Side::Sell, 5), 10 * SCALE), None);
        assert_eq!(
            gate.admit(&submit(3, Side::Sell, 11), 10 * SCALE),
            Some(RECONCILING)
        );
        gate.record(Code::Reconciled, 0, 7);
        assert_eq!(gate.admit(&submit(4, Side::Buy, 10), 0), None);
        // A resumed session reconciles again; a simulated venue never does.
        gate.record(Code::Resumed, 0, 8);
        assert_eq!(gate.admit(&submit(5, Side::Buy, 10), 0), Some(RECONCILING));
        let mut sim = LiveGate::new(false);
        sim.record(Code::Resumed, 0, 8);
        assert_eq!(sim.admit(&submit(1, Side::Buy, 10), 0), None);
    }

    #[test]
    fn stopping_outranks_reconciling_outranks_paused() {
        let mut gate = LiveGate::new(true);
        gate.record(Code::Pause, 0, 1);
        assert_eq!(gate.admit(&submit(1, Side::Buy, 1), 0), Some(RECONCILING));
        gate.record(Code::Reconciled, 0, 2);
        assert_eq!(gate.admit(&submit(2, Side::Buy, 1), 0), Some(PAUSED));
        assert_eq!(gate.record(Code::Stop, 0, 3), Action::None);
        assert_eq!(gate.stop_seq, Some(3));
        assert_eq!(gate.admit(&submit(3, Side::Buy, 1), 0), Some(STOPPING));
        gate.record(Code::Resume, 0, 4);
        assert_eq!(gate.admit(&submit(4, Side::Buy, 1), 0), Some(STOPPING));
        // A short is reduced by a buy of at most its size.
        assert_eq!(gate.admit(&submit(5, Side::Buy, 1), -SCALE), None);
    }

    #[test]
    fn open_orders_follow_fills_and_reports() {
        let mut gate = LiveGate::new(false);
        let (a, b, c, d) = (
            submit(4, Side::Buy, 10),
            submit(2, Side::Buy, 10),
            submit(3, Side::Sell, 5),
            Event {
                qty: 0,
                aux: 100 * SCALE,
                ..submit(9, Side::Buy, 0)
            },
        );
        for order in [&a, &b, &c, &d] {
            assert_eq!(gate.admit(order, 0), None);
        }
        // Partly filled: still open; filled: done.
        gate.observe(&Event {
            qty: 4 * SCALE,
            ..report(Kind::Fill, &a)
        });
        assert_eq!(gate.open_order(4).unwrap().filled, 4 * SCALE);
        gate.observe(&Event {
            qty: 6 * SCALE,
            ..report(Kind::Fill, &a)
        });
        assert_eq!(gate.open_order(4), None);
        // A value-sized order is done with its one fill.
        gate.observe(&Event {
            qty: 3 * SCALE,
            ..report(Kind::Fill, &d)
        });
        assert_eq!(gate.open_order(9), None);
        // A refused cancel (its qty is not the order's) leaves the order open.
        gate.observe(&Event {
            qty: 0,
            ..report(Kind::OrderRejected, &b)
        });
        assert!(gate.open_order(2).is_some());
        gate.observe(&report(Kind::OrderRejected, &b));
        assert_eq!(gate.open_order(2), None);
        assert_eq!(gate.cancels().len(), 1);
        gate.observe(&report(Kind::OrderExpired, &c));
        assert!(gate.cancels().is_empty());
    }

    #[test]
    fn a_modify_sets_what_stays_open_and_a_refused_one_leaves_the_order() {
        let mut gate = LiveGate::new(false);
        let order = submit(5, Side::Buy, 10);
        assert_eq!(gate.admit(&order, 0), None);
        gate.observe(&Event {
            qty: 4 * SCALE,
            ..report(Kind::Fill, &order)
        });
        // Modified to 2 still open: done after 6 filled in all, not 10.
        gate.observe(&Event {
            qty: 2 * SCALE,
            ..report(Kind::OrderModified, &order)
        });
        assert_eq!(gate.open_order(5).unwrap().qty, 6 * SCALE);
        // A refused modify has no side, whatever its qty: the order stays open.
        gate.observe(&Event {
            side: Side::None as u8,
            qty: 6 * SCALE,
            ..report(Kind::OrderRejected, &order)
        });
        assert!(gate.open_order(5).is_some());
        gate.observe(&Event {
            qty: 2 * SCALE,
            ..report(Kind::Fill, &order)
        });
        assert_eq!(gate.open_order(5), None);
    }

    #[test]
    fn flatten_and_stop_with_cancel_cancel_in_the_order_sent() {
        let mut gate = LiveGate::new(false);
        for id in [7, 3, 5] {
            gate.admit(&submit(id, Side::Buy, 1), 0);
        }
        assert_eq!(gate.record(Code::Flatten, 0, 1), Action::Flatten);
        assert!(gate.paused);
        let ids: Vec<i64> = gate.cancels().iter().map(|e| e.order_id).collect();
        assert_eq!(ids, [7, 3, 5]);
        assert!(gate
            .cancels()
            .iter()
            .all(|e| e.kind == Kind::OrderCancel as u8));
        assert_eq!(gate.record(Code::Stop, 1, 2), Action::CancelAll);
        assert_eq!(gate.record(Code::Stop, 0, 3), Action::None);
        let close = closing(1, -3 * SCALE, 8);
        assert_eq!(
            (close.side, close.qty, close.flags, close.order_id),
            (Side::Buy as u8, 3 * SCALE, flags::MARKET, 8)
        );
    }
}
