//! `HttpBreaker`: the original's `CircuitBreaker` over any client, and its builder.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use breakerbox::{
    Breaker, BreakerBox, BreakerBuilder, Clock, Metrics, OpenWait, Outcome, Policy, Recorded, Rejected, Report, State,
    Transition,
};
use bytes::Bytes;
use http::{Method, Uri};

use crate::breakers::{BreakerRef, Breakers};
use crate::fallback::Fallback;
use crate::host::Host;
use crate::method::{Call, Entry};
use crate::retry::RetryState;
use crate::timeout::{DEFAULT_TIMEOUT, Deadline};
use crate::{
    Classifier, ConfigError, ErrorKind, Failure, FallbackOn, Handler, HttpClient, HttpError, HttpResponse, Methods,
    Request, Retry,
};

type StatusFn<R> = dyn Fn(&R) -> http::StatusCode + Send + Sync;
type Response<C> = <C as HttpClient>::Response;
/// What a request through the breaker ends in (and what one attempt ends in: a
/// response, a transport error, a timeout, or the caller's error).
type Output<C> = Result<<C as HttpClient>::Response, HttpError<<C as HttpClient>::Error>>;

/// A circuit breaker over an HTTP client: the original's `CircuitBreaker`, made
/// thread-safe, over any client.
///
/// [`new`](Self::new) has the original's constructor and semantics: after
/// `error_threshold` consecutive failures (any status but 200, or a transport error) the
/// circuit opens, and requests fail fast with [`HttpError::CircuitOpen`] until
/// `time_window` has passed; then one trial request goes through, and closes the
/// circuit if it succeeds or opens it again if it fails. [`builder`](Self::builder)
/// starts from the production defaults instead (see the [crate docs](crate#defaults)).
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use breakerbox_http::{HttpBreaker, HttpError};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let breaker = HttpBreaker::new(reqwest::Client::new(), 3, Duration::from_secs(10))?;
/// match breaker.do_request("get", "http://127.0.0.1:8080/stock/42").await {
///     Ok(response) => println!("{}", response.status()), // may be a 500: it was counted
///     Err(HttpError::CircuitOpen(rejected)) => println!("down; retry in {:?}", rejected.retry_after()),
///     Err(e) => println!("{e}"),
/// }
/// // The futures own what they need: spawn them.
/// let task = tokio::spawn(breaker.do_request("GET", "http://127.0.0.1:8080/health"));
/// let _ = task.await?;
/// # Ok(())
/// # }
/// ```
///
/// # Clone
///
/// A clone is one reference count: clones share the breakers, the retry budget, the
/// settings and the method table. [`methods_mut`](Self::methods_mut) on a clone gives
/// that clone a table of its own (copy on write); the breakers stay shared.
///
/// # Thread safety
///
/// Every request method takes `&self` and returns a `Send + 'static` future: share one
/// breaker (or clones) between tasks and threads, and `tokio::spawn` its requests. A
/// closed breaker admits a request with one atomic load.
pub struct HttpBreaker<C: HttpClient> {
    inner: Arc<Inner<C>>,
}

/// What a handle holds: the method table, and what every table shares.
struct Inner<C: HttpClient> {
    methods: Methods<C>,
    shared: Arc<Shared<C>>,
}

impl<C: HttpClient> Clone for Inner<C> {
    fn clone(&self) -> Self {
        Self { methods: self.methods.clone(), shared: Arc::clone(&self.shared) }
    }
}

struct Shared<C: HttpClient> {
    client: C,
    breakers: Breakers,
    /// The breaker that names this one: the single breaker, or, per host, one built from
    /// the template that never serves a request (for the name, the metrics before any
    /// host, and the clock of the retry budget).
    named: Breaker,
    classifier: Classifier,
    status: Option<Arc<StatusFn<C::Response>>>,
    fallback: Option<Fallback<C::Response, C::Error>>,
    retry: Option<RetryState>,
    timeout: Option<Duration>,
    buffer_body: bool,
}

/// A request that passed the checks: its method's entry, what the request is built
/// from (a URI for `do_request`, the request itself for `send`), and a timeout of its
/// own (reqwest's per-request `.timeout`).
///
/// The request is built inside the future, right before it is handed to the client, so
/// that the future does not carry it across its awaits.
pub(crate) struct Target<C: HttpClient, T> {
    entry: Entry<C>,
    payload: T,
    timeout: Option<Duration>,
}

impl<C: HttpClient, T> Target<C, T> {
    /// Bounds every attempt by `timeout` instead of the breaker's.
    pub(crate) fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        if timeout.is_some() {
            self.timeout = timeout;
        }
        self
    }
}

/// How every attempt of one request is made: by which client, through which breaker,
/// with which handler, within which timeout.
struct Way<'a, C: HttpClient> {
    client: &'a C,
    breaker: &'a Breaker,
    handler: &'a Handler<C>,
    timeout: Option<Duration>,
}

impl<C: HttpClient> HttpBreaker<C> {
    /// The original's constructor, with the original's semantics: one breaker for
    /// every host, opened by `error_threshold` consecutive failures, open for exactly
    /// `time_window` (a `Retry-After` is not applied), then one trial request. Only
    /// status 200 is a success ([`Classifier::only_200`]), and there is no timeout of
    /// the breaker's own (the client's applies). See the [crate docs](crate#defaults)
    /// for how this differs from [`builder`](Self::builder).
    ///
    /// # Errors
    ///
    /// A zero `error_threshold` or `time_window`.
    pub fn new(client: C, error_threshold: u32, time_window: Duration) -> Result<Self, ConfigError> {
        Self::builder(client).original(error_threshold, time_window).build()
    }

