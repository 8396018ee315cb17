//! A flaky HTTP server on 127.0.0.1 for the tests: it counts every request that reaches
//! it, logs them, and answers from a script the test controls.
//!
//! It runs on its own thread and runtime, so async and blocking tests use it alike.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, Uri};

/// One answer of the server.
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    delay: Duration,
}

impl Reply {
    pub(crate) fn status(status: u16) -> Self {
        Self { status, headers: Vec::new(), delay: Duration::ZERO }
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

impl From<u16> for Reply {
    fn from(status: u16) -> Self {
        Self::status(status)
    }
}

/// A request the server received.
#[derive(Clone, Debug)]
#[allow(dead_code)]
pub(crate) struct Hit {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

struct Shared {
    hits: AtomicU64,
    log: Mutex<Vec<Hit>>,
    script: Mutex<(VecDeque<Reply>, Reply)>,
}

/// The server. Dropping it leaves it running until the test process exits.
pub(crate) struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

#[allow(dead_code)]
impl Server {
    /// A server that answers 200 until told otherwise.
    pub(crate) fn start() -> Self {
        let shared = Arc::new(Shared {
            hits: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
            script: Mutex::new((VecDeque::new(), Reply::status(200))),
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let state = Arc::clone(&shared);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                let app = Router::new().fallback(handle).with_state(state);
                axum::serve(listener, app).await.unwrap();
            });
        });
        Self { addr: rx.recv().unwrap(), shared }
    }

    /// `http://127.0.0.1:port{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The breaker's key for this server: `http://127.0.0.1:port`.
    pub(crate) fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests that reached the server.
    pub(crate) fn hits(&self) -> u64 {
        self.shared.hits.load(Ordering::SeqCst)
    }

    /// Every request received, in order.
    pub(crate) fn log(&self) -> Vec<Hit> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Answers `reply` from now on (and forgets any queued replies).
    pub(crate) fn answer(&self, reply: impl Into<Reply>) {
        let mut script = self.shared.script.lock().unwrap();
        script.0.clear();
        script.1 = reply.into();
    }

    /// Answers these replies first, one per request, then the standing reply.
    pub(crate) fn queue(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.script.lock().unwrap().0.extend(replies);
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    shared.hits.fetch_add(1, Ordering::SeqCst);
    shared.log.lock().unwrap().push(Hit { method, path: uri.path().to_owned(), headers, body });
    let reply = {
        let mut script = shared.script.lock().unwrap();
        let standing = script.1.clone();
        script.0.pop_front().unwrap_or(standing)
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(*name, value);
    }
    response.body(Body::from(format!("status {}", reply.status))).unwrap()
}

/// A URL on 127.0.0.1 where nothing listens: connections are refused.
#[allow(dead_code)]
pub(crate) fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/")
}

/// What a [`raw`] server does after it sent the head and the first bytes of the body.
#[allow(dead_code)]
#[derive(Clone, Copy, Debug)]
pub(crate) enum Then {
    /// Keeps the connection open and sends nothing more.
    Stall,
    /// Closes the connection, short of the `content-length` it announced.
    Break,
}

/// A server on 127.0.0.1 that answers every request with a 200 head announcing a
/// 100-byte body, sends 5 bytes of it, then stalls or breaks. Returns its URL.
#[allow(dead_code)]
pub(crate) fn raw(then: Then) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut buf = [0u8; 1024];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nhello");
                let _ = stream.flush();
                if let Then::Stall = then {
                    std::thread::sleep(Duration::from_secs(30));
                }
            });
        }
    });
    format!("http://{addr}/")
}
