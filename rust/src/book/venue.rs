//! The simulated venue of a backtest: the market's book, driven by market data, plus our own
//! orders, which never change the market's book (the data already says what everyone else
//! did).
//!
//! Rules, in the order they apply:
//! - A command (`ORDER_SUBMIT`, `ORDER_CANCEL`, `ORDER_MODIFY`) reaches the venue
//!   [`Latency::to_venue`] after its `ts`, and is handled once the venue's clock (the time of
//!   the latest market delta, or [`SimVenue::advance`]) reaches that instant. Every answer is
//!   stamped [`Latency::to_strategy`] after the venue time it happened at.
//! - An own order that crosses the market takes liquidity level by level in price-time order
//!   (anonymous size first), paying the taker fee. Liquidity it took stays taken for later
//!   own orders until the market's own updates at that level remove at least as much.
//! - An own limit order that rests joins the back of its level: all market size at that
//!   price is ahead of it. Ahead size shrinks when orders that arrived earlier trade or
//!   cancel (or, for a smaller size at the same price, shrink); it never exceeds the market's
//!   size at the price.
//! - A resting own order fills (as maker, at its own price) when the market shows that an
//!   aggressor reached it: an execution at its price of a market order that arrived after
//!   it, an execution at a worse price on its side (a trade through it), or a market order
//!   added (or moved) on the other side at a price that crosses it. The executed or added
//!   size is the budget shared by the own orders it reaches, best price first, then time.
//! - Own orders do not match each other (no self-trade).
//! - Market data is L3 book deltas or L1 quotes. A quote replaces the whole book (see
//!   [`quote_deltas`]): after it an own order resting at the quoted price has nothing ahead
//!   of it, and it fills when a later quote's other side reaches its price (an ask at or
//!   below a buy's limit). Trades do not move the venue.

use std::collections::BTreeMap;

use super::matching::{fill_event, Order, OrderType, TimeInForce};
use super::{quote_deltas, BookError, OrderBook, OrderView};
use crate::event::{Event, Kind, Side};

/// Maker and taker fee rates, fixed point ([`crate::event::SCALE`] = 100%); a negative rate
/// is a rebate. A fill's fee is `price * qty * rate`, in the record's `aux`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fees {
    pub maker: i64,
    pub taker: i64,
}

/// One-way latencies in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    /// From the strategy's command to the venue acting on it.
    pub to_venue: i64,
    /// From the venue's answer to the strategy seeing it.
    pub to_strategy: i64,
}

/// Why the venue refused a command; the code is in the `ORDER_REJECTED` record's `aux`.
#[repr(i64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    UnknownOrder = 1,
    DuplicateOrder = 2,
    BadQuantity = 3,
    OffTick = 4,
    BadSide = 5,
    PostOnlyWouldTake = 6,
}

/// One of our orders resting at the venue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnOrder {
    pub id: i64,
    pub side: Side,
    pub price: i64,
    /// Size still open.
    pub qty: i64,
    /// Size filled so far.
    pub filled: i64,
    /// Market size ahead of it in its level's queue.
    pub ahead: i64,
    /// Market orders with a smaller arrival number than this are ahead of it.
    join_seq: u64,
}

/// The simulated venue. See the module documentation of `admf::book`.
#[derive(Clone, Debug)]
pub struct SimVenue {
    book: OrderBook,
    fees: Fees,
    latency: Latency,
    orders: BTreeMap<i64, OwnOrder>,
    /// Own resting orders per (side, key), key ascending = best first; ids in time order.
    resting: BTreeMap<(u8, i64), Vec<i64>>,
    pending: BTreeMap<(i64, u64), Event>,
    counter: u64,
    /// Liquidity own orders took per (side, price) that the market has not yet removed.
    taken: BTreeMap<(u8, i64), i64>,
    now: i64,
}

#[inline]
fn own_key(side: Side, price: i64) -> (u8, i64) {
    // Best first in ascending order: bids by descending price.
    if side == Side::Buy {
        (side as u8, price.wrapping_neg())
    } else {
        (side as u8, price)
    }
}

