//! Incremental technical indicators: SMA, EMA, RSI (Wilder), ATR (Wilder) and Bollinger bands.
//!
//! Each indicator is a small state machine fed one value at a time with `update`, which
//! returns `None` until the indicator is warm and its value afterwards; a batch function over
//! a slice (`sma`, `ema`, ...) runs the same state machine and writes `NaN` for the warm-up.
//!
//! Inputs are the engine's fixed-point integers (`SCALE` units per whole, see
//! [`crate::event`]); outputs are `f64` in whole units (a price of `2_179_012_000` is
//! `2.179012`). Outputs feed signals, never bookkeeping: money stays in fixed point.
//!
//! Where it is cheap the arithmetic is exact: the SMA and the Bollinger bands keep their
//! window sums (and sums of squares) in `i128`, so a running mean never drifts however long
//! the series, and the only rounding is the final division. EMA, RSI and ATR are recursive
//! filters with irrational weights; they run in `f64` on the converted inputs.
//!
//! Conventions (those of TA-Lib and backtrader):
//! - SMA(n): mean of the last `n` values; first value on the `n`-th input.
//! - EMA(n): `alpha = 2 / (n + 1)`, seeded with the SMA of the first `n` values; first value
//!   on the `n`-th input.
//! - RSI(n): Wilder's smoothing of gains and losses (`avg = (avg * (n - 1) + x) / n`), seeded
//!   with the plain mean of the first `n` changes; first value on the `n + 1`-th input (the
//!   first change needs two prices). `100` when there were no losses, `50` when the price did
//!   not move at all.
//! - ATR(n): true range `max(high - low, |high - prev close|, |low - prev close|)`, which needs
//!   the previous close, so the first bar only primes it; Wilder's smoothing seeded with the
//!   mean of the first `n` true ranges; first value on the `n + 1`-th bar.
//! - Bollinger(n, k): middle = SMA(n), upper/lower = middle ± k × the population standard
//!   deviation of the window; first value on the `n`-th input.

use std::collections::VecDeque;
use std::fmt;

use crate::event::SCALE;

const SCALE_F: f64 = SCALE as f64;

/// A parameter an indicator cannot work with.
#[derive(Clone, Debug, PartialEq)]
pub enum IndicatorError {
    /// The period is zero.
    ZeroPeriod,
    /// The Bollinger width is not a finite number.
    BadWidth(f64),
}

impl fmt::Display for IndicatorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IndicatorError::ZeroPeriod => write!(f, "period must be at least 1, got 0"),
            IndicatorError::BadWidth(k) => {
                write!(f, "the band width k must be a finite number, got {k}")
            }
        }
    }
}

impl std::error::Error for IndicatorError {}

fn check_period(period: usize) -> Result<usize, IndicatorError> {
    if period == 0 {
        Err(IndicatorError::ZeroPeriod)
    } else {
        Ok(period)
    }
}

#[inline]
fn to_f64(x: i64) -> f64 {
    x as f64 / SCALE_F
}

/// `v` as `f64` without the generic `i128` conversion, a slow library call that dominated
/// the per-value cost: exact rounding while `|v| < 2^64` (always, for window sums of prices),
/// within an ulp beyond.
#[inline]
fn wide_to_f64(v: i128) -> f64 {
    let m = v.unsigned_abs();
    let f = ((m >> 64) as u64 as f64) * 18_446_744_073_709_551_616.0 + (m as u64 as f64);
    if v < 0 {
        -f
    } else {
        f
    }
}

/// A rolling window of the last `period` fixed-point values with exact sums (and sums of
/// squares, for the bands).
#[derive(Clone, Debug)]
struct Window {
    period: usize,
    values: VecDeque<i64>,
    sum: i128,
    /// `None` when squares are not kept, or once their sum overflowed `i128` (values near
    /// `i64::MAX`); the variance is then computed from the window in `f64`.
    sum_sq: Option<i128>,
    /// Largest sum of squares for which `period * sum_sq` fits `i128`.
    sum_sq_limit: i128,
    squares: bool,
}

