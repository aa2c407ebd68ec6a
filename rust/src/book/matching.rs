//! The book as an exchange: incoming orders match against resting orders in price-time
//! order (the anonymous size of a level first, as it is the oldest), consuming them.

use super::{BookError, Fees, OrderBook, NIL};
use crate::event::{flags, Event, Kind, Side};

/// Market or limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderType {
    Market,
    Limit,
}

/// How long the unfilled rest of an order lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeInForce {
    /// Good till canceled: the rest of a limit order rests in the book.
    Gtc,
    /// Immediate or cancel: the rest is canceled.
    Ioc,
    /// Fill or kill: all of it now, or nothing.
    Fok,
}

/// An incoming order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Order {
    pub id: i64,
    pub side: Side,
    /// Limit price (ignored for market orders).
    pub price: i64,
    pub qty: i64,
    pub ts: i64,
    pub order_type: OrderType,
    pub tif: TimeInForce,
    /// Reject rather than take liquidity.
    pub post_only: bool,
    /// One of our own orders (its fills carry the `OWN` flag).
    pub own: bool,
}

impl Order {
    /// A good-till-canceled limit order.
    pub fn limit(id: i64, side: Side, price: i64, qty: i64) -> Order {
        Order {
            id,
            side,
            price,
            qty,
            ts: 0,
            order_type: OrderType::Limit,
            tif: TimeInForce::Gtc,
            post_only: false,
            own: false,
        }
    }

    /// A market order (the unfilled rest is canceled).
    pub fn market(id: i64, side: Side, qty: i64) -> Order {
        Order {
            order_type: OrderType::Market,
            tif: TimeInForce::Ioc,
            ..Order::limit(id, side, 0, qty)
        }
    }

    /// The order an `ORDER_SUBMIT` record describes: flags `MARKET`, `IOC`, `FOK`,
    /// `POST_ONLY`, `OWN`.
    pub fn from_event(ev: &Event) -> Result<Order, BookError> {
        if ev.kind != Kind::OrderSubmit as u8 {
            return Err(BookError::BadKind { kind: ev.kind });
        }
        let side = match Side::from_code(ev.side) {
            Some(s @ (Side::Buy | Side::Sell)) => s,
            _ => {
                return Err(BookError::BadSide {
                    id: ev.order_id,
                    side: ev.side,
                })
            }
        };
        let f = ev.flags;
        let market = f & flags::MARKET != 0;
        Ok(Order {
            id: ev.order_id,
            side,
            price: ev.price,
            qty: ev.qty,
            ts: ev.ts,
            order_type: if market {
                OrderType::Market
            } else {
                OrderType::Limit
            },
            tif: if f & flags::FOK != 0 {
                TimeInForce::Fok
            } else if market || f & flags::IOC != 0 {
                TimeInForce::Ioc
            } else {
                TimeInForce::Gtc
            },
            post_only: f & flags::POST_ONLY != 0,
            own: f & flags::OWN != 0,
        })
    }

    /// Whether a resting price `level` on the other side is within this order's limit.
    #[inline]
    pub fn crosses(&self, level: i64) -> bool {
        match (self.order_type, self.side) {
            (OrderType::Market, _) => true,
            (_, Side::Buy) => level <= self.price,
            _ => level >= self.price,
        }
    }
}

/// What became of an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Completely filled.
    Filled,
    /// The rest (all of it, or what was not filled) rests in the book.
    Resting,
    /// The rest was canceled (market, IOC, FOK that could not fill completely).
    Canceled,
    /// Refused without any effect (a post-only order that would have taken liquidity).
    Rejected,
}

/// The result of [`OrderBook::submit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub filled: i64,
    /// Size left unfilled (resting or canceled, per `status`).
    pub remaining: i64,
    pub status: Status,
}

impl Fees {
    /// The fee on a fill of `qty` at `price` at a fixed-point `rate` (negative: a rebate),
    /// rounded half away from zero.
    pub fn fee(price: i64, qty: i64, rate: i64) -> i64 {
        let scale = i128::from(crate::event::SCALE);
        let num = i128::from(price) * i128::from(qty) * i128::from(rate);
        let den = scale * scale;
        let q = num / den;
        let r = num % den;
        let q = if 2 * r.abs() >= den {
            q + num.signum()
        } else {
            q
        };
        q.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }
}

