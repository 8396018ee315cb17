//! Recorded traces: a CSV file or a web server's access log, read line by line into
//! [`Call`]s in start-time order, for a replay of real traffic.
//!
//! ```
//! use breakerbox_sim::trace::{Recorded, TraceOptions, TraceReader};
//!
//! let csv = "timestamp,key,outcome,latency\n1700000000,api,200,12ms\n1700000000.5,api,503,1.5s\n";
//! let calls: Vec<_> = TraceReader::new(csv.as_bytes(), TraceOptions::default()).collect::<Result<_, _>>()?;
//! assert_eq!(calls[1].at.as_millis(), 500);
//! assert_eq!(calls[1].recorded, Recorded::Overloaded);
//! # Ok::<(), breakerbox_sim::trace::LineError>(())
//! ```
//!
//! # CSV
//!
//! One call a line, `timestamp,key,outcome,latency`:
//!
//! ```text
//! timestamp,key,outcome,latency
//! 1700000000.125,https://api.example.com/items/42,200,12ms
//! 2026-12-01T10:00:00.250+02:00,"/search?q=""a,b""",timeout,1.5s
//! ```
//!
//! - A header is optional: a first line whose first field is `timestamp` is skipped
//!   (its other names are not checked).
//! - `timestamp`: when the call **started**, in Unix seconds (`1700000000`,
//!   `1700000000.125`) or RFC 3339 (`2026-12-01T10:00:00.250Z`, or with an offset
//!   such as `+02:00`).
//! - `key`: any text: a host, a route or a URL. A field in `"` may hold commas, and
//!   `""` for a quote; a record is one line (no line break inside quotes).
//! - `outcome`: an HTTP status `100..=599` (see [Outcomes](#outcomes)), or
//!   `success`/`ok`, `failure`/`error`, `overloaded`/`timeout`, `ignored` (any case).
//! - `latency`: `12ms`, `1.5s`, `250us` (or `µs`), or a bare number of milliseconds.
//!
//! Spaces around a field are dropped.
//!
//! # Access logs
//!
//! The common or combined log format as nginx and Apache write it, with the request
//! time appended as the last field, and optionally the virtual host first:
//!
//! ```text
//! 127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /api/items/42 HTTP/1.1" 200 2326 "-" "curl/8" 0.012
//! example.com:443 127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /api/items/42 HTTP/1.1" 200 2326 12034
//! ```
//!
//! - The fields before `[` are `client ident user`, or `vhost client ident user`
//!   (Apache `vhost_combined`, nginx `$host` first): three or four of them tell which.
//! - Any number of quoted fields (referer, user agent, ...) may follow the byte count;
//!   the last field is the request time.
//! - The request time is seconds when it has a decimal point (nginx `$request_time`,
//!   `0.012`) and whole microseconds when it has none (Apache `%D`, `12034`): nginx
//!   always writes the point, and `%D` never does.
//! - A line is written when its request **completes**, so the call started at the
//!   logged time less the request time. The logged time is whole seconds unless it has
//!   a fraction (`13:55:36.250`), so starts are only as exact as that.
//!
//! # Outcomes
//!
//! | status | [`Recorded`] | why |
//! |---|---|---|
//! | 2xx, 3xx | `Success` | |
//! | 429, 502, 503, 504 | `Overloaded` | a backend shedding load (breakerbox-http's `is_overload_status`) |
//! | other 5xx | `Failure` | |
//! | 1xx, 4xx but 429 | `Ignored` | a caller's mistake never counts against the server |
//!
//! # Groups
//!
//! Each call's [`Call::key`] names the breaker it goes through ([`GroupBy`]):
//!
//! - `all`: `*` for every call, one breaker.
//! - `key`: the CSV key as written; for an access log, the host as for `host`.
//! - `host`: a URL key's authority (`https://api.example.com:8443/x` gives
//!   `api.example.com:8443`), else the key up to its first `/`; lowercased. An access
//!   log's vhost, else the host of an absolute request target (`GET http://api.example.com/x
//!   HTTP/1.1`, or `CONNECT host:443`). `-` when there is none.
//! - `route`: the method (an access log's, or a CSV key's leading `GET `) and the path,
//!   with the query dropped and every id-like segment (all digits, a UUID, 16 or more
//!   hex digits) replaced by `:id`: `GET /api/items/:id`. A CSV key's path is a URL's
//!   path, the key when it starts with `/`, else the key from its first `/`. `-` for a
//!   request line that is not `METHOD target ...` (nginx logs `"-"` for a 400).
//!
//! # Order and time
//!
//! Calls come out sorted by start time (ties in line order). Neither format is quite
//! in order, an access log least (a slow call is logged after quicker ones that started
//! later), so the reader holds calls in a min-heap and yields one once the newest
//! logged time read is past its start by [`TraceOptions::reorder_window`] (60 s): the
//! window must cover the longest request time plus the file's own disorder. Memory is
//! what the window holds. A call that starts before one already yielded is a bad line
//! (`starts 75s before a call already replayed ...; raise --reorder-window`).
//!
//! [`Call::at`] counts from the first call yielded, the earliest start among the lines
//! read until the newest logged time passes it by the window; it is 0 for that call.
//! A later line that starts before it is a bad line, as above. Times are integer
//! nanoseconds throughout: a Unix timestamp's digits below a nanosecond are dropped.
//!
//! A far-future typo in a timestamp pushes the window past every call that follows:
//! they all come out as bad lines, and the first one's message names the line that
//! held the newest time.
//!
//! # Bad lines
//!
//! Empty lines (and lines of spaces) are skipped silently; a trailing `\r` and a UTF-8
//! byte order mark on the first line are dropped. Anything else that does not parse
//! is a [`LineError`] with its 1-based line number and a message naming the field and
//! what it expects: `line 3: latency: `12xs` is not a duration (12ms, 1.5s, 250us or
//! milliseconds)`. Lines are read as bytes, so invalid UTF-8 fails its line only, and
//! a line is held to [`MAX_LINE`] bytes. [`OnBadLine`] says whether to skip bad lines
//! (the reader keeps the first [`KEPT_ERRORS`] and a count) or to stop at the first.
//! An I/O error is yielded as an error and ends the iteration in either mode.