impl Window {
    fn new(period: usize, squares: bool) -> Self {
        Window {
            period,
            values: VecDeque::with_capacity(period),
            sum: 0,
            sum_sq: squares.then_some(0),
            sum_sq_limit: i128::MAX / period.max(1) as i128,
            squares,
        }
    }

    /// Pushes `x`; true once the window is full.
    #[inline]
    fn push(&mut self, x: i64) -> bool {
        if self.values.len() == self.period {
            if let Some(old) = self.values.pop_front() {
                self.sum -= i128::from(old);
                self.sum_sq = self.sum_sq.map(|s| s - i128::from(old) * i128::from(old));
            }
        }
        self.values.push_back(x);
        self.sum += i128::from(x);
        self.sum_sq = self
            .sum_sq
            .and_then(|s| s.checked_add(i128::from(x) * i128::from(x)));
        self.values.len() == self.period
    }

    #[inline]
    fn mean(&self) -> f64 {
        wide_to_f64(self.sum) / (self.period as f64 * SCALE_F)
    }

    /// Population variance in whole units squared: `(n * sum_sq - sum^2) / n^2`, exact in
    /// `i128` while it fits (always, for realistic prices and periods), else two passes over
    /// the window in `f64`.
    fn variance(&self) -> f64 {
        let n = self.period as i128;
        // Bounds checked up front: i128's checked_mul is a slow library call.
        let exact = match self.sum_sq {
            Some(sq) if sq <= self.sum_sq_limit && self.sum.unsigned_abs() < 1u128 << 63 => {
                Some(n * sq - self.sum * self.sum)
            }
            _ => None,
        };
        match exact {
            Some(v) => {
                let n2 = (self.period * self.period) as f64;
                wide_to_f64(v.max(0)) / (n2 * SCALE_F * SCALE_F)
            }
            None => {
                let mean = self.mean();
                let ss: f64 = self
                    .values
                    .iter()
                    .map(|&x| (to_f64(x) - mean).powi(2))
                    .sum();
                ss / self.period as f64
            }
        }
    }

    fn clear(&mut self) {
        self.values.clear();
        self.sum = 0;
        self.sum_sq = self.squares.then_some(0);
    }
}

/// Simple moving average over `period` values, exact sums.
#[derive(Clone, Debug)]
pub struct Sma {
    window: Window,
    value: Option<f64>,
}

impl Sma {
    /// A new SMA; an error if `period` is zero.
    pub fn new(period: usize) -> Result<Self, IndicatorError> {
        Ok(Sma {
            window: Window::new(check_period(period)?, false),
            value: None,
        })
    }

    /// Feeds one fixed-point value.
    pub fn update(&mut self, x: i64) -> Option<f64> {
        if self.window.push(x) {
            self.value = Some(self.window.mean());
        }
        self.value
    }

    /// The current value, `None` while warming up.
    pub fn value(&self) -> Option<f64> {
        self.value
    }

    /// The period.
    pub fn period(&self) -> usize {
        self.window.period
    }

    /// Back to the state of a new indicator.
    pub fn reset(&mut self) {
        self.window.clear();
        self.value = None;
    }
}

/// Exponential moving average, `alpha = 2 / (period + 1)`, seeded with the SMA of the first
/// `period` values.
#[derive(Clone, Debug)]
pub struct Ema {
    period: usize,
    alpha: f64,
    seed_sum: i128,
    count: usize,
    value: Option<f64>,
}

impl Ema {
    /// A new EMA; an error if `period` is zero.
    pub fn new(period: usize) -> Result<Self, IndicatorError> {
        let period = check_period(period)?;
        Ok(Ema {
            period,
            alpha: 2.0 / (period as f64 + 1.0),
            seed_sum: 0,
            count: 0,
            value: None,
        })
    }

