//! The server side: Lua scripts that own every fleet transition, and the replies they give.
//!
//! Every script reads the time with `TIME` on the server (Redis 5 and later replicate
//! script effects, so writing after `TIME` is allowed), creates the breaker's state if it
//! is missing (stamping a new incarnation token), refreshes the keys' TTLs, and returns
//! the same [`Snapshot`], with deadlines as time remaining so that no replica's clock is
//! ever compared with another's.
//!
//! Keys of breaker `B` of service `S`, all sharing the hash tag `{S:B}` (one cluster slot):
//!
//! | key | type | content | TTL |
//! |---|---|---|---|
//! | `<prefix>:{S:B}:state` | hash | `inc`, `state`, `epoch`, `open_until`, `opens`, `round`, `lease_id`, `lease_until`, `lease_holder`, `ramp_t0` | `key_ttl` |
//! | `<prefix>:{S:B}:votes` | hash | replica → `expiry_ms:wait_ms` (`expiry_ms:wait_ms:shadow` for a would-be vote), one per replica whose breaker opened on its own | 2 × `window` |
//! | `<prefix>:{S:B}:counts` | hash | `<bucket>:c` calls and `<bucket>:f` failures, ten buckets per window | 2 × `window` |
//!
//! Pushes go to the channel `<prefix>:<S>:events` as `inc|epoch|code|ms|breaker`, where
//! `ms` is the open wait's time remaining (code 1), or the time since the recovery ramp
//! began (code 3).
//!
//! # The recovery ramp
//!
//! When the lease holder's probes succeed and its breaker enters its
//! [recovery ramp](breakerbox::ramp) (`State::Recovering`), its verdict says so, and
//! `probe_result` closes the fleet with `ramp_t0` = Redis's `TIME`: the ramp's start, on
//! one clock. While `ramp_t0` is set the state is still `closed` (counts and votes are
//! taken, a quorum opens it again) but every snapshot reports code 3 and the time since
//! `ramp_t0`, by Redis's clock, so that every replica enters the ramp at the same point
//! of it. Redis does not know the ramp's length (each replica's breaker does): the first
//! replica whose breaker finished the ramp says so in a `report`, and `ramp_t0` is
//! dropped, without a new epoch. Opening the fleet drops it too.

use std::time::Duration;

use redis::Script;

