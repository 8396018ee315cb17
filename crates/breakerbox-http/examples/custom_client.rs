//! Any client can go behind an `HttpBreaker` (the original's "custom ones too"): here, a
//! hand-rolled HTTP/1.1 client over a tokio TCP stream implements `HttpClient`.
//!
//! ```sh
//! cargo run -p breakerbox-http --example custom_client
//! ```

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use breakerbox::{OpenWait, Policy};
use breakerbox_http::{ErrorKind, HttpBreaker, HttpClient, HttpError, Request};
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A tiny HTTP/1.1 client: one connection per request, `Connection: close`, the whole
/// response read into memory. Enough to show the trait; not a client to ship.
#[derive(Clone, Debug)]
pub(crate) struct TinyClient {
    timeout: Duration,
}

impl TinyClient {
    /// A client that gives up on a request after `timeout`.
    pub(crate) fn new(timeout: Duration) -> Self {
        Self { timeout }
    }
}

impl HttpClient for TinyClient {
    type Response = http::Response<Bytes>;
    type Error = io::Error;

    fn execute(&self, request: Request) -> impl Future<Output = io::Result<Self::Response>> + Send {
        let timeout = self.timeout;
        async move {
            match tokio::time::timeout(timeout, exchange(request)).await {
                Ok(result) => result,
                Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "no response in time")),
            }
        }
    }

    /// Tells the classifiers which errors are timeouts, which are failed connections,
    /// and which are requests this client cannot send (never the server's fault).
    fn error_kind(error: &io::Error) -> ErrorKind {
        match error.kind() {
            io::ErrorKind::TimedOut => ErrorKind::Timeout,
            io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
                ErrorKind::Connect
            }
            io::ErrorKind::InvalidInput => ErrorKind::Request,
            _ => ErrorKind::Other,
        }
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(duration)
    }
}

/// Writes the request, reads the whole response.
async fn exchange(request: Request) -> io::Result<http::Response<Bytes>> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_owned());
    let uri = request.uri();
    if uri.scheme_str() != Some("http") {
        return Err(invalid("TinyClient speaks plain http only"));
    }
    let host = uri.host().ok_or_else(|| invalid("no host"))?;
    let port = uri.port_u16().unwrap_or(80);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut head = format!(
        "{} {path} HTTP/1.1\r\nhost: {host}:{port}\r\nconnection: close\r\ncontent-length: {}\r\n",
        request.method(),
        request.body().len()
    );
    for (name, value) in request.headers() {
        let value = value.to_str().map_err(|_| invalid("a header value that is not text"))?;
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");

    let mut stream = TcpStream::connect((host, port)).await?;
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(request.body()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    parse(&raw)
}

/// Parses a status line, headers and a body (as sent with `Connection: close`).
fn parse(raw: &[u8]) -> io::Result<http::Response<Bytes>> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("headers that are not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| bad("no status line"))?;
    let mut response = http::Response::builder().status(status);
    for line in lines {
        let (name, value) = line.split_once(':').ok_or_else(|| bad("a header without a colon"))?;
        response = response.header(name.trim(), value.trim());
    }
    response.body(Bytes::copy_from_slice(&raw[end + 4..])).map_err(io::Error::other)
}

/// A server that fails its first two requests, then recovers.
async fn flaky_server() -> io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/inventory", listener.local_addr()?);
    let seen = Arc::new(AtomicU32::new(0));
    let app = axum::Router::new().fallback(move || {
        let n = seen.fetch_add(1, Ordering::SeqCst);
        async move { if n < 2 { (http::StatusCode::SERVICE_UNAVAILABLE, "down") } else { (http::StatusCode::OK, "42") } }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = flaky_server().await?;
    let breaker = HttpBreaker::builder(TinyClient::new(Duration::from_secs(2)))
        .name("inventory")
        .policy(Policy::consecutive_failures(2))
        .open_wait(OpenWait::fixed(Duration::from_millis(300)))
        .build()?;

    for call in 1..=6 {
        if call == 5 {
            println!("       ... waiting out the 300 ms window ...");
            tokio::time::sleep(Duration::from_millis(350)).await;
        }
        match breaker.do_request("GET", &url).await {
            Ok(response) => {
                let body = String::from_utf8_lossy(response.body());
                println!("call {call}: {} {body:?} (circuit {})", response.status(), breaker.state());
            }
            Err(HttpError::CircuitOpen(rejected)) => {
                let wait = rejected.retry_after().unwrap_or_default();
                println!("call {call}: failed fast, the circuit is open (a trial call in {} ms)", wait.as_millis());
            }
            Err(e) => println!("call {call}: {e}"),
        }
    }
    Ok(())
}
