//! Events as eleven columns (Arrow's layout) and as 64-byte rows (the ring's and numpy's), and
//! the transposition between the two.
//!
//! The transposition is the whole cost of moving an Arrow batch through the queue. A row is
//! viewed as eight little-endian `u64` lanes: seven 64-bit fields, then the packed tail
//! `instrument | kind << 32 | side << 40 | flags << 48`. Rows are done in pieces of 256 that
//! stay in L1: the tails of a piece are packed (or unpacked) in a small buffer, a loop LLVM
//! vectorizes, and the eight lanes are then interleaved into rows (or split out of them).
//! With AVX2 that is four rows at a time as two 4x4 transposes of 64-bit lanes (`avx2`),
//! written with intrinsics because LLVM leaves an eight-way interleave scalar; it runs at
//! about the speed of `memcpy`, twice the scalar loop's.

use multiversion::multiversion;
use multiversion::target::match_target;

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

/// Rows are transposed in pieces of this many, which stay in L1 between the two passes.
const PIECE: usize = 256;

/// The seven 64-bit columns, as `u64`.
fn wide_lanes<'a>(cols: &Columns<'a>, at: usize, end: usize) -> [&'a [u64]; 7] {
    [
        &cols.seq[at..end],
        bytemuck::cast_slice(&cols.ts[at..end]),
        bytemuck::cast_slice(&cols.order_id[at..end]),
        bytemuck::cast_slice(&cols.price[at..end]),
        bytemuck::cast_slice(&cols.qty[at..end]),
        bytemuck::cast_slice(&cols.aux[at..end]),
        bytemuck::cast_slice(&cols.payload[at..end]),
    ]
}

/// `Columns::to_rows`, compiled twice: for the base x86-64 and with AVX2, chosen at run time
/// by `multiversion`, which keeps the feature detection and the `unsafe` call it needs
/// inside the crate.
#[multiversion(targets("x86_64+avx2"))]
fn to_rows(cols: &Columns<'_>, start: usize, out: &mut [[u64; 8]]) {
    let mut tails = [0u64; PIECE];
    for (p, rows) in out.chunks_mut(PIECE).enumerate() {
        let at = start + p * PIECE;
        let end = at + rows.len();
        let tails = &mut tails[..rows.len()];
        let (instrument, kind, side, flags) = (
            &cols.instrument[at..end],
            &cols.kind[at..end],
            &cols.side[at..end],
            &cols.flags[at..end],
        );
        for (i, tail) in tails.iter_mut().enumerate() {
            *tail = pack_tail(instrument[i], kind[i], side[i], flags[i]);
        }
        let [l0, l1, l2, l3, l4, l5, l6] = wide_lanes(cols, at, end);
        let lanes = [l0, l1, l2, l3, l4, l5, l6, &*tails];
        match_target! {
            "x86_64+avx2" => avx2::interleave(lanes, rows),
            _ => interleave(lanes, rows),
        }
    }
}

/// Row `i` of `rows` is lane `i` of each of `lanes`.
fn interleave(lanes: [&[u64]; 8], rows: &mut [[u64; 8]]) {
    for (i, row) in rows.iter_mut().enumerate() {
        *row = lanes.map(|lane| lane[i]);
    }
}

/// Lane `i` of each of `lanes` is row `i` of `rows`.
fn split(rows: &[[u64; 8]], lanes: [&mut [u64]; 8]) {
    for (k, lane) in lanes.into_iter().enumerate() {
        for (i, row) in rows.iter().enumerate() {
            lane[i] = row[k];
        }
    }
}