mod access_log;
mod csv;
mod fields;
mod group;
#[cfg(test)]
mod tests;

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashSet, VecDeque};
use std::fmt;
use std::io::{self, BufRead};
use std::sync::Arc;
use std::time::Duration;

use crate::SimError;
use fields::secs;

/// The longest line read, in bytes (without its line break): past it a line is a bad
/// line, so that a file without line breaks cannot take the memory.
pub const MAX_LINE: usize = 1 << 20;

/// How many skipped lines' errors a reader keeps; it counts the rest.
pub const KEPT_ERRORS: usize = 20;

/// Distinct keys shared between calls; past this many, each new key is its own
/// allocation, so that unique keys (`--group-by key` on raw URLs) do not pile up.
const MAX_INTERNED: usize = 10_000;

/// A trace's format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TraceFormat {
    /// `timestamp,key,outcome,latency`.
    #[default]
    Csv,
    /// nginx's or Apache's common or combined log with the request time last.
    AccessLog,
}

impl TraceFormat {
    /// `csv` or `access-log`.
    ///
    /// # Errors
    ///
    /// [`SimError`] listing the names, for anything else (the caller names its flag).
    pub fn parse(s: &str) -> Result<Self, SimError> {
        match s {
            "csv" => Ok(Self::Csv),
            "access-log" => Ok(Self::AccessLog),
            _ => Err(SimError(format!("`{s}` is not one of csv, access-log"))),
        }
    }

    /// The name [`parse`](Self::parse) reads.
    pub fn name(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::AccessLog => "access-log",
        }
    }
}

/// Which calls share a breaker: those with the same [`Call::key`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GroupBy {
    /// One breaker for everything: key `*`.
    #[default]
    All,
    /// The CSV key as written; an access log's host.
    Key,
    /// The host.
    Host,
    /// The method and path, ids folded to `:id`.
    Route,
}

impl GroupBy {
    /// `all`, `key`, `host` or `route`.
    ///
    /// # Errors
    ///
    /// [`SimError`] listing the names, for anything else (the caller names its flag).
    pub fn parse(s: &str) -> Result<Self, SimError> {
        match s {
            "all" => Ok(Self::All),
            "key" => Ok(Self::Key),
            "host" => Ok(Self::Host),
            "route" => Ok(Self::Route),
            _ => Err(SimError(format!("`{s}` is not one of all, key, host, route"))),
        }
    }

