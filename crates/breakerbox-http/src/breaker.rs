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
use crate::{
    Classifier, ConfigError, Failure, FallbackOn, Handler, HttpClient, HttpError, HttpResponse, Methods, Request, Retry,
};

type StatusFn<R> = dyn Fn(&R) -> http::StatusCode + Send + Sync;
type Response<C> = <C as HttpClient>::Response;
/// What a request through the breaker ends in.
type Output<C> = Result<<C as HttpClient>::Response, HttpError<<C as HttpClient>::Error>>;

/// A circuit breaker over an HTTP client: the original's `CircuitBreaker`, made
/// thread-safe, over any client.
///
/// [`new`](Self::new) has the original's constructor and semantics: after
/// `error_threshold` consecutive failures (any status but 200, or a transport error) the
/// circuit opens, and requests fail fast with [`HttpError::CircuitOpen`] until
/// `time_window` has passed; then one trial request goes through, and closes the
/// circuit if it succeeds or opens it again if it fails. [`builder`](Self::builder)
/// gives everything else.
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
/// # Ok(())
/// # }
/// ```
///
/// # Clone
///
/// Clones share the breakers, the retry budget and the settings; each clone has its own
/// copy of the method table (edit it before cloning to change them all).
///
/// # Thread safety
///
/// Every request method takes `&self`: share one breaker (or clones) between tasks and
/// threads. A closed breaker admits a request with one atomic load.
pub struct HttpBreaker<C: HttpClient> {
    client: C,
    methods: Methods<C>,
    shared: Arc<Shared<C>>,
}

struct Shared<C: HttpClient> {
    breakers: Breakers,
    /// The breaker that names this one: the single breaker, or, per host, one built from
    /// the template that never serves a request (for the name, the metrics before any
    /// host, and the clock of the retry budget).
    named: Breaker,
    classifier: Classifier,
    status: Option<Arc<StatusFn<C::Response>>>,
    fallback: Option<Fallback<C::Response, C::Error>>,
    retry: Option<RetryState>,
}

/// A request that passed the checks: its method's entry, its breaker, and what the
/// request is built from (a URI for `do_request`, the request itself for `send`).
///
/// The request is built inside the future, right before it is handed to the client, so
/// that the future does not carry it across its awaits.
struct Target<'a, C: HttpClient, T> {
    entry: &'a Entry<C>,
    breaker: BreakerRef<'a>,
    payload: T,
}

impl<C: HttpClient> HttpBreaker<C> {
    /// The original's constructor: opens after `error_threshold` consecutive failures,
    /// stays open for `time_window`, then lets one trial request through. Only status
    /// 200 is a success ([`Classifier::only_200`]).
    ///
    /// # Errors
    ///
    /// A zero `error_threshold` or `time_window`.
    pub fn new(client: C, error_threshold: u32, time_window: Duration) -> Result<Self, ConfigError> {
        Self::builder(client)
            .policy(Policy::consecutive_failures(error_threshold))
            .open_wait(OpenWait::fixed(time_window))
            .classifier(Classifier::only_200())
            .build()
    }

    /// A builder: any policy and open wait, a classifier, a fallback, retries, one
    /// breaker per host, a name, listeners. See [`HttpBreakerBuilder`].
    pub fn builder(client: C) -> HttpBreakerBuilder<C> {
        HttpBreakerBuilder::with_client(client)
    }

