//! A recorded trace as [`Traffic`]: every call replayed at its recorded start, with
//! its recorded answer and latency.
//!
//! # The model
//!
//! - A call the breaker admits gets what it got in production: the recorded outcome
//!   after the recorded latency. A call the breaker rejects never reaches the backend,
//!   and the backend is assumed to answer the others as recorded: a trace cannot say
//!   how a backend spared some load would have behaved (the scenarios model that).
//! - A call is *failing* (the ground truth of wasted calls and false rejections) when
//!   it was recorded as a failure or as shed (5xx, 429, a timeout); a 4xx other than
//!   429 is ignored by the breaker and counts as neither.
//! - A key's backend is *in trouble* during each whole second of the trace in which
//!   at least half of that key's calls failed. Judging by the second (not by the call)
//!   keeps a lone error in a healthy second from counting as an outage; judging by key
//!   keeps a healthy host from hiding a dead one. The time-based columns (first
//!   rejection, recovery lag, goodput in trouble) follow the first key to get into
//!   trouble, and the plot shades the intervals where most calls met trouble. So that
//!   a second is judged only once it is complete, calls are held back one second:
//!   memory stays bounded by one second of calls, plus the reader's reorder window.
//! - One breaker per key ([`GroupBy`](crate::trace::GroupBy)), every one on the same
//!   virtual clock and built from the same config.

use std::collections::{HashMap, VecDeque};
use std::io::BufRead;
use std::sync::Arc;
use std::time::Duration;

use crate::SimError;
use crate::scenario::{Reply, Response};
use crate::trace::{Call, OnBadLine, Recorded, TraceReader};
use crate::traffic::{Arrival, Health, Traffic};

const SECOND: u64 = 1_000_000_000;

/// A trace being replayed.
pub struct TraceTraffic<R: BufRead> {
    reader: TraceReader<R>,
    on_bad_line: OnBadLine,
    keys: Vec<String>,
    /// aHash: keys come from the operator's own trace, and SipHash was a tenth of a
    /// replay's time.
    index: HashMap<Arc<str>, usize, ahash::RandomState>,
    /// The calls of the second being judged, and the first call of the next one.
    second: VecDeque<Arrival>,
    ahead: Option<Call>,
    /// Per key: its health as of the last second judged (and since when it has held),
    /// and this second's calls and failing calls.
    health: Vec<Health>,
    tally: Vec<(u32, u32)>,
    progress: Option<Box<dyn FnMut(u64, u64)>>,
    since_progress: u32,
    done: bool,
}

impl<R: BufRead> std::fmt::Debug for TraceTraffic<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceTraffic").field("keys", &self.keys.len()).finish_non_exhaustive()
    }
}

impl<R: BufRead> TraceTraffic<R> {
    /// Replays what `reader` reads; `on_bad_line` is the reader's own setting.
    pub fn new(reader: TraceReader<R>, on_bad_line: OnBadLine) -> Self {
        Self {
            reader,
            on_bad_line,
            keys: Vec::new(),
            index: HashMap::default(),
            second: VecDeque::new(),
            ahead: None,
            health: Vec::new(),
            tally: Vec::new(),
            progress: None,
            since_progress: 0,
            done: false,
        }
    }

