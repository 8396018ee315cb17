//! `BreakerBox`: one breaker per key (per host, per endpoint, per tenant), created on
//! first use from one template, bounded in size, evicting idle keys.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hash, RandomState};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::{Breaker, BreakerBuilder, ConfigError, State};

const SHARDS: usize = 16;

/// A family of breakers, one per key, all built from one template.
///
/// A lookup takes a shard's read lock (16 shards); creating a breaker for a new key
/// takes that shard's write lock once. Breakers are plain [`Breaker`] handles: once you
/// hold one, calls through it never touch the family.
///
/// The family is bounded: past [`max_breakers`](BreakerBoxBuilder::max_breakers) keys, a
/// new key first evicts the breakers idle longer than the
/// [`idle_timeout`](BreakerBoxBuilder::idle_timeout), then the least recently used
/// evictable one. A breaker is evictable when it is closed or half-open (including an
/// abandoned open breaker whose wait has passed: the outage it knew about is stale). An
/// open breaker still in its wait is never evicted (that would forget a known outage),
/// nor one an operator forced open or disabled; a family whose every breaker is so
/// grows past the bound until their waits end.
///
/// Each breaker is named `"{template name}/{key}"`.
///
/// # Examples
///
/// ```
/// use breakerbox::{Breaker, BreakerBox, Policy};
///
/// let hosts = BreakerBox::new(Breaker::builder().name("upstream").policy(Policy::consecutive_failures(2)))?;
/// let a = hosts.get("a.example:443");
/// a.try_acquire()?.failure();
/// a.try_acquire()?.failure();
/// assert!(a.is_open());
/// assert!(hosts.get("b.example:443").is_closed()); // one failing host never opens another
/// assert_eq!(hosts.open_keys(), vec!["a.example:443"]);
/// assert_eq!(a.name(), "upstream/a.example:443");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Clone
///
/// Clones share one family.
pub struct BreakerBox<K> {
    inner: Arc<Family<K>>,
}

struct Family<K> {
    template: BreakerBuilder,
    /// A breaker built from the template, for its clock (shared by every member).
    clock: Breaker,
    shards: Box<[RwLock<HashMap<K, Slot>>]>,
    hasher: RandomState,
    max: usize,
    idle: Option<Duration>,
}

struct Slot {
    breaker: Breaker,
    last_used: AtomicU64,
}

impl<K> Clone for BreakerBox<K> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

impl<K> fmt::Debug for BreakerBox<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerBox")
            .field("template", &self.inner.template)
            .field("len", &self.len())
            .field("max", &self.inner.max)
            .finish()
    }
}

/// Builds a [`BreakerBox`].
///
/// # Default
///
/// At most 10,000 breakers; no idle timeout.
pub struct BreakerBoxBuilder<K> {
    template: BreakerBuilder,
    max: usize,
    idle: Option<Duration>,
    _key: PhantomData<fn() -> K>,
}

impl<K> Clone for BreakerBoxBuilder<K> {
    fn clone(&self) -> Self {
        Self { template: self.template.clone(), max: self.max, idle: self.idle, _key: PhantomData }
    }
}

impl<K> fmt::Debug for BreakerBoxBuilder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerBoxBuilder")
            .field("template", &self.template)
            .field("max", &self.max)
            .field("idle", &self.idle)
            .finish()
    }
}

impl<K> BreakerBoxBuilder<K> {
    /// The most breakers kept (at least 1).
    #[must_use]
    pub fn max_breakers(mut self, n: usize) -> Self {
        self.max = n;
        self
    }

    /// Evicts breakers that have not been looked up for `idle` and are closed.
    #[must_use]
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle = Some(idle);
        self
    }

    /// Builds the family.
    ///
    /// # Errors
    ///
    /// The template's [`ConfigError`], or `max_breakers` = 0.
    pub fn build(self) -> Result<BreakerBox<K>, ConfigError> {
        self.template.validate()?;
        if self.max == 0 {
            return Err(ConfigError::new("max_breakers", 0, "at least 1"));
        }
        if self.idle.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::new("idle_timeout", Duration::ZERO, "a duration greater than zero"));
        }
        Ok(BreakerBox {
            inner: Arc::new(Family {
                clock: self.template.build_valid(),
                template: self.template,
                shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
                hasher: RandomState::new(),
                max: self.max,
                idle: self.idle,
            }),
        })
    }
}

impl<K> BreakerBox<K> {
    /// A family built from `template`, with the default bounds.
    ///
    /// # Errors
    ///
    /// The template's [`ConfigError`].
    pub fn new(template: BreakerBuilder) -> Result<Self, ConfigError> {
        Self::builder(template).build()
    }

