//! The statistics of an equity curve that need every point, in two passes over it instead of
//! numpy's many: the period returns' mean, standard deviation and downside deviation, the
//! max drawdown with its peak, trough and longest underwater spell, the mean equity, the
//! exposure from the position steps, and the periods per year the stamps imply.
//!
//! The conventions are `python/admf/metrics.py`'s (its module documentation); every value is
//! the one its numpy formulas give, but for the order of float summation: sums here are plain
//! within blocks and compensated across them, numpy's pairwise, so sums agree to rounding
//! (a few units in the last place of the sum of magnitudes, times the block's length at
//! worst).

/// One day in nanoseconds.
pub const DAY_NS: i64 = 86_400 * 1_000_000_000;
/// A median spacing at least this long makes a curve daily or slower.
pub const DAILY_SPACING_NS: f64 = 0.8 * DAY_NS as f64;
/// More than this share of the points on a Saturday or Sunday: a market with 365 days a year.
pub const WEEKEND_SHARE: f64 = 0.10;
/// Periods per year of a daily-or-slower curve by its median spacing: below each limit (days),
/// the periods a year (`None`: the market's days a year); a year or more is 1.
const SLOW_SPACINGS: [(i64, Option<f64>); 4] = [
    (4, None),
    (10, Some(52.0)),
    (45, Some(12.0)),
    (120, Some(4.0)),
];

/// Terms summed plainly before their sum joins the compensated total: the hot loop keeps a
/// short dependency chain, and the error stays that of a sum of this many terms.
const BLOCK: u32 = 256;

/// A relative margin, far above float rounding, within which a point may be a new drawdown
/// low and its fall is computed exactly.
const QUOTIENT_MARGIN: f64 = 1e-9;

/// A float sum: plain within blocks of [`BLOCK`] terms, the blocks' sums added with
/// Neumaier's compensation. Its error is about that of numpy's pairwise sum (plain within
/// blocks of 128), though not the same rounding.
#[derive(Clone, Copy, Default)]
struct Sum {
    sum: f64,
    compensation: f64,
    block: f64,
    terms: u32,
}

impl Sum {
    #[inline]
    fn add(&mut self, x: f64) {
        self.block += x;
        self.terms += 1;
        if self.terms == BLOCK {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let (x, t) = (self.block, self.sum + self.block);
        self.compensation += if self.sum.abs() >= x.abs() {
            (self.sum - t) + x
        } else {
            (x - t) + self.sum
        };
        (self.sum, self.block, self.terms) = (t, 0.0, 0);
    }

    fn total(mut self) -> f64 {
        self.flush();
        self.sum + self.compensation
    }
}

/// The statistics of an equity curve (see the module documentation). NaN where undefined.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CurveStats {
    /// Returns with a positive previous equity (the others are undefined and left out).
    pub returns: usize,
    pub mean_return: f64,
    /// Standard deviation of the returns, ddof 1 (NaN below 2 returns).
    pub std_return: f64,
    /// `sqrt(mean(min(r, 0)²))` (NaN without returns).
    pub downside_deviation: f64,
    /// The largest fall from a running peak, as a negative fraction (0 without one).
    pub max_drawdown: f64,
    /// The longest time below a previous peak, until the recovery or the end.
    pub max_drawdown_duration_ns: i64,
    pub max_drawdown_peak_ns: i64,
    pub max_drawdown_trough_ns: i64,
    pub mean_equity: f64,
    /// The fraction of periods (one point to the next) that start with a non-zero position;
    /// NaN without a position step function.
    pub exposure: f64,
}

/// The signed position from each `ts` on (in time order); zero before the first.
#[derive(Clone, Copy, Debug)]
pub struct Steps<'a> {
    pub ts: &'a [i64],
    pub qty: &'a [i64],
}

