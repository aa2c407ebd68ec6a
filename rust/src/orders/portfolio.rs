//! The one fold of fills into positions, cash and P&L.
//!
//! The portfolio is a projection, not the source of truth: [`Portfolio::apply`] is called
//! with each `FILL` in `seq` order, and replaying a log's fills rebuilds it exactly. The
//! portfolio a strategy reads, the risk engine's view, the equity curve and the round trips
//! all come from this fold.

use crate::event::{Event, Side, SCALE};

/// `price * qty` (both fixed point) in fixed point, rounded half away from zero.
pub fn notional(price: i64, qty: i64) -> i64 {
    scaled_down(price as i128 * qty as i128)
}

/// A product of two fixed-point numbers brought back to one `SCALE`, rounded half away from
/// zero.
pub(crate) fn scaled_down(product: i128) -> i64 {
    let scale = SCALE as i128;
    let half = scale / 2;
    let out = if product >= 0 {
        (product + half) / scale
    } else {
        -((-product + half) / scale)
    };
    out as i64
}

/// One instrument's position. `qty` is signed (negative: short).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    pub qty: i64,
    /// Volume-weighted entry price of the open quantity (0 when flat).
    pub avg_price: i64,
    pub realized: i64,
    pub fees: i64,
    /// The price of the last fill.
    pub last_fill: i64,
}

/// One instrument's position and the market price it is valued at.
#[derive(Clone, Copy, Debug)]
struct Entry {
    instrument: u32,
    pos: Position,
    mark: Option<i64>,
}

impl Entry {
    /// The market's last price, or the last fill's before any market price is known.
    fn price(&self) -> i64 {
        self.mark.unwrap_or(self.pos.last_fill)
    }
}

/// Cash, positions and P&L built from fills, with the market's last price per instrument
/// for marking.
#[derive(Clone, Debug)]
pub struct Portfolio {
    pub initial_cash: i64,
    pub cash: i64,
    /// By instrument, sorted: a run holds a few instruments, so a sorted vector beats a map
    /// on the hot paths (every fill, every point of the equity curve).
    entries: Vec<Entry>,
    pub fills: u64,
    /// Sum of the notionals of all fills (for turnover); `i128` because a busy run's turnover
    /// in fixed point outgrows `i64`.
    pub traded: i128,
    /// The seq of the last fill folded: a fill at or before it is not folded twice (the bar
    /// venue folds its fills as it makes them, the kernel's subscription sees them again).
    last_seq: u64,
}

impl Portfolio {
    pub fn new(initial_cash: i64) -> Portfolio {
        Portfolio {
            initial_cash,
            cash: initial_cash,
            entries: Vec::new(),
            fills: 0,
            traded: 0,
            last_seq: 0,
        }
    }

    fn entry(&mut self, instrument: u32) -> &mut Entry {
        let i = match self
            .entries
            .binary_search_by_key(&instrument, |e| e.instrument)
        {
            Ok(i) => i,
            Err(i) => {
                let fresh = Entry {
                    instrument,
                    pos: Position::default(),
                    mark: None,
                };
                self.entries.insert(i, fresh);
                i
            }
        };
        &mut self.entries[i]
    }

    /// The position in `instrument` (flat if never traded).
    pub fn position(&self, instrument: u32) -> Position {
        match self
            .entries
            .binary_search_by_key(&instrument, |e| e.instrument)
        {
            Ok(i) => self.entries[i].pos,
            Err(_) => Position::default(),
        }
    }

