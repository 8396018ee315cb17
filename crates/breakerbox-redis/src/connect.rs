//! Where the fleet's Redis is: one node, a master found through Redis Sentinel (feature
//! `sentinel`), or a Redis Cluster (feature `cluster`), and how the background tasks
//! (re)connect to it.
//!
//! ```toml
//! redis = { url = "redis://127.0.0.1:6379" }
//! redis = { sentinel = { master = "mymaster", nodes = ["redis://10.0.0.1:26379", "redis://10.0.0.2:26379"] } }
//! redis = { cluster = { nodes = ["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"] } }
//! ```
//!
//! Every (re)connection starts over from what is configured here: the sentinels are asked
//! for the master each time the fleet connects or reconnects (on degrading and rejoining,
//! and for the pub/sub connection), since a connection is tied to one address; a cluster
//! connection is built again from the seed nodes. The fleet never retries inside an
//! operation: a failure degrades it, and it rejoins through a new connection.

use std::fmt;
use std::time::Duration;

use breakerbox::ConfigError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// How the fleet reaches Redis: [`FleetBuilder::start_with`](crate::FleetBuilder::start_with),
/// or [`FleetConfig::redis`](crate::FleetConfig::redis) and
/// [`FleetBuilder::connect`](crate::FleetBuilder::connect).
///
/// Every variant exists whatever the crate's features, so a configuration always
/// parses; starting a fleet on Sentinel or a Cluster without the feature that carries it
/// is a [`FleetError::Config`](crate::FleetError::Config) that names the feature.
///
/// With feature `serde`, externally tagged, in `snake_case`:
///
/// ```toml
/// redis = { url = "redis://127.0.0.1:6379/0" }
/// redis = { sentinel = { master = "mymaster", nodes = ["redis://127.0.0.1:26379"] } }
/// redis = { cluster = { nodes = ["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"] } }
/// ```
///
/// # Examples
///
/// ```
/// use breakerbox_redis::Connect;
///
/// let sentinel = Connect::sentinel("mymaster", ["redis://127.0.0.1:26379", "redis://127.0.0.1:26380"]);
/// let cluster = Connect::cluster(["redis://127.0.0.1:7000"]);
/// assert_ne!(sentinel, cluster);
/// Connect::url("redis://127.0.0.1:6379").validate()?;
/// # Ok::<(), breakerbox::ConfigError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case", deny_unknown_fields))]
#[non_exhaustive]
pub enum Connect {
    /// One node, by URL (`redis://[user:password@]host:port[/db]`, `rediss://` for TLS
    /// with the redis crate's TLS features): what [`FleetBuilder::start`](crate::FleetBuilder::start)
    /// does with a `redis::Client`. It follows a failover only where the address moves to
    /// the new master (a virtual IP, DNS, a proxy).
    Url(String),
    /// A master monitored by Redis Sentinel (feature `sentinel`). The sentinels are asked
    /// for the master's address (and the master is checked with `ROLE`) at every
    /// connection and reconnection of both of the fleet's connections, so the fleet
    /// follows a failover: it degrades when the old master stops answering or refuses
    /// writes as a replica, and rejoins on the master Sentinel names.
    #[non_exhaustive]
    Sentinel {
        /// The master's name, as in `sentinel monitor <name> ...`.
        master: String,
        /// The sentinels' URLs (`redis://host:26379`), asked in order; credentials in a
        /// URL are the sentinel's.
        nodes: Vec<String>,
    },
    /// A Redis Cluster (feature `cluster`): the seed nodes' URLs; the client learns the
    /// slots from them and follows `MOVED` and `ASK` redirections (a resharding, a
    /// failover). Pushes arrive on a plain subscription to one seed node (classic
    /// `PUBLISH` reaches every node of a cluster), the next one if it fails.
    #[non_exhaustive]
    Cluster {
        /// Seed nodes: a few of the cluster's nodes, masters or replicas.
        nodes: Vec<String>,
    },
}

impl Connect {
    /// One node, by URL.
    pub fn url(url: impl Into<String>) -> Self {
        Self::Url(url.into())
    }

    /// The master named `master`, found through the sentinels at `nodes`.
    pub fn sentinel<S: Into<String>>(master: impl Into<String>, nodes: impl IntoIterator<Item = S>) -> Self {
        Self::Sentinel { master: master.into(), nodes: nodes.into_iter().map(Into::into).collect() }
    }

    /// The Redis Cluster that the seed `nodes` belong to.
    pub fn cluster<S: Into<String>>(nodes: impl IntoIterator<Item = S>) -> Self {
        Self::Cluster { nodes: nodes.into_iter().map(Into::into).collect() }
    }

