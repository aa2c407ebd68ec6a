//! The order book: an L3 (order-by-order) limit order book with price-time priority, its L2
//! view, and the matching engine of the simulated venue.
//!
//! Three layers, each usable on its own:
//!
//! - [`OrderBook`] keeps a book from market data. Deltas ([`OrderBook::add`], `reduce`,
//!   `cancel`, `modify`, `execute`, `clear`, or whole [`Event`] records of kinds `BOOK_ADD` ..
//!   `BOOK_CLEAR` through [`OrderBook::apply`] / [`OrderBook::apply_all`]) change it; every
//!   operation either succeeds or returns a [`BookError`] and leaves the book unchanged.
//!   A level can also carry *anonymous* size that belongs to no known order (a book seeded
//!   from a snapshot in the middle of the day); it is older than every known order at its
//!   price, and cancels or executions of unknown order ids reduce it.
//! - [`OrderBook::submit`] (module `matching`) makes the same book an exchange: an incoming
//!   market, limit, IOC, FOK or post-only [`Order`] matches against resting orders in
//!   price-time order, consuming them, and produces `FILL` records for both sides.
//! - [`SimVenue`] (module `venue`) is the simulated venue of a backtest: a book driven by
//!   market data plus our own orders, which never change the market's book. Own orders keep a
//!   queue position (the market volume ahead of them must trade or cancel first), take
//!   liquidity when they cross, pay maker/taker fees ([`Fees`]) and see a [`Latency`] from
//!   the strategy to the venue and back. The kernel drives it with
//!   [`SimVenue::submit`] (an `ORDER_SUBMIT` / `ORDER_CANCEL` / `ORDER_MODIFY` record) and
//!   [`SimVenue::on_market`] (a book delta); both append the venue's answers
//!   (`ORDER_ACCEPTED`, `ORDER_REJECTED`, `ORDER_CANCELED`, `ORDER_EXPIRED`,
//!   `ORDER_MODIFIED`, `FILL`) to an output vector, stamped with the time the strategy sees
//!   them.
//!
//! Prices and sizes are fixed-point `i64` ([`crate::event::SCALE`] per whole). Nothing here
//! iterates a hash map to produce output: levels are kept sorted and orders in FIFO lists, so
//! every view and every batch of fills is deterministic.
//!
//! Layout: levels live in an arena; each side keeps a ladder, a `Vec` of (price key, level)
//! sorted so that the best level is last (inserting or removing near the top moves few
//! entries, and most activity is near the top). Orders live in a second arena, linked into a
//! doubly linked FIFO list per level and pointing at their level, so a cancel or an execution
//! needs one hash lookup and no search; the id map uses a hash that keeps sequentially
//! numbered orders in neighbouring buckets.
//!
//! Kernel use (the simulated venue):
//!
//! ```
//! use _core::book::{Fees, Latency, OrderBook, SimVenue};
//! use _core::event::{flags, Event, Kind, Side, SCALE};
//!
//! let book = OrderBook::new(SCALE / 100).unwrap(); // one-cent tick
//! let mut venue = SimVenue::new(book, Fees { maker: -20_000, taker: 30_000 },
//!                               Latency { to_venue: 50_000, to_strategy: 50_000 });
//! let mut out = Vec::new();
//! let ask = Event { kind: Kind::BookAdd as u8, ts: 1_000, order_id: 7, side: Side::Sell as u8,
//!                   price: 100 * SCALE, qty: 5 * SCALE, ..Event::default() };
//! venue.on_market(&ask, &mut out).unwrap();           // market data in
//! let buy = Event { kind: Kind::OrderSubmit as u8, ts: 2_000, order_id: 1,
//!                   side: Side::Buy as u8, price: 100 * SCALE, qty: 2 * SCALE,
//!                   flags: flags::OWN | flags::IOC, ..Event::default() };
//! venue.submit(&buy, &mut out).unwrap();              // our order, 50 us on its way
//! venue.advance(60_000, &mut out);                    // the clock passes its arrival
//! assert!(out.iter().any(|e| e.kind == Kind::Fill as u8 && e.order_id == 1));
//! ```

mod ladder;
mod matching;
mod quote;
pub mod synthetic;
mod venue;

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use crate::event::{flags, Event, Kind, Side};
use ladder::Ladder;

pub use matching::{Order, OrderType, Outcome, Status, TimeInForce};
pub use quote::{quote_deltas, QuoteDeltas, UNLIMITED_SIZE};
pub use venue::{Fees, Latency, OwnOrder, RejectReason, SimVenue};

const NIL: u32 = u32::MAX;

/// The lowest price a book accepts: every price must have a negation (the ask side is ordered
/// by `-price`), so `i64::MIN` is refused.
pub const MIN_PRICE: i64 = -i64::MAX;

