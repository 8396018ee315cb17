//! The blocking breaker, for blocking clients (ureq with the `ureq` feature, or any
//! [`BlockingHttpClient`]).
//!
//! It is the async [`HttpBreaker`](crate::HttpBreaker) driven on the calling thread:
//! the client is wrapped in [`Blocking`], whose futures finish on their first poll, so
//! the same code classifies, retries and falls back, with no runtime and no extra
//! thread. Do not call it from inside an async task: like any blocking call, it holds
//! the task's thread until the response arrives.
//!
//! # Examples
//!
//! ```no_run
//! # #[cfg(feature = "ureq")] {
//! use std::time::Duration;
//! use breakerbox_http::blocking::HttpBreaker;
//!
//! let breaker = HttpBreaker::new(ureq::agent(), 3, Duration::from_secs(10))?;
//! let response = breaker.do_request("GET", "http://127.0.0.1:8080/health")?;
//! println!("{}", response.status());
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::Duration;

use breakerbox::{Breaker, Metrics, State};
use bytes::Bytes;

use crate::{
    BlockingHttpClient, ConfigError, ErrorKind, Handler, HttpBreakerBuilder, HttpClient, HttpError, Methods, Request,
};

/// A blocking client seen as an [`HttpClient`] whose futures are ready at once: the
/// request is made, blocking, when the future is created.
///
/// It exists for [`HttpBreaker`]; awaiting it inside an async runtime would block the
/// runtime's thread.
#[derive(Clone, Debug, Default)]
pub struct Blocking<C>(C);

impl<C> Blocking<C> {
    /// Wraps a blocking client.
    pub const fn new(client: C) -> Self {
        Self(client)
    }

    /// The blocking client.
    pub const fn get_ref(&self) -> &C {
        &self.0
    }

    /// The blocking client.
    pub fn into_inner(self) -> C {
        self.0
    }
}

impl<C: BlockingHttpClient> HttpClient for Blocking<C> {
    type Response = C::Response;
    type Error = C::Error;

    fn execute(&self, request: Request) -> impl Future<Output = Result<Self::Response, Self::Error>> + Send {
        std::future::ready(self.0.execute(request))
    }

    fn error_kind(error: &Self::Error) -> ErrorKind {
        C::error_kind(error)
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        std::thread::sleep(duration);
        std::future::ready(())
    }
}

impl<C: BlockingHttpClient> Handler<Blocking<C>> {
    /// Sends the request with `f`, which receives the blocking client and the request.
    pub fn from_blocking_fn(f: impl Fn(&C, Request) -> Result<C::Response, C::Error> + Send + Sync + 'static) -> Self {
        Handler::from_fn(move |client: &Blocking<C>, request| Box::pin(std::future::ready(f(&client.0, request))))
    }
}

/// The blocking face of [`crate::HttpBreaker`]: the same methods, without `.await`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use breakerbox_http::blocking::HttpBreaker;
/// use breakerbox_http::{BlockingHttpClient, HttpError, Request};
///
/// /// A client whose server is always down.
/// #[derive(Debug)]
/// struct Down;
///
/// impl BlockingHttpClient for Down {
///     type Response = http::Response<()>;
///     type Error = std::io::Error;
///     fn execute(&self, _: Request) -> Result<Self::Response, Self::Error> {
///         Err(std::io::ErrorKind::ConnectionRefused.into())
///     }
/// }
///
/// let breaker = HttpBreaker::new(Down, 2, Duration::from_secs(10))?;
/// for _ in 0..2 {
///     assert!(matches!(breaker.do_request("GET", "http://db.internal/"), Err(HttpError::Transport(_))));
/// }
/// assert!(breaker.is_open());
/// assert!(breaker.do_request("GET", "http://db.internal/").unwrap_err().is_circuit_open());
/// # Ok::<(), breakerbox_http::ConfigError>(())
/// ```
///
/// # Clone
///
/// As [`crate::HttpBreaker`]: clones share the breakers.
pub struct HttpBreaker<C: BlockingHttpClient> {
    inner: crate::HttpBreaker<Blocking<C>>,
}

type Output<C> = Result<<C as BlockingHttpClient>::Response, HttpError<<C as BlockingHttpClient>::Error>>;