    /// A builder, from the production defaults (the [crate docs](crate#defaults) list
    /// them): any policy and open wait, a classifier, a timeout, a fallback, retries,
    /// one breaker per host, a name, listeners. See [`HttpBreakerBuilder`].
    pub fn builder(client: C) -> HttpBreakerBuilder<C> {
        HttpBreakerBuilder::with_client(client)
    }

    /// Sends a `method` request to `url` through the breaker (the original's call).
    ///
    /// `method` is looked up in the [method table](Self::methods) without regard to
    /// case. The method and the URL are checked when this is called, before the breaker
    /// is consulted; the request is sent when the future is awaited. The future owns
    /// what it needs (`'static`): it can be spawned.
    ///
    /// # Errors
    ///
    /// - [`HttpError::InvalidMethod`]: `method` is not in the table;
    /// - [`HttpError::InvalidUrl`]: `url` is not an `http` or `https` URL with a host
    ///   and a valid port, or one the client cannot send (https without TLS);
    /// - [`HttpError::InvalidRequest`]: the client could not build the request;
    /// - [`HttpError::CircuitOpen`]: the breaker refused the request (unless the
    ///   fallback takes rejections);
    /// - [`HttpError::TimedOut`]: the breaker's timeout expired, after any retries;
    /// - [`HttpError::Transport`]: the client's error, after any retries (unless the
    ///   fallback takes failures).
    ///
    /// A response with a failing status is `Ok`: it is counted, and given back as the
    /// client gave it (or to the fallback, if it takes failures), with a
    /// [`Verdict`](crate::Verdict) that says how it was counted.
    pub fn do_request(&self, method: &str, url: &str) -> impl Future<Output = Output<C>> + Send + use<C> {
        let target = self.target_url(method, url);
        let shared = Arc::clone(&self.inner.shared);
        async move {
            let build = |method: &Method, uri| {
                let mut request = Request::new(Bytes::new());
                *request.method_mut() = method.clone();
                *request.uri_mut() = uri;
                request
            };
            shared.run(&shared.client, target, itself, build).await
        }
    }

    /// Sends a full request (method, URL, headers, body, extensions) through the same
    /// breaker and the same method table as [`do_request`](Self::do_request).
    ///
    /// # Errors
    ///
    /// As [`do_request`](Self::do_request).
    pub fn send<B: Into<Bytes>>(
        &self,
        request: http::Request<B>,
    ) -> impl Future<Output = Output<C>> + Send + use<C, B> {
        self.send_with(None, request.map(Into::into), None)
    }

