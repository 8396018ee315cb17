//! The blocking breaker over ureq 3.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use breakerbox::{ManualClock, OpenWait, Policy, State};
use breakerbox_http::blocking::{Blocking, HttpBreaker};
use breakerbox_http::{Classifier, ErrorKind, Handler, HttpError};

use crate::support::{Server, refused_url};

fn ureq_breaker(threshold: u32, clock: &ManualClock) -> HttpBreaker<ureq::Agent> {
    HttpBreaker::builder(ureq::agent())
        .policy(Policy::consecutive_failures(threshold))
        .open_wait(OpenWait::fixed(Duration::from_secs(10)))
        .classifier(Classifier::only_200())
        .clock(clock.clone())
        .build()
        .unwrap()
}

#[test]
fn the_original_story_over_ureq() {
    let server = Server::start();
    let url = server.url("/");
    let clock = ManualClock::new();
    let breaker = ureq_breaker(2, &clock);

    assert_eq!(breaker.do_request("get", &url).unwrap().status(), 200);
    server.answer(500);
    for _ in 0..2 {
        // The failing status comes back as a response, with its body, not as an error.
        let mut response = breaker.do_request("GET", &url).unwrap();
        assert_eq!(response.status(), 500);
        assert_eq!(response.body_mut().read_to_string().unwrap(), "status 500");
    }
    assert!(breaker.is_open());
    for _ in 0..3 {
        match breaker.do_request("GET", &url) {
            Err(HttpError::CircuitOpen(r)) => assert_eq!(r.state(), State::Open),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(server.hits(), 3, "open calls never reach the server");

    clock.advance(Duration::from_secs(10));
    assert!(breaker.is_half_open());
    server.answer(200);
    assert_eq!(breaker.do_request("GET", &url).unwrap().status(), 200);
    assert!(breaker.is_closed());
    assert_eq!(server.hits(), 4);
}

#[test]
fn ureq_transport_errors_are_failures_with_their_kind() {
    let kinds = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&kinds);
    let breaker = HttpBreaker::builder(ureq::agent())
        .policy(Policy::consecutive_failures(1))
        .classifier(Classifier::from_fn(move |attempt| {
            seen.lock().unwrap().extend(attempt.error_kind());
            Classifier::standard().classify(attempt)
        }))
        .build()
        .unwrap();
    assert!(matches!(breaker.do_request("GET", &refused_url()), Err(HttpError::Transport(_))));
    assert_eq!(*kinds.lock().unwrap(), [ErrorKind::Connect]);
    assert!(breaker.is_open());
}

#[test]
fn ureq_sends_full_requests_and_custom_methods() {
    let server = Server::start();
    let mut breaker = ureq_breaker(5, &ManualClock::new());
    let request = http::Request::post(server.url("/orders")).header("x-id", "9").body("{}").unwrap();
    assert_eq!(breaker.send(request).unwrap().status(), 200);

    breaker.methods_mut().add("trace").unwrap();
    breaker.methods_mut().remove("DELETE");
    // ureq sends only standard methods: PURGE is tunnelled through POST.
    breaker
        .methods_mut()
        .insert(
            "PURGE",
            Handler::from_blocking_fn(|agent: &ureq::Agent, mut request| {
                *request.method_mut() = http::Method::POST;
                request.headers_mut().insert("x-http-method-override", http::HeaderValue::from_static("PURGE"));
                breakerbox_http::BlockingHttpClient::execute(agent, request)
            }),
        )
        .unwrap();
    assert_eq!(breaker.do_request("trace", &server.url("/t")).unwrap().status(), 200);
    assert_eq!(breaker.do_request("purge", &server.url("/cache")).unwrap().status(), 200);
    assert!(matches!(breaker.do_request("DELETE", &server.url("/")), Err(HttpError::InvalidMethod { .. })));

    let log = server.log();
    assert_eq!((log[0].method.as_str(), &log[0].body[..]), ("POST", &b"{}"[..]));
    assert_eq!(log[0].headers["x-id"], "9");
    assert_eq!(log[1].method.as_str(), "TRACE");
    assert_eq!(log[2].method.as_str(), "POST");
    assert_eq!(log[2].headers["x-http-method-override"], "PURGE");
    assert_eq!(server.hits(), 3);

    // An extension method ureq cannot send is the caller's problem, never counted.
    breaker.methods_mut().add("REPORT").unwrap();
    // Issue 9: the caller's error is InvalidRequest, counted nowhere (it was a
    // Transport error counted as ignored).
    assert!(matches!(breaker.do_request("REPORT", &server.url("/")), Err(HttpError::InvalidRequest(_))));
    assert_eq!(server.hits(), 3);
    assert_eq!(breaker.metrics().ignored, 0);
    let _: &Blocking<ureq::Agent> = breaker.get_ref().client();
}