    /// Feeds one fixed-point value.
    pub fn update(&mut self, x: i64) -> Option<f64> {
        match self.value {
            Some(prev) => {
                self.value = Some(prev + self.alpha * (to_f64(x) - prev));
            }
            None => {
                self.seed_sum += i128::from(x);
                self.count += 1;
                if self.count == self.period {
                    self.value = Some(wide_to_f64(self.seed_sum) / (self.period as f64 * SCALE_F));
                }
            }
        }
        self.value
    }

    /// The current value, `None` while warming up.
    pub fn value(&self) -> Option<f64> {
        self.value
    }

    /// The period.
    pub fn period(&self) -> usize {
        self.period
    }

    /// Back to the state of a new indicator.
    pub fn reset(&mut self) {
        self.seed_sum = 0;
        self.count = 0;
        self.value = None;
    }
}

/// Wilder's smoothing: a plain mean of the first `period` inputs, then
/// `avg = (avg * (period - 1) + x) / period`.
#[derive(Clone, Debug)]
struct Wilder {
    period: usize,
    count: usize,
    seed_sum: f64,
    value: Option<f64>,
}

impl Wilder {
    fn new(period: usize) -> Self {
        Wilder {
            period,
            count: 0,
            seed_sum: 0.0,
            value: None,
        }
    }

    fn update(&mut self, x: f64) -> Option<f64> {
        let n = self.period as f64;
        match self.value {
            Some(prev) => self.value = Some((prev * (n - 1.0) + x) / n),
            None => {
                self.seed_sum += x;
                self.count += 1;
                if self.count == self.period {
                    self.value = Some(self.seed_sum / n);
                }
            }
        }
        self.value
    }

    fn reset(&mut self) {
        self.count = 0;
        self.seed_sum = 0.0;
        self.value = None;
    }
}

/// Relative strength index with Wilder's smoothing, between 0 and 100.
#[derive(Clone, Debug)]
pub struct Rsi {
    prev: Option<i64>,
    gain: Wilder,
    loss: Wilder,
    value: Option<f64>,
}

impl Rsi {
    /// A new RSI; an error if `period` is zero.
    pub fn new(period: usize) -> Result<Self, IndicatorError> {
        let period = check_period(period)?;
        Ok(Rsi {
            prev: None,
            gain: Wilder::new(period),
            loss: Wilder::new(period),
            value: None,
        })
    }

    /// Feeds one fixed-point value.
    pub fn update(&mut self, x: i64) -> Option<f64> {
        if let Some(prev) = self.prev {
            // The change is exact in i128, then converted once.
            let change = wide_to_f64(i128::from(x) - i128::from(prev)) / SCALE_F;
            let gain = self.gain.update(change.max(0.0));
            let loss = self.loss.update((-change).max(0.0));
            if let (Some(g), Some(l)) = (gain, loss) {
                self.value = Some(if l == 0.0 {
                    if g == 0.0 {
                        50.0
                    } else {
                        100.0
                    }
                } else {
                    100.0 - 100.0 / (1.0 + g / l)
                });
            }
        }
        self.prev = Some(x);
        self.value
    }

    /// The current value, `None` while warming up.
    pub fn value(&self) -> Option<f64> {
        self.value
    }

    /// The period.
    pub fn period(&self) -> usize {
        self.gain.period
    }

    /// Back to the state of a new indicator.
    pub fn reset(&mut self) {
        self.prev = None;
        self.gain.reset();
        self.loss.reset();
        self.value = None;
    }
}

/// Average true range with Wilder's smoothing, from high, low and close.
#[derive(Clone, Debug)]
pub struct Atr {
    prev_close: Option<i64>,
    avg: Wilder,
    value: Option<f64>,
}

impl Atr {
    /// A new ATR; an error if `period` is zero.
    pub fn new(period: usize) -> Result<Self, IndicatorError> {
        Ok(Atr {
            prev_close: None,
            avg: Wilder::new(check_period(period)?),
            value: None,
        })
    }

