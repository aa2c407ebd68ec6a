//! One side's price levels in price order: a `BTreeMap` from sort key to level index, with
//! the best entry cached.
//!
//! Why a tree and not a sorted `Vec`: a `Vec` makes an insertion or removal away from its end
//! move every entry behind it, so a book built worst-first (a snapshot restored best level
//! first, or orders arriving at ever deeper prices) cost O(n) per level, O(n^2) in all: 1M
//! levels took minutes. The tree is O(log n) anywhere; the cached best keeps the hot path
//! (the best level: lookups, matching, `bbo`) a compare and a load, as with the `Vec`.

use std::collections::BTreeMap;

/// Sort key -> level index; the key orders levels so that the best one is the largest (see
/// `key_of` in the book).
#[derive(Clone, Debug, Default)]
pub(crate) struct Ladder {
    map: BTreeMap<i64, u32>,
    /// The largest entry of `map`, or None when it is empty.
    best: Option<(i64, u32)>,
}

impl Ladder {
    /// Level index of the best entry.
    #[inline]
    pub(crate) fn best(&self) -> Option<u32> {
        self.best.map(|(_, li)| li)
    }

    /// The level at `key`, if there is one; the best level is checked first.
    #[inline]
    pub(crate) fn get(&self, key: i64) -> Option<u32> {
        match self.best {
            Some((k, li)) if k == key => Some(li),
            Some((k, _)) if key > k => None,
            None => None,
            _ => self.map.get(&key).copied(),
        }
    }

    /// Adds a level that is not there yet.
    #[inline]
    pub(crate) fn insert(&mut self, key: i64, li: u32) {
        let previous = self.map.insert(key, li);
        debug_assert!(previous.is_none(), "level {key} inserted twice");
        if self.best.is_none_or(|(k, _)| key > k) {
            self.best = Some((key, li));
        }
    }

    /// Removes the level at `key`, if there is one.
    #[inline]
    pub(crate) fn remove(&mut self, key: i64) -> Option<u32> {
        let removed = self.map.remove(&key);
        if self.best.is_some_and(|(k, _)| k == key) {
            self.best = self.map.last_key_value().map(|(&k, &li)| (k, li));
        }
        removed
    }

    /// (key, level index) of every level, best first.
    #[inline]
    pub(crate) fn best_first(&self) -> impl Iterator<Item = (i64, u32)> + '_ {
        self.map.iter().rev().map(|(&k, &li)| (k, li))
    }

    /// The largest key in the tree itself (for the invariants check of the cache).
    pub(crate) fn tree_best(&self) -> Option<(i64, u32)> {
        self.map.last_key_value().map(|(&k, &li)| (k, li))
    }

    /// The cached best entry.
    pub(crate) fn cached_best(&self) -> Option<(i64, u32)> {
        self.best
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.best.is_none()
    }

    pub(crate) fn clear(&mut self) {
        self.map.clear();
        self.best = None;
    }
}

#[cfg(test)]
mod tests {
    use super::Ladder;

    #[test]
    fn best_follows_inserts_and_removes_in_any_order() {
        let mut l = Ladder::default();
        for k in [5, 1, 9, 3, 7] {
            l.insert(k, k as u32 * 10);
        }
        assert_eq!(l.best(), Some(90));
        assert_eq!(l.get(3), Some(30));
        assert_eq!(l.get(10), None);
        assert_eq!(l.get(4), None);
        assert_eq!(l.remove(9), Some(90));
        assert_eq!(l.best(), Some(70));
        assert_eq!(l.remove(4), None);
        let keys: Vec<i64> = l.best_first().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![7, 5, 3, 1]);
        for k in [7, 5, 3, 1] {
            l.remove(k);
        }
        assert!(l.is_empty());
        assert_eq!(l.best(), None);
        assert_eq!(l.len(), 0);
    }
}
