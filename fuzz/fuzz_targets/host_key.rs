//! URLs and per-host keys: the input, as text, parsed as the crate's three ways in
//! parse it, and keyed as each keys it.
//!
//! - `HttpBreaker::breaker_for(&str)` (per host: the builder's default): `http::Uri`
//!   parsing, the crate's own `host:port` reader, the key built on the stack or heap.
//! - `tower::PerHostService::breaker_for(&http::Uri)`.
//! - `BreakerMiddleware::breaker_for(&url::Url)` (reqwest's `Url`).
//!
//! Checked, besides "no panic": each key is `"{scheme}://{host}:{port}"` as `http::Uri`
//! (or `url::Url`) itself reads scheme, host and port, in ASCII lower case, the
//! scheme's default port when none is given; an address with no such key (another
//! scheme, no host, port 0 or above 65535) gets no breaker (port 0 once did, through
//! the middleware: see `crates/breakerbox-http/tests/fuzz_regressions.rs`); `HttpBreaker` and the tower
//! layer agree; a key that parses as a URI is its own key; and a `Url` and
//! the `Uri` of its serialization get one key.

#![no_main]

use std::sync::OnceLock;

use breakerbox::{Breaker, BreakerBox};
use breakerbox_http::tower::PerHostService;
use breakerbox_http::{BreakerMiddleware, HttpBreaker};
use http::Uri;
use libfuzzer_sys::fuzz_target;
use url::Url;

fn client() -> reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(reqwest::Client::new).clone()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };

    // ===== http::Uri: HttpBreaker and the tower layer =====
    let uri = text.parse::<Uri>().ok();
    let expected = uri.as_ref().and_then(uri_key);

    let tower = PerHostService::new((), BreakerBox::new(Breaker::builder().name("t")).expect("a family"));
    let tower_key = uri.as_ref().and_then(|uri| {
        tower.breaker_for(uri)?;
        Some(only_key(tower.hosts()))
    });
    assert_eq!(tower_key, expected, "PerHostService: {text:?} ({uri:?})");

    let breaker = HttpBreaker::builder(client()).name("h").build().expect("the production defaults");
    let http_key = breaker.breaker_for(text).ok().map(|b| {
        let states = breaker.host_states();
        assert_eq!(states.len(), 1, "{text:?}: {states:?}");
        assert_eq!(b.name(), format!("h/{}", states[0].0), "{text:?}: the breaker's name");
        states[0].0.clone()
    });
    assert_eq!(http_key, expected, "HttpBreaker: {text:?}");

    if let Some(key) = &expected {
        check_key(key);
        // A key that is a URI is its own key. (Not every key is one: `http::Uri` takes
        // `http://[::2@h]:9/`, whose host it reads, as the crate does, as `h]`.)
        if let Ok(again) = key.parse::<Uri>() {
            assert_eq!(uri_key(&again).as_ref(), Some(key), "{text:?}: the key of the key {key:?}");
        }
    }

    // ===== url::Url: the reqwest middleware =====
    let Ok(url) = Url::parse(text) else { return };
    let middleware = BreakerMiddleware::new(Breaker::builder().name("m")).expect("a middleware");
    let url_key = middleware.breaker_for(&url).map(|b| {
        let key = only_key(middleware.hosts().expect("per host by default"));
        assert_eq!(b.name(), format!("m/{key}"), "{text:?}: the breaker's name");
        key
    });
    assert_eq!(url_key, expected_url_key(&url), "BreakerMiddleware: {text:?} ({url})");
    if let Some(key) = &url_key {
        check_key(key);
        // A `Url`'s serialization is canonical: as a `Uri` (where `http` can read it),
        // it names the same host.
        if let Ok(as_uri) = url.as_str().parse::<Uri>() {
            let tower = PerHostService::new((), BreakerBox::new(Breaker::builder()).expect("a family"));
            let uri_side = tower.breaker_for(&as_uri).map(|_| only_key(tower.hosts()));
            assert_eq!(uri_side.as_ref(), Some(key), "{text:?}: the Url {url} and the Uri {as_uri} differ");
        }
    }
});

/// The one key of a family that has been asked for one breaker.
fn only_key(family: &BreakerBox<String>) -> String {
    let states = family.states();
    assert_eq!(states.len(), 1, "{states:?}");
    states[0].0.clone()
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme.to_ascii_lowercase().as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// The key of `uri` as `http::Uri` reads its parts.
fn uri_key(uri: &Uri) -> Option<String> {
    let scheme = uri.scheme_str()?;
    let default = default_port(scheme)?;
    let host = uri.host().filter(|h| !h.is_empty())?;
    // `Uri::port` reads no port from `h:65536`: take the text after the host.
    let authority = uri.authority()?.as_str();
    let after_host = &authority[authority.rfind('@').map_or(0, |i| i + 1) + host.len()..];
    let port = match after_host.strip_prefix(':') {
        None | Some("") => default,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return None,
            Ok(port) => port,
        },
    };
    Some(format!("{}://{}:{port}", scheme.to_ascii_lowercase(), host.to_ascii_lowercase()))
}

/// The key of `url` as `url::Url` reads its parts.
fn expected_url_key(url: &Url) -> Option<String> {
    let default = default_port(url.scheme())?;
    let host = url.host_str().filter(|h| !h.is_empty())?;
    // Port 0 is no port a connection can go to: no key, as on the `Uri` side.
    let port = match url.port() {
        Some(0) => return None,
        port => port.unwrap_or(default),
    };
    Some(format!("{}://{host}:{port}", url.scheme()))
}

/// A key's shape: a lower-case scheme, `://`, a host, `:`, a port from 1 to 65535.
fn check_key(key: &str) {
    let (scheme, rest) = key.split_once("://").unwrap_or_else(|| panic!("{key:?}: no ://"));
    assert!(scheme == "http" || scheme == "https", "{key:?}");
    let (host, port) = rest.rsplit_once(':').unwrap_or_else(|| panic!("{key:?}: no port"));
    assert!(!host.is_empty(), "{key:?}: no host");
    assert!(!host.bytes().any(|b| b.is_ascii_uppercase()), "{key:?}: upper case");
    let port: u16 = port.parse().unwrap_or_else(|_| panic!("{key:?}: a bad port"));
    assert_ne!(port, 0, "{key:?}");
}
