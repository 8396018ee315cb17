//! Named scenarios: a backend model (what a call gets at virtual time `t`) and a caller
//! model (when calls arrive).
//!
//! Every scenario has the common parameters `rate`, `ramp-to` and `latency`, and its
//! own (table in the crate's documentation). Durations are written `10s`, `250ms`, or
//! as bare seconds.

use std::fmt;
use std::time::Duration;

use crate::SimError;

/// What a backend does with one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The call succeeds after its latency.
    Success,
    /// The call fails after its latency (a 500).
    Failure,
    /// The backend sheds the call (a 503): reported with
    /// [`Report::overloaded`](breakerbox::Report::overloaded).
    Overloaded,
    /// The call hangs for its latency and then times out (reported as overloaded, as a
    /// timeout is).
    Hang,
    /// The caller gives up after the latency (its deadline) and drops the call's
    /// permit unreported, as a future dropped by a timeout does.
    Cancelled,
    /// The call got an answer that says nothing about the backend's health (a
    /// recorded 4xx): reported with [`Report::ignored`](breakerbox::Report::ignored).
    Ignored,
}

/// A backend's answer to one call: what happens, and after how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response {
    /// What happens.
    pub reply: Reply,
    /// When the call completes, after it started.
    pub latency: Duration,
}

/// A backend model.
pub trait Backend: fmt::Debug {
    /// The answer to a call that reaches the backend at `at`.
    fn call(&mut self, at: Duration) -> Response;

    /// The spans of time during which the backend is failing (the ground truth the
    /// outputs are measured against), in order.
    fn troubles(&self, until: Duration) -> Vec<(Duration, Duration)>;
}

/// A caller model: `rate` calls per second, rising (or falling) linearly to `ramp_to`
/// over the run when it is set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Load {
    /// Calls per second at the start.
    pub rate: f64,
    /// Calls per second at the end; `None` for a fixed rate.
    pub ramp_to: Option<f64>,
}

impl Load {
    /// The arrival times of every call in `0..seconds`, evenly spaced at the rate of
    /// the moment.
    pub fn arrivals(&self, seconds: Duration) -> Vec<Duration> {
        self.arrival_times(seconds).collect()
    }

    /// [`arrivals`](Self::arrivals) one at a time, in constant memory.
    pub fn arrival_times(&self, seconds: Duration) -> Arrivals {
        Arrivals { load: *self, end: seconds.as_secs_f64(), t: 0.0, i: 0 }
    }
}

/// The arrival times of a [`Load`], in order.
#[derive(Clone, Debug)]
pub struct Arrivals {
    load: Load,
    end: f64,
    t: f64,
    i: u64,
}

impl Iterator for Arrivals {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.t >= self.end - 1e-9 {
            return None;
        }
        let at = Duration::from_secs_f64(self.t);
        self.t = match self.load.ramp_to {
            // A floor of 0.01 calls/s keeps a ramp that reaches 0 from stalling.
            Some(to) => self.t + 1.0 / (self.load.rate + (to - self.load.rate) * (self.t / self.end)).max(0.01),
            // By index, so that rounding never adds a call at the end.
            None => {
                self.i += 1;
                self.i as f64 / self.load.rate.max(0.01)
            }
        };
        Some(at)
    }
}

/// The scenarios, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Healthy, then down (every call fails fast) for `duration`, then healthy.
    Outage,
    /// For `duration`, the backend serves only `capacity` calls per second and sheds
    /// the rest as overloaded.
    Brownout,
    /// For `duration`, latency rises to `peak` over `rise`; failing while above
    /// `threshold`.
    Slow,
    /// Down for `down`, up for `up`, alternating from `start`.
    Flapping,
    /// Always healthy, but each call fails with probability `failure-rate` (seeded).
    Noise,
    /// Down for `duration`, then up, but the first `hung-calls` calls after the
    /// recovery hang for `hang` and time out.
    HungProbe,
    /// For `duration`, the backend takes `slow-latency`, and callers give up after
    /// `deadline`, dropping their calls unreported (cancelled).
    Cancelling,
}

impl Kind {
    /// Every scenario.
    pub const ALL: [Kind; 7] =
        [Kind::Outage, Kind::Brownout, Kind::Slow, Kind::Flapping, Kind::Noise, Kind::HungProbe, Kind::Cancelling];

