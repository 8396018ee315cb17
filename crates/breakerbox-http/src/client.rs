//! The client interface: what a client must do for an [`HttpBreaker`](crate::HttpBreaker)
//! to drive it (the original's "HTTP client interface", which let the breaker work "with
//! all http clients, and custom ones too").
//!
//! # Two traits, one breaker
//!
//! An async client implements [`HttpClient`]; a blocking one implements
//! [`BlockingHttpClient`] and goes behind [`blocking::HttpBreaker`](crate::blocking::HttpBreaker).
//! Both take an [`http::Request`] and give back a response that implements
//! [`HttpResponse`] (any [`http::Response`] does), so the breaker never needs to know
//! the client's own types.
//!
//! Why two traits and not one with a "mode"? An async `execute` must not block its
//! thread, and a blocking one must not need an async runtime; one signature cannot
//! promise both. The breaker's logic (method table, classification, retries, fallback,
//! per-host breakers) is written once, against [`HttpClient`]; the blocking breaker
//! drives the same code through [`Blocking`](crate::blocking::Blocking), whose futures
//! finish on their first poll, so it needs no runtime and spawns no thread.
//!
//! # Implementing a client
//!
//! One method is required: `execute`. `error_kind` says which errors are timeouts or
//! connection failures, and which are requests that could not even be built (those
//! never count against the server). `sleep` is the timer used between retries.
//!
//! ```
//! use std::future::Future;
//! use breakerbox_http::{ErrorKind, HttpBreaker, HttpClient, Request};
//!
//! /// A client that answers every request itself: 200 for `/ok`, 503 otherwise.
//! #[derive(Debug)]
//! struct Canned;
//!
//! impl HttpClient for Canned {
//!     type Response = http::Response<String>;
//!     type Error = std::io::Error;
//!
//!     fn execute(&self, request: Request) -> impl Future<Output = Result<Self::Response, Self::Error>> + Send {
//!         let status = if request.uri().path() == "/ok" { 200 } else { 503 };
//!         let response = http::Response::builder().status(status).body(String::new()).map_err(std::io::Error::other);
//!         std::future::ready(response)
//!     }
//!
//!     fn error_kind(error: &std::io::Error) -> ErrorKind {
//!         match error.kind() {
//!             std::io::ErrorKind::TimedOut => ErrorKind::Timeout,
//!             std::io::ErrorKind::ConnectionRefused => ErrorKind::Connect,
//!             _ => ErrorKind::Other,
//!         }
//!     }
//! }
//!
//! # futures_lite_block_on(async {
//! let breaker = HttpBreaker::new(Canned, 2, std::time::Duration::from_secs(10))?;
//! let response = breaker.do_request("get", "http://example.test/ok").await?;
//! assert_eq!(response.status(), 200);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! # fn futures_lite_block_on<F: Future>(f: F) -> F::Output {
//! #     let mut f = std::pin::pin!(f);
//! #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
//! #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v } }
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

/// The request every client receives: an [`http::Request`] with its whole body in
/// memory, so that a retry can send it again.
pub type Request = http::Request<Bytes>;

/// A response the breaker can classify: its status and headers.
///
/// Implemented for every [`http::Response`] (ureq 3 returns one) and, with the
/// `reqwest` feature, for `reqwest::Response`. The status can be overridden per breaker
/// with [`HttpBreakerBuilder::status_code`](crate::HttpBreakerBuilder::status_code)
/// (the original's replaceable `_status_code`).
pub trait HttpResponse {
    /// The status code.
    fn status(&self) -> StatusCode;

    /// The headers (the breaker reads `Retry-After`).
    fn headers(&self) -> &HeaderMap;

    /// The response's extensions, where the breaker leaves its
    /// [`Verdict`](crate::Verdict); `None` for a response that has none.
    ///
    /// # Default
    ///
    /// `None`.
    fn extensions_mut(&mut self) -> Option<&mut http::Extensions> {
        None
    }
}

impl<B> HttpResponse for http::Response<B> {
    fn status(&self) -> StatusCode {
        http::Response::status(self)
    }