fn opposite(side: Side) -> Side {
    if side == Side::Buy {
        Side::Sell
    } else {
        Side::Buy
    }
}

impl SimVenue {
    /// A venue around a market book (empty or seeded), with fees and latencies.
    pub fn new(book: OrderBook, fees: Fees, latency: Latency) -> SimVenue {
        SimVenue {
            book,
            fees,
            latency,
            orders: BTreeMap::new(),
            resting: BTreeMap::new(),
            pending: BTreeMap::new(),
            counter: 0,
            taken: BTreeMap::new(),
            now: i64::MIN,
        }
    }

    /// The market's book.
    pub fn book(&self) -> &OrderBook {
        &self.book
    }

    /// The venue's clock: the latest time it has processed.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// An own order that is open at the venue.
    pub fn order(&self, id: i64) -> Option<&OwnOrder> {
        self.orders.get(&id)
    }

    /// Own open orders, by id.
    pub fn open_orders(&self) -> impl Iterator<Item = &OwnOrder> {
        self.orders.values()
    }

    /// Commands sent but not yet at the venue.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Sends a command (`ORDER_SUBMIT`, `ORDER_CANCEL` or `ORDER_MODIFY`, stamped with the
    /// strategy's time). It is handled now if the latency has already passed on the venue's
    /// clock, else when the clock gets there. Other kinds are an error.
    pub fn submit(&mut self, cmd: &Event, out: &mut Vec<Event>) -> Result<(), BookError> {
        match Kind::from_code(cmd.kind) {
            Some(Kind::OrderSubmit | Kind::OrderCancel | Kind::OrderModify) => {}
            _ => return Err(BookError::BadKind { kind: cmd.kind }),
        }
        let arrival = cmd.ts.saturating_add(self.latency.to_venue);
        self.pending.insert((arrival, self.counter), *cmd);
        self.counter += 1;
        let now = self.now;
        self.run_due(now, out);
        Ok(())
    }

    /// Moves the venue's clock to `ts`, handling the commands that arrive by then.
    pub fn advance(&mut self, ts: i64, out: &mut Vec<Event>) {
        self.run_due(ts, out);
        self.now = self.now.max(ts);
    }

