//! The reqwest client (feature `reqwest`), and what the reqwest-middleware adapter
//! shares with it (feature `reqwest-middleware`).

#[cfg(feature = "reqwest")]
use std::future::Future;
#[cfg(feature = "reqwest")]
use std::time::Duration;

#[cfg(feature = "reqwest")]
use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use crate::classify::VerdictOf;
use crate::{ErrorKind, HttpResponse, Verdict};
#[cfg(feature = "reqwest")]
use crate::{HttpBreaker, HttpClient, HttpError, Request};

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

    const BUFFERS_BODY: bool = true;

    /// Reads the body (`Response::bytes`), and gives back a `reqwest::Response` with
    /// the same status, version, headers, URL and extensions, its body in memory.
    async fn buffer_body(&self, response: Self::Response) -> Result<Self::Response, Self::Error> {
        use ::reqwest::ResponseBuilderExt as _;
        let mut response = response;
        let head = http::Response::builder()
            .status(response.status())
            .version(response.version())
            .url(response.url().clone())
            .body(());
        let headers = std::mem::take(response.headers_mut());
        let extensions = std::mem::take(response.extensions_mut());
        let body = response.bytes().await?;
        // Status, version and URL come from a response: the head cannot be invalid.
        let (mut parts, ()) = head.unwrap_or_default().into_parts();
        parts.headers = headers;
        parts.extensions.extend(extensions);
        Ok(::reqwest::Response::from(http::Response::from_parts(parts, body)))
    }

    fn invalid_url(error: &::reqwest::Error) -> Option<(String, &'static str)> {
        needs_tls(error).then(|| (error.url().map_or_else(String::new, |u| u.to_string()), NO_TLS))
    }
}

/// What to do when reqwest was built without TLS.
#[cfg(feature = "reqwest")]
const NO_TLS: &str = "https needs a TLS feature of reqwest: enable one in your Cargo.toml \
                      (reqwest = { version = \"0.13\", features = [\"rustls\"] }, or \"native-tls\")";

impl HttpResponse for ::reqwest::Response {
    fn status(&self) -> StatusCode {
        ::reqwest::Response::status(self)
    }

    fn headers(&self) -> &HeaderMap {
        ::reqwest::Response::headers(self)
    }

    fn extensions_mut(&mut self) -> Option<&mut http::Extensions> {
        Some(::reqwest::Response::extensions_mut(self))
    }
}

impl VerdictOf for ::reqwest::Response {
    fn verdict(&self) -> Option<Verdict> {
        self.extensions().get::<Verdict>().copied()
    }
}

// ===== reqwest as it is =====

/// What a request through the breaker ends in.
#[cfg(feature = "reqwest")]
type Output = Result<::reqwest::Response, HttpError<::reqwest::Error>>;

#[cfg(feature = "reqwest")]
impl HttpBreaker<::reqwest::Client> {
    /// Sends a reqwest request, built with every feature of reqwest's
    /// `RequestBuilder` (`.json`, `.query`, `.form`, `.bearer_auth`, `.header`,
    /// per-request `.timeout`), through the breaker and its method table, with the
    /// builder's own client. [`RequestBuilderExt::send_through`] says the same the
    /// other way round.
    ///
    /// The request's own `.timeout(..)` replaces the breaker's
    /// [timeout](crate::HttpBreakerBuilder::timeout) for this request. The body must
    /// be in memory (bytes, text, JSON, a form), so that a retry can send it again.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use breakerbox_http::HttpBreaker;
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = reqwest::Client::new();
    /// let breaker = HttpBreaker::builder(client.clone()).build()?;
    /// let response = breaker
    ///     .execute(client.post("http://127.0.0.1:8080/orders").bearer_auth("t0k3n").body(r#"{"sku": 42}"#))
    ///     .await?;
    /// println!("{}", response.status());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`do_request`](HttpBreaker::do_request); reqwest's builder errors (a bad
    /// header, a body that does not serialize, a URL reqwest refuses) are
    /// [`HttpError::InvalidRequest`], and a streaming body
    /// [`HttpError::Unsupported`], neither sent nor counted.
    pub fn execute(&self, request: ::reqwest::RequestBuilder) -> impl Future<Output = Output> + Send + use<> {
        let (client, built) = request.build_split();
        let (request, timeout) = match built.map_err(HttpError::InvalidRequest).and_then(from_reqwest) {
            Ok((request, timeout)) => (Ok(request), timeout),
            Err(e) => (Err(e), None),
        };
        let sent = request.map(|request| self.send_with(Some(client), request, timeout));
        async move {
            match sent {
                Ok(sent) => sent.await,
                Err(e) => Err(e),
            }
        }
    }
}

/// A reqwest request as the breaker's, and its own timeout.
#[cfg(feature = "reqwest")]
fn from_reqwest(request: ::reqwest::Request) -> Result<(Request, Option<Duration>), HttpError<::reqwest::Error>> {
    let timeout = request.timeout().copied();
    let request = http::Request::<::reqwest::Body>::try_from(request).map_err(HttpError::InvalidRequest)?;
    let (parts, body) = request.into_parts();
    let body = match body.as_bytes() {
        Some(bytes) => Bytes::copy_from_slice(bytes),
        None => return Err(HttpError::Unsupported { reason: STREAMING_BODY }),
    };
    Ok((http::Request::from_parts(parts, body), timeout))
}

#[cfg(feature = "reqwest")]
const STREAMING_BODY: &str = "a streaming body cannot go through the breaker (a retry could not send it again): \
                              give the body as bytes, text, `.json` or `.form`";

/// `client.get(url).send_through(&breaker)`: reqwest's `send`, through a breaker.
///
/// # Examples
///
/// ```no_run
/// use breakerbox_http::{HttpBreaker, RequestBuilderExt};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let client = reqwest::Client::new();
/// let breaker = HttpBreaker::builder(client.clone()).build()?;
/// let stock = client
///     .get("http://127.0.0.1:8080/stock")
///     .query(&[("sku", "42")])
///     .timeout(std::time::Duration::from_secs(2))
///     .send_through(&breaker)
///     .await?
///     .text()
///     .await?;
/// # let _ = stock;
/// # Ok(()) }
/// ```
#[cfg(feature = "reqwest")]
pub trait RequestBuilderExt: sealed::Sealed {
    /// Sends the request through `breaker`; see [`HttpBreaker::execute`].
    fn send_through(self, breaker: &HttpBreaker<::reqwest::Client>) -> impl Future<Output = Output> + Send + 'static;
}

#[cfg(feature = "reqwest")]
impl RequestBuilderExt for ::reqwest::RequestBuilder {
    fn send_through(self, breaker: &HttpBreaker<::reqwest::Client>) -> impl Future<Output = Output> + Send + 'static {
        breaker.execute(self)
    }
}

#[cfg(feature = "reqwest")]
mod sealed {
    pub trait Sealed {}
    impl Sealed for ::reqwest::RequestBuilder {}
}

/// Whether `error` is reqwest's "scheme is not http": a client without TLS given an
/// `https://` URL (reqwest has no typed error for it).
fn needs_tls(error: &::reqwest::Error) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = next {
        if e.to_string().contains("scheme is not http") {
            return true;
        }
        next = e.source();
    }
    false
}

/// What kind of error a reqwest error is, for the classifiers (here and in the
/// reqwest-middleware adapter).
pub(crate) fn error_kind(error: &::reqwest::Error) -> ErrorKind {
    if error.is_builder() || needs_tls(error) {
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