/// The statistics of the curve `(ts, equity)` (in time order, at least one point), with
/// `units` turning an equity value into whole units and the optional position steps.
pub fn curve_stats<T: Copy>(
    ts: &[i64],
    equity: &[T],
    units: impl Fn(T) -> f64,
    positions: Option<Steps<'_>>,
) -> CurveStats {
    let n = equity.len().min(ts.len());
    if n == 0 {
        return CurveStats {
            returns: 0,
            mean_return: f64::NAN,
            std_return: f64::NAN,
            downside_deviation: f64::NAN,
            max_drawdown: f64::NAN,
            max_drawdown_duration_ns: 0,
            max_drawdown_peak_ns: 0,
            max_drawdown_trough_ns: 0,
            mean_equity: f64::NAN,
            exposure: f64::NAN,
        };
    }
    let (mut returns, mut sum_r, mut sum_down, mut sum_equity) =
        (0usize, Sum::default(), Sum::default(), Sum::default());
    // Drawdown: the running peak (its first point) and the deepest fall from it so far.
    let first = units(equity[0]);
    let (mut peak, mut peak_at) = (first, 0usize);
    let (mut max_dd, mut dd_peak_at, mut trough_at) = (f64::INFINITY, 0usize, 0usize);
    // Underwater spells: from the last point at a running peak to the next one.
    let (mut last_peak_ts, mut was_at_peak, mut longest) = (ts[0], true, 0i64);
    let mut prev = first;
    for (i, (&t, &e)) in ts.iter().zip(equity).enumerate() {
        let v = units(e);
        sum_equity.add(v);
        if i > 0 && prev > 0.0 {
            let r = v / prev - 1.0;
            returns += 1;
            sum_r.add(r);
            let down = r.min(0.0);
            sum_down.add(down * down);
        }
        if v > peak {
            (peak, peak_at) = (v, i);
        }
        if peak > 0.0 {
            // The fall is divided out only where it may be a new low: v / peak below the
            // lowest quotient yet, with a margin far above the rounding of either side.
            let bound = max_dd + 1.0 + QUOTIENT_MARGIN * (1.0 + max_dd.abs());
            if v <= bound * peak {
                let dd = v / peak - 1.0;
                if dd < max_dd {
                    (max_dd, dd_peak_at, trough_at) = (dd, peak_at, i);
                }
            }
        } else if 0.0 < max_dd {
            (max_dd, dd_peak_at, trough_at) = (0.0, peak_at, i);
        }
        let at_peak = v >= peak;
        if at_peak {
            if !was_at_peak {
                longest = longest.max(t - last_peak_ts);
            }
            last_peak_ts = t;
        }
        was_at_peak = at_peak;
        prev = v;
    }
    if !was_at_peak {
        longest = longest.max(ts[n - 1] - last_peak_ts);
    }
    let mean_return = if returns > 0 {
        sum_r.total() / returns as f64
    } else {
        f64::NAN
    };
    let std_return = if returns >= 2 {
        // Two passes, as numpy: the squared deviations from the mean.
        let mut squares = Sum::default();
        let mut prev = first;
        for &e in &equity[1..n] {
            let v = units(e);
            if prev > 0.0 {
                let d = (v / prev - 1.0) - mean_return;
                squares.add(d * d);
            }
            prev = v;
        }
        (squares.total() / (returns - 1) as f64).sqrt()
    } else {
        f64::NAN
    };
    CurveStats {
        returns,
        mean_return,
        std_return,
        downside_deviation: if returns > 0 {
            (sum_down.total() / returns as f64).sqrt()
        } else {
            f64::NAN
        },
        max_drawdown: max_dd,
        max_drawdown_duration_ns: longest,
        max_drawdown_peak_ns: ts[dd_peak_at],
        max_drawdown_trough_ns: ts[trough_at],
        mean_equity: sum_equity.total() / n as f64,
        exposure: positions.map_or(f64::NAN, |p| exposure(&ts[..n], p)),
    }
}

/// The fraction of the periods `ts[i]..ts[i + 1]` that start with a non-zero position (NaN
/// below 2 points).
pub fn exposure(ts: &[i64], positions: Steps<'_>) -> f64 {
    if ts.len() < 2 {
        return f64::NAN;
    }
    let steps = positions.ts.len().min(positions.qty.len());
    let (mut next, mut held) = (0usize, 0usize);
    for &start in &ts[..ts.len() - 1] {
        while next < steps && positions.ts[next] <= start {
            next += 1;
        }
        if next > 0 && positions.qty[next - 1] != 0 {
            held += 1;
        }
    }
    held as f64 / (ts.len() - 1) as f64
}

