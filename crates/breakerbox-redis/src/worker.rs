//! The background task: pushes counts and votes, asks for probe leases, applies the
//! fleet's decisions to the local breakers, and degrades to local decisions when Redis
//! cannot be reached.
//!
//! Everything here runs on one tokio task (plus one for pub/sub), never on a call. The
//! breakers are driven only through their public API: `metrics()` (read), `open_for()`
//! and `close()` (whose transitions carry `Reason::External`, so the listener does not
//! echo them back), and `state()`.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use breakerbox::{Breaker, Reason, State};
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};

use crate::fleet::{FleetView, Shared};
use crate::script::{Code, Keys, Scripts, Snapshot, channel};
use crate::telemetry::Telemetry;
use crate::{FleetError, FleetEvent, WhenUnreachable};

/// A state change of a watched breaker, sent by the listener `Fleet::attach` adds.
#[derive(Debug)]
pub(crate) struct LocalTransition {
    pub(crate) breaker: String,
    pub(crate) to: State,
    pub(crate) reason: Reason,
    pub(crate) open_for: Option<Duration>,
    /// When the listener ran (just after the transition was published).
    pub(crate) at: std::time::Instant,
}

pub(crate) type Members = Box<dyn Fn() -> Vec<Breaker> + Send + Sync>;

pub(crate) enum Command {
    Watch(Breaker),
    WatchFamily(Members),
    Sync(oneshot::Sender<Result<(), FleetError>>),
}

/// From the pub/sub task.
#[derive(Debug)]
enum Push {
    Message(String),
    /// (Re)subscribed: messages may have been missed, refresh everything.
    Subscribed,
}

/// A store operation on one breaker.
#[derive(Clone, Copy, Debug)]
enum Op {
    State,
    Report { calls: u64, failures: u64, vote: i8, wait: Duration, restore: Duration },
    Probe,
    ProbeResult { lease: u64, ok: bool, wait: Duration },
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Self::State => "state",
            Self::Report { .. } => "report",
            Self::Probe => "probe",
            Self::ProbeResult { .. } => "probe_result",
        }
    }
}

/// The fleet's state of a breaker, as this replica last applied it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fleetwide {
    Unknown,
    Closed,
    /// Open until this local instant (Redis's remaining time, turned into a deadline here).
    Open(Instant),
}

struct Member {
    breaker: Breaker,
    keys: Keys,
    /// Calls (successes + failures) and failures already reported.
    sent: (u64, u64),
    /// The incarnation and epoch last applied.
    known: Option<(String, u64)>,
    /// Apply the next snapshot even if its epoch is the one applied (after rejoining).
    force: bool,
    fleet: Fleetwide,
    /// The breaker is open because the fleet said so (not by its own policy).
    held: bool,
    /// Until when the breaker's current hold (`open_for`) lasts.
    hold_until: Option<Instant>,
    /// The probe lease this replica holds: id and local expiry.
    lease: Option<(u64, Instant)>,
    /// Another replica's lease, until this instant.
    other_lease: Option<Instant>,
    /// The breaker opened on its own policy: this replica votes to open the fleet.
    own_open: bool,
    own_wait: Duration,
    /// A vote withdrawal to send (the breaker closed on its own).
    withdraw: bool,
    /// When to look at this member again (probe time, lease expiry).
    next: Option<Instant>,
    /// A probe request is on its way.
    probing: bool,
    /// Found through a watched family (and dropped when the family evicts it).
    family: bool,
    /// When the fleet last changed the breaker (`open_for`, `close`): a local transition
    /// from before that was overridden by it.
    acted_at: Option<std::time::Instant>,
}

impl Member {
    fn new(breaker: Breaker, keys: Keys, family: bool) -> Self {
        Self {
            // The first report counts every call since the breaker was built.
            sent: (0, 0),
            breaker,
            keys,
            known: None,
            force: false,
            fleet: Fleetwide::Unknown,
            held: false,
            hold_until: None,
            lease: None,
            other_lease: None,
            own_open: false,
            own_wait: Duration::ZERO,
            withdraw: false,
            next: None,
            probing: false,
            family,
            acted_at: None,
        }
    }