    /// The scenario's name on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Outage => "outage",
            Kind::Brownout => "brownout",
            Kind::Slow => "slow",
            Kind::Flapping => "flapping",
            Kind::Noise => "noise",
            Kind::HungProbe => "hung-probe",
            Kind::Cancelling => "cancelling",
        }
    }

    /// A one-line description.
    pub const fn about(self) -> &'static str {
        match self {
            Kind::Outage => "healthy, then down for `duration` from `start`, then healthy",
            Kind::Brownout => {
                "from `start` for `duration`, only `capacity` calls/s served, the rest shed as overloaded"
            }
            Kind::Slow => "from `start` for `duration`, latency rises to `peak` over `rise`; failing above `threshold`",
            Kind::Flapping => "from `start`, down for `down` then up for `up`, again and again",
            Kind::Noise => "always healthy; each call fails with probability `failure-rate` (seeded)",
            Kind::HungProbe => "down for `duration` from `start`; then the first `hung-calls` calls hang for `hang`",
            Kind::Cancelling => {
                "from `start` for `duration`, calls take `slow-latency`; callers cancel them at `deadline`"
            }
        }
    }
}

/// How a parameter is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A duration (`10s`, `250ms`, bare seconds).
    Duration,
    /// Calls per second.
    Rate,
    /// A fraction from 0 to 1.
    Fraction,
    /// A whole number.
    Count,
}

/// One parameter of a scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// Its name (`--name value` on the command line).
    pub name: &'static str,
    /// Its value: seconds for a duration.
    pub value: f64,
    /// How it is written.
    pub unit: Unit,
    /// What it means.
    pub doc: &'static str,
}

impl Param {
    fn new(name: &'static str, value: f64, unit: Unit, doc: &'static str) -> Self {
        Self { name, value, unit, doc }
    }

    /// The value as written on the command line.
    pub fn display(&self) -> String {
        match self.unit {
            Unit::Duration if self.value < 1.0 && self.value > 0.0 => format!("{}ms", (self.value * 1000.0).round()),
            Unit::Duration => format!("{}s", self.value),
            Unit::Rate => format!("{}/s", self.value),
            Unit::Fraction | Unit::Count => format!("{}", self.value),
        }
    }
}

/// A scenario with its parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    kind: Kind,
    params: Vec<Param>,
}

impl Scenario {
    /// The scenario of this kind, every parameter at its default.
    pub fn new(kind: Kind) -> Self {
        use Unit::*;
        let mut params = vec![
            Param::new("rate", if kind == Kind::Brownout { 150.0 } else { 20.0 }, Rate, "calls offered per second"),
            Param::new("ramp-to", 0.0, Rate, "calls per second at the end, rising linearly from `rate`; 0: no ramp"),
            Param::new("latency", 0.02, Duration, "a healthy call's latency"),
        ];
        let start = Param::new("start", 10.0, Duration, "when the trouble begins");
        match kind {
            Kind::Outage => params.extend([
                start,
                Param::new("duration", 20.0, Duration, "how long the backend is down"),
                Param::new("error-latency", 0.05, Duration, "a failing call's latency"),
            ]),
            Kind::Brownout => params.extend([
                start,
                Param::new("duration", 30.0, Duration, "how long the brownout lasts"),
                Param::new(
                    "capacity",
                    50.0,
                    Rate,
                    "calls served in each second of it (the first ones); the rest are shed",
                ),
                Param::new("error-latency", 0.005, Duration, "a shed call's latency"),
            ]),
            Kind::Slow => params.extend([
                start,
                Param::new("duration", 30.0, Duration, "how long latency stays raised"),
                Param::new("rise", 10.0, Duration, "how long latency takes to reach `peak`"),
                Param::new("peak", 5.0, Duration, "the highest latency"),
                Param::new("threshold", 1.0, Duration, "the backend counts as failing while latency is above this"),
            ]),
            Kind::Flapping => params.extend([
                start,
                Param::new("down", 5.0, Duration, "each down period"),
                Param::new("up", 5.0, Duration, "each up period"),
                Param::new("error-latency", 0.05, Duration, "a failing call's latency"),
            ]),
            Kind::Noise => params.push(Param::new("failure-rate", 0.1, Fraction, "the chance that a call fails")),
            Kind::HungProbe => params.extend([
                start,
                Param::new("duration", 20.0, Duration, "how long the backend is down"),
                Param::new("error-latency", 0.05, Duration, "a failing call's latency"),
                Param::new("hung-calls", 3.0, Count, "calls after the recovery that hang"),
                Param::new("hang", 60.0, Duration, "how long each of them hangs before it times out"),
            ]),
            Kind::Cancelling => params.extend([
                start,
                Param::new("duration", 20.0, Duration, "how long the backend is slow"),
                Param::new("slow-latency", 10.0, Duration, "a call's latency while it is slow"),
                Param::new("deadline", 2.0, Duration, "when a caller gives up and cancels its call"),
            ]),
        }
        Self { kind, params }
    }

