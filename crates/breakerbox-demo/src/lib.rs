//! The home of the README's first command, `cargo run --example demo` (the example is
//! `examples/demo.rs`). Not published; the library is a placeholder.
//!
//! The demo has a package of its own so that it builds only what it runs: an example
//! links every dev-dependency of its package, and breakerbox-http's are for its tests.
