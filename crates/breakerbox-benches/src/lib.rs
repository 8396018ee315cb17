//! The workspace's benchmarks, in a package of their own so that the peers they are
//! measured against (failsafe, recloser, tower-resilience-circuitbreaker, breaker,
//! seatbelt) and criterion are dev-dependencies of no published crate: examples link
//! every dev-dependency of their package, and the README's first command would build
//! them all. Not published; nothing here but the benches in `benches/`.
//!
//! The commands and the results are in `BENCHMARKS.md` at the repository root.