#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) fn fill_event(
    instrument: u32,
    ts: i64,
    id: i64,
    side: Side,
    price: i64,
    qty: i64,
    fee: i64,
    contra: i64,
    flag_bits: u16,
) -> Event {
    Event {
        seq: 0,
        ts,
        order_id: id,
        price,
        qty,
        aux: fee,
        payload: contra,
        instrument,
        kind: Kind::Fill as u8,
        side: side as u8,
        flags: flag_bits,
    }
}

impl OrderBook {
    /// Size on the other side within `order`'s limit, up to `want`.
    fn available(&self, order: &Order, want: i64) -> i64 {
        let mut total = 0;
        for level in self.side_levels(opposite(order.side)) {
            if !order.crosses(level.price) || total >= want {
                break;
            }
            total += level.qty;
        }
        total
    }

    /// Matches an incoming order against the book and appends the fills to `fills`: for
    /// every match one record for the taker (flag `AGGRESSOR`, contra = the maker) and,
    /// unless the maker is anonymous size, one for the maker (contra = the taker). Fees come
    /// from the book's [`Fees`]. A limit order's unfilled rest then rests (good till
    /// canceled) or is canceled (IOC, FOK, market). Invalid orders are errors and change
    /// nothing; a post-only order that would take liquidity and a FOK order that cannot fill
    /// completely change nothing either and say so in the [`Outcome`].
    pub fn submit(&mut self, order: &Order, fills: &mut Vec<Event>) -> Result<Outcome, BookError> {
        let id = order.id;
        if order.side == Side::None {
            return Err(BookError::BadSide { id, side: 0 });
        }
        if order.qty <= 0 {
            return Err(BookError::BadQuantity { id, qty: order.qty });
        }
        if order.order_type == OrderType::Limit {
            self.check_price(id, order.price)?;
        }
        if self.index.contains_key(&id) {
            return Err(BookError::DuplicateOrder { id });
        }
        let crosses = self
            .top(opposite(order.side))
            .is_some_and(|l| order.crosses(l.price));
        if order.post_only && crosses {
            return Ok(Outcome {
                filled: 0,
                remaining: order.qty,
                status: Status::Rejected,
            });
        }
        if order.tif == TimeInForce::Fok && self.available(order, order.qty) < order.qty {
            return Ok(Outcome {
                filled: 0,
                remaining: order.qty,
                status: Status::Canceled,
            });
        }
        let mut remaining = order.qty;
        if crosses {
            remaining = self.take(order, fills);
        }
        let filled = order.qty - remaining;
        let status = if remaining == 0 {
            Status::Filled
        } else if order.order_type == OrderType::Limit && order.tif == TimeInForce::Gtc {
            self.add_order(id, order.side, order.price, remaining, order.ts, order.own)?;
            Status::Resting
        } else {
            Status::Canceled
        };
        Ok(Outcome {
            filled,
            remaining,
            status,
        })
    }

    /// Takes liquidity for `order` level by level; returns the size left.
    fn take(&mut self, order: &Order, fills: &mut Vec<Event>) -> i64 {
        let maker_side = opposite(order.side);
        let (fees, instrument, ts) = (self.fees, self.instrument, order.ts);
        let taker_flags = flags::AGGRESSOR | if order.own { flags::OWN } else { 0 };
        let mut remaining = order.qty;
        while remaining > 0 {
            let Some(li) = self.ladder(maker_side).best() else {
                break;
            };
            let level = &mut self.levels[li as usize];
            let price = level.price;
            if !order.crosses(price) {
                break;
            }
            if level.anon > 0 {
                let q = level.anon.min(remaining);
                level.anon -= q;
                level.qty -= q;
                remaining -= q;
                fills.push(fill_event(
                    instrument,
                    ts,
                    order.id,
                    order.side,
                    price,
                    q,
                    Fees::fee(price, q, fees.taker),
                    0,
                    taker_flags,
                ));
            }
            let mut i = level.head;
            // A level emptied by its last order is dropped by remove_node; one that held
            // only anonymous size is dropped here.
            if i == NIL {
                self.drop_if_empty(maker_side, li);
            }
            while remaining > 0 && i != NIL {
                let node = self.nodes[i as usize];
                let q = node.qty.min(remaining);
                remaining -= q;
                fills.push(fill_event(
                    instrument,
                    ts,
                    order.id,
                    order.side,
                    price,
                    q,
                    Fees::fee(price, q, fees.taker),
                    node.id,
                    taker_flags,
                ));
                fills.push(fill_event(
                    instrument,
                    ts,
                    node.id,
                    maker_side,
                    price,
                    q,
                    Fees::fee(price, q, fees.maker),
                    order.id,
                    if node.own { flags::OWN } else { 0 },
                ));
                let next = node.next;
                if q == node.qty {
                    self.remove_node(node.id, i);
                } else {
                    self.shrink(i, q);
                }
                i = next;
            }
        }
        remaining
    }
}

