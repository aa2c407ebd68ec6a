//! A deterministic LOBSTER-like stream of book deltas for benchmarks and tests: about 47%
//! adds near the touch, 37% cancels (a quarter of them partial; most of recent orders, as in
//! LOBSTER's samples) and 16% executions of the oldest order at the best price, the
//! proportions of the AAPL sample day, with a few
//! thousand orders resting at any time (between 2,000 and 4,000, about the depth of a
//! liquid NASDAQ stock's book). The stream is valid: applied in order to an empty
//! book with a tick of one cent it never errs.

use super::OrderBook;
use crate::event::{Event, Kind, Side, SCALE};

/// One cent in fixed point: LOBSTER's tick for US equities.
pub const CENT: i64 = SCALE / 100;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: small, fast and reproducible everywhere.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A book delta with the fields a delta uses (the rest zero).
pub(crate) fn delta(kind: Kind, ts: i64, id: i64, side: Side, price: i64, qty: i64) -> Event {
    Event {
        kind: kind as u8,
        ts,
        order_id: id,
        side: side as u8,
        price,
        qty,
        ..Event::default()
    }
}

/// `n` deltas of a LOBSTER-like day, reproducible from `seed`.
pub fn lobster_like(n: usize, seed: u64) -> Vec<Event> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut book = OrderBook::new(CENT).expect("positive tick");
    let mut live: Vec<i64> = Vec::new();
    let mut out = Vec::with_capacity(n);
    let mut ts: i64 = 1_340_285_400_000_000_000; // 2012-06-21 09:30 New York
    let mut next_id: i64 = 1;
    let mid = 585 * SCALE;
    while out.len() < n {
        ts += 1 + rng.below(200_000) as i64;
        let r = rng.below(100);
        let side = if rng.below(2) == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        if live.len() < 2_000 || (r < 47 && live.len() < 4_000) {
            let offset = (rng.below(8) * rng.below(8) / 2) as i64;
            let price = match side {
                Side::Buy => book.best_ask().map_or(mid, |a| a.0) - (1 + offset) * CENT,
                _ => book.best_bid().map_or(mid, |b| b.0) + (1 + offset) * CENT,
            };
            let qty = (1 + rng.below(10) as i64) * 100 * SCALE;
            let id = next_id;
            next_id += 1;
            book.add(id, side, price, qty, ts).expect("valid add");
            live.push(id);
            out.push(delta(Kind::BookAdd, ts, id, side, price, qty));
        } else if r < 84 {
            // Most cancels hit a recent order (in LOBSTER's AMZN sample day the median
            // canceled or executed order is 2 adds old, 90% are within 9); the rest any.
            let back = if rng.below(100) < 85 {
                (rng.below(4) * rng.below(4)) as usize
            } else {
                rng.below(live.len() as u64) as usize
            };
            let i = live.len() - 1 - back.min(live.len() - 1);
            let id = live.remove(i);
            let o = book.order(id).expect("live orders rest in the book");
            let qty = if rng.below(4) == 0 && o.qty > 100 * SCALE {
                live.insert(i, id);
                o.qty / 2
            } else {
                o.qty
            };
            book.reduce(id, qty).expect("valid cancel");
            out.push(delta(Kind::BookCancel, ts, id, o.side, o.price, qty));
        } else {
            let Some(top) = book.depth(side, 1).next() else {
                continue;
            };
            let Some(&(id, size)) = book.queue(side, top.price).first() else {
                continue;
            };
            let qty = if rng.below(2) == 0 {
                size
            } else {
                size.min((1 + rng.below(5) as i64) * 100 * SCALE)
            };
            if book.execute(id, qty).expect("valid execution") == 0 {
                if let Some(i) = live.iter().position(|&x| x == id) {
                    live.remove(i);
                }
            }
            out.push(delta(Kind::BookExecute, ts, id, side, top.price, qty));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_is_reproducible_and_valid() {
        let a = lobster_like(20_000, 7);
        assert_eq!(a, lobster_like(20_000, 7));
        let mut book = OrderBook::new(CENT).unwrap();
        book.apply_all(&a).unwrap();
        book.check_invariants().unwrap();
        assert!(
            (1_900..=4_000).contains(&book.len()),
            "{} orders",
            book.len()
        );
    }
}