    /// Sends a `method` request to `url` through the breaker (the original's call).
    ///
    /// `method` is looked up in the [method table](Self::methods) without regard to
    /// case. The method and the URL are checked when this is called, before the breaker
    /// is consulted; the request is sent when the future is awaited.
    ///
    /// # Errors
    ///
    /// - [`HttpError::InvalidMethod`]: `method` is not in the table;
    /// - [`HttpError::InvalidUrl`]: `url` is not an `http` or `https` URL with a host;
    /// - [`HttpError::CircuitOpen`]: the breaker refused the request (unless the
    ///   fallback takes rejections);
    /// - [`HttpError::Transport`]: the client's error, after any retries (unless the
    ///   fallback takes failures).
    ///
    /// A response with a failing status is `Ok`: it is counted, and given back as the
    /// client gave it (or to the fallback, if it takes failures).
    pub fn do_request(&self, method: &str, url: &str) -> impl Future<Output = Output<C>> + Send + use<'_, C> {
        self.run(self.target_url(method, url), |method, uri| {
            let mut request = Request::new(Bytes::new());
            *request.method_mut() = method.clone();
            *request.uri_mut() = uri;
            request
        })
    }

    /// Sends a full request (method, URL, headers, body) through the same breaker and
    /// the same method table as [`do_request`](Self::do_request).
    ///
    /// The request's extensions go with the first attempt only.
    ///
    /// # Errors
    ///
    /// As [`do_request`](Self::do_request).
    pub fn send<B: Into<Bytes>>(
        &self,
        request: http::Request<B>,
    ) -> impl Future<Output = Output<C>> + Send + use<'_, C, B> {
        self.run(self.target_request(request.map(Into::into)), |method, mut request| {
            *request.method_mut() = method.clone();
            request
        })
    }

    /// The state. With one breaker per host: the worst among the hosts (open if any
    /// host is open, else half-open if any is, else closed).
    pub fn state(&self) -> State {
        self.shared.breakers.state()
    }

    /// Whether requests are being refused (open or forced open); with one breaker per
    /// host, whether any host's are.
    pub fn is_open(&self) -> bool {
        matches!(self.state(), State::Open | State::ForcedOpen)
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
        self.shared.breakers.reset();
    }

    /// A snapshot of the state and counters. With one breaker per host: the counters
    /// summed over the hosts, the longest streak of failures, and the state, time in
    /// state and rates of the worst host.
    pub fn metrics(&self) -> Metrics {
        self.shared.breakers.metrics().unwrap_or_else(|| self.shared.named.metrics())
    }

    /// The breaker's name (per host, each host's breaker is named `"{name}/{host}"`).
    pub fn name(&self) -> &str {
        self.shared.named.name()
    }

    /// The method table.
    pub fn methods(&self) -> &Methods<C> {
        &self.methods
    }

    /// The method table, to add, replace and remove methods (the original's
    /// `_methods`).
    pub fn methods_mut(&mut self) -> &mut Methods<C> {
        &mut self.methods
    }

    /// The client.
    pub fn client(&self) -> &C {
        &self.client
    }

    /// The core breaker, when there is one for every host; `None` with one breaker per
    /// host (see [`breaker_for`](Self::breaker_for)).
    pub fn breaker(&self) -> Option<&Breaker> {
        self.shared.breakers.single()
    }

    /// The core breaker that guards requests to `url` (created on first use, per host).
    ///
    /// # Errors
    ///
    /// [`HttpError::InvalidUrl`].
    pub fn breaker_for(&self, url: &str) -> Result<Breaker, HttpError<C::Error>> {
        let uri: Uri = url.parse().map_err(|_| invalid_url(url, NOT_A_URI))?;
        let breaker = self.shared.breaker_for(&uri).map_err(|reason| invalid_url(url, reason))?;
        Ok(breaker.into_owned())
    }

    /// The state of each host's breaker, as `("http://host:port", state)`, sorted by
    /// host; empty unless the breaker keeps one breaker per host.
    pub fn host_states(&self) -> Vec<(String, State)> {
        self.shared.breakers.host_states()
    }

    fn lookup(&self, method: &str) -> Result<&Entry<C>, HttpError<C::Error>> {
        self.methods.lookup(method).ok_or_else(|| HttpError::InvalidMethod {
            method: method.to_owned(),
            valid: self.methods.names().into_iter().map(String::from).collect(),
        })
    }

    fn target_url(&self, method: &str, url: &str) -> Result<Target<'_, C, Uri>, HttpError<C::Error>> {
        let entry = self.lookup(method)?;
        let uri: Uri = url.parse().map_err(|_| invalid_url(url, NOT_A_URI))?;
        let breaker = self.shared.breaker_for(&uri).map_err(|reason| invalid_url(url, reason))?;
        Ok(Target { entry, breaker, payload: uri })
    }

    fn target_request(&self, request: Request) -> Result<Target<'_, C, Request>, HttpError<C::Error>> {
        let entry = self.lookup(request.method().as_str())?;
        let breaker = self.shared.breaker_for(request.uri()).map_err(|reason| {
            let url = request.uri().to_string();
            invalid_url(&url, reason)
        })?;
        Ok(Target { entry, breaker, payload: request })
    }

    /// Sends a checked request: the first attempt through the breaker, then (boxed, off
    /// the fast path) any retries, then the fallback.
    async fn run<T>(
        &self,
        target: Result<Target<'_, C, T>, HttpError<C::Error>>,
        build: impl FnOnce(&Method, T) -> Request,
    ) -> Output<C> {
        let Target { entry, breaker, payload } = target?;
        let shared = &*self.shared;
        let retry = shared.retry.as_ref().filter(|r| r.applies_to(&entry.method));
        // The request is built once admitted, and every admitted request counts in the
        // retry budget (retried or not).
        let first = self.attempt(&breaker, &entry.handler, retry.is_some(), || {
            if let Some(r) = &shared.retry {
                r.deposit();
            }
            build(&entry.method, payload)
        });
        let first = match first.await {
            Ok(attempted) => attempted,
            Err(rejected) => return shared.rejected(rejected),
        };
        match (first, retry) {
            (Attempted { result, failed: false, .. }, _) => result.map_err(HttpError::Transport),
            (Attempted { result, hint, next: Some(next), .. }, Some(retry)) => {
                Box::pin(self.retry(retry, &entry.handler, &breaker, *next, result, hint)).await
            }
            (Attempted { result, .. }, _) => shared.failed(result),
        }
    }

    /// Retries after the first attempt failed with `result`. Every attempt goes through
    /// the breaker; a rejection ends the request at once (the breaker just said the
    /// server is down).
    async fn retry(
        &self,
        retry: &RetryState,
        handler: &Handler<C>,
        breaker: &Breaker,
        mut request: Request,
        mut result: Result<C::Response, C::Error>,
        mut hint: Option<Duration>,
    ) -> Output<C> {
        let mut attempt = 1;
        while retry.has_attempts_after(attempt) {
            let Some(wait) = retry.next_wait(attempt, hint) else { break };
            drop(result);
            self.client.sleep(wait).await;
            attempt += 1;
            let keep = retry.has_attempts_after(attempt);
            let attempted = match self.attempt(breaker, handler, keep, || request).await {
                Ok(attempted) => attempted,
                Err(rejected) => return self.shared.rejected(rejected),
            };
            if !attempted.failed {
                return attempted.result.map_err(HttpError::Transport);
            }
            (result, hint) = (attempted.result, attempted.hint);
            match attempted.next {
                Some(next) => request = *next,
                None => break,
            }
        }
        self.shared.failed(result)
    }

    /// One attempt, first or retry: admission by `breaker`, then the request (built by
    /// `request` only once admitted) sent with `handler`, classified and recorded. With
    /// `keep`, a copy of the request is kept for the next attempt.
    async fn attempt(
        &self,
        breaker: &Breaker,
        handler: &Handler<C>,
        keep: bool,
        request: impl FnOnce() -> Request,
    ) -> Result<Attempted<C>, Rejected> {
        let permit = breaker.try_acquire()?;
        // The request lives only in this block: it moves straight into the client's
        // call, so that the future does not also carry it (a local still in scope at an
        // await keeps its room in the future, moved or not). The call is awaited where
        // it was made, not handed to a helper, which would hold it twice.
        let (next, call) = {
            let request = request();
            // Kept aside for a retry, before the request goes to the client.
            let next = keep.then(|| Box::new(copy(&request)));
            (next, handler.start(&self.client, request))
        };
        let result = match call {
            Call::Execute(future) => future.await,
            Call::Custom(future) => future.await,
        };
        let report = self.shared.report(&result);
        permit.record(report);
        Ok(Attempted { failed: report.outcome() == Outcome::Failure, hint: report.retry_after(), result, next })
    }
}

