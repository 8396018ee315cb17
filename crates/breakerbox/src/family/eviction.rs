//! The eviction order of a family: which breakers a full family looks at to make room.
//!
//! A queue of `(key, id)` in insertion order, with second chances: an eviction takes
//! the next [`SAMPLE`] entries from the front, evicts the least recently used evictable
//! one among them (of equally idle ones, the first in the queue: the longest a member),
//! and puts the others back at the end. The cost of an eviction is
//! bounded by the sample, whatever the family's size (the old design scanned every
//! breaker); the choice is the least recently used of the sample, an approximation of
//! LRU that Redis and the CLOCK family of page caches make for the same reason.
//!
//! The queue's mutex is also the family's insertion lock: a first use takes it to
//! check the key again, take a place (evicting if the family is full) and insert, so
//! two first uses of one key cannot both take a place (and evict a breaker for
//! nothing), and the bound holds exactly. Lookups never take it.
//!
//! Entries go stale when their breaker leaves the family another way (`remove`, an idle
//! sweep, an eviction that lost a race); they are dropped when met, and the queue is
//! compacted when stale entries could outnumber live ones, so it stays within twice
//! the family's size.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// How many breakers one eviction looks at.
pub(super) const SAMPLE: usize = 16;

/// A candidate the family's map still holds under the id the queue knows.
pub(super) struct Candidate {
    /// When it was last looked up, in the family's stamps.
    pub(super) last_used: u64,
    /// Closed or half-open: nothing is lost by forgetting it.
    pub(super) evictable: bool,
}

/// The insertion-ordered queue of `(key, id)`, behind the family's insertion lock.
pub(super) struct Order<K> {
    queue: Mutex<Queue<K>>,
}

/// The queue, held under the lock.
pub(super) struct Queue<K> {
    entries: VecDeque<(K, u64)>,
}

impl<K> Order<K> {
    pub(super) fn new() -> Self {
        Self { queue: Mutex::new(Queue { entries: VecDeque::new() }) }
    }

    /// Takes the insertion lock. Nothing that can panic runs under it but the
    /// template's `build`, which leaves the queue as it was: poisoning is ignored.
    pub(super) fn lock(&self) -> MutexGuard<'_, Queue<K>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<K> Queue<K> {
    /// Records a new member; compacts the queue when it has grown past twice `live`
    /// (plus a sample), keeping only the entries `is_live` confirms.
    pub(super) fn push(&mut self, key: K, id: u64, live: usize, is_live: impl Fn(&K, u64) -> bool) {
        self.entries.push_back((key, id));
        if self.entries.len() > 2 * live + SAMPLE {
            self.entries.retain(|(k, id)| is_live(k, *id));
        }
    }

