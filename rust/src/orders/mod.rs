//! The order path's pure parts, shared by the kernel, the Python wrappers and the result
//! building: the one fold of fills into positions, cash and P&L ([`portfolio`]) and the
//! projections of a run built on it ([`analysis`]: equity curve, round trips, positions).
//!
//! Money is fixed point ([`crate::event::SCALE`] per unit); products of two fixed-point
//! numbers are taken in `i128` and rounded once, half away from zero.

pub mod analysis;
pub mod portfolio;

pub use analysis::{analyze, mark_price, Analysis, CurvePoint, Trip};
pub use portfolio::{notional, Portfolio, Position};
