//! Inputs the fuzz targets (`fuzz/`, cargo-fuzz) found to break the crate, each kept
//! here as a plain test once fixed (and in `fuzz/corpus/<target>/` as a seed).

/// `host_key`: `url::Url` reads `http://h:0/` with port 0, which the `Uri` side
/// refuses as no port a connection can go to. The middleware kept a breaker for
/// `"http://h:0"`; now, like the tower layer, it keys no such address (the request
/// goes through unguarded, and the client refuses it).
#[test]
#[cfg(all(feature = "reqwest-middleware", feature = "tower"))]
fn port_zero_gets_no_breaker_from_a_url_or_a_uri() {
    use breakerbox::{Breaker, BreakerBox};
    use breakerbox_http::BreakerMiddleware;
    use breakerbox_http::tower::PerHostService;

    let text = "http://h:0/";
    let middleware = BreakerMiddleware::new(Breaker::builder().name("t")).unwrap();
    let url: reqwest::Url = text.parse().unwrap();
    assert_eq!(url.port(), Some(0));
    assert!(middleware.breaker_for(&url).is_none(), "a breaker for {text}");
    assert!(middleware.hosts().unwrap().is_empty());

    let tower = PerHostService::new((), BreakerBox::new(Breaker::builder().name("t")).unwrap());
    assert!(tower.breaker_for(&text.parse().unwrap()).is_none());

    // Ports 1 and 65535 are keyed alike both ways.
    for (text, name) in [("http://h:1/", "t/http://h:1"), ("https://h:65535/", "t/https://h:65535")] {
        let from_url = middleware.breaker_for(&text.parse().unwrap()).map(|b| b.name().to_owned());
        let from_uri = tower.breaker_for(&text.parse().unwrap()).map(|b| b.name().to_owned());
        assert_eq!(from_url.as_deref(), Some(name), "{text}");
        assert_eq!(from_uri.as_deref(), Some(name), "{text}");
    }
}
