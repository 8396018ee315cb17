//! The method table: which HTTP methods a breaker sends, and how (the original's
//! `_methods`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::Method;
use http::method::InvalidMethod;

use crate::{HttpClient, Request};

/// A boxed, `Send` future, as returned by a custom [`Handler`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

type Outcome<C> = Result<<C as HttpClient>::Response, <C as HttpClient>::Error>;
type HandlerFn<C> = dyn for<'a> Fn(&'a C, Request) -> BoxFuture<'a, Outcome<C>> + Send + Sync;
type MapFn = dyn Fn(Request) -> Request + Send + Sync;

/// How a method of the table sends its request.
///
/// - [`Handler::send`] (every method of the default table): the client's `execute`.
/// - [`Handler::map_request`]: changes the request, then `execute` (add a header,
///   tunnel `PURGE` through `POST` with `X-HTTP-Method-Override`).
/// - [`Handler::from_fn`]: anything else, with the client in hand.
///
/// # Examples
///
/// ```
/// use breakerbox_http::{Handler, HttpBreaker};
/// use http::header::{HeaderValue, USER_AGENT};
///
/// let mut breaker = HttpBreaker::new(reqwest::Client::new(), 5, std::time::Duration::from_secs(30))?;
/// // Every GET carries a user agent.
/// breaker.methods_mut().insert(
///     "GET",
///     Handler::map_request(|mut request| {
///         request.headers_mut().insert(USER_AGENT, HeaderValue::from_static("breakerbox"));
///         request
///     }),
/// )?;
/// // The full form: the client and the request in hand.
/// breaker.methods_mut().insert(
///     "PURGE",
///     Handler::from_fn(|client, request| Box::pin(breakerbox_http::HttpClient::execute(client, request))),
/// )?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Clone
///
/// Clones share the closure.
pub struct Handler<C: HttpClient> {
    pub(crate) kind: Kind<C>,
}

pub(crate) enum Kind<C: HttpClient> {
    Send,
    Map(Arc<MapFn>),
    Custom(Arc<HandlerFn<C>>),
}

impl<C: HttpClient> Handler<C> {
    /// Sends the request as it is, with the client's `execute`.
    pub const fn send() -> Self {
        Self { kind: Kind::Send }
    }

    /// Passes the request through `f`, then sends it with the client's `execute`.
    pub fn map_request(f: impl Fn(Request) -> Request + Send + Sync + 'static) -> Self {
        Self { kind: Kind::Map(Arc::new(f)) }
    }

    /// Sends the request with `f`, which receives the client and the request and
    /// returns a boxed future (`Box::pin(async move { .. })`).
    pub fn from_fn<F>(f: F) -> Self
    where
        F: for<'a> Fn(&'a C, Request) -> BoxFuture<'a, Outcome<C>> + Send + Sync + 'static,
    {
        Self { kind: Kind::Custom(Arc::new(f)) }
    }

    /// Hands `request` to the client (or the custom function) and gives back its call,
    /// not yet awaited: the request is gone before the caller's first await, so that the
    /// caller's future does not also keep room for it.
    pub(crate) fn start<'a>(
        &'a self,
        client: &'a C,
        request: Request,
    ) -> Call<impl Future<Output = Outcome<C>> + Send + 'a, BoxFuture<'a, Outcome<C>>> {
        match &self.kind {
            Kind::Send => Call::Execute(client.execute(request)),
            Kind::Map(f) => Call::Execute(client.execute(f(request))),
            Kind::Custom(f) => Call::Custom(f(client, request)),
        }
    }
}

/// A call [started](Handler::start), to await in place (an enum of two futures, with no
/// box for the client's own): `match` on it and await the arm's future where the call was
/// made.
pub(crate) enum Call<A, B> {
    Execute(A),
    Custom(B),
}

impl<C: HttpClient> Default for Handler<C> {
    fn default() -> Self {
        Self::send()
    }
}

impl<C: HttpClient> Clone for Handler<C> {
    fn clone(&self) -> Self {
        let kind = match &self.kind {
            Kind::Send => Kind::Send,
            Kind::Map(f) => Kind::Map(Arc::clone(f)),
            Kind::Custom(f) => Kind::Custom(Arc::clone(f)),
        };
        Self { kind }
    }
}

impl<C: HttpClient> fmt::Debug for Handler<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            Kind::Send => "Handler::send",
            Kind::Map(_) => "Handler::map_request",
            Kind::Custom(_) => "Handler::from_fn",
        })
    }
}