    /// The name [`parse`](Self::parse) reads.
    pub fn name(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Key => "key",
            Self::Host => "host",
            Self::Route => "route",
        }
    }
}

/// What to do with a line that does not parse.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnBadLine {
    /// Record it ([`TraceReader::skipped`]) and go on.
    #[default]
    Skip,
    /// Yield its error and stop.
    Fail,
}

impl OnBadLine {
    /// `skip` or `fail`.
    ///
    /// # Errors
    ///
    /// [`SimError`] listing the names, for anything else (the caller names its flag).
    pub fn parse(s: &str) -> Result<Self, SimError> {
        match s {
            "skip" => Ok(Self::Skip),
            "fail" => Ok(Self::Fail),
            _ => Err(SimError(format!("`{s}` is not one of skip, fail"))),
        }
    }

    /// The name [`parse`](Self::parse) reads.
    pub fn name(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::Fail => "fail",
        }
    }
}

/// How to read a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceOptions {
    /// The format (CSV).
    pub format: TraceFormat,
    /// Which calls share a breaker (all).
    pub group_by: GroupBy,
    /// Bad lines: skip or fail (skip).
    pub on_bad_line: OnBadLine,
    /// How far behind the newest logged time a call may start and still come out in
    /// order (60 s).
    pub reorder_window: Duration,
}

impl Default for TraceOptions {
    fn default() -> Self {
        Self {
            format: TraceFormat::Csv,
            group_by: GroupBy::All,
            on_bad_line: OnBadLine::Skip,
            reorder_window: Duration::from_secs(60),
        }
    }
}

/// What a call reports to its breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Recorded {
    /// A success.
    Success,
    /// A failure.
    Failure,
    /// A backend shedding load: [`Report::overloaded`](breakerbox::Report::overloaded).
    Overloaded,
    /// Counts neither way.
    Ignored,
}

impl Recorded {
    /// A status's outcome: 2xx and 3xx succeed; 429, 502, 503 and 504 are overloaded
    /// (as breakerbox-http's `is_overload_status`); other 5xx fail; 1xx and other 4xx
    /// are ignored, since a caller's mistake never counts against the server.
    pub fn from_status(status: u16) -> Self {
        match status {
            429 | 502 | 503 | 504 => Self::Overloaded,
            200..=399 => Self::Success,
            500..=599 => Self::Failure,
            _ => Self::Ignored,
        }
    }
}

/// One recorded call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// When it started, after the trace's first call started.
    pub at: Duration,
    /// Its group ([`GroupBy`]); calls with equal keys share one allocation (up to
    /// 10 000 distinct keys).
    pub key: Arc<str>,
    /// What it reports.
    pub recorded: Recorded,
    /// Its HTTP status; `None` for a CSV outcome written as a word.
    pub status: Option<u16>,
    /// How long it took.
    pub latency: Duration,
    /// Its line in the file, from 1.
    pub line: u64,
}

/// A line that did not parse, or a read error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// The line, from 1.
    pub line: u64,
    /// What is wrong, naming the field.
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for LineError {}

impl From<LineError> for SimError {
    fn from(e: LineError) -> Self {
        SimError(e.to_string())
    }
}

/// A parsed line, before its turn comes.
#[derive(Clone, Copy, Debug)]
struct Parsed {
    /// When the line was written (nanoseconds since the epoch): a CSV call's start, an
    /// access log call's completion.
    logged: i64,
    /// When the call started.
    start: i64,
    recorded: Recorded,
    status: Option<u16>,
    /// Nanoseconds.
    latency: u64,
}

/// A call in the reorder heap, ordered by (start, line).
#[derive(Debug)]
struct Pending {
    start: i64,
    call: Call,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.start, self.call.line).cmp(&(other.start, other.call.line))
    }
}

/// A field's bytes as text, or an error naming the field.
fn utf8<'a>(field: &str, b: &'a [u8]) -> Result<&'a str, String> {
    std::str::from_utf8(b)
        .map_err(|e| format!("{field}: not valid UTF-8 (at byte {} of the field)", e.valid_up_to() + 1))
}