    /// Opens the breaker for the fleet, or moves the end of its hold: holding an open
    /// breaker again counts no new opening, so its own exponential wait does not grow.
    fn open_for(&mut self, wait: Duration) {
        self.breaker.hold_open(wait);
        self.acted_at = Some(std::time::Instant::now());
    }

    /// Closes the breaker for the fleet.
    fn close(&mut self) {
        self.breaker.close();
        self.acted_at = Some(std::time::Instant::now());
    }

    /// A breaker forced open or disabled by hand is left alone by the fleet.
    fn manual(&self) -> bool {
        matches!(self.breaker.state(), State::ForcedOpen | State::Disabled)
    }

    /// The counts since the last report, and the vote to send.
    fn report(&self) -> Option<Op> {
        let m = self.breaker.metrics();
        let calls = (m.successes + m.failures).saturating_sub(self.sent.0);
        let failures = m.failures.saturating_sub(self.sent.1);
        let vote = if self.own_open {
            1
        } else if self.withdraw {
            -1
        } else {
            0
        };
        (calls > 0 || vote != 0).then_some(Op::Report {
            calls,
            failures,
            vote,
            wait: self.own_wait,
            restore: Duration::ZERO,
        })
    }

    fn view(&self) -> FleetView {
        let (state, epoch) = match (self.fleet, &self.known) {
            (Fleetwide::Open(until), Some((_, e))) => {
                (if Instant::now() >= until { State::HalfOpen } else { State::Open }, *e)
            }
            (_, Some((_, e))) => (State::Closed, *e),
            (_, None) => (State::Closed, 0),
        };
        FleetView { state, epoch, held: self.held, probing: self.lease.is_some() }
    }
}

pub(crate) struct Worker {
    shared: Arc<Shared>,
    telemetry: Telemetry,
    client: redis::Client,
    con: Option<ConnectionManager>,
    scripts: Scripts,
    channel: String,
    token: String,
    members: HashMap<String, Member>,
    families: Vec<Members>,
    local_rx: mpsc::UnboundedReceiver<LocalTransition>,
    cmd_rx: mpsc::UnboundedReceiver<Command>,
    push_rx: mpsc::UnboundedReceiver<Push>,
    /// Since when Redis has been unreachable.
    degraded: Option<Instant>,
    retry_at: Instant,
    backoff: Duration,
    last_refresh: Instant,
    /// Refresh every breaker at the next tick (pushes may have been missed).
    refresh_now: bool,
    /// Operations to send after the current step.
    queue: Vec<(String, Op)>,
}

impl Worker {
    pub(crate) fn new(
        shared: Arc<Shared>,
        client: redis::Client,
        local_rx: mpsc::UnboundedReceiver<LocalTransition>,
        cmd_rx: mpsc::UnboundedReceiver<Command>,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let c = &shared.config;
        let channel = channel(&c.key_prefix, &c.service);
        let (push_tx, push_rx) = mpsc::unbounded_channel();
        let pubsub =
            pubsub(client.clone(), channel.clone(), push_tx, c.sync_interval, c.refresh_interval, c.operation_timeout);
        let now = Instant::now();
        let worker = Self {
            telemetry: Telemetry::new(&c.service),
            backoff: c.sync_interval,
            shared,
            client,
            con: None,
            scripts: Scripts::new(),
            channel,
            token: format!("{:016x}", random()),
            members: HashMap::new(),
            families: Vec::new(),
            local_rx,
            cmd_rx,
            push_rx,
            degraded: None,
            retry_at: now,
            last_refresh: now,
            refresh_now: false,
            queue: Vec::new(),
        };
        (worker, pubsub)
    }

