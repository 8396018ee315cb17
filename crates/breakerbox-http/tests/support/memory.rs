//! In-memory ends of a chain, shared by `tests/alloc.rs` and `benches/layers.rs`: a
//! poller for futures that are ready at once, one tower call, and two reqwest
//! middlewares (one that answers, one that passes the request on).

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use http::{Extensions, Request, Response, Uri};
use reqwest_middleware::{Middleware, Next};
use tower::Service;

/// Polls a future that is ready at once (every future of an in-memory chain is).
///
/// # Panics
///
/// When the future is not ready on its first poll.
#[inline]
pub(crate) fn now<F: Future>(fut: F) -> F::Output {
    match pin!(fut).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("not ready"),
    }
}

/// One tower call, all ready at once: `poll_ready`, `call`, the response future.
#[inline]
pub(crate) fn call<S: Service<Request<()>>>(svc: &mut S, uri: &Uri) -> Result<S::Response, S::Error> {
    now(std::future::poll_fn(|cx| svc.poll_ready(cx)))?;
    let mut request = Request::new(());
    *request.uri_mut() = uri.clone();
    now(svc.call(std::hint::black_box(request)))
}

/// Answers 200 from memory, sending nothing: the end of an in-memory chain.
pub(crate) struct Canned;

#[async_trait::async_trait]
impl Middleware for Canned {
    async fn handle(
        &self,
        _req: reqwest::Request,
        _extensions: &mut Extensions,
        _next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        Ok(reqwest::Response::from(Response::new(reqwest::Body::from(""))))
    }
}

/// Passes the request on: what any middleware costs, the stand-in for the breaker.
pub(crate) struct PassThrough;

#[async_trait::async_trait]
impl Middleware for PassThrough {
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        next.run(req, extensions).await
    }
}