    /// Calls `f(lines, bytes)` every 65,536 lines read, for a progress bar.
    pub fn on_progress(mut self, f: impl FnMut(u64, u64) + 'static) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    /// The reader, for its counts and skipped lines.
    pub fn reader(&self) -> &TraceReader<R> {
        &self.reader
    }

    fn read(&mut self) -> Result<Option<Call>, SimError> {
        if self.done {
            return Ok(None);
        }
        self.since_progress += 1;
        if self.since_progress >= 1 << 16 {
            self.since_progress = 0;
            if let Some(f) = &mut self.progress {
                f(self.reader.lines_read(), self.reader.bytes_read());
            }
        }
        match self.reader.next() {
            Some(Ok(call)) => Ok(Some(call)),
            Some(Err(e)) => {
                self.done = true;
                // A bad line under `OnBadLine::Fail`, or a read error under either.
                let hint = if matches!(self.on_bad_line, OnBadLine::Fail) {
                    " (--bad-lines skip goes on past bad lines)"
                } else {
                    ""
                };
                Err(SimError(format!("trace: {e}{hint}")))
            }
            None => {
                self.done = true;
                Ok(None)
            }
        }
    }

    fn key(&mut self, key: &str) -> usize {
        if let Some(&i) = self.index.get(key) {
            return i;
        }
        let i = self.keys.len();
        self.keys.push(key.to_owned());
        self.health.push(Health::Fine { since: Duration::ZERO });
        self.tally.push((0, 0));
        self.index.insert(Arc::from(key), i);
        i
    }

    /// Reads the next whole second of calls into `self.second` and judges it.
    fn fill(&mut self) -> Result<(), SimError> {
        let first = match self.ahead.take() {
            Some(c) => c,
            None => match self.read()? {
                Some(c) => c,
                None => return Ok(()),
            },
        };
        let second = nanos(first.at) / SECOND;
        let mut call = Some(first);
        while let Some(c) = call.take() {
            if nanos(c.at) / SECOND != second {
                self.ahead = Some(c);
                break;
            }
            let is_failing = matches!(c.recorded, Recorded::Failure | Recorded::Overloaded);
            let key = self.key(&c.key);
            let tally = &mut self.tally[key];
            tally.0 += 1;
            tally.1 += u32::from(is_failing);
            let reply = match c.recorded {
                Recorded::Success => Reply::Success,
                Recorded::Failure => Reply::Failure,
                Recorded::Overloaded => Reply::Overloaded,
                Recorded::Ignored => Reply::Ignored,
            };
            self.second.push_back(Arrival {
                at: c.at,
                key,
                failing: is_failing,
                health: Health::Fine { since: Duration::ZERO },
                recorded: Some(Response { reply, latency: c.latency }),
            });
            call = self.read()?;
        }
        // Judge each key that had calls in this second; the tallies of the others
        // stay at zero.
        let start = Duration::from_secs(second);
        for a in &self.second {
            let (calls, failing) = self.tally[a.key];
            if calls == 0 {
                continue;
            }
            self.tally[a.key] = (0, 0);
            let trouble = failing * 2 >= calls;
            if trouble != self.health[a.key].is_trouble() {
                self.health[a.key] =
                    if trouble { Health::Trouble { since: start } } else { Health::Fine { since: start } };
            }
        }
        for a in &mut self.second {
            a.health = self.health[a.key];
        }
        Ok(())
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl<R: BufRead> Traffic for TraceTraffic<R> {
    fn next_arrival(&mut self) -> Result<Option<Arrival>, SimError> {
        if self.second.is_empty() {
            self.fill()?;
        }
        Ok(self.second.pop_front())
    }

    fn serve(&mut self, arrival: &Arrival) -> Response {
        arrival.recorded.unwrap_or(Response { reply: Reply::Success, latency: Duration::ZERO })
    }

    fn keys(&self) -> &[String] {
        &self.keys
    }

    fn end(&self) -> Option<Duration> {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::trace::{GroupBy, TraceOptions};

    fn traffic(text: &str) -> TraceTraffic<&[u8]> {
        let options = TraceOptions { group_by: GroupBy::Key, ..TraceOptions::default() };
        TraceTraffic::new(TraceReader::new(text.as_bytes(), options), OnBadLine::Skip)
    }

    #[test]
    fn each_keys_seconds_are_judged_on_their_own() {
        // Second 0: `a` fails 2 of 2, `b` succeeds. Second 1: `a` fails 1 of 3.
        let text = "0,a,500,1ms\n0.1,b,200,1ms\n0.2,a,503,1ms\n1,a,500,1ms\n1.1,a,200,1ms\n1.2,a,200,1ms\n";
        let mut t = traffic(text);
        let mut seen = Vec::new();
        while let Some(a) = t.next_arrival().unwrap() {
            seen.push((t.keys()[a.key].clone(), a.failing, a.health));
        }
        let s = Duration::from_secs;
        let trouble = Health::Trouble { since: s(0) };
        let fine = |since| Health::Fine { since };
        assert_eq!(
            seen,
            [
                ("a".into(), true, trouble),
                ("b".into(), false, fine(s(0))),
                ("a".into(), true, trouble),
                ("a".into(), true, fine(s(1))),
                ("a".into(), false, fine(s(1))),
                ("a".into(), false, fine(s(1))),
            ]
        );
    }

    #[test]
    fn progress_is_reported_every_65536_lines() {
        let text: String = (0..200_000).map(|i| format!("{}.{:03},k,200,1ms\n", i / 1000, i % 1000)).collect();
        let calls = Rc::new(RefCell::new(Vec::new()));
        let sink = Rc::clone(&calls);
        let mut t = traffic(&text).on_progress(move |lines, bytes| sink.borrow_mut().push((lines, bytes)));
        let mut n = 0;
        while t.next_arrival().unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, 200_000);
        let calls = calls.borrow();
        assert_eq!(calls.len(), 3, "{calls:?}");
        assert!(calls.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1), "{calls:?}");
    }
}
