//! The background task: its select loop, and the I/O that carries out what each
//! breaker's state machine decides.
//!
//! Everything here runs on one tokio task (plus one for pub/sub), never on a call. Each
//! input (a local transition, a push, a reply, a timer, a tick, an unreachable Redis)
//! is handed to the breaker's [`Member`], with the time and a [`Reading`] of the breaker;
//! the [`Effects`] it returns are carried out here: acts on the breaker through its public
//! API ([`hold_open`](Breaker::hold_open), [`close`](Breaker::close) and
//! [`recover`](Breaker::recover), whose transitions carry `Reason::External`, so the
//! listener does not echo them back), store
//! operations queued and sent to the Lua scripts, events emitted. The rules themselves
//! live in `member.rs`.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use breakerbox::Breaker;
use futures_util::StreamExt;
use tokio::sync::{Notify, mpsc};
use tokio::time::MissedTickBehavior;

use crate::connect::{Con, Connector, Target};
use crate::member::{Act, Effects, Member, Reading, Settings};
use crate::script::{Keys, Op, Scripts, Snapshot, channel};
use crate::shared::{Command, LocalTransition, Members, Shared, random};
use crate::telemetry::Telemetry;
use crate::{FleetError, FleetEvent};

/// How long, and how many, state changes of breakers not (yet) watched are kept for
/// [`Worker::add`]: a breaker watched and changed at once has its change read before its
/// `Watch` command (transitions are read first).
const EARLY_FOR: Duration = Duration::from_secs(5);
const EARLY_MAX: usize = 256;

/// From the pub/sub task.
#[derive(Debug)]
enum Push {
    Message(String),
    /// (Re)subscribed: messages may have been missed, refresh everything.
    Subscribed,
}

/// A watched breaker and its fleet state.
struct Watched {
    breaker: Breaker,
    keys: Keys,
    /// Found through a watched family (and dropped when the family evicts it).
    family: bool,
    member: Member,
}

impl Watched {
    fn reading(&self) -> Reading {
        let m = self.breaker.metrics();
        Reading {
            state: m.state,
            calls: m.successes + m.failures,
            failures: m.failures,
            shadow: self.breaker.is_shadow(),
        }
    }
}

pub(crate) struct Worker {
    shared: Arc<Shared>,
    settings: Settings,
    telemetry: Telemetry,
    connector: Connector,
    con: Option<Con>,
    /// Tells the pub/sub task to subscribe again: Redis moved (a new master).
    moved: Arc<Notify>,
    scripts: Scripts,
    channel: String,
    token: String,
    members: HashMap<String, Watched>,
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
    /// State changes of breakers not watched yet, for `add` (see [`EARLY_FOR`]).
    early: Vec<LocalTransition>,
}

impl Worker {
    pub(crate) fn new(
        shared: Arc<Shared>,
        target: &Target,
        local_rx: mpsc::UnboundedReceiver<LocalTransition>,
        cmd_rx: mpsc::UnboundedReceiver<Command>,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let c = &shared.config;
        let channel = channel(&c.key_prefix, &c.service);
        let (push_tx, push_rx) = mpsc::unbounded_channel();
        let moved = Arc::new(Notify::new());
        let pubsub = pubsub(
            target.connector(),
            Arc::clone(&moved),
            channel.clone(),
            push_tx,
            c.sync_interval,
            c.refresh_interval,
            c.operation_timeout,
        );
        let now = Instant::now();
        let worker = Self {
            settings: Settings::new(c),
            telemetry: Telemetry::new(&c.service),
            backoff: c.sync_interval,
            shared,
            connector: target.connector(),
            con: None,
            moved,
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
            early: Vec::new(),
        };
        (worker, pubsub)
    }

