//! The event record: one fixed 64-byte layout shared by the queue, the order book and the log.
//!
//! Every input and output of the engine is an [`Event`]. The record is `repr(C)` with no
//! padding, so a slice of events is a plain byte buffer: the numpy structured dtype
//! (`admf.EVENT_DTYPE`) and the Arrow schema (`admf.EVENT_SCHEMA`) describe exactly these
//! bytes, field for field, and batches cross between Rust, numpy, Arrow and DuckDB as memory
//! copies rather than per-event objects.
//!
//! Money and quantities are fixed-point integers with [`SCALE`] units per whole (9 decimal
//! places, as NautilusTrader's standard precision). Five 64-bit value slots carry what a kind
//! needs; their common names fit orders, book deltas and fills. Bars and quotes carry more
//! numbers than that vocabulary has names for, and put them in the remaining slots:
//!
//! | kind   | price     | qty      | aux        | order_id | payload |
//! |--------|-----------|----------|------------|----------|---------|
//! | bar    | close     | volume   | open       | high     | low     |
//! | quote  | bid price | bid size | ask price  | ask size | -       |
//! | trade  | price     | size     | -          | trade id | -       |
//! | fill   | price     | size     | fee        | order id | contra order id |
//! | custom | value     | -        | -          | -        | payload handle (flag `HAS_PAYLOAD`) |
//!
//! `admf.Event` exposes the bar and quote numbers under their own names, and the log's SQL
//! views (`bars`, `quotes`) decode them, so users rarely see the raw slots.

use bytemuck::{Pod, Zeroable};

/// Fixed-point units per whole for prices, quantities and money.
pub const SCALE: i64 = 1_000_000_000;

/// Number of decimal places behind [`SCALE`].
pub const SCALE_DIGITS: u32 = 9;

/// Size of one record in bytes.
pub const EVENT_SIZE: usize = 64;

/// One event record. See the module documentation for the meaning of each slot.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct Event {
    /// Global sequence number, assigned by the kernel's sequencer (0 = not yet sequenced).
    pub seq: u64,
    /// Timestamp in nanoseconds since the Unix epoch, UTC.
    pub ts: i64,
    /// Order id (orders, book deltas, fills); a kind-specific value for bars and quotes.
    pub order_id: i64,
    /// Fixed-point price.
    pub price: i64,
    /// Fixed-point quantity.
    pub qty: i64,
    /// Kind-specific fixed-point value (fee of a fill, open of a bar, ask of a quote).
    pub aux: i64,
    /// Handle of an optional payload (custom events), or a kind-specific value.
    pub payload: i64,
    /// Instrument id.
    pub instrument: u32,
    /// One of [`Kind`], as its `u8` code.
    pub kind: u8,
    /// One of [`Side`], as its `u8` code.
    pub side: u8,
    /// Bit set of [`flags`].
    pub flags: u16,
}

const _: () = assert!(std::mem::size_of::<Event>() == EVENT_SIZE);
const _: () = assert!(std::mem::align_of::<Event>() == 8);

/// Field names, byte offsets and numpy type codes of the record, in layout order. The Python
/// side builds `EVENT_DTYPE` and `EVENT_SCHEMA` from this table, and a test checks both
/// against it, so there is one definition of the layout.
pub const FIELDS: [(&str, usize, &str); 11] = [
    ("seq", std::mem::offset_of!(Event, seq), "<u8"),
    ("ts", std::mem::offset_of!(Event, ts), "<i8"),
    ("order_id", std::mem::offset_of!(Event, order_id), "<i8"),
    ("price", std::mem::offset_of!(Event, price), "<i8"),
    ("qty", std::mem::offset_of!(Event, qty), "<i8"),
    ("aux", std::mem::offset_of!(Event, aux), "<i8"),
    ("payload", std::mem::offset_of!(Event, payload), "<i8"),
    ("instrument", std::mem::offset_of!(Event, instrument), "<u4"),
    ("kind", std::mem::offset_of!(Event, kind), "u1"),
    ("side", std::mem::offset_of!(Event, side), "u1"),
    ("flags", std::mem::offset_of!(Event, flags), "<u2"),
];

