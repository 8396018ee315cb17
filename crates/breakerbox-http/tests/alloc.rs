//! Heap allocations per call of the tower layers and of the reqwest middleware, counted.
//!
//! As in the core's `tests/alloc.rs`, the global allocator of this test binary is
//! `allocation-counter`'s (the workspace forbids `unsafe`, which a hand-written
//! `GlobalAlloc` needs): it counts every allocation made on the current thread while
//! `measure` runs. Each case warms its path up first (the first request to a host creates
//! its breaker), then counts over `CALLS` calls.
//!
//! - The tower layers, around an in-memory `service_fn` that is ready at once and answers
//!   an `http::Response`, are polled with a no-op waker: the bare service allocates
//!   nothing per call, and neither does either layer, closed, admitting a request that
//!   succeeds or fails (the per-host key of a known host is built on the stack). A
//!   rejection allocates exactly once: the `Box` of its `BoxError`.
//! - reqwest-middleware boxes the future of every middleware (`async_trait`), and
//!   reqwest builds its requests and responses on the heap, so a chain's calls allocate
//!   whatever its middlewares do. The breaker's own share is the difference between a
//!   chain with it and the same chain with a pass-through middleware in its place: zero.
#![cfg(all(feature = "tower", feature = "reqwest-middleware"))]

#[path = "support/memory.rs"]
mod memory;

use std::convert::Infallible;
use std::time::Duration;

use breakerbox::{Breaker, BreakerBox, OpenWait, Policy};
use breakerbox_http::BreakerMiddleware;
use breakerbox_http::tower::{BoxError, PerHostLayer};
use http::{Request, Response, Uri};
use memory::{Canned, PassThrough, call, now};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware};
use tower::{Layer, Service, service_fn};

const CALLS: u64 = 10_000;

/// Allocations over `CALLS` runs of `f`, after a warm-up.
fn count(mut f: impl FnMut(u64)) -> u64 {
    for i in 0..100 {
        f(i);
    }
    allocation_counter::measure(|| {
        for i in 0..CALLS {
            f(i);
        }
    })
    .count_total
}

/// The in-memory service: a 200, or a 503 on every tenth call of a failing run.
fn upstream(
    failing: bool,
) -> impl Service<Request<()>, Response = Response<()>, Error = Infallible, Future: Send> + Clone {
    let mut n = 0u64;
    service_fn(move |_request: Request<()>| {
        n += 1;
        let status = if failing && n.is_multiple_of(10) { 503 } else { 200 };
        let mut response = Response::new(());
        *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
        std::future::ready(Ok::<_, Infallible>(response))
    })
}

fn breaker(threshold: u32) -> Breaker {
    Breaker::builder()
        .name("alloc")
        .policy(Policy::consecutive_failures(threshold))
        .open_wait(OpenWait::fixed(Duration::from_secs(3600)))
        .build()
        .unwrap()
}

fn hosts() -> BreakerBox<String> {
    BreakerBox::new(Breaker::builder().name("alloc").policy(Policy::consecutive_failures(3))).unwrap()
}

#[test]
fn the_counter_sees_allocations() {
    assert_eq!(count(|i| drop(std::hint::black_box(Box::new(i)))), CALLS);
}

#[test]
fn tower_layers_allocate_nothing_per_call() {
    let uri = Uri::from_static("http://api.example:8080/item/42");
    for failing in [false, true] {
        let mut bare = upstream(failing);
        assert_eq!(count(|_| drop(call(&mut bare, &uri).unwrap())), 0, "bare service, failing: {failing}");

        let mut single = breakerbox_http::tower::layer(breaker(u32::MAX)).layer(upstream(failing));
        assert_eq!(count(|_| drop(call(&mut single, &uri).unwrap())), 0, "CircuitBreakerLayer, failing: {failing}");

        let layer = PerHostLayer::new(hosts());
        let mut per_host = layer.layer(upstream(failing));
        assert_eq!(count(|_| drop(call(&mut per_host, &uri).unwrap())), 0, "PerHostLayer, failing: {failing}");
        assert_eq!(layer.hosts().len(), 1);
    }
    // Among many hosts, a known host's lookup allocates nothing either.
    let layer = PerHostLayer::new(hosts());
    let mut per_host = layer.layer(upstream(false));
    let uris: Vec<Uri> = (0..64).map(|n| format!("https://host-{n}.example/x").parse().unwrap()).collect();
    for uri in &uris {
        call(&mut per_host, uri).unwrap();
    }
    assert_eq!(count(|i| drop(call(&mut per_host, &uris[i as usize % 64]).unwrap())), 0, "PerHostLayer, 64 hosts");
}

#[test]
fn a_rejection_allocates_its_box_and_nothing_else() {
    let uri = Uri::from_static("http://api.example:8080/item/42");
    let b = breaker(1);
    b.force_open();
    let mut single = breakerbox_http::tower::layer(b).layer(upstream(false));
    let rejected = |r: Result<Response<()>, BoxError>| assert!(r.unwrap_err().is::<breakerbox::Rejected>());
    assert_eq!(count(|_| rejected(call(&mut single, &uri))), CALLS, "one Box per rejection");

    let layer = PerHostLayer::new(hosts());
    layer.hosts().get("http://api.example:8080").force_open();
    let mut per_host = layer.layer(upstream(false));
    assert_eq!(count(|_| rejected(call(&mut per_host, &uri))), CALLS, "one Box per rejection");
}

fn chain(middle: impl Middleware) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new()).with(middle).with(Canned).build()
}

#[test]
fn the_middleware_adds_no_allocation_to_a_chain() {
    let url = reqwest::Url::parse("http://api.example:8080/item/42").unwrap();
    let run = |client: &ClientWithMiddleware| {
        count(|_| {
            let response = now(client.execute(reqwest::Request::new(reqwest::Method::GET, url.clone()))).unwrap();
            assert_eq!(response.status(), 200);
        })
    };
    let baseline = run(&chain(PassThrough));
    assert!(baseline > 0, "reqwest and reqwest-middleware allocate per request");
    let per_host = run(&chain(BreakerMiddleware::new(Breaker::builder().name("alloc")).unwrap()));
    let single = run(&chain(BreakerMiddleware::single(breaker(u32::MAX))));
    println!(
        "allocations per request: pass-through chain {}, with BreakerMiddleware per host {}, single {}",
        baseline as f64 / CALLS as f64,
        per_host as f64 / CALLS as f64,
        single as f64 / CALLS as f64
    );
    assert_eq!(per_host, baseline, "BreakerMiddleware (per host) allocates nothing of its own");
    assert_eq!(single, baseline, "BreakerMiddleware (single) allocates nothing of its own");
}