    fn margin(&self) -> Duration {
        let c = &self.shared.config;
        c.sync_interval + 2 * c.operation_timeout
    }

    pub(crate) async fn run(mut self) {
        let mut tick = tokio::time::interval(self.shared.config.sync_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let wake = self.next_wake();
            tokio::select! {
                biased;
                Some(t) = self.local_rx.recv() => self.on_local(t),
                Some(p) = self.push_rx.recv() => self.on_push(p),
                Some(c) = self.cmd_rx.recv() => self.on_command(c).await,
                _ = tick.tick() => self.on_tick().await,
                _ = tokio::time::sleep_until(wake) => self.on_timers(),
            }
            let _ = self.flush().await;
        }
    }

    fn next_wake(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        if self.degraded.is_some() {
            return far;
        }
        self.members.values().filter_map(|m| m.next).min().unwrap_or(far)
    }

    // ===== inputs =====

    fn on_local(&mut self, t: LocalTransition) {
        if !self.members.contains_key(&t.breaker) {
            self.refresh_families();
        }
        let now = Instant::now();
        let degraded = self.degraded.is_some();
        let Some(m) = self.members.get_mut(&t.breaker) else { return };
        if m.acted_at.is_some_and(|a| t.at < a) {
            // The fleet changed the breaker since: this transition no longer stands
            // (a trip racing the fleet's own open, a verdict overtaken by a new epoch).
            return;
        }
        let wait = t.open_for.unwrap_or_default();
        let mut op = None;
        match (t.to, t.reason) {
            (State::Open, Reason::Tripped) => {
                (m.own_open, m.own_wait, m.held, m.hold_until, m.lease) = (true, wait, false, None, None);
                op = m.report();
            }
            (State::Open, Reason::ProbeFailed) => {
                if let Some((lease, _)) = m.lease.take() {
                    op = Some(Op::ProbeResult { lease, ok: false, wait });
                    (m.hold_until, m.next) = (Some(now + wait), Some(now + wait));
                } else if m.held && !degraded {
                    // A probe without the lease: the hold lapsed. Hold again.
                    m.next = Some(now);
                } else {
                    (m.own_open, m.own_wait, m.held) = (true, wait, false);
                    op = m.report();
                }
            }
            (State::Closed, Reason::ProbesSucceeded) => {
                if let Some((lease, _)) = m.lease.take() {
                    op = Some(Op::ProbeResult { lease, ok: true, wait: Duration::ZERO });
                    (m.held, m.hold_until) = (false, None);
                } else if m.held && !degraded {
                    m.next = Some(now);
                } else {
                    m.withdraw = m.own_open;
                    m.own_open = false;
                    op = m.report();
                }
            }
            (State::HalfOpen, _) if m.held && m.lease.is_none() && !degraded => {
                // The hold lapsed before it was extended: hold again at once.
                (m.hold_until, m.next) = (None, Some(now));
            }
            (State::Closed | State::ForcedOpen | State::Disabled, _) => {
                // Reset, forced open or disabled by hand: the fleet no longer holds it.
                m.withdraw = m.own_open;
                (m.own_open, m.held, m.hold_until, m.lease) = (false, false, None, None);
                op = m.report();
            }
            _ => {}
        }
        if let Some(op) = op
            && !degraded
        {
            self.queue.push((t.breaker, op));
        }
    }

    fn on_push(&mut self, p: Push) {
        match p {
            Push::Message(payload) => {
                if let Some((name, snap)) = Snapshot::from_push(&payload)
                    && self.members.contains_key(&name)
                    && self.degraded.is_none()
                {
                    self.observe(&name, snap, Instant::now(), true);
                }
            }
            // Messages may have been lost while unsubscribed: refresh everything soon.
            Push::Subscribed => self.refresh_now = true,
        }
    }