    pub(crate) async fn run(mut self) {
        let mut tick = tokio::time::interval(self.shared.config.sync_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let wake = tokio::time::Instant::from_std(self.next_wake());
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
        self.members.values().filter_map(|w| w.member.wake()).min().unwrap_or(far)
    }

    // ===== inputs =====

    fn on_local(&mut self, t: LocalTransition) {
        if !self.members.contains_key(&t.breaker) {
            self.refresh_families();
            if !self.members.contains_key(&t.breaker) {
                // Watched and changed at once: its `Watch` is still queued. Kept for `add`.
                self.early.retain(|e| e.at.elapsed() < EARLY_FOR);
                if self.early.len() < EARLY_MAX {
                    self.early.push(t);
                }
                return;
            }
        }
        let (now, degraded) = (Instant::now(), self.degraded.is_some());
        self.step(&t.breaker, now, |m, b| m.on_local(&t, now, degraded, b));
    }

    fn on_push(&mut self, p: Push) {
        match p {
            Push::Message(payload) => {
                if let Some((name, snap)) = Snapshot::from_push(&payload)
                    && self.degraded.is_none()
                {
                    let now = Instant::now();
                    self.step(&name, now, |m, b| m.on_push(&snap, now, b));
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
            self.step_all(now, |m, b| m.on_unreachable_tick(now, b));
            if now >= self.retry_at {
                let _ = self.try_rejoin().await;
            }
            return;
        }
        self.refresh_families();
        let full = self.refresh_now || now >= self.last_refresh + self.shared.config.refresh_interval;
        if full {
            (self.last_refresh, self.refresh_now) = (now, false);
            // A failover the old master has not noticed yet: follow the new master.
            let timeout = self.shared.config.operation_timeout;
            if self.con.is_some() && tokio::time::timeout(timeout, self.connector.moved()).await.unwrap_or(false) {
                self.con = None;
                self.moved.notify_one();
            }
        }
        let ops: Vec<(String, Op)> = self
            .members
            .iter()
            .filter_map(|(name, w)| {
                // Counts and votes when there are some (the reply carries the state);
                // otherwise a read, for every breaker each refresh (pushes can be lost).
                let op =
                    w.member.report(w.reading()).or_else(|| (full || w.member.needs_read()).then_some(Op::State))?;
                Some((name.clone(), op))
            })
            .collect();
        let _ = self.send(ops).await;
    }

    fn on_timers(&mut self) {
        let now = Instant::now();
        let due: Vec<String> = self
            .members
            .iter()
            .filter(|(_, w)| w.member.wake().is_some_and(|t| t <= now))
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            self.step(&name, now, |m, b| m.on_timer(now, b));
        }
    }

    // ===== carrying out a step =====

    /// Runs one input through a member's state machine and carries out its effects.
    fn step(&mut self, name: &str, now: Instant, input: impl FnOnce(&mut Member, Reading) -> Effects) {
        let Some(w) = self.members.get_mut(name) else { return };
        let reading = w.reading();
        let fx = input(&mut w.member, reading);
        for act in &fx.acts {
            match *act {
                // Holding an open breaker again counts no new opening, so its own
                // exponential wait does not grow.
                Act::HoldOpen(wait) => w.breaker.hold_open(wait),
                Act::Close => w.breaker.close(),
                // Into the fleet's recovery ramp, at the point Redis's clock says it is.
                Act::Recover(elapsed) => w.breaker.recover(elapsed),
            }
        }
        if !fx.acts.is_empty() {
            w.member.acted(Instant::now());
        }
        let view = w.member.view(now);
        self.shared.status().views.insert(name.to_owned(), view);
        self.queue.extend(fx.ops.into_iter().map(|op| (name.to_owned(), op)));
        self.emit(fx.events);
    }

    fn step_all(&mut self, now: Instant, input: impl Fn(&mut Member, Reading) -> Effects) {
        let names: Vec<String> = self.members.keys().cloned().collect();
        for name in names {
            self.step(&name, now, &input);
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
        let member = Member::new(name.clone(), self.settings);
        let now = Instant::now();
        self.shared.status().views.insert(name.clone(), member.view(now));
        self.members.insert(name.clone(), Watched { breaker, keys, family, member });
        if self.degraded.is_some() {
            // Fail closed for breakers that arrive while the fleet is unreachable too.
            self.step(&name, now, |m, b| m.on_degraded(now, b));
        } else {
            self.queue.push((name.clone(), Op::State));
        }
        // What it did before its `Watch` was read: a trip right after `watch` is a vote.
        if self.early.iter().any(|t| t.breaker == name) {
            let (mine, rest): (Vec<_>, Vec<_>) =
                std::mem::take(&mut self.early).into_iter().partition(|t| t.breaker == name);
            self.early = rest;
            for t in mine {
                self.on_local(t);
            }
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
        let names: HashSet<String> = current.iter().map(|b| b.name().to_owned()).collect();
        for b in current {
            if !self.members.get(b.name()).is_some_and(|w| w.breaker.same_as(&b)) {
                self.members.remove(b.name());
                self.add(b, true);
            }
        }
        let evicted: Vec<String> =
            self.members.iter().filter(|(n, w)| w.family && !names.contains(*n)).map(|(n, _)| n.clone()).collect();
        for n in evicted {
            self.members.remove(&n);
            self.shared.status().views.remove(&n);
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
        let ops =
            self.members.iter().map(|(n, w)| (n.clone(), w.member.report(w.reading()).unwrap_or(Op::State))).collect();
        self.send(ops).await?;
        self.flush().await
    }

    /// Sends operations concurrently on the multiplexed connection, then applies the
    /// replies in order. Any failure degrades the fleet.
    async fn send(&mut self, ops: Vec<(String, Op)>) -> Result<(), FleetError> {
        if ops.is_empty() {
            return Ok(());
        }
        let con = match self.connection().await {
            Ok(con) => con,
            Err(e) => {
                self.shared.status().errors += 1;
                self.degrade(&e, Instant::now());
                return Err(e);
            }
        };
        let ops: Vec<(String, Op)> = ops.into_iter().filter(|(n, _)| self.members.contains_key(n)).collect();
        let started = Instant::now();
        let calls = ops.iter().map(|(name, op)| self.invoke(con.clone(), name, &self.members[name], *op));
        let replies = futures_util::future::join_all(calls).await;
        let took = started.elapsed();
        let now = Instant::now();
        let mut first_error = None;
        for ((name, op), reply) in ops.iter().zip(replies) {
            match reply {
                Ok(snap) => self.step(name, now, |m, b| m.on_reply(op, &snap, now, b)),
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
                s.last_ok = Some(now);
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
        mut con: Con,
        name: &'a str,
        w: &'a Watched,
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
            let (inc, epoch) = w.member.seen();
            let mut inv = script.prepare_invoke();
            inv.key(&w.keys.state).key(&w.keys.votes).key(&w.keys.counts);
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
                Op::Report { calls, failures, vote, wait, restore, ramp_done, shadow } => {
                    inv.arg(calls)
                        .arg(failures)
                        .arg(vote)
                        .arg(ms(wait))
                        .arg(c.min_replicas)
                        .arg(c.min_calls)
                        .arg(ms(restore))
                        .arg(u8::from(ramp_done))
                        .arg(u8::from(shadow));
                }
                Op::Probe => {
                    inv.arg(ms(c.probe_lease));
                }
                Op::ProbeResult { lease, ok, wait, ramp } => {
                    inv.arg(lease).arg(u8::from(ok)).arg(ms(wait)).arg(u8::from(ramp));
                }
            }
            self.timed(inv.invoke_async(&mut con)).await.map(Snapshot::from_raw)
        }
    }

    /// Waits for a Redis answer, at most the operation timeout.
    async fn timed<T>(&self, op: impl Future<Output = redis::RedisResult<T>>) -> Result<T, FleetError> {
        let timeout = self.shared.config.operation_timeout;
        match tokio::time::timeout(timeout, op).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(FleetError::Store(e)),
            Err(_) => Err(FleetError::Timeout(timeout)),
        }
    }

    /// The scripts' connection, made again (a Sentinel asked again, a cluster's slots
    /// read again) after a failure.
    async fn connection(&mut self) -> Result<Con, FleetError> {
        if let Some(con) = &self.con {
            return Ok(con.clone());
        }
        let timeout = self.shared.config.operation_timeout;
        let con = match tokio::time::timeout(timeout, self.connector.connect(timeout)).await {
            Ok(Ok(con)) => con,
            Ok(Err(e)) => return Err(FleetError::Store(e)),
            Err(_) => return Err(FleetError::Timeout(timeout)),
        };
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
        self.step_all(now, |m, b| m.on_degraded(now, b));
        let when_unreachable = self.shared.config.when_unreachable;
        self.emit(vec![FleetEvent::Degraded { reason: error.to_string(), when_unreachable }]);
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
        let mut con = match self.connection().await {
            Ok(con) => con,
            Err(e) => {
                self.con = None;
                return Err(e);
            }
        };
        let result = self.timed(redis::cmd("PING").query_async::<String>(&mut con)).await.map(drop);
        match &result {
            Ok(()) => {
                self.shared.status().last_ok = Some(Instant::now());
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
                    FleetEvent::Opened { .. } | FleetEvent::Closed { .. } | FleetEvent::Recovering { .. } => {
                        s.applied += 1
                    }
                    FleetEvent::StaleIgnored { .. } => s.stale_ignored += 1,
                    FleetEvent::DataLost { .. } => s.data_losses += 1,
                    FleetEvent::ProbeLease { .. } => s.probe_leases += 1,
                    FleetEvent::Joined | FleetEvent::Degraded { .. } | FleetEvent::Rejoined { .. } => {}
                }
            }
            self.telemetry.event(&e);
            for f in &self.shared.listeners {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&e)));
            }
        }
    }
}

