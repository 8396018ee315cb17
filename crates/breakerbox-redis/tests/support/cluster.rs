//! A Redis Cluster of real processes for `tests/cluster.rs` (three masters) and
//! `tests/cluster_replicas.rs` (and a replica of each): each node in its own directory,
//! `cluster-node-timeout` [`NODE_TIMEOUT_MS`], joined with `redis-cli --cluster create`,
//! and what the tests ask of it (`CLUSTER NODES` as each node sees it, slots, owners,
//! a slot migration). A test file includes it with `#[path]`, after `mod support;` and
//! `mod faults;`.
#![allow(dead_code, unreachable_pub)]

use std::process::Command;
use std::time::{Duration, Instant};

use breakerbox_redis::Connect;

use crate::faults::{cmd, fleet_state};
use crate::support::RedisServer;

/// `cluster-node-timeout`: a master that does not answer this long is failed over.
pub const NODE_TIMEOUT_MS: u64 = 1000;

/// One line of `CLUSTER NODES`, as one node sees the cluster.
#[derive(Debug, Clone)]
pub struct Line {
    pub id: String,
    pub port: u16,
    pub flags: String,
    /// The master's id, for a replica.
    pub master: Option<String>,
    pub slots: Vec<(u16, u16)>,
}

impl Line {
    pub fn is_master(&self) -> bool {
        self.flags.split(',').any(|f| f == "master")
    }

    /// Marked failed by the cluster (not only suspected, `fail?`: a node timeout missed
    /// on a loaded machine).
    pub fn failed(&self) -> bool {
        self.flags.split(',').any(|f| f == "fail")
    }
}

/// Three masters and `replicas` replicas of each, every slot assigned.
pub struct Cluster {
    pub nodes: Vec<RedisServer>,
    /// Nodes killed or frozen by the test: not asked.
    pub down: Vec<bool>,
    replicas: usize,
}

