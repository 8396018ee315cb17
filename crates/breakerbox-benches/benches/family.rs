//! One breaker per host: what a family lookup plus a call costs, next to the maps a user
//! would write by hand around breakerbox's `Breaker` and around the fastest peer's
//! breaker (recloser), and next to one breaker with no lookup.
//!
//! Each iteration looks up an existing key, round robin over 64 or 10,000 keys shaped
//! like `api-17.internal.example.com:443`, and makes one successful call. `2_threads`
//! lines run two threads over the same keys (each starting at a different key) and
//! report wall time per call: below the one-thread time, the line scales.
//!
//! ```sh
//! cargo bench -p breakerbox-benches --bench family
//! ```

mod measure;

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, RwLock};

use breakerbox::{Breaker, BreakerBox};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use measure::run_threads;

fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("api-{i}.internal.example.com:443")).collect()
}

fn call(b: &Breaker) -> u64 {
    b.call(|| Ok::<_, ()>(1)).unwrap_or(0)
}

fn recloser_call(r: &recloser::Recloser) -> u64 {
    r.call(|| Ok::<_, ()>(1)).unwrap_or(0)
}

fn recloser() -> recloser::Recloser {
    recloser::Recloser::custom().error_rate(0.5).closed_len(100).open_wait(std::time::Duration::from_secs(3600)).build()
}

/// Measures `line` (a lookup of `keys` round robin, then a call) on `threads` threads.
fn bench_line<M: criterion::measurement::Measurement<Value = std::time::Duration>>(
    group: &mut criterion::BenchmarkGroup<'_, M>,
    name: &str,
    threads: usize,
    keys: &[String],
    line: impl Fn(&str) -> u64 + Sync,
) {
    let n = keys.len();
    let id = format!("{name}/{threads}_thread{}", if threads == 1 { "" } else { "s" });
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let next = std::sync::atomic::AtomicUsize::new(0);
            run_threads(iters, threads, || {
                // Each thread starts at its own key, then goes round robin.
                let mut i = next.fetch_add(n / 2, std::sync::atomic::Ordering::Relaxed) % n;
                let line = &line;
                move |_| {
                    i += 1;
                    if i == n {
                        i = 0;
                    }
                    black_box(line(black_box(keys[i].as_str())));
                }
            })
        })
    });
}

fn family_hit(c: &mut Criterion) {
    for n in [64usize, 10_000] {
        let keys = keys(n);
        let family: BreakerBox<String> = BreakerBox::new(Breaker::builder().name("hosts")).unwrap();
        let dashmap = dashmap::DashMap::new();
        let rwlock = RwLock::new(HashMap::new());
        let recloser_map = dashmap::DashMap::new();
        let papaya = papaya::HashMap::builder().hasher(ahash::RandomState::new()).build();
        let scc = scc::HashIndex::with_hasher(ahash::RandomState::new());
        for k in &keys {
            family.get(k.as_str());
            dashmap.insert(k.clone(), Breaker::new());
            rwlock.write().unwrap().insert(k.clone(), Breaker::new());
            recloser_map.insert(k.clone(), Arc::new(recloser()));
            papaya.pin().insert(k.clone(), Breaker::new());
            let _ = scc.insert_sync(k.clone(), Breaker::new());
        }
        let single = Breaker::new();

        let mut group = c.benchmark_group(format!("family_hit/{n}_keys"));
        group.throughput(Throughput::Elements(1));
        for threads in [1usize, 2] {
            let g = &mut group;
            bench_line(g, "BreakerBox::call", threads, &keys, |k| family.call(k, || Ok::<_, ()>(1)).unwrap_or(0));
            bench_line(g, "BreakerBox::get + call", threads, &keys, |k| call(&family.get(k)));
            bench_line(g, "DashMap<String, Breaker>", threads, &keys, |k| call(&dashmap.get(k).expect("known key")));
            bench_line(g, "RwLock<HashMap<String, Breaker>>", threads, &keys, |k| {
                call(rwlock.read().unwrap().get(k).expect("known key"))
            });
            bench_line(g, "DashMap<String, Arc<recloser::Recloser>>", threads, &keys, |k| {
                recloser_call(&Arc::clone(&recloser_map.get(k).expect("known key")))
            });
            bench_line(g, "papaya::HashMap<String, Breaker> (aHash)", threads, &keys, |k| {
                call(papaya.pin().get(k).expect("known key"))
            });
            bench_line(g, "scc::HashIndex<String, Breaker> (aHash)", threads, &keys, |k| {
                scc.peek_with(k, |_, b| call(b)).expect("known key")
            });
            bench_line(g, "one Breaker, no lookup", threads, &keys, |_| call(black_box(&single)));
        }
        group.finish();
        assert!(family.open_keys().is_empty());
        assert_eq!(family.len(), n, "every lookup was a hit");
    }
}

criterion_group!(benches, family_hit);
criterion_main!(benches);
