//! `BreakerBox`: one breaker per key (per host, per endpoint, per tenant), created on
//! first use from one template, bounded in size, evicting idle keys.
//!
//! # Design
//!
//! A family sits on every request of a per-host client, so a lookup of a known key must
//! cost little more than the breaker's own call and must not slow down when threads
//! share it. A lookup here is one hash and one probe of a lock-free map, and writes
//! nothing shared:
//!
//! - **The map** is [papaya](https://docs.rs/papaya)'s: reads take no lock and
//!   write only the reading thread's own epoch slot; removed breakers are freed once no
//!   reader can see them. A sharded `RwLock` map (what this family used, and what
//!   `DashMap` is) writes the shard's lock word on every read, so two threads reading
//!   the same shard bounce one cache line and a family got slower with a second thread.
//!   scc's `HashIndex` reads lock-free as well; papaya measured faster on the hit
//!   (`BENCHMARKS.md`, the `family_hit` group, has every line side by side).
//! - **The hasher** is [aHash](https://docs.rs/ahash), keyed per family with random
//!   keys from the operating system. Keys come from URLs an attacker can choose; an
//!   unkeyed fast hash would let one send hosts that all collide and turn every lookup
//!   into a scan. aHash is designed to resist that (HashDoS) at a fraction of SipHash's
//!   cost; the key is hashed once per lookup.
//! - **No handle is cloned on a hit.** [`call`](BreakerBox::call),
//!   [`with_breaker`](BreakerBox::with_breaker) and
//!   [`try_acquire_owned`](BreakerBox::try_acquire_owned) run on the family's own
//!   reference to the breaker; cloning a [`Breaker`] is a reference-count increment,
//!   a shared write on the same cache line as the breaker's state.
//!   [`get`](BreakerBox::get) still returns a handle, for code that keeps one.
//! - **Last use is stamped from a coarse tick**, and only when the tick has moved: on
//!   the [`MonotonicClock`](crate::MonotonicClock), the process-wide 5 ms tick that
//!   also times permit ages (a load of a static, not a system call); on any other clock
//!   (a `ManualClock` in tests, a `CoarseClock`), that clock. A key looked up a million
//!   times a second is written once per tick.
//! - **The bound is exact.** First uses take one insertion lock (lookups never do):
//!   under it, the key is looked up again, a place is taken, and a full family evicts
//!   before it inserts, handing the freed place to the new key. Concurrent first uses
//!   never overshoot [`max_breakers`](BreakerBoxBuilder::max_breakers), and two first
//!   uses of one key never evict a breaker for nothing. Creating a breaker costs
//!   allocations anyway; serialising it costs nothing a lookup pays. The one exception is the
//!   eviction rule itself: an open breaker in its wait, a forced-open and a disabled
//!   one are never evicted, so when an eviction finds none to evict the family grows
//!   by one (and each later insertion past the bound evicts one more, to shrink back).
//! - **Eviction looks at a sample,** not the whole family: the next 16 breakers in
//!   insertion order, with second chances (see `eviction.rs`), evicting the least
//!   recently used evictable one. Idle breakers are the least recently used, so a
//!   full family evicts them first.

mod eviction;
pub(crate) mod valve;

use std::borrow::Borrow;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use papaya::LocalGuard;

use crate::clock::AnyClock;
use crate::clock::coarse::AgeClock;
use crate::{Breaker, BreakerBuilder, ConfigError, Error, OwnedPermit, Rejected, Report, State};
use eviction::{Candidate, Order, Queue};
pub use valve::TripHeld;
use valve::Valve;

