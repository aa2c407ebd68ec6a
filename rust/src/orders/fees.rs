//! Fees and slippage of the bar venue. Rates are `f64` and rounded to the nearest fixed-point
//! unit, ties to even, exactly as Python's `round` does, so that a Python stage replacing the
//! venue charges the same to the unit.

use crate::event::{Side, SCALE};

use super::portfolio::notional;

/// Fees per fill: `rate` of the notional, `per_unit` (fixed point) per unit traded, and at
/// least `minimum` (fixed point).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FeeModel {
    pub rate: f64,
    pub per_unit: i64,
    pub minimum: i64,
}

impl FeeModel {
    /// The fee of a fill of `qty` at `price`.
    pub fn fee(&self, price: i64, qty: i64) -> i64 {
        if qty == 0 {
            return 0;
        }
        let value = notional(price, qty);
        let fee =
            (value as f64 * self.rate).round_ties_even() as i64 + notional(self.per_unit, qty);
        fee.max(self.minimum)
    }

    /// The largest multiple of `lot` whose notional at `price` plus its fee is at most
    /// `budget` (0 if not even one lot is).
    pub fn affordable(&self, price: i64, budget: i64, lot: i64) -> i64 {
        if price <= 0 || budget <= 0 || lot <= 0 {
            return 0;
        }
        let mut qty = (budget as i128 * SCALE as i128 / price as i128 / lot as i128 * lot as i128)
            .min(i64::MAX as i128) as i64;
        // The fee grows with the quantity: step down from the fee-less size (a few lots).
        while qty > 0 {
            let over = notional(price, qty) + self.fee(price, qty) - budget;
            if over <= 0 {
                break;
            }
            let step = (over as i128 * SCALE as i128 / price as i128) as i64 / lot * lot;
            qty -= lot.max(step);
        }
        qty.max(0)
    }
}

/// Moves market fills against the order by `bps` basis points of the price.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SlippageModel {
    pub bps: f64,
}

impl SlippageModel {
    pub fn adjust(&self, price: i64, side: u8) -> i64 {
        if self.bps == 0.0 {
            return price;
        }
        let shift = (price as f64 * self.bps / 10_000.0).round_ties_even() as i64;
        if side == Side::Buy as u8 {
            price + shift
        } else {
            price - shift
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fees_round_ties_to_even_and_respect_the_minimum() {
        let f = FeeModel {
            rate: 0.5,
            per_unit: 0,
            minimum: 0,
        };
        // 5e-9 * 0.5 = 2.5e-9: ties to even -> 2.
        assert_eq!(f.fee(5, SCALE), 2);
        let m = FeeModel {
            minimum: 7 * SCALE,
            ..FeeModel::default()
        };
        assert_eq!(m.fee(SCALE, SCALE), 7 * SCALE);
        assert_eq!(m.fee(SCALE, 0), 0);
    }

    #[test]
    fn affordable_leaves_room_for_the_fee() {
        let f = FeeModel {
            rate: 0.001,
            ..FeeModel::default()
        };
        // 1000 at 10 costs 10000 + 10 in fees: 999 fit.
        assert_eq!(f.affordable(10 * SCALE, 10_000 * SCALE, SCALE), 999 * SCALE);
        assert_eq!(
            FeeModel::default().affordable(10 * SCALE, 10_000 * SCALE, SCALE),
            1000 * SCALE
        );
        assert_eq!(f.affordable(10 * SCALE, 5 * SCALE, SCALE), 0);
    }

    #[test]
    fn slippage_moves_against_the_order() {
        let s = SlippageModel { bps: 5.0 };
        assert_eq!(
            s.adjust(100 * SCALE, Side::Buy as u8),
            100 * SCALE + 50_000_000
        );
        assert_eq!(
            s.adjust(100 * SCALE, Side::Sell as u8),
            100 * SCALE - 50_000_000
        );
    }
}