/// The transposition four rows at a time. These are safe functions that need AVX2; the
/// dispatching functions above only call them from their AVX2 build.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use core::arch::x86_64::{
        __m256i, _mm256_permute2x128_si256, _mm256_unpackhi_epi64, _mm256_unpacklo_epi64,
    };

    /// The 4x4 transpose of 64-bit lanes (its own inverse): `out[r][c] == a[c][r]`.
    #[target_feature(enable = "avx2")]
    fn transpose(a: [__m256i; 4]) -> [__m256i; 4] {
        let t0 = _mm256_unpacklo_epi64(a[0], a[1]);
        let t1 = _mm256_unpackhi_epi64(a[0], a[1]);
        let t2 = _mm256_unpacklo_epi64(a[2], a[3]);
        let t3 = _mm256_unpackhi_epi64(a[2], a[3]);
        [
            _mm256_permute2x128_si256::<0x20>(t0, t2),
            _mm256_permute2x128_si256::<0x20>(t1, t3),
            _mm256_permute2x128_si256::<0x31>(t0, t2),
            _mm256_permute2x128_si256::<0x31>(t1, t3),
        ]
    }

    /// Four values of `lane` from `i` (an unaligned load).
    #[target_feature(enable = "avx2")]
    fn load(lane: &[u64], i: usize) -> __m256i {
        let four: [u64; 4] = lane[i..i + 4].try_into().expect("four values");
        bytemuck::cast(four)
    }

    /// `super::interleave`.
    #[target_feature(enable = "avx2")]
    pub fn interleave(lanes: [&[u64]; 8], rows: &mut [[u64; 8]]) {
        let mut quads = rows.chunks_exact_mut(4);
        let mut i = 0;
        for quad in &mut quads {
            let low = transpose([0, 1, 2, 3].map(|k| load(lanes[k], i)));
            let high = transpose([4, 5, 6, 7].map(|k| load(lanes[k], i)));
            for (r, row) in quad.iter_mut().enumerate() {
                *row = bytemuck::cast([low[r], high[r]]);
            }
            i += 4;
        }
        let rest = quads.into_remainder();
        super::interleave(lanes.map(|lane| &lane[i..]), rest);
    }

    /// `super::split`.
    #[target_feature(enable = "avx2")]
    pub fn split(rows: &[[u64; 8]], lanes: [&mut [u64]; 8]) {
        let mut lanes = lanes;
        let mut quads = rows.chunks_exact(4);
        let mut i = 0;
        for quad in &mut quads {
            let halves: [[__m256i; 2]; 4] = [0, 1, 2, 3].map(|r| bytemuck::cast(quad[r]));
            let low = transpose([0, 1, 2, 3].map(|r| halves[r][0]));
            let high = transpose([0, 1, 2, 3].map(|r| halves[r][1]));
            for (k, lane) in lanes.iter_mut().enumerate() {
                let four: &mut [u64; 4] = (&mut lane[i..i + 4]).try_into().expect("four values");
                *four = bytemuck::cast(if k < 4 { low[k] } else { high[k - 4] });
            }
            i += 4;
        }
        super::split(quads.remainder(), lanes.map(|lane| &mut lane[i..]));
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

/// `ColumnsMut::set_rows`, in two builds like `to_rows`.
#[multiversion(targets("x86_64+avx2"))]
fn set_rows(cols: &mut ColumnsMut<'_>, start: usize, rows: &[[u64; 8]]) {
    let mut tails = [0u64; PIECE];
    for (p, rows) in rows.chunks(PIECE).enumerate() {
        let at = start + p * PIECE;
        let end = at + rows.len();
        let tails = &mut tails[..rows.len()];
        let lanes: [&mut [u64]; 8] = [
            &mut cols.seq[at..end],
            bytemuck::cast_slice_mut(&mut cols.ts[at..end]),
            bytemuck::cast_slice_mut(&mut cols.order_id[at..end]),
            bytemuck::cast_slice_mut(&mut cols.price[at..end]),
            bytemuck::cast_slice_mut(&mut cols.qty[at..end]),
            bytemuck::cast_slice_mut(&mut cols.aux[at..end]),
            bytemuck::cast_slice_mut(&mut cols.payload[at..end]),
            &mut *tails,
        ];
        match_target! {
            "x86_64+avx2" => avx2::split(rows, lanes),
            _ => split(rows, lanes),
        }
        let (instrument, kind, side, flags) = (
            &mut cols.instrument[at..end],
            &mut cols.kind[at..end],
            &mut cols.side[at..end],
            &mut cols.flags[at..end],
        );
        for (i, &tail) in tails.iter().enumerate() {
            instrument[i] = tail as u32;
            kind[i] = (tail >> 32) as u8;
            side[i] = (tail >> 40) as u8;
            flags[i] = (tail >> 48) as u16;
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
        // Not a multiple of four rows, nor of a piece.
        let rows = sample(1003);
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
        cols.set_rows(0, &rows[..301]);
        cols.set_rows(301, &rows[301..]);
        assert_eq!(price[1002], rows[1002].price);
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
        cols.to_rows(0, &mut back[..257]);
        cols.to_rows(257, &mut back[257..]);
        assert_eq!(back, rows);
        for i in [0, 17, 1002] {
            assert_eq!(cols.get(i), rows[i]);
        }
    }

    /// The portable loops, which a machine with AVX2 only runs for the last rows of a piece.
    #[test]
    fn portable_interleave_and_split_agree() {
        let lanes: Vec<Vec<u64>> = (0..8u64)
            .map(|k| (0..13u64).map(|i| k << 32 | i).collect())
            .collect();
        let views: [&[u64]; 8] = std::array::from_fn(|k| lanes[k].as_slice());
        let mut rows = vec![[0u64; 8]; 13];
        interleave(views, &mut rows);
        assert_eq!(rows[5][3], 3 << 32 | 5);
        let mut back = vec![vec![0u64; 13]; 8];
        let [b0, b1, b2, b3, b4, b5, b6, b7] = &mut back[..] else {
            unreachable!()
        };
        split(&rows, [b0, b1, b2, b3, b4, b5, b6, b7]);
        assert_eq!(back, lanes);
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
