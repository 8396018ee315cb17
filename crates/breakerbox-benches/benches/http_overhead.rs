//! What an `HttpBreaker` costs on a real request: the same loopback GET with bare
//! reqwest and through the breaker, in the same run; and the breaker's own work alone,
//! with a client that answers in memory.
//!
//! Criterion measures each variant in turn, so background load that comes and goes
//! between them shows up as a difference. After criterion, a paired run sends the two
//! variants alternately (AB, BA, AB...) and reports the medians and the median of the
//! per-pair differences, which such drift cannot bias.
//!
//! ```sh
//! cargo bench -p breakerbox-benches --bench http_overhead
//! ```

mod measure;
mod support;

use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};

use breakerbox_http::{HttpBreaker, HttpClient, Request};
use bytes::Bytes;
use criterion::{Criterion, criterion_group};
use measure::{block_on, median};
use support::start_server;

fn loopback(c: &mut Criterion) {
    let url = start_server();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::new();
    let breaker = HttpBreaker::new(client.clone(), 5, Duration::from_secs(30)).unwrap();

    let mut group = c.benchmark_group("loopback_get");
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("reqwest", |b| {
        b.iter(|| {
            rt.block_on(async {
                let response = client.get(black_box(url.as_str())).send().await.unwrap();
                black_box(response.bytes().await.unwrap())
            })
        })
    });
    group.bench_function("reqwest through HttpBreaker", |b| {
        b.iter(|| {
            rt.block_on(async {
                let response = breaker.do_request("GET", black_box(url.as_str())).await.unwrap();
                black_box(response.bytes().await.unwrap())
            })
        })
    });
    group.finish();
}

/// A client that answers 200 from memory: what remains is the breaker's own work.
#[derive(Clone, Debug)]
struct InMemory;

impl HttpClient for InMemory {
    type Response = http::Response<Bytes>;
    type Error = std::io::Error;

    fn execute(&self, request: Request) -> impl Future<Output = Result<Self::Response, Self::Error>> + Send {
        black_box(&request);
        std::future::ready(Ok(http::Response::new(Bytes::from_static(b"ok"))))
    }
}

fn in_memory(c: &mut Criterion) {
    let url = "http://127.0.0.1:8080/item/42";
    let breaker = HttpBreaker::new(InMemory, 5, Duration::from_secs(30)).unwrap();
    // The same settings as `new`'s but one breaker per host.
    let per_host = HttpBreaker::builder(InMemory)
        .policy(breakerbox::Policy::consecutive_failures(5))
        .open_wait(breakerbox::OpenWait::fixed(Duration::from_secs(30)))
        .retry_after_limit(Duration::ZERO)
        .classifier(breakerbox_http::Classifier::only_200())
        .without_timeout()
        .per_host()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("in_memory_get");
    group.bench_function("client alone", |b| {
        b.iter(|| {
            let mut request = Request::new(Bytes::new());
            *request.uri_mut() = black_box(url).parse().unwrap();
            block_on(InMemory.execute(request)).unwrap()
        })
    });
    group.bench_function("through HttpBreaker", |b| {
        b.iter(|| block_on(breaker.do_request("GET", black_box(url))).unwrap())
    });
    group.bench_function("through HttpBreaker, per host", |b| {
        b.iter(|| block_on(per_host.do_request("GET", black_box(url))).unwrap())
    });
    group.finish();
    assert_eq!(per_host.host_states().len(), 1);
}

/// The paired run: `pairs` requests of each kind, alternating, timed one by one.
fn paired(pairs: usize) {
    let url = start_server();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::new();
    let breaker = HttpBreaker::new(client.clone(), 5, Duration::from_secs(30)).unwrap();
    let bare = || {
        let start = Instant::now();
        rt.block_on(async {
            let response = client.get(black_box(url.as_str())).send().await.unwrap();
            black_box(response.bytes().await.unwrap());
        });
        start.elapsed()
    };
    let guarded = || {
        let start = Instant::now();
        rt.block_on(async {
            let response = breaker.do_request("GET", black_box(url.as_str())).await.unwrap();
            black_box(response.bytes().await.unwrap());
        });
        start.elapsed()
    };
    for _ in 0..1_000 {
        bare();
        guarded();
    }
    let (mut a, mut b, mut diff) = (Vec::with_capacity(pairs), Vec::with_capacity(pairs), Vec::with_capacity(pairs));
    for i in 0..pairs {
        let (x, y) = if i % 2 == 0 {
            let x = bare();
            (x, guarded())
        } else {
            let y = guarded();
            (bare(), y)
        };
        a.push(x.as_nanos() as f64);
        b.push(y.as_nanos() as f64);
        diff.push(y.as_nanos() as f64 - x.as_nanos() as f64);
    }
    let (ma, mb, md) = (median(&mut a), median(&mut b), median(&mut diff));
    println!("\npaired loopback GET, {pairs} pairs, alternating");
    println!("  bare reqwest                 median {:>9.2} µs", ma / 1e3);
    println!("  reqwest through HttpBreaker  median {:>9.2} µs", mb / 1e3);
    println!(
        "  median of pair differences          {:>9.3} µs  ({:+.2} % of the bare request)",
        md / 1e3,
        md / ma * 100.0
    );
    println!("  ratio of medians                    {:>9.4}", mb / ma);
}

criterion_group!(benches, loopback, in_memory);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // Not under `cargo test --benches` (criterion's --test mode), nor when listing.
    let quick = std::env::args().any(|a| a == "--test" || a == "--list");
    if !quick {
        paired(20_000);
    }
}