    /// Checks that the fleet can start with this: the URLs parse, the lists are not
    /// empty, and the feature that carries the variant is on.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] on the field `redis`, saying what to change.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |value: &dyn fmt::Debug, expected: String| Err(ConfigError::new("redis", value, expected));
        let urls = |what: &str, nodes: &[String]| {
            if nodes.is_empty() {
                return bad(&nodes, format!("at least one {what} URL, as `redis://host:port`"));
            }
            for url in nodes {
                check_url(url)?;
            }
            Ok(())
        };
        match self {
            Self::Url(url) => check_url(url),
            Self::Sentinel { master, nodes } => {
                if !cfg!(feature = "sentinel") {
                    return bad(
                        self,
                        "the `sentinel` feature of breakerbox-redis to connect through Redis Sentinel \
                         (`breakerbox-redis = { version = \"...\", features = [\"sentinel\"] }`)"
                            .to_owned(),
                    );
                }
                if master.is_empty() {
                    return bad(master, "the master's name, as in `sentinel monitor <name> ...`".to_owned());
                }
                urls("sentinel", nodes)
            }
            Self::Cluster { nodes } => {
                if !cfg!(feature = "cluster") {
                    return bad(
                        self,
                        "the `cluster` feature of breakerbox-redis to connect to a Redis Cluster \
                         (`breakerbox-redis = { version = \"...\", features = [\"cluster\"] }`)"
                            .to_owned(),
                    );
                }
                urls("cluster node", nodes)
            }
        }
    }
}

fn check_url(url: &str) -> Result<(), ConfigError> {
    redis::Client::open(url)
        .map(drop)
        .map_err(|e| ConfigError::new("redis", redact(url), format!("a Redis URL as `redis://host:port[/db]` ({e})")))
}

/// `url` without the password it may carry.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme + 3], &userinfo[..colon], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl fmt::Debug for Connect {
    /// Passwords in URLs are not shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let urls = |nodes: &[String]| nodes.iter().map(|u| redact(u)).collect::<Vec<_>>();
        match self {
            Self::Url(url) => f.debug_tuple("Url").field(&redact(url)).finish(),
            Self::Sentinel { master, nodes } => {
                f.debug_struct("Sentinel").field("master", master).field("nodes", &urls(nodes)).finish()
            }
            Self::Cluster { nodes } => f.debug_struct("Cluster").field("nodes", &urls(nodes)).finish(),
        }
    }
}

// ===== what the background tasks hold =====

/// What the tasks connect to, resolved from a [`Connect`] or a client.
#[derive(Clone)]
#[allow(clippy::large_enum_variant, reason = "one per fleet, made once")]
pub(crate) enum Target {
    Node(redis::Client),
    #[cfg(feature = "sentinel")]
    Sentinel {
        master: String,
        nodes: Vec<String>,
    },
    #[cfg(feature = "cluster")]
    Cluster {
        client: redis::cluster::ClusterClient,
        seeds: Vec<redis::Client>,
    },
}

impl Target {
    /// `connect`, validated; a cluster's operations bounded by `operation_timeout`.
    #[cfg_attr(not(feature = "cluster"), allow(unused_variables))]
    pub(crate) fn new(connect: &Connect, operation_timeout: Duration) -> Result<Self, ConfigError> {
        connect.validate()?;
        let invalid = |e: redis::RedisError| ConfigError::new("redis", connect, e.to_string());
        match connect {
            Connect::Url(url) => Ok(Self::Node(redis::Client::open(url.as_str()).map_err(invalid)?)),
            #[cfg(feature = "sentinel")]
            Connect::Sentinel { master, nodes } => Ok(Self::Sentinel { master: master.clone(), nodes: nodes.clone() }),
            #[cfg(feature = "cluster")]
            Connect::Cluster { nodes } => {
                let client = redis::cluster::ClusterClientBuilder::new(nodes.iter().map(String::as_str))
                    // A (re)connection opens one connection per seed and waits for them
                    // all, within one `operation_timeout`: a seed that does not answer (a
                    // frozen or partitioned node, a master the cluster has failed over) is
                    // given up on halfway, so the others get the connection made in time.
                    .connection_timeout(operation_timeout / 2)
                    .response_timeout(operation_timeout)
                    // Redirections (MOVED, ASK) and TRYAGAIN are retried within the
                    // operation's timeout; past it the fleet degrades and reconnects.
                    .retries(4)
                    .min_retry_wait(1)
                    .max_retry_wait(20)
                    .build()
                    .map_err(invalid)?;
                let seeds = nodes.iter().map(|u| redis::Client::open(u.as_str())).collect::<Result<_, _>>();
                Ok(Self::Cluster { client, seeds: seeds.map_err(invalid)? })
            }
            // Refused by `validate` without the feature.
            #[allow(unreachable_patterns)]
            _ => Err(ConfigError::new("redis", connect, "a way to connect this build supports")),
        }
    }