fn opposite(side: Side) -> Side {
    if side == Side::Buy {
        Side::Sell
    } else {
        Side::Buy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book() -> OrderBook {
        let mut b = OrderBook::new(1).unwrap();
        b.add(1, Side::Sell, 101, 5, 0).unwrap();
        b.add(2, Side::Sell, 101, 5, 0).unwrap();
        b.add(3, Side::Sell, 103, 10, 0).unwrap();
        b.add(4, Side::Buy, 99, 10, 0).unwrap();
        b
    }

    #[test]
    fn limit_order_sweeps_then_rests() {
        let mut b = book();
        let mut fills = Vec::new();
        let out = b
            .submit(&Order::limit(10, Side::Buy, 102, 12), &mut fills)
            .unwrap();
        assert_eq!(out.status, Status::Resting);
        assert_eq!((out.filled, out.remaining), (10, 2));
        let taker: Vec<_> = fills
            .iter()
            .filter(|f| f.flags & flags::AGGRESSOR != 0)
            .map(|f| (f.payload, f.qty, f.price))
            .collect();
        assert_eq!(taker, vec![(1, 5, 101), (2, 5, 101)]);
        assert_eq!(b.best_bid(), Some((102, 2)));
        assert_eq!(b.best_ask(), Some((103, 10)));
        b.check_invariants().unwrap();
    }

    #[test]
    fn ioc_fok_market_post_only() {
        let mut b = book();
        let mut fills = Vec::new();
        let fok = Order {
            tif: TimeInForce::Fok,
            ..Order::limit(10, Side::Buy, 101, 11)
        };
        assert_eq!(b.submit(&fok, &mut fills).unwrap().status, Status::Canceled);
        assert!(fills.is_empty());
        let ioc = Order {
            tif: TimeInForce::Ioc,
            ..Order::limit(11, Side::Buy, 101, 11)
        };
        let out = b.submit(&ioc, &mut fills).unwrap();
        assert_eq!((out.filled, out.status), (10, Status::Canceled));
        assert_eq!(b.best_ask(), Some((103, 10)));
        let post = Order {
            post_only: true,
            ..Order::limit(12, Side::Sell, 99, 1)
        };
        assert_eq!(
            b.submit(&post, &mut fills).unwrap().status,
            Status::Rejected
        );
        let out = b
            .submit(&Order::market(13, Side::Sell, 25), &mut fills)
            .unwrap();
        assert_eq!((out.filled, out.remaining), (10, 15));
        assert_eq!(b.best_bid(), None);
        b.check_invariants().unwrap();
    }

    #[test]
    fn anonymous_size_fills_first_and_fees_round() {
        let mut b = OrderBook::new(1).unwrap().with_fees(Fees {
            maker: -100_000,
            taker: 300_000,
        });
        b.add(1, Side::Sell, 100 * crate::event::SCALE, 5, 0)
            .unwrap();
        b.add_anonymous(Side::Sell, 100 * crate::event::SCALE, 3)
            .unwrap();
        let mut fills = Vec::new();
        b.submit(&Order::market(9, Side::Buy, 4), &mut fills)
            .unwrap();
        assert_eq!(fills[0].payload, 0);
        assert_eq!(fills[0].qty, 3);
        assert_eq!(fills[1].payload, 1);
        assert_eq!(b.queue(Side::Sell, 100 * crate::event::SCALE), vec![(1, 4)]);
        // 100 * 1 unit of size * 0.0003 = 0.03 units of money, in fixed point 30_000.
        assert_eq!(Fees::fee(100 * crate::event::SCALE, 1, 300_000), 0);
        assert_eq!(
            Fees::fee(100 * crate::event::SCALE, crate::event::SCALE, 300_000),
            30_000_000
        );
        assert_eq!(Fees::fee(crate::event::SCALE, 1, -500_000_000), -1);
    }
}
