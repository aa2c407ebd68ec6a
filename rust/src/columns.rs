//! Events as eleven columns (Arrow's layout) and as 64-byte rows (the ring's and numpy's), and
//! the transposition between the two.
//!
//! The transposition is the whole cost of moving an Arrow batch through the queue, so it is
//! written for the vectorizer: a row is viewed as eight little-endian `u64` lanes (seven
//! 64-bit fields, then `instrument | kind << 32 | side << 40 | flags << 48`), and one loop
//! writes every lane of a row, which LLVM turns into wide loads, shuffles and wide stores (an
//! "interleaved access group") when AVX2 is there. A loop per field stays scalar and is
//! slower.

use multiversion::multiversion;

use crate::event::Event;

// The lane view of a row below is the record's byte layout (`FIELDS`, all little-endian) only
// on a little-endian machine; numpy's `EVENT_DTYPE` makes the same assumption.
const _: () = assert!(cfg!(target_endian = "little"));

/// The eleven columns of a batch of events, read-only.
#[derive(Clone, Copy)]
pub struct Columns<'a> {
    pub seq: &'a [u64],
    pub ts: &'a [i64],
    pub order_id: &'a [i64],
    pub price: &'a [i64],
    pub qty: &'a [i64],
    pub aux: &'a [i64],
    pub payload: &'a [i64],
    pub instrument: &'a [u32],
    pub kind: &'a [u8],
    pub side: &'a [u8],
    pub flags: &'a [u16],
}

/// The eleven columns of a batch of events, to be written.
pub struct ColumnsMut<'a> {
    pub seq: &'a mut [u64],
    pub ts: &'a mut [i64],
    pub order_id: &'a mut [i64],
    pub price: &'a mut [i64],
    pub qty: &'a mut [i64],
    pub aux: &'a mut [i64],
    pub payload: &'a mut [i64],
    pub instrument: &'a mut [u32],
    pub kind: &'a mut [u8],
    pub side: &'a mut [u8],
    pub flags: &'a mut [u16],
}

/// The columns do not all have the same length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LengthMismatch {
    pub seq: usize,
    pub others: [usize; 10],
}

impl std::fmt::Display for LengthMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "event columns must all have the same length; got seq={} and others={:?}",
            self.seq, self.others
        )
    }
}

impl std::error::Error for LengthMismatch {}

/// The lengths of the eleven columns, `seq` first.
macro_rules! lengths {
    ($c:expr) => {
        [
            $c.seq.len(),
            $c.ts.len(),
            $c.order_id.len(),
            $c.price.len(),
            $c.qty.len(),
            $c.aux.len(),
            $c.payload.len(),
            $c.instrument.len(),
            $c.kind.len(),
            $c.side.len(),
            $c.flags.len(),
        ]
    };
}

/// The `u64` lanes of a row (see the module documentation).
fn lanes(rows: &[Event]) -> &[[u64; 8]] {
    bytemuck::cast_slice(rows)
}

fn lanes_mut(rows: &mut [Event]) -> &mut [[u64; 8]] {
    bytemuck::cast_slice_mut(rows)
}

fn pack_tail(instrument: u32, kind: u8, side: u8, flags: u16) -> u64 {
    u64::from(instrument) | u64::from(kind) << 32 | u64::from(side) << 40 | u64::from(flags) << 48
}

impl<'a> Columns<'a> {
    /// The common length of the columns.
    pub fn len(&self) -> Result<usize, LengthMismatch> {
        let [n, others @ ..] = lengths!(self);
        if others.iter().any(|&l| l != n) {
            return Err(LengthMismatch { seq: n, others });
        }
        Ok(n)
    }

    /// Whether there are no rows (by the `seq` column).
    pub fn is_empty(&self) -> bool {
        self.seq.is_empty()
    }

    /// Row `i` as an event.
    pub fn get(&self, i: usize) -> Event {
        Event {
            seq: self.seq[i],
            ts: self.ts[i],
            order_id: self.order_id[i],
            price: self.price[i],
            qty: self.qty[i],
            aux: self.aux[i],
            payload: self.payload[i],
            instrument: self.instrument[i],
            kind: self.kind[i],
            side: self.side[i],
            flags: self.flags[i],
        }
    }

    /// Writes rows `start..start + out.len()` into `out`. Panics when the columns are shorter.
    pub fn to_rows(&self, start: usize, out: &mut [Event]) {
        to_rows(self, start, lanes_mut(out));
    }
}

/// `Columns::to_rows`, compiled twice: for the base x86-64 and with AVX2, chosen at run time
/// (by `multiversion`, which keeps the feature detection and the `unsafe` call behind a safe
/// function). With AVX2 the loop becomes 4-row shuffles and runs about twice as fast; SSE2's
/// 2-row version is no faster than the scalar one.
#[multiversion(targets("x86_64+avx2"))]
fn to_rows(cols: &Columns<'_>, start: usize, out: &mut [[u64; 8]]) {
    // A piece of rows that stays in L1 while it is written twice: once with the seven 64-bit
    // fields, once with the packed tail. Two narrow passes keep every pointer in a register
    // (one pass over eleven columns spills them) and the first vectorizes.
    const PIECE: usize = 256;
    for (p, rows) in out.chunks_mut(PIECE).enumerate() {
        let at = start + p * PIECE;
        let end = at + rows.len();
        let (seq, ts, order_id, price) = (
            &cols.seq[at..end],
            &cols.ts[at..end],
            &cols.order_id[at..end],
            &cols.price[at..end],
        );
        let (qty, aux, payload) = (
            &cols.qty[at..end],
            &cols.aux[at..end],
            &cols.payload[at..end],
        );
        for (i, row) in rows.iter_mut().enumerate() {
            row[0] = seq[i];
            row[1] = ts[i] as u64;
            row[2] = order_id[i] as u64;
            row[3] = price[i] as u64;
            row[4] = qty[i] as u64;
            row[5] = aux[i] as u64;
            row[6] = payload[i] as u64;
        }
        let (instrument, kind, side, flags) = (
            &cols.instrument[at..end],
            &cols.kind[at..end],
            &cols.side[at..end],
            &cols.flags[at..end],
        );
        for (i, row) in rows.iter_mut().enumerate() {
            row[7] = pack_tail(instrument[i], kind[i], side[i], flags[i]);
        }
    }
}