/// A family of breakers, one per key, all built from one template.
///
/// A lookup of a known key takes no lock and writes nothing shared (see the module
/// docs): [`call`](Self::call) through a family costs one hash and one probe more
/// than a call through one breaker, and scales across threads as a breaker does.
/// Look up by a borrowed form of the key (`&str` for `String` keys).
///
/// The family is bounded: past [`max_breakers`](BreakerBoxBuilder::max_breakers) keys, a
/// new key first evicts the least recently used evictable breaker among the next 16 in
/// insertion order (idle ones are the least recently used); breakers idle longer than
/// the [`idle_timeout`](BreakerBoxBuilder::idle_timeout) are also evicted by
/// [`retain_recent`](Self::retain_recent). A breaker is evictable when it is closed or
/// half-open (including an abandoned open breaker whose wait has passed: the outage it
/// knew about is stale). An open breaker still in its wait is never evicted (that would
/// forget a known outage), nor one an operator forced open or disabled; when an
/// eviction finds none to evict, the family grows past the bound by one, and shrinks
/// back as later insertions evict.
///
/// Each breaker is named `"{template name}/{key}"`.
///
/// # Examples
///
/// ```
/// use breakerbox::{Breaker, BreakerBox, Error, Policy};
///
/// let hosts = BreakerBox::new(Breaker::builder().name("upstream").policy(Policy::consecutive_failures(2)))?;
/// for _ in 0..2 {
///     let r: Result<(), Error<&str>> = hosts.call("a.example:443", || Err("refused"));
///     assert!(matches!(r, Err(Error::Inner(_))));
/// }
/// assert!(hosts.get("a.example:443").is_open());
/// assert!(hosts.get("b.example:443").is_closed()); // one failing host never opens another
/// assert_eq!(hosts.open_keys(), vec!["a.example:443"]);
/// assert_eq!(hosts.get("a.example:443").name(), "upstream/a.example:443");
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
    map: papaya::HashMap<K, Member, ahash::RandomState>,
    /// Places taken, one per member; changed by insertions under the insertion lock,
    /// and by removals. At most `max`, but for the documented exception.
    places: Arc<AtomicUsize>,
    order: Order<K>,
    next_id: AtomicU64,
    stamps: Stamps,
    max: usize,
    idle: Option<Duration>,
    /// Shadow mode for every member, present and future: read and written under the
    /// insertion lock, so a member built while it changes cannot miss the change.
    shadow: AtomicBool,
    /// Members removed so far (by `remove`, evictions, `retain_recent`): see
    /// [`BreakerBox::departures`].
    departures: AtomicU64,
}

struct Member {
    breaker: Breaker,
    /// When it was last looked up, in `Stamps` time.
    last_used: AtomicU64,
    /// Tells this member from one inserted later under the same key.
    id: u64,
}

/// What last uses are stamped with: the shared 5 ms tick for a `MonotonicClock`
/// template, the template's own clock otherwise.
struct Stamps {
    ages: AgeClock,
    clock: AnyClock,
}

impl Stamps {
    fn new(clock: AnyClock) -> Self {
        let ages = if clock.is_monotonic() { AgeClock::shared() } else { AgeClock::Own };
        Self { ages, clock }
    }

    #[inline(always)]
    fn now(&self) -> u64 {
        self.ages.now(&self.clock)
    }
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
            .field("len", &self.inner.places.load(Ordering::Relaxed))
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
    max_open_fraction: Option<f64>,
    on_trip_held: Vec<valve::HeldListener>,
    _key: PhantomData<fn() -> K>,
}

impl<K> Clone for BreakerBoxBuilder<K> {
    fn clone(&self) -> Self {
        Self {
            template: self.template.clone(),
            max: self.max,
            idle: self.idle,
            max_open_fraction: self.max_open_fraction,
            on_trip_held: self.on_trip_held.clone(),
            _key: PhantomData,
        }
    }
}