    /// Picks a victim among the next [`SAMPLE`] entries: `look` returns the candidate
    /// an entry still names (`None` when stale, which drops it), `evict` tries to take
    /// the chosen one out of the family (`false` when it changed meanwhile). Returns
    /// whether a breaker was evicted; the others go back to the end of the queue.
    pub(super) fn evict_one(
        &mut self,
        look: impl Fn(&K, u64) -> Option<Candidate>,
        evict: impl FnOnce(&K, u64) -> bool,
    ) -> bool {
        let mut sampled = Vec::with_capacity(SAMPLE);
        let mut oldest: Option<(usize, u64)> = None;
        while sampled.len() < SAMPLE {
            let Some((key, id)) = self.entries.pop_front() else { break };
            let Some(candidate) = look(&key, id) else { continue };
            if candidate.evictable && oldest.is_none_or(|(_, used)| candidate.last_used < used) {
                oldest = Some((sampled.len(), candidate.last_used));
            }
            sampled.push((key, id));
        }
        let victim = oldest.map(|(i, _)| sampled.swap_remove(i));
        let evicted = victim.is_some_and(|(key, id)| {
            let evicted = evict(&key, id);
            if !evicted {
                sampled.push((key, id));
            }
            evicted
        });
        self.entries.extend(sampled);
        evicted
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A plain model of the family's map: key -> (id, last used, evictable).
    type Model = HashMap<&'static str, (u64, u64, bool)>;

    fn family(entries: &[(&'static str, u64, u64, bool)]) -> (Order<&'static str>, Model) {
        let order = Order::new();
        let mut map = HashMap::new();
        for &(k, id, used, evictable) in entries {
            order.lock().push(k, id, usize::MAX / 4, |_, _| true);
            map.insert(k, (id, used, evictable));
        }
        (order, map)
    }

    /// What the family's `look` returns for the model.
    fn look(model: &Model) -> impl Fn(&&'static str, u64) -> Option<Candidate> + '_ {
        |k, id| model.get(k).filter(|e| e.0 == id).map(|e| Candidate { last_used: e.1, evictable: e.2 })
    }

    fn evict(order: &Order<&'static str>, map: &mut Model) -> Option<&'static str> {
        let mut victim = None;
        let snapshot = map.clone();
        let evicted = order.lock().evict_one(look(&snapshot), |k, _| {
            victim = Some(*k);
            true
        });
        if let Some(k) = victim {
            map.remove(k);
        }
        assert_eq!(evicted, victim.is_some());
        victim
    }

    #[test]
    fn evicts_the_least_recently_used_evictable_of_the_sample() {
        let (order, mut map) = family(&[("a", 1, 30, true), ("b", 2, 10, false), ("c", 3, 20, true)]);
        assert_eq!(evict(&order, &mut map), Some("c"), "b is older but open");
        assert_eq!(evict(&order, &mut map), Some("a"));
        assert_eq!(evict(&order, &mut map), None, "only an open breaker is left");
        assert_eq!(map.len(), 1);
    }

    #[test]
    fn of_equally_idle_breakers_the_first_in_the_queue_goes() {
        let (order, mut map) =
            family(&[("a", 1, 20, false), ("b", 2, 10, true), ("c", 3, 10, true), ("d", 4, 10, true)]);
        assert_eq!(evict(&order, &mut map), Some("b"), "the first of three equally idle");
    }

    #[test]
    fn looks_at_no_more_than_a_sample() {
        // The oldest breaker sits past the sample: it is not found this time.
        let mut entries: Vec<_> = (0..SAMPLE as u64).map(|i| (leak(i), i, 100 + i, false)).collect();
        entries.push(("old", 99, 1, true));
        let (order, mut map) = family(&entries);
        let looked = std::cell::Cell::new(0);
        let snapshot = map.clone();
        let counting = |k: &&'static str, id| {
            looked.set(looked.get() + 1);
            look(&snapshot)(k, id)
        };
        assert!(!order.lock().evict_one(counting, |_, _| true));
        assert_eq!(looked.get(), SAMPLE);
        // The sample went to the back: the next eviction meets "old" first.
        assert_eq!(evict(&order, &mut map), Some("old"));
    }

    #[test]
    fn stale_entries_are_dropped_and_the_queue_compacted() {
        let (order, mut map) = family(&[("a", 1, 5, true), ("b", 2, 1, true)]);
        map.insert("a", (7, 5, true)); // a left and came back under another id
        map.remove("b");
        assert_eq!(evict(&order, &mut map), None, "both entries were stale");
        assert_eq!(order.lock().len(), 0);
        for i in 0..100 {
            order.lock().push("x", i, 1, |_, id| id >= 98);
        }
        assert!(order.lock().len() <= 2 + SAMPLE + 1, "compacted to about the live entries");
    }

    /// A family that shrinks (removals, idle sweeps) lowers the bound below the queue's
    /// length at once: the next push compacts, though the length never met the bound.
    #[test]
    fn a_queue_past_a_bound_that_dropped_compacts_at_the_next_push() {
        let order = Order::new();
        for i in 0..100 {
            order.lock().push("x", i, 100, |_, _| true);
        }
        assert_eq!(order.lock().len(), 100, "within 2 × 100 + a sample: kept");
        order.lock().push("x", 100, 1, |_, id| id == 100);
        assert_eq!(order.lock().len(), 1, "past 2 × 1 + a sample: only the live entry is left");
    }

    /// The bound is exactly `2 × live + SAMPLE` entries: a queue that long is kept, one
    /// entry more compacts it.
    #[test]
    fn the_queue_compacts_one_entry_past_twice_the_live_plus_a_sample() {
        let order = Order::new();
        let bound = 2 * 100 + SAMPLE as u64;
        let live_from = bound - 100;
        for i in 0..bound {
            order.lock().push("x", i, 100, |_, id| id >= live_from);
        }
        assert_eq!(order.lock().len() as u64, bound, "at the bound: kept as it is");
        order.lock().push("x", bound, 100, |_, id| id >= live_from);
        assert_eq!(order.lock().len() as u64, 101, "one past: only the live entries are left");
    }

    #[test]
    fn a_victim_that_changed_meanwhile_stays_in_the_queue() {
        let (order, map) = family(&[("a", 1, 5, true)]);
        assert!(!order.lock().evict_one(look(&map), |_, _| false));
        assert_eq!(order.lock().len(), 1);
    }

    fn leak(i: u64) -> &'static str {
        Box::leak(format!("k{i}").into_boxed_str())
    }
}