    /// [`send`](Self::send), with another client of the same type when given one
    /// (reqwest's `RequestBuilder` brings its own), and a timeout of the request's own.
    pub(crate) fn send_with(
        &self,
        client: Option<C>,
        request: Request,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Output<C>> + Send + use<C> {
        let target = self.target_request(request).map(|t| t.with_timeout(timeout));
        let shared = Arc::clone(&self.inner.shared);
        async move {
            let build = |method: &Method, mut request: Request| {
                *request.method_mut() = method.clone();
                request
            };
            shared.run(client.as_ref().unwrap_or(&shared.client), target, Request::uri, build).await
        }
    }

    /// The state. With one breaker per host: the worst among the hosts (open if any
    /// host is open, else half-open if any is, else closed).
    pub fn state(&self) -> State {
        self.inner.shared.breakers.state()
    }

    /// Whether requests are being refused (open or forced open); with one breaker per
    /// host, whether any host's are.
    pub fn is_open(&self) -> bool {
        self.state().is_open()
    }

    /// Whether the breaker is half-open. As in the original, an open breaker whose
    /// window has passed reports half-open before any request arrives.
    pub fn is_half_open(&self) -> bool {
        self.state() == State::HalfOpen
    }

    /// Whether the breaker is closed (with one breaker per host: every host's is).
    pub fn is_closed(&self) -> bool {
        self.state() == State::Closed
    }

    /// Closes the breaker (every host's) and clears its counters of failures (the
    /// original's `clear_state`).
    pub fn clear_state(&self) {
        self.inner.shared.breakers.reset();
    }

    /// Switches [shadow mode](breakerbox::BreakerBuilder::shadow) on or off, for every
    /// host's breaker: every request is sent, and the ones the breaker would have
    /// refused are counted in [`Metrics::would_reject`].
    pub fn set_shadow(&self, on: bool) {
        self.inner.shared.breakers.set_shadow(on);
    }

    /// A snapshot of the state and counters. With one breaker per host: the counters
    /// summed over the hosts, the longest streak of failures, and the state, time in
    /// state and rates of the worst host.
    pub fn metrics(&self) -> Metrics {
        let shared = &self.inner.shared;
        shared.breakers.metrics().unwrap_or_else(|| shared.named.metrics())
    }

    /// The breaker's name (per host, each host's breaker is named `"{name}/{host}"`).
    pub fn name(&self) -> &str {
        self.inner.shared.named.name()
    }

    /// The timeout of each attempt (`None`: no timeout of the breaker's own).
    pub fn timeout(&self) -> Option<Duration> {
        self.inner.shared.timeout
    }

    /// The method table.
    pub fn methods(&self) -> &Methods<C> {
        &self.inner.methods
    }

    /// The method table, to add, replace and remove methods (the original's
    /// `_methods`). A handle whose table is shared with clones gets a copy of its own
    /// first (edit the table before cloning to change them all).
    pub fn methods_mut(&mut self) -> &mut Methods<C> {
        &mut Arc::make_mut(&mut self.inner).methods
    }

    /// The client.
    pub fn client(&self) -> &C {
        &self.inner.shared.client
    }

    /// The core breaker, when there is one for every host; `None` with one breaker per
    /// host (see [`breaker_for`](Self::breaker_for)).
    pub fn breaker(&self) -> Option<&Breaker> {
        self.inner.shared.breakers.single()
    }

    /// The core breaker that guards requests to `url` (created on first use, per host).
    ///
    /// # Errors
    ///
    /// [`HttpError::InvalidUrl`].
    pub fn breaker_for(&self, url: &str) -> Result<Breaker, HttpError<C::Error>> {
        let uri = parse_url(url)?;
        let breaker = self.inner.shared.breaker_for(&uri).map_err(|reason| invalid_url(url, reason))?;
        Ok(breaker.into_owned())
    }

    /// The state of each host's breaker, as `("http://host:port", state)`, sorted by
    /// host; empty unless the breaker keeps one breaker per host.
    pub fn host_states(&self) -> Vec<(String, State)> {
        self.inner.shared.breakers.host_states()
    }

    fn lookup(&self, method: &str) -> Result<Entry<C>, HttpError<C::Error>> {
        let methods = &self.inner.methods;
        methods.lookup(method).cloned().ok_or_else(|| HttpError::InvalidMethod {
            method: method.to_owned(),
            valid: methods.names().into_iter().map(String::from).collect(),
        })
    }

    fn target_url(&self, method: &str, url: &str) -> Result<Target<C, Uri>, HttpError<C::Error>> {
        let entry = self.lookup(method)?;
        let uri = parse_url(url)?;
        Host::of_uri(&uri).map_err(|reason| invalid_url(url, reason))?;
        Ok(Target { entry, payload: uri, timeout: self.inner.shared.timeout })
    }

    fn target_request(&self, request: Request) -> Result<Target<C, Request>, HttpError<C::Error>> {
        let entry = self.lookup(request.method().as_str())?;
        Host::of_uri(request.uri()).map_err(|reason| invalid_url(&request.uri().to_string(), reason))?;
        Ok(Target { entry, payload: request, timeout: self.inner.shared.timeout })
    }
}

impl<C: HttpClient> Shared<C> {
    fn breaker_for<'a>(&'a self, uri: &Uri) -> Result<BreakerRef<'a>, &'static str> {
        Host::of_uri(uri).map(|host| self.breakers.get(host))
    }

    /// Sends a checked request with `client`: the first attempt through the breaker,
    /// then (boxed, off the fast path) any retries, then the fallback.
    async fn run<T>(
        &self,
        client: &C,
        target: Result<Target<C, T>, HttpError<C::Error>>,
        uri: impl Fn(&T) -> &Uri,
        build: impl FnOnce(&Method, T) -> Request,
    ) -> Output<C> {
        let Target { entry, payload, timeout } = target?;
        // Checked when the request was made: this finds the host's breaker.
        let uri = uri(&payload);
        let breaker = self.breaker_for(uri).map_err(|reason| invalid_url(&uri.to_string(), reason))?;
        let way = Way { client, breaker: &breaker, handler: &entry.handler, timeout };
        let retry = self.retry.as_ref().filter(|r| r.applies_to(&entry.method));
        // The request is built once admitted, and every admitted request counts in the
        // retry budget (retried or not).
        let first = self.attempt(&way, retry.is_some(), || {
            if let Some(r) = &self.retry {
                r.deposit();
            }
            build(&entry.method, payload)
        });
        let first = match first.await {
            Ok(attempted) => attempted,
            Err(rejected) => return self.rejected(rejected).await,
        };
        match (first, retry) {
            (Attempted { result, failed: false, .. }, _) => result,
            (Attempted { result, hint, next: Some(next), .. }, Some(retry)) => {
                Box::pin(self.retry(retry, &way, *next, result, hint)).await
            }
            (Attempted { result, .. }, _) => self.failed(result).await,
        }
    }

    /// Retries after the first attempt failed with `result`. Every attempt goes through
    /// the breaker; a rejection ends the request at once (the breaker just said the
    /// server is down).
    async fn retry(
        &self,
        retry: &RetryState,
        way: &Way<'_, C>,
        mut request: Request,
        mut result: Output<C>,
        mut hint: Option<Duration>,
    ) -> Output<C> {
        let mut attempt = 1;
        while retry.has_attempts_after(attempt) {
            let Some(wait) = retry.next_wait(attempt, hint) else { break };
            drop(result);
            way.client.sleep(wait).await;
            attempt += 1;
            let keep = retry.has_attempts_after(attempt);
            let attempted = match self.attempt(way, keep, || request).await {
                Ok(attempted) => attempted,
                Err(rejected) => return self.rejected(rejected).await,
            };
            if !attempted.failed {
                return attempted.result;
            }
            (result, hint) = (attempted.result, attempted.hint);
            match attempted.next {
                Some(next) => request = *next,
                None => break,
            }
        }
        self.failed(result).await
    }