    fn run_due(&mut self, ts: i64, out: &mut Vec<Event>) {
        while let Some(entry) = self.pending.first_entry() {
            let (arrival, _) = *entry.key();
            if arrival > ts {
                break;
            }
            let cmd = entry.remove();
            let at = arrival.max(self.now);
            self.now = at;
            self.handle(&cmd, at, out);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn answer(
        &self,
        kind: Kind,
        at: i64,
        id: i64,
        side: u8,
        price: i64,
        qty: i64,
        aux: i64,
    ) -> Event {
        Event {
            kind: kind as u8,
            ts: at.saturating_add(self.latency.to_strategy),
            order_id: id,
            side,
            price,
            qty,
            aux,
            instrument: self.book.instrument(),
            flags: crate::event::flags::OWN,
            ..Event::default()
        }
    }

    fn reject(&self, cmd: &Event, at: i64, reason: RejectReason, out: &mut Vec<Event>) {
        out.push(self.answer(
            Kind::OrderRejected,
            at,
            cmd.order_id,
            cmd.side,
            cmd.price,
            cmd.qty,
            reason as i64,
        ));
    }

    fn handle(&mut self, cmd: &Event, at: i64, out: &mut Vec<Event>) {
        match Kind::from_code(cmd.kind) {
            Some(Kind::OrderSubmit) => {
                let order = match Order::from_event(cmd) {
                    Ok(o) => o,
                    Err(_) => return self.reject(cmd, at, RejectReason::BadSide, out),
                };
                if self.orders.contains_key(&order.id) {
                    return self.reject(cmd, at, RejectReason::DuplicateOrder, out);
                }
                self.enter(order, at, cmd, out);
            }
            Some(Kind::OrderCancel) => match self.remove_own(cmd.order_id) {
                Some(o) => out.push(self.answer(
                    Kind::OrderCanceled,
                    at,
                    o.id,
                    o.side as u8,
                    o.price,
                    o.qty,
                    0,
                )),
                None => self.reject(cmd, at, RejectReason::UnknownOrder, out),
            },
            Some(Kind::OrderModify) => {
                let Some(&o) = self.orders.get(&cmd.order_id) else {
                    return self.reject(cmd, at, RejectReason::UnknownOrder, out);
                };
                if cmd.qty <= 0 {
                    return self.reject(cmd, at, RejectReason::BadQuantity, out);
                }
                if cmd.price % self.book.tick() != 0 {
                    return self.reject(cmd, at, RejectReason::OffTick, out);
                }
                out.push(self.answer(
                    Kind::OrderModified,
                    at,
                    o.id,
                    o.side as u8,
                    cmd.price,
                    cmd.qty,
                    0,
                ));
                if cmd.price == o.price && cmd.qty <= o.qty {
                    if let Some(m) = self.orders.get_mut(&o.id) {
                        m.qty = cmd.qty;
                    }
                    return;
                }
                self.remove_own(o.id);
                let order = Order {
                    own: true,
                    ts: at,
                    ..Order::limit(o.id, o.side, cmd.price, cmd.qty)
                };
                self.take_and_rest(order, at, o.filled, out);
            }
            _ => {}
        }
    }

    fn enter(&mut self, order: Order, at: i64, cmd: &Event, out: &mut Vec<Event>) {
        if order.qty <= 0 {
            return self.reject(cmd, at, RejectReason::BadQuantity, out);
        }
        if order.order_type == OrderType::Limit && order.price % self.book.tick() != 0 {
            return self.reject(cmd, at, RejectReason::OffTick, out);
        }
        let crosses = self
            .book
            .depth(opposite(order.side), 1)
            .next()
            .is_some_and(|l| order.crosses(l.price));
        if order.post_only && crosses {
            return self.reject(cmd, at, RejectReason::PostOnlyWouldTake, out);
        }
        out.push(self.answer(
            Kind::OrderAccepted,
            at,
            order.id,
            order.side as u8,
            order.price,
            order.qty,
            0,
        ));
        if order.tif == TimeInForce::Fok && self.available(&order) < order.qty {
            out.push(self.answer(
                Kind::OrderExpired,
                at,
                order.id,
                order.side as u8,
                order.price,
                order.qty,
                0,
            ));
            return;
        }
        self.take_and_rest(order, at, 0, out);
    }

    /// Market liquidity (minus what own orders took) within the order's limit, up to its size.
    fn available(&self, order: &Order) -> i64 {
        let side = opposite(order.side);
        let mut total = 0;
        for level in self.book.depth(side, usize::MAX) {
            if !order.crosses(level.price) || total >= order.qty {
                break;
            }
            let taken = self
                .taken
                .get(&(side as u8, level.price))
                .copied()
                .unwrap_or(0);
            total += (level.qty - taken).max(0);
        }
        total
    }

    fn take_and_rest(&mut self, order: Order, at: i64, filled_before: i64, out: &mut Vec<Event>) {
        let remaining = self.take(&order, at, out);
        let filled = filled_before + order.qty - remaining;
        if remaining == 0 {
            return;
        }
        if order.order_type == OrderType::Limit && order.tif == TimeInForce::Gtc {
            let own = OwnOrder {
                id: order.id,
                side: order.side,
                price: order.price,
                qty: remaining,
                filled,
                ahead: self.book.size_at(order.side, order.price),
                join_seq: self.book.next_seq(),
            };
            self.orders.insert(order.id, own);
            self.resting
                .entry(own_key(order.side, order.price))
                .or_default()
                .push(order.id);
        } else {
            out.push(self.answer(
                Kind::OrderExpired,
                at,
                order.id,
                order.side as u8,
                order.price,
                remaining,
                0,
            ));
        }
    }

    /// Takes market liquidity for an own order; returns the size left.
    fn take(&mut self, order: &Order, at: i64, out: &mut Vec<Event>) -> i64 {
        let side = opposite(order.side);
        let mut remaining = order.qty;
        let ts = at.saturating_add(self.latency.to_strategy);
        let flags = crate::event::flags::OWN | crate::event::flags::AGGRESSOR;
        let instrument = self.book.instrument();
        let levels: Vec<_> = self.book.depth(side, usize::MAX).collect();
        for level in levels {
            if remaining == 0 || !order.crosses(level.price) {
                break;
            }
            let key = (side as u8, level.price);
            let mut skip = self.taken.get(&key).copied().unwrap_or(0);
            let mut took = 0;
            // The level's queue: anonymous size first, then orders in time order.
            let mut chunks = vec![(0i64, level.anonymous)];
            chunks.extend(self.book.queue(side, level.price));
            for (contra, size) in chunks {
                if remaining == 0 {
                    break;
                }
                let size = if skip >= size {
                    skip -= size;
                    continue;
                } else {
                    let s = size - skip;
                    skip = 0;
                    s
                };
                let q = size.min(remaining);
                remaining -= q;
                took += q;
                out.push(fill_event(
                    instrument,
                    ts,
                    order.id,
                    order.side,
                    level.price,
                    q,
                    super::Fees::fee(level.price, q, self.fees.taker),
                    contra,
                    flags,
                ));
            }
            if took > 0 {
                *self.taken.entry(key).or_insert(0) += took;
            }
        }
        remaining
    }

    fn remove_own(&mut self, id: i64) -> Option<OwnOrder> {
        let o = self.orders.remove(&id)?;
        let key = own_key(o.side, o.price);
        if let Some(ids) = self.resting.get_mut(&key) {
            ids.retain(|&x| x != id);
            if ids.is_empty() {
                self.resting.remove(&key);
            }
        }
        Some(o)
    }

    /// The kinds of market data the venue takes: book deltas (an L3 book) and quotes (an L1
    /// book, replaced whole by each; see [`quote_deltas`]). Trades are not among them (see
    /// the `quote` module).
    pub fn takes(kind: u8) -> bool {
        kind == Kind::Quote as u8 || (Kind::BookAdd as u8..=Kind::BookClear as u8).contains(&kind)
    }

    /// Applies market data (a book delta, or a quote: see [`SimVenue::takes`]) and derives
    /// what it means for own orders; appends own fills to `out`. Commands due by its time are
    /// handled first. Data the book refuses is returned as the error, and the book is
    /// unchanged.
    pub fn on_market(&mut self, data: &Event, out: &mut Vec<Event>) -> Result<(), BookError> {
        if data.kind == Kind::Quote as u8 {
            let deltas = quote_deltas(data, self.book.tick())?;
            for delta in deltas.as_slice() {
                self.on_delta(delta, out)?;
            }
            return Ok(());
        }
        self.on_delta(data, out)
    }

    fn on_delta(&mut self, delta: &Event, out: &mut Vec<Event>) -> Result<(), BookError> {
        self.advance(delta.ts, out);
        let pre: Option<OrderView> = self.book.order(delta.order_id);
        self.book.apply(delta)?;
        let at = delta.ts;
        let kind = Kind::from_code(delta.kind);
        let (side, price) = match pre {
            Some(p) => (p.side, p.price),
            None => (
                Side::from_code(delta.side).unwrap_or(Side::None),
                delta.price,
            ),
        };
        match kind {
            Some(Kind::BookExecute) => {
                self.on_execute(delta, pre, side, price, at, out);
            }
            Some(Kind::BookCancel) => {
                let q = match pre {
                    Some(p) if delta.qty == 0 || delta.qty > p.qty => p.qty,
                    _ => delta.qty,
                };
                self.shrink_ahead(side, price, pre, q);
            }
            Some(Kind::BookModify) => {
                if let Some(p) = pre {
                    let keeps = delta.price == p.price && delta.qty <= p.qty;
                    let gone = if keeps { p.qty - delta.qty } else { p.qty };
                    self.shrink_ahead(side, price, pre, gone);
                    if !keeps {
                        self.cross_own(
                            opposite(p.side),
                            delta.price,
                            delta.qty,
                            delta.order_id,
                            at,
                            out,
                        );
                    }
                }
            }
            Some(Kind::BookAdd) => {
                if let Some(s) = Side::from_code(delta.side) {
                    if s != Side::None {
                        self.cross_own(
                            opposite(s),
                            delta.price,
                            delta.qty,
                            delta.order_id,
                            at,
                            out,
                        );
                    }
                }
            }
            _ => {}
        }
        self.clamp(side, price, kind == Some(Kind::BookClear));
        Ok(())
    }

    /// Market orders that arrived before an own order are ahead of it.
    fn is_ahead(pre: Option<OrderView>, own: &OwnOrder) -> bool {
        pre.is_none_or(|p| p.seq < own.join_seq)
    }

    fn shrink_ahead(&mut self, side: Side, price: i64, pre: Option<OrderView>, q: i64) {
        if side == Side::None {
            return;
        }
        if let Some(ids) = self.resting.get(&own_key(side, price)) {
            for id in ids {
                if let Some(o) = self.orders.get_mut(id) {
                    if Self::is_ahead(pre, o) {
                        o.ahead = (o.ahead - q).max(0);
                    }
                }
            }
        }
    }

    fn on_execute(
        &mut self,
        delta: &Event,
        pre: Option<OrderView>,
        side: Side,
        price: i64,
        at: i64,
        out: &mut Vec<Event>,
    ) {
        if side == Side::None {
            return;
        }
        let mut budget = delta.qty;
        let stop = own_key(side, price);
        let keys: Vec<(u8, i64)> = self
            .resting
            .range((side as u8, i64::MIN)..=stop)
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            let ids = self.resting.get(&key).cloned().unwrap_or_default();
            for id in ids {
                let Some(o) = self.orders.get(&id).copied() else {
                    continue;
                };
                if key == stop && Self::is_ahead(pre, &o) {
                    if let Some(m) = self.orders.get_mut(&id) {
                        m.ahead = (m.ahead - delta.qty).max(0);
                    }
                    continue;
                }
                if budget == 0 {
                    continue;
                }
                let q = o.qty.min(budget);
                budget -= q;
                self.fill_own(id, q, delta.order_id, at, out);
            }
        }
    }

    /// A market order of `qty` at `price` arrived on the side opposite `own_side`: own orders
    /// it crosses fill, best first.
    fn cross_own(
        &mut self,
        own_side: Side,
        price: i64,
        qty: i64,
        contra: i64,
        at: i64,
        out: &mut Vec<Event>,
    ) {
        let mut budget = qty;
        let stop = own_key(own_side, price);
        let keys: Vec<(u8, i64)> = self
            .resting
            .range((own_side as u8, i64::MIN)..=stop)
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            let ids = self.resting.get(&key).cloned().unwrap_or_default();
            for id in ids {
                if budget == 0 {
                    return;
                }
                let Some(o) = self.orders.get(&id).copied() else {
                    continue;
                };
                let q = o.qty.min(budget);
                budget -= q;
                self.fill_own(id, q, contra, at, out);
            }
        }
    }