    async fn on_command(&mut self, c: Command) {
        match c {
            Command::Watch(b) => self.add(b, false),
            Command::WatchFamily(f) => {
                self.families.push(f);
                self.refresh_families();
            }
            Command::Sync(reply) => {
                self.refresh_families();
                let result = if self.degraded.is_some() { self.try_rejoin().await } else { self.sync_all().await };
                let _ = reply.send(result);
            }
        }
    }

    async fn on_tick(&mut self) {
        let now = Instant::now();
        self.telemetry.lag(self.shared.status().last_ok.map_or(Duration::ZERO, |t| t.elapsed()));
        if self.degraded.is_some() {
            self.extend_fail_closed(now);
            if now >= self.retry_at {
                let _ = self.try_rejoin().await;
            }
            return;
        }
        self.refresh_families();
        let full = self.refresh_now || now >= self.last_refresh + self.shared.config.refresh_interval;
        if full {
            (self.last_refresh, self.refresh_now) = (now, false);
        }
        let ops: Vec<(String, Op)> = self
            .members
            .iter()
            .filter_map(|(name, m)| {
                // Counts and votes when there are some (the reply carries the state);
                // otherwise a read, for every breaker each refresh (pushes can be lost).
                let op = m.report().or_else(|| (full || m.fleet == Fleetwide::Unknown).then_some(Op::State))?;
                Some((name.clone(), op))
            })
            .collect();
        let _ = self.send(ops).await;
    }

    fn on_timers(&mut self) {
        let now = Instant::now();
        let due: Vec<String> =
            self.members.iter().filter(|(_, m)| m.next.is_some_and(|t| t <= now)).map(|(n, _)| n.clone()).collect();
        for name in due {
            self.drive(&name, now);
        }
    }

    // ===== members =====

    fn add(&mut self, breaker: Breaker, family: bool) {
        let name = breaker.name().to_owned();
        if self.members.contains_key(&name) {
            return;
        }
        let c = &self.shared.config;
        let keys = Keys::new(&c.key_prefix, &c.service, &name);
        let mut m = Member::new(breaker, keys, family);
        if self.degraded.is_some() && c.when_unreachable == WhenUnreachable::Open && !m.manual() {
            // Fail closed for breakers that arrive while the fleet is unreachable too.
            let hold_for = 2 * c.refresh_interval;
            m.open_for(hold_for);
            (m.held, m.hold_until, m.force) = (true, Some(Instant::now() + hold_for), true);
        }
        self.members.insert(name.clone(), m);
        self.shared
            .status()
            .views
            .insert(name.clone(), FleetView { state: State::Closed, epoch: 0, held: false, probing: false });
        if self.degraded.is_none() {
            self.queue.push((name, Op::State));
        }
    }

    fn refresh_families(&mut self) {
        if self.families.is_empty() {
            return;
        }
        let mut current = Vec::new();
        for f in &self.families {
            current.extend(f());
        }
        let names: std::collections::HashSet<String> = current.iter().map(|b| b.name().to_owned()).collect();
        for b in current {
            if !self.members.get(b.name()).is_some_and(|m| m.breaker.same_as(&b)) {
                self.members.remove(b.name());
                self.add(b, true);
            }
        }
        let evicted: Vec<String> =
            self.members.iter().filter(|(n, m)| m.family && !names.contains(*n)).map(|(n, _)| n.clone()).collect();
        for n in evicted {
            self.members.remove(&n);
            self.shared.status().views.remove(&n);
        }
    }

    // ===== the fleet's state, applied =====