    /// A builder for a family built from `template`.
    pub fn builder(template: BreakerBuilder) -> BreakerBoxBuilder<K> {
        BreakerBoxBuilder { template, max: 10_000, idle: None, _key: PhantomData }
    }

    /// How many breakers the family holds.
    pub fn len(&self) -> usize {
        self.inner.shards.iter().map(|s| read(s).len()).sum()
    }

    /// Whether the family holds no breaker.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn now(&self) -> u64 {
        self.inner.clock.clock_nanos()
    }
}

impl<K> BreakerBox<K>
where
    K: Hash + Eq + Clone + fmt::Display,
{
    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> &RwLock<HashMap<K, Slot>> {
        let i = self.inner.hasher.hash_one(key) as usize % SHARDS;
        &self.inner.shards[i]
    }

    /// The breaker for `key`, created from the template on first use.
    pub fn get<Q>(&self, key: &Q) -> Breaker
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let now = self.now();
        if let Some(slot) = read(self.shard(key)).get(key) {
            slot.last_used.store(now, Ordering::Relaxed);
            return slot.breaker.clone();
        }
        if self.len() >= self.inner.max {
            self.make_room();
        }
        let mut shard = write(self.shard(key));
        let slot = shard.entry(key.to_owned()).or_insert_with_key(|k| Slot {
            breaker: self
                .inner
                .template
                .with_name(format!("{}/{k}", self.inner.template.template_name()).into())
                .build_valid(),
            last_used: AtomicU64::new(now),
        });
        slot.last_used.store(now, Ordering::Relaxed);
        slot.breaker.clone()
    }

    /// The breaker for `key`, if the family has one.
    pub fn get_existing<Q>(&self, key: &Q) -> Option<Breaker>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        read(self.shard(key)).get(key).map(|s| s.breaker.clone())
    }

    /// Removes the breaker for `key`; returns it if there was one.
    pub fn remove<Q>(&self, key: &Q) -> Option<Breaker>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        write(self.shard(key)).remove(key).map(|s| s.breaker)
    }

    /// The keys whose breakers are open (or forced open), like a status page would list.
    pub fn open_keys(&self) -> Vec<K> {
        self.entries().into_iter().filter(|(_, b)| b.is_open()).map(|(k, _)| k).collect()
    }

    /// Resets every breaker of the family (see [`Breaker::reset`]).
    pub fn reset_all(&self) {
        for (_, b) in self.entries() {
            b.reset();
        }
    }

    /// Every key with its breaker, in no particular order.
    pub fn entries(&self) -> Vec<(K, Breaker)> {
        let mut all = Vec::new();
        for shard in self.inner.shards.iter() {
            all.extend(read(shard).iter().map(|(k, s)| (k.clone(), s.breaker.clone())));
        }
        all
    }

    /// The state of each breaker.
    pub fn states(&self) -> Vec<(K, State)> {
        self.entries().into_iter().map(|(k, b)| (k, b.state())).collect()
    }

    /// Evicts the evictable breakers (closed or half-open) not looked up within the idle
    /// timeout; returns how many were evicted. Without an idle timeout, evicts nothing.
    pub fn retain_recent(&self) -> usize {
        let Some(idle) = self.inner.idle else { return 0 };
        let now = self.now();
        let idle = crate::clock::nanos(idle);
        let mut evicted = 0;
        for shard in self.inner.shards.iter() {
            let mut map = write(shard);
            let before = map.len();
            map.retain(|_, s| now.saturating_sub(s.last_used.load(Ordering::Relaxed)) < idle || !evictable(&s.breaker));
            evicted += before - map.len();
        }
        evicted
    }

    /// Frees one place: idle breakers first, then the least recently used closed one.
    fn make_room(&self) {
        if self.retain_recent() > 0 {
            return;
        }
        let mut oldest: Option<(usize, K, u64)> = None;
        for (i, shard) in self.inner.shards.iter().enumerate() {
            for (k, s) in read(shard).iter() {
                let used = s.last_used.load(Ordering::Relaxed);
                if evictable(&s.breaker) && oldest.as_ref().is_none_or(|(_, _, u)| used < *u) {
                    oldest = Some((i, k.clone(), used));
                }
            }
        }
        if let Some((i, k, _)) = oldest {
            write(&self.inner.shards[i]).remove(&k);
        }
    }
}

/// Closed or half-open: nothing lost by forgetting it.
fn evictable(b: &Breaker) -> bool {
    matches!(b.state(), State::Closed | State::HalfOpen)
}

/// Locks for reading. A poisoned lock still holds a consistent map (no user code runs
/// under it), so poisoning is ignored.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}
