//! `BreakerMiddleware` in a reqwest-middleware chain, beside reqwest-retry and
//! reqwest-tracing, against a local server on 127.0.0.1.
//!
//! ```sh
//! cargo run -p breakerbox-http --example middleware --features reqwest-middleware
//! ```
//!
//! The chain is tracing, then retries (up to 3, 20 ms apart), then the breaker: the
//! breaker sees every attempt. The server is down for its first 3 requests. The first
//! request's attempts fail and the third failure in a row opens the breaker, whose
//! rejection ends the retries at once (reqwest-retry treats a middleware error as
//! fatal). Later requests fail fast without reaching the server; after the 300 ms
//! wait, one probe finds the server healthy and the breaker closes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use breakerbox::{Breaker, OpenWait, Policy};
use breakerbox_http::BreakerMiddleware;
use breakerbox_http::reqwest_middleware::rejection;
use reqwest_middleware::ClientBuilder;
use reqwest_retry::RetryTransientMiddleware;
use reqwest_retry::policies::ExponentialBackoff;
use reqwest_tracing::TracingMiddleware;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let hits = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&hits);
    let app = axum::Router::new().fallback(move || {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        async move { if n < 3 { (http::StatusCode::SERVICE_UNAVAILABLE, "down") } else { (http::StatusCode::OK, "ok") } }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/orders/7", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let attempts = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&attempts);
    let breaker = BreakerMiddleware::new(
        Breaker::builder()
            .name("orders")
            .policy(Policy::consecutive_failures(3))
            .open_wait(OpenWait::fixed(Duration::from_millis(300)))
            .on_outcome(move |_| {
                seen.fetch_add(1, Ordering::Relaxed);
            })
            .on_state_change(|t| println!("    [{}: {} -> {}]", t.breaker, t.from, t.to)),
    )?;
    let backoff = Duration::from_millis(20);
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(TracingMiddleware::default()) // outermost: one span per logical request
        .with(RetryTransientMiddleware::new_with_policy(
            ExponentialBackoff::builder().retry_bounds(backoff, backoff).build_with_max_retries(3),
        ))
        .with(breaker) // inside the retries: every attempt counted, a rejection ends them
        .build();

    for n in 1..=5 {
        if n == 4 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            println!("(300 ms later)");
        }
        let (start, before) = (Instant::now(), attempts.load(Ordering::Relaxed));
        let outcome = match client.get(&url).send().await {
            Ok(response) => response.status().to_string(),
            Err(err) => match rejection(&err) {
                Some(rejected) => format!("failed fast: {rejected}"),
                None => format!("error: {err}"),
            },
        };
        let tried = attempts.load(Ordering::Relaxed) - before;
        println!("request {n}: {outcome} ({tried} attempt(s) sent, {} ms)", start.elapsed().as_millis());
    }
    println!();
    println!("5 requests, {} reached the server", hits.load(Ordering::Relaxed));
    Ok(())
}