/// What an admitted attempt gave back.
struct Attempted<C: HttpClient> {
    result: Result<C::Response, C::Error>,
    /// Whether the breaker counted it as a failure.
    failed: bool,
    /// The `Retry-After` of a failed 429 or 503.
    hint: Option<Duration>,
    /// A copy of the request, for the next attempt.
    next: Option<Box<Request>>,
}

impl<C: HttpClient> Shared<C> {
    fn breaker_for<'a>(&'a self, uri: &Uri) -> Result<BreakerRef<'a>, &'static str> {
        Host::of_uri(uri).map(|host| self.breakers.get(host))
    }

    /// The report for the breaker: the outcome, and the `Retry-After` of a failed 429 or
    /// 503.
    fn report(&self, result: &Result<C::Response, C::Error>) -> Report {
        match result {
            Ok(response) => {
                let status = match &self.status {
                    Some(f) => f(response),
                    None => response.status(),
                };
                self.classifier.report(status, response.headers())
            }
            Err(error) => self.classifier.report_error(C::error_kind(error), error),
        }
    }

    fn rejected(&self, rejected: Rejected) -> Output<C> {
        match &self.fallback {
            Some(fallback) if fallback.on.rejections() => (fallback.f)(Failure::Rejected(rejected)),
            _ => Err(HttpError::CircuitOpen(rejected)),
        }
    }

    fn failed(&self, result: Result<C::Response, C::Error>) -> Output<C> {
        match &self.fallback {
            Some(fallback) if fallback.on.failures() => (fallback.f)(match result {
                Ok(response) => Failure::Response(response),
                Err(error) => Failure::Transport(error),
            }),
            _ => result.map_err(HttpError::Transport),
        }
    }
}