    /// The scenario named `name` (`outage`, `brownout`, `slow`, `flapping`, `noise`,
    /// `hung-probe`).
    ///
    /// # Errors
    ///
    /// [`SimError`] naming the scenarios, for an unknown name.
    pub fn named(name: &str) -> Result<Self, SimError> {
        Kind::ALL.into_iter().find(|k| k.name() == name).map(Self::new).ok_or_else(|| {
            let names: Vec<_> = Kind::ALL.iter().map(|k| k.name()).collect();
            SimError(format!("--scenario: unknown scenario `{name}` (one of: {})", names.join(", ")))
        })
    }

    /// The kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The parameters.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// A parameter's value (seconds for a duration).
    ///
    /// # Panics
    ///
    /// If the scenario has no such parameter.
    pub fn get(&self, name: &str) -> f64 {
        match self.params.iter().find(|p| p.name == name) {
            Some(p) => p.value,
            None => panic!("scenario {} has no parameter {name}", self.kind.name()),
        }
    }

    /// Sets a parameter from its written form.
    ///
    /// # Errors
    ///
    /// [`SimError`] naming the flag, for an unknown parameter or a bad value.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), SimError> {
        let kind = self.kind.name();
        let Some(p) = self.params.iter_mut().find(|p| p.name == name) else {
            let names: Vec<_> = self.params.iter().map(|p| format!("--{}", p.name)).collect();
            return Err(SimError(format!(
                "--{name}: not a parameter of scenario `{kind}` (its parameters: {})",
                names.join(", ")
            )));
        };
        let parsed = match p.unit {
            Unit::Duration => parse_seconds(value),
            Unit::Rate => value.strip_suffix("/s").unwrap_or(value).trim().parse::<f64>().ok(),
            Unit::Fraction => value.trim().parse::<f64>().ok().filter(|f| (0.0..=1.0).contains(f)),
            Unit::Count => value.trim().parse::<u32>().ok().map(f64::from),
        };
        let ok = parsed.filter(|v| v.is_finite() && *v >= 0.0 && (p.unit != Unit::Rate || *v <= 1e6));
        // A rate of 0 makes no sense for the rate itself or a capacity.
        let ok = ok.filter(|v| !(matches!(p.name, "rate") && *v == 0.0));
        match ok {
            Some(v) => {
                p.value = v;
                Ok(())
            }
            None => Err(SimError(format!(
                "--{name}: `{value}` is not {}",
                match p.unit {
                    Unit::Duration => "a duration such as 10s, 250ms or 1.5 (seconds)",
                    Unit::Rate => "a rate in calls per second from 0 to 1000000 (rate: above 0)",
                    Unit::Fraction => "a fraction from 0 to 1",
                    Unit::Count => "a whole number",
                }
            ))),
        }
    }

    /// The caller model.
    pub fn load(&self) -> Load {
        let to = self.get("ramp-to");
        Load { rate: self.get("rate"), ramp_to: (to > 0.0).then_some(to) }
    }

    /// The backend model; `seed` drives the only randomness (the noise scenario's).
    pub fn backend(&self, seed: u64) -> Box<dyn Backend> {
        let d = |name: &str| Duration::from_secs_f64(self.get(name));
        let latency = d("latency");
        match self.kind {
            Kind::Outage => Box::new(Outage {
                down: (d("start"), d("start") + d("duration")),
                latency,
                error_latency: d("error-latency"),
                hung: 0,
                hang: Duration::ZERO,
            }),
            Kind::HungProbe => Box::new(Outage {
                down: (d("start"), d("start") + d("duration")),
                latency,
                error_latency: d("error-latency"),
                hung: self.get("hung-calls") as u32,
                hang: d("hang"),
            }),
            Kind::Brownout => Box::new(Brownout {
                span: (d("start"), d("start") + d("duration")),
                capacity: self.get("capacity"),
                second: u64::MAX,
                served: 0.0,
                latency,
                error_latency: d("error-latency"),
            }),
            Kind::Slow => Box::new(Slow {
                start: d("start"),
                duration: d("duration"),
                rise: d("rise"),
                base: latency,
                peak: d("peak"),
                threshold: d("threshold"),
            }),
            Kind::Flapping => Box::new(Flapping {
                start: d("start"),
                down: d("down"),
                up: d("up"),
                latency,
                error_latency: d("error-latency"),
            }),
            Kind::Noise => Box::new(Noise { rate: self.get("failure-rate"), rng: Rng::new(seed), latency }),
            Kind::Cancelling => Box::new(Cancelling {
                slow: (d("start"), d("start") + d("duration")),
                latency,
                slow_latency: d("slow-latency"),
                deadline: d("deadline"),
            }),
        }
    }
}

