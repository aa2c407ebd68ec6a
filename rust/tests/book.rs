//! Property tests of the order book: invariants after random deltas and random matching.

use _core::book::synthetic::{lobster_like, CENT};
use _core::book::{Fees, Latency};
use _core::book::{Order, OrderBook, OrderType, SimVenue, Status, TimeInForce};
use _core::event::{flags, Event, Kind, Side};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Submit {
        side: bool,
        price: i64,
        qty: i64,
        kind: u8,
    },
    Cancel(usize),
    Anonymous {
        side: bool,
        price: i64,
        qty: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<bool>(), 90i64..110, 1i64..20, 0u8..5).prop_map(|(side, price, qty, kind)| {
            Op::Submit { side, price, qty, kind }
        }),
        2 => (0usize..64).prop_map(Op::Cancel),
        1 => (any::<bool>(), 90i64..110, 1i64..20)
            .prop_map(|(side, price, qty)| Op::Anonymous { side, price, qty }),
    ]
}

fn side_of(buy: bool) -> Side {
    if buy {
        Side::Buy
    } else {
        Side::Sell
    }
}

fn total(book: &OrderBook, side: Side) -> i64 {
    book.depth(side, usize::MAX).map(|l| l.qty).sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Matching never leaves the book crossed, every level's size is the sum of its orders
    /// (and anonymous size), makers at a price fill in arrival order, and the quantity in
    /// fills is what left the book.
    #[test]
    fn matching_keeps_the_invariants(ops in proptest::collection::vec(op(), 1..120)) {
        let mut book = OrderBook::new(1).unwrap();
        let mut next_id = 1i64;
        for op in ops {
            match op {
                Op::Submit { side, price, qty, kind } => {
                    let side = side_of(side);
                    let (order_type, tif, post_only) = match kind {
                        0 => (OrderType::Limit, TimeInForce::Gtc, false),
                        1 => (OrderType::Market, TimeInForce::Ioc, false),
                        2 => (OrderType::Limit, TimeInForce::Ioc, false),
                        3 => (OrderType::Limit, TimeInForce::Fok, false),
                        _ => (OrderType::Limit, TimeInForce::Gtc, true),
                    };
                    let order = Order { order_type, tif, post_only, ..Order::limit(next_id, side, price, qty) };
                    next_id += 1;
                    let other = if side == Side::Buy { Side::Sell } else { Side::Buy };
                    let (own_before, other_before) = (total(&book, side), total(&book, other));
                    let mut fills = Vec::new();
                    let out = book.submit(&order, &mut fills).unwrap();
                    let taken: i64 = fills.iter().filter(|f| f.flags & flags::AGGRESSOR != 0).map(|f| f.qty).sum();
                    prop_assert_eq!(taken, out.filled);
                    prop_assert_eq!(out.filled + out.remaining, qty);
                    prop_assert_eq!(total(&book, other), other_before - out.filled);
                    let rested = if out.status == Status::Resting { out.remaining } else { 0 };
                    prop_assert_eq!(total(&book, side), own_before + rested);
                    let maker: i64 = fills.iter().filter(|f| f.flags & flags::AGGRESSOR == 0).map(|f| f.qty).sum();
                    let anonymous: i64 = fills.iter().filter(|f| f.flags & flags::AGGRESSOR != 0 && f.payload == 0).map(|f| f.qty).sum();
                    prop_assert_eq!(maker + anonymous, out.filled);
                    // Makers fill best price first, and at one price in arrival order (ids grow
                    // with arrival here).
                    let makers: Vec<&Event> = fills.iter().filter(|f| f.flags & flags::AGGRESSOR == 0).collect();
                    for w in makers.windows(2) {
                        if w[0].price == w[1].price {
                            prop_assert!(w[0].order_id < w[1].order_id);
                        } else if side == Side::Buy {
                            prop_assert!(w[0].price < w[1].price);
                        } else {
                            prop_assert!(w[0].price > w[1].price);
                        }
                    }
                    for f in &fills {
                        prop_assert_eq!(f.kind, Kind::Fill as u8);
                        prop_assert!(f.qty > 0);
                        if order.order_type == OrderType::Limit {
                            prop_assert!(order.crosses(f.price));
                        }
                    }
                    if post_only {
                        prop_assert!(fills.is_empty());
                    }
                    if tif == TimeInForce::Fok {
                        prop_assert!(out.filled == 0 || out.filled == qty);
                    }
                }
                Op::Cancel(k) => {
                    let id = 1 + (k as i64 % next_id.max(1));
                    let before = book.len();
                    let removed = book.cancel(id).is_ok();
                    prop_assert_eq!(book.len(), before - usize::from(removed));
                }
                Op::Anonymous { side, price, qty } => {
                    let _ = book.add_anonymous(side_of(side), price, qty);
                }
            }
            if let Err(e) = book.check_invariants() {
                prop_assert!(false, "{}", e);
            }
            prop_assert!(!book.is_crossed());
        }
    }

    /// Any prefix of a LOBSTER-like stream replays without error, and a snapshot restores
    /// the same book.
    #[test]
    fn replay_and_snapshot(seed in 0u64..1_000, n in 1usize..3_000) {
        let stream = lobster_like(n, seed);
        let mut book = OrderBook::new(CENT).unwrap();
        prop_assert_eq!(book.apply_all(&stream).unwrap(), n);
        if let Err(e) = book.check_invariants() {
            prop_assert!(false, "{}", e);
        }
        let snap = book.snapshot();
        let mut other = OrderBook::new(CENT).unwrap();
        other.restore(&snap).unwrap();
        prop_assert_eq!(other.snapshot(), snap);
        prop_assert_eq!(other.bbo(), book.bbo());
    }

    /// Own orders in the simulated venue never fill more than they asked for, and the market
    /// size ahead of them stays within the market's size at their price.
    #[test]
    fn venue_fills_stay_within_own_orders(seed in 0u64..1_000, picks in proptest::collection::vec((any::<bool>(), 0i64..6, 1i64..5), 1..20)) {
        let stream = lobster_like(3_000, seed);
        let mut venue = SimVenue::new(OrderBook::new(CENT).unwrap(), Fees::default(), Latency { to_venue: 1_000, to_strategy: 500 });
        let mut out = Vec::new();
        let mut asked = std::collections::BTreeMap::new();
        let step = stream.len() / picks.len();
        for (i, ev) in stream.iter().enumerate() {
            venue.on_market(ev, &mut out).unwrap();
            if i % step == 0 && i / step < picks.len() {
                let (buy, offset, lots) = picks[i / step];
                let side = side_of(buy);
                let Some(ref_price) = (if buy { venue.book().best_bid() } else { venue.book().best_ask() }) else { continue };
                let price = if buy { ref_price.0 - offset * CENT } else { ref_price.0 + offset * CENT };
                let id = 1_000_000 + i as i64;
                let qty = lots * 100 * _core::event::SCALE;
                asked.insert(id, qty);
                let cmd = Event { kind: Kind::OrderSubmit as u8, ts: ev.ts, order_id: id, side: side as u8, price, qty, flags: flags::OWN, ..Event::default() };
                venue.submit(&cmd, &mut out).unwrap();
            }
            for o in venue.open_orders() {
                prop_assert!(o.ahead >= 0);
                prop_assert!(o.ahead <= venue.book().size_at(o.side, o.price));
            }
        }
        let mut filled = std::collections::BTreeMap::new();
        for f in out.iter().filter(|e| e.kind == Kind::Fill as u8) {
            prop_assert!(f.flags & flags::OWN != 0);
            *filled.entry(f.order_id).or_insert(0i64) += f.qty;
        }
        for (id, q) in filled {
            prop_assert!(q <= asked[&id]);
        }
    }
}