impl<C: BlockingHttpClient> HttpBreaker<C> {
    /// The original's constructor; see [`crate::HttpBreaker::new`].
    ///
    /// # Errors
    ///
    /// A zero `error_threshold` or `time_window`.
    pub fn new(client: C, error_threshold: u32, time_window: Duration) -> Result<Self, ConfigError> {
        Ok(Self { inner: crate::HttpBreaker::new(Blocking(client), error_threshold, time_window)? })
    }

    /// A builder; see [`HttpBreakerBuilder`].
    pub fn builder(client: C) -> HttpBreakerBuilder<Blocking<C>, Self> {
        HttpBreakerBuilder::with_client(Blocking(client))
    }

    /// Sends a `method` request to `url` through the breaker; see
    /// [`crate::HttpBreaker::do_request`].
    ///
    /// # Errors
    ///
    /// As [`crate::HttpBreaker::do_request`].
    pub fn do_request(&self, method: &str, url: &str) -> Output<C> {
        block_on(self.inner.do_request(method, url))
    }

    /// Sends a full request; see [`crate::HttpBreaker::send`].
    ///
    /// # Errors
    ///
    /// As [`crate::HttpBreaker::do_request`].
    pub fn send<B: Into<Bytes>>(&self, request: http::Request<B>) -> Output<C> {
        block_on(self.inner.send(request))
    }

    /// See [`crate::HttpBreaker::state`].
    pub fn state(&self) -> State {
        self.inner.state()
    }

    /// See [`crate::HttpBreaker::is_open`].
    pub fn is_open(&self) -> bool {
        self.inner.is_open()
    }

    /// See [`crate::HttpBreaker::is_half_open`].
    pub fn is_half_open(&self) -> bool {
        self.inner.is_half_open()
    }

    /// See [`crate::HttpBreaker::is_closed`].
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// See [`crate::HttpBreaker::clear_state`].
    pub fn clear_state(&self) {
        self.inner.clear_state();
    }

    /// See [`crate::HttpBreaker::metrics`].
    pub fn metrics(&self) -> Metrics {
        self.inner.metrics()
    }

    /// See [`crate::HttpBreaker::name`].
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// The method table. Add a blocking handler with [`Handler::from_blocking_fn`].
    pub fn methods(&self) -> &Methods<Blocking<C>> {
        self.inner.methods()
    }

    /// The method table, to add, replace and remove methods.
    pub fn methods_mut(&mut self) -> &mut Methods<Blocking<C>> {
        self.inner.methods_mut()
    }

    /// The client.
    pub fn client(&self) -> &C {
        self.inner.client().get_ref()
    }

    /// See [`crate::HttpBreaker::breaker`].
    pub fn breaker(&self) -> Option<&Breaker> {
        self.inner.breaker()
    }

    /// See [`crate::HttpBreaker::breaker_for`].
    ///
    /// # Errors
    ///
    /// [`HttpError::InvalidUrl`].
    pub fn breaker_for(&self, url: &str) -> Result<Breaker, HttpError<C::Error>> {
        self.inner.breaker_for(url)
    }

    /// See [`crate::HttpBreaker::host_states`].
    pub fn host_states(&self) -> Vec<(String, State)> {
        self.inner.host_states()
    }

    /// The async breaker underneath.
    pub fn get_ref(&self) -> &crate::HttpBreaker<Blocking<C>> {
        &self.inner
    }
}

impl<C: BlockingHttpClient> HttpBreakerBuilder<Blocking<C>, HttpBreaker<C>> {
    /// Builds the blocking breaker.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first setting that cannot work.
    pub fn build(self) -> Result<HttpBreaker<C>, ConfigError> {
        Ok(HttpBreaker { inner: self.build_async()? })
    }
}

impl<C: BlockingHttpClient + Clone> Clone for HttpBreaker<C> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

impl<C: BlockingHttpClient + fmt::Debug> fmt::Debug for HttpBreaker<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("blocking::HttpBreaker").field(&self.inner).finish()
    }
}

/// Runs a future to completion on this thread, parking between polls.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(Thread);

    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }

    let mut future = pin!(future);
    // The blocking client's futures are ready on their first poll: no waker needed.
    if let Poll::Ready(output) = future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        return output;
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => return output,
            Poll::Pending => std::thread::park(),
        }
    }
}
