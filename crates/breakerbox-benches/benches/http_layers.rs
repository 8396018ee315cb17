//! What the tower layers and the reqwest middleware cost per call, next to
//! tower-resilience-circuitbreaker 0.14, in one run.
//!
//! | group | what one iteration is |
//! |---|---|
//! | `tower_in_memory` | `poll_ready` + `call` + the response future, on an in-memory `service_fn` that is ready at once and answers `200` (`http::Response<()>`), polled with a no-op waker: the bare service, the core's `CircuitBreakerLayer` with `StatusClassifier`, `PerHostLayer` (one host, with and without its timeout, and 64 hosts round robin), tower-resilience's layer classifying by status |
//! | `per_host_parts` | the per-host lookup's share: `BreakerBox::get` of a prebuilt key, `try_acquire_owned`, a success; and the same without the lookup |
//! | `tower_open` | the same, with the breaker open: the rejection (breakerbox only) |
//! | `middleware_in_memory` | `ClientWithMiddleware::execute` of a GET on a chain that ends in a middleware answering `200` from memory: that middleware alone, behind a pass-through middleware (the cost of any middleware), behind `BreakerMiddleware` per host, behind `BreakerMiddleware::single` |
//! | `middleware_loopback` | a GET to an axum server on 127.0.0.1, body read: bare reqwest, a reqwest-middleware client without middleware, with `BreakerMiddleware` |
//!
//! Every breaker is closed and never trips in the closed groups (checked after each).
//! After criterion, a paired run sends the three loopback variants in rotation and
//! reports their medians and the median per-rotation differences, which drift between
//! criterion's runs of each variant cannot bias.
//!
//! ```sh
//! cargo bench -p breakerbox-benches --bench http_layers -- --warm-up-time 1 --measurement-time 3
//! ```

mod measure;
#[path = "../../breakerbox-http/tests/support/memory.rs"]
mod memory;
mod support;

use std::convert::Infallible;
use std::hint::black_box;
use std::time::{Duration, Instant};

use breakerbox::{Breaker, BreakerBox, OpenWait, Policy};
use breakerbox_http::BreakerMiddleware;
use breakerbox_http::tower::PerHostLayer;
use criterion::{Criterion, criterion_group};
use http::{Request, Response, Uri};
use measure::median;
use memory::{Canned, PassThrough, call, now};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use support::start_server;
use tower::{Layer, service_fn};

const LONG: Duration = Duration::from_secs(3600);

type Upstream = tower::util::ServiceFn<fn(Request<()>) -> std::future::Ready<Result<Response<()>, Infallible>>>;

fn ok(_request: Request<()>) -> std::future::Ready<Result<Response<()>, Infallible>> {
    std::future::ready(Ok(Response::new(())))
}

fn upstream() -> Upstream {
    service_fn(ok as fn(_) -> _)
}

fn breaker() -> Breaker {
    Breaker::builder()
        .name("bench")
        .policy(Policy::consecutive_failures(5))
        .open_wait(OpenWait::fixed(LONG))
        .build()
        .unwrap()
}

fn hosts() -> BreakerBox<String> {
    BreakerBox::new(
        Breaker::builder().name("bench").policy(Policy::consecutive_failures(5)).open_wait(OpenWait::fixed(LONG)),
    )
    .unwrap()
}