const NOT_A_URI: &str = "not a valid URI";

fn invalid_url<E>(url: &str, reason: &'static str) -> HttpError<E> {
    HttpError::InvalidUrl { url: url.to_owned(), reason }
}

/// A copy of a request for the next attempt (extensions cannot be copied).
fn copy(request: &Request) -> Request {
    let mut copy = Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    copy
}

impl<C: HttpClient + Clone> Clone for HttpBreaker<C> {
    fn clone(&self) -> Self {
        Self { client: self.client.clone(), methods: self.methods.clone(), shared: Arc::clone(&self.shared) }
    }
}

impl<C: HttpClient + fmt::Debug> fmt::Debug for HttpBreaker<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpBreaker")
            .field("name", &self.name())
            .field("state", &self.state())
            .field("per_host", &self.shared.breakers.hosts().is_some())
            .field("classifier", &self.shared.classifier)
            .field("retry", &self.shared.retry)
            .field("fallback", &self.shared.fallback)
            .field("methods", &self.methods)
            .field("client", &self.client)
            .finish()
    }
}

// ===== impl HttpBreakerBuilder =====

/// Builds an [`HttpBreaker`] (or, for a blocking client, a
/// [`blocking::HttpBreaker`](crate::blocking::HttpBreaker): `T` is what
/// [`build`](HttpBreakerBuilder::build) returns).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use breakerbox::{OpenWait, Policy};
/// use breakerbox_http::{Classifier, FallbackOn, HttpBreaker, Retry};
///
/// let breaker = HttpBreaker::builder(reqwest::Client::new())
///     .name("inventory")
///     .policy(Policy::failure_rate(0.5).over_calls(50).min_calls(10))
///     .open_wait(OpenWait::exponential(Duration::from_secs(1), Duration::from_secs(60)).with_jitter(0.2))
///     .classifier(Classifier::standard())
///     .retry(Retry::attempts(3))
///     .per_host()
///     .fallback(FallbackOn::Rejections, |failure| failure.into_result())
///     .on_state_change(|t| eprintln!("{}: {} -> {}", t.breaker, t.from, t.to))
///     .build()?;
/// assert!(breaker.is_closed());
/// # Ok::<(), breakerbox_http::ConfigError>(())
/// ```
///
/// # Default
///
/// | setting | default |
/// |---|---|
/// | [`name`](Self::name) | `"http"` |
/// | [`policy`](Self::policy), [`open_wait`](Self::open_wait), probes, clock | the core's defaults ([`Breaker`]): 5 consecutive failures, 30 s, 1 probe, monotonic |
/// | [`classifier`](Self::classifier) | [`Classifier::standard`] |
/// | [`status_code`](Self::status_code) | the response's own status ([`HttpResponse::status`]) |
/// | [`retry_after_limit`](Self::retry_after_limit) | 5 min |
/// | [`fallback`](Self::fallback) | none |
/// | [`retry`](Self::retry) | none |
/// | [`per_host`](Self::per_host) | off: one breaker for every host |
pub struct HttpBreakerBuilder<C: HttpClient, T = HttpBreaker<C>> {
    client: C,
    template: BreakerBuilder,
    classifier: Classifier,
    status: Option<Arc<StatusFn<C::Response>>>,
    fallback: Option<Fallback<C::Response, C::Error>>,
    retry: Option<Retry>,
    per_host: Option<PerHost>,
    /// A contradiction found while applying settings (`HttpConfig`), reported by `build`.
    invalid: Option<ConfigError>,
    _build: PhantomData<fn() -> T>,
}