/// Why a book operation was refused. The book is unchanged after any of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BookError {
    /// No resting order has this id (and, for a delta that names a price, the level holds
    /// too little anonymous size to absorb it).
    UnknownOrder { id: i64 },
    /// An order with this id is already resting.
    DuplicateOrder { id: i64 },
    /// The order would rest at or through the best price of the other side.
    Crossing {
        id: i64,
        side: Side,
        price: i64,
        best: i64,
    },
    /// Sizes must be positive.
    BadQuantity { id: i64, qty: i64 },
    /// The size would take a level's total past what an `i64` holds.
    SizeOverflow { id: i64, qty: i64 },
    /// The price is not a multiple of the book's tick.
    OffTick { id: i64, price: i64, tick: i64 },
    /// A quote's bid or ask is not a multiple of the book's tick.
    QuoteOffTick { price: i64, tick: i64 },
    /// An execution larger than the order's remaining size.
    Overfill { id: i64, qty: i64, remaining: i64 },
    /// The side must be buy or sell here.
    BadSide { id: i64, side: u8 },
    /// The price is outside the range a book holds (`i64::MIN` has no negation, so it cannot
    /// be ordered on the ask side); negative prices are otherwise fine (spreads, futures).
    PriceRange { id: i64, price: i64 },
    /// Not a book delta or order command this operation understands.
    BadKind { kind: u8 },
    /// A tick size must be positive.
    BadTick { tick: i64 },
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
        Side::None => "none",
    }
}

impl fmt::Display for BookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BookError::UnknownOrder { id } => write!(f, "order {id}: unknown order id"),
            BookError::DuplicateOrder { id } => {
                write!(
                    f,
                    "order {id}: duplicate order id (an order with this id is resting)"
                )
            }
            BookError::Crossing {
                id,
                side,
                price,
                best,
            } => write!(
                f,
                "order {id}: a {} at {price} crosses the best {} {best}; it should have matched",
                side_name(side),
                if side == Side::Buy { "ask" } else { "bid" }
            ),
            BookError::BadQuantity { id, qty } => {
                write!(f, "order {id}: size {qty} is not positive")
            }
            BookError::SizeOverflow { id, qty } => write!(
                f,
                "order {id}: size {qty} would overflow the total size of its price level"
            ),
            BookError::OffTick { id, price, tick } => {
                write!(
                    f,
                    "order {id}: price {price} is not a multiple of the tick {tick}"
                )
            }
            BookError::QuoteOffTick { price, tick } => write!(
                f,
                "quote price {price} is not a multiple of the tick {tick} (the instrument's \
                 tick must divide every quoted price)"
            ),
            BookError::Overfill { id, qty, remaining } => write!(
                f,
                "order {id}: execution of {qty} exceeds the remaining size {remaining}"
            ),
            BookError::BadSide { id, side } => {
                write!(f, "order {id}: side {side} is not 1 (buy) or 2 (sell)")
            }
            BookError::BadKind { kind } => write!(
                f,
                "event kind {kind} is not a book delta (BOOK_ADD .. BOOK_CLEAR), quote or order \
                 command"
            ),
            BookError::BadTick { tick } => write!(f, "tick size {tick} is not positive"),
            BookError::PriceRange { id, price } => write!(
                f,
                "order {id}: price {price} is outside the book's range ({} ..= {})",
                MIN_PRICE,
                i64::MAX
            ),
        }
    }
}

impl std::error::Error for BookError {}

/// A hash for order ids that keeps sequential ids in neighbouring buckets (see `write_i64`);
/// SipHash would cost more than the rest of an add.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_i64(&mut self, n: i64) {
        // The table picks a bucket from the low bits and a tag from the top 7. Venues number
        // orders sequentially, so keeping the id's low bits as they are puts orders added
        // close together in neighbouring buckets (a cancel of a recent order finds a warm
        // cache line); the folded high bits keep ids with equal low bits apart, and the tag
        // comes from a multiplicative mix so that it tells neighbours apart.
        let x = n as u64;
        let low = x ^ (x >> 32) ^ (x >> 48);
        let tag = x.wrapping_mul(0x9E37_79B9_7F4A_7C15) & 0xFE00_0000_0000_0000;
        self.0 = (low & 0x01FF_FFFF_FFFF_FFFF) | tag;
    }
}

type IdMap = HashMap<i64, u32, BuildHasherDefault<IdHasher>>;

#[derive(Clone, Copy, Debug)]
struct Node {
    id: i64,
    price: i64,
    qty: i64,
    ts: i64,
    seq: u64,
    prev: u32,
    next: u32,
    /// Index of its level in the level arena.
    level: u32,
    side: Side,
    own: bool,
}

/// A price level, kept in an arena so that orders can point at it and a cancel needs no
/// search; each side's ladder lists its levels in price order.
#[derive(Clone, Copy, Debug)]
struct Level {
    price: i64,
    /// Total size: anonymous plus every order's.
    qty: i64,
    anon: i64,
    count: u32,
    head: u32,
    tail: u32,
}

/// One price level as the L2 view shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelView {
    pub price: i64,
    /// Total size at the price, anonymous size included.
    pub qty: i64,
    /// Number of known orders.
    pub count: u32,
    /// Size that belongs to no known order.
    pub anonymous: i64,
}

/// A resting order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderView {
    pub id: i64,
    pub side: Side,
    pub price: i64,
    pub qty: i64,
    pub ts: i64,
    /// Arrival number in the book: lower arrived earlier (a priority loss renumbers).
    pub seq: u64,
    pub own: bool,
}

/// An L3 limit order book with price-time priority. See the module documentation.
#[derive(Clone, Debug)]
pub struct OrderBook {
    tick: i64,
    instrument: u32,
    /// Each side's levels by sort key: the key is the price for bids and its negation for
    /// asks, so the best level has the largest key on both sides.
    bids: Ladder,
    asks: Ladder,
    levels: Vec<Level>,
    free_levels: Vec<u32>,
    nodes: Vec<Node>,
    free: Vec<u32>,
    index: IdMap,
    next_seq: u64,
    pub(crate) fees: Fees,
}