fn tower_in_memory(c: &mut Criterion) {
    let uri = Uri::from_static("http://api.example:8080/item/42");
    let mut group = c.benchmark_group("tower_in_memory");

    let mut bare = upstream();
    group.bench_function("bare service_fn", |b| b.iter(|| call(&mut bare, &uri).unwrap()));

    let single = breaker();
    let mut layered = breakerbox_http::tower::layer(single.clone()).layer(upstream());
    group.bench_function("CircuitBreakerLayer + StatusClassifier", |b| b.iter(|| call(&mut layered, &uri).unwrap()));
    assert!(single.is_closed() && single.metrics().failures == 0);

    let per_host = PerHostLayer::new(hosts());
    let mut per_host_svc = per_host.layer(upstream());
    group.bench_function("PerHostLayer (1 host)", |b| b.iter(|| call(&mut per_host_svc, &uri).unwrap()));
    assert_eq!(per_host.hosts().len(), 1);
    assert!(per_host.hosts().open_keys().is_empty());

    // Without the layer's own timeout (the single-breaker layer has none): the lookup's
    // share alone.
    let untimed = PerHostLayer::new(hosts()).without_timeout();
    let mut untimed_svc = untimed.layer(upstream());
    group.bench_function("PerHostLayer (1 host, no timeout)", |b| b.iter(|| call(&mut untimed_svc, &uri).unwrap()));

    let many = PerHostLayer::new(hosts());
    let mut many_svc = many.layer(upstream());
    let uris: Vec<Uri> =
        (0..64).map(|i| format!("http://api-{i}.internal.example.com:8080/item/42").parse().unwrap()).collect();
    // Every host known before the measurement: each iteration is a hit.
    for uri in &uris {
        call(&mut many_svc, uri).unwrap();
    }
    let mut next = 0;
    group.bench_function("PerHostLayer (64 hosts, round robin)", |b| {
        b.iter(|| {
            next = (next + 1) % uris.len();
            call(&mut many_svc, &uris[next]).unwrap()
        })
    });
    assert_eq!(many.hosts().len(), 64);
    assert!(many.hosts().open_keys().is_empty());

    let tr_layer = tower_resilience_circuitbreaker::CircuitBreakerLayer::builder()
        .name("bench")
        .wait_duration_in_open(LONG)
        .classify_response(|response: &Response<()>| response.status().is_server_error())
        .build()
        .expect("valid tower-resilience config");
    let mut tr = tr_layer.layer(upstream());
    group.bench_function("tower-resilience-circuitbreaker 0.14", |b| b.iter(|| call(&mut tr, &uri).unwrap()));
    assert!(!tr.is_open());
    group.finish();

    // The parts of the per-host lookup: the family alone, with the key already built.
    let mut group = c.benchmark_group("per_host_parts");
    let family = hosts();
    group.bench_function("BreakerBox::try_acquire_owned + success", |b| {
        b.iter(|| family.try_acquire_owned(black_box("http://api.example:8080")).unwrap().success())
    });
    group.bench_function("BreakerBox::get + try_acquire_owned + success", |b| {
        b.iter(|| family.get(black_box("http://api.example:8080")).try_acquire_owned().unwrap().success())
    });
    let one = family.get("http://api.example:8080");
    group.bench_function("try_acquire_owned + success (no lookup)", |b| {
        b.iter(|| black_box(&one).try_acquire_owned().unwrap().success())
    });
    group.finish();

    let mut group = c.benchmark_group("tower_open");
    let open = breaker();
    open.force_open();
    let mut layered = breakerbox_http::tower::layer(open).layer(upstream());
    group.bench_function("CircuitBreakerLayer rejects", |b| b.iter(|| call(&mut layered, &uri).unwrap_err()));
    let per_host = PerHostLayer::new(hosts());
    per_host.hosts().get("http://api.example:8080").force_open();
    let mut per_host_svc = per_host.layer(upstream());
    group.bench_function("PerHostLayer rejects", |b| b.iter(|| call(&mut per_host_svc, &uri).unwrap_err()));
    group.finish();
}

fn middleware_in_memory(c: &mut Criterion) {
    let url = reqwest::Url::parse("http://api.example:8080/item/42").unwrap();
    let mut group = c.benchmark_group("middleware_in_memory");
    let per_host = BreakerMiddleware::new(Breaker::builder().name("bench")).unwrap();
    let single = breaker();
    let chains: [(&str, ClientWithMiddleware); 4] = [
        ("canned alone", ClientBuilder::new(reqwest::Client::new()).with(Canned).build()),
        ("pass-through + canned", ClientBuilder::new(reqwest::Client::new()).with(PassThrough).with(Canned).build()),
        (
            "BreakerMiddleware per host + canned",
            ClientBuilder::new(reqwest::Client::new()).with(per_host.clone()).with(Canned).build(),
        ),
        (
            "BreakerMiddleware::single + canned",
            ClientBuilder::new(reqwest::Client::new())
                .with(BreakerMiddleware::single(single.clone()))
                .with(Canned)
                .build(),
        ),
    ];
    for (name, client) in &chains {
        group.bench_function(*name, |b| {
            b.iter(|| now(client.execute(reqwest::Request::new(reqwest::Method::GET, url.clone()))).unwrap())
        });
    }
    group.finish();
    assert!(single.is_closed() && per_host.hosts().unwrap().open_keys().is_empty());
}

