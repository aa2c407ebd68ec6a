//! A run's projections from its events in one pass over the [`Portfolio`] fold: the equity
//! curve, the round-trip trades and the step function of the position.

use std::collections::BTreeMap;

use crate::event::{Event, Kind, Side};

use super::portfolio::{scaled_down, Portfolio};

/// The market price an event marks its instrument at: a bar's close, a trade's or a book
/// execution's price, a two-sided quote's mid (rounded half up); None for other events.
#[inline]
pub fn mark_price(e: &Event) -> Option<i64> {
    match Kind::from_code(e.kind) {
        Some(Kind::Bar | Kind::Trade | Kind::BookExecute) => Some(e.price),
        Some(Kind::Quote) if e.price > 0 && e.aux > 0 => {
            Some(e.price / 2 + e.aux / 2 + (e.price % 2 + e.aux % 2) / 2)
        }
        _ => None,
    }
}

fn is_mark(kind: u8) -> bool {
    matches!(
        Kind::from_code(kind),
        Some(Kind::Bar | Kind::Trade | Kind::Quote | Kind::BookExecute)
    )
}

/// Equity at each mark, fixed point, as columns: cash after every fill the mark caused
/// (every fill before the next mark) plus the positions at the market's last prices.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Curve {
    pub ts: Vec<i64>,
    pub equity: Vec<i64>,
    pub cash: Vec<i64>,
    pub exposure: Vec<i64>,
}

impl Curve {
    fn push(&mut self, p: &Portfolio, ts: i64) {
        let (equity, exposure) = p.equity_and_exposure();
        self.ts.push(ts);
        self.equity.push(equity);
        self.cash.push(p.cash);
        self.exposure.push(exposure);
    }

    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }
}

/// One round trip: a position opened from flat and closed back to flat (a flip closes one
/// trip and opens the next). Entry and exit prices are volume-weighted (rounded down); fees
/// and the net P&L are exact fixed point.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trip {
    pub entry_ts: i64,
    pub exit_ts: i64,
    pub instrument: u32,
    /// The entry's side: buy for a long trip.
    pub side: u8,
    pub qty: i64,
    pub entry_price: i64,
    pub exit_price: i64,
    pub fees: i64,
    pub pnl: i64,
}

#[derive(Default)]
struct OpenTrip {
    ts: i64,
    pos: i64,
    in_value: i128,
    in_qty: i64,
    out_value: i128,
    out_qty: i64,
    fees: i64,
}

/// What [`analyze`] builds.
#[derive(Debug, Default)]
pub struct Analysis {
    pub curve: Curve,
    pub trips: Vec<Trip>,
    /// `(ts, total signed position)` after each fill.
    pub steps: Vec<(i64, i64)>,
    /// The portfolio after the last event.
    pub portfolio: Option<Portfolio>,
}

/// Folds a run's events (in `seq` order) into its equity curve, round trips and positions.
pub fn analyze(events: &[Event], initial_cash: i64) -> Analysis {
    let mut portfolio = Portfolio::new(initial_cash);
    let mut out = Analysis::default();
    let marks = events.iter().filter(|e| is_mark(e.kind)).count();
    for column in [
        &mut out.curve.ts,
        &mut out.curve.equity,
        &mut out.curve.cash,
        &mut out.curve.exposure,
    ] {
        column.reserve_exact(marks);
    }
    let mut trips: BTreeMap<u32, OpenTrip> = BTreeMap::new();
    let mut total = 0i64;
    let mut pending: Option<i64> = None;
    let fill = Kind::Fill as u8;
    for e in events {
        if e.kind == fill {
            portfolio.apply(e);
            let signed = if e.side == Side::Buy as u8 {
                e.qty
            } else {
                -e.qty
            };
            total += signed;
            out.steps.push((e.ts, total));
            close_trips(&mut trips, &mut out.trips, e, signed);
        } else if is_mark(e.kind) {
            if let Some(ts) = pending.take() {
                out.curve.push(&portfolio, ts);
            }
            if let Some(price) = mark_price(e) {
                portfolio.mark(e.instrument, price);
            }
            pending = Some(e.ts);
        }
    }
    if let Some(ts) = pending {
        out.curve.push(&portfolio, ts);
    }
    out.portfolio = Some(portfolio);
    out
}

