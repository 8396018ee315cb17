//! Puts a tower service behind a breaker, with `tracing` events printed to stderr.
//!
//! ```sh
//! cargo run -p breakerbox --example tower --features tower,tracing
//! ```

use std::time::Duration;

use breakerbox::tower::CircuitBreakerLayer;
use breakerbox::{Breaker, OpenWait, Policy, Rejected};
use tower::{Layer, Service, ServiceExt, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), breakerbox::tower::BoxError> {
    // breakerbox's tracing events (target `breakerbox`) go to stderr.
    tracing_subscriber::fmt().with_writer(std::io::stderr).without_time().with_target(false).init();
    let breaker = Breaker::builder()
        .name("inventory")
        .policy(Policy::consecutive_failures(2))
        .open_wait(OpenWait::fixed(Duration::from_millis(200)))
        .build()?;

    // An upstream that is down for its first 2 calls.
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let upstream = service_fn(move |sku: &'static str| {
        let n = calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        async move { if n < 2 { Err(format!("{sku}: connection refused")) } else { Ok(format!("{sku}: 7 in stock")) } }
    });
    let mut svc = CircuitBreakerLayer::new(breaker.clone()).layer(upstream);

    for round in 1..=6 {
        if round == 5 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            println!("(200 ms later)");
        }
        match svc.ready().await?.call("sku-42").await {
            Ok(body) => println!("call {round}: {body}"),
            Err(e) if e.is::<Rejected>() => println!("call {round}: failed fast: {e}"),
            Err(e) => println!("call {round}: upstream error: {e}"),
        }
    }
    Ok(())
}