    /// Applies a snapshot from a script's reply or a push. Only a reply can reveal a
    /// data loss: a push from another incarnation is ignored.
    fn observe(&mut self, name: &str, snap: Snapshot, now: Instant, push: bool) {
        let margin = self.margin();
        let Some(m) = self.members.get_mut(name) else { return };
        let mut events = Vec::new();
        if let Some((inc, epoch)) = &m.known {
            if *inc != snap.inc && push {
                return;
            } else if *inc != snap.inc {
                // Redis lost this breaker's keys: re-push what this replica knows.
                events.push(FleetEvent::DataLost { breaker: name.to_owned() });
                if let (Fleetwide::Open(until), false) = (m.fleet, m.breaker.is_closed()) {
                    // Keep holding, and restore the fleet's open state with what is left
                    // of it; the reply (or another replica's restore) is applied then.
                    let restore = until.saturating_duration_since(now).max(Duration::from_millis(1));
                    m.known = Some((snap.inc, snap.epoch));
                    m.force = true;
                    self.queue.push((
                        name.to_owned(),
                        Op::Report { calls: 0, failures: 0, vote: 0, wait: Duration::ZERO, restore },
                    ));
                    self.emit(events);
                    return;
                }
            } else if snap.epoch < *epoch {
                events.push(FleetEvent::StaleIgnored { breaker: name.to_owned(), epoch: snap.epoch, current: *epoch });
                self.emit(events);
                return;
            } else if snap.epoch == *epoch && !m.force {
                return;
            }
        }
        m.known = Some((snap.inc.clone(), snap.epoch));
        m.force = false;
        m.other_lease = None;
        m.lease = None;
        m.probing = false;
        match snap.code {
            Code::Closed => {
                let was_open = matches!(m.fleet, Fleetwide::Open(_));
                m.fleet = Fleetwide::Closed;
                m.next = None;
                if m.held && !m.manual() {
                    m.close();
                }
                if m.held || was_open {
                    events.push(FleetEvent::Closed { breaker: name.to_owned(), epoch: snap.epoch });
                }
                (m.held, m.hold_until) = (false, None);
            }
            Code::Open | Code::HalfOpen => {
                let until = now + snap.remaining;
                m.fleet = Fleetwide::Open(until);
                (m.own_open, m.withdraw) = (false, false);
                if !m.manual() {
                    hold(m, until + margin, now);
                }
                m.next = Some(until);
                events.push(FleetEvent::Opened {
                    breaker: name.to_owned(),
                    epoch: snap.epoch,
                    remaining: snap.remaining,
                });
            }
        }
        let view = m.view();
        self.shared.status().views.insert(name.to_owned(), view);
        self.emit(events);
    }

    /// Acts on a member whose timer is due: asks for the probe lease when the fleet's
    /// wait has passed, keeps the breaker held meanwhile, drops an expired lease.
    fn drive(&mut self, name: &str, now: Instant) {
        let margin = self.margin();
        let Some(m) = self.members.get_mut(name) else { return };
        m.next = None;
        let Fleetwide::Open(until) = m.fleet else { return };
        if m.manual() {
            return;
        }
        if let Some((_, expires)) = m.lease {
            if now < expires {
                m.next = Some(expires);
                return;
            }
            // The lease ran out without a verdict: stop probing, ask again.
            m.lease = None;
            hold(m, now + margin, now);
        }
        if now < until {
            hold(m, until + margin, now);
            m.next = Some(until);
        } else if let Some(other) = m.other_lease.filter(|t| now < *t) {
            hold(m, other + margin, now);
            m.next = Some(other);
        } else if !m.probing {
            hold(m, now + margin, now);
            m.probing = true;
            m.next = Some(now + margin);
            self.queue.push((name.to_owned(), Op::Probe));
        }
        let view = m.view();
        self.shared.status().views.insert(name.to_owned(), view);
    }

