//! The method table: lookups without regard to case, `InvalidMethod`, and adding,
//! replacing and removing methods; full requests through `send`.

use std::time::Duration;

use breakerbox::ManualClock;
use breakerbox_http::{Handler, HttpClient, HttpError};
use http::header::HeaderValue;

use crate::support::Server;

const DEFAULT_TABLE: [&str; 7] = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"];

#[tokio::test]
async fn an_unknown_method_is_invalid_and_lists_the_valid_ones() {
    let server = Server::start();
    let breaker = crate::original(1, Duration::from_secs(10), &ManualClock::new());
    let err = breaker.do_request("FETCH", &server.url("/")).await.unwrap_err();
    match &err {
        HttpError::InvalidMethod { method, valid } => {
            assert_eq!(method, "FETCH");
            assert_eq!(valid, &DEFAULT_TABLE);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "invalid method `FETCH`: valid methods are DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
    );
    // Nothing was sent, and nothing counted: the breaker (threshold 1) is still closed.
    assert_eq!(server.hits(), 0);
    assert!(breaker.is_closed());
    assert_eq!(breaker.metrics().failures, 0);
}

#[tokio::test]
async fn methods_are_looked_up_without_regard_to_case() {
    let server = Server::start();
    let breaker = crate::original(1, Duration::from_secs(10), &ManualClock::new());
    for method in ["get", "Get", "GET", "pOsT", "delete", "head", "options", "patch", "put"] {
        let response = breaker.do_request(method, &server.url("/")).await.unwrap();
        assert_eq!(response.status(), 200, "{method}");
    }
    let sent: Vec<String> = server.log().iter().map(|h| h.method.to_string()).collect();
    assert_eq!(sent, ["GET", "GET", "GET", "POST", "DELETE", "HEAD", "OPTIONS", "PATCH", "PUT"]);
}

#[tokio::test]
async fn an_added_method_reaches_the_server() {
    let server = Server::start();
    let mut breaker = crate::original(1, Duration::from_secs(10), &ManualClock::new());
    assert!(breaker.do_request("PURGE", &server.url("/cache")).await.unwrap_err().to_string().contains("PURGE"));

    breaker.methods_mut().add("purge").unwrap();
    assert!(breaker.methods().contains("PURGE"));
    let response = breaker.do_request("Purge", &server.url("/cache")).await.unwrap();
    assert_eq!(response.status(), 200);
    let log = server.log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].method.as_str(), "PURGE");
    assert_eq!(log[0].path, "/cache");
    assert_eq!(breaker.metrics().successes, 1, "an added method goes through the breaker");
}

#[tokio::test]
async fn a_removed_method_is_invalid() {
    let server = Server::start();
    let mut breaker = crate::original(1, Duration::from_secs(10), &ManualClock::new());
    assert!(breaker.methods_mut().remove("delete").is_some());
    assert!(breaker.methods_mut().remove("delete").is_none());
    match breaker.do_request("DELETE", &server.url("/")).await.unwrap_err() {
        HttpError::InvalidMethod { method, valid } => {
            assert_eq!(method, "DELETE");
            assert_eq!(valid, ["GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]);
        }
        other => panic!("{other:?}"),
    }
    // `send` uses the same table.
    let request = http::Request::delete(server.url("/")).body("").unwrap();
    assert!(matches!(breaker.send(request).await, Err(HttpError::InvalidMethod { .. })));
    assert_eq!(server.hits(), 0);

    breaker.methods_mut().clear();
    let err = breaker.do_request("GET", &server.url("/")).await.unwrap_err();
    assert_eq!(err.to_string(), "invalid method `GET`: the method table is empty");
}

#[tokio::test]
async fn a_replaced_handler_changes_how_the_method_is_sent() {
    let server = Server::start();
    let mut breaker = crate::original(1, Duration::from_secs(10), &ManualClock::new());
    let old = breaker
        .methods_mut()
        .insert(
            "GET",
            Handler::map_request(|mut request| {
                request.headers_mut().insert("x-via", HeaderValue::from_static("breakerbox"));
                request
            }),
        )
        .unwrap();
    assert!(old.is_some(), "GET had a handler");
    // PURGE tunnelled through POST, with the client in hand.
    breaker
        .methods_mut()
        .insert(
            "PURGE",
            Handler::from_fn(|client: &reqwest::Client, mut request| {
                *request.method_mut() = http::Method::POST;
                request.headers_mut().insert("x-http-method-override", HeaderValue::from_static("PURGE"));
                Box::pin(HttpClient::execute(client, request))
            }),
        )
        .unwrap();
    assert!(breaker.methods_mut().insert("BAD METHOD", Handler::send()).is_err());

    breaker.do_request("get", &server.url("/a")).await.unwrap();
    breaker.do_request("purge", &server.url("/b")).await.unwrap();
    let log = server.log();
    assert_eq!(log[0].headers["x-via"], "breakerbox");
    assert_eq!(log[1].method, http::Method::POST);
    assert_eq!(log[1].headers["x-http-method-override"], "PURGE");
}

#[tokio::test]
async fn send_carries_method_url_headers_and_body() {
    let server = Server::start();
    let breaker = crate::original(1, Duration::from_secs(10), &ManualClock::new());
    let request = http::Request::builder()
        .method("post") // looked up without regard to case, sent as POST
        .uri(server.url("/orders?id=7"))
        .header("content-type", "application/json")
        .header("x-request-id", "abc")
        .body(r#"{"sku":42}"#)
        .unwrap();
    let response = breaker.send(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let hit = &server.log()[0];
    assert_eq!(hit.method, http::Method::POST);
    assert_eq!(hit.path, "/orders");
    assert_eq!(hit.headers["x-request-id"], "abc");
    assert_eq!(hit.headers["content-type"], "application/json");
    assert_eq!(&hit.body[..], br#"{"sku":42}"#);

    // A failing status through `send` counts like any other.
    server.answer(500);
    let request = http::Request::put(server.url("/orders/7")).body(vec![1u8, 2, 3]).unwrap();
    assert_eq!(breaker.send(request).await.unwrap().status(), 500);
    assert!(breaker.is_open());
    let request = http::Request::get(server.url("/")).body("").unwrap();
    assert!(breaker.send(request).await.unwrap_err().is_circuit_open());
    assert_eq!(server.hits(), 2);
}