/// Reads a trace into [`Call`]s in start-time order (see the [module docs](self)).
pub struct TraceReader<R> {
    input: R,
    options: TraceOptions,
    /// The reorder window in nanoseconds.
    window: i64,
    /// The line being read, reused.
    buf: Vec<u8>,
    /// Whether `buf` was cut at [`MAX_LINE`].
    too_long: bool,
    /// The group key being built, reused.
    key: String,
    /// A CSV key with its doubled quotes undone, reused.
    scratch: String,
    /// aHash, not SipHash: hashing was a tenth of a replay's time.
    keys: HashSet<Arc<str>, ahash::RandomState>,
    /// Calls held for the window, in two parts: `run`, the calls that came in order
    /// (each no earlier than the one before it, so a deque is already sorted), and
    /// `heap`, those that came out of order. A sorted trace costs O(1) per call
    /// instead of a heap's O(log n) with n the calls in the window (60,000 for a
    /// minute at 1,000 calls/s: sifting them was a third of a replay's time).
    run: VecDeque<Pending>,
    heap: BinaryHeap<Reverse<Pending>>,
    /// The newest logged time read, and its line.
    newest: Option<(i64, u64)>,
    /// The first call's start.
    origin: Option<i64>,
    /// The last yielded call's start.
    last: Option<i64>,
    lines: u64,
    bytes: u64,
    /// Whether the first non-empty line was seen (a CSV header can only be that).
    started: bool,
    skipped: Vec<LineError>,
    skipped_count: u64,
    eof: bool,
    stopped: bool,
}

impl<R> fmt::Debug for TraceReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceReader")
            .field("options", &self.options)
            .field("lines_read", &self.lines)
            .field("bytes_read", &self.bytes)
            .field("buffered", &(self.run.len() + self.heap.len()))
            .field("skipped_count", &self.skipped_count)
            .finish_non_exhaustive()
    }
}

impl<R: BufRead> TraceReader<R> {
    /// A reader of `input`.
    pub fn new(input: R, options: TraceOptions) -> Self {
        Self {
            input,
            window: i64::try_from(options.reorder_window.as_nanos()).unwrap_or(i64::MAX),
            options,
            buf: Vec::new(),
            too_long: false,
            key: String::new(),
            scratch: String::new(),
            keys: HashSet::default(),
            run: VecDeque::new(),
            heap: BinaryHeap::new(),
            newest: None,
            origin: None,
            last: None,
            lines: 0,
            bytes: 0,
            started: false,
            skipped: Vec::new(),
            skipped_count: 0,
            eof: false,
            stopped: false,
        }
    }

    /// The first [`KEPT_ERRORS`] lines skipped ([`OnBadLine::Skip`]), in order.
    pub fn skipped(&self) -> &[LineError] {
        &self.skipped
    }

    /// How many lines were skipped, all of them.
    pub fn skipped_count(&self) -> u64 {
        self.skipped_count
    }

    /// Lines read so far, empty ones included.
    pub fn lines_read(&self) -> u64 {
        self.lines
    }

    /// Bytes read so far (for a progress bar against the file's size).
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// Calls read but not yet yielded: those inside the reorder window.
    pub fn buffered(&self) -> usize {
        self.run.len() + self.heap.len()
    }

    /// The options it reads with.
    pub fn options(&self) -> &TraceOptions {
        &self.options
    }