/// The trading day of a stamp (days since 1970-01-01, UTC): that of the nanosecond before
/// it, since bars are stamped at their close.
#[inline]
pub fn trading_day(ts: i64) -> i64 {
    ts.wrapping_sub(1).div_euclid(DAY_NS)
}

/// The median of integers as numpy gives it: the middle value, or the mean of the two.
fn median(values: &mut [i64]) -> f64 {
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    let mid = n / 2;
    let (left, &mut upper, _) = values.select_nth_unstable(mid);
    if n % 2 == 1 {
        return upper as f64;
    }
    let lower = left.iter().copied().max().unwrap_or(upper);
    (lower as f64 + upper as f64) / 2.0
}

/// Boyer-Moore majority vote: a value held by more than half of the values is the candidate.
#[derive(Default)]
struct Majority {
    candidate: i64,
    votes: usize,
    n: usize,
}

impl Majority {
    #[inline]
    fn add(&mut self, v: i64) {
        self.n += 1;
        if self.votes == 0 {
            (self.candidate, self.votes) = (v, 1);
        } else if v == self.candidate {
            self.votes += 1;
        } else {
            self.votes -= 1;
        }
    }

    /// The median of the values voted (given again).
    fn median(&self, values: impl Iterator<Item = i64> + Clone) -> f64 {
        // More than half hold it: both middle places of the sorted values do.
        let held = values.clone().filter(|&v| v == self.candidate).count();
        if self.n > 0 && 2 * held > self.n {
            return self.candidate as f64;
        }
        median(&mut values.collect::<Vec<_>>())
    }
}

/// Periods per year of a series of stamps in time order (`python/admf/metrics.py`): days per
/// year (365 when more than 10% of the points fall on a weekend, else 252) times the median
/// number of points per day for intraday points; by the median spacing for slower ones.
pub fn periods_per_year(ts: &[i64]) -> f64 {
    let n = ts.len();
    if n < 2 {
        return f64::NAN;
    }
    // One pass: the points of each day (a day's points are one run, in time order; a day is
    // found by division only where it changes), the weekend's, and the spacings' vote.
    let (mut per_day, mut weekend, mut spacing_vote) = (Vec::new(), 0usize, Majority::default());
    let mut day = trading_day(ts[0]);
    // The stamps of `day`: (day * DAY_NS, (day + 1) * DAY_NS], as `trading_day` reads them.
    let (mut day_end, mut run) = (day_end_of(day), 0usize);
    let mut prev = ts[0];
    for &t in ts {
        if t > day_end || t <= day_end.wrapping_sub(DAY_NS) {
            per_day.push(run);
            day = trading_day(t);
            (day_end, run) = (day_end_of(day), 0);
        }
        run += 1;
        // 1970-01-01 was a Thursday: (day + 3) % 7 is 0 on Mondays.
        if (day + 3).rem_euclid(7) >= 5 {
            weekend += 1;
        }
        if run > 1 || !per_day.is_empty() {
            spacing_vote.add(t.wrapping_sub(prev));
        }
        prev = t;
    }
    per_day.push(run);
    let days_per_year = if weekend as f64 / n as f64 > WEEKEND_SHARE {
        365.0
    } else {
        252.0
    };
    let spacing = spacing_vote.median(ts.windows(2).map(|w| w[1].wrapping_sub(w[0])));
    // Also false for NaN, as numpy's `spacing <= 0` is.
    if spacing <= 0.0 {
        return f64::NAN;
    }
    if spacing < DAILY_SPACING_NS {
        let mut per_day: Vec<i64> = per_day.into_iter().map(|r| r as i64).collect();
        return days_per_year * median(&mut per_day);
    }
    for (limit_days, per_year) in SLOW_SPACINGS {
        if spacing < (limit_days * DAY_NS) as f64 {
            return per_year.unwrap_or(days_per_year);
        }
    }
    1.0
}