    /// One attempt, first or retry: admission by the way's breaker, then the request
    /// (built by `request` only once admitted) sent with its handler, within its
    /// timeout (with [`buffer_body`](HttpBreakerBuilder::buffer_body), until the body
    /// is read), classified and recorded. With `keep`, a copy of the request is kept
    /// for the next attempt.
    ///
    /// An error of kind [`ErrorKind::Request`] is the caller's: its permit is released
    /// unrecorded, and it comes back as [`HttpError::InvalidUrl`] or
    /// [`HttpError::InvalidRequest`].
    async fn attempt(
        &self,
        way: &Way<'_, C>,
        keep: bool,
        request: impl FnOnce() -> Request,
    ) -> Result<Attempted<C>, Rejected> {
        let permit = way.breaker.try_acquire()?;
        // The request lives only in this block: it moves straight into the client's
        // call, so that the future does not also carry it (a local still in scope at an
        // await keeps its room in the future, moved or not).
        let (next, call) = {
            let request = request();
            // Kept aside for a retry, before the request goes to the client.
            let next = keep.then(|| Box::new(copy(&request)));
            (next, way.handler.start(way.client, request))
        };
        let exchange = async {
            let result = match call {
                Call::Execute(future) => future.await,
                Call::Custom(future) => future.await,
            };
            match result {
                Ok(response) if self.buffer_body => way.client.buffer_body(response).await,
                other => other,
            }
        };
        let (report, result) = match Deadline::new(exchange, way.timeout, |after| way.client.sleep(after)).await {
            Ok(Ok(mut response)) => {
                let status = match &self.status {
                    Some(f) => f(&response),
                    None => response.status(),
                };
                let verdict = self.classifier.verdict(status, response.headers());
                if let Some(extensions) = response.extensions_mut() {
                    extensions.insert(verdict);
                }
                (verdict.report(), Ok(response))
            }
            Ok(Err(error)) => match C::error_kind(&error) {
                ErrorKind::Request => {
                    // The caller's mistake: released, counted nowhere (not even as ignored,
                    // and never by the cancellation rule, however long it took).
                    permit.release();
                    let result = Err(caller_error::<C>(error));
                    return Ok(Attempted { result, failed: false, hint: None, next });
                }
                kind => (self.classifier.report_error(kind, &error), Err(HttpError::Transport(error))),
            },
            Err(timed_out) => (Report::overloaded(), Err(HttpError::TimedOut(timed_out))),
        };
        permit.record(report);
        Ok(Attempted { failed: report.outcome() == Outcome::Failure, hint: report.retry_after(), result, next })
    }

    async fn rejected(&self, rejected: Rejected) -> Output<C> {
        match &self.fallback {
            Some(fallback) if fallback.on.rejections() => fallback.call(Failure::Rejected(rejected)).await,
            _ => Err(HttpError::CircuitOpen(rejected)),
        }
    }

    /// What a failed request gives back: the fallback's answer, if it takes failures.
    async fn failed(&self, result: Output<C>) -> Output<C> {
        let failure = match result {
            Ok(response) => Failure::Response(response),
            Err(HttpError::Transport(error)) => Failure::Transport(error),
            Err(HttpError::TimedOut(timed_out)) => Failure::TimedOut(timed_out),
            Err(other) => return Err(other),
        };
        match &self.fallback {
            Some(fallback) if fallback.on.failures() => fallback.call(failure).await,
            _ => failure.into_result(),
        }
    }
}

/// What an admitted attempt gave back.
struct Attempted<C: HttpClient> {
    result: Output<C>,
    /// Whether the breaker counted it as a failure.
    failed: bool,
    /// The `Retry-After` of a failed 429 or 503.
    hint: Option<Duration>,
    /// A copy of the request, for the next attempt.
    next: Option<Box<Request>>,
}

fn itself(uri: &Uri) -> &Uri {
    uri
}

const NOT_A_URI: &str = "not a valid URI";
const NO_SCHEME: &str = "no scheme: expected http:// or https://";

/// `url` as a URI; a URL that only lacks its scheme (`"localhost:8080/x"`, which a URI
/// parser reads as the scheme `localhost`, or refuses) says so.
fn parse_url<E>(url: &str) -> Result<Uri, HttpError<E>> {
    url.parse().map_err(|_| {
        let with_scheme =
            !url.contains("://") && format!("http://{url}").parse::<Uri>().is_ok_and(|u| u.host().is_some());
        invalid_url(url, if with_scheme { NO_SCHEME } else { NOT_A_URI })
    })
}

fn invalid_url<E>(url: &str, reason: &'static str) -> HttpError<E> {
    HttpError::InvalidUrl { url: url.to_owned(), reason }
}

/// The caller's error for a client's error of kind [`ErrorKind::Request`]: an invalid
/// URL when the client says which and why, else an invalid request.
fn caller_error<C: HttpClient>(error: C::Error) -> HttpError<C::Error> {
    match C::invalid_url(&error) {
        Some((url, reason)) => HttpError::InvalidUrl { url, reason },
        None => HttpError::InvalidRequest(error),
    }
}

/// A copy of a request for the next attempt, extensions included (reqwest keeps a
/// per-request timeout there).
fn copy(request: &Request) -> Request {
    let mut copy = Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    *copy.extensions_mut() = request.extensions().clone();
    copy
}

impl<C: HttpClient> Clone for HttpBreaker<C> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