macro_rules! kinds {
    ($($(#[$doc:meta])* $name:ident = $code:expr, $py:literal;)*) => {
        /// What an event is. The numeric codes are part of the log format: never renumber.
        #[repr(u8)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Kind {
            $($(#[$doc])* $name = $code,)*
        }

        impl Kind {
            /// Every kind with its Python name, in code order.
            pub const ALL: &'static [(Kind, &'static str)] = &[$((Kind::$name, $py),)*];

            /// The kind with this code, if there is one.
            pub fn from_code(code: u8) -> Option<Kind> {
                match code {
                    $($code => Some(Kind::$name),)*
                    _ => None,
                }
            }
        }
    };
}

kinds! {
    /// An empty record.
    None = 0, "NONE";
    /// An OHLCV bar (see the slot table).
    Bar = 1, "BAR";
    /// A top-of-book quote.
    Quote = 2, "QUOTE";
    /// A trade print from the market.
    Trade = 3, "TRADE";
    /// Book delta: a new resting order.
    BookAdd = 10, "BOOK_ADD";
    /// Book delta: `qty` of a resting order canceled (all of it when `qty` >= its size).
    BookCancel = 11, "BOOK_CANCEL";
    /// Book delta: a resting order's price and size replaced by `price` and `qty`.
    BookModify = 12, "BOOK_MODIFY";
    /// Book delta: `qty` of a resting order executed.
    BookExecute = 13, "BOOK_EXECUTE";
    /// Book delta: one side (or both, side NONE) cleared.
    BookClear = 14, "BOOK_CLEAR";
    /// Command: submit an order.
    OrderSubmit = 20, "ORDER_SUBMIT";
    /// Command: cancel an order.
    OrderCancel = 21, "ORDER_CANCEL";
    /// Command: modify an order.
    OrderModify = 22, "ORDER_MODIFY";
    /// Venue: order accepted.
    OrderAccepted = 23, "ORDER_ACCEPTED";
    /// Venue: order rejected (reason code in `aux`).
    OrderRejected = 24, "ORDER_REJECTED";
    /// Venue: order canceled.
    OrderCanceled = 25, "ORDER_CANCELED";
    /// Venue: order expired.
    OrderExpired = 26, "ORDER_EXPIRED";
    /// Venue: order modified.
    OrderModified = 27, "ORDER_MODIFIED";
    /// Venue: an order (partly) filled.
    Fill = 28, "FILL";
    /// A strategy's signal.
    Signal = 40, "SIGNAL";
    /// A timer fired.
    Timer = 41, "TIMER";
    /// A risk decision (allowed or denied, reason code in `aux`).
    Risk = 42, "RISK";
    /// An error raised by a component.
    Error = 43, "ERROR";
    /// A wall-clock reading (live mode).
    Clock = 44, "CLOCK";
    /// A user-defined event, usually with a payload.
    Custom = 50, "CUSTOM";
}

/// The side of an order, delta, trade aggressor or fill.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// No side (bars, timers, clearing both sides of a book).
    None = 0,
    /// Buy / bid.
    Buy = 1,
    /// Sell / ask.
    Sell = 2,
}

impl Side {
    /// The side with this code, if there is one.
    pub fn from_code(code: u8) -> Option<Side> {
        match code {
            0 => Some(Side::None),
            1 => Some(Side::Buy),
            2 => Some(Side::Sell),
            _ => None,
        }
    }
}