/// The last stamp of a trading day (see [`trading_day`]).
#[inline]
fn day_end_of(day: i64) -> i64 {
    day.wrapping_mul(DAY_NS).wrapping_add(DAY_NS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000_000_000;

    fn units(x: f64) -> f64 {
        x
    }

    #[test]
    fn returns_ratios_and_drawdown_of_a_small_curve() {
        // +10%, -10%, +10%, +20%: the fall from 110 to 99 is the max drawdown.
        let ts = [1, 2, 3, 4, 5];
        let equity = [100.0, 110.0, 99.0, 108.9, 130.68];
        let s = curve_stats(&ts, &equity, units, None);
        let r = [0.1, -0.1, 0.1, 0.2];
        let mean = r.iter().sum::<f64>() / 4.0;
        let var = r.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / 3.0;
        assert_eq!(s.returns, 4);
        assert!((s.mean_return - mean).abs() < 1e-15);
        assert!((s.std_return - var.sqrt()).abs() < 1e-15);
        assert!((s.downside_deviation - (0.01f64 / 4.0).sqrt()).abs() < 1e-15);
        assert!((s.max_drawdown + 0.1).abs() < 1e-15);
        assert_eq!((s.max_drawdown_peak_ns, s.max_drawdown_trough_ns), (2, 3));
        // Below the peak of 110 from ts 2 until 108.9 < 110 ... 130.68 at ts 5.
        assert_eq!(s.max_drawdown_duration_ns, 3);
        assert!(s.exposure.is_nan());
    }

    #[test]
    fn underwater_until_the_end_and_non_positive_equity() {
        let ts = [0, 10, 20, 30];
        let s = curve_stats(&ts, &[100.0, 50.0, 0.0, 10.0], units, None);
        // The return from 0 is undefined: two returns.
        assert_eq!(s.returns, 2);
        assert_eq!(s.max_drawdown, -1.0);
        assert_eq!(s.max_drawdown_duration_ns, 30);
        let flat = curve_stats(&ts, &[5.0; 4], units, None);
        assert_eq!((flat.max_drawdown, flat.max_drawdown_duration_ns), (0.0, 0));
        assert_eq!(flat.std_return, 0.0);
    }

    #[test]
    fn exposure_counts_periods_starting_in_a_position() {
        let ts = [10, 20, 30, 40, 50];
        let steps = Steps {
            ts: &[15, 20, 40],
            qty: &[5, 0, -3],
        };
        // Periods start at 10 (flat), 20 (flat again at 20), 30 (flat), 40 (short).
        assert_eq!(exposure(&ts, steps), 0.25);
        let s = curve_stats(&ts, &[1.0; 5], units, Some(steps));
        assert_eq!(s.exposure, 0.25);
    }

    #[test]
    fn median_matches_the_middle_or_the_mean_of_the_two() {
        assert_eq!(median(&mut [3, 1, 2]), 2.0);
        assert_eq!(median(&mut [4, 1, 3, 2]), 2.5);
        let median_of = |values: [i64; 4]| {
            let mut vote = Majority::default();
            values.iter().for_each(|&v| vote.add(v));
            vote.median(values.into_iter())
        };
        assert_eq!(median_of([7, 7, 1, 7]), 7.0);
        assert_eq!(median_of([7, 1, 2, 7]), 4.5);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn periods_per_year_of_minutes_days_and_weeks() {
        // Thursday 1970-01-01, 24 hours of minutes for 14 days: a 365-day market.
        let crypto: Vec<i64> = (1..=14 * 1440).map(|i| i * MINUTE).collect();
        assert_eq!(periods_per_year(&crypto), 365.0 * 1440.0);
        // 390 minutes on each weekday only: 252 days.
        let mut stocks = Vec::new();
        for day in 0..21i64 {
            if (day + 3).rem_euclid(7) < 5 {
                let open = day * DAY_NS + 13 * 60 * MINUTE;
                stocks.extend((1..=390).map(|m| open + m * MINUTE));
            }
        }
        assert_eq!(periods_per_year(&stocks), 252.0 * 390.0);
        let weekly: Vec<i64> = (1..20).map(|w| w * 7 * DAY_NS).collect();
        assert_eq!(periods_per_year(&weekly), 52.0);
        assert!(periods_per_year(&[5, 5, 5]).is_nan());
        assert!(periods_per_year(&[5]).is_nan());
    }
}
