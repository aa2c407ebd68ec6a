//! One side's price levels in price order: the best levels in a short sorted `Vec` (best
//! last), the deeper ones in a `BTreeMap`.
//!
//! Why two parts: a sorted `Vec` is the fastest structure for what a replay does all day
//! (levels appear and vanish a few ticks from the best), but an insertion far from its end
//! moves every entry behind it, so a book built worst-first (a snapshot restored best level
//! first, orders arriving at ever deeper prices) cost O(n) per level and O(n^2) in all: 1M
//! levels took minutes. Here the `Vec` holds at most `TOP_MAX` levels; beyond that its worse
//! half moves into the tree, and when it runs empty the best levels of the tree move back.
//! Every operation is O(log n) plus a move of at most `TOP_MAX` entries (amortized O(log n)
//! for the moves between the parts), and near the best it is the plain `Vec`.

use std::collections::BTreeMap;

/// The most levels the sorted `Vec` holds before its worse half moves to the tree: a move of
/// up to 8 KB per insertion at its far end, and enough levels that a replay near the best
/// rarely touches the tree.
const TOP_MAX: usize = 512;

/// Sort key -> level index; the key orders levels so that the best one is the largest (see
/// `key_of` in the book). Every key in `deep` is below every key in `top`, and `top` is empty
/// only when `deep` is.
#[derive(Clone, Debug, Default)]
pub(crate) struct Ladder {
    /// The best levels, ascending by key (best last).
    top: Vec<(i64, u32)>,
    deep: BTreeMap<i64, u32>,
}

impl Ladder {
    /// Level index of the best entry.
    #[inline]
    pub(crate) fn best(&self) -> Option<u32> {
        self.top.last().map(|&(_, li)| li)
    }

    /// Where `key` is or would go in `top` (the best level is looked at first: activity
    /// clusters there).
    #[inline]
    fn find_top(&self, key: i64) -> Result<usize, usize> {
        match self.top.last() {
            Some(top) if top.0 == key => Ok(self.top.len() - 1),
            Some(top) if top.0 < key => Err(self.top.len()),
            _ => self.top.binary_search_by_key(&key, |l| l.0),
        }
    }

    /// Whether `key` belongs in the tree: below every key of `top`, with the tree in use.
    #[inline]
    fn is_deep(&self, key: i64) -> bool {
        !self.deep.is_empty() && self.top.first().is_some_and(|&(k, _)| key < k)
    }

    /// The level at `key`, if there is one.
    #[inline]
    pub(crate) fn get(&self, key: i64) -> Option<u32> {
        if self.is_deep(key) {
            return self.deep.get(&key).copied();
        }
        self.find_top(key).ok().map(|p| self.top[p].1)
    }

    /// Adds a level that is not there yet.
    #[inline]
    pub(crate) fn insert(&mut self, key: i64, li: u32) {
        if self.is_deep(key) {
            let previous = self.deep.insert(key, li);
            debug_assert!(previous.is_none(), "level {key} inserted twice");
            return;
        }
        match self.find_top(key) {
            Ok(_) => debug_assert!(false, "level {key} inserted twice"),
            Err(p) => self.top.insert(p, (key, li)),
        }
        if self.top.len() > TOP_MAX {
            // The worse half goes to the tree; its keys are all below what stays.
            let half = self.top.len() / 2;
            self.deep.extend(self.top.drain(..half));
        }
    }

    /// Removes the level at `key`, if there is one.
    #[inline]
    pub(crate) fn remove(&mut self, key: i64) -> Option<u32> {
        if self.is_deep(key) {
            return self.deep.remove(&key);
        }
        let p = self.find_top(key).ok()?;
        let (_, li) = self.top.remove(p);
        if self.top.is_empty() && !self.deep.is_empty() {
            // Bring the best of the tree back, in ascending order.
            let take = self.deep.len().min(TOP_MAX / 2);
            let mut moved: Vec<(i64, u32)> = Vec::with_capacity(take);
            for _ in 0..take {
                moved.extend(self.deep.pop_last());
            }
            moved.reverse();
            self.top = moved;
        }
        Some(li)
    }

    /// (key, level index) of every level, best first.
    #[inline]
    pub(crate) fn best_first(&self) -> impl Iterator<Item = (i64, u32)> + '_ {
        self.top
            .iter()
            .rev()
            .copied()
            .chain(self.deep.iter().rev().map(|(&k, &li)| (k, li)))
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.top.len() + self.deep.len()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.top.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.top.clear();
        self.deep.clear();
    }

    /// The ladder's own invariants (for `OrderBook::check_invariants`).
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.top.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err("levels out of order".into());
        }
        if self.top.is_empty() && !self.deep.is_empty() {
            return Err("best levels empty while deeper ones exist".into());
        }
        if let (Some(&(low, _)), Some((&deep_best, _))) =
            (self.top.first(), self.deep.last_key_value())
        {
            if deep_best >= low {
                return Err("a deep level is not below the best levels".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{Ladder, TOP_MAX};

    fn keys(l: &Ladder) -> Vec<i64> {
        l.best_first().map(|(k, _)| k).collect()
    }

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
        assert_eq!(keys(&l), vec![7, 5, 3, 1]);
        for k in [7, 5, 3, 1] {
            l.remove(k);
        }
        assert!(l.is_empty());
        assert_eq!(l.best(), None);
        assert_eq!(l.len(), 0);
    }

    #[test]
    fn spills_to_the_tree_and_comes_back_in_order() {
        let n = 5 * TOP_MAX as i64;
        // Worst-first, best-first and interleaved, against a sorted reference.
        for order in [
            (0..n).rev().collect::<Vec<_>>(),
            (0..n).collect(),
            (0..n).map(|k| (k * 7919) % n).collect(),
        ] {
            let mut l = Ladder::default();
            for &k in &order {
                l.insert(k, k as u32);
                l.check().unwrap();
            }
            assert_eq!(l.len(), n as usize);
            assert_eq!(keys(&l), (0..n).rev().collect::<Vec<_>>());
            for k in (0..n).step_by(3) {
                assert_eq!(l.get(k), Some(k as u32));
            }
            // Removing from the best end refills the Vec from the tree.
            for k in (0..n).rev() {
                assert_eq!(l.best(), Some(k as u32));
                assert_eq!(l.remove(k), Some(k as u32));
                l.check().unwrap();
            }
            assert!(l.is_empty());
        }
    }
}