    /// Feeds one bar's fixed-point high, low and close.
    pub fn update(&mut self, high: i64, low: i64, close: i64) -> Option<f64> {
        if let Some(pc) = self.prev_close {
            let (h, l, pc) = (i128::from(high), i128::from(low), i128::from(pc));
            let tr = (h - l).abs().max((h - pc).abs()).max((l - pc).abs());
            self.value = self.avg.update(wide_to_f64(tr) / SCALE_F);
        }
        self.prev_close = Some(close);
        self.value
    }

    /// The current value, `None` while warming up.
    pub fn value(&self) -> Option<f64> {
        self.value
    }

    /// The period.
    pub fn period(&self) -> usize {
        self.avg.period
    }

    /// Back to the state of a new indicator.
    pub fn reset(&mut self) {
        self.prev_close = None;
        self.avg.reset();
        self.value = None;
    }
}

/// One reading of the Bollinger bands.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bands {
    /// The SMA of the window.
    pub mid: f64,
    /// `mid + k * std`.
    pub upper: f64,
    /// `mid - k * std`.
    pub lower: f64,
}

/// Bollinger bands: SMA(period) ± k population standard deviations, exact window sums.
#[derive(Clone, Debug)]
pub struct Bollinger {
    window: Window,
    k: f64,
    value: Option<Bands>,
}

impl Bollinger {
    /// New bands; an error if `period` is zero or `k` is not finite.
    pub fn new(period: usize, k: f64) -> Result<Self, IndicatorError> {
        if !k.is_finite() {
            return Err(IndicatorError::BadWidth(k));
        }
        Ok(Bollinger {
            window: Window::new(check_period(period)?, true),
            k,
            value: None,
        })
    }

    /// Feeds one fixed-point value.
    pub fn update(&mut self, x: i64) -> Option<Bands> {
        if self.window.push(x) {
            let mid = self.window.mean();
            let width = self.k * self.window.variance().sqrt();
            self.value = Some(Bands {
                mid,
                upper: mid + width,
                lower: mid - width,
            });
        }
        self.value
    }

    /// The current value, `None` while warming up.
    pub fn value(&self) -> Option<Bands> {
        self.value
    }

    /// The period.
    pub fn period(&self) -> usize {
        self.window.period
    }

    /// The width in standard deviations.
    pub fn k(&self) -> f64 {
        self.k
    }

    /// Back to the state of a new indicator.
    pub fn reset(&mut self) {
        self.window.clear();
        self.value = None;
    }
}

fn run(values: &[i64], mut step: impl FnMut(i64) -> Option<f64>) -> Vec<f64> {
    values
        .iter()
        .map(|&x| step(x).unwrap_or(f64::NAN))
        .collect()
}

/// SMA over a whole series; `NaN` during the warm-up.
pub fn sma(values: &[i64], period: usize) -> Result<Vec<f64>, IndicatorError> {
    let mut ind = Sma::new(period)?;
    Ok(run(values, |x| ind.update(x)))
}

/// EMA over a whole series; `NaN` during the warm-up.
pub fn ema(values: &[i64], period: usize) -> Result<Vec<f64>, IndicatorError> {
    let mut ind = Ema::new(period)?;
    Ok(run(values, |x| ind.update(x)))
}

/// RSI over a whole series; `NaN` during the warm-up.
pub fn rsi(values: &[i64], period: usize) -> Result<Vec<f64>, IndicatorError> {
    let mut ind = Rsi::new(period)?;
    Ok(run(values, |x| ind.update(x)))
}

/// ATR over whole series of highs, lows and closes (the shortest length wins);
/// `NaN` during the warm-up.
pub fn atr(
    high: &[i64],
    low: &[i64],
    close: &[i64],
    period: usize,
) -> Result<Vec<f64>, IndicatorError> {
    let mut ind = Atr::new(period)?;
    Ok(high
        .iter()
        .zip(low)
        .zip(close)
        .map(|((&h, &l), &c)| ind.update(h, l, c).unwrap_or(f64::NAN))
        .collect())
}

