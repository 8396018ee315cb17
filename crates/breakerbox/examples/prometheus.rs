//! Exposes a breaker's metrics on 127.0.0.1 with `metrics-exporter-prometheus`, then
//! scrapes the endpoint once and prints what Prometheus would see.
//!
//! ```sh
//! cargo run -p breakerbox --example prometheus --features metrics
//! ```

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;

use breakerbox::{Breaker, OpenWait, Policy};
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A free port on loopback for the scrape endpoint.
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    // Install the recorder before building breakers: they register their series at build.
    PrometheusBuilder::new().with_http_listener(addr).install()?;

    let breaker = Breaker::builder()
        .name("payments")
        .policy(Policy::consecutive_failures(3))
        .open_wait(OpenWait::fixed(Duration::from_secs(30)))
        .build()?;
    for i in 0..10 {
        // 4 successes, then the service fails: 3 failures open the breaker, 3 rejections.
        let _ = breaker.call(|| if i < 4 { Ok(()) } else { Err("503") });
    }

    tokio::time::sleep(Duration::from_millis(100)).await; // let the listener start
    let scrape = scrape(addr).await?;
    println!("GET http://{addr}/metrics\n");
    for line in scrape.lines().filter(|l| l.contains("breakerbox")) {
        println!("{line}");
    }
    Ok(())
}

/// A plain HTTP/1.0 GET, so the example needs no HTTP client.
async fn scrape(addr: SocketAddr) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or(response))
}