impl<K> fmt::Debug for BreakerBoxBuilder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerBoxBuilder")
            .field("template", &self.template)
            .field("max", &self.max)
            .field("idle", &self.idle)
            .field("max_open_fraction", &self.max_open_fraction)
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

    /// The panic valve: once at least one breaker is open, a trip that would make more
    /// than this share of the family's breakers open is held back (the breaker stays
    /// closed and asks again at its next failure). When most hosts fail at once, the
    /// client's own network or a shared dependency is the likelier culprit, and opening
    /// every breaker would only turn a partial outage into a total one (Envoy's
    /// `max_ejection_percent`). Above 0.0 and below 1.0. See
    /// [`on_trip_held`](Self::on_trip_held) for the event. Default: off.
    #[must_use]
    pub fn max_open_fraction(mut self, fraction: f64) -> Self {
        self.max_open_fraction = Some(fraction);
        self
    }

    /// Calls `f` for every trip the [panic valve](Self::max_open_fraction) holds back.
    #[must_use]
    pub fn on_trip_held(mut self, f: impl Fn(&TripHeld<'_>) + Send + Sync + 'static) -> Self {
        self.on_trip_held.push(Arc::new(f));
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
        if let Some(f) = self.max_open_fraction
            && !(f > 0.0 && f < 1.0)
        {
            return Err(ConfigError::new(
                "max_open_fraction",
                f,
                "a share above 0.0 and below 1.0 (leave it unset for no panic valve)",
            ));
        }
        let stamps = Stamps::new(self.template.build_valid().clock());
        let places = Arc::new(AtomicUsize::new(0));
        let template = match self.max_open_fraction {
            Some(f) => self.template.with_valve(Arc::new(Valve::new(f, places.clone(), self.on_trip_held))),
            None => self.template,
        };
        Ok(BreakerBox {
            inner: Arc::new(Family {
                shadow: AtomicBool::new(template.is_shadow()),
                template,
                map: papaya::HashMap::builder().hasher(ahash::RandomState::new()).build(),
                places,
                order: Order::new(),
                next_id: AtomicU64::new(0),
                stamps,
                max: self.max,
                idle: self.idle,
                departures: AtomicU64::new(0),
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
        BreakerBoxBuilder {
            template,
            max: 10_000,
            idle: None,
            max_open_fraction: None,
            on_trip_held: Vec::new(),
            _key: PhantomData,
        }
    }
}

impl<K> BreakerBox<K>
where
    K: Hash + Eq + Clone + fmt::Display,
{
    /// How many breakers the family holds.
    pub fn len(&self) -> usize {
        self.inner.map.len()
    }

    /// Whether the family holds no breaker.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs `f` on the breaker for `key`, created from the template on first use. The
    /// breaker is borrowed from the family: no handle is cloned.
    ///
    /// # Examples
    ///
    /// ```
    /// use breakerbox::{Breaker, BreakerBox};
    ///
    /// let hosts: BreakerBox<String> = BreakerBox::new(Breaker::builder())?;
    /// let open = hosts.with_breaker("api.example:443", |b| b.is_open());
    /// assert!(!open);
    /// # Ok::<(), breakerbox::ConfigError>(())
    /// ```
    #[inline]
    pub fn with_breaker<Q, R>(&self, key: &Q, f: impl FnOnce(&Breaker) -> R) -> R
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let family = &*self.inner;
        let guard = family.map.guard();
        let member = match family.map.get(key, &guard) {
            Some(member) => {
                family.touch(member);
                member
            }
            None => family.insert(key, &guard),
        };
        f(&member.breaker)
    }

    /// Calls `f` through the breaker for `key` (see [`Breaker::call`]).
    ///
    /// # Errors
    ///
    /// As [`Breaker::call`].
    #[inline]
    pub fn call<Q, T, E, F>(&self, key: &Q, f: F) -> Result<T, Error<E>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        F: FnOnce() -> Result<T, E>,
    {
        self.with_breaker(key, |b| b.call(f))
    }

    /// Calls `f` through the breaker for `key`, classified by `classify` (see
    /// [`Breaker::call_with`]).
    ///
    /// # Errors
    ///
    /// As [`Breaker::call`].
    #[inline]
    pub fn call_with<Q, T, E, F, C, R>(&self, key: &Q, classify: C, f: F) -> Result<T, Error<E>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        F: FnOnce() -> Result<T, E>,
        C: FnOnce(&Result<T, E>) -> R,
        R: Into<Report>,
    {
        self.with_breaker(key, |b| b.call_with(classify, f))
    }

    /// A permit from the breaker for `key` that a `'static` future can hold (see
    /// [`Breaker::try_acquire_owned`]): what async code and services use.
    ///
    /// # Errors
    ///
    /// [`Rejected`] as [`Breaker::try_acquire`].
    #[inline]
    pub fn try_acquire_owned<Q>(&self, key: &Q) -> Result<OwnedPermit, Rejected>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.with_breaker(key, Breaker::try_acquire_owned)
    }

    /// A handle to the breaker for `key`, created from the template on first use. To
    /// make a call, [`call`](Self::call) or [`with_breaker`](Self::with_breaker) save
    /// the handle's reference count.
    pub fn get<Q>(&self, key: &Q) -> Breaker
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.with_breaker(key, Breaker::clone)
    }

    /// The breaker for `key`, if the family has one.
    pub fn get_existing<Q>(&self, key: &Q) -> Option<Breaker>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.map.pin().get(key).map(|m| m.breaker.clone())
    }

    /// Removes the breaker for `key`; returns it if there was one.
    pub fn remove<Q>(&self, key: &Q) -> Option<Breaker>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let family = &*self.inner;
        let guard = family.map.guard();
        let removed = family.map.remove(key, &guard)?;
        removed.breaker.leave_family();
        family.departures.fetch_add(1, Ordering::Release);
        family.places.fetch_sub(1, Ordering::AcqRel);
        Some(removed.breaker.clone())
    }

    /// How many breakers have left the family since it was built: removed by
    /// [`remove`](Self::remove), evicted at the bound, or by
    /// [`retain_recent`](Self::retain_recent).
    ///
    /// While it has not changed, a handle from [`get`](Self::get) is still the family's
    /// breaker for its key (a key's breaker is replaced only after it has left): an
    /// adapter that remembers the last key it looked up with its handle (a per-host
    /// service whose requests mostly go to one host) checks this one load, shared and
    /// rarely written, instead of hashing and probing the key again. A change means
    /// only that some breaker left: look the key up again.
    ///
    /// # Examples
    ///
    /// ```
    /// use breakerbox::{Breaker, BreakerBox};
    ///
    /// let hosts: BreakerBox<String> = BreakerBox::new(Breaker::builder())?;
    /// let (a, seen) = (hosts.get("a.example:443"), hosts.departures());
    /// hosts.get("b.example:443");
    /// assert_eq!(hosts.departures(), seen); // `a` is still the breaker of its key
    /// hosts.remove("a.example:443");
    /// assert_ne!(hosts.departures(), seen); // look it up again: a new breaker
    /// assert!(!hosts.get("a.example:443").same_as(&a));
    /// # Ok::<(), breakerbox::ConfigError>(())
    /// ```
    #[inline]
    pub fn departures(&self) -> u64 {
        self.inner.departures.load(Ordering::Acquire)
    }

    /// Calls `f` with every key and its breaker, in no particular order, cloning
    /// nothing. Breakers added or removed meanwhile may or may not be seen.
    pub fn for_each(&self, mut f: impl FnMut(&K, &Breaker)) {
        for (key, member) in self.inner.map.pin().iter() {
            f(key, &member.breaker);
        }
    }

    /// The keys whose breakers are open (or forced open), like a status page would list.
    pub fn open_keys(&self) -> Vec<K> {
        let mut open = Vec::new();
        self.for_each(|k, b| {
            if b.is_open() {
                open.push(k.clone());
            }
        });
        open
    }

    /// Resets every breaker of the family (see [`Breaker::reset`]).
    pub fn reset_all(&self) {
        self.for_each(|_, b| b.reset());
    }

    /// Switches [shadow mode](BreakerBuilder::shadow) on or off for every breaker of the
    /// family, and for the breakers it makes from now on: try a configuration on all of
    /// a client's hosts at once.
    pub fn set_shadow(&self, on: bool) {
        let family = &self.inner;
        // Under the insertion lock: a breaker made meanwhile reads the new setting.
        let _insertions = family.order.lock();
        family.shadow.store(on, Ordering::Relaxed);
        self.for_each(|_, b| b.set_shadow(on));
    }

    /// Whether the family's breakers are made in shadow mode.
    pub fn is_shadow(&self) -> bool {
        self.inner.shadow.load(Ordering::Relaxed)
    }

    /// Every key with its breaker, in no particular order.
    pub fn entries(&self) -> Vec<(K, Breaker)> {
        let mut all = Vec::with_capacity(self.len());
        self.for_each(|k, b| all.push((k.clone(), b.clone())));
        all
    }

    /// The state of each breaker.
    pub fn states(&self) -> Vec<(K, State)> {
        let mut all = Vec::with_capacity(self.len());
        self.for_each(|k, b| all.push((k.clone(), b.state())));
        all
    }

    /// Evicts the evictable breakers (closed or half-open) not looked up within the idle
    /// timeout; returns how many were evicted. Without an idle timeout, evicts nothing.
    pub fn retain_recent(&self) -> usize {
        let family = &*self.inner;
        let Some(idle) = family.idle else { return 0 };
        let idle = crate::clock::nanos(idle);
        let now = family.stamps.now();
        let guard = family.map.guard();
        let is_idle = |m: &Member| now.saturating_sub(m.last_used.load(Ordering::Relaxed)) >= idle;
        let mut evicted = 0;
        for (key, member) in family.map.iter(&guard) {
            if is_idle(member) && evictable(&member.breaker) && family.remove_member(key, member.id, &guard) {
                family.places.fetch_sub(1, Ordering::AcqRel);
                evicted += 1;
            }
        }
        evicted
    }
}