/// Bits of [`Event::flags`]. Part of the log format: never reuse a bit.
pub mod flags {
    /// Last record of a venue packet or of an atomic batch of deltas.
    pub const LAST: u16 = 1 << 0;
    /// Part of a snapshot rather than an incremental update.
    pub const SNAPSHOT: u16 = 1 << 1;
    /// `payload` is a handle into the payload store.
    pub const HAS_PAYLOAD: u16 = 1 << 2;
    /// Order type market (otherwise limit).
    pub const MARKET: u16 = 1 << 3;
    /// Time in force: immediate or cancel.
    pub const IOC: u16 = 1 << 4;
    /// Time in force: fill or kill.
    pub const FOK: u16 = 1 << 5;
    /// Post-only: reject rather than take liquidity.
    pub const POST_ONLY: u16 = 1 << 6;
    /// The event belongs to one of our own orders (as opposed to the market's).
    pub const OWN: u16 = 1 << 7;
    /// The fill or trade took liquidity (aggressor).
    pub const AGGRESSOR: u16 = 1 << 8;
    /// A recorded input (market data, venue reports, clock readings in live mode): what a
    /// replay feeds back through the kernel. Everything else is output.
    pub const INPUT: u16 = 1 << 9;
}

/// Converts a float to fixed point, rounding half away from zero. `None` when the value is
/// not finite or does not fit.
pub fn to_fixed(value: f64) -> Option<i64> {
    let scaled = (value * SCALE as f64).round();
    if scaled.is_finite() && scaled >= i64::MIN as f64 && scaled < i64::MAX as f64 {
        Some(scaled as i64)
    } else {
        None
    }
}

/// Converts fixed point to a float (for display and statistics, never for bookkeeping).
pub fn from_fixed(value: i64) -> f64 {
    value as f64 / SCALE as f64
}

impl Event {
    /// A record of `kind` at `ts` with every other field zero.
    pub fn new(kind: Kind, ts: i64) -> Event {
        Event {
            kind: kind as u8,
            ts,
            ..Event::default()
        }
    }

    /// The record's bytes, in the layout numpy and Arrow describe.
    pub fn as_bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }

    /// Reads a record from `EVENT_SIZE` bytes at any alignment.
    pub fn from_bytes(bytes: &[u8]) -> Option<Event> {
        (bytes.len() == EVENT_SIZE).then(|| bytemuck::pod_read_unaligned(bytes))
    }

    /// The decoded kind, if the code is known.
    pub fn kind(&self) -> Option<Kind> {
        Kind::from_code(self.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_has_no_padding_and_fields_are_in_order() {
        let mut end = 0;
        for (name, offset, code) in FIELDS {
            assert_eq!(offset, end, "field {name} does not follow the previous one");
            let width: usize = code.trim_start_matches(['<', 'u', 'i']).parse().unwrap();
            end = offset + width;
        }
        assert_eq!(end, EVENT_SIZE);
    }

    #[test]
    fn bytes_round_trip_at_any_alignment() {
        let ev = Event {
            seq: 7,
            ts: -3,
            order_id: 42,
            price: 101 * SCALE,
            qty: 5,
            aux: -1,
            payload: 9,
            instrument: 3,
            kind: Kind::Fill as u8,
            side: Side::Sell as u8,
            flags: flags::OWN | flags::LAST,
        };
        let mut buf = vec![0u8; EVENT_SIZE + 1];
        buf[1..].copy_from_slice(ev.as_bytes());
        assert_eq!(Event::from_bytes(&buf[1..]), Some(ev));
        assert_eq!(Event::from_bytes(&buf), None);
    }

    #[test]
    fn kind_codes_are_unique_and_round_trip() {
        let mut seen = std::collections::BTreeSet::new();
        for &(kind, name) in Kind::ALL {
            assert!(seen.insert(kind as u8), "duplicate code for {name}");
            assert_eq!(Kind::from_code(kind as u8), Some(kind));
        }
        assert_eq!(Kind::from_code(255), None);
    }

    #[test]
    fn fixed_point_rounds_and_rejects_non_finite() {
        assert_eq!(to_fixed(1.5), Some(1_500_000_000));
        assert_eq!(to_fixed(-0.000_000_000_5), Some(-1));
        assert_eq!(to_fixed(f64::NAN), None);
        assert_eq!(to_fixed(1e30), None);
        assert_eq!(from_fixed(2_250_000_000), 2.25);
    }
}