/// Shared by every script: keys, time, creation, helpers, and the snapshot it returns.
///
/// ARGV: 1 token for a new incarnation, 2 key TTL (ms), 3 window (ms), 4 channel,
/// 5 breaker name, 6 incarnation seen, 7 epoch seen, 8 replica id; the rest per script.
const PRELUDE: &str = r#"
local st, votes, counts = KEYS[1], KEYS[2], KEYS[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl, window = tonumber(ARGV[2]), tonumber(ARGV[3])
if redis.call('HSETNX', st, 'inc', ARGV[1]) == 1 then
  redis.call('HSET', st, 'state', 'closed', 'epoch', 0, 'opens', 0, 'round', 0)
end
local function num(field)
  return tonumber(redis.call('HGET', st, field) or '0') or 0
end
local function fmt(n)
  return string.format('%d', n)
end
local same = ARGV[6] == redis.call('HGET', st, 'inc') and tonumber(ARGV[7]) == num('epoch')
-- The replica saw a later epoch of this incarnation than Redis has now: Redis lost
-- writes it had acknowledged (restarted from an older snapshot, failed over to a replica
-- that lagged). Epochs only grow, and a replica only sees epochs Redis reached.
local behind = ARGV[6] == redis.call('HGET', st, 'inc') and (tonumber(ARGV[7]) or 0) > num('epoch')
local function snapshot(granted, voters, volume)
  local code, remaining, ramp = 0, 0, 0
  if redis.call('HGET', st, 'state') == 'open' then
    remaining = num('open_until') - now
    if remaining > 0 then code = 1 else code, remaining = 2, 0 end
  elseif num('ramp_t0') > 0 then
    code, ramp = 3, math.max(0, now - num('ramp_t0'))
  end
  local lease_id, lease_left = 0, 0
  if code == 2 and num('lease_id') > 0 then
    lease_id, lease_left = num('lease_id'), math.max(0, num('lease_until') - now)
  end
  return {code, num('epoch'), remaining, redis.call('HGET', st, 'inc'), lease_id, lease_left,
          granted, num('opens'), voters, volume, ramp, behind and 1 or 0}
end
local function publish()
  local s = snapshot(0, 0, 0)
  local ms = s[3]
  if s[1] == 3 then ms = s[11] end
  redis.call('PUBLISH', ARGV[4], s[4] .. '|' .. fmt(s[2]) .. '|' .. fmt(s[1]) .. '|' .. fmt(ms) .. '|' .. ARGV[5])
end
local function forget()
  redis.call('HDEL', st, 'lease_id', 'lease_until', 'lease_holder')
  redis.call('DEL', votes, counts)
end
local function open(wait)
  redis.call('HINCRBY', st, 'epoch', 1)
  redis.call('HINCRBY', st, 'opens', 1)
  redis.call('HSET', st, 'state', 'open', 'open_until', fmt(now + wait))
  redis.call('HDEL', st, 'ramp_t0')
  forget()
  publish()
end
-- ramp: the prober's breaker began its recovery ramp; it begins now, by this clock.
local function close(ramp)
  redis.call('HINCRBY', st, 'epoch', 1)
  redis.call('HSET', st, 'state', 'closed', 'opens', 0)
  redis.call('HDEL', st, 'open_until')
  if ramp then
    redis.call('HSET', st, 'ramp_t0', fmt(now))
  else
    redis.call('HDEL', st, 'ramp_t0')
  end
  forget()
  publish()
end
"#;

/// Reports outcome counts and this replica's vote; opens the fleet when enough replicas
/// voted and enough calls were seen in the window; restores an open state after a data loss;
/// ends the fleet's recovery ramp when this replica's breaker finished it. A restore is
/// taken on a state at epoch 0 (the keys were lost) or on the very state the replica
/// just read (it was rolled back to an older epoch), if closed.
/// Counted only for the current epoch (or from a replica that has not seen any yet).
///
/// A replica in shadow mode reports a would-be vote: kept (marked `:shadow`) for one
/// `window` as any vote, but never counted toward the quorum, and its calls are not
/// counted toward the volume: a shadow replica cannot open the fleet.
///
/// ARGV: 9 calls, 10 failures, 11 vote (1 open, -1 withdraw, 0 none), 12 wait (ms),
/// 13 min replicas, 14 min calls, 15 restore (ms, 0 for none), 16 ramp done (1 or 0),
/// 17 shadow (1 or 0).
const REPORT: &str = r#"
local voters, volume, accepted = 0, 0, 0
local restore = tonumber(ARGV[15])
local shadow = ARGV[17] == '1'
if restore > 0 and (num('epoch') == 0 or same) and redis.call('HGET', st, 'state') == 'closed' then
  open(restore)
elseif (same or ARGV[6] == '') and redis.call('HGET', st, 'state') == 'closed' then
  accepted = 1
  if same and ARGV[16] == '1' then redis.call('HDEL', st, 'ramp_t0') end
  local bucket_ms = math.max(1, math.floor(window / 10))
  local b = math.floor(now / bucket_ms)
  local calls, failures = tonumber(ARGV[9]), tonumber(ARGV[10])
  if calls > 0 and not shadow then
    redis.call('HINCRBY', counts, fmt(b) .. ':c', calls)
    if failures > 0 then redis.call('HINCRBY', counts, fmt(b) .. ':f', failures) end
  end
  local vote = tonumber(ARGV[11])
  if vote == 1 then
    local mark = ''
    if shadow then mark = ':shadow' end
    redis.call('HSET', votes, ARGV[8], fmt(now + window) .. ':' .. ARGV[12] .. mark)
  elseif vote == -1 then
    redis.call('HDEL', votes, ARGV[8])
  end
  local wait = 0
  local all = redis.call('HGETALL', votes)
  for i = 1, #all, 2 do
    local exp, w, mark = string.match(all[i + 1], '^(%d+):(%d+)(.*)$')
    if exp and tonumber(exp) > now then
      if mark == '' then
        voters = voters + 1
        wait = math.max(wait, tonumber(w))
      end
    else
      redis.call('HDEL', votes, all[i])
    end
  end
  local cs = redis.call('HGETALL', counts)
  for i = 1, #cs, 2 do
    local bk, kind = string.match(cs[i], '^(%d+):(%a)$')
    if bk and tonumber(bk) > b - 10 then
      if kind == 'c' then volume = volume + tonumber(cs[i + 1]) end
    else
      redis.call('HDEL', counts, cs[i])
    end
  end
  if voters > 0 and voters >= tonumber(ARGV[13]) and volume >= tonumber(ARGV[14]) then
    open(wait)
  else
    redis.call('PEXPIRE', votes, 2 * window)
    redis.call('PEXPIRE', counts, 2 * window)
  end
end
redis.call('PEXPIRE', st, ttl)
return snapshot(accepted, voters, volume)
"#;

/// Asks for the fleet's probe lease: granted when the open wait has passed (by the
/// server's clock) and no unexpired lease is out.
///
/// ARGV: 9 lease (ms).
const PROBE: &str = r#"
local granted = 0
if same and redis.call('HGET', st, 'state') == 'open' and num('open_until') <= now then
  if num('lease_id') == 0 or num('lease_until') <= now then
    local id = redis.call('HINCRBY', st, 'round', 1)
    redis.call('HSET', st, 'lease_id', id, 'lease_until', fmt(now + tonumber(ARGV[9])), 'lease_holder', ARGV[8])
    granted = 1
  end
end
redis.call('PEXPIRE', st, ttl)
return snapshot(granted, 0, 0)
"#;

/// The lease holder's verdict: closes the fleet (beginning the recovery ramp now, by
/// Redis's clock, if the prober's breaker began one), or reopens it for the given wait.
/// Ignored unless the epoch is current and the lease is still the latest one granted.
///
/// ARGV: 9 lease id, 10 success (1 or 0), 11 wait (ms), 12 ramp (1 or 0).
const PROBE_RESULT: &str = r#"
local lease = tonumber(ARGV[9])
if same and redis.call('HGET', st, 'state') == 'open' and lease > 0 and num('lease_id') == lease then
  if ARGV[10] == '1' then close(ARGV[12] == '1') else open(tonumber(ARGV[11])) end
end
redis.call('PEXPIRE', st, ttl)
return snapshot(0, 0, 0)
"#;

/// Reads the state (creating it if missing).
const STATE: &str = r#"
redis.call('PEXPIRE', st, ttl)
return snapshot(0, 0, 0)
"#;

/// The four scripts, compiled once per fleet.
#[derive(Debug)]
pub(crate) struct Scripts {
    pub(crate) report: Script,
    pub(crate) probe: Script,
    pub(crate) probe_result: Script,
    pub(crate) state: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        let with = |body: &str| Script::new(&format!("{PRELUDE}{body}"));
        Self { report: with(REPORT), probe: with(PROBE), probe_result: with(PROBE_RESULT), state: with(STATE) }
    }
}