    /// After a probe request: the lease, or who else holds it.
    fn on_probe_reply(&mut self, name: &str, snap: &Snapshot, now: Instant) {
        let Some(m) = self.members.get_mut(name) else { return };
        m.probing = false;
        if m.known.as_ref().is_none_or(|(inc, e)| *inc != snap.inc || *e != snap.epoch) {
            return; // a different state was applied meanwhile
        }
        if snap.granted {
            m.lease = Some((snap.lease_id, now + snap.lease_left));
            m.held = true;
            m.hold_until = Some(now);
            m.next = Some(now + snap.lease_left);
            if !m.manual() {
                // Half-open at the next call: this replica probes for the fleet.
                m.open_for(Duration::ZERO);
            }
            let epoch = snap.epoch;
            let view = m.view();
            let mut s = self.shared.status();
            s.probe_leases += 1;
            s.views.insert(name.to_owned(), view);
            drop(s);
            self.emit(vec![FleetEvent::ProbeLease { breaker: name.to_owned(), epoch }]);
        } else {
            match snap.code {
                Code::HalfOpen if snap.lease_id > 0 => m.other_lease = Some(now + snap.lease_left),
                Code::Open => m.fleet = Fleetwide::Open(now + snap.remaining),
                _ => {}
            }
            m.next = Some(now);
        }
    }

    // ===== talking to Redis =====

    /// Sends the queued operations (and those their replies queue), a few rounds at most.
    async fn flush(&mut self) -> Result<(), FleetError> {
        for _ in 0..4 {
            if self.queue.is_empty() || self.degraded.is_some() {
                self.queue.clear();
                break;
            }
            let ops = std::mem::take(&mut self.queue);
            self.send(ops).await?;
        }
        Ok(())
    }

    /// Every member, now: counts and votes where there are some, a read elsewhere.
    async fn sync_all(&mut self) -> Result<(), FleetError> {
        let ops = self.members.iter().map(|(n, m)| (n.clone(), m.report().unwrap_or(Op::State))).collect();
        self.send(ops).await?;
        self.flush().await
    }