impl Default for OrderBook {
    fn default() -> Self {
        OrderBook {
            tick: 1,
            instrument: 0,
            bids: Ladder::default(),
            asks: Ladder::default(),
            levels: Vec::new(),
            free_levels: Vec::new(),
            nodes: Vec::new(),
            free: Vec::new(),
            index: IdMap::default(),
            next_seq: 1,
            fees: Fees::default(),
        }
    }
}

#[inline]
fn key_of(side: Side, price: i64) -> i64 {
    if side == Side::Buy {
        price
    } else {
        // `check_price` refuses i64::MIN, the one price without a negation.
        price.wrapping_neg()
    }
}

/// A new empty level in the arena (reusing a freed slot); returns its index.
#[inline]
fn new_level(levels: &mut Vec<Level>, free: &mut Vec<u32>, price: i64) -> u32 {
    let level = Level {
        price,
        qty: 0,
        anon: 0,
        count: 0,
        head: NIL,
        tail: NIL,
    };
    match free.pop() {
        Some(i) => {
            levels[i as usize] = level;
            i
        }
        None => {
            levels.push(level);
            (levels.len() - 1) as u32
        }
    }
}

/// Links node `idx` at the tail of `level` (arena index `li`).
#[inline]
fn link_at(nodes: &mut [Node], level: &mut Level, idx: u32, li: u32) {
    let qty = nodes[idx as usize].qty;
    let tail = level.tail;
    level.tail = idx;
    if tail == NIL {
        level.head = idx;
    }
    level.qty += qty;
    level.count += 1;
    if tail != NIL {
        nodes[tail as usize].next = idx;
    }
    let node = &mut nodes[idx as usize];
    node.prev = tail;
    node.level = li;
}

#[inline]
fn check_side(id: i64, side: Side) -> Result<(), BookError> {
    if side == Side::None {
        Err(BookError::BadSide { id, side: 0 })
    } else {
        Ok(())
    }
}

impl OrderBook {
    /// An empty book whose prices must be multiples of `tick` (fixed point; 1 accepts any).
    pub fn new(tick: i64) -> Result<OrderBook, BookError> {
        if tick <= 0 {
            return Err(BookError::BadTick { tick });
        }
        Ok(OrderBook {
            tick,
            ..OrderBook::default()
        })
    }

    /// Sets the instrument id stamped on the records this book produces.
    pub fn with_instrument(mut self, instrument: u32) -> OrderBook {
        self.instrument = instrument;
        self
    }

    /// Reserves room for `orders` resting orders, so that a replay does not grow the tables
    /// while it runs. Fails (leaving the book as it was) when that memory cannot be had; the
    /// limit is the machine's memory (about 64 bytes per order), and a capacity beyond
    /// `u32::MAX` orders is refused outright (orders are numbered by `u32` in the arena).
    pub fn reserve(&mut self, orders: usize) -> Result<(), std::collections::TryReserveError> {
        if orders > NIL as usize {
            // Provoke the allocator's own capacity-overflow error rather than inventing one.
            return Vec::<Node>::new().try_reserve(usize::MAX);
        }
        self.index
            .try_reserve(orders.saturating_sub(self.index.len()))?;
        self.nodes
            .try_reserve(orders.saturating_sub(self.nodes.len()))
    }

    /// Sets the fee model used by [`OrderBook::submit`].
    pub fn with_fees(mut self, fees: Fees) -> OrderBook {
        self.fees = fees;
        self
    }

    pub fn tick(&self) -> i64 {
        self.tick
    }

    pub fn instrument(&self) -> u32 {
        self.instrument
    }

    /// Number of resting (known) orders.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when neither side has any size.
    pub fn is_empty(&self) -> bool {
        self.bids.is_empty() && self.asks.is_empty()
    }

    #[inline]
    fn ladder(&self, side: Side) -> &Ladder {
        if side == Side::Buy {
            &self.bids
        } else {
            &self.asks
        }
    }

    #[inline]
    fn ladder_mut(&mut self, side: Side) -> &mut Ladder {
        if side == Side::Buy {
            &mut self.bids
        } else {
            &mut self.asks
        }
    }

