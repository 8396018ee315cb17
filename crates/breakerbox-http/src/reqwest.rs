//! The reqwest client (feature `reqwest`), and what the reqwest-middleware adapter
//! shares with it (feature `reqwest-middleware`).

#[cfg(feature = "reqwest")]
use std::future::Future;
#[cfg(feature = "reqwest")]
use std::time::Duration;

use http::{HeaderMap, StatusCode};

use crate::{ErrorKind, HttpResponse};
#[cfg(feature = "reqwest")]
use crate::{HttpClient, Request};

/// `reqwest::Client` sends the request with its own `execute`, so its settings
/// (timeouts, TLS, proxies, default headers) all apply.
///
/// Errors: a request reqwest cannot build is [`ErrorKind::Request`], a timeout
/// [`ErrorKind::Timeout`], a failed connection [`ErrorKind::Connect`].
#[cfg(feature = "reqwest")]
impl HttpClient for ::reqwest::Client {
    type Response = ::reqwest::Response;
    type Error = ::reqwest::Error;

    fn execute(&self, request: Request) -> impl Future<Output = Result<Self::Response, Self::Error>> + Send {
        // reqwest's future owns what it needs: it does not borrow the client.
        let pending = to_reqwest(request).map(|request| ::reqwest::Client::execute(self, request));
        async move { pending?.await }
    }

    fn error_kind(error: &::reqwest::Error) -> ErrorKind {
        error_kind(error)
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(duration)
    }
}

impl HttpResponse for ::reqwest::Response {
    fn status(&self) -> StatusCode {
        ::reqwest::Response::status(self)
    }

    fn headers(&self) -> &HeaderMap {
        ::reqwest::Response::headers(self)
    }
}

/// What kind of error a reqwest error is, for the classifiers (here and in the
/// reqwest-middleware adapter).
pub(crate) fn error_kind(error: &::reqwest::Error) -> ErrorKind {
    if error.is_builder() {
        ErrorKind::Request
    } else if error.is_timeout() {
        ErrorKind::Timeout
    } else if error.is_connect() {
        ErrorKind::Connect
    } else {
        ErrorKind::Other
    }
}

/// The request as reqwest's own, sent exactly as `client.get(url).send()` would send it
/// (no body rather than an empty one).
///
/// The fast path joins the URL's parts for `Url::parse` (`Uri`'s `Display` costs more);
/// a URL reqwest refuses, or a request with extensions, takes reqwest's own conversion,
/// which gives reqwest's own error.
#[cfg(feature = "reqwest")]
fn to_reqwest(request: Request) -> Result<::reqwest::Request, ::reqwest::Error> {
    let uri = request.uri();
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return ::reqwest::Request::try_from(request);
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut url = String::with_capacity(scheme.len() + 3 + authority.as_str().len() + path.len());
    url.push_str(scheme);
    url.push_str("://");
    url.push_str(authority.as_str());
    url.push_str(path);
    let url = match ::reqwest::Url::parse(&url) {
        Ok(url) if request.extensions().is_empty() => url,
        _ => return ::reqwest::Request::try_from(request),
    };
    let (parts, body) = request.into_parts();
    let mut out = ::reqwest::Request::new(parts.method, url);
    *out.headers_mut() = parts.headers;
    *out.version_mut() = parts.version;
    if !body.is_empty() {
        *out.body_mut() = Some(body.into());
    }
    Ok(out)
}