    /// Sends operations concurrently on the multiplexed connection, then applies the
    /// replies in order. Any failure degrades the fleet.
    async fn send(&mut self, ops: Vec<(String, Op)>) -> Result<(), FleetError> {
        if ops.is_empty() {
            return Ok(());
        }
        let con = self.connection()?;
        let ops: Vec<(String, Op)> = ops.into_iter().filter(|(n, _)| self.members.contains_key(n)).collect();
        let started = Instant::now();
        let calls = ops.iter().map(|(name, op)| self.invoke(con.clone(), name, &self.members[name], *op));
        let replies = futures_util::future::join_all(calls).await;
        let took = started.elapsed();
        let now = Instant::now();
        let mut first_error = None;
        for ((name, op), reply) in ops.iter().zip(replies) {
            match reply {
                Ok(snap) => {
                    if let Op::Report { calls, failures, .. } = op
                        && let Some(m) = self.members.get_mut(name)
                    {
                        // Counts the script refused for an older epoch are dropped; those
                        // refused because Redis lost its data are sent again.
                        let lost = m.known.as_ref().is_some_and(|(inc, _)| *inc != snap.inc);
                        if snap.granted || !lost {
                            m.sent = (m.sent.0 + calls, m.sent.1 + failures);
                            m.withdraw = false;
                        }
                    }
                    let probe = matches!(op, Op::Probe);
                    self.observe(name, snap.clone(), now, false);
                    if probe {
                        self.on_probe_reply(name, &snap, now);
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let op = ops.first().map_or("state", |(_, op)| op.name());
        self.telemetry.ops(op, ops.len(), first_error.is_none(), took);
        {
            let mut s = self.shared.status();
            s.ops += ops.len() as u64;
            if first_error.is_none() {
                s.last_ok = Some(now.into_std());
            } else {
                s.errors += 1;
            }
        }
        match first_error {
            None => {
                self.joined();
                Ok(())
            }
            Some(e) => {
                self.degrade(&e, now);
                Err(e)
            }
        }
    }

    fn invoke<'a>(
        &'a self,
        mut con: ConnectionManager,
        name: &'a str,
        m: &'a Member,
        op: Op,
    ) -> impl Future<Output = Result<Snapshot, FleetError>> + 'a {
        let c = &self.shared.config;
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let script = match op {
            Op::State => &self.scripts.state,
            Op::Report { .. } => &self.scripts.report,
            Op::Probe => &self.scripts.probe,
            Op::ProbeResult { .. } => &self.scripts.probe_result,
        };
        async move {
            let (inc, epoch) = m.known.clone().unwrap_or_default();
            let mut inv = script.prepare_invoke();
            inv.key(&m.keys.state).key(&m.keys.votes).key(&m.keys.counts);
            // A fresh token per call: the incarnation stamped if this call creates the state.
            inv.arg(format!("{}{:08x}", self.token, random() as u32))
                .arg(ms(c.key_ttl))
                .arg(ms(c.window))
                .arg(&self.channel)
                .arg(name)
                .arg(inc)
                .arg(epoch)
                .arg(&self.shared.replica);
            match op {
                Op::State => {}
                Op::Report { calls, failures, vote, wait, restore } => {
                    inv.arg(calls)
                        .arg(failures)
                        .arg(vote)
                        .arg(ms(wait))
                        .arg(c.min_replicas)
                        .arg(c.min_calls)
                        .arg(ms(restore));
                }
                Op::Probe => {
                    inv.arg(ms(c.probe_lease));
                }
                Op::ProbeResult { lease, ok, wait } => {
                    inv.arg(lease).arg(u8::from(ok)).arg(ms(wait));
                }
            }
            let timeout = c.operation_timeout;
            match tokio::time::timeout(timeout, inv.invoke_async(&mut con)).await {
                Ok(Ok(raw)) => Ok(Snapshot::from_raw(raw)),
                Ok(Err(e)) => Err(FleetError::Store(e)),
                Err(_) => Err(FleetError::Timeout(timeout)),
            }
        }
    }

    fn connection(&mut self) -> Result<ConnectionManager, FleetError> {
        if let Some(con) = &self.con {
            return Ok(con.clone());
        }
        let c = &self.shared.config;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(c.operation_timeout))
            .set_response_timeout(Some(c.operation_timeout))
            .set_number_of_retries(0);
        let con = ConnectionManager::new_lazy_with_config(self.client.clone(), config)?;
        self.con = Some(con.clone());
        Ok(con)
    }

    // ===== degrading and rejoining =====

    fn joined(&mut self) {
        let first = {
            let mut s = self.shared.status();
            let first = !s.joined;
            s.joined = true;
            first
        };
        if first {
            self.emit(vec![FleetEvent::Joined]);
        }
    }

    fn degrade(&mut self, error: &FleetError, now: Instant) {
        self.con = None;
        if self.degraded.is_some() {
            return;
        }
        self.degraded = Some(now);
        self.backoff = self.shared.config.sync_interval;
        self.retry_at = now + self.backoff;
        self.shared.status().degraded = true;
        let mode = self.shared.config.when_unreachable;
        for m in self.members.values_mut() {
            m.force = true;
            (m.next, m.probing, m.other_lease) = (None, false, None);
            if m.manual() {
                continue;
            }
            match mode {
                WhenUnreachable::Local => {
                    // Hand the breaker back to its own policy: what is left of the
                    // fleet's wait, then probes of its own.
                    if let (true, Fleetwide::Open(until), None) = (m.held, m.fleet, m.lease) {
                        m.open_for(until.saturating_duration_since(now));
                    }
                    (m.held, m.hold_until, m.lease) = (false, None, None);
                }
                WhenUnreachable::Open => {
                    m.lease = None;
                    let hold_for = 2 * self.shared.config.refresh_interval;
                    m.open_for(hold_for);
                    (m.held, m.hold_until) = (true, Some(now + hold_for));
                }
            }
        }
        self.emit(vec![FleetEvent::Degraded { reason: error.to_string(), when_unreachable: mode }]);
    }

    /// Fail-closed: keep every breaker held open while Redis is unreachable.
    fn extend_fail_closed(&mut self, now: Instant) {
        if self.shared.config.when_unreachable != WhenUnreachable::Open {
            return;
        }
        let refresh = self.shared.config.refresh_interval;
        for m in self.members.values_mut() {
            if m.held && !m.manual() && m.hold_until.is_none_or(|t| t < now + refresh) {
                m.open_for(2 * refresh);
                m.hold_until = Some(now + 2 * refresh);
            }
        }
    }

    /// Tries Redis again: reads every breaker's fleet state and reconciles (the fleet's
    /// newer state is adopted; a local open the fleet lacks is voted again).
    async fn try_rejoin(&mut self) -> Result<(), FleetError> {
        let Some(since) = self.degraded else { return self.sync_all().await };
        // Read first (still degraded: nothing else is sent); counts and votes follow.
        let ops: Vec<(String, Op)> = self.members.keys().map(|n| (n.clone(), Op::State)).collect();
        let result = if ops.is_empty() { self.ping().await } else { self.send(ops).await };
        match result {
            Ok(()) => {
                self.degraded = None;
                self.shared.status().degraded = false;
                self.last_refresh = Instant::now();
                self.emit(vec![FleetEvent::Rejoined { after: since.elapsed() }]);
                self.flush().await
            }
            Err(e) => {
                self.backoff = (self.backoff * 2).min(self.shared.config.refresh_interval);
                self.retry_at = Instant::now() + self.backoff;
                Err(e)
            }
        }
    }

    async fn ping(&mut self) -> Result<(), FleetError> {
        let mut con = self.connection()?;
        let timeout = self.shared.config.operation_timeout;
        let result = match tokio::time::timeout(timeout, redis::cmd("PING").query_async::<String>(&mut con)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(FleetError::Store(e)),
            Err(_) => Err(FleetError::Timeout(timeout)),
        };
        match &result {
            Ok(()) => {
                self.shared.status().last_ok = Some(std::time::Instant::now());
                self.joined();
            }
            Err(_) => self.con = None,
        }
        result
    }

    fn emit(&self, events: Vec<FleetEvent>) {
        for e in events {
            {
                let mut s = self.shared.status();
                match &e {
                    FleetEvent::Opened { .. } | FleetEvent::Closed { .. } => s.applied += 1,
                    FleetEvent::StaleIgnored { .. } => s.stale_ignored += 1,
                    FleetEvent::DataLost { .. } => s.data_losses += 1,
                    _ => {}
                }
            }
            self.telemetry.event(&e);
            for f in &self.shared.listeners {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&e)));
            }
        }
    }
}