impl<K> Family<K>
where
    K: Hash + Eq + Clone + fmt::Display,
{
    /// Stamps a hit, writing only when the tick has moved since the last one.
    #[inline(always)]
    fn touch(&self, member: &Member) {
        let now = self.stamps.now();
        if member.last_used.load(Ordering::Relaxed) != now {
            member.last_used.store(now, Ordering::Relaxed);
        }
    }

    /// A first use. Under the insertion lock: the key again (another first use may
    /// have inserted it), a place (evicting to make one in a full family), the insert.
    #[cold]
    #[inline(never)]
    fn insert<'g, Q>(&self, key: &Q, guard: &'g LocalGuard<'_>) -> &'g Member
    where
        K: Borrow<Q> + 'g,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let mut queue = self.order.lock();
        if let Some(member) = self.map.get(key, guard) {
            self.touch(member);
            return member;
        }
        // Built before a place is taken: a panicking template leaves the count as it was.
        let key = key.to_owned();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let member = Member {
            breaker: self.template.with_name(format!("{}/{key}", self.template.template_name()).into()).build_valid(),
            last_used: AtomicU64::new(self.stamps.now()),
            id,
        };
        member.breaker.set_shadow(self.shadow.load(Ordering::Relaxed));
        if self.places.load(Ordering::Acquire) < self.max {
            self.places.fetch_add(1, Ordering::AcqRel);
        } else if self.evict_one(&mut queue, guard) {
            // The evicted breaker's place is the new one's. Past the bound, one more
            // eviction shrinks the family back towards it.
            if self.places.load(Ordering::Acquire) > self.max && self.evict_one(&mut queue, guard) {
                self.places.fetch_sub(1, Ordering::AcqRel);
            }
        } else {
            // Nothing in the sample can be evicted: one place past the bound.
            self.places.fetch_add(1, Ordering::AcqRel);
        }
        // `try_insert`, built eagerly, not `try_insert_with`: papaya's closure form goes
        // through its `compute` path, and a map filled that way read at about half the
        // speed in the `family_hit` bench (its probe loop ran longer).
        match self.map.try_insert(key.clone(), member, guard) {
            Ok(member) => {
                let live = self.places.load(Ordering::Relaxed);
                queue.push(key, id, live, |k, id| self.map.get(k, guard).is_some_and(|m| m.id == id));
                member
            }
            // Unreachable while every insertion holds the lock; kept total.
            Err(occupied) => {
                self.places.fetch_sub(1, Ordering::AcqRel);
                occupied.current
            }
        }
    }

    /// Evicts the least recently used evictable breaker among the next sample in
    /// eviction order, keeping its place taken. Returns whether one was evicted.
    fn evict_one(&self, queue: &mut Queue<K>, guard: &LocalGuard<'_>) -> bool {
        queue.evict_one(
            |key, id| {
                let member = self.map.get(key, guard).filter(|m| m.id == id)?;
                Some(Candidate {
                    last_used: member.last_used.load(Ordering::Relaxed),
                    evictable: evictable(&member.breaker),
                })
            },
            |key, id| self.remove_member(key, id, guard),
        )
    }

    /// Removes `key` if it is still the member `id` and still evictable (it may have
    /// opened since it was chosen).
    fn remove_member(&self, key: &K, id: u64, guard: &LocalGuard<'_>) -> bool {
        match self.map.remove_if(key, |_, m| m.id == id && evictable(&m.breaker), guard) {
            Ok(Some((_, member))) => {
                member.breaker.leave_family();
                self.departures.fetch_add(1, Ordering::Release);
                true
            }
            Ok(None) | Err(_) => false,
        }
    }
}

/// Closed or half-open: nothing lost by forgetting it.
fn evictable(b: &Breaker) -> bool {
    matches!(b.state(), State::Closed | State::HalfOpen)
}