// ===== impl Methods =====

/// The method table: method names and their [`Handler`]s.
///
/// Names are matched without regard to case (`"get"`, `"Get"` and `"GET"` are one
/// method) and stored in upper case, which is how the request goes out. A method that is
/// not in the table is refused with [`HttpError::InvalidMethod`](crate::HttpError::InvalidMethod),
/// before the breaker is consulted.
///
/// # Examples
///
/// ```
/// use breakerbox_http::HttpBreaker;
///
/// let mut breaker = HttpBreaker::new(reqwest::Client::new(), 5, std::time::Duration::from_secs(30))?;
/// assert_eq!(breaker.methods().names(), ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]);
/// breaker.methods_mut().add("purge")?; // sent as PURGE with the client's `execute`
/// breaker.methods_mut().remove("DELETE");
/// assert!(breaker.methods().contains("Purge"));
/// assert!(!breaker.methods().contains("delete"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Default
///
/// `GET`, `HEAD`, `POST`, `PUT`, `PATCH`, `DELETE` and `OPTIONS`, each with
/// [`Handler::send`].
pub struct Methods<C: HttpClient> {
    /// Sorted by name. A handful of entries: a linear scan beats hashing a name that
    /// would first have to be upper-cased.
    entries: Vec<Entry<C>>,
}

pub(crate) struct Entry<C: HttpClient> {
    pub(crate) method: Method,
    pub(crate) handler: Handler<C>,
}

impl<C: HttpClient> Clone for Entry<C> {
    fn clone(&self) -> Self {
        Self { method: self.method.clone(), handler: self.handler.clone() }
    }
}

impl<C: HttpClient> Methods<C> {
    /// An empty table: every method is invalid until added.
    pub const fn empty() -> Self {
        Self { entries: Vec::new() }
    }

    /// The default table (see above).
    pub fn standard() -> Self {
        let mut table = Self::empty();
        for method in
            [Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::OPTIONS]
        {
            table.put(method, Handler::send());
        }
        table
    }

    /// Adds `method` with `handler`, or replaces its handler; returns the handler it
    /// replaced.
    ///
    /// # Errors
    ///
    /// `method` is not a valid HTTP method token (empty, or with a space or a
    /// separator in it).
    pub fn insert(&mut self, method: &str, handler: Handler<C>) -> Result<Option<Handler<C>>, InvalidMethod> {
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())?;
        Ok(self.put(method, handler))
    }

    /// Adds `method` with [`Handler::send`] (or resets its handler to it).
    ///
    /// # Errors
    ///
    /// As [`insert`](Self::insert).
    pub fn add(&mut self, method: &str) -> Result<&mut Self, InvalidMethod> {
        self.insert(method, Handler::send())?;
        Ok(self)
    }

    /// Removes `method`; returns its handler if it was in the table.
    pub fn remove(&mut self, method: &str) -> Option<Handler<C>> {
        let i = self.entries.iter().position(|e| e.method.as_str().eq_ignore_ascii_case(method))?;
        Some(self.entries.remove(i).handler)
    }

    /// Whether `method` is in the table.
    pub fn contains(&self, method: &str) -> bool {
        self.lookup(method).is_some()
    }

    /// The handler of `method`.
    pub fn get(&self, method: &str) -> Option<&Handler<C>> {
        self.lookup(method).map(|e| &e.handler)
    }

    /// The methods, upper case, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.method.as_str()).collect()
    }

    /// How many methods the table holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes every method.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    pub(crate) fn lookup(&self, method: &str) -> Option<&Entry<C>> {
        self.entries.iter().find(|e| e.method.as_str().eq_ignore_ascii_case(method))
    }

    fn put(&mut self, method: Method, handler: Handler<C>) -> Option<Handler<C>> {
        match self.entries.binary_search_by(|e| e.method.as_str().cmp(method.as_str())) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].handler, handler)),
            Err(i) => {
                self.entries.insert(i, Entry { method, handler });
                None
            }
        }
    }
}

impl<C: HttpClient> Default for Methods<C> {
    fn default() -> Self {
        Self::standard()
    }
}

impl<C: HttpClient> Clone for Methods<C> {
    fn clone(&self) -> Self {
        Self { entries: self.entries.clone() }
    }
}

impl<C: HttpClient> fmt::Debug for Methods<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries.iter().map(|e| (e.method.as_str(), &e.handler))).finish()
    }
}