/// The three loopback clients: bare reqwest, reqwest-middleware without middleware, with
/// `BreakerMiddleware`.
struct Loopback {
    url: String,
    rt: tokio::runtime::Runtime,
    bare: reqwest::Client,
    plain: ClientWithMiddleware,
    guarded: ClientWithMiddleware,
    breakers: BreakerMiddleware,
}

impl Loopback {
    fn new() -> Self {
        let url = start_server();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let bare = reqwest::Client::new();
        let breakers = BreakerMiddleware::new(Breaker::builder().name("bench")).unwrap();
        let plain = ClientBuilder::new(bare.clone()).build();
        let guarded = ClientBuilder::new(bare.clone()).with(breakers.clone()).build();
        Self { url, rt, bare, plain, guarded, breakers }
    }

    fn bare(&self) {
        self.rt.block_on(async {
            let response = self.bare.get(black_box(self.url.as_str())).send().await.unwrap();
            black_box(response.bytes().await.unwrap());
        })
    }

    fn with(&self, client: &ClientWithMiddleware) {
        self.rt.block_on(async {
            let response = client.get(black_box(self.url.as_str())).send().await.unwrap();
            black_box(response.bytes().await.unwrap());
        })
    }
}

fn middleware_loopback(c: &mut Criterion) {
    let lo = Loopback::new();
    let mut group = c.benchmark_group("middleware_loopback");
    group.bench_function("reqwest", |b| b.iter(|| lo.bare()));
    group.bench_function("reqwest-middleware, no middleware", |b| b.iter(|| lo.with(&lo.plain)));
    group.bench_function("reqwest-middleware + BreakerMiddleware", |b| b.iter(|| lo.with(&lo.guarded)));
    group.finish();
    assert!(lo.breakers.hosts().unwrap().open_keys().is_empty());
}

/// The paired loopback run: `rounds` rotations of the three variants, each request timed.
fn paired(rounds: usize) {
    let lo = Loopback::new();
    let time = |f: &dyn Fn()| {
        let start = Instant::now();
        f();
        start.elapsed().as_nanos() as f64
    };
    let variants: [&dyn Fn(); 3] = [&|| lo.bare(), &|| lo.with(&lo.plain), &|| lo.with(&lo.guarded)];
    for _ in 0..1_000 {
        variants.iter().for_each(|f| f());
    }
    let mut t = [Vec::with_capacity(rounds), Vec::with_capacity(rounds), Vec::with_capacity(rounds)];
    for i in 0..rounds {
        // Rotate the order, so that no variant always goes first.
        for k in 0..3 {
            let v = (i + k) % 3;
            t[v].push(time(variants[v]));
        }
    }
    let mut plain_minus_bare: Vec<f64> = t[1].iter().zip(&t[0]).map(|(a, b)| a - b).collect();
    let mut guarded_minus_plain: Vec<f64> = t[2].iter().zip(&t[1]).map(|(a, b)| a - b).collect();
    let medians: Vec<f64> = t.iter_mut().map(|v| median(v)).collect();
    println!("\npaired loopback GET, {rounds} rotations of 3 requests");
    println!("  reqwest                                  median {:>9.2} µs", medians[0] / 1e3);
    println!(
        "  reqwest-middleware, no middleware        median {:>9.2} µs  ratio {:.4}",
        medians[1] / 1e3,
        medians[1] / medians[0]
    );
    println!(
        "  reqwest-middleware + BreakerMiddleware   median {:>9.2} µs  ratio {:.4}",
        medians[2] / 1e3,
        medians[2] / medians[0]
    );
    println!("  median difference, no middleware - reqwest:           {:>8.3} µs", median(&mut plain_minus_bare) / 1e3);
    println!(
        "  median difference, BreakerMiddleware - no middleware: {:>8.3} µs",
        median(&mut guarded_minus_plain) / 1e3
    );
}

criterion_group!(benches, tower_in_memory, middleware_in_memory, middleware_loopback);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // Not under `cargo test --benches` (criterion's --test mode), nor when listing.
    let quick = std::env::args().any(|a| a == "--test" || a == "--list");
    if !quick {
        paired(10_000);
    }
}
