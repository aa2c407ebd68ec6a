//! The order path in Rust, shared by the kernel, the Python wrappers and the result building:
//! validation, risk, the bar venue with its fees and slippage, the one fold of fills into
//! positions, cash and P&L ([`portfolio`]) and the projections of a run built on that fold
//! ([`analysis`]: equity curve, round trips, positions). [`path::OrderPath`] chains the
//! stages inside the kernel; a live node adds the live gate ([`gate`]).
//!
//! Money is fixed point ([`crate::event::SCALE`] per unit); products of two fixed-point
//! numbers are taken in `i128` and rounded once, half away from zero.

pub mod analysis;
pub mod bar_venue;
pub mod fees;
pub mod gate;
pub mod path;
pub mod portfolio;
pub mod risk;
pub mod validation;

pub use analysis::{analyze, analyze_with, mark_price, Analysis, Columns, Curve, Trip};
pub use portfolio::{notional, Portfolio, Position};

use crate::event::SCALE;

/// A fixed-point number in units, exactly, for messages: `1000000`, `0.5`, `-13.46` (as
/// Python's `admf.portfolio.units_text`).
pub fn units_text(fixed: i64) -> String {
    let sign = if fixed < 0 { "-" } else { "" };
    let abs = fixed.unsigned_abs();
    let whole = abs / SCALE as u64;
    let frac = abs % SCALE as u64;
    if frac == 0 {
        return format!("{sign}{whole}");
    }
    let digits = format!("{frac:09}");
    format!("{sign}{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_text_is_exact_and_short() {
        assert_eq!(units_text(1_000_000 * SCALE), "1000000");
        assert_eq!(units_text(SCALE / 2), "0.5");
        assert_eq!(units_text(-13_460_000_000), "-13.46");
        assert_eq!(units_text(1), "0.000000001");
        assert_eq!(units_text(0), "0");
    }
}
