//! hyper-util's pooled client behind `PerHostLayer`: one breaker per host, in a tower
//! stack, against two local servers on 127.0.0.1.
//!
//! ```sh
//! cargo run -p breakerbox-http --example http_tower --features tower
//! ```
//!
//! `inventory` is down for its first 3 requests (503), then recovers; `pricing` is
//! healthy throughout. After 3 failures in a row, inventory's breaker opens and its
//! requests fail fast (a `Rejected`, from `call`, never from `poll_ready`) while
//! pricing's requests go on; after the 300 ms wait, one probe finds inventory healthy
//! and its breaker closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use breakerbox::{Breaker, OpenWait, Policy, Rejected};
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Service, ServiceBuilder, ServiceExt};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let (inventory, inventory_hits) = serve(3).await?;
    let (pricing, pricing_hits) = serve(0).await?;

    let hosts = breakerbox_http::tower::per_host(
        Breaker::builder()
            .name("upstream")
            .policy(Policy::consecutive_failures(3))
            .open_wait(OpenWait::fixed(Duration::from_millis(300)))
            .on_state_change(|t| println!("    [{}: {} -> {}]", t.breaker, t.from, t.to)),
    )?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut svc = ServiceBuilder::new().layer(hosts.clone()).service(client);

    for round in 1..=8 {
        if round == 7 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            println!("(300 ms later)");
        }
        for (name, addr) in [("inventory", inventory), ("pricing", pricing)] {
            let request = http::Request::get(format!("http://{addr}/item/42")).body(Empty::new())?;
            // poll_ready never fails because a breaker is open: the rejection comes from call.
            let ready = svc.ready().await?;
            match ready.call(request).await {
                Ok(response) => println!("round {round}: {name:<9} {}", response.status()),
                Err(e) if e.is::<Rejected>() => println!("round {round}: {name:<9} failed fast: {e}"),
                Err(e) => println!("round {round}: {name:<9} transport error: {e}"),
            }
        }
    }

    println!();
    println!(
        "inventory: 8 requests, {} reached the server; pricing: 8 requests, {} reached the server",
        inventory_hits.load(Ordering::Relaxed),
        pricing_hits.load(Ordering::Relaxed)
    );
    let mut states = hosts.hosts().states();
    states.sort_by(|a, b| a.0.cmp(&b.0));
    for (host, state) in states {
        println!("{host}: {state}");
    }
    Ok(())
}

/// An axum server on 127.0.0.1 that answers 503 to its first `down` requests, then 200.
async fn serve(down: u64) -> Result<(SocketAddr, Arc<AtomicU64>), BoxError> {
    let hits = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&hits);
    let app =
        axum::Router::new().fallback(move || {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            async move {
                if n < down { (http::StatusCode::SERVICE_UNAVAILABLE, "down") } else { (http::StatusCode::OK, "ok") }
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((addr, hits))
}