    fn fill_own(&mut self, id: i64, q: i64, contra: i64, at: i64, out: &mut Vec<Event>) {
        let Some(o) = self.orders.get_mut(&id) else {
            return;
        };
        o.qty -= q;
        o.filled += q;
        o.ahead = 0;
        let o = *o;
        out.push(fill_event(
            self.book.instrument(),
            at.saturating_add(self.latency.to_strategy),
            id,
            o.side,
            o.price,
            q,
            super::Fees::fee(o.price, q, self.fees.maker),
            contra,
            crate::event::flags::OWN,
        ));
        if o.qty == 0 {
            self.remove_own(id);
        }
    }

    /// Keeps every ahead size within the market's size at its price, and taken liquidity
    /// within what the market still shows.
    fn clamp(&mut self, side: Side, price: i64, all: bool) {
        let keys: Vec<(u8, i64)> = if all {
            self.resting.keys().copied().collect()
        } else if side == Side::None {
            Vec::new()
        } else {
            vec![own_key(side, price)]
        };
        for key in keys {
            let Some(ids) = self.resting.get(&key) else {
                continue;
            };
            for id in ids {
                if let Some(o) = self.orders.get_mut(id) {
                    o.ahead = o.ahead.min(self.book.size_at(o.side, o.price));
                }
            }
        }
        if all {
            let book = &self.book;
            self.taken.retain(|&(s, p), t| {
                let size = Side::from_code(s).map_or(0, |s| book.size_at(s, p));
                *t = (*t).min(size);
                *t > 0
            });
        } else if side != Side::None {
            let key = (side as u8, price);
            if let Some(t) = self.taken.get_mut(&key) {
                *t = (*t).min(self.book.size_at(side, price));
                if *t == 0 {
                    self.taken.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::synthetic::delta;
    use crate::event::flags;

    fn submit(ts: i64, id: i64, side: Side, price: i64, qty: i64, f: u16) -> Event {
        Event {
            flags: f | flags::OWN,
            ..delta(Kind::OrderSubmit, ts, id, side, price, qty)
        }
    }

    fn venue() -> SimVenue {
        let mut v = SimVenue::new(
            OrderBook::new(1).unwrap(),
            Fees::default(),
            Latency {
                to_venue: 10,
                to_strategy: 5,
            },
        );
        let mut out = Vec::new();
        v.on_market(&delta(Kind::BookAdd, 0, 1, Side::Buy, 100, 5), &mut out)
            .unwrap();
        v.on_market(&delta(Kind::BookAdd, 1, 2, Side::Buy, 100, 5), &mut out)
            .unwrap();
        v.on_market(&delta(Kind::BookAdd, 2, 3, Side::Sell, 102, 5), &mut out)
            .unwrap();
        assert!(out.is_empty());
        v
    }

    #[test]
    fn queue_position_needs_volume_ahead_to_go_first() {
        let mut v = venue();
        let mut out = Vec::new();
        v.submit(&submit(100, 50, Side::Buy, 100, 3, 0), &mut out)
            .unwrap();
        assert!(out.is_empty(), "latency: not at the venue yet");
        v.advance(110, &mut out);
        assert_eq!(out[0].kind, Kind::OrderAccepted as u8);
        assert_eq!(out[0].ts, 115);
        assert_eq!(v.order(50).unwrap().ahead, 10);
        out.clear();
        // A market order behind ours arrives; order 1 (ahead) cancels; order 2 trades.
        v.on_market(&delta(Kind::BookAdd, 120, 4, Side::Buy, 100, 7), &mut out)
            .unwrap();
        v.on_market(
            &delta(Kind::BookCancel, 121, 1, Side::Buy, 100, 5),
            &mut out,
        )
        .unwrap();
        assert_eq!(v.order(50).unwrap().ahead, 5);
        v.on_market(
            &delta(Kind::BookExecute, 122, 2, Side::Buy, 100, 5),
            &mut out,
        )
        .unwrap();
        assert_eq!(v.order(50).unwrap().ahead, 0);
        assert!(out.is_empty());
        // Now order 4, behind us, trades: the aggressor reached us first.
        v.on_market(
            &delta(Kind::BookExecute, 123, 4, Side::Buy, 100, 2),
            &mut out,
        )
        .unwrap();
        assert_eq!(out.len(), 1);
        let f = out[0];
        assert_eq!(
            (f.kind, f.order_id, f.qty, f.price, f.payload),
            (Kind::Fill as u8, 50, 2, 100, 4)
        );
        assert_eq!(f.flags, flags::OWN);
        assert_eq!(v.order(50).unwrap().qty, 1);
    }

    #[test]
    fn taking_liquidity_is_remembered_until_the_market_removes_it() {
        let mut v = SimVenue::new(
            OrderBook::new(1).unwrap(),
            Fees {
                maker: 0,
                taker: 1_000_000,
            },
            Latency::default(),
        );
        let mut out = Vec::new();
        v.on_market(&delta(Kind::BookAdd, 0, 3, Side::Sell, 102, 5), &mut out)
            .unwrap();
        v.submit(&submit(1, 60, Side::Buy, 102, 3, flags::IOC), &mut out)
            .unwrap();
        v.advance(1, &mut out);
        let fills: Vec<_> = out.iter().filter(|e| e.kind == Kind::Fill as u8).collect();
        assert_eq!(fills.len(), 1);
        assert_eq!(fills[0].flags, flags::OWN | flags::AGGRESSOR);
        assert_eq!(fills[0].aux, Fees::fee(102, 3, 1_000_000));
        out.clear();
        v.submit(&submit(2, 61, Side::Buy, 102, 3, flags::FOK), &mut out)
            .unwrap();
        v.advance(2, &mut out);
        assert_eq!(out.last().unwrap().kind, Kind::OrderExpired as u8);
        out.clear();
        v.submit(&submit(3, 62, Side::Buy, 102, 3, flags::IOC), &mut out)
            .unwrap();
        v.advance(3, &mut out);
        let filled: i64 = out
            .iter()
            .filter(|e| e.kind == Kind::Fill as u8)
            .map(|e| e.qty)
            .sum();
        assert_eq!(filled, 2);
        out.clear();
        v.submit(
            &submit(4, 63, Side::Buy, 102, 1, flags::POST_ONLY),
            &mut out,
        )
        .unwrap();
        v.advance(4, &mut out);
        assert_eq!(out[0].kind, Kind::OrderRejected as u8);
        assert_eq!(out[0].aux, RejectReason::PostOnlyWouldTake as i64);
    }

    #[test]
    fn crossing_market_order_and_trade_through_fill_resting_own_orders() {
        let mut v = venue();
        let mut out = Vec::new();
        v.submit(&submit(0, 70, Side::Sell, 101, 4, 0), &mut out)
            .unwrap();
        v.advance(10, &mut out);
        assert_eq!(v.order(70).unwrap().ahead, 0);
        out.clear();
        // A market buy added at 101 would have hit our ask first.
        v.on_market(&delta(Kind::BookAdd, 20, 9, Side::Buy, 101, 3), &mut out)
            .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].order_id, out[0].qty, out[0].price, out[0].payload),
            (70, 3, 101, 9)
        );
        out.clear();
        // An execution at 102 on the ask side traded through our 101.
        v.on_market(
            &delta(Kind::BookExecute, 21, 3, Side::Sell, 102, 2),
            &mut out,
        )
        .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].order_id, out[0].qty, out[0].price), (70, 1, 101));
        assert!(v.order(70).is_none());
        assert_eq!(v.book().size_at(Side::Sell, 102), 3);
    }

    fn quote(ts: i64, bid: i64, bid_size: i64, ask: i64, ask_size: i64) -> Event {
        Event {
            price: bid,
            qty: bid_size,
            aux: ask,
            order_id: ask_size,
            ..Event::new(Kind::Quote, ts)
        }
    }

    #[test]
    fn quotes_drive_the_venue() {
        let mut v = SimVenue::new(
            OrderBook::new(10).unwrap(),
            Fees::default(),
            Latency::default(),
        );
        let mut out = Vec::new();
        v.on_market(&quote(1, 1000, 0, 1020, 0), &mut out).unwrap();
        // A marketable order takes the ask, whose size is unlimited.
        v.submit(&submit(1, 1, Side::Buy, 1020, 7, flags::IOC), &mut out)
            .unwrap();
        let fills: Vec<_> = out.iter().filter(|e| e.kind == Kind::Fill as u8).collect();
        assert_eq!(fills.len(), 1);
        assert_eq!((fills[0].price, fills[0].qty), (1020, 7));
        out.clear();
        // A buy at the bid rests behind the bid's size, then is alone there after a quote.
        v.submit(&submit(1, 2, Side::Buy, 1000, 4, 0), &mut out)
            .unwrap();
        assert_eq!(v.order(2).unwrap().ahead, crate::book::UNLIMITED_SIZE);
        v.on_market(&quote(4, 1000, 5, 1010, 5), &mut out).unwrap();
        assert_eq!(v.order(2).unwrap().ahead, 0);
        assert!(out.iter().all(|e| e.kind != Kind::Fill as u8));
        // The ask comes down to the buy's limit: the buy fills as maker, at its price, up to
        // the ask's size.
        out.clear();
        v.on_market(&quote(5, 990, 5, 1000, 3), &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(
            (
                out[0].kind,
                out[0].order_id,
                out[0].price,
                out[0].qty,
                out[0].ts
            ),
            (Kind::Fill as u8, 2, 1000, 3, 5)
        );
        assert_eq!(out[0].flags, flags::OWN);
        assert_eq!(v.order(2).unwrap().qty, 1);
        // An off-tick quote is refused and leaves the book as it was.
        let err = v.on_market(&quote(6, 995, 1, 1005, 1), &mut out);
        assert!(matches!(
            err,
            Err(BookError::QuoteOffTick { price: 995, .. })
        ));
        assert_eq!(v.book().bbo(), (Some(990), Some(1000)));
        // A trade is not book data.
        let trade = Event {
            price: 900,
            qty: 1,
            ..Event::new(Kind::Trade, 7)
        };
        assert!(!SimVenue::takes(trade.kind));
        assert!(SimVenue::takes(Kind::Quote as u8));
        assert!(SimVenue::takes(Kind::BookClear as u8));
    }

    #[test]
    fn advancing_the_clock_answers_commands_in_flight() {
        // No market data after the order: only the clock (a live CLOCK reading) moves.
        let mut v = venue();
        let mut out = Vec::new();
        v.submit(&submit(100, 50, Side::Buy, 99, 3, 0), &mut out)
            .unwrap();
        assert!(out.is_empty());
        assert_eq!(v.pending(), 1);
        // Before the command reaches the venue (latency 10), nothing happens.
        v.advance(109, &mut out);
        assert!(out.is_empty());
        assert_eq!(v.pending(), 1);
        assert_eq!(v.now(), 109);
        // At its arrival it is accepted, and the answer is stamped for the strategy.
        v.advance(200, &mut out);
        assert_eq!(v.pending(), 0);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].kind, out[0].order_id, out[0].ts),
            (Kind::OrderAccepted as u8, 50, 115)
        );
        assert_eq!(v.order(50).unwrap().qty, 3);
        assert_eq!(v.now(), 200);
        // The clock never goes back.
        v.advance(150, &mut out);
        assert_eq!(v.now(), 200);
    }

    #[test]
    fn cancel_and_modify_commands() {
        let mut v = venue();
        let mut out = Vec::new();
        v.submit(&submit(0, 80, Side::Buy, 99, 4, 0), &mut out)
            .unwrap();
        v.advance(10, &mut out);
        let m = Event {
            kind: Kind::OrderModify as u8,
            ..submit(11, 80, Side::Buy, 99, 2, 0)
        };
        v.submit(&m, &mut out).unwrap();
        v.advance(21, &mut out);
        assert_eq!(v.order(80).unwrap().qty, 2);
        let c = Event {
            kind: Kind::OrderCancel as u8,
            ..submit(30, 80, Side::Buy, 0, 0, 0)
        };
        v.submit(&c, &mut out).unwrap();
        v.advance(40, &mut out);
        assert!(v.order(80).is_none());
        assert_eq!(out.last().unwrap().kind, Kind::OrderCanceled as u8);
        v.submit(&c, &mut out).unwrap();
        v.advance(50, &mut out);
        assert_eq!(out.last().unwrap().kind, Kind::OrderRejected as u8);
    }
}