#[derive(Clone, Copy, Debug)]
struct PerHost {
    max: usize,
    idle: Option<Duration>,
}

impl<C: HttpClient, T> HttpBreakerBuilder<C, T> {
    pub(crate) fn with_client(client: C) -> Self {
        Self {
            client,
            template: Breaker::builder().name("http"),
            classifier: Classifier::standard(),
            status: None,
            fallback: None,
            retry: None,
            per_host: None,
            invalid: None,
            _build: PhantomData,
        }
    }

    /// Replaces the core breaker's settings with `template` (every setting: policy, open
    /// wait, probes, clock, listeners). Call it first: the setters below edit it.
    #[must_use]
    pub fn template(mut self, template: BreakerBuilder) -> Self {
        self.template = template;
        self
    }

    /// Names the breaker, for rejections, events and metrics.
    #[must_use]
    pub fn name(mut self, name: impl Into<breakerbox::Name>) -> Self {
        self.template = self.template.name(name);
        self
    }

    /// When to trip (any core [`Policy`]).
    #[must_use]
    pub fn policy(mut self, policy: impl Into<Policy>) -> Self {
        self.template = self.template.policy(policy);
        self
    }

    /// How long to stay open (any core [`OpenWait`]).
    #[must_use]
    pub fn open_wait(mut self, wait: OpenWait) -> Self {
        self.template = self.template.open_wait(wait);
        self
    }

    /// How many trial requests run at once when half-open, and how many must succeed to
    /// close.
    #[must_use]
    pub fn half_open_probes(mut self, n: u32) -> Self {
        self.template = self.template.half_open_probes(n);
        self
    }

    /// How long a half-open trial request may stay silent before another is let through.
    #[must_use]
    pub fn probe_lease(mut self, lease: Duration) -> Self {
        self.template = self.template.probe_lease(lease);
        self
    }

    /// The longest open wait a `Retry-After` may ask for; zero ignores `Retry-After`.
    ///
    /// A 429 or 503 whose `Retry-After` (seconds or an HTTP date) is longer than the open
    /// wait, and that trips the breaker, keeps it open that long, up to this limit.
    #[must_use]
    pub fn retry_after_limit(mut self, limit: Duration) -> Self {
        self.template = self.template.retry_after_limit(limit);
        self
    }