    /// A connector for the fleet's commands, or for its subscription.
    pub(crate) fn connector(&self) -> Connector {
        match self {
            Self::Node(client) => Connector::Node(client.clone()),
            #[cfg(feature = "sentinel")]
            Self::Sentinel { master, nodes } => Connector::Sentinel(SentinelConnector {
                master: master.clone(),
                nodes: nodes.clone(),
                client: None,
                current: None,
                watch: None,
            }),
            #[cfg(feature = "cluster")]
            Self::Cluster { client, seeds } => {
                Connector::Cluster { client: client.clone(), seeds: seeds.clone(), next: 0 }
            }
        }
    }
}

/// Makes the connections of one task. (Not shared: a `SentinelClient` wants `&mut`.)
#[allow(clippy::large_enum_variant, reason = "one per task, made once")]
pub(crate) enum Connector {
    Node(redis::Client),
    #[cfg(feature = "sentinel")]
    Sentinel(SentinelConnector),
    #[cfg(feature = "cluster")]
    Cluster {
        client: redis::cluster::ClusterClient,
        seeds: Vec<redis::Client>,
        next: usize,
    },
}

impl Connector {
    /// A connection for the scripts. The caller bounds the wait (a Sentinel lookup, a
    /// cluster's slots).
    pub(crate) async fn connect(&mut self, timeout: Duration) -> redis::RedisResult<Con> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(0);
        match self {
            Self::Node(client) => Ok(Con::Node(ConnectionManager::new_lazy_with_config(client.clone(), config)?)),
            #[cfg(feature = "sentinel")]
            Self::Sentinel(sentinel) => {
                let master = sentinel.master().await?;
                Ok(Con::Node(ConnectionManager::new_lazy_with_config(master, config)?))
            }
            #[cfg(feature = "cluster")]
            Self::Cluster { client, .. } => Ok(Con::Cluster(client.get_async_connection().await?)),
        }
    }

    /// A client for the subscription: the node itself, the master Sentinel names now, or
    /// the next seed node of a cluster (classic `PUBLISH` reaches every node).
    pub(crate) async fn pubsub_client(&mut self) -> redis::RedisResult<redis::Client> {
        match self {
            Self::Node(client) => Ok(client.clone()),
            #[cfg(feature = "sentinel")]
            Self::Sentinel(sentinel) => sentinel.master().await,
            #[cfg(feature = "cluster")]
            Self::Cluster { seeds, next, .. } => {
                let client = seeds[*next % seeds.len()].clone();
                *next = next.wrapping_add(1);
                Ok(client)
            }
        }
    }

    /// Whether the connection should be made again because Redis moved: a sentinel now
    /// names another master than the one this connector last connected to. Bounded by
    /// the caller. Always `false` for one node or a cluster (a cluster's client follows
    /// redirections itself).
    pub(crate) async fn moved(&mut self) -> bool {
        match self {
            Self::Node(_) => false,
            #[cfg(feature = "sentinel")]
            Self::Sentinel(sentinel) => sentinel.moved().await,
            #[cfg(feature = "cluster")]
            Self::Cluster { .. } => false,
        }
    }
}

/// Asks the sentinels for the master, keeping its connections to them between lookups.
#[cfg(feature = "sentinel")]
pub(crate) struct SentinelConnector {
    master: String,
    nodes: Vec<String>,
    client: Option<redis::sentinel::SentinelClient>,
    /// The master's address at the last lookup.
    current: Option<(String, u16)>,
    /// A connection to the sentinel that last answered [`moved`](Self::moved).
    watch: Option<redis::aio::MultiplexedConnection>,
}

#[cfg(feature = "sentinel")]
impl SentinelConnector {
    /// The master's client, asked of the sentinels now (the first that names a master
    /// that says it is one, by `ROLE`).
    async fn master(&mut self) -> redis::RedisResult<redis::Client> {
        use redis::sentinel::{SentinelClient, SentinelServerType};
        let sentinel = match &mut self.client {
            Some(c) => c,
            None => self.client.insert(SentinelClient::build(
                self.nodes.iter().map(String::as_str).collect(),
                self.master.clone(),
                None,
                SentinelServerType::Master,
            )?),
        };
        let found = sentinel.async_get_client().await;
        match &found {
            Ok(client) => {
                self.current = match client.get_connection_info().addr() {
                    redis::ConnectionAddr::Tcp(host, port) | redis::ConnectionAddr::TcpTls { host, port, .. } => {
                        Some((host.clone(), *port))
                    }
                    _ => None,
                };
            }
            // Fresh connections to the sentinels next time.
            Err(_) => self.client = None,
        }
        found
    }