impl<C: HttpClient + fmt::Debug> fmt::Debug for HttpBreaker<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.inner.shared;
        f.debug_struct("HttpBreaker")
            .field("name", &self.name())
            .field("state", &self.state())
            .field("per_host", &shared.breakers.hosts().is_some())
            .field("classifier", &shared.classifier)
            .field("timeout", &shared.timeout)
            .field("buffer_body", &shared.buffer_body)
            .field("retry", &shared.retry)
            .field("fallback", &shared.fallback)
            .field("methods", &self.inner.methods)
            .field("client", &shared.client)
            .finish()
    }
}

// ===== impl HttpBreakerBuilder =====

/// Builds an [`HttpBreaker`] (or, for a blocking client, a
/// [`blocking::HttpBreaker`](crate::blocking::HttpBreaker): `T` is what
/// [`build`](HttpBreakerBuilder::build) returns).
///
/// Settings commute: a setting given explicitly (`name`, `policy`, `clock`...) wins over
/// the [`template`](Self::template)'s, whether it comes before or after it, and
/// listeners given either way all run.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use breakerbox::{OpenWait, Policy};
/// use breakerbox_http::{Classifier, FallbackOn, Failure, HttpBreaker, Retry};
///
/// let breaker = HttpBreaker::builder(reqwest::Client::new())
///     .name("inventory")
///     .policy(Policy::failure_rate(0.5).over_calls(50).min_calls(10))
///     .open_wait(OpenWait::exponential(Duration::from_secs(1), Duration::from_secs(60)).with_jitter(0.2))
///     .classifier(Classifier::standard())
///     .timeout(Duration::from_secs(5))
///     .retry(Retry::attempts(3))
///     // While the circuit is open, answer with a stand-in instead of an error.
///     .fallback(FallbackOn::Rejections, |failure| match failure {
///         Failure::Rejected(_) => Ok(http::Response::new("[]").into()),
///         other => other.into_result(),
///     })
///     .on_state_change(|t| eprintln!("{}: {} -> {}", t.breaker, t.from, t.to))
///     .build()?;
/// assert!(breaker.is_closed());
/// # Ok::<(), breakerbox_http::ConfigError>(())
/// ```
///
/// # Default
///
/// The production defaults of the [crate docs](crate#defaults) (the same as
/// `tower::PerHostLayer`'s and `BreakerMiddleware`'s):
///
/// | setting | default |
/// |---|---|
/// | [`name`](Self::name) | `"http"` |
/// | [`policy`](Self::policy), [`open_wait`](Self::open_wait), probes, clock | the core's defaults ([`Breaker`]): 5 consecutive failures, 30 s, 1 probe, monotonic |
/// | [`classifier`](Self::classifier) | [`Classifier::standard`] |
/// | [`per_host`](Self::per_host) | on: one breaker per scheme + host + port, at most 10,000 hosts ([`without_per_host`](Self::without_per_host) for one) |
/// | [`timeout`](Self::timeout) | 30 s per attempt, counted as a failure ([`without_timeout`](Self::without_timeout) for none) |
/// | [`buffer_body`](Self::buffer_body) | off: the outcome is recorded at the response head |
/// | [`status_code`](Self::status_code) | the response's own status ([`HttpResponse::status`]) |
/// | [`retry_after_limit`](Self::retry_after_limit) | 5 min |
/// | [`cancel_counts_after`](Self::cancel_counts_after) | the core's: 1 s |
/// | [`fallback`](Self::fallback) | none |
/// | [`retry`](Self::retry) | none |
pub struct HttpBreakerBuilder<C: HttpClient, T = HttpBreaker<C>> {
    client: C,
    /// The core settings given with [`template`](Self::template), if any.
    template: Option<BreakerBuilder>,
    /// The core settings given one by one, applied over the template at build, in the
    /// order given: so they win over it whatever the order of the calls.
    settings: Vec<CoreSetting>,
    classifier: Classifier,
    status: Option<Arc<StatusFn<C::Response>>>,
    fallback: Option<Fallback<C::Response, C::Error>>,
    retry: Option<Retry>,
    per_host: Option<PerHost>,
    timeout: Option<Duration>,
    buffer_body: bool,
    /// A contradiction found while applying settings (`HttpConfig`), reported by `build`.
    invalid: Option<ConfigError>,
    _build: PhantomData<fn() -> T>,
}

type CoreSetting = Box<dyn FnOnce(BreakerBuilder) -> BreakerBuilder + Send>;

#[derive(Clone, Copy, Debug)]
struct PerHost {
    max: usize,
    idle: Option<Duration>,
    max_open_fraction: Option<f64>,
}

const PER_HOST: PerHost = PerHost { max: 10_000, idle: None, max_open_fraction: None };

impl<C: HttpClient, T> HttpBreakerBuilder<C, T> {
    pub(crate) fn with_client(client: C) -> Self {
        Self {
            client,
            template: None,
            settings: Vec::new(),
            classifier: Classifier::standard(),
            status: None,
            fallback: None,
            retry: None,
            per_host: Some(PER_HOST),
            timeout: Some(DEFAULT_TIMEOUT),
            buffer_body: false,
            invalid: None,
            _build: PhantomData,
        }
    }

    /// The original's settings (see [`HttpBreaker::new`]).
    pub(crate) fn original(self, error_threshold: u32, time_window: Duration) -> Self {
        self.without_per_host()
            .policy(Policy::consecutive_failures(error_threshold))
            .open_wait(OpenWait::fixed(time_window))
            .retry_after_limit(Duration::ZERO)
            .classifier(Classifier::only_200())
            .without_timeout()
    }