/// A store operation on one breaker: which script to call, with its own arguments (the
/// shared ones, [`PRELUDE`]'s, come from the breaker's keys and what it has seen).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// [`STATE`]: read the fleet's state.
    State,
    /// [`REPORT`]: counts since the last report, this replica's vote (1 open, -1
    /// withdraw, 0 none) with its open wait, an open state to restore after a data
    /// loss (zero for none), whether this replica's breaker finished the fleet's recovery
    /// ramp, and whether it is in shadow mode (its vote a would-be vote, its calls not
    /// counted).
    Report { calls: u64, failures: u64, vote: i8, wait: Duration, restore: Duration, ramp_done: bool, shadow: bool },
    /// [`PROBE`]: ask for the probe lease.
    Probe,
    /// [`PROBE_RESULT`]: the lease holder's verdict, the wait to reopen for, and whether
    /// its breaker began its recovery ramp.
    ProbeResult { lease: u64, ok: bool, wait: Duration, ramp: bool },
}

impl Op {
    /// The script's name, as in the metrics' `op` label.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::State => "state",
            Self::Report { .. } => "report",
            Self::Probe => "probe",
            Self::ProbeResult { .. } => "probe_result",
        }
    }
}

/// The fleet's state of one breaker, as a script or a push reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Code {
    Closed,
    /// Open, with time remaining.
    Open,
    /// Open, its wait passed: probing through the lease.
    HalfOpen,
    /// Closed by a probe whose breaker began its recovery ramp, the ramp not yet known
    /// to be over: replicas ramp from the same start.
    Recovering,
}