impl Cluster {
    /// Starts `3 * (1 + replicas)` nodes and joins them with `redis-cli --cluster create`;
    /// returns once the cluster is [`healthy`](Self::healthy).
    pub fn start(replicas: usize) -> Self {
        let nodes: Vec<RedisServer> = (0..3 * (1 + replicas))
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    &NODE_TIMEOUT_MS.to_string(),
                    // A replica syncs at once (no 5 s wait for more replicas).
                    "--repl-diskless-sync-delay",
                    "0",
                ])
            })
            .collect();
        let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())).collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run `redis-cli` ({e}): install it with `apt-get install -y redis-tools`")
            });
        assert!(out.status.success(), "redis-cli --cluster create: {}", String::from_utf8_lossy(&out.stdout));
        let cluster = Self { down: vec![false; nodes.len()], nodes, replicas };
        let started = Instant::now();
        let ok = (0..2_000).any(|_| {
            let ok = cluster.healthy();
            if !ok {
                std::thread::sleep(Duration::from_millis(10));
            }
            ok
        });
        assert!(ok, "the cluster is up: every node ok, every replica synced: {:#?}", cluster.lines(0));
        eprintln!(
            "[cluster] 3 masters, {} replicas up and synced {:?} after `--cluster create`",
            3 * replicas,
            started.elapsed()
        );
        cluster
    }

    /// Every live node says `cluster_state:ok` and sees three masters serving slots and a
    /// live replica of each, every replica's link to its master is up.
    pub fn healthy(&self) -> bool {
        self.live().all(|n| {
            let Ok(mut con) = self.nodes[n].client().get_connection_with_timeout(Duration::from_millis(200)) else {
                return false;
            };
            let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut con).unwrap_or_default();
            let lines = self.lines(n);
            let masters: Vec<&Line> = lines.iter().filter(|l| l.is_master() && !l.slots.is_empty()).collect();
            let replicated = self.replicas == 0
                || masters.iter().all(|m| {
                    lines.iter().any(|l| l.master.as_ref() == Some(&m.id) && !l.failed() && self.is_live_port(l.port))
                });
            let me = lines.iter().find(|l| l.flags.contains("myself"));
            let link_up =
                me.is_some_and(Line::is_master) || self.info(n, "replication").contains("master_link_status:up");
            info.contains("cluster_state:ok") && masters.len() == 3 && replicated && link_up
        })
    }

    pub fn live(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|n| !self.down[*n])
    }

    pub fn is_live_port(&self, port: u16) -> bool {
        self.live().any(|n| self.nodes[n].port() == port)
    }

    pub fn index(&self, port: u16) -> usize {
        self.nodes.iter().position(|n| n.port() == port).expect("a node of this cluster")
    }

    pub fn connect(&self) -> Connect {
        Connect::cluster(self.nodes.iter().map(RedisServer::url))
    }

    pub fn info(&self, node: usize, section: &str) -> String {
        redis::cmd("INFO").arg(section).query(&mut self.nodes[node].connection()).unwrap()
    }

    /// `CLUSTER NODES`, as node `n` sees it.
    pub fn lines(&self, n: usize) -> Vec<Line> {
        let nodes: String =
            redis::cmd("CLUSTER").arg("NODES").query(&mut self.nodes[n].connection()).unwrap_or_default();
        nodes
            .lines()
            .map(|line| {
                let f: Vec<&str> = line.split(' ').collect();
                let slots = f[8..]
                    .iter()
                    .filter(|r| !r.starts_with('['))
                    .map(|r| {
                        let (lo, hi) = r.split_once('-').unwrap_or((r, r));
                        (lo.parse().unwrap(), hi.parse().unwrap())
                    })
                    .collect();
                Line {
                    id: f[0].to_owned(),
                    port: f[1].split(['@', ':']).nth(1).unwrap().parse().unwrap(),
                    flags: f[2].to_owned(),
                    master: (f[3] != "-").then(|| f[3].to_owned()),
                    slots,
                }
            })
            .collect()
    }

    pub fn id(&self, node: usize) -> String {
        redis::cmd("CLUSTER").arg("MYID").query(&mut self.nodes[node].connection()).unwrap()
    }

    /// The slot of a breaker's keys, asked of a live node.
    pub fn slot(&self, service: &str, breaker: &str) -> u16 {
        let key = format!("breakerbox:{{{service}:{breaker}}}:state");
        let n = self.live().next().expect("a live node");
        redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query(&mut self.nodes[n].connection()).unwrap()
    }

    /// The masters serving slots, as node `n` sees them.
    pub fn masters(&self, n: usize) -> Vec<usize> {
        self.lines(n).iter().filter(|l| l.is_master() && !l.slots.is_empty()).map(|l| self.index(l.port)).collect()
    }

    /// The master that serves `slot`, as every live node sees it (`None` while they
    /// disagree or none does).
    pub fn owner(&self, slot: u16) -> Option<usize> {
        let mut owners = self.live().map(|n| {
            self.lines(n)
                .iter()
                .find(|l| l.is_master() && !l.failed() && l.slots.iter().any(|(lo, hi)| (*lo..=*hi).contains(&slot)))
                .map(|l| self.index(l.port))
        });
        let first = owners.next().flatten()?;
        owners.all(|o| o == Some(first)).then_some(first)
    }

    /// The replica of master `m`, as `m` sees it.
    pub fn replica_of(&self, m: usize) -> usize {
        let id = self.id(m);
        let line = self.lines(m).into_iter().find(|l| l.master.as_ref() == Some(&id)).expect("a replica");
        self.index(line.port)
    }

    /// Node `n`'s role: `master` or `slave` (`ROLE`).
    pub fn role(&self, n: usize) -> String {
        let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut self.nodes[n].connection()).unwrap();
        match &role[0] {
            redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            v => format!("{v:?}"),
        }
    }

    /// `(state, incarnation, epoch)` of a breaker, read on node `n` (`READONLY` on a
    /// replica).
    pub fn state_on(&self, n: usize, service: &str, breaker: &str) -> (String, String, u64) {
        let mut con = self.nodes[n].connection();
        cmd(&mut con, &["READONLY"]);
        fleet_state(&mut con, service, breaker)
    }

    /// `(state, incarnation, epoch)` of a breaker, read on the master that owns its slot.
    pub fn state(&self, service: &str, breaker: &str) -> (String, String, u64) {
        let owner = self.owner(self.slot(service, breaker)).expect("an owner");
        self.state_on(owner, service, breaker)
    }

    /// Every write so far on master `m` (in `slot`) is on its replica.
    pub fn replicated(&self, m: usize, slot_of: &str) {
        let mut con = self.nodes[m].connection();
        cmd(&mut con, &["SET", &format!("{{{slot_of}}}:marker"), "1"]);
        let acked: i64 = redis::cmd("WAIT").arg(1).arg(1_000).query(&mut con).unwrap();
        assert_eq!(acked, 1, "the replica of node {m} acknowledged");
    }

    /// Moves `slot` to master `to`, keys and all, as `redis-cli --cluster reshard` does,
    /// staying `pause` in the middle (importing on `to`, migrating on the owner: a
    /// client is sent on with `ASK` for a key already moved); `SETSLOT ... NODE` to the
    /// masters only, the replicas learn it from theirs. Returns the master it left.
    pub fn migrate(&self, slot: u16, to: usize, pause: Duration) -> usize {
        let from = self.owner(slot).expect("an owner");
        assert_ne!(from, to, "slot {slot} is already on node {to}");
        let (from_id, to_id) = (self.id(from), self.id(to));
        let (mut src, mut dst) = (self.nodes[from].connection(), self.nodes[to].connection());
        let slot_arg = slot.to_string();
        cmd(&mut dst, &["CLUSTER", "SETSLOT", &slot_arg, "IMPORTING", &from_id]);
        cmd(&mut src, &["CLUSTER", "SETSLOT", &slot_arg, "MIGRATING", &to_id]);
        std::thread::sleep(pause);
        loop {
            let keys: Vec<String> =
                redis::cmd("CLUSTER").arg("GETKEYSINSLOT").arg(slot).arg(100).query(&mut src).unwrap();
            if keys.is_empty() {
                break;
            }
            let port = self.nodes[to].port().to_string();
            let mut migrate = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
            migrate.extend(keys.iter().map(String::as_str));
            cmd(&mut src, &migrate);
        }
        for node in [to, from].into_iter().chain(self.masters(to).into_iter().filter(|n| *n != to && *n != from)) {
            cmd(&mut self.nodes[node].connection(), &["CLUSTER", "SETSLOT", &slot_arg, "NODE", &to_id]);
        }
        from
    }
}
