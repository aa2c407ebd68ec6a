//! k-way merge of time-ordered sources into one stream, ordered by (ts, source, row).
//!
//! Ties in time keep the order of the sources as given, and rows of one source keep their
//! order, so the merged stream is a pure function of the inputs: the first requirement of a
//! deterministic replay.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::event::Event;

/// A source whose timestamps go backwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfOrder {
    /// Index of the source.
    pub source: usize,
    /// Row whose timestamp is earlier than the row before it.
    pub row: usize,
}

impl std::fmt::Display for OutOfOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "source {} is not in time order: row {} is earlier than row {}",
            self.source,
            self.row,
            self.row - 1
        )
    }
}

impl std::error::Error for OutOfOrder {}

/// Checks that every source is sorted by `ts`.
pub fn check_sorted(sources: &[&[Event]]) -> Result<(), OutOfOrder> {
    for (source, events) in sources.iter().enumerate() {
        if let Some(row) = events.windows(2).position(|w| w[1].ts < w[0].ts) {
            return Err(OutOfOrder {
                source,
                row: row + 1,
            });
        }
    }
    Ok(())
}

/// Merges time-ordered sources into one vector ordered by (ts, source, row).
pub fn merge(sources: &[&[Event]]) -> Result<Vec<Event>, OutOfOrder> {
    check_sorted(sources)?;
    let total = sources.iter().map(|s| s.len()).sum();
    let mut out = Vec::with_capacity(total);
    if sources.len() == 1 {
        out.extend_from_slice(sources[0]);
        return Ok(out);
    }
    let mut heads: BinaryHeap<Reverse<(i64, usize)>> = sources
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.is_empty())
        .map(|(i, s)| Reverse((s[0].ts, i)))
        .collect();
    let mut pos = vec![0usize; sources.len()];
    while let Some(Reverse((_, i))) = heads.pop() {
        let src = sources[i];
        // Take the run of this source up to the next source's head time.
        let limit = heads.peek().map(|Reverse((ts, j))| (*ts, *j));
        let start = pos[i];
        let mut end = start + 1;
        while end < src.len() {
            let ts = src[end].ts;
            let before = match limit {
                None => true,
                Some((lts, j)) => ts < lts || (ts == lts && i < j),
            };
            if !before {
                break;
            }
            end += 1;
        }
        out.extend_from_slice(&src[start..end]);
        pos[i] = end;
        if end < src.len() {
            heads.push(Reverse((src[end].ts, i)));
        }
    }
    Ok(out)
}

/// Like [`merge`], taking the sources by value: a single source is checked and returned
/// as it is, without a copy.
pub fn merge_owned(mut sources: Vec<Vec<Event>>) -> Result<Vec<Event>, OutOfOrder> {
    if sources.len() == 1 {
        let only = sources.remove(0);
        check_sorted(&[only.as_slice()])?;
        return Ok(only);
    }
    let views: Vec<&[Event]> = sources.iter().map(|v| v.as_slice()).collect();
    merge(&views)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Kind;

    fn ev(ts: i64, tag: i64) -> Event {
        Event {
            order_id: tag,
            ..Event::new(Kind::Trade, ts)
        }
    }

    #[test]
    fn merges_by_time_then_source_then_row() {
        let a = [ev(1, 10), ev(3, 11), ev(3, 12), ev(5, 13)];
        let b = [ev(0, 20), ev(3, 21), ev(4, 22)];
        let c: [Event; 0] = [];
        let out = merge(&[&a, &b, &c]).unwrap();
        let tags: Vec<i64> = out.iter().map(|e| e.order_id).collect();
        assert_eq!(tags, [20, 10, 11, 12, 21, 22, 13]);
    }

    #[test]
    fn rejects_unsorted_sources() {
        let a = [ev(1, 0), ev(0, 1)];
        assert_eq!(merge(&[&a]), Err(OutOfOrder { source: 0, row: 1 }));
        assert_eq!(
            merge_owned(vec![a.to_vec()]),
            Err(OutOfOrder { source: 0, row: 1 })
        );
    }
}