/// Seconds from `10s`, `250ms`, `1m` or a bare number.
pub(crate) fn parse_seconds(value: &str) -> Option<f64> {
    let v = value.trim();
    let (number, scale) = if let Some(n) = v.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60.0)
    } else {
        (v, 1.0)
    };
    number.trim().parse::<f64>().ok().map(|n| n * scale).filter(|n| n.is_finite() && *n >= 0.0 && *n <= 1e7)
}

/// Outage and hung-probe: down in `down.0..down.1`; after it, the first `hung` calls
/// hang for `hang`.
#[derive(Debug)]
struct Outage {
    down: (Duration, Duration),
    latency: Duration,
    error_latency: Duration,
    hung: u32,
    hang: Duration,
}

impl Backend for Outage {
    fn call(&mut self, at: Duration) -> Response {
        if at >= self.down.0 && at < self.down.1 {
            Response { reply: Reply::Failure, latency: self.error_latency }
        } else if at >= self.down.1 && self.hung > 0 {
            self.hung -= 1;
            Response { reply: Reply::Hang, latency: self.hang }
        } else {
            Response { reply: Reply::Success, latency: self.latency }
        }
    }

    fn troubles(&self, until: Duration) -> Vec<(Duration, Duration)> {
        span(self.down, until)
    }
}

fn span((from, to): (Duration, Duration), until: Duration) -> Vec<(Duration, Duration)> {
    if from < until && from < to { vec![(from, to.min(until))] } else { Vec::new() }
}

/// Brownout: during `span`, the first `capacity` calls of each whole second are
/// served and the rest shed (a quota per second, as a rate limiter in front of the
/// backend enforces it).
#[derive(Debug)]
struct Brownout {
    span: (Duration, Duration),
    capacity: f64,
    second: u64,
    served: f64,
    latency: Duration,
    error_latency: Duration,
}

impl Backend for Brownout {
    fn call(&mut self, at: Duration) -> Response {
        if at < self.span.0 || at >= self.span.1 {
            return Response { reply: Reply::Success, latency: self.latency };
        }
        if at.as_secs() != self.second {
            self.second = at.as_secs();
            self.served = 0.0;
        }
        if self.served + 1.0 <= self.capacity {
            self.served += 1.0;
            Response { reply: Reply::Success, latency: self.latency }
        } else {
            Response { reply: Reply::Overloaded, latency: self.error_latency }
        }
    }

    fn troubles(&self, until: Duration) -> Vec<(Duration, Duration)> {
        span(self.span, until)
    }
}

/// Slow: latency rises linearly from `base` to `peak` over `rise`, from `start`, for
/// `duration`; every call succeeds.
#[derive(Debug)]
struct Slow {
    start: Duration,
    duration: Duration,
    rise: Duration,
    base: Duration,
    peak: Duration,
    threshold: Duration,
}