    /// The positions ever traded or marked, by instrument.
    pub fn positions(&self) -> impl Iterator<Item = (u32, Position)> + '_ {
        self.entries.iter().map(|e| (e.instrument, e.pos))
    }

    /// Folds one fill (price, qty > 0, side, fee in `aux`); false if this sequenced fill was
    /// folded already.
    pub fn apply(&mut self, fill: &Event) -> bool {
        if fill.seq != 0 {
            if fill.seq <= self.last_seq {
                return false;
            }
            self.last_seq = fill.seq;
        }
        let pos = &mut self.entry(fill.instrument).pos;
        let buy = fill.side == Side::Buy as u8;
        let signed = if buy { fill.qty } else { -fill.qty };
        let value = notional(fill.price, fill.qty);
        pos.fees += fill.aux;
        let before = pos.qty;
        let after = before + signed;
        if before == 0 || (before > 0) == (signed > 0) {
            // Opening or adding: the average price moves (exactly, to the nearest unit).
            let total = before.unsigned_abs() as i128 + signed.unsigned_abs() as i128;
            let sum = pos.avg_price as i128 * before.unsigned_abs() as i128
                + fill.price as i128 * signed.unsigned_abs() as i128;
            pos.avg_price = ((sum + total / 2).div_euclid(total)) as i64;
        } else {
            let closed = before.abs().min(signed.abs());
            let direction = if before > 0 { 1 } else { -1 };
            pos.realized += notional(fill.price - pos.avg_price, closed * direction);
            if after == 0 {
                pos.avg_price = 0;
            } else if (after > 0) != (before > 0) {
                pos.avg_price = fill.price;
            }
        }
        pos.qty = after;
        pos.last_fill = fill.price;
        self.cash += if buy { -value } else { value };
        self.cash -= fill.aux;
        self.fills += 1;
        self.traded += value as i128;
        true
    }

    /// Marks `instrument` at the market's `price`.
    pub fn mark(&mut self, instrument: u32, price: i64) {
        self.entry(instrument).mark = Some(price);
    }

    /// Cash plus every position at its mark.
    pub fn equity(&self) -> i64 {
        self.cash
            + self
                .entries
                .iter()
                .map(|e| notional(e.price(), e.pos.qty))
                .sum::<i64>()
    }

    /// Sum over positions of `|qty|` at its mark.
    pub fn exposure(&self) -> i64 {
        self.entries
            .iter()
            .map(|e| notional(e.price(), e.pos.qty.abs()))
            .sum()
    }

    /// Equity and exposure in one pass.
    pub fn equity_and_exposure(&self) -> (i64, i64) {
        let mut value = 0;
        let mut exposure = 0;
        for e in &self.entries {
            if e.pos.qty != 0 {
                let price = e.price();
                value += notional(price, e.pos.qty);
                exposure += notional(price, e.pos.qty.abs());
            }
        }
        (self.cash + value, exposure)
    }

    pub fn realized(&self) -> i64 {
        self.entries.iter().map(|e| e.pos.realized).sum()
    }

    /// Sum over positions of `(mark - avg_price) * qty`.
    pub fn unrealized(&self) -> i64 {
        self.entries
            .iter()
            .map(|e| notional(e.price() - e.pos.avg_price, e.pos.qty))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Kind;

    fn fill(side: Side, price: i64, qty: i64, fee: i64) -> Event {
        Event {
            instrument: 1,
            side: side as u8,
            price: price * SCALE,
            qty: qty * SCALE,
            aux: fee,
            ..Event::new(Kind::Fill, 0)
        }
    }

    #[test]
    fn folds_a_round_trip_with_fees() {
        let mut p = Portfolio::new(1_000 * SCALE);
        p.apply(&fill(Side::Buy, 10, 50, SCALE));
        assert_eq!(p.cash, 499 * SCALE);
        assert_eq!(p.position(1).avg_price, 10 * SCALE);
        p.mark(1, 12 * SCALE);
        assert_eq!(p.equity(), 499 * SCALE + 600 * SCALE);
        assert_eq!(p.unrealized(), 100 * SCALE);
        p.apply(&fill(Side::Sell, 12, 80, 0));
        let pos = p.position(1);
        assert_eq!((pos.qty, pos.avg_price), (-30 * SCALE, 12 * SCALE));
        assert_eq!(pos.realized, 100 * SCALE);
        assert_eq!(p.cash, (499 + 960) * SCALE);
        assert_eq!(p.traded, (500 + 960) as i128 * SCALE as i128);
        let seen = Event {
            seq: 7,
            ..fill(Side::Buy, 1, 1, 0)
        };
        assert!(p.apply(&seen));
        assert!(!p.apply(&seen));
        assert_eq!(p.fills, 3);
    }

    #[test]
    fn notional_rounds_half_away_from_zero_without_overflow() {
        assert_eq!(notional(1, SCALE / 2), 1);
        assert_eq!(notional(-1, SCALE / 2), -1);
        assert_eq!(notional(1, SCALE / 2 - 1), 0);
        // 1e6 units at 1e3 each: the product of the fixed-point numbers is 1e27.
        assert_eq!(
            notional(1_000 * SCALE, 1_000_000 * SCALE),
            1_000_000_000 * SCALE
        );
    }
}