    /// The time source of the breakers and the retry budget (which reads the breaker's
    /// own, [`Breaker::clock`]); a [`ManualClock`](breakerbox::ManualClock) makes tests
    /// deterministic. A built-in clock is held by value, not boxed.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.template = self.template.clock(clock);
        self
    }

    /// Calls `f` after every state change (of every host's breaker).
    #[must_use]
    pub fn on_state_change(mut self, f: impl Fn(&Transition<'_>) + Send + Sync + 'static) -> Self {
        self.template = self.template.on_state_change(f);
        self
    }

    /// Calls `f` for every request the breaker refuses.
    #[must_use]
    pub fn on_rejection(mut self, f: impl Fn(&Rejected) + Send + Sync + 'static) -> Self {
        self.template = self.template.on_rejection(f);
        self
    }

    /// Calls `f` for every attempt's recorded outcome.
    #[must_use]
    pub fn on_outcome(mut self, f: impl Fn(&Recorded<'_>) + Send + Sync + 'static) -> Self {
        self.template = self.template.on_outcome(f);
        self
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

    /// Gives back `f(failure)` instead of a failure, a rejection, or both (the
    /// original's `_empty_response`). `f` may return a stand-in response, an error, or
    /// [`Failure::into_result`] for what the breaker would have given back.
    ///
    /// With retries, only the last attempt's failure goes to `f`.
    #[must_use]
    pub fn fallback(
        mut self,
        on: FallbackOn,
        f: impl Fn(Failure<C::Response, C::Error>) -> Result<C::Response, HttpError<C::Error>> + Send + Sync + 'static,
    ) -> Self {
        self.fallback = Some(Fallback { on, f: Arc::new(f) });
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
    /// that one failing host never opens the circuit for another.
    #[must_use]
    pub fn per_host(mut self) -> Self {
        self.per_host.get_or_insert(PerHost { max: 10_000, idle: None });
        self
    }

    /// Keeps at most `n` hosts' breakers (implies [`per_host`](Self::per_host)); past
    /// it, idle and then least recently used closed breakers are dropped.
    #[must_use]
    pub fn max_hosts(mut self, n: usize) -> Self {
        self.per_host.get_or_insert(PerHost { max: n, idle: None }).max = n;
        self
    }

    /// Drops the closed breakers of hosts not requested for `idle` (implies
    /// [`per_host`](Self::per_host)).
    #[must_use]
    pub fn host_idle_timeout(mut self, idle: Duration) -> Self {
        self.per_host.get_or_insert(PerHost { max: 10_000, idle: None }).idle = Some(idle);
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
        let (breakers, named) = match self.per_host {
            None => {
                let one = self.template.build()?;
                (Breakers::One(one.clone()), one)
            }
            Some(per_host) => {
                let mut family = BreakerBox::builder(self.template.clone()).max_breakers(per_host.max);
                if let Some(idle) = per_host.idle {
                    family = family.idle_timeout(idle);
                }
                // The family's bounds go by this builder's names.
                let family = family.build().map_err(|e| {
                    let field = match e.field() {
                        "max_breakers" => "max_hosts",
                        "idle_timeout" => "host_idle_timeout",
                        other => other,
                    };
                    ConfigError::new(field, format_args!("{}", e.value()), e.expected())
                })?;
                (Breakers::PerHost(family), self.template.build()?)
            }
        };
        let shared = Shared {
            retry: self.retry.map(|r| RetryState::new(r, named.clock())),
            breakers,
            named,
            classifier: self.classifier,
            status: self.status,
            fallback: self.fallback,
        };
        Ok(HttpBreaker { client: self.client, methods: Methods::standard(), shared: Arc::new(shared) })
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
            _ => {}
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
        self
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
            .field("classifier", &self.classifier)
            .field("fallback", &self.fallback)
            .field("retry", &self.retry)
            .field("per_host", &self.per_host)
            .finish_non_exhaustive()
    }
}