impl Slow {
    fn latency(&self, at: Duration) -> Duration {
        if at < self.start || at >= self.start + self.duration {
            return self.base;
        }
        let f = if self.rise.is_zero() {
            1.0
        } else {
            ((at - self.start).as_secs_f64() / self.rise.as_secs_f64()).min(1.0)
        };
        Duration::from_secs_f64(self.base.as_secs_f64() + (self.peak.as_secs_f64() - self.base.as_secs_f64()) * f)
    }
}

impl Backend for Slow {
    fn call(&mut self, at: Duration) -> Response {
        Response { reply: Reply::Success, latency: self.latency(at) }
    }

    fn troubles(&self, until: Duration) -> Vec<(Duration, Duration)> {
        if self.peak <= self.threshold {
            return Vec::new();
        }
        // Where the linear rise crosses the threshold.
        let (base, peak, thr) = (self.base.as_secs_f64(), self.peak.as_secs_f64(), self.threshold.as_secs_f64());
        let f = if thr <= base { 0.0 } else { (thr - base) / (peak - base) };
        let from = self.start + Duration::from_secs_f64(self.rise.as_secs_f64() * f);
        span((from, self.start + self.duration), until)
    }
}

/// Flapping: down for `down`, up for `up`, from `start`.
#[derive(Debug)]
struct Flapping {
    start: Duration,
    down: Duration,
    up: Duration,
    latency: Duration,
    error_latency: Duration,
}

impl Backend for Flapping {
    fn call(&mut self, at: Duration) -> Response {
        let period = (self.down + self.up).as_secs_f64();
        let down =
            at >= self.start && (period <= 0.0 || ((at - self.start).as_secs_f64() % period) < self.down.as_secs_f64());
        if down {
            Response { reply: Reply::Failure, latency: self.error_latency }
        } else {
            Response { reply: Reply::Success, latency: self.latency }
        }
    }

    fn troubles(&self, until: Duration) -> Vec<(Duration, Duration)> {
        let mut out = Vec::new();
        let mut t = self.start;
        while t < until && !self.down.is_zero() {
            out.push((t, (t + self.down).min(until)));
            if self.up.is_zero() {
                out[0].1 = until;
                out.truncate(1);
                break;
            }
            t += self.down + self.up;
        }
        out
    }
}

/// Cancelling: slow during `slow`; a caller waits at most `deadline`, then cancels.
#[derive(Debug)]
struct Cancelling {
    slow: (Duration, Duration),
    latency: Duration,
    slow_latency: Duration,
    deadline: Duration,
}

impl Backend for Cancelling {
    fn call(&mut self, at: Duration) -> Response {
        let latency = if at >= self.slow.0 && at < self.slow.1 { self.slow_latency } else { self.latency };
        if latency > self.deadline {
            Response { reply: Reply::Cancelled, latency: self.deadline }
        } else {
            Response { reply: Reply::Success, latency }
        }
    }

    fn troubles(&self, until: Duration) -> Vec<(Duration, Duration)> {
        if self.slow_latency > self.deadline { span(self.slow, until) } else { Vec::new() }
    }
}

/// Noise: healthy, with a seeded random failure rate.
#[derive(Debug)]
struct Noise {
    rate: f64,
    rng: Rng,
    latency: Duration,
}

impl Backend for Noise {
    fn call(&mut self, _at: Duration) -> Response {
        let reply = if self.rng.fraction() < self.rate { Reply::Failure } else { Reply::Success };
        Response { reply, latency: self.latency }
    }

    fn troubles(&self, _until: Duration) -> Vec<(Duration, Duration)> {
        Vec::new()
    }
}