    /// Whether the first sentinel that answers `SENTINEL get-master-addr-by-name` names
    /// another master than the one last found. After a failover with the old master still
    /// running (`SENTINEL FAILOVER`, a partition), Sentinel turns the old master into a
    /// replica only seconds after naming the new one (about 10 s with Redis 7.0), and
    /// meanwhile the old master accepts writes that are then lost: this check, at every
    /// refresh, moves the fleet within a `refresh_interval`. `false` when no sentinel
    /// answers or nothing was found yet.
    async fn moved(&mut self) -> bool {
        let Some(current) = &self.current else { return false };
        let ask = |con: &mut redis::aio::MultiplexedConnection| {
            let mut cmd = redis::cmd("SENTINEL");
            cmd.arg("get-master-addr-by-name").arg(&self.master);
            let mut con = con.clone();
            async move { cmd.query_async::<Option<(String, u16)>>(&mut con).await }
        };
        let mut named = None;
        if let Some(con) = &mut self.watch {
            match ask(con).await {
                Ok(addr) => named = Some(addr),
                Err(_) => self.watch = None,
            }
        }
        if named.is_none() {
            for url in &self.nodes {
                let Ok(client) = redis::Client::open(url.as_str()) else { continue };
                let Ok(mut con) = client.get_multiplexed_async_connection().await else { continue };
                if let Ok(addr) = ask(&mut con).await {
                    named = Some(addr);
                    self.watch = Some(con);
                    break;
                }
            }
        }
        matches!(named, Some(Some(addr)) if &addr != current)
    }
}

/// The scripts' connection: to one node (directly or found through Sentinel), or to a
/// cluster. Cheap to clone (both are multiplexed).
#[derive(Clone)]
pub(crate) enum Con {
    Node(ConnectionManager),
    #[cfg(feature = "cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

impl redis::aio::ConnectionLike for Con {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Self::Node(c) => c.req_packed_command(cmd),
            #[cfg(feature = "cluster")]
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Self::Node(c) => c.req_packed_commands(pipeline, offset, count),
            #[cfg(feature = "cluster")]
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Node(c) => c.get_db(),
            #[cfg(feature = "cluster")]
            Self::Cluster(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_passwords_hidden() {
        Connect::url("redis://127.0.0.1:6379/2").validate().unwrap();
        let err = Connect::url("http://x").validate().unwrap_err();
        assert_eq!(err.field(), "redis");
        let shown = format!("{:?}", Connect::url("redis://user:secret@127.0.0.1:6379"));
        assert!(!shown.contains("secret") && shown.contains("user:***@127.0.0.1"), "{shown}");
        let err = Connect::url("nope://user:secret@h").validate().unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn sentinel_and_cluster_need_their_feature_and_nodes() {
        let sentinel = Connect::sentinel("m", ["redis://127.0.0.1:26379"]);
        let cluster = Connect::cluster(["redis://127.0.0.1:7000"]);
        for (c, feature, on) in
            [(&sentinel, "sentinel", cfg!(feature = "sentinel")), (&cluster, "cluster", cfg!(feature = "cluster"))]
        {
            match c.validate() {
                Ok(()) => assert!(on),
                Err(e) => {
                    assert!(!on, "{e}");
                    assert!(e.to_string().contains(&format!("the `{feature}` feature")), "{e}");
                }
            }
        }
        if cfg!(feature = "sentinel") {
            assert!(Connect::sentinel("m", Vec::<String>::new()).validate().is_err());
            assert!(Connect::sentinel("", ["redis://127.0.0.1:26379"]).validate().is_err());
        }
        if cfg!(feature = "cluster") {
            assert!(Connect::cluster(Vec::<String>::new()).validate().is_err());
            assert!(Connect::cluster(["bad"]).validate().is_err());
        }
    }

    #[cfg(feature = "serde")]
    #[test]
    fn deserializes_externally_tagged() {
        let c: Connect =
            serde_json::from_str(r#"{ "sentinel": { "master": "m", "nodes": ["redis://127.0.0.1:26379"] } }"#).unwrap();
        assert_eq!(c, Connect::sentinel("m", ["redis://127.0.0.1:26379"]));
        let c: Connect =
            serde_json::from_str(r#"{ "cluster": { "nodes": ["redis://a:7000", "redis://b:7000"] } }"#).unwrap();
        assert_eq!(c, Connect::cluster(["redis://a:7000", "redis://b:7000"]));
        let c: Connect = serde_json::from_str(r#"{ "url": "redis://127.0.0.1:6379" }"#).unwrap();
        assert_eq!(c, Connect::url("redis://127.0.0.1:6379"));
        let back: Connect = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        let err = serde_json::from_str::<Connect>(r#"{ "sentinel": { "master": "m", "node": [] } }"#).unwrap_err();
        assert!(err.to_string().contains("node"), "{err}");
    }
}
