//! Three replicas of one service share a breaker through Redis: one replica's trip
//! opens it everywhere, one replica probes for all, and a success closes it everywhere.
//!
//! The replicas run in this process, each with its own `Fleet` (its own connections),
//! as three processes would. Needs a Redis server:
//!
//! ```text
//! REDIS_URL=redis://127.0.0.1:6379 cargo run -p breakerbox-redis --example fleet
//! ```
//!
//! Without `REDIS_URL` it says so and exits successfully.

use std::time::{Duration, Instant};

use breakerbox::{Breaker, OpenWait, Policy, State};
use breakerbox_redis::{Fleet, FleetConfig, FleetEvent};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Ok(url) = std::env::var("REDIS_URL") else {
        println!("REDIS_URL is not set: nothing to do (try REDIS_URL=redis://127.0.0.1:6379)");
        return Ok(());
    };
    let start = Instant::now();
    let config = FleetConfig::new("example-shop")
        .min_replicas(1) // one replica's trip is enough here (the default is 2)
        .min_calls(1)
        .sync_interval(Duration::from_millis(50));

    let mut replicas = Vec::new();
    for id in ["web-1", "web-2", "web-3"] {
        let fleet = Fleet::builder(config.clone().replica_id(id))
            .on_event(move |e| match e {
                FleetEvent::Opened { remaining, .. } => {
                    println!("{:>7.1?}  {id}: the fleet opened the breaker for {remaining:?}", start.elapsed())
                }
                FleetEvent::ProbeLease { .. } => {
                    println!("{:>7.1?}  {id}: holds the probe lease: it probes for the fleet", start.elapsed())
                }
                FleetEvent::Closed { .. } => println!("{:>7.1?}  {id}: the fleet closed the breaker", start.elapsed()),
                FleetEvent::Degraded { reason, .. } => println!("{id}: redis unreachable ({reason})"),
                _ => {}
            })
            .start(redis::Client::open(url.as_str())?)?;
        let breaker = fleet.breaker(
            Breaker::builder()
                .name("payments")
                .policy(Policy::consecutive_failures(3))
                .open_wait(OpenWait::fixed(Duration::from_millis(500))),
        )?;
        replicas.push((id, fleet, breaker));
    }
    for (_, fleet, _) in &replicas {
        fleet.sync().await?;
    }

    println!("{:>7.1?}  web-1: payments fails three times", start.elapsed());
    let (_, _, web1) = &replicas[0];
    for _ in 0..3 {
        let _ = web1.call(|| Err::<(), _>("503 from payments"));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    for (id, _, b) in &replicas {
        let r = b.call(|| Ok::<_, ()>(()));
        println!("{:>7.1?}  {id}: a call is {}", start.elapsed(), if r.is_err() { "rejected" } else { "admitted" });
    }

    // Every replica keeps calling; after the open wait exactly one call (the fleet's
    // probe) reaches payments, which has recovered, and the fleet closes.
    let mut probes = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while replicas.iter().any(|(_, _, b)| !b.is_closed()) && Instant::now() < deadline {
        for (id, _, b) in &replicas {
            if let Ok(permit) = b.try_acquire() {
                if permit.admitted_in() == State::HalfOpen {
                    probes += 1;
                    println!("{:>7.1?}  {id}: probe call reaches payments: 200", start.elapsed());
                }
                permit.success();
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    println!(
        "{:>7.1?}  all closed: {}; probes sent by the whole fleet: {probes}",
        start.elapsed(),
        replicas.iter().all(|(_, _, b)| b.is_closed())
    );
    Ok(())
}
