//! Loads several named breakers from a TOML file, with environment overrides.
//!
//! ```sh
//! cargo run -p breakerbox --example config --features serde
//! BREAKER_PAYMENTS__OPEN_WAIT=5s cargo run -p breakerbox --example config --features serde
//! ```

use std::collections::BTreeMap;

use breakerbox::Breaker;
use breakerbox::config::BreakerConfig;
use figment::Figment;
use figment::providers::{Env, Format, Toml};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/breakers.toml");
    // BREAKER_<NAME>__<KEY>=value overrides a key of one breaker.
    let settings: BTreeMap<String, BreakerConfig> =
        Figment::new().merge(Toml::file(path)).merge(Env::prefixed("BREAKER_").split("__")).extract()?;

    let mut breakers = BTreeMap::new();
    for (name, config) in &settings {
        let breaker: Breaker = config.builder().name(name.clone()).build()?;
        println!("{name:<10} {}", describe(config));
        breakers.insert(name.clone(), breaker);
    }

    // Use them: three failures in a row open `payments`, and nothing else.
    for _ in 0..3 {
        let _ = breakers["payments"].call(|| Err::<(), _>("card processor timed out"));
    }
    println!();
    for (name, b) in &breakers {
        println!("{name:<10} is {}", b.state());
    }
    Ok(())
}

fn describe(c: &BreakerConfig) -> String {
    let mut parts = Vec::new();
    if let Some(n) = c.consecutive_failures {
        parts.push(format!("trips on {n} failures in a row"));
    }
    if let Some(r) = &c.failure_rate {
        parts.push(format!("or at a {:.0}% failure rate", r.threshold * 100.0));
    }
    if let Some(s) = &c.slow_calls {
        parts.push(format!("trips when {:.0}% of calls take {:?} or more", s.threshold * 100.0, s.slower_than));
    }
    if parts.is_empty() {
        parts.push("default policy (5 failures in a row)".into());
    }
    if let Some(w) = &c.open_wait {
        parts.push(format!("open wait {w:?}"));
    }
    parts.join(", ")
}