    fn core(mut self, setting: impl FnOnce(BreakerBuilder) -> BreakerBuilder + Send + 'static) -> Self {
        self.settings.push(Box::new(setting));
        self
    }

    /// Starts the core breaker's settings from `template` (policy, open wait, probes,
    /// clock, listeners) instead of the core's defaults named `"http"`. The settings
    /// given one by one (below) win over the template's, before or after this call.
    #[must_use]
    pub fn template(mut self, template: BreakerBuilder) -> Self {
        self.template = Some(template);
        self
    }

    /// Names the breaker, for rejections, events and metrics.
    #[must_use]
    pub fn name(self, name: impl Into<breakerbox::Name>) -> Self {
        let name = name.into();
        self.core(move |t| t.name(name))
    }

    /// When to trip (any core [`Policy`]).
    #[must_use]
    pub fn policy(self, policy: impl Into<Policy>) -> Self {
        let policy = policy.into();
        self.core(move |t| t.policy(policy))
    }

    /// How long to stay open (any core [`OpenWait`]).
    #[must_use]
    pub fn open_wait(self, wait: OpenWait) -> Self {
        self.core(move |t| t.open_wait(wait))
    }

    /// How many trial requests run at once when half-open, and how many must succeed to
    /// close.
    #[must_use]
    pub fn half_open_probes(self, n: u32) -> Self {
        self.core(move |t| t.half_open_probes(n))
    }

    /// How long a half-open trial request may stay silent before another is let through.
    #[must_use]
    pub fn probe_lease(self, lease: Duration) -> Self {
        self.core(move |t| t.probe_lease(lease))
    }

    /// The core's cancellation rule: a request dropped unfinished (an outer
    /// `tokio::time::timeout`, a `select!`, a cancelled task) after it has been in
    /// flight at least `after` counts as a failure; one dropped sooner counts nothing;
    /// `None`: a dropped request never counts. See the [crate docs](crate#timeouts).
    ///
    /// # Default
    ///
    /// The core's: 1 s.
    #[must_use]
    pub fn cancel_counts_after(self, after: impl Into<Option<Duration>>) -> Self {
        let after = after.into();
        self.core(move |t| t.cancel_counts_after(after))
    }

    /// The longest open wait a `Retry-After` may ask for; zero ignores `Retry-After`.
    ///
    /// A 429 or 503 whose `Retry-After` (seconds or an HTTP date) is longer than the open
    /// wait, and that trips the breaker, keeps it open that long, up to this limit.
    #[must_use]
    pub fn retry_after_limit(self, limit: Duration) -> Self {
        self.core(move |t| t.retry_after_limit(limit))
    }

    /// Adaptive throttling while closed (see [`breakerbox::throttle`]): a share of calls
    /// is rejected locally when the server accepts fewer than it is sent. 429, 502,
    /// 503, 504, timeouts and transport errors are its overloads; every other answer
    /// an accept. A throttled call is never retried.
    #[must_use]
    pub fn throttle(self, throttle: impl Into<Option<breakerbox::Throttle>>) -> Self {
        let throttle = throttle.into();
        self.core(move |t| t.throttle(throttle))
    }

    /// In-flight age (see [`breakerbox::BreakerBuilder::hung_after`]): a request still in
    /// flight this long counts as a failure while it runs, so a server that hangs trips
    /// the breaker before the requests' timeout fires. Set it below the
    /// [timeout](Self::timeout) and above the longest a healthy request takes.
    #[must_use]
    pub fn hung_after(self, after: impl Into<Option<Duration>>) -> Self {
        let after = after.into();
        self.core(move |t| t.hung_after(after))
    }

    /// Shadow mode from the start (see [`breakerbox::BreakerBuilder::shadow`]); switch
    /// it at run time with [`HttpBreaker::set_shadow`].
    #[must_use]
    pub fn shadow(self, on: bool) -> Self {
        self.core(move |t| t.shadow(on))
    }

    /// A recovery ramp after half-open (see [`breakerbox::ramp`]): a rising share of
    /// requests is let through while the breaker is recovering, instead of all of them
    /// at once when its probes succeed.
    #[must_use]
    pub fn recovery_ramp(self, ramp: impl Into<Option<breakerbox::Ramp>>) -> Self {
        let ramp = ramp.into();
        self.core(move |t| t.recovery_ramp(ramp))
    }

    /// The time source of the breakers and the retry budget (which reads the breaker's
    /// own, [`Breaker::clock`]); a [`ManualClock`](breakerbox::ManualClock) makes tests
    /// deterministic. A built-in clock is held by value, not boxed. The
    /// [timeout](Self::timeout) runs on the client's timer ([`HttpClient::sleep`]), not
    /// on this clock.
    #[must_use]
    pub fn clock(self, clock: impl Clock) -> Self {
        self.core(move |t| t.clock(clock))
    }