impl ColumnsMut<'_> {
    /// The number of rows every column has room for (the shortest column).
    pub fn capacity(&self) -> usize {
        lengths!(self).into_iter().min().unwrap_or(0)
    }

    /// Writes `rows` into rows `start..start + rows.len()` of the columns. Panics when a
    /// column is shorter.
    pub fn set_rows(&mut self, start: usize, rows: &[Event]) {
        set_rows(self, start, lanes(rows));
    }
}

/// `ColumnsMut::set_rows`, in two passes and two builds like `to_rows`.
#[multiversion(targets("x86_64+avx2"))]
fn set_rows(cols: &mut ColumnsMut<'_>, start: usize, rows: &[[u64; 8]]) {
    const PIECE: usize = 256;
    for (p, rows) in rows.chunks(PIECE).enumerate() {
        let at = start + p * PIECE;
        let end = at + rows.len();
        let (seq, ts, order_id, price) = (
            &mut cols.seq[at..end],
            &mut cols.ts[at..end],
            &mut cols.order_id[at..end],
            &mut cols.price[at..end],
        );
        let (qty, aux, payload) = (
            &mut cols.qty[at..end],
            &mut cols.aux[at..end],
            &mut cols.payload[at..end],
        );
        for (i, row) in rows.iter().enumerate() {
            seq[i] = row[0];
            ts[i] = row[1] as i64;
            order_id[i] = row[2] as i64;
            price[i] = row[3] as i64;
            qty[i] = row[4] as i64;
            aux[i] = row[5] as i64;
            payload[i] = row[6] as i64;
        }
        let (instrument, kind, side, flags) = (
            &mut cols.instrument[at..end],
            &mut cols.kind[at..end],
            &mut cols.side[at..end],
            &mut cols.flags[at..end],
        );
        for (i, row) in rows.iter().enumerate() {
            instrument[i] = row[7] as u32;
            kind[i] = (row[7] >> 32) as u8;
            side[i] = (row[7] >> 40) as u8;
            flags[i] = (row[7] >> 48) as u16;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Kind;

    fn sample(n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| Event {
                seq: i as u64 + 1,
                ts: -(i as i64) * 7,
                order_id: i as i64 * 3,
                price: i64::MAX - i as i64,
                qty: i64::MIN + i as i64,
                aux: 11,
                payload: -1,
                instrument: u32::MAX - i as u32,
                kind: Kind::Trade as u8,
                side: (i % 3) as u8,
                flags: 0xF00D ^ i as u16,
            })
            .collect()
    }

    #[test]
    fn rows_survive_columns_and_back() {
        let rows = sample(1000);
        let n = rows.len();
        let (mut seq, mut ts, mut order_id, mut price) =
            (vec![0; n], vec![0; n], vec![0; n], vec![0; n]);
        let (mut qty, mut aux, mut payload) = (vec![0; n], vec![0; n], vec![0; n]);
        let (mut instrument, mut kind, mut side, mut flags) =
            (vec![0; n], vec![0; n], vec![0; n], vec![0; n]);
        let mut cols = ColumnsMut {
            seq: &mut seq,
            ts: &mut ts,
            order_id: &mut order_id,
            price: &mut price,
            qty: &mut qty,
            aux: &mut aux,
            payload: &mut payload,
            instrument: &mut instrument,
            kind: &mut kind,
            side: &mut side,
            flags: &mut flags,
        };
        assert_eq!(cols.capacity(), n);
        // Two uneven pieces, to exercise `start`.
        cols.set_rows(0, &rows[..300]);
        cols.set_rows(300, &rows[300..]);
        assert_eq!(price[999], rows[999].price);
        assert_eq!(flags[5], rows[5].flags);
        assert_eq!(instrument[7], rows[7].instrument);
        let cols = Columns {
            seq: &seq,
            ts: &ts,
            order_id: &order_id,
            price: &price,
            qty: &qty,
            aux: &aux,
            payload: &payload,
            instrument: &instrument,
            kind: &kind,
            side: &side,
            flags: &flags,
        };
        assert_eq!(cols.len(), Ok(n));
        let mut back = vec![Event::default(); n];
        cols.to_rows(0, &mut back[..256]);
        cols.to_rows(256, &mut back[256..]);
        assert_eq!(back, rows);
        for i in [0, 17, 999] {
            assert_eq!(cols.get(i), rows[i]);
        }
    }

    #[test]
    fn unequal_columns_are_named() {
        let long = [0i64; 3];
        let short = [0i64; 2];
        let cols = Columns {
            seq: &[0; 3],
            ts: &long,
            order_id: &long,
            price: &short,
            qty: &long,
            aux: &long,
            payload: &long,
            instrument: &[0; 3],
            kind: &[0; 3],
            side: &[0; 3],
            flags: &[0; 3],
        };
        let err = cols.len().unwrap_err();
        assert_eq!(err.others[2], 2);
        assert!(err.to_string().contains("same length"));
    }
}