/// Keeps one pub/sub connection subscribed to the service's channel, and forwards the
/// messages; reconnects with backoff. Every `max` (`refresh_interval`) it pings the node:
/// a node that stops answering (frozen, partitioned, a cluster master failed over while
/// it hangs) closes nothing, and its subscription would stay silent for good.
async fn pubsub(
    mut connector: Connector,
    moved: Arc<Notify>,
    channel: String,
    tx: mpsc::UnboundedSender<Push>,
    min: Duration,
    max: Duration,
    timeout: Duration,
) {
    let mut backoff = min;
    loop {
        let subscribe = async {
            // A node, the master Sentinel names now, or the next node of a cluster.
            let client = connector.pubsub_client().await?;
            let mut ps = client.get_async_pubsub().await?;
            ps.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(ps)
        };
        if let Ok(Ok(ps)) = tokio::time::timeout(timeout, subscribe).await {
            backoff = min;
            if tx.send(Push::Subscribed).is_err() {
                return;
            }
            let (mut sink, mut messages) = ps.split();
            let mut check = tokio::time::interval_at(tokio::time::Instant::now() + max, max);
            loop {
                let msg = tokio::select! {
                    msg = messages.next() => msg,
                    // Redis moved: subscribe on the new master.
                    () = moved.notified() => None,
                    // Silent: subscribe again (the next node of a cluster).
                    _ = check.tick() => match tokio::time::timeout(timeout, sink.ping::<redis::Value>()).await {
                        Ok(Ok(_)) => continue,
                        _ => None,
                    },
                };
                let Some(msg) = msg else { break };
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
