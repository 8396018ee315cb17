//! How fast a recorded trace replays, and in how much memory: a generated CSV trace of
//! 10 million lines (1,000 calls/s over 10,000 s, 16 hosts, a 20 s outage of one host
//! every 5 minutes) streamed through the parser and the default breaker, one per host.
//!
//! Not a criterion bench: one pass is the measurement (seconds of work), and the peak
//! resident memory (`VmHWM`) is read from `/proc/self/status` after 1 million lines and
//! after all of them: bounded memory means the second is no higher than the first
//! (plus noise). The trace is generated as it is read, so no file is written.
//!
//! Run: `cargo bench -p breakerbox-sim --bench trace_replay` (about 10 s). `-- --test`
//! (as CI runs every bench) replays 200,000 lines and checks nothing.

use std::io::{BufReader, Read};
use std::time::Instant;

use breakerbox_sim::recorded::TraceTraffic;
use breakerbox_sim::trace::{GroupBy, OnBadLine, TraceFormat, TraceOptions, TraceReader};
use breakerbox_sim::{Contender, run};

/// Calls per second of trace time.
const RATE: u64 = 1_000;
const HOSTS: u64 = 16;
/// The calls per second this machine must replay (the bar).
const MIN_RATE: f64 = 2e6;

/// A CSV trace written as it is read: `lines` calls, in start order.
struct Generated {
    next: u64,
    lines: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl Generated {
    fn new(lines: u64) -> Self {
        Self { next: 0, lines, buf: b"timestamp,key,outcome,latency\n".to_vec(), pos: 0 }
    }

    fn refill(&mut self) {
        self.buf.clear();
        self.pos = 0;
        let upto = (self.next + 4096).min(self.lines);
        while self.next < upto {
            let i = self.next;
            let (secs, millis) = (i / RATE, i % RATE);
            let host = (i * 7) % HOSTS;
            // Host `h` is down for 20 s of every 300, each host at its own time.
            let down = (secs + host * 19) % 300 < 20;
            let (status, latency) = if down { (503, 2) } else { (200, 12 + i % 9) };
            // By hand, not `write!`: formatting would cost more than the replay.
            push_number(&mut self.buf, 1_700_000_000 + secs);
            self.buf.push(b'.');
            self.buf.extend_from_slice(&[
                b'0' + (millis / 100) as u8,
                b'0' + (millis / 10 % 10) as u8,
                b'0' + (millis % 10) as u8,
            ]);
            self.buf.extend_from_slice(b",api-");
            push_number(&mut self.buf, host);
            self.buf.extend_from_slice(b".internal.example.com,");
            push_number(&mut self.buf, status);
            self.buf.push(b',');
            push_number(&mut self.buf, latency);
            self.buf.extend_from_slice(b"ms\n");
            self.next += 1;
        }
    }
}

fn push_number(buf: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

impl Read for Generated {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.buf.len() {
            if self.next == self.lines {
                return Ok(0);
            }
            self.refill();
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Peak resident memory so far, in KiB (0 where `/proc` is not there).
fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Replays `lines` generated lines; returns (calls, seconds of wall time).
fn replay(lines: u64, contender: &Contender) -> (u64, f64) {
    let options = TraceOptions { format: TraceFormat::Csv, group_by: GroupBy::Key, ..TraceOptions::default() };
    let reader = TraceReader::new(BufReader::with_capacity(1 << 16, Generated::new(lines)), options);
    let mut traffic = TraceTraffic::new(reader, OnBadLine::Skip);
    let start = Instant::now();
    let s = run(&mut traffic, contender, None).expect("the default config builds");
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(s.offered, lines, "every generated line is a call");
    assert_eq!(traffic.reader().skipped_count(), 0);
    (s.offered, wall)
}

fn main() {
    let test = std::env::args().any(|a| a == "--test");
    let contender = Contender::default_breaker();
    if test {
        let (calls, wall) = replay(200_000, &contender);
        println!("trace_replay --test: {calls} calls in {wall:.2}s");
        return;
    }
    let (calls, wall) = replay(1_000_000, &contender);
    let peak_1m = peak_kib();
    println!(
        "1M lines:  {calls} calls in {wall:.2}s: {:.2}M calls/s; peak RSS {peak_1m} KiB",
        calls as f64 / wall / 1e6
    );
    let (calls, wall) = replay(10_000_000, &contender);
    let peak_10m = peak_kib();
    let rate = calls as f64 / wall;
    println!("10M lines: {calls} calls in {wall:.2}s: {:.2}M calls/s; peak RSS {peak_10m} KiB", rate / 1e6);
    if std::env::var_os("TRACE_REPLAY_NO_ASSERT").is_some() {
        return;
    }
    // Ten times the lines may not take more memory: 4 MiB of slack for the allocator.
    assert!(peak_10m <= peak_1m + 4096, "peak RSS grew from {peak_1m} KiB to {peak_10m} KiB");
    assert!(rate >= MIN_RATE, "{:.2}M calls/s is below {:.0}M", rate / 1e6, MIN_RATE / 1e6);
}
