//! An `HttpBreaker` from a TOML file, with environment overrides, against a local
//! server on 127.0.0.1.
//!
//! ```sh
//! cargo run -p breakerbox-http --example http_config --features serde
//! HTTP_BREAKER_OPEN_WAIT=1s HTTP_BREAKER_RETRY__ATTEMPTS=1 \
//!     cargo run -p breakerbox-http --example http_config --features serde
//! ```
//!
//! The settings come from `examples/http.toml`, then `HTTP_BREAKER_<KEY>` variables
//! (`__` separates a table from its key). A bad key or value stops the example with an
//! error naming it: try `HTTP_BREAKER_RETRY__JITTER=2`.

use std::time::Duration;

use breakerbox_http::config::HttpConfig;
use breakerbox_http::{HttpBreaker, HttpError};
use figment::Figment;
use figment::providers::{Env, Format, Toml};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), BoxError> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/http.toml");
    let config: HttpConfig =
        Figment::new().merge(Toml::file(path)).merge(Env::prefixed("HTTP_BREAKER_").split("__")).extract()?;
    println!("settings: {}", serde_json::to_string(&config)?);

    // Code adds what files cannot hold: here, a listener.
    let breaker: HttpBreaker<reqwest::Client> = config
        .builder(reqwest::Client::new())
        .on_state_change(|t| println!("    [{}: {} -> {}]", t.breaker, t.from, t.to))
        .build()?;

    // A server that is down (500) for its first 2 requests.
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = hits.clone();
    let app =
        axum::Router::new().fallback(move || {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async move {
                if n < 2 { (http::StatusCode::INTERNAL_SERVER_ERROR, "down") } else { (http::StatusCode::OK, "ok") }
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/books/1", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let wait = match config.breaker.open_wait {
        Some(breakerbox::config::OpenWaitConfig::Fixed { wait, .. }) => wait,
        _ => Duration::from_millis(300),
    };
    for n in 1..=5 {
        if n == 4 {
            // The wait began at the last retry, a little after request 1 began.
            let later = wait + Duration::from_millis(100);
            tokio::time::sleep(later).await;
            println!("({} ms later)", later.as_millis());
        }
        match breaker.do_request("GET", &url).await {
            Ok(response) => println!("request {n}: {}", response.status()),
            Err(HttpError::CircuitOpen(rejected)) => println!("request {n}: failed fast: {rejected}"),
            Err(e) => println!("request {n}: {e}"),
        }
    }
    println!("\n5 requests, {} reached the server", hits.load(std::sync::atomic::Ordering::Relaxed));
    Ok(())
}