/// splitmix64: small, seedable, and the same on every platform.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform fraction in `0..1`.
    pub(crate) fn fraction(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn outage_fails_only_inside_its_span() {
        let mut b = Scenario::new(Kind::Outage).backend(1);
        assert_eq!(b.call(secs(9.9)).reply, Reply::Success);
        assert_eq!(b.call(secs(10.0)).reply, Reply::Failure);
        assert_eq!(b.call(secs(29.9)).reply, Reply::Failure);
        assert_eq!(b.call(secs(30.0)).reply, Reply::Success);
        assert_eq!(b.troubles(secs(60.0)), vec![(secs(10.0), secs(30.0))]);
    }

    #[test]
    fn hung_probe_hangs_the_first_calls_after_the_outage() {
        let mut b = Scenario::new(Kind::HungProbe).backend(1);
        let after: Vec<_> = (0..5).map(|i| b.call(secs(30.0 + f64::from(i)))).collect();
        assert!(after[..3].iter().all(|r| r.reply == Reply::Hang && r.latency == secs(60.0)));
        assert!(after[3..].iter().all(|r| r.reply == Reply::Success));
    }

    #[test]
    fn brownout_serves_about_its_capacity() {
        let mut b = Scenario::new(Kind::Brownout).backend(1);
        let served = (0..1000).filter(|i| b.call(secs(20.0 + f64::from(*i) / 100.0)).reply == Reply::Success).count();
        // 10 s at 100 calls/s against 50/s of capacity.
        assert_eq!(served, 500);
    }

    #[test]
    fn slow_latency_rises_past_the_threshold() {
        let mut b = Scenario::new(Kind::Slow).backend(1);
        assert_eq!(b.call(secs(5.0)).latency, secs(0.02));
        assert!(b.call(secs(15.0)).latency > secs(2.0));
        assert!(b.call(secs(25.0)).latency >= secs(4.99));
        let t = b.troubles(secs(60.0));
        assert_eq!(t.len(), 1);
        // 1 s is reached about 1.96 s into the 10 s rise.
        assert!((t[0].0.as_secs_f64() - 11.96).abs() < 0.01, "{t:?}");
        assert_eq!(t[0].1, secs(40.0));
    }

    #[test]
    fn flapping_alternates() {
        let mut b = Scenario::new(Kind::Flapping).backend(1);
        assert_eq!(b.call(secs(12.0)).reply, Reply::Failure);
        assert_eq!(b.call(secs(17.0)).reply, Reply::Success);
        assert_eq!(b.call(secs(22.0)).reply, Reply::Failure);
        assert_eq!(b.troubles(secs(40.0)).len(), 3);
    }

    #[test]
    fn cancelling_callers_give_up_at_their_deadline_while_the_backend_is_slow() {
        let mut b = Scenario::new(Kind::Cancelling).backend(1);
        assert_eq!(b.call(secs(5.0)), Response { reply: Reply::Success, latency: secs(0.02) });
        assert_eq!(b.call(secs(15.0)), Response { reply: Reply::Cancelled, latency: secs(2.0) });
        assert_eq!(b.call(secs(30.0)).reply, Reply::Success);
        assert_eq!(b.troubles(secs(60.0)), vec![(secs(10.0), secs(30.0))]);
        let mut patient = Scenario::new(Kind::Cancelling);
        patient.set("deadline", "20s").unwrap();
        assert_eq!(patient.backend(1).call(secs(15.0)), Response { reply: Reply::Success, latency: secs(10.0) });
        assert!(patient.backend(1).troubles(secs(60.0)).is_empty(), "slow but within every deadline");
    }

    #[test]
    fn noise_is_seeded() {
        let run = |seed| {
            let mut b = Scenario::new(Kind::Noise).backend(seed);
            (0..10_000).map(|i| b.call(secs(f64::from(i))).reply).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let failures = run(7).iter().filter(|r| **r == Reply::Failure).count();
        assert!((900..=1100).contains(&failures), "{failures}");
    }

    #[test]
    fn a_ramp_rises() {
        let load = Load { rate: 10.0, ramp_to: Some(30.0) };
        let a = load.arrivals(secs(10.0));
        let first = a.iter().filter(|t| **t < secs(1.0)).count();
        let last = a.iter().filter(|t| **t >= secs(9.0)).count();
        assert!(first <= 11 && last >= 27, "{first} {last}");
    }

    #[test]
    fn parameters_parse_and_reject() {
        let mut s = Scenario::named("outage").unwrap();
        s.set("duration", "5s").unwrap();
        s.set("error-latency", "250ms").unwrap();
        assert_eq!(s.get("duration"), 5.0);
        assert_eq!(s.get("error-latency"), 0.25);
        assert!(s.set("duration", "soon").unwrap_err().0.contains("--duration"));
        assert!(s.set("capacity", "5").unwrap_err().0.contains("not a parameter"));
        assert!(Scenario::named("meltdown").unwrap_err().0.contains("hung-probe"));
        let mut n = Scenario::new(Kind::Noise);
        assert!(n.set("failure-rate", "1.5").is_err());
    }
}