fn close_trips(open: &mut BTreeMap<u32, OpenTrip>, done: &mut Vec<Trip>, f: &Event, signed: i64) {
    let mut signed = signed;
    let mut fee = f.aux;
    let price = f.price as i128;
    while signed != 0 {
        let trip = open.entry(f.instrument).or_insert_with(|| OpenTrip {
            ts: f.ts,
            ..OpenTrip::default()
        });
        if trip.pos == 0 || (trip.pos > 0) == (signed > 0) {
            trip.pos += signed;
            trip.in_value += price * signed.unsigned_abs() as i128;
            trip.in_qty += signed.abs();
            trip.fees += fee;
            return;
        }
        let closing = trip.pos.abs().min(signed.abs());
        let direction: i64 = if trip.pos > 0 { 1 } else { -1 };
        trip.pos -= closing * direction;
        trip.out_value += price * closing as i128;
        trip.out_qty += closing;
        trip.fees += fee;
        fee = 0;
        signed += closing * direction;
        if trip.pos == 0 {
            let gross = scaled_down((trip.out_value - trip.in_value) * direction as i128);
            done.push(Trip {
                entry_ts: trip.ts,
                exit_ts: f.ts,
                instrument: f.instrument,
                side: if direction > 0 { Side::Buy } else { Side::Sell } as u8,
                qty: trip.in_qty,
                entry_price: (trip.in_value / trip.in_qty as i128) as i64,
                exit_price: (trip.out_value / trip.out_qty as i128) as i64,
                fees: trip.fees,
                pnl: gross - trip.fees,
            });
            open.remove(&f.instrument);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::SCALE;

    fn bar(ts: i64, close: i64) -> Event {
        Event {
            instrument: 1,
            price: close * SCALE,
            ..Event::new(Kind::Bar, ts)
        }
    }

    fn fill(ts: i64, side: Side, price: i64, qty: i64) -> Event {
        Event {
            instrument: 1,
            side: side as u8,
            price: price * SCALE,
            qty: qty * SCALE,
            aux: SCALE,
            ..Event::new(Kind::Fill, ts)
        }
    }

    #[test]
    fn curve_trips_and_steps_of_a_long_then_short() {
        let events = [
            bar(1, 10),
            fill(1, Side::Buy, 10, 10),
            bar(2, 12),
            fill(2, Side::Sell, 12, 20),
            bar(3, 11),
            fill(3, Side::Buy, 11, 10),
        ];
        let a = analyze(&events, 1_000 * SCALE);
        let equity: Vec<i64> = a.curve.equity.iter().map(|e| e / SCALE).collect();
        // Fees of 1 per fill; the first bar's point includes the fill it caused.
        assert_eq!(equity, [999, 1_018, 1_027]);
        assert_eq!(a.curve.exposure[1], 120 * SCALE);
        assert_eq!(a.trips.len(), 2);
        let (long, short) = (a.trips[0], a.trips[1]);
        assert_eq!((long.side, long.qty), (Side::Buy as u8, 10 * SCALE));
        assert_eq!((long.pnl, long.fees), (18 * SCALE, 2 * SCALE));
        assert_eq!(
            (short.side, short.entry_price),
            (Side::Sell as u8, 12 * SCALE)
        );
        assert_eq!(short.pnl, 9 * SCALE);
        let steps: Vec<i64> = a.steps.iter().map(|s| s.1 / SCALE).collect();
        assert_eq!(steps, [10, -10, 0]);
    }
}