    fn headers(&self) -> &HeaderMap {
        http::Response::headers(self)
    }

    fn extensions_mut(&mut self) -> Option<&mut http::Extensions> {
        Some(http::Response::extensions_mut(self))
    }
}

/// What kind of error a client returned, for the classifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The connection could not be made (refused, unreachable, DNS).
    Connect,
    /// The request or the response took too long.
    Timeout,
    /// The request could not be built or sent as given (a URL the client rejects, a bad
    /// header, https without TLS). It says nothing about the server: the breaker counts
    /// it nowhere (its permit is released unrecorded) and gives it back as
    /// [`HttpError::InvalidRequest`](crate::HttpError::InvalidRequest) or
    /// [`HttpError::InvalidUrl`](crate::HttpError::InvalidUrl).
    Request,
    /// Any other transport error (reset, protocol error, body error).
    Other,
}

/// An async HTTP client the breaker can drive.
///
/// Implemented for `reqwest::Client` of reqwest 0.13 (feature `reqwest`). See the
/// [module docs](crate::client) for a hand-written implementation, and
/// `examples/custom_client.rs` for one over a raw TCP stream.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an `HttpClient` that breakerbox-http can drive",
    label = "not an async client of breakerbox-http",
    note = "breakerbox-http implements `HttpClient` for `reqwest::Client` of reqwest 0.13 (feature `reqwest`); \
            a `reqwest::Client` of another reqwest version (0.12, say) is another type: depend on reqwest 0.13",
    note = "a blocking client (`ureq::Agent`, feature `ureq`) goes behind `breakerbox_http::blocking::HttpBreaker`",
    note = "any other client: implement `HttpClient` for it (one method, `execute`; see `breakerbox_http::client`)"
)]
pub trait HttpClient: Send + Sync + 'static {
    /// The client's response.
    type Response: HttpResponse + Send + 'static;

    /// The client's transport error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Sends `request` and waits for the response head.
    fn execute(&self, request: Request) -> impl Future<Output = Result<Self::Response, Self::Error>> + Send;

    /// What kind of error `error` is.
    ///
    /// # Default
    ///
    /// [`ErrorKind::Other`] for every error.
    fn error_kind(error: &Self::Error) -> ErrorKind {
        let _ = error;
        ErrorKind::Other
    }

    /// Waits `duration`, between retries.
    ///
    /// # Default
    ///
    /// A timer that works on any runtime: a short-lived thread sleeps and wakes the
    /// task. Clients tied to a runtime override it (the reqwest client uses
    /// `tokio::time::sleep`).
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        ThreadSleep::new(duration)
    }

    /// Whether [`buffer_body`](Self::buffer_body) reads the body; the builder's
    /// [`buffer_body`](crate::HttpBreakerBuilder::buffer_body) refuses a client that
    /// cannot.
    ///
    /// # Default
    ///
    /// `false`.
    const BUFFERS_BODY: bool = false;

    /// Reads the whole body of `response`, and gives the response back with its body in
    /// memory, for [`buffer_body`](crate::HttpBreakerBuilder::buffer_body). An error
    /// (a body that breaks) is classified as any transport error.
    ///
    /// # Default
    ///
    /// The response as it is (with [`BUFFERS_BODY`](Self::BUFFERS_BODY) `false`).
    fn buffer_body(
        &self,
        response: Self::Response,
    ) -> impl Future<Output = Result<Self::Response, Self::Error>> + Send {
        std::future::ready(Ok(response))
    }

    /// For an error of kind [`ErrorKind::Request`]: when it means the URL can never be
    /// sent by this client as built (reqwest without a TLS feature, given `https://`),
    /// the URL and what to do. The breaker then answers
    /// [`HttpError::InvalidUrl`](crate::HttpError::InvalidUrl) with them, instead of
    /// [`HttpError::InvalidRequest`](crate::HttpError::InvalidRequest).
    ///
    /// # Default
    ///
    /// `None`.
    fn invalid_url(error: &Self::Error) -> Option<(String, &'static str)> {
        let _ = error;
        None
    }
}

