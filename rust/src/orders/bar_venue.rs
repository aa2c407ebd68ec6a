//! The simulated venue for bar data and its fill conventions (stated in `admf.venue`'s
//! docstring, which a user reads): next open or close, limits, IOC/FOK, value-sized orders
//! sized at the fill price with fees, and cash that never goes negative.

use crate::event::{flags, Event, Kind, Side};

use super::fees::{FeeModel, SlippageModel};
use super::portfolio::notional;
use super::units_text;

/// When an order decided on a bar fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FillAt {
    /// At the open of the next bar of its instrument.
    NextOpen,
    /// At the close of the bar it was decided on ("cheat on close").
    Close,
}

/// What the venue needs from the engine around it: the account's cash and the market's last
/// price to decide, and a way to sequence its reports and fills (fills are folded into the
/// portfolio as they are sequenced, so the next order on the same bar sees the cash left).
pub trait VenueSink {
    fn cash(&self) -> i64;
    fn last_price(&self, instrument: u32) -> Option<i64>;
    fn report(&mut self, kind: Kind, order: &Event, reason: Option<String>);
    fn fill(&mut self, fill: Event);
}

#[derive(Clone, Debug)]
pub struct BarVenue {
    pub fill_at: FillAt,
    pub fees: FeeModel,
    pub slippage: SlippageModel,
    /// The lot size of value-sized orders, fixed point.
    pub lot: i64,
    /// Open orders in arrival order (a resting limit goes to the back after each bar).
    pending: Vec<Event>,
    /// The orders being filled on a bar (kept to reuse its allocation).
    filling: Vec<Event>,
}

impl BarVenue {
    pub fn new(fill_at: FillAt, fees: FeeModel, slippage: SlippageModel, lot: i64) -> BarVenue {
        BarVenue {
            fill_at,
            fees,
            slippage,
            lot,
            pending: Vec::new(),
            filling: Vec::new(),
        }
    }

    /// Orders waiting for a bar.
    pub fn open_orders(&self) -> usize {
        self.pending.len()
    }

    /// Takes a submit, a cancel or a modify.
    pub fn process(&mut self, order: &Event, sink: &mut impl VenueSink) {
        match Kind::from_code(order.kind) {
            Some(Kind::OrderCancel) => {
                match self
                    .pending
                    .iter()
                    .position(|o| o.order_id == order.order_id)
                {
                    Some(i) => {
                        let target = self.pending.remove(i);
                        sink.report(Kind::OrderCanceled, &target, None);
                    }
                    None => sink.report(
                        Kind::OrderRejected,
                        order,
                        Some("cancel of an order that is not open".into()),
                    ),
                }
            }
            Some(Kind::OrderModify) => {
                match self
                    .pending
                    .iter_mut()
                    .find(|o| o.order_id == order.order_id)
                {
                    Some(target) => {
                        target.price = order.price;
                        target.qty = order.qty;
                        let target = *target;
                        sink.report(Kind::OrderModified, &target, None);
                    }
                    None => sink.report(
                        Kind::OrderRejected,
                        order,
                        Some("modify of an order that is not open".into()),
                    ),
                }
            }
            _ => {
                sink.report(Kind::OrderAccepted, order, None);
                if self.fill_at == FillAt::Close {
                    match sink.last_price(order.instrument) {
                        Some(close) => {
                            if let Some(rest) = self.try_fill(order, close, close, close, sink) {
                                self.pending.push(rest);
                            }
                        }
                        None => sink.report(
                            Kind::OrderRejected,
                            order,
                            Some("no bar yet to fill at its close".into()),
                        ),
                    }
                } else {
                    self.pending.push(*order);
                }
            }
        }
    }

    /// Fills what is open on this bar's instrument, in arrival order (before strategies see
    /// the bar).
    pub fn on_bar(&mut self, bar: &Event, sink: &mut impl VenueSink) {
        if !self.pending.iter().any(|o| o.instrument == bar.instrument) {
            return;
        }
        let mut mine = std::mem::take(&mut self.filling);
        mine.clear();
        mine.extend(
            self.pending
                .iter()
                .filter(|o| o.instrument == bar.instrument),
        );
        self.pending.retain(|o| o.instrument != bar.instrument);
        // Bar slots: open in aux, high in order_id, low in payload.
        for order in &mine {
            if let Some(rest) = self.try_fill(order, bar.aux, bar.order_id, bar.payload, sink) {
                self.pending.push(rest);
            }
        }
        self.filling = mine;
    }

    /// Fills `order` on a bar, or reports why not; returns it if it rests.
    fn try_fill(
        &self,
        order: &Event,
        open: i64,
        high: i64,
        low: i64,
        sink: &mut impl VenueSink,
    ) -> Option<Event> {
        let buy = order.side == Side::Buy as u8;
        let market = order.flags & flags::MARKET != 0;
        let price = if market {
            self.slippage.adjust(open, order.side)
        } else if buy && low <= order.price {
            open.min(order.price)
        } else if !buy && high >= order.price {
            open.max(order.price)
        } else if order.flags & (flags::IOC | flags::FOK) != 0 {
            sink.report(
                Kind::OrderExpired,
                order,
                Some("limit not reached on the next bar".into()),
            );
            return None;
        } else {
            return Some(*order); // rests until a bar reaches the limit
        };
        let cash = sink.cash();
        let mut qty = order.qty;
        if qty == 0 {
            let budget = if buy { order.aux.min(cash) } else { order.aux };
            qty = self.fees.affordable(price, budget, self.lot);
            if qty == 0 {
                sink.report(
                    Kind::OrderRejected,
                    order,
                    Some("value buys no whole lot (fees included)".into()),
                );
                return None;
            }
        }
        let fee = self.fees.fee(price, qty);
        let cost = notional(price, qty);
        let after = if buy {
            cash - cost - fee
        } else {
            cash + cost - fee
        };
        if after < 0 && after < cash {
            // A sell that brings cash up is never refused.
            let reason = format!(
                "insufficient cash: {} {} at {} leaves {:.2} after fees (cash {:.2})",
                if buy { "buying" } else { "selling" },
                units_text(qty),
                units_text(price),
                after as f64 / crate::event::SCALE as f64,
                cash as f64 / crate::event::SCALE as f64,
            );
            sink.report(Kind::OrderRejected, order, Some(reason));
            return None;
        }
        sink.fill(Event {
            instrument: order.instrument,
            order_id: order.order_id,
            side: order.side,
            price,
            qty,
            aux: fee,
            flags: flags::OWN | if market { flags::AGGRESSOR } else { 0 },
            ..Event::new(Kind::Fill, 0)
        });
        None
    }
}