    /// Reads the next line into `buf`, at most [`MAX_LINE`] bytes of it; false at the
    /// end of the input.
    fn read_line(&mut self) -> io::Result<bool> {
        self.buf.clear();
        self.too_long = false;
        let mut any = false;
        loop {
            let chunk = match self.input.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                return Ok(any);
            }
            any = true;
            let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            // Room for the line and its `\r\n`.
            let room = (MAX_LINE + 2).saturating_sub(self.buf.len());
            if take > room {
                self.too_long = true;
            }
            self.buf.extend_from_slice(&chunk[..take.min(room)]);
            self.input.consume(take);
            self.bytes += take as u64;
            if done {
                return Ok(true);
            }
        }
    }

    /// Parses `buf`: `None` for a line to pass over silently.
    fn parse_line(&mut self) -> Result<Option<Parsed>, String> {
        let mut line = &self.buf[..];
        line = line.strip_suffix(b"\n").unwrap_or(line);
        line = line.strip_suffix(b"\r").unwrap_or(line);
        if self.lines == 1 {
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        if self.too_long || line.len() > MAX_LINE {
            return Err(format!("longer than {MAX_LINE} bytes"));
        }
        if line.trim_ascii().is_empty() {
            return Ok(None);
        }
        let first = !self.started;
        self.started = true;
        self.key.clear();
        match self.options.format {
            TraceFormat::Csv if first && csv::is_header(line) => Ok(None),
            TraceFormat::Csv => csv::parse(line, self.options.group_by, &mut self.key, &mut self.scratch).map(Some),
            TraceFormat::AccessLog => access_log::parse(line, self.options.group_by, &mut self.key).map(Some),
        }
    }

    /// Puts a parsed line in the heap, unless it is too late for its turn.
    fn admit(&mut self, p: Parsed) -> Result<(), String> {
        if let (Some(last), Some(origin)) = (self.last, self.origin)
            && p.start < last
        {
            let what =
                if p.start < origin { "the trace's first call, already replayed" } else { "a call already replayed" };
            let newest = self.newest.map_or(0, |(_, line)| line);
            return Err(format!(
                "starts {} before {what} (line {newest} holds the newest time so far); raise --reorder-window (now {})",
                secs(last.abs_diff(p.start)),
                secs(self.window as u64),
            ));
        }
        let key = match self.keys.get(self.key.as_str()) {
            Some(k) => Arc::clone(k),
            None => {
                let k: Arc<str> = Arc::from(self.key.as_str());
                if self.keys.len() < MAX_INTERNED {
                    self.keys.insert(Arc::clone(&k));
                }
                k
            }
        };
        if self.newest.is_none_or(|(t, _)| p.logged > t) {
            self.newest = Some((p.logged, self.lines));
        }
        let call = Call {
            at: Duration::ZERO,
            key,
            recorded: p.recorded,
            status: p.status,
            latency: Duration::from_nanos(p.latency),
            line: self.lines,
        };
        let pending = Pending { start: p.start, call };
        if self.run.back().is_none_or(|last| *last <= pending) {
            self.run.push_back(pending);
        } else {
            self.heap.push(Reverse(pending));
        }
        Ok(())
    }

    /// The earliest call, if its turn has come (any, at the end of the input).
    fn pop_ready(&mut self) -> Option<Call> {
        let from_run = match (self.run.front(), self.heap.peek()) {
            (None, None) => return None,
            (Some(r), Some(Reverse(h))) => r <= h,
            (r, _) => r.is_some(),
        };
        let top = if from_run { self.run.front()?.start } else { self.heap.peek()?.0.start };
        if !self.eof && top > self.newest?.0.saturating_sub(self.window) {
            return None;
        }
        let Pending { start, mut call } =
            if from_run { self.run.pop_front()? } else { self.heap.pop().map(|Reverse(p)| p)? };
        let origin = *self.origin.get_or_insert(start);
        self.last = Some(start);
        call.at = Duration::from_nanos(start.abs_diff(origin));
        Some(call)
    }
}

impl<R: BufRead> Iterator for TraceReader<R> {
    type Item = Result<Call, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.stopped {
                return None;
            }
            if let Some(call) = self.pop_ready() {
                return Some(Ok(call));
            }
            if self.eof {
                return None;
            }
            match self.read_line() {
                Ok(true) => self.lines += 1,
                Ok(false) => {
                    self.eof = true;
                    continue;
                }
                Err(e) => {
                    self.stopped = true;
                    return Some(Err(LineError { line: self.lines + 1, message: format!("read error: {e}") }));
                }
            }
            let message = match self.parse_line() {
                Ok(None) => continue,
                Ok(Some(p)) => match self.admit(p) {
                    Ok(()) => continue,
                    Err(m) => m,
                },
                Err(m) => m,
            };
            let error = LineError { line: self.lines, message };
            match self.options.on_bad_line {
                OnBadLine::Fail => {
                    self.stopped = true;
                    return Some(Err(error));
                }
                OnBadLine::Skip => {
                    self.skipped_count += 1;
                    if self.skipped.len() < KEPT_ERRORS {
                        self.skipped.push(error);
                    }
                }
            }
        }
    }
}