impl Code {
    fn from_i64(n: i64) -> Self {
        match n {
            1 => Self::Open,
            2 => Self::HalfOpen,
            3 => Self::Recovering,
            _ => Self::Closed,
        }
    }
}

/// A script's reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) code: Code,
    pub(crate) epoch: u64,
    /// Time left in the open wait, by the server's clock.
    pub(crate) remaining: Duration,
    /// The incarnation token: it changes when Redis loses the breaker's keys.
    pub(crate) inc: String,
    /// The probe lease currently out (0: none), when half-open.
    pub(crate) lease_id: u64,
    pub(crate) lease_left: Duration,
    /// `probe`: whether this call was granted the lease; `report`: whether the counts
    /// and vote were counted.
    pub(crate) granted: bool,
    pub(crate) opens: u64,
    /// `report`: replicas voting open, and calls, in the window.
    pub(crate) voters: u64,
    pub(crate) volume: u64,
    /// Time since the fleet's recovery ramp began, by the server's clock, when
    /// recovering.
    pub(crate) ramp: Duration,
    /// The replica that sent the call had seen a later epoch of this incarnation than
    /// Redis now has: Redis lost acknowledged writes (a restart from an older snapshot,
    /// a failover to a lagging replica). Only a reply can say so; a push never does.
    pub(crate) rolled_back: bool,
}

pub(crate) type Raw = (i64, u64, i64, String, u64, i64, i64, u64, u64, u64, i64, i64);

impl Snapshot {
    pub(crate) fn from_raw(r: Raw) -> Self {
        let ms = |n: i64| Duration::from_millis(u64::try_from(n).unwrap_or(0));
        Self {
            code: Code::from_i64(r.0),
            epoch: r.1,
            remaining: ms(r.2),
            inc: r.3,
            lease_id: r.4,
            lease_left: ms(r.5),
            granted: r.6 == 1,
            opens: r.7,
            voters: r.8,
            volume: r.9,
            ramp: ms(r.10),
            rolled_back: r.11 == 1,
        }
    }

    /// Parses a push: `inc|epoch|code|ms|breaker` (`ms`: the open wait's time remaining,
    /// or the time into the recovery ramp when recovering). Returns the breaker's name.
    pub(crate) fn from_push(payload: &str) -> Option<(String, Self)> {
        let mut parts = payload.splitn(5, '|');
        let inc = parts.next()?.to_owned();
        let epoch = parts.next()?.parse().ok()?;
        let code = Code::from_i64(parts.next()?.parse().ok()?);
        let ms = Duration::from_millis(parts.next()?.parse().ok()?);
        let name = parts.next()?.to_owned();
        Some((
            name,
            match code {
                Code::Recovering => Self { ramp: ms, ..Self::new(code, epoch, Duration::ZERO, inc) },
                Code::Closed | Code::Open | Code::HalfOpen => Self::new(code, epoch, ms, inc),
            },
        ))
    }

    /// A state as a push carries it: no lease, nothing granted or counted.
    pub(crate) fn new(code: Code, epoch: u64, remaining: Duration, inc: String) -> Self {
        Self {
            code,
            epoch,
            remaining,
            inc,
            lease_id: 0,
            lease_left: Duration::ZERO,
            granted: false,
            opens: 0,
            voters: 0,
            volume: 0,
            ramp: Duration::ZERO,
            rolled_back: false,
        }
    }
}

/// The key names of one breaker.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    pub(crate) state: String,
    pub(crate) votes: String,
    pub(crate) counts: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str, service: &str, breaker: &str) -> Self {
        let tag = format!("{prefix}:{{{service}:{breaker}}}");
        Self { state: format!("{tag}:state"), votes: format!("{tag}:votes"), counts: format!("{tag}:counts") }
    }
}

