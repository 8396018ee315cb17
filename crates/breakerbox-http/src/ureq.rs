//! The ureq 3 client (feature `ureq`), for [`blocking::HttpBreaker`](crate::blocking::HttpBreaker).

use std::fmt;

use http::Method;

use crate::{BlockingHttpClient, ErrorKind, Request};

/// `ureq::Agent` sends the request with its own `run`, so its settings apply, except
/// one: `http_status_as_error` is turned off for requests through the breaker, so that
/// a 4xx or 5xx comes back as a response (with its body) for the classifier to judge,
/// and the caller still gets it.
///
/// ureq sends the standard methods only: an extension method added to the table
/// (`PURGE`) fails with an error of kind [`ErrorKind::Request`], which is never counted;
/// tunnel it through a standard method with
/// [`Handler::from_blocking_fn`](crate::Handler::from_blocking_fn).
///
/// Errors: a timeout is [`ErrorKind::Timeout`]; a refused or failed connection or an
/// unknown host [`ErrorKind::Connect`]; a request ureq cannot build (bad URI, HTTPS
/// required) [`ErrorKind::Request`].
impl BlockingHttpClient for ::ureq::Agent {
    type Response = http::Response<::ureq::Body>;
    type Error = ::ureq::Error;

    fn execute(&self, request: Request) -> Result<Self::Response, Self::Error> {
        if !is_standard(request.method()) {
            return Err(::ureq::Error::Other(Box::new(UnsupportedMethod(request.method().clone()))));
        }
        if request.body().is_empty() {
            let request = self.configure_request(request.map(|_| ())).http_status_as_error(false).build();
            self.run(request)
        } else {
            let request = self.configure_request(request.map(Vec::from)).http_status_as_error(false).build();
            self.run(request)
        }
    }

    fn error_kind(error: &::ureq::Error) -> ErrorKind {
        use ::ureq::Error;
        match error {
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::ConnectionFailed | Error::HostNotFound => ErrorKind::Connect,
            Error::Io(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::TimedOut
                ) =>
            {
                if e.kind() == std::io::ErrorKind::TimedOut {
                    ErrorKind::Timeout
                } else {
                    ErrorKind::Connect
                }
            }
            Error::Other(e) if e.is::<UnsupportedMethod>() => ErrorKind::Request,
            Error::BadUri(_) | Error::Http(_) | Error::RequireHttpsOnly(_) | Error::InvalidProxyUrl => {
                ErrorKind::Request
            }
            _ => ErrorKind::Other,
        }
    }
}

/// The methods ureq can send.
fn is_standard(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET
            | Method::HEAD
            | Method::POST
            | Method::PUT
            | Method::DELETE
            | Method::CONNECT
            | Method::OPTIONS
            | Method::TRACE
            | Method::PATCH
    )
}

/// ureq cannot send this method.
#[derive(Debug)]
struct UnsupportedMethod(Method);

impl fmt::Display for UnsupportedMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ureq cannot send the extension method `{}`", self.0)
    }
}

impl std::error::Error for UnsupportedMethod {}
