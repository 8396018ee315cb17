//! What the adapter tests (`tests/tower.rs`, `tests/middleware.rs`) share: the breaker
//! template, and a request held in flight at the server.

use std::future::Future;
use std::time::Duration;

use breakerbox::{Breaker, BreakerBuilder, ManualClock, OpenWait, Policy};

use crate::support::Server;

/// The open wait of every template.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// A breaker named `api` that opens after `threshold` consecutive failures for
/// [`WAIT`], on `clock`.
pub(crate) fn template(threshold: u32, clock: &ManualClock) -> BreakerBuilder {
    Breaker::builder()
        .name("api")
        .policy(Policy::consecutive_failures(threshold))
        .open_wait(OpenWait::fixed(WAIT))
        .clock(clock.clone())
}

/// Polls `fut` until the server has seen `hits` requests, and gives the future back
/// unfinished (the server holds its reply).
pub(crate) async fn in_flight<F: Future + Unpin>(mut fut: F, server: &Server, hits: u64) -> F {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.hits() < hits {
        assert!(tokio::time::Instant::now() < deadline, "the request never reached the server");
        let _ = tokio::time::timeout(Duration::from_millis(5), &mut fut).await;
    }
    fut
}