/// The pub/sub channel of a service.
pub(crate) fn channel(prefix: &str, service: &str) -> String {
    format!("{prefix}:{service}:events")
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support as support;

    /// The scripts on a real server, called as a replica would.
    struct Server {
        _server: support::RedisServer,
        con: redis::Connection,
        scripts: Scripts,
        keys: Keys,
    }

    impl Server {
        fn start() -> Self {
            let server = support::RedisServer::start();
            let con = server.connection();
            Self { _server: server, con, scripts: Scripts::new(), keys: Keys::new("t", "svc", "b") }
        }

        /// Calls `script` as `replica`, having seen `seen` (incarnation, epoch).
        fn call(&mut self, script: &str, replica: &str, seen: (&str, u64), extra: &[u64]) -> Snapshot {
            let script = match script {
                "report" => &self.scripts.report,
                "probe" => &self.scripts.probe,
                "probe_result" => &self.scripts.probe_result,
                _ => &self.scripts.state,
            };
            let mut inv = script.prepare_invoke();
            inv.key(&self.keys.state).key(&self.keys.votes).key(&self.keys.counts);
            inv.arg(format!("tok-{}", crate::shared::random()))
                .arg(60_000)
                .arg(10_000)
                .arg("t:svc:events")
                .arg("b")
                .arg(seen.0)
                .arg(seen.1)
                .arg(replica);
            for a in extra {
                inv.arg(*a);
            }
            Snapshot::from_raw(inv.invoke(&mut self.con).expect("the script runs"))
        }

        /// A vote to open (calls, failures, vote, wait, min replicas, min calls, restore).
        fn vote(&mut self, replica: &str, seen: (&str, u64), min_replicas: u64) -> Snapshot {
            self.call("report", replica, seen, &[5, 5, 1, 200, min_replicas, 1, 0])
        }
    }

    #[test]
    fn the_state_is_created_once_with_an_incarnation_and_a_ttl() {
        let mut s = Server::start();
        let a = s.call("state", "a", ("", 0), &[]);
        assert_eq!((a.code, a.epoch), (Code::Closed, 0));
        assert!(a.inc.starts_with("tok-"));
        let b = s.call("state", "b", ("", 0), &[]);
        assert_eq!(b.inc, a.inc, "created once");
        let ttl: i64 = redis::cmd("PTTL").arg(&s.keys.state).query(&mut s.con).unwrap();
        assert!(ttl > 0 && ttl <= 60_000, "{ttl}");
    }

    #[test]
    fn votes_open_the_fleet_at_the_quorum_and_stale_votes_do_not_count() {
        let mut s = Server::start();
        let inc = s.call("state", "a", ("", 0), &[]).inc;
        let one = s.vote("a", (&inc, 0), 2);
        assert_eq!((one.code, one.voters, one.volume, one.granted), (Code::Closed, 1, 5, true));
        // The same replica again is still one voter.
        assert_eq!(s.vote("a", (&inc, 0), 2).voters, 1);
        let two = s.vote("b", (&inc, 0), 2);
        assert_eq!((two.code, two.epoch), (Code::Open, 1));
        assert!(two.remaining > Duration::from_millis(150) && two.remaining <= Duration::from_millis(200));
        assert_eq!(two.opens, 1);
        // While open, votes and counts are not counted.
        assert!(!s.vote("c", (&inc, 1), 1).granted);

        // Close it through a probe, then replay an epoch-1 vote: ignored.
        std::thread::sleep(Duration::from_millis(220));
        let lease = s.call("probe", "a", (&inc, 1), &[1_000]);
        assert!(lease.granted);
        let closed = s.call("probe_result", "a", (&inc, 1), &[lease.lease_id, 1, 0]);
        assert_eq!((closed.code, closed.epoch, closed.opens), (Code::Closed, 2, 0));
        let stale = s.call("report", "c", (&inc, 1), &[5, 5, 1, 200, 1, 1, 0]);
        assert_eq!((stale.code, stale.epoch, stale.granted), (Code::Closed, 2, false));
        // Another incarnation's vote is not counted either.
        assert!(!s.call("report", "c", ("other", 2), &[5, 5, 1, 200, 1, 1, 0]).granted);
    }

    #[test]
    fn the_volume_gate_holds_a_trip_until_enough_calls() {
        let mut s = Server::start();
        let inc = s.call("state", "a", ("", 0), &[]).inc;
        let r = s.call("report", "a", (&inc, 0), &[3, 3, 1, 200, 1, 10, 0]);
        assert_eq!((r.code, r.voters, r.volume), (Code::Closed, 1, 3));
        let r = s.call("report", "b", (&inc, 0), &[7, 0, 0, 0, 1, 10, 0]);
        assert_eq!((r.code, r.volume), (Code::Open, 10), "b's successes complete the volume; a's vote holds");
    }

    #[test]
    fn one_probe_lease_at_a_time_and_only_the_current_one_decides() {
        let mut s = Server::start();
        let inc = s.call("state", "a", ("", 0), &[]).inc;
        assert_eq!(s.vote("a", (&inc, 0), 1).epoch, 1);
        // Before the wait passes: no lease.
        let early = s.call("probe", "a", (&inc, 1), &[100]);
        assert!(!early.granted && early.code == Code::Open);
        std::thread::sleep(Duration::from_millis(220));
        let a = s.call("probe", "a", (&inc, 1), &[100]);
        assert!(a.granted && a.code == Code::HalfOpen);
        let b = s.call("probe", "b", (&inc, 1), &[100]);
        assert!(!b.granted);
        assert_eq!(b.lease_id, a.lease_id);
        assert!(b.lease_left > Duration::ZERO && b.lease_left <= Duration::from_millis(100));
        // a's lease runs out silently: b gets the next one; a's late verdict is ignored.
        std::thread::sleep(Duration::from_millis(120));
        let b = s.call("probe", "b", (&inc, 1), &[100]);
        assert!(b.granted && b.lease_id > a.lease_id);
        let late = s.call("probe_result", "a", (&inc, 1), &[a.lease_id, 1, 0]);
        assert_eq!((late.code, late.epoch), (Code::HalfOpen, 1));
        // A verdict for an older epoch is ignored too.
        let stale = s.call("probe_result", "b", (&inc, 0), &[b.lease_id, 1, 0]);
        assert_eq!(stale.epoch, 1);
        // b's failure reopens for its wait, in a new epoch.
        let reopened = s.call("probe_result", "b", (&inc, 1), &[b.lease_id, 0, 300]);
        assert_eq!((reopened.code, reopened.epoch, reopened.opens), (Code::Open, 2, 2));
        assert!(reopened.remaining > Duration::from_millis(250));
    }

    #[test]
    fn a_lost_state_is_restored_once() {
        let mut s = Server::start();
        let inc = s.call("state", "a", ("", 0), &[]).inc;
        s.vote("a", (&inc, 0), 1);
        let _: () = redis::cmd("FLUSHALL").query(&mut s.con).unwrap();
        let fresh = s.call("state", "a", (&inc, 1), &[]);
        assert_ne!(fresh.inc, inc, "a new incarnation");
        assert_eq!((fresh.code, fresh.epoch), (Code::Closed, 0));
        let restored = s.call("report", "a", (&inc, 1), &[0, 0, 0, 0, 2, 10, 500]);
        assert_eq!((restored.code, restored.epoch), (Code::Open, 1));
        assert!(restored.remaining > Duration::from_millis(400));
        let again = s.call("report", "b", (&inc, 1), &[0, 0, 0, 0, 2, 10, 900]);
        assert_eq!((again.epoch, again.inc), (1, restored.inc), "the first restore wins");
        assert!(again.remaining <= Duration::from_millis(500));
    }

    /// Redis loses acknowledged writes (here: the state put back as an older snapshot
    /// had it): a replica that saw the later epoch is told so, and its restore is taken
    /// at whatever epoch the state was rolled back to.
    #[test]
    fn a_rolled_back_epoch_is_reported_and_restored() {
        let mut s = Server::start();
        let inc = s.call("state", "a", ("", 0), &[]).inc;
        assert_eq!(s.vote("a", (&inc, 0), 1).epoch, 1);
        std::thread::sleep(Duration::from_millis(220));
        let lease = s.call("probe", "a", (&inc, 1), &[1_000]);
        let closed = s.call("probe_result", "a", (&inc, 1), &[lease.lease_id, 1, 0]);
        assert_eq!((closed.code, closed.epoch, closed.rolled_back), (Code::Closed, 2, false));
        // The snapshot was taken here, closed at epoch 2; the fleet then opened (epoch 3).
        let _: () = redis::cmd("HSET").arg(&s.keys.state).arg("epoch").arg(3).query(&mut s.con).unwrap();
        assert!(!s.call("state", "a", (&inc, 3), &[]).rolled_back);
        let _: () = redis::cmd("HSET").arg(&s.keys.state).arg("epoch").arg(2).query(&mut s.con).unwrap();
        let read = s.call("state", "a", (&inc, 3), &[]);
        assert_eq!((read.code, read.epoch, read.rolled_back), (Code::Closed, 2, true));
        // A late reply (seen 1, now 2) and another incarnation are not rollbacks.
        assert!(!s.call("state", "b", (&inc, 1), &[]).rolled_back);
        assert!(!s.call("state", "b", ("other", 9), &[]).rolled_back);
        // The restore, sent with the state just read, is taken; a second one is not.
        let restored = s.call("report", "a", (&inc, 2), &[0, 0, 0, 0, 2, 10, 500]);
        assert_eq!((restored.code, restored.epoch), (Code::Open, 3));
        let again = s.call("report", "b", (&inc, 2), &[0, 0, 0, 0, 2, 10, 900]);
        assert_eq!(again.epoch, 3, "the first restore wins");
        assert!(again.remaining <= Duration::from_millis(500));
    }

    /// Opens the fleet with one vote, waits it out, and takes the lease as `replica`.
    fn leased(s: &mut Server, replica: &str) -> (String, Snapshot) {
        let now = s.call("state", replica, ("", 0), &[]);
        let epoch = s.vote(replica, (&now.inc, now.epoch), 1).epoch;
        let inc = now.inc;
        std::thread::sleep(Duration::from_millis(220));
        let lease = s.call("probe", replica, (&inc, epoch), &[1_000]);
        assert!(lease.granted);
        (inc, lease)
    }

    #[test]
    fn a_probe_that_begins_a_ramp_starts_it_at_redis_time_for_every_replica() {
        let mut s = Server::start();
        let (inc, lease) = leased(&mut s, "a");
        let mut sub = s._server.connection();
        let mut pubsub = sub.as_pubsub();
        pubsub.subscribe("t:svc:events").unwrap();
        let closed = s.call("probe_result", "a", (&inc, 1), &[lease.lease_id, 1, 0, 1]);
        assert_eq!((closed.code, closed.epoch, closed.opens), (Code::Recovering, 2, 0));
        assert!(closed.ramp < Duration::from_millis(5), "{:?}", closed.ramp);
        let push: String = pubsub.get_message().unwrap().get_payload().unwrap();
        let (_, pushed) = Snapshot::from_push(&push).unwrap();
        assert_eq!((pushed.code, pushed.epoch, pushed.remaining), (Code::Recovering, 2, Duration::ZERO), "{push}");
        drop(pubsub);
        let t0: u64 = redis::cmd("HGET").arg(&s.keys.state).arg("ramp_t0").query(&mut s.con).unwrap();
        let (secs, micros): (u64, u64) = redis::cmd("TIME").query(&mut s.con).unwrap();
        assert!(secs * 1_000 + micros / 1_000 - t0 < 1_000, "t₀ is Redis's TIME");

        // Any replica reading later is told how far into the ramp the fleet is, by
        // Redis's clock; counts and votes are taken as when closed.
        std::thread::sleep(Duration::from_millis(100));
        let later = s.call("state", "b", ("", 0), &[]);
        assert_eq!(later.code, Code::Recovering);
        assert!(
            later.ramp >= Duration::from_millis(100) && later.ramp < Duration::from_millis(200),
            "{:?}",
            later.ramp
        );
        let counted = s.call("report", "b", (&inc, 2), &[3, 0, 0, 0, 2, 1, 0]);
        assert!(counted.granted && counted.code == Code::Recovering);
        // A replica whose ramp is over says so: plain closed again, in the same epoch.
        let done = s.call("report", "b", (&inc, 2), &[0, 0, 0, 0, 2, 1, 0, 1]);
        assert_eq!((done.code, done.epoch, done.ramp), (Code::Closed, 2, Duration::ZERO));

        // A success without a ramp closes plainly; an opening forgets a ramp.
        let (inc, lease) = leased(&mut s, "a");
        let _ = s.call("probe_result", "a", (&inc, 3), &[lease.lease_id, 1, 0, 1]);
        let reopened = s.vote("a", (&inc, 4), 1);
        assert_eq!((reopened.code, reopened.epoch, reopened.ramp), (Code::Open, 5, Duration::ZERO));
        let t0: Option<u64> = redis::cmd("HGET").arg(&s.keys.state).arg("ramp_t0").query(&mut s.con).unwrap();
        assert_eq!(t0, None);
        std::thread::sleep(Duration::from_millis(220));
        let lease = s.call("probe", "a", (&inc, 5), &[1_000]);
        let plain = s.call("probe_result", "a", (&inc, 5), &[lease.lease_id, 1, 0, 0]);
        assert_eq!((plain.code, plain.epoch), (Code::Closed, 6));
    }

    #[test]
    fn a_shadow_replicas_vote_and_calls_never_open_the_fleet() {
        let mut s = Server::start();
        let inc = s.call("state", "a", ("", 0), &[]).inc;
        // calls, failures, vote, wait, min replicas, min calls, restore, ramp done, shadow
        let would_be = s.call("report", "shadow", (&inc, 0), &[50, 50, 1, 200, 1, 10, 0, 0, 1]);
        assert_eq!((would_be.code, would_be.granted, would_be.voters, would_be.volume), (Code::Closed, true, 0, 0));
        let kept: String = redis::cmd("HGET").arg(&s.keys.votes).arg("shadow").query(&mut s.con).unwrap();
        assert!(kept.ends_with(":200:shadow"), "kept as a would-be vote: {kept}");
        // An enforcing vote, with too few calls of its own: the shadow calls do not count.
        let one = s.call("report", "a", (&inc, 0), &[5, 5, 1, 300, 1, 10, 0, 0, 0]);
        assert_eq!((one.code, one.voters, one.volume), (Code::Closed, 1, 5));
        let opened = s.call("report", "b", (&inc, 0), &[5, 0, 0, 0, 1, 10, 0, 0, 0]);
        assert_eq!((opened.code, opened.epoch), (Code::Open, 1));
        assert!(opened.remaining > Duration::from_millis(250), "the enforcing vote's wait, not the shadow's");
    }

    #[test]
    fn keys_share_one_hash_tag() {
        let k = Keys::new("breakerbox", "checkout", "payments/eu");
        for key in [&k.state, &k.votes, &k.counts] {
            assert!(key.starts_with("breakerbox:{checkout:payments/eu}:"), "{key}");
        }
        assert_eq!(channel("breakerbox", "checkout"), "breakerbox:checkout:events");
    }

    #[test]
    fn pushes_parse_with_any_breaker_name() {
        let (name, s) = Snapshot::from_push("abc|7|1|1500|up|stream/host:443").unwrap();
        assert_eq!(name, "up|stream/host:443");
        assert_eq!((s.inc.as_str(), s.epoch, s.code, s.remaining), ("abc", 7, Code::Open, Duration::from_millis(1500)));
        let (_, r) = Snapshot::from_push("abc|8|3|250|b").unwrap();
        assert_eq!((r.code, r.remaining, r.ramp), (Code::Recovering, Duration::ZERO, Duration::from_millis(250)));
        assert!(Snapshot::from_push("abc|x|1|0|n").is_none());
        assert!(Snapshot::from_push("abc|1|1").is_none());
    }
}