/// Bollinger bands over a whole series: `(mid, upper, lower)`, `NaN` during the warm-up.
#[allow(clippy::type_complexity)]
pub fn bollinger(
    values: &[i64],
    period: usize,
    k: f64,
) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>), IndicatorError> {
    let mut ind = Bollinger::new(period, k)?;
    let mut mid = Vec::with_capacity(values.len());
    let mut upper = Vec::with_capacity(values.len());
    let mut lower = Vec::with_capacity(values.len());
    for &x in values {
        match ind.update(x) {
            Some(b) => {
                mid.push(b.mid);
                upper.push(b.upper);
                lower.push(b.lower);
            }
            None => {
                mid.push(f64::NAN);
                upper.push(f64::NAN);
                lower.push(f64::NAN);
            }
        }
    }
    Ok((mid, upper, lower))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fx(v: &[f64]) -> Vec<i64> {
        v.iter().map(|x| (x * SCALE_F).round() as i64).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn wide_conversion() {
        for v in [
            0i128,
            1,
            -1,
            -5,
            i128::from(i64::MAX),
            i128::from(i64::MIN),
            1 << 64,
            -(1 << 64) - 12345,
            i128::MAX,
            i128::MIN + 1,
            123_456_789_012_345_678_901_234_567,
        ] {
            let want = v as f64;
            let got = wide_to_f64(v);
            assert!(
                (got - want).abs() <= want.abs() * f64::EPSILON,
                "{v}: {got} vs {want}"
            );
            if v.unsigned_abs() < 1 << 64 {
                assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn zero_period_is_an_error() {
        assert_eq!(Sma::new(0).unwrap_err(), IndicatorError::ZeroPeriod);
        assert!(Ema::new(0).is_err());
        assert!(Rsi::new(0).is_err());
        assert!(Atr::new(0).is_err());
        assert!(Bollinger::new(0, 2.0).is_err());
        assert!(matches!(
            Bollinger::new(20, f64::NAN),
            Err(IndicatorError::BadWidth(_))
        ));
    }

    #[test]
    fn sma_warm_up_and_values() {
        let mut s = Sma::new(3).unwrap();
        let xs = fx(&[1.0, 2.0, 3.0, 4.0, 10.0]);
        assert_eq!(s.update(xs[0]), None);
        assert_eq!(s.update(xs[1]), None);
        assert_eq!(s.update(xs[2]), Some(2.0));
        assert_eq!(s.update(xs[3]), Some(3.0));
        assert_eq!(s.update(xs[4]), Some(17.0 / 3.0));
        s.reset();
        assert_eq!(s.value(), None);
        assert_eq!(s.update(xs[0]), None);
    }

    #[test]
    fn sma_does_not_drift() {
        // 0.1 is not representable in binary; a float running sum drifts, the i128 one not.
        let mut s = Sma::new(10).unwrap();
        let tenth = SCALE / 10;
        let mut last = None;
        for i in 0..1_000_000 {
            last = s.update(if i % 2 == 0 { tenth } else { 3 * tenth });
        }
        assert_eq!(last, Some(0.2));
    }

    #[test]
    fn ema_is_seeded_with_the_sma() {
        let mut e = Ema::new(3).unwrap();
        let xs = fx(&[1.0, 2.0, 3.0, 6.0]);
        assert_eq!(e.update(xs[0]), None);
        assert_eq!(e.update(xs[1]), None);
        assert_eq!(e.update(xs[2]), Some(2.0));
        // alpha = 0.5
        assert_eq!(e.update(xs[3]), Some(4.0));
    }

    #[test]
    fn rsi_hand_checked() {
        let mut r = Rsi::new(2).unwrap();
        let xs = fx(&[10.0, 11.0, 10.5, 12.0]);
        assert_eq!(r.update(xs[0]), None);
        assert_eq!(r.update(xs[1]), None);
        // gains 1, 0 -> 0.5; losses 0, 0.5 -> 0.25; rs = 2; rsi = 66.66...
        assert!(close(r.update(xs[2]).unwrap(), 100.0 - 100.0 / 3.0));
        // gain (0.5 * 1 + 1.5) / 2 = 1; loss (0.25 + 0) / 2 = 0.125; rs = 8
        assert!(close(r.update(xs[3]).unwrap(), 100.0 - 100.0 / 9.0));
    }

    #[test]
    fn rsi_flat_and_rising() {
        let flat = rsi(&fx(&[5.0; 6]), 3).unwrap();
        assert!(flat[..3].iter().all(|v| v.is_nan()));
        assert_eq!(flat[3..], [50.0, 50.0, 50.0]);
        let up = rsi(&fx(&[1.0, 2.0, 3.0, 4.0]), 2).unwrap();
        assert_eq!(up[2..], [100.0, 100.0]);
    }

    #[test]
    fn atr_hand_checked() {
        let h = fx(&[10.0, 12.0, 11.0, 15.0]);
        let l = fx(&[9.0, 10.0, 8.0, 12.0]);
        let c = fx(&[9.5, 11.0, 9.0, 14.0]);
        // TR from bar 1: max(2, 2.5, 0.5) = 2.5; bar 2: max(3, 0, 3) = 3; bar 3: max(3, 6, 3) = 6
        let out = atr(&h, &l, &c, 2).unwrap();
        assert!(out[0].is_nan() && out[1].is_nan());
        assert_eq!(out[2], 2.75);
        assert_eq!(out[3], (2.75 + 6.0) / 2.0);
    }

    #[test]
    fn bollinger_hand_checked() {
        let mut b = Bollinger::new(4, 2.0).unwrap();
        let xs = fx(&[2.0, 4.0, 4.0, 6.0]);
        for &x in &xs[..3] {
            assert_eq!(b.update(x), None);
        }
        // mean 4, population variance (4 + 0 + 0 + 4) / 4 = 2
        let bands = b.update(xs[3]).unwrap();
        assert_eq!(bands.mid, 4.0);
        assert!(close(bands.upper, 4.0 + 2.0 * 2f64.sqrt()));
        assert!(close(bands.lower, 4.0 - 2.0 * 2f64.sqrt()));
        let constant = bollinger(&fx(&[7.25; 5]), 3, 2.0).unwrap();
        assert_eq!(constant.1[2..], [7.25, 7.25, 7.25]);
    }

    #[test]
    fn batch_matches_incremental() {
        let xs: Vec<i64> = (0..500)
            .map(|i| SCALE * 100 + ((i * 7919) % 1013) * SCALE / 100)
            .collect();
        let mut s = Sma::new(20).unwrap();
        let mut e = Ema::new(20).unwrap();
        let mut r = Rsi::new(14).unwrap();
        let batch = (
            sma(&xs, 20).unwrap(),
            ema(&xs, 20).unwrap(),
            rsi(&xs, 14).unwrap(),
        );
        for (i, &x) in xs.iter().enumerate() {
            let one = (s.update(x), e.update(x), r.update(x));
            assert_eq!(one.0.unwrap_or(f64::NAN).to_bits(), batch.0[i].to_bits());
            assert_eq!(one.1.unwrap_or(f64::NAN).to_bits(), batch.1[i].to_bits());
            assert_eq!(one.2.unwrap_or(f64::NAN).to_bits(), batch.2[i].to_bits());
        }
    }

    #[test]
    fn huge_values_use_the_float_fallback() {
        let big = i64::MAX - 7;
        let mut b = Bollinger::new(3, 2.0).unwrap();
        b.update(big);
        b.update(big);
        let bands = b.update(big).unwrap();
        assert!(bands.mid.is_finite());
        assert!(bands.upper >= bands.mid && bands.lower <= bands.mid);
        // after a reset the sums are exact again
        b.reset();
        for x in [2, 4, 4] {
            b.update(x * SCALE);
        }
        let exact = b.value().unwrap();
        assert!(close(exact.mid, 10.0 / 3.0));
        assert!(close(exact.upper - exact.mid, 2.0 * (8f64 / 9.0).sqrt()));
    }
}
