//! A top-of-book quote as book deltas: what a quote means for a book that only ever sees
//! quotes (an L1 feed, such as Alpaca's quotes or TrueFX's).
//!
//! A quote is the book's whole content: both sides are cleared, then the bid and the ask are
//! added as anonymous size (order id 0). A side without a price (`<= 0`) stays empty, and an
//! ask at or below the bid (a locked or crossed quote) is left out, since a book cannot hold
//! it. A quote without sizes (TrueFX) shows [`UNLIMITED_SIZE`], as Alpaca's paper venue does
//! not check an order's size against the NBBO.
//!
//! Trades are not deltas of an L1 book: a trade print does not say which resting size it
//! took, and the next quote shows what is left. The simulated venue ignores them.

use super::BookError;
use crate::event::{Event, Kind, Side, SCALE};

/// The size of a quote side that shows none: a billion units.
pub const UNLIMITED_SIZE: i64 = 1_000_000_000 * SCALE;

/// The deltas of one quote (two clears, then up to two adds), in the order they apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuoteDeltas {
    events: [Event; 4],
    len: usize,
}

impl QuoteDeltas {
    pub fn as_slice(&self) -> &[Event] {
        &self.events[..self.len]
    }
}

/// The deltas `quote` (a `QUOTE` record: bid price and size in `price` and `qty`, ask price
/// and size in `aux` and `order_id`) means for a book with prices on `tick`. They carry the
/// quote's time and instrument. A quote whose price is off the tick or whose size is
/// negative is refused before anything is built, so a book it would leave half-changed never
/// sees it.
pub fn quote_deltas(quote: &Event, tick: i64) -> Result<QuoteDeltas, BookError> {
    if quote.kind != Kind::Quote as u8 {
        return Err(BookError::BadKind { kind: quote.kind });
    }
    let (bid, bid_size, ask, ask_size) = (quote.price, quote.qty, quote.aux, quote.order_id);
    let delta = |kind: Kind, side: Side, price: i64, qty: i64| Event {
        kind: kind as u8,
        ts: quote.ts,
        instrument: quote.instrument,
        side: side as u8,
        price,
        qty,
        ..Event::default()
    };
    let mut events = [
        delta(Kind::BookClear, Side::Buy, 0, 0),
        delta(Kind::BookClear, Side::Sell, 0, 0),
        Event::default(),
        Event::default(),
    ];
    let mut len = 2;
    let sides = [
        (Side::Buy, bid, bid_size, bid > 0),
        (Side::Sell, ask, ask_size, ask > 0 && ask > bid),
    ];
    for (side, price, size, shown) in sides {
        if !shown {
            continue;
        }
        if size < 0 {
            return Err(BookError::BadQuantity { id: 0, qty: size });
        }
        if price % tick != 0 {
            return Err(BookError::QuoteOffTick { price, tick });
        }
        let qty = if size == 0 { UNLIMITED_SIZE } else { size };
        events[len] = delta(Kind::BookAdd, side, price, qty);
        len += 1;
    }
    Ok(QuoteDeltas { events, len })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::OrderBook;

    fn quote(ts: i64, bid: i64, bid_size: i64, ask: i64, ask_size: i64) -> Event {
        Event {
            kind: Kind::Quote as u8,
            ts,
            instrument: 3,
            price: bid,
            qty: bid_size,
            aux: ask,
            order_id: ask_size,
            ..Event::default()
        }
    }

    fn book_after(quotes: &[Event], tick: i64) -> OrderBook {
        let mut book = OrderBook::new(tick).unwrap();
        for q in quotes {
            book.apply_all(quote_deltas(q, tick).unwrap().as_slice())
                .unwrap();
        }
        book
    }

    #[test]
    fn a_quote_replaces_the_whole_book() {
        let d = quote_deltas(&quote(7, 100, 5, 102, 6), 1).unwrap();
        let kinds: Vec<_> = d.as_slice().iter().map(|e| (e.kind, e.side)).collect();
        let (clear, add) = (Kind::BookClear as u8, Kind::BookAdd as u8);
        let (buy, sell) = (Side::Buy as u8, Side::Sell as u8);
        assert_eq!(
            kinds,
            [(clear, buy), (clear, sell), (add, buy), (add, sell)]
        );
        assert!(d
            .as_slice()
            .iter()
            .all(|e| e.ts == 7 && e.instrument == 3 && e.order_id == 0));
        let book = book_after(&[quote(1, 90, 1, 95, 1), quote(2, 100, 5, 102, 6)], 1);
        assert_eq!(book.best_bid(), Some((100, 5)));
        assert_eq!(book.best_ask(), Some((102, 6)));
        assert_eq!(book.level_count(Side::Buy), 1, "the old bid is gone");
        assert_eq!(book.level_count(Side::Sell), 1);
        assert_eq!(book.queue(Side::Buy, 100), vec![], "anonymous size only");
    }

    #[test]
    fn a_side_without_size_is_unlimited() {
        let book = book_after(&[quote(1, 86_655, 0, 86_728, 0)], 1);
        assert_eq!(book.best_bid(), Some((86_655, UNLIMITED_SIZE)));
        assert_eq!(book.best_ask(), Some((86_728, UNLIMITED_SIZE)));
    }

    #[test]
    fn missing_and_crossed_sides_stay_empty() {
        let book = book_after(&[quote(1, 100, 5, 102, 6), quote(2, 0, 0, 101, 3)], 1);
        assert_eq!(book.bbo(), (None, Some(101)));
        let book = book_after(&[quote(1, 100, 5, 102, 6), quote(2, 101, 2, 101, 3)], 1);
        assert_eq!(book.bbo(), (Some(101), None), "a locked ask is left out");
        let d = quote_deltas(&quote(1, 0, 0, 0, 0), 1).unwrap();
        assert_eq!(d.as_slice().len(), 2, "an empty quote clears the book");
    }

    #[test]
    fn bad_quotes_are_refused_whole() {
        assert_eq!(
            quote_deltas(&quote(1, 100, 5, 105, 1), 10),
            Err(BookError::QuoteOffTick {
                price: 105,
                tick: 10
            })
        );
        assert_eq!(
            quote_deltas(&quote(1, 100, -5, 110, 1), 10),
            Err(BookError::BadQuantity { id: 0, qty: -5 })
        );
        let trade = Event {
            kind: Kind::Trade as u8,
            ..quote(1, 100, 5, 110, 1)
        };
        assert_eq!(
            quote_deltas(&trade, 10),
            Err(BookError::BadKind {
                kind: Kind::Trade as u8
            })
        );
    }
}