    /// Calls `f` after every state change (of every host's breaker).
    #[must_use]
    pub fn on_state_change(self, f: impl Fn(&Transition<'_>) + Send + Sync + 'static) -> Self {
        self.core(move |t| t.on_state_change(f))
    }

    /// Calls `f` for every request the breaker refuses.
    #[must_use]
    pub fn on_rejection(self, f: impl Fn(&Rejected) + Send + Sync + 'static) -> Self {
        self.core(move |t| t.on_rejection(f))
    }

    /// Calls `f` for every attempt's recorded outcome.
    #[must_use]
    pub fn on_outcome(self, f: impl Fn(&Recorded<'_>) + Send + Sync + 'static) -> Self {
        self.core(move |t| t.on_outcome(f))
    }

    /// Which responses and errors are failures. See [`Classifier`].
    #[must_use]
    pub fn classifier(mut self, classifier: Classifier) -> Self {
        self.classifier = classifier;
        self
    }

    /// Reads the status from a response (the original's `_status_code`), for example
    /// from a gateway's `X-Upstream-Status` header. The classifier sees this status.
    #[must_use]
    pub fn status_code(mut self, f: impl Fn(&Response<C>) -> http::StatusCode + Send + Sync + 'static) -> Self {
        self.status = Some(Arc::new(f));
        self
    }

    /// Bounds each attempt (and, with [`buffer_body`](Self::buffer_body), the reading
    /// of its body) by `timeout`. An attempt still running then is dropped and counted
    /// as a failure, and the request ends in [`HttpError::TimedOut`] (or its retry).
    ///
    /// The timer is the client's ([`HttpClient::sleep`]: tokio's for reqwest). A
    /// reqwest request's own `.timeout(..)` replaces this one for that request. The
    /// blocking breaker cannot interrupt a blocking call: set the client's own timeout
    /// there (ureq's `timeout_global`).
    ///
    /// # Default
    ///
    /// 30 s ([`HttpBreaker::new`]: none). See the [crate docs](crate#timeouts) for why,
    /// and for where a timeout should sit.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// No timeout of the breaker's own: an attempt runs as long as the client lets it.
    #[must_use]
    pub fn without_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }

    /// Records each outcome once the whole body has been read, not at the response
    /// head: the breaker reads the body (within the [timeout](Self::timeout)) and gives
    /// the response back with its body in memory, so that a body that stalls or breaks
    /// counts as a failure (a timeout, or a transport error). For responses small
    /// enough to hold in memory; the client must support it ([`HttpClient::buffer_body`];
    /// reqwest does), or `build` refuses.
    #[must_use]
    pub fn buffer_body(mut self) -> Self {
        self.buffer_body = true;
        self
    }

    /// Records each outcome at the response head, leaving the body to the caller (the
    /// default).
    #[must_use]
    pub fn without_buffer_body(mut self) -> Self {
        self.buffer_body = false;
        self
    }

    /// Gives back `f(failure)` instead of a failure, a rejection, or both (the
    /// original's `_empty_response`). `f` may return a stand-in response (for reqwest,
    /// `http::Response::new(body).into()`), an error, or [`Failure::into_result`] for
    /// what the breaker would have given back.
    ///
    /// With retries, only the last attempt's failure goes to `f`. For a fallback that
    /// awaits (an async cache), see [`fallback_async`](Self::fallback_async).
    #[must_use]
    pub fn fallback(
        self,
        on: FallbackOn,
        f: impl Fn(Failure<C::Response, C::Error>) -> Result<C::Response, HttpError<C::Error>> + Send + Sync + 'static,
    ) -> Self {
        self.fallback_async(on, move |failure| std::future::ready(f(failure)))
    }

    /// [`fallback`](Self::fallback), with a fallback that awaits: `f` returns a future
    /// (an `async move` block reading a cache, asking a replica).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use breakerbox_http::{FallbackOn, Failure, HttpBreaker};
    /// use tokio::sync::RwLock;
    ///
    /// let cache = Arc::new(RwLock::new(String::from(r#"{"stock": 3}"#)));
    /// let breaker = HttpBreaker::builder(reqwest::Client::new())
    ///     .fallback_async(FallbackOn::Both, move |failure| {
    ///         let cache = Arc::clone(&cache);
    ///         async move {
    ///             match failure {
    ///                 Failure::Response(r) if r.status().is_client_error() => Ok(r),
    ///                 _ => Ok(http::Response::new(cache.read().await.clone()).into()),
    ///             }
    ///         }
    ///     })
    ///     .build()?;
    /// # let _ = breaker;
    /// # Ok::<(), breakerbox_http::ConfigError>(())
    /// ```
    #[must_use]
    pub fn fallback_async<F, Fut>(mut self, on: FallbackOn, f: F) -> Self
    where
        F: Fn(Failure<C::Response, C::Error>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<C::Response, HttpError<C::Error>>> + Send + 'static,
    {
        self.fallback = Some(Fallback::new(on, f));
        self
    }

    /// Removes the fallback.
    #[must_use]
    pub fn without_fallback(mut self) -> Self {
        self.fallback = None;
        self
    }

    /// Retries failed requests. See [`Retry`].
    #[must_use]
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Removes the retries.
    #[must_use]
    pub fn without_retry(mut self) -> Self {
        self.retry = None;
        self
    }

    /// Keeps one breaker per scheme, host and port, all built from these settings, so
    /// that one failing host never opens the circuit for another (the default).
    #[must_use]
    pub fn per_host(mut self) -> Self {
        self.per_host.get_or_insert(PER_HOST);
        self
    }

    /// Keeps one breaker for every host (as [`HttpBreaker::new`] does): one failing
    /// host opens the circuit for all.
    #[must_use]
    pub fn without_per_host(mut self) -> Self {
        self.per_host = None;
        self
    }

    /// Keeps at most `n` hosts' breakers (implies [`per_host`](Self::per_host)); past
    /// it, a new host evicts a least recently used closed one (see
    /// [`BreakerBox`](breakerbox::BreakerBox) for the exact rule).
    #[must_use]
    pub fn max_hosts(mut self, n: usize) -> Self {
        self.per_host.get_or_insert(PER_HOST).max = n;
        self
    }

    /// Drops the closed breakers of hosts not requested for `idle` (implies
    /// [`per_host`](Self::per_host)).
    #[must_use]
    pub fn host_idle_timeout(mut self, idle: Duration) -> Self {
        self.per_host.get_or_insert(PER_HOST).idle = Some(idle);
        self
    }

    /// The panic valve (implies [`per_host`](Self::per_host)): once a host's breaker is
    /// open, a trip that would open more than this share of the hosts' breakers is held
    /// back: when most hosts fail at once, the client's own network is the likelier
    /// culprit. See [`BreakerBoxBuilder::max_open_fraction`](breakerbox::BreakerBoxBuilder::max_open_fraction).
    #[must_use]
    pub fn max_open_fraction(mut self, fraction: f64) -> Self {
        self.per_host.get_or_insert(PER_HOST).max_open_fraction = Some(fraction);
        self
    }

    /// Builds the async breaker, whatever `T` says.
    pub(crate) fn build_async(self) -> Result<HttpBreaker<C>, ConfigError> {
        if let Some(invalid) = self.invalid {
            return Err(invalid);
        }
        if let Some(retry) = &self.retry {
            retry.validate()?;
        }
        if self.timeout.is_some_and(|t| t.is_zero()) {
            return Err(ConfigError::new("timeout", Duration::ZERO, "a duration greater than zero (or no timeout)"));
        }
        if self.buffer_body && !C::BUFFERS_BODY {
            return Err(ConfigError::new(
                "buffer_body",
                true,
                "a client that can read a body (implement `HttpClient::buffer_body`; reqwest's `Client` does)",
            ));
        }
        let mut template = self.template.unwrap_or_else(|| Breaker::builder().name("http"));
        for setting in self.settings {
            template = setting(template);
        }
        let (breakers, named) = match self.per_host {
            None => {
                let one = template.build()?;
                (Breakers::One(one.clone()), one)
            }
            Some(per_host) => {
                let mut family = BreakerBox::builder(template.clone()).max_breakers(per_host.max);
                if let Some(idle) = per_host.idle {
                    family = family.idle_timeout(idle);
                }
                if let Some(fraction) = per_host.max_open_fraction {
                    family = family.max_open_fraction(fraction);
                }
                (Breakers::PerHost(crate::breakers::family(family)?), template.build()?)
            }
        };
        let shared = Shared {
            retry: self.retry.map(|r| RetryState::new(r, named.clock())),
            client: self.client,
            breakers,
            named,
            classifier: self.classifier,
            status: self.status,
            fallback: self.fallback,
            timeout: self.timeout,
            buffer_body: self.buffer_body,
        };
        let inner = Inner { methods: Methods::standard(), shared: Arc::new(shared) };
        Ok(HttpBreaker { inner: Arc::new(inner) })
    }
}

#[cfg(feature = "serde")]
impl<C: HttpClient, T> HttpBreakerBuilder<C, T> {
    /// Applies `config` to a fresh builder: its breaker settings become the template,
    /// then its HTTP settings.
    pub(crate) fn configured(mut self, config: &crate::config::HttpConfig) -> Self {
        self = self.template(config.template()).classifier(config.classifier());
        match config.per_host {
            Some(false) if config.max_hosts.is_some() || config.host_idle_timeout.is_some() => {
                let (field, value) = match (config.max_hosts, config.host_idle_timeout) {
                    (Some(n), _) => ("max_hosts", n.to_string()),
                    (None, d) => ("host_idle_timeout", format!("{:?}", d.unwrap_or_default())),
                };
                self.invalid = Some(ConfigError::new(
                    field,
                    format_args!("{value}"),
                    "no per-host bound when `per_host = false` (a bound implies `per_host = true`)",
                ));
            }
            Some(true) => self = self.per_host(),
            Some(false) => self = self.without_per_host(),
            None => {}
        }
        if let Some(n) = config.max_hosts {
            self = self.max_hosts(n);
        }
        if let Some(d) = config.host_idle_timeout {
            self = self.host_idle_timeout(d);
        }
        if let Some(retry) = &config.retry {
            self = self.retry(retry.to_retry());
        }
        if let Some(timeout) = config.timeout {
            self = self.timeout(timeout);
        }
        match config.buffer_body {
            Some(true) => self.buffer_body(),
            Some(false) => self.without_buffer_body(),
            None => self,
        }
    }
}

impl<C: HttpClient> HttpBreakerBuilder<C> {
    /// Builds the breaker.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first setting that cannot work.
    pub fn build(self) -> Result<HttpBreaker<C>, ConfigError> {
        self.build_async()
    }
}

impl<C: HttpClient + fmt::Debug, T> fmt::Debug for HttpBreakerBuilder<C, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpBreakerBuilder")
            .field("client", &self.client)
            .field("template", &self.template)
            .field("settings", &self.settings.len())
            .field("classifier", &self.classifier)
            .field("timeout", &self.timeout)
            .field("buffer_body", &self.buffer_body)
            .field("fallback", &self.fallback)
            .field("retry", &self.retry)
            .field("per_host", &self.per_host)
            .finish_non_exhaustive()
    }
}