/// A blocking HTTP client, for [`blocking::HttpBreaker`](crate::blocking::HttpBreaker).
///
/// Implemented for `ureq::Agent` of ureq 3 (feature `ureq`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `BlockingHttpClient` that breakerbox-http can drive",
    label = "not a blocking client of breakerbox-http",
    note = "breakerbox-http implements `BlockingHttpClient` for `ureq::Agent` of ureq 3 (feature `ureq`)",
    note = "an async client (`reqwest::Client` of reqwest 0.13, feature `reqwest`) goes behind `breakerbox_http::HttpBreaker`",
    note = "any other client: implement `BlockingHttpClient` for it (one method, `execute`)"
)]
pub trait BlockingHttpClient: Send + Sync + 'static {
    /// The client's response.
    type Response: HttpResponse + Send + 'static;

    /// The client's transport error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Sends `request` and blocks until the response head has arrived.
    ///
    /// # Errors
    ///
    /// The client's transport error.
    fn execute(&self, request: Request) -> Result<Self::Response, Self::Error>;

    /// What kind of error `error` is.
    ///
    /// # Default
    ///
    /// [`ErrorKind::Other`] for every error.
    fn error_kind(error: &Self::Error) -> ErrorKind {
        let _ = error;
        ErrorKind::Other
    }
}

// ===== impl ThreadSleep =====

/// A runtime-agnostic sleep: the first poll starts a thread that sleeps, then wakes the
/// task. Dropping the sleep (a request that beat its timeout) ends the thread at once.
/// Clients on a runtime override [`HttpClient::sleep`] with the runtime's timer.
struct ThreadSleep {
    deadline: Instant,
    shared: Option<(Arc<Mutex<Timer>>, Option<Thread>)>,
}

#[derive(Default)]
struct Timer {
    done: bool,
    dropped: bool,
    waker: Option<Waker>,
}

impl ThreadSleep {
    fn new(duration: Duration) -> Self {
        Self { deadline: Instant::now() + duration, shared: None }
    }
}

impl Future for ThreadSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let now = Instant::now();
        if now >= self.deadline {
            return Poll::Ready(());
        }
        let deadline = self.deadline;
        let (shared, _) = self.shared.get_or_insert_with(|| {
            let shared = Arc::new(Mutex::new(Timer::default()));
            let theirs = Arc::clone(&shared);
            let spawned = std::thread::Builder::new().name("breakerbox-http-sleep".into()).spawn(move || {
                let mut timer = theirs.lock().unwrap_or_else(|e| e.into_inner());
                while !timer.dropped {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        timer.done = true;
                        if let Some(waker) = timer.waker.take() {
                            waker.wake();
                        }
                        break;
                    }
                    drop(timer);
                    std::thread::park_timeout(left);
                    timer = theirs.lock().unwrap_or_else(|e| e.into_inner());
                }
            });
            match spawned {
                Ok(handle) => (shared, Some(handle.thread().clone())),
                Err(_) => {
                    // No thread to wait on: sleep here rather than spin.
                    std::thread::sleep(deadline.saturating_duration_since(now));
                    shared.lock().unwrap_or_else(|e| e.into_inner()).done = true;
                    (shared, None)
                }
            }
        });
        let mut timer = shared.lock().unwrap_or_else(|e| e.into_inner());
        if timer.done {
            Poll::Ready(())
        } else {
            timer.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

impl Drop for ThreadSleep {
    fn drop(&mut self) {
        if let Some((shared, Some(thread))) = &self.shared {
            shared.lock().unwrap_or_else(|e| e.into_inner()).dropped = true;
            thread.unpark();
        }
    }
}

impl fmt::Debug for ThreadSleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadSleep").field("deadline", &self.deadline).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_sleep_wakes_after_its_deadline() {
        let start = Instant::now();
        crate::blocking::block_on(ThreadSleep::new(Duration::from_millis(30)));
        assert!(start.elapsed() >= Duration::from_millis(30));
    }
}