    /// The levels of a side, best first.
    #[inline]
    fn side_levels(&self, side: Side) -> impl Iterator<Item = &Level> + '_ {
        let ladder = (side != Side::None).then(|| self.ladder(side));
        ladder
            .into_iter()
            .flat_map(Ladder::best_first)
            .map(|(_, i)| &self.levels[i as usize])
    }

    /// The best level of a side.
    #[inline]
    fn top(&self, side: Side) -> Option<&Level> {
        self.ladder(side).best().map(|i| &self.levels[i as usize])
    }

    /// The arena index of the level at a price, if it exists.
    #[inline]
    fn level_index(&self, side: Side, price: i64) -> Option<u32> {
        if side == Side::None {
            return None;
        }
        self.ladder(side).get(key_of(side, price))
    }

    /// The arena index of the level at a price, created empty if needed.
    #[inline]
    fn level_or_insert(&mut self, side: Side, price: i64) -> u32 {
        let key = key_of(side, price);
        if let Some(li) = self.ladder(side).get(key) {
            return li;
        }
        let li = new_level(&mut self.levels, &mut self.free_levels, price);
        self.ladder_mut(side).insert(key, li);
        li
    }

    /// Removes a level that holds nothing any more.
    #[inline]
    fn drop_if_empty(&mut self, side: Side, li: u32) {
        let level = &self.levels[li as usize];
        if level.qty != 0 || level.count != 0 {
            return;
        }
        let key = key_of(side, level.price);
        self.ladder_mut(side).remove(key);
        self.free_levels.push(li);
    }

    #[inline]
    fn check_price(&self, id: i64, price: i64) -> Result<(), BookError> {
        if price < MIN_PRICE {
            return Err(BookError::PriceRange { id, price });
        }
        if price % self.tick != 0 {
            return Err(BookError::OffTick {
                id,
                price,
                tick: self.tick,
            });
        }
        Ok(())
    }

    /// Whether level `li` can take `qty` more without overflowing its total.
    #[inline]
    fn check_room(&self, id: i64, li: u32, qty: i64) -> Result<(), BookError> {
        match self.levels[li as usize].qty.checked_add(qty) {
            Some(_) => Ok(()),
            None => Err(BookError::SizeOverflow { id, qty }),
        }
    }

    /// The error a resting order at `price` on `side` would cause by crossing, if any.
    #[inline]
    fn check_cross(&self, id: i64, side: Side, price: i64) -> Result<(), BookError> {
        let crosses = match side {
            Side::Buy => self.top(Side::Sell).filter(|a| price >= a.price),
            _ => self.top(Side::Buy).filter(|b| price <= b.price),
        };
        match crosses {
            Some(best) => Err(BookError::Crossing {
                id,
                side,
                price,
                best: best.price,
            }),
            None => Ok(()),
        }
    }

    /// Adds a resting order at the back of its level's queue.
    pub fn add(
        &mut self,
        id: i64,
        side: Side,
        price: i64,
        qty: i64,
        ts: i64,
    ) -> Result<(), BookError> {
        self.add_order(id, side, price, qty, ts, false)
    }

    pub(crate) fn add_order(
        &mut self,
        id: i64,
        side: Side,
        price: i64,
        qty: i64,
        ts: i64,
        own: bool,
    ) -> Result<(), BookError> {
        check_side(id, side)?;
        if qty <= 0 {
            return Err(BookError::BadQuantity { id, qty });
        }
        self.check_cross(id, side, price)?;
        let key = key_of(side, price);
        let found = self.ladder(side).get(key);
        match found {
            // An existing level's price passed the tick check already.
            Some(li) => self.check_room(id, li, qty)?,
            None => self.check_price(id, price)?,
        }
        // Every check is done before the first change: the book stays as it was on error.
        let slot = match self.index.entry(id) {
            std::collections::hash_map::Entry::Occupied(_) => {
                return Err(BookError::DuplicateOrder { id })
            }
            std::collections::hash_map::Entry::Vacant(v) => v,
        };
        let ladder = if side == Side::Buy {
            &mut self.bids
        } else {
            &mut self.asks
        };
        let li = match found {
            Some(li) => li,
            None => {
                let li = new_level(&mut self.levels, &mut self.free_levels, price);
                ladder.insert(key, li);
                li
            }
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        let node = Node {
            id,
            price,
            qty,
            ts,
            seq,
            prev: NIL,
            next: NIL,
            level: li,
            side,
            own,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        slot.insert(idx);
        link_at(&mut self.nodes, &mut self.levels[li as usize], idx, li);
        Ok(())
    }

    /// Links node `idx` at the tail of the level at its price, creating the level.
    #[inline]
    fn link_back(&mut self, idx: u32) {
        let Node { side, price, .. } = self.nodes[idx as usize];
        let li = self.level_or_insert(side, price);
        link_at(&mut self.nodes, &mut self.levels[li as usize], idx, li);
    }

    /// Unlinks node `idx` from its level (removing an emptied level); the node keeps its id.
    #[inline]
    fn unlink(&mut self, idx: u32) {
        let Node {
            side,
            qty,
            prev,
            next,
            level: li,
            ..
        } = self.nodes[idx as usize];
        if prev != NIL {
            self.nodes[prev as usize].next = next;
        }
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        }
        let level = &mut self.levels[li as usize];
        if level.head == idx {
            level.head = next;
        }
        if level.tail == idx {
            level.tail = prev;
        }
        level.qty -= qty;
        level.count -= 1;
        self.drop_if_empty(side, li);
    }

    fn remove_node(&mut self, id: i64, idx: u32) {
        self.unlink(idx);
        self.index.remove(&id);
        self.free.push(idx);
    }

    #[inline]
    fn lookup(&self, id: i64) -> Result<u32, BookError> {
        self.index
            .get(&id)
            .copied()
            .ok_or(BookError::UnknownOrder { id })
    }

    /// Takes `qty` off a resting order, keeping its priority; removes it when `qty` reaches
    /// its size. Returns the size taken off.
    pub fn reduce(&mut self, id: i64, qty: i64) -> Result<i64, BookError> {
        if qty <= 0 {
            return Err(BookError::BadQuantity { id, qty });
        }
        let idx = self.lookup(id)?;
        let node = self.nodes[idx as usize];
        if qty >= node.qty {
            self.remove_node(id, idx);
            return Ok(node.qty);
        }
        self.shrink(idx, qty);
        Ok(qty)
    }

    #[inline]
    fn shrink(&mut self, idx: u32, qty: i64) {
        let node = &mut self.nodes[idx as usize];
        node.qty -= qty;
        let li = node.level;
        self.levels[li as usize].qty -= qty;
    }

    /// Removes a resting order; returns the size it had.
    pub fn cancel(&mut self, id: i64) -> Result<i64, BookError> {
        let idx = self.lookup(id)?;
        let qty = self.nodes[idx as usize].qty;
        self.remove_node(id, idx);
        Ok(qty)
    }

    /// Executes `qty` of a resting order (a trade against it); removes it when filled.
    /// Returns the size left.
    pub fn execute(&mut self, id: i64, qty: i64) -> Result<i64, BookError> {
        if qty <= 0 {
            return Err(BookError::BadQuantity { id, qty });
        }
        let idx = self.lookup(id)?;
        let remaining = self.nodes[idx as usize].qty;
        if qty > remaining {
            return Err(BookError::Overfill { id, qty, remaining });
        }
        if qty == remaining {
            self.remove_node(id, idx);
        } else {
            self.shrink(idx, qty);
        }
        Ok(remaining - qty)
    }

    /// Replaces a resting order's price and size. A smaller size at the same price keeps the
    /// order's place in the queue; a new price or a larger size sends it to the back.
    pub fn modify(&mut self, id: i64, price: i64, qty: i64, ts: i64) -> Result<(), BookError> {
        if qty <= 0 {
            return Err(BookError::BadQuantity { id, qty });
        }
        self.check_price(id, price)?;
        let idx = self.lookup(id)?;
        let node = self.nodes[idx as usize];
        if price == node.price {
            if qty <= node.qty {
                if qty < node.qty {
                    self.shrink(idx, node.qty - qty);
                }
                return Ok(());
            }
        } else {
            self.check_cross(id, node.side, price)?;
        }
        if let Some(li) = self.level_index(node.side, price) {
            let already = if li == node.level { node.qty } else { 0 };
            self.check_room(id, li, qty - already)?;
        }
        self.unlink(idx);
        let seq = self.next_seq;
        self.next_seq += 1;
        let n = &mut self.nodes[idx as usize];
        n.price = price;
        n.qty = qty;
        n.ts = ts;
        n.seq = seq;
        n.prev = NIL;
        n.next = NIL;
        self.link_back(idx);
        Ok(())
    }

    /// Adds size that belongs to no known order at a price (seeding from a snapshot). It
    /// stands ahead of every known order at that price.
    pub fn add_anonymous(&mut self, side: Side, price: i64, qty: i64) -> Result<(), BookError> {
        check_side(0, side)?;
        if qty <= 0 {
            return Err(BookError::BadQuantity { id: 0, qty });
        }
        self.check_price(0, price)?;
        self.check_cross(0, side, price)?;
        if let Some(li) = self.level_index(side, price) {
            self.check_room(0, li, qty)?;
        }
        let li = self.level_or_insert(side, price);
        let level = &mut self.levels[li as usize];
        level.anon += qty;
        level.qty += qty;
        Ok(())
    }

    /// Takes `qty` of anonymous size off the level at `price` (a cancel or an execution of an
    /// order the book never saw). `id` only names the order in the error.
    pub fn reduce_anonymous(
        &mut self,
        id: i64,
        side: Side,
        price: i64,
        qty: i64,
    ) -> Result<(), BookError> {
        check_side(id, side)?;
        if qty <= 0 {
            return Err(BookError::BadQuantity { id, qty });
        }
        let li = match self.level_index(side, price) {
            Some(li) if self.levels[li as usize].anon >= qty => li,
            _ => return Err(BookError::UnknownOrder { id }),
        };
        let level = &mut self.levels[li as usize];
        level.anon -= qty;
        level.qty -= qty;
        self.drop_if_empty(side, li);
        Ok(())
    }

    /// Empties one side (`Side::None`: both).
    pub fn clear(&mut self, side: Side) {
        if side == Side::None {
            self.bids.clear();
            self.asks.clear();
            self.levels.clear();
            self.free_levels.clear();
            self.nodes.clear();
            self.free.clear();
            self.index.clear();
            return;
        }
        let ladder = std::mem::take(self.ladder_mut(side));
        for (_, li) in ladder.best_first() {
            let mut i = self.levels[li as usize].head;
            while i != NIL {
                let node = self.nodes[i as usize];
                self.index.remove(&node.id);
                self.free.push(i);
                i = node.next;
            }
            self.free_levels.push(li);
        }
    }

    /// Applies one book delta record. `BOOK_CANCEL` takes `qty` off (all of it when `qty` is
    /// at least the order's size, or zero); `BOOK_CANCEL` and `BOOK_EXECUTE` of an order id
    /// the book does not know reduce the anonymous size at the record's side and price.
    /// `BOOK_ADD` with order id 0 adds anonymous size.
    pub fn apply(&mut self, ev: &Event) -> Result<(), BookError> {
        let id = ev.order_id;
        match Kind::from_code(ev.kind) {
            Some(Kind::BookAdd) => {
                let side =
                    Side::from_code(ev.side).ok_or(BookError::BadSide { id, side: ev.side })?;
                if id == 0 {
                    self.add_anonymous(side, ev.price, ev.qty)
                } else {
                    self.add_order(
                        id,
                        side,
                        ev.price,
                        ev.qty,
                        ev.ts,
                        ev.flags & flags::OWN != 0,
                    )
                }
            }
            Some(Kind::BookCancel) => {
                if ev.qty < 0 {
                    return Err(BookError::BadQuantity { id, qty: ev.qty });
                }
                match self.index.get(&id) {
                    Some(&idx) => {
                        let size = self.nodes[idx as usize].qty;
                        if ev.qty == 0 || ev.qty >= size {
                            self.index.remove(&id);
                            self.unlink(idx);
                            self.free.push(idx);
                        } else {
                            self.shrink(idx, ev.qty);
                        }
                        Ok(())
                    }
                    None => self.reduce_anonymous(id, self.side_of(ev)?, ev.price, ev.qty),
                }
            }
            Some(Kind::BookExecute) => {
                if self.index.contains_key(&id) {
                    self.execute(id, ev.qty).map(|_| ())
                } else {
                    self.reduce_anonymous(id, self.side_of(ev)?, ev.price, ev.qty)
                }
            }
            Some(Kind::BookModify) => self.modify(id, ev.price, ev.qty, ev.ts),
            Some(Kind::BookClear) => {
                let side =
                    Side::from_code(ev.side).ok_or(BookError::BadSide { id, side: ev.side })?;
                self.clear(side);
                Ok(())
            }
            _ => Err(BookError::BadKind { kind: ev.kind }),
        }
    }

    fn side_of(&self, ev: &Event) -> Result<Side, BookError> {
        match Side::from_code(ev.side) {
            Some(s @ (Side::Buy | Side::Sell)) => Ok(s),
            _ => Err(BookError::UnknownOrder { id: ev.order_id }),
        }
    }

    /// Applies records in order; stops at the first one refused and returns its index with
    /// the error (the records before it stay applied, that one does not).
    pub fn apply_all(&mut self, events: &[Event]) -> Result<usize, (usize, BookError)> {
        for (i, ev) in events.iter().enumerate() {
            self.apply(ev).map_err(|e| (i, e))?;
        }
        Ok(events.len())
    }

    // -- views ------------------------------------------------------------------------------

    #[inline]
    fn view(level: &Level) -> LevelView {
        LevelView {
            price: level.price,
            qty: level.qty,
            count: level.count,
            anonymous: level.anon,
        }
    }

    /// Best bid (price, size).
    #[inline]
    pub fn best_bid(&self) -> Option<(i64, i64)> {
        self.top(Side::Buy).map(|l| (l.price, l.qty))
    }

    /// Best ask (price, size).
    #[inline]
    pub fn best_ask(&self) -> Option<(i64, i64)> {
        self.top(Side::Sell).map(|l| (l.price, l.qty))
    }

    /// Best bid and best ask prices.
    #[inline]
    pub fn bbo(&self) -> (Option<i64>, Option<i64>) {
        (
            self.top(Side::Buy).map(|l| l.price),
            self.top(Side::Sell).map(|l| l.price),
        )
    }

    /// True when the best bid is at or above the best ask (never, for this book).
    pub fn is_crossed(&self) -> bool {
        matches!(self.bbo(), (Some(b), Some(a)) if b >= a)
    }

    /// The best `n` levels of one side, best first.
    pub fn depth(&self, side: Side, n: usize) -> impl Iterator<Item = LevelView> + '_ {
        self.side_levels(side).take(n).map(Self::view)
    }

    /// Number of price levels on one side.
    pub fn level_count(&self, side: Side) -> usize {
        if side == Side::None {
            0
        } else {
            self.ladder(side).len()
        }
    }

    /// The level at a price, if it has size.
    pub fn level(&self, side: Side, price: i64) -> Option<LevelView> {
        self.level_index(side, price)
            .map(|li| Self::view(&self.levels[li as usize]))
    }

    /// Total size at a price (0 when there is none).
    pub fn size_at(&self, side: Side, price: i64) -> i64 {
        self.level(side, price).map_or(0, |l| l.qty)
    }

    /// The known orders at a price in time order, as (id, size); anonymous size is ahead of
    /// them (see [`LevelView::anonymous`]).
    pub fn queue(&self, side: Side, price: i64) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        if let Some(li) = self.level_index(side, price) {
            let mut i = self.levels[li as usize].head;
            while i != NIL {
                let n = &self.nodes[i as usize];
                out.push((n.id, n.qty));
                i = n.next;
            }
        }
        out
    }

    /// A resting order.
    pub fn order(&self, id: i64) -> Option<OrderView> {
        self.index.get(&id).map(|&i| {
            let n = &self.nodes[i as usize];
            OrderView {
                id: n.id,
                side: n.side,
                price: n.price,
                qty: n.qty,
                ts: n.ts,
                seq: n.seq,
                own: n.own,
            }
        })
    }

    /// The arrival number the next order will get (every resting order has a smaller one).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The whole book as `BOOK_ADD` records flagged `SNAPSHOT`: bids best first, then asks,
    /// each level's anonymous size first (order id 0) and then its orders in time order.
    /// Applying them to an empty book (see [`OrderBook::restore`]) rebuilds this book.
    pub fn snapshot(&self) -> Vec<Event> {
        let mut out = Vec::with_capacity(self.len() + self.bids.len() + self.asks.len());
        for side in [Side::Buy, Side::Sell] {
            for level in self.side_levels(side) {
                let base = Event {
                    kind: Kind::BookAdd as u8,
                    side: side as u8,
                    price: level.price,
                    instrument: self.instrument,
                    flags: flags::SNAPSHOT,
                    ..Event::default()
                };
                if level.anon > 0 {
                    out.push(Event {
                        qty: level.anon,
                        ..base
                    });
                }
                let mut i = level.head;
                while i != NIL {
                    let n = &self.nodes[i as usize];
                    out.push(Event {
                        order_id: n.id,
                        qty: n.qty,
                        ts: n.ts,
                        flags: base.flags | if n.own { flags::OWN } else { 0 },
                        ..base
                    });
                    i = n.next;
                }
            }
        }
        out
    }

    /// Replaces the content with a snapshot's. On error the book is left as it was.
    pub fn restore(&mut self, snapshot: &[Event]) -> Result<(), (usize, BookError)> {
        let mut fresh = OrderBook {
            tick: self.tick,
            instrument: self.instrument,
            fees: self.fees,
            ..OrderBook::default()
        };
        // Room for every order at once; if the memory is not there, the tables grow as usual
        // and fail (or not) on their own.
        let _ = fresh.reserve(snapshot.len());
        fresh.apply_all(snapshot)?;
        *self = fresh;
        Ok(())
    }

    /// Checks the internal invariants (level size is the sum of its orders plus anonymous
    /// size, links agree, levels sorted, book not crossed, index and arenas match). For
    /// tests.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut seen = 0usize;
        for side in [Side::Buy, Side::Sell] {
            let ladder = self.ladder(side);
            ladder
                .check()
                .map_err(|e| format!("{side:?} ladder: {e}"))?;
            for (key, li) in ladder.best_first() {
                let level = &self.levels[li as usize];
                if key != key_of(side, level.price) {
                    return Err(format!("ladder key of {} is wrong", level.price));
                }
                let (mut sum, mut count, mut prev, mut last_seq) = (level.anon, 0u32, NIL, 0u64);
                if level.anon < 0 {
                    return Err(format!("negative anonymous size at {}", level.price));
                }
                let mut i = level.head;
                while i != NIL {
                    let n = &self.nodes[i as usize];
                    if n.prev != prev
                        || n.price != level.price
                        || n.side != side
                        || n.qty <= 0
                        || n.level != li
                    {
                        return Err(format!("bad node {} at {}", n.id, level.price));
                    }
                    if n.seq <= last_seq {
                        return Err(format!("FIFO broken at {} by order {}", level.price, n.id));
                    }
                    if self.index.get(&n.id) != Some(&i) {
                        return Err(format!("index does not point at order {}", n.id));
                    }
                    last_seq = n.seq;
                    sum += n.qty;
                    count += 1;
                    prev = i;
                    i = n.next;
                }
                if level.tail != prev || sum != level.qty || count != level.count {
                    return Err(format!("level {} size/count/tail disagree", level.price));
                }
                if level.qty <= 0 {
                    return Err(format!("empty level {} kept", level.price));
                }
                seen += count as usize;
            }
        }
        if seen != self.index.len() {
            return Err("index holds orders that are in no level".into());
        }
        if self.bids.len() + self.asks.len() + self.free_levels.len() != self.levels.len() {
            return Err("level arena leaks".into());
        }
        if self.is_crossed() {
            return Err("book crossed".into());
        }
        // The best level must be the best by price itself, not only by the ladder's key.
        for side in [Side::Buy, Side::Sell] {
            let prices = self.side_levels(side).map(|l| l.price);
            let best = if side == Side::Buy {
                prices.max()
            } else {
                prices.min()
            };
            if best != self.top(side).map(|l| l.price) {
                return Err(format!(
                    "the best {side:?} level is {:?}, but {best:?} is better",
                    self.top(side).map(|l| l.price)
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book() -> OrderBook {
        OrderBook::new(1).unwrap()
    }

    #[test]
    fn add_and_views() {
        let mut b = book();
        b.add(1, Side::Buy, 100, 5, 0).unwrap();
        b.add(2, Side::Buy, 100, 7, 0).unwrap();
        b.add(3, Side::Buy, 99, 1, 0).unwrap();
        b.add(4, Side::Sell, 102, 2, 0).unwrap();
        assert_eq!(b.best_bid(), Some((100, 12)));
        assert_eq!(b.best_ask(), Some((102, 2)));
        assert_eq!(b.bbo(), (Some(100), Some(102)));
        assert_eq!(b.queue(Side::Buy, 100), vec![(1, 5), (2, 7)]);
        let d: Vec<_> = b
            .depth(Side::Buy, 5)
            .map(|l| (l.price, l.qty, l.count))
            .collect();
        assert_eq!(d, vec![(100, 12, 2), (99, 1, 1)]);
        assert_eq!(b.len(), 4);
        b.check_invariants().unwrap();
    }

    #[test]
    fn errors_leave_the_book_unchanged() {
        let mut b = OrderBook::new(10).unwrap();
        b.add(1, Side::Buy, 100, 5, 0).unwrap();
        b.add(2, Side::Sell, 110, 5, 0).unwrap();
        let before = b.snapshot();
        assert_eq!(
            b.add(1, Side::Buy, 90, 1, 0),
            Err(BookError::DuplicateOrder { id: 1 })
        );
        assert!(matches!(
            b.add(3, Side::Buy, 110, 1, 0),
            Err(BookError::Crossing { best: 110, .. })
        ));
        assert!(matches!(
            b.add(3, Side::Buy, 95, 1, 0),
            Err(BookError::OffTick { .. })
        ));
        assert!(matches!(
            b.add(3, Side::Buy, 90, 0, 0),
            Err(BookError::BadQuantity { .. })
        ));
        assert!(matches!(
            b.add(3, Side::None, 90, 1, 0),
            Err(BookError::BadSide { .. })
        ));
        assert_eq!(b.cancel(9), Err(BookError::UnknownOrder { id: 9 }));
        assert!(matches!(b.execute(1, 6), Err(BookError::Overfill { .. })));
        assert!(matches!(
            b.modify(1, 120, 5, 0),
            Err(BookError::Crossing { .. })
        ));
        assert_eq!(b.snapshot(), before);
        assert!(OrderBook::new(0).is_err());
        b.add(7, Side::Buy, 50, i64::MAX - 10, 0).unwrap();
        let before = b.snapshot();
        assert_eq!(
            b.add(8, Side::Buy, 50, 11, 0),
            Err(BookError::SizeOverflow { id: 8, qty: 11 })
        );
        assert!(b.add_anonymous(Side::Buy, 50, 11).is_err());
        b.add(9, Side::Buy, 60, 11, 0).unwrap();
        assert!(b.modify(9, 50, 11, 0).is_err());
        b.cancel(9).unwrap();
        assert_eq!(b.snapshot(), before);
        let msg = BookError::Overfill {
            id: 1,
            qty: 6,
            remaining: 5,
        }
        .to_string();
        assert!(msg.contains("order 1") && msg.contains("exceeds"));
    }

    #[test]
    fn reduce_keeps_priority_and_modify_loses_it() {
        let mut b = book();
        b.add(1, Side::Sell, 100, 5, 0).unwrap();
        b.add(2, Side::Sell, 100, 5, 0).unwrap();
        b.reduce(1, 2).unwrap();
        assert_eq!(b.queue(Side::Sell, 100), vec![(1, 3), (2, 5)]);
        b.modify(1, 100, 2, 0).unwrap();
        assert_eq!(b.queue(Side::Sell, 100), vec![(1, 2), (2, 5)]);
        b.modify(1, 100, 4, 0).unwrap();
        assert_eq!(b.queue(Side::Sell, 100), vec![(2, 5), (1, 4)]);
        b.modify(2, 101, 5, 0).unwrap();
        assert_eq!(b.queue(Side::Sell, 100), vec![(1, 4)]);
        assert_eq!(b.size_at(Side::Sell, 101), 5);
        assert_eq!(b.reduce(1, 10).unwrap(), 4);
        assert_eq!(b.level(Side::Sell, 100), None);
        b.check_invariants().unwrap();
    }

    #[test]
    fn execute_and_anonymous_size() {
        let mut b = book();
        b.add_anonymous(Side::Buy, 100, 10).unwrap();
        b.add(1, Side::Buy, 100, 5, 0).unwrap();
        assert_eq!(b.size_at(Side::Buy, 100), 15);
        assert_eq!(b.execute(1, 2).unwrap(), 3);
        let ev = Event {
            kind: Kind::BookExecute as u8,
            order_id: 77,
            side: Side::Buy as u8,
            price: 100,
            qty: 4,
            ..Event::default()
        };
        b.apply(&ev).unwrap();
        assert_eq!(b.level(Side::Buy, 100).unwrap().anonymous, 6);
        let too_much = Event { qty: 7, ..ev };
        assert_eq!(b.apply(&too_much), Err(BookError::UnknownOrder { id: 77 }));
        b.check_invariants().unwrap();
        let snap = b.snapshot();
        let mut c = book();
        c.restore(&snap).unwrap();
        assert_eq!(c.snapshot(), snap);
        b.clear(Side::Buy);
        assert!(b.is_empty());
        assert_eq!(b.len(), 0);
    }

    #[test]
    fn prices_without_a_negation_are_refused_and_negative_prices_order() {
        let mut b = OrderBook::new(1).unwrap();
        assert_eq!(
            b.add(1, Side::Sell, i64::MIN, 5, 0),
            Err(BookError::PriceRange {
                id: 1,
                price: i64::MIN
            })
        );
        b.add(2, Side::Sell, 3, 5, 0).unwrap();
        b.add(3, Side::Sell, -5, 5, 0).unwrap();
        b.add(4, Side::Buy, -7, 5, 0).unwrap();
        b.add(5, Side::Buy, MIN_PRICE, 5, 0).unwrap();
        assert_eq!(b.bbo(), (Some(-7), Some(-5)));
        b.check_invariants().unwrap();
    }

    #[test]
    fn invariants_catch_a_best_level_that_is_not_the_best() {
        let mut b = OrderBook::new(1).unwrap();
        b.add(1, Side::Sell, 100, 5, 0).unwrap();
        // A level at i64::MIN behind `check_price`'s back: its key wraps to the worst place,
        // so the ladder's best (100) is not the lowest ask any more.
        let li = b.level_or_insert(Side::Sell, i64::MIN);
        b.levels[li as usize].anon = 5;
        b.levels[li as usize].qty = 5;
        let err = b.check_invariants().unwrap_err();
        assert!(err.contains("is better"), "{err}");
    }

    #[test]
    fn clear_one_side_frees_its_orders() {
        let mut b = book();
        b.add(1, Side::Buy, 99, 1, 0).unwrap();
        b.add(2, Side::Sell, 101, 1, 0).unwrap();
        b.clear(Side::Sell);
        assert_eq!(b.len(), 1);
        b.add(2, Side::Sell, 102, 1, 0).unwrap();
        b.check_invariants().unwrap();
    }
}