/// Holds the breaker open until `until` (extending, never shortening, the current hold).
fn hold(m: &mut Member, until: Instant, now: Instant) {
    if m.held && m.hold_until.is_some_and(|t| t >= until) {
        return;
    }
    m.open_for(until.saturating_duration_since(now));
    (m.held, m.hold_until) = (true, Some(until));
}

/// Keeps one pub/sub connection subscribed to the service's channel, and forwards the
/// messages; reconnects with backoff.
async fn pubsub(
    client: redis::Client,
    channel: String,
    tx: mpsc::UnboundedSender<Push>,
    min: Duration,
    max: Duration,
    timeout: Duration,
) {
    let mut backoff = min;
    loop {
        let subscribe = async {
            let mut ps = client.get_async_pubsub().await?;
            ps.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(ps)
        };
        if let Ok(Ok(ps)) = tokio::time::timeout(timeout, subscribe).await {
            backoff = min;
            if tx.send(Push::Subscribed).is_err() {
                return;
            }
            let mut messages = ps.into_on_message();
            while let Some(msg) = messages.next().await {
                if let Ok(payload) = msg.get_payload::<String>()
                    && tx.send(Push::Message(payload)).is_err()
                {
                    return;
                }
            }
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(max);
    }
}

/// 64 random bits, from the standard library's randomly seeded hasher.
pub(crate) fn random() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    RandomState::new().hash_one((n, t, std::process::id()))
}
