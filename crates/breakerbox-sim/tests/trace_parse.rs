//! The trace reader: the checked-in CSV trace and access log parse to exactly the
//! calls expected; every kind of bad line gives its line number and names its field;
//! the reorder window; group keys; random input never panics.

use std::io::{self, BufRead, Read};
use std::time::Duration;

use breakerbox_sim::trace::{
    Call, GroupBy, KEPT_ERRORS, LineError, MAX_LINE, OnBadLine, Recorded, TraceFormat, TraceOptions, TraceReader,
};

const SMALL_CSV: &[u8] = include_bytes!("data/small.csv");
const ACCESS_LOG: &[u8] = include_bytes!("data/access.log");

const GOOD_CSV: &str = "1700000000,https://api.example.com/items/42,200,12ms";
const GOOD_LOG: &str =
    r#"10.0.0.1 - - [14/Nov/2023:22:13:20 +0000] "GET /api/items/42 HTTP/1.1" 200 512 "-" "curl/8.4.0" 0.012"#;

fn options(format: TraceFormat, group_by: GroupBy) -> TraceOptions {
    TraceOptions { format, group_by, ..TraceOptions::default() }
}

/// Every call and the reader's skipped lines (Skip).
fn read(input: &[u8], options: TraceOptions) -> (Vec<Call>, Vec<LineError>, u64) {
    let mut reader = TraceReader::new(input, options);
    let calls = reader.by_ref().map(|c| c.expect("Skip yields no errors")).collect();
    (calls, reader.skipped().to_vec(), reader.skipped_count())
}

fn csv(input: &str) -> (Vec<Call>, Vec<LineError>, u64) {
    read(input.as_bytes(), TraceOptions::default())
}

fn log(input: &str) -> (Vec<Call>, Vec<LineError>, u64) {
    read(input.as_bytes(), options(TraceFormat::AccessLog, GroupBy::All))
}

fn keys(input: &[u8], format: TraceFormat, group_by: GroupBy) -> Vec<(u64, String)> {
    let (calls, skipped, _) = read(input, options(format, group_by));
    assert_eq!(skipped, [], "{group_by:?}");
    calls.into_iter().map(|c| (c.line, c.key.to_string())).collect()
}

fn ms(n: f64) -> Duration {
    Duration::from_nanos((n * 1e6).round() as u64)
}

fn call(line: u64, at: Duration, recorded: Recorded, status: Option<u16>, latency: Duration) -> Call {
    Call { at, key: "*".into(), recorded, status, latency, line }
}

use Recorded::{Failure, Ignored, Overloaded, Success};

#[test]
fn the_small_csv_trace_parses_to_its_calls_in_start_order() {
    let (calls, skipped, _) = read(SMALL_CSV, TraceOptions::default());
    assert_eq!(skipped, []);
    let s = Duration::from_secs;
    let expected = [
        call(2, s(0), Success, Some(200), ms(12.0)),
        call(3, ms(250.0), Success, Some(200), ms(15.0)),
        call(4, ms(500.0), Overloaded, Some(503), ms(2.0)),
        // Written after line 6, started before it.
        call(7, ms(750.0), Overloaded, None, s(30)),
        // Lines 5 and 6 start together: in line order.
        call(5, s(1), Failure, Some(500), ms(1500.0)),
        call(6, s(1), Ignored, Some(404), ms(3.0)),
        call(9, s(2), Overloaded, Some(429), ms(1.0)),
        call(8, ms(2500.0), Success, None, Duration::from_micros(250)),
        call(11, s(3), Failure, None, Duration::from_micros(500)),
        call(12, s(3) + Duration::from_nanos(1), Ignored, None, Duration::ZERO),
        call(13, s(4), Success, Some(301), ms(12.5)),
        call(14, s(5), Ignored, Some(101), s(1)),
        call(15, s(5), Success, Some(200), s(1)),
        call(16, s(10), Success, Some(304), ms(80.0)),
        call(17, s(30), Overloaded, Some(502), s(5)),
        call(18, ms(30_500.0), Overloaded, Some(504), s(10)),
        call(20, s(59), Failure, Some(599), ms(20.0)),
        call(19, s(60), Success, Some(200), ms(11.0)),
    ];
    assert_eq!(calls, expected);
}

#[test]
fn the_small_csv_trace_grouped_each_way() {
    let csv = TraceFormat::Csv;
    let all = keys(SMALL_CSV, csv, GroupBy::All);
    assert!(all.iter().all(|(_, k)| k == "*"));
    let order: Vec<u64> = all.iter().map(|(l, _)| *l).collect();
    assert_eq!(order, [2, 3, 4, 7, 5, 6, 9, 8, 11, 12, 13, 14, 15, 16, 17, 18, 20, 19]);

    let by = |group_by| -> Vec<String> { keys(SMALL_CSV, csv, group_by).into_iter().map(|(_, k)| k).collect() };
    let api = "https://api.example.com/items/42";
    assert_eq!(
        by(GroupBy::Key),
        [
            api,
            "https://api.example.com/items/43",
            "https://api.example.com/items/42?fields=name",
            "https://api.example.com/items/7,8",
            "https://api.example.com:8443/search?q=x",
            "api.example.com/users/123e4567-e89b-12d3-a456-426614174000",
            "GET /api/orders/0123456789abcdef01",
            "payments",
            "payments/refunds/99",
            "payments",
            r#"say "hi""#,
            "https://cdn.example.com/",
            "https://cdn.example.com",
            "HTTPS://CDN.Example.com/Assets/logo.png",
            api,
            api,
            "https://api.example.com/items/44",
            api,
        ]
    );
    let a = "api.example.com";
    assert_eq!(
        by(GroupBy::Host),
        [
            a,
            a,
            a,
            a,
            "api.example.com:8443",
            a,
            "-",
            "payments",
            "payments",
            "payments",
            r#"say "hi""#,
            "cdn.example.com",
            "cdn.example.com",
            "cdn.example.com",
            a,
            a,
            a,
            a,
        ]
    );
    let item = "/items/:id";
    assert_eq!(
        by(GroupBy::Route),
        [
            item,
            item,
            item,
            "/items/7,8",
            "/search",
            "/users/:id",
            "GET /api/orders/:id",
            "/",
            "/refunds/:id",
            "/",
            "/",
            "/",
            "/",
            "/Assets/logo.png",
            item,
            item,
            item,
            item,
        ]
    );
}

#[test]
fn the_access_log_parses_to_its_calls_in_start_order() {
    let (calls, skipped, _) = read(ACCESS_LOG, options(TraceFormat::AccessLog, GroupBy::All));
    assert_eq!(skipped, []);
    // Line 2 starts first, 250 ms before its 22:13:20 completion: `at` counts from it.
    let at = |from_logged_ms: f64| ms(from_logged_ms + 250.0);
    let expected = [
        call(2, at(-250.0), Success, Some(200), ms(250.0)),
        call(1, at(-12.0), Success, Some(200), ms(12.0)),
        call(3, at(200.0), Success, Some(201), ms(800.0)),
        // Logged at 3 s (in +01:00) after 2.5 s.
        call(6, at(500.0), Overloaded, Some(504), ms(2500.0)),
        call(4, at(999.0), Overloaded, Some(503), ms(1.0)),
        call(5, at(1996.0), Ignored, Some(404), ms(4.0)),
        // Line 12 (logged at 8 s in -08:00 after 5 s) ties with line 7: line order.
        call(7, at(3000.0), Ignored, Some(400), Duration::ZERO),
        call(12, at(3000.0), Overloaded, Some(502), ms(5000.0)),
        call(8, at(4000.0), Success, Some(200), Duration::ZERO),
        call(9, at(4000.0), Failure, Some(500), ms(1000.0)),
        call(10, at(5900.0), Success, Some(200), ms(100.0)),
        call(11, at(6970.0), Success, Some(204), ms(30.0)),
        call(13, at(8998.0), Success, Some(304), ms(2.0)),
        call(15, at(9985.0), Success, Some(200), ms(15.0)),
        call(14, at(10_000.0), Overloaded, Some(429), Duration::ZERO),
    ];
    assert_eq!(calls, expected);
}

#[test]
fn the_access_log_grouped_each_way() {
    let log = TraceFormat::AccessLog;
    let by = |group_by| -> Vec<String> { keys(ACCESS_LOG, log, group_by).into_iter().map(|(_, k)| k).collect() };
    assert!(by(GroupBy::All).iter().all(|k| k == "*"));
    let mut hosts = vec!["-"; 15];
    hosts[4] = "api.example.com"; // line 4, an absolute URI, 5th out
    hosts[10] = "api.example.com:443"; // line 10, CONNECT
    assert_eq!(by(GroupBy::Host), hosts);
    assert_eq!(by(GroupBy::Key), hosts);
    let item = "GET /api/items/:id";
    assert_eq!(
        by(GroupBy::Route),
        [
            item,
            item,
            "POST /api/orders",
            "GET /api/reports/:id",
            item,
            "GET /api/users/:id",
            "-",
            "GET /api/slow",
            "GET /health",
            item,
            "CONNECT api.example.com:443",
            "PUT /api/items/:id",
            "GET /static/app.js",
            item,
            item,
        ]
    );
}

#[test]
fn vhost_prefixed_lines_apache_microseconds_and_escaped_quotes() {
    let input = concat!(
        "Example.com:443 10.0.0.1 - - [14/Nov/2023:22:13:20 +0000] \"GET http://other.example/x?y HTTP/1.1\" 200 5 12034\n",
        "example.com:443 10.0.0.1 - - [14/Nov/2023:22:13:21 +0000] \"GET /q?\\\"a\\\" HTTP/1.1\" 500 - \"-\" \"say \\\"hi\\\"\" 0\n",
        "10.0.0.1 - - [14/Nov/2023:22:13:22 +0000] \"GET /plain HTTP/1.1\" 200 5 7\n",
    );
    let read_as = |group_by| read(input.as_bytes(), options(TraceFormat::AccessLog, group_by));
    let (calls, skipped, _) = read_as(GroupBy::Host);
    assert_eq!(skipped, []);
    // The vhost wins over the request's host; %D is microseconds.
    let keys: Vec<_> = calls.iter().map(|c| (c.line, &*c.key, c.latency)).collect();
    assert_eq!(
        keys,
        [
            (1, "example.com:443", Duration::from_micros(12_034)),
            (2, "example.com:443", Duration::ZERO),
            (3, "-", Duration::from_micros(7)),
        ]
    );
    assert_eq!(read_as(GroupBy::Key).0, calls);
    let routes: Vec<_> = read_as(GroupBy::Route).0.into_iter().map(|c| c.key.to_string()).collect();
    assert_eq!(routes, ["GET /x", "GET /q", "GET /plain"]);
    // The first call started 12.034 ms before its line was written.
    assert_eq!(calls[1].at, Duration::from_secs(1) + Duration::from_micros(12_034));
}

#[test]
fn equal_keys_share_one_allocation() {
    let (calls, _, _) = read(SMALL_CSV, options(TraceFormat::Csv, GroupBy::Host));
    let api: Vec<_> = calls.iter().filter(|c| &*c.key == "api.example.com").collect();
    assert!(api.len() > 2);
    assert!(api.windows(2).all(|w| std::sync::Arc::ptr_eq(&w[0].key, &w[1].key)));
}

/// A trace of a good line, `bad`, and a good line: the bad one is line 2, skipped,
/// with `message`; both good lines come through. With Fail, the first good line may be
/// held in the reorder window, and the error comes first or second, then nothing.
fn assert_bad(format: TraceFormat, good: &str, bad: &[u8], message: &str) {
    let mut input = format!("{good}\n").into_bytes();
    input.extend_from_slice(bad);
    input.extend_from_slice(format!("\n{good}\n").as_bytes());
    let shown = String::from_utf8_lossy(bad);

    let (calls, skipped, count) = read(&input, options(format, GroupBy::All));
    assert_eq!(calls.iter().map(|c| c.line).collect::<Vec<_>>(), [1, 3], "{shown}");
    assert_eq!(count, 1, "{shown}");
    assert_eq!(skipped[0].line, 2, "{shown}");
    assert_eq!(skipped[0].message, message, "{shown}");
    assert_eq!(skipped[0].to_string(), format!("line 2: {message}"));

    let fail = TraceOptions { on_bad_line: OnBadLine::Fail, ..options(format, GroupBy::All) };
    let out: Vec<_> = TraceReader::new(&input[..], fail).collect();
    let errors: Vec<_> = out.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(errors, [&skipped[0]], "{shown}");
    assert!(out.last().unwrap().is_err(), "nothing after the error: {shown}");
    assert!(out.len() <= 2);
}

#[test]
fn each_csv_field_wrong_in_turn() {
    let ts = "Unix seconds such as 1700000000.125, or RFC 3339 such as 2026-12-01T10:00:00.250Z";
    let out = "is not an HTTP status (100..=599) or one of success, ok, failure, error, overloaded, timeout, ignored";
    let lat = "is not a duration (12ms, 1.5s, 250us or milliseconds)";
    let cases: &[(&str, String)] = &[
        ("yesterday,api,200,12ms", format!("timestamp: `yesterday` is not a timestamp ({ts})")),
        (",api,200,12ms", format!("timestamp: `` is not a timestamp ({ts})")),
        ("2023-02-29T00:00:00Z,api,200,12ms", format!("timestamp: `2023-02-29T00:00:00Z` is not a timestamp ({ts})")),
        (
            "1700000000000,api,200,12ms",
            "timestamp: `1700000000000` is out of range (1678 to 2262; Unix seconds, not milliseconds)".into(),
        ),
        ("1700000000,api,600,12ms", format!("outcome: `600` {out}")),
        ("1700000000,api,fine,12ms", format!("outcome: `fine` {out}")),
        ("1700000000,api,,12ms", format!("outcome: `` {out}")),
        ("1700000000,api,99999999999999999999,12ms", format!("outcome: `99999999999999999999` {out}")),
        ("1700000000,api,200,12xs", format!("latency: `12xs` {lat}")),
        ("1700000000,api,200,NaN", format!("latency: `NaN` {lat}")),
        ("1700000000,api,200,inf", format!("latency: `inf` {lat}")),
        ("1700000000,api,200,", format!("latency: `` {lat}")),
        ("1700000000,api,200,-5ms", "latency: `-5ms` is negative".into()),
        ("1700000000,api,200,99999999999999999999s", "latency: `99999999999999999999s` is out of range".into()),
        ("1700000000,api,200", "latency: missing (expected 4 fields: timestamp,key,outcome,latency)".into()),
        ("1700000000", "key: missing (expected 4 fields: timestamp,key,outcome,latency)".into()),
        ("1700000000,api,200,12ms,x", "extra field after `latency` (expected 4: timestamp,key,outcome,latency)".into()),
        ("1700000000,\"api,200,12ms", "key: unterminated quote".into()),
        ("1700000000,\"api\"x,200,12ms", "key: text after the closing quote".into()),
        ("\"1700000000,api,200,12ms", "timestamp: unterminated quote".into()),
    ];
    for (bad, message) in cases {
        assert_bad(TraceFormat::Csv, GOOD_CSV, bad.as_bytes(), message);
    }
    // A field's text is cut in its message.
    let long = format!("1700000000,api,200,{}", "9x".repeat(100));
    assert_bad(TraceFormat::Csv, GOOD_CSV, long.as_bytes(), &format!("latency: `{}…` {lat}", "9x".repeat(20)));
}

#[test]
fn each_access_log_field_wrong_in_turn() {
    let t = "[14/Nov/2023:22:13:20 +0000]";
    let missing_time = "request time: missing (append nginx $request_time or Apache %D to the log format, last)";
    let rt =
        "is not seconds with a decimal point (0.012, nginx $request_time) or whole microseconds (12000, Apache %D)";
    let cases: Vec<(String, String)> = vec![
        (
            "10.0.0.1 - - 14/Nov/2023:22:13:20 +0000 \"GET / HTTP/1.1\" 200 1 0.1".into(),
            "time: missing (expected client ident user [10/Oct/2000:13:55:36 -0700] \"GET /path HTTP/1.1\" status bytes ... request-time)".into(),
        ),
        (
            format!("10.0.0.1 - {t} \"GET / HTTP/1.1\" 200 1 0.1"),
            "expected 3 fields (client ident user) or 4 (vhost client ident user) before the time, found 2".into(),
        ),
        (
            format!("a b 10.0.0.1 - - {t} \"GET / HTTP/1.1\" 200 1 0.1"),
            "expected 3 fields (client ident user) or 4 (vhost client ident user) before the time, found 5".into(),
        ),
        (
            "10.0.0.1 - - [14/Nov/2023:25:13:20 +0000] \"GET / HTTP/1.1\" 200 1 0.1".into(),
            "time: `14/Nov/2023:25:13:20 +0000` is not a log time (as 10/Oct/2000:13:55:36 -0700)".into(),
        ),
        ("10.0.0.1 - - [14/Nov/2023:22:13:20 +0000 \"GET / HTTP/1.1\" 200 1 0.1".into(), "time: no closing `]`".into()),
        (
            format!("10.0.0.1 - - {t} GET / HTTP/1.1 200 1 0.1"),
            "request: missing (expected a quoted request line, as \"GET /path HTTP/1.1\")".into(),
        ),
        (format!("10.0.0.1 - - {t} \"GET / HTTP/1.1 200 1 0.1"), "request: unterminated quote".into()),
        (format!("10.0.0.1 - - {t} \"GET / HTTP/1.1\""), "status: missing (expected an HTTP status after the request)".into()),
        (format!("10.0.0.1 - - {t} \"GET / HTTP/1.1\" 2x0 1 0.1"), "status: `2x0` is not an HTTP status (100..=599)".into()),
        (format!("10.0.0.1 - - {t} \"GET / HTTP/1.1\" 600 1 0.1"), "status: `600` is not an HTTP status (100..=599)".into()),
        (
            format!("10.0.0.1 - - {t} \"GET / HTTP/1.1\" 200"),
            "bytes: missing (expected a byte count or `-` after the status)".into(),
        ),
        (format!("10.0.0.1 - - {t} \"GET / HTTP/1.1\" 200 1k 0.1"), "bytes: `1k` is not a byte count or `-`".into()),
        (format!("10.0.0.1 - - {t} \"GET / HTTP/1.1\" 200 1"), missing_time.into()),
        (format!("10.0.0.1 - - {t} \"GET / HTTP/1.1\" 200 1 \"-\" \"curl\""), missing_time.into()),
        (format!("10.0.0.1 - - {t} \"GET / HTTP/1.1\" 200 1 \"-\" \"curl 0.1"), "user agent: unterminated quote".into()),
        (format!("10.0.0.1 - - {t} \"GET / HTTP/1.1\" 200 1 \"- 0.1"), "referer: unterminated quote".into()),
        (format!("10.0.0.1 - - {t} \"GET / HTTP/1.1\" 200 1 0.1s"), format!("request time: `0.1s` {rt}")),
        (format!("10.0.0.1 - - {t} \"GET / HTTP/1.1\" 200 1 -0.1"), format!("request time: `-0.1` {rt}")),
        (format!("10.0.0.1 - - {t} \"GET / HTTP/1.1\" 200 1 NaN"), format!("request time: `NaN` {rt}")),
        (
            format!("10.0.0.1 - - {t} \"GET / HTTP/1.1\" 200 1 99999999999999999999"),
            "request time: `99999999999999999999` is out of range".into(),
        ),
        (
            format!("10.0.0.1 - - {t} \"GET / HTTP/1.1\" 200 1 9999999999.0"),
            "request time: `9999999999.0` is out of range".into(),
        ),
        (
            format!("10.0.0.1 - - {t} \"GET / HTTP/1.1\" 200 1 0.1 upstream"),
            "extra field after the request time `0.1`".into(),
        ),
    ];
    for (bad, message) in &cases {
        assert_bad(TraceFormat::AccessLog, GOOD_LOG, bad.as_bytes(), message);
    }
}

#[test]
fn invalid_utf8_fails_its_line_and_names_the_field() {
    let csv_key = b"1700000000,ap\xffi,200,12ms";
    assert_bad(TraceFormat::Csv, GOOD_CSV, csv_key, "key: not valid UTF-8 (at byte 3 of the field)");
    let csv_outcome = b"1700000000,api,\xc3,12ms";
    assert_bad(TraceFormat::Csv, GOOD_CSV, csv_outcome, "outcome: not valid UTF-8 (at byte 1 of the field)");
    let log_request = b"10.0.0.1 - - [14/Nov/2023:22:13:20 +0000] \"GET /\xfe HTTP/1.1\" 200 1 0.1";
    assert_bad(TraceFormat::AccessLog, GOOD_LOG, log_request, "request: not valid UTF-8 (at byte 6 of the field)");
    let log_agent = b"10.0.0.1 - - [14/Nov/2023:22:13:20 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"\x80\" 0.1";
    assert_bad(TraceFormat::AccessLog, GOOD_LOG, log_agent, "user agent: not valid UTF-8 (at byte 1 of the field)");
    let log_user = b"10.0.0.1 - \xff [14/Nov/2023:22:13:20 +0000] \"GET / HTTP/1.1\" 200 1 0.1";
    assert_bad(TraceFormat::AccessLog, GOOD_LOG, log_user, "user: not valid UTF-8 (at byte 1 of the field)");
}

/// Every prefix of `good` either parses or is an error on line 1 whose message starts
/// with one of `fields`; never a panic.
fn assert_prefixes(format: TraceFormat, good: &str, fields: &[&str]) {
    for n in 0..good.len() {
        let line = &good.as_bytes()[..n];
        for end in ["", "\n", "\r\n"] {
            let mut input = line.to_vec();
            input.extend_from_slice(end.as_bytes());
            let (calls, skipped, count) = read(&input, options(format, GroupBy::Route));
            assert_eq!(calls.len() as u64 + count, u64::from(!line.trim_ascii().is_empty()), "{n}");
            for e in &skipped {
                assert_eq!(e.line, 1);
                assert!(fields.iter().any(|f| e.message.starts_with(f)), "prefix {n} of {good}: {e}");
            }
        }
    }
}

#[test]
fn truncated_lines_at_every_byte() {
    assert_prefixes(TraceFormat::Csv, GOOD_CSV, &["timestamp: ", "key: ", "outcome: ", "latency: "]);
    assert_prefixes(
        TraceFormat::Csv,
        r#""1700000000","a,""b""","200","12ms""#,
        &["timestamp: ", "key: ", "outcome: ", "latency: "],
    );
    let fields = [
        "time: ",
        "request: ",
        "status: ",
        "bytes: ",
        "referer: ",
        "user agent: ",
        "request time: ",
        "expected 3 fields",
    ];
    assert_prefixes(TraceFormat::AccessLog, GOOD_LOG, &fields);
    // What parses, of a truncated line, parses as what it says: `0.01` s, and `0` µs.
    let (calls, _, _) = log(&GOOD_LOG[..GOOD_LOG.len() - 1]);
    assert_eq!(calls[0].latency, ms(10.0));
    let (calls, _, _) = log(&GOOD_LOG[..GOOD_LOG.len() - 4]);
    assert_eq!(calls[0].latency, Duration::ZERO);
}

#[test]
fn empty_lines_crlf_and_a_byte_order_mark() {
    let input = format!("\u{feff}timestamp,key,outcome,latency\r\n\r\n   \n{GOOD_CSV}\r\n\n\t\n{GOOD_CSV}");
    let (calls, skipped, _) = csv(&input);
    assert_eq!(skipped, []);
    assert_eq!(calls.iter().map(|c| (c.line, c.latency)).collect::<Vec<_>>(), [(4, ms(12.0)), (7, ms(12.0))]);
    let log_crlf = format!("{GOOD_LOG}\r\n\r\n{GOOD_LOG}\r\n");
    let (calls, skipped, _) = log(&log_crlf);
    assert_eq!(skipped, []);
    assert_eq!(calls.iter().map(|c| c.line).collect::<Vec<_>>(), [1, 3]);
    // A header only on the first non-empty line; later it is a bad timestamp.
    let (calls, skipped, _) = csv(&format!("\n{GOOD_CSV}\ntimestamp,key,outcome,latency\n"));
    assert_eq!(calls.len(), 1);
    assert_eq!(skipped[0].line, 3);
    assert!(skipped[0].message.starts_with("timestamp: `timestamp` is not a timestamp"));
    let (calls, skipped, _) = csv("\n\ntimestamp,key,outcome,latency\n");
    assert_eq!((calls.len(), skipped.len()), (0, 0));
}

#[test]
fn calls_within_the_window_come_out_sorted() {
    let window = Duration::from_secs(5);
    let opts = TraceOptions { reorder_window: window, ..TraceOptions::default() };
    // Each line up to 5 s behind the newest one.
    let input = "100,a,200,1\n104,b,200,1\n99,c,200,1\n103,d,200,1\n110,e,200,1\n105,f,200,1\n106,g,200,1\n";
    let (calls, skipped, _) = read(input.as_bytes(), opts);
    assert_eq!(skipped, []);
    let got: Vec<_> = calls.iter().map(|c| (c.line, c.at.as_secs())).collect();
    assert_eq!(got, [(3, 0), (1, 1), (4, 4), (2, 5), (6, 6), (7, 7), (5, 11)]);
}

#[test]
fn calls_out_of_order_beyond_the_window_are_bad_lines() {
    let opts =
        |on_bad_line| TraceOptions { reorder_window: Duration::from_secs(5), on_bad_line, ..TraceOptions::default() };
    // Line 3 (at 20 s) lets line 2 (at 10 s) out; line 4 starts 7 s before it.
    let input = "0,a,200,1\n10,b,200,1\n20,c,200,1\n3,d,200,1\n21,e,200,1\n";
    let (calls, skipped, _) = read(input.as_bytes(), opts(OnBadLine::Skip));
    assert_eq!(calls.iter().map(|c| c.line).collect::<Vec<_>>(), [1, 2, 3, 5]);
    assert_eq!(
        skipped[0].to_string(),
        "line 4: starts 7s before a call already replayed (line 3 holds the newest time so far); raise --reorder-window (now 5s)"
    );
    let out: Vec<_> = TraceReader::new(input.as_bytes(), opts(OnBadLine::Fail)).collect();
    assert_eq!(out.len(), 3);
    assert_eq!(out[2].as_ref().unwrap_err(), &skipped[0]);

    // Before the first call, once it is out.
    let (calls, skipped, _) = read(b"10,b,200,1\n20,c,200,1\n3,d,200,1\n", opts(OnBadLine::Skip));
    assert_eq!(calls.len(), 2);
    assert!(
        skipped[0].message.starts_with("starts 7s before the trace's first call, already replayed"),
        "{}",
        skipped[0]
    );
    // At the start of a trace the window decides the first call: line 2 starts before
    // line 1 and within the window, so it is the first.
    let (calls, _, _) = read(b"10,b,200,1\n6,c,200,1\n", opts(OnBadLine::Skip));
    assert_eq!(calls.iter().map(|c| (c.line, c.at.as_secs())).collect::<Vec<_>>(), [(2, 0), (1, 4)]);
}

#[test]
fn an_access_log_needs_a_window_longer_than_its_slowest_request() {
    // A 90 s request logged after quicker ones: out of a 60 s window, in a 120 s one.
    let mut input = String::new();
    for s in 0..100 {
        input.push_str(&format!(
            "10.0.0.1 - - [14/Nov/2023:22:{:02}:{:02} +0000] \"GET / HTTP/1.1\" 200 1 0.010\n",
            13 + s / 60,
            s % 60
        ));
    }
    input.push_str("10.0.0.1 - - [14/Nov/2023:22:14:40 +0000] \"GET /slow HTTP/1.1\" 504 1 90.000\n");
    let opts = |secs| TraceOptions {
        format: TraceFormat::AccessLog,
        reorder_window: Duration::from_secs(secs),
        ..TraceOptions::default()
    };
    let (calls, skipped, _) = read(input.as_bytes(), opts(60));
    assert_eq!(calls.len(), 100);
    assert_eq!(skipped[0].line, 101);
    assert!(skipped[0].message.contains("before a call already replayed"), "{}", skipped[0]);
    let (calls, skipped, _) = read(input.as_bytes(), opts(120));
    assert_eq!(skipped, []);
    // It started at 10 s (100 s less 90 s), and the first call at -10 ms.
    let slow = calls.iter().position(|c| c.line == 101).unwrap();
    assert_eq!(calls[slow].at, Duration::from_millis(10_010));
    assert!(calls.windows(2).all(|w| w[0].at <= w[1].at));
}

#[test]
fn the_reorder_buffer_holds_only_the_window() {
    // 10 calls a second for 1000 s, in a 5 s window: never more than ~51 held.
    let mut input = String::new();
    for i in 0..10_000u64 {
        input.push_str(&format!("{}.{},k,200,1ms\n", 1_700_000_000 + i / 10, i % 10));
    }
    let opts = TraceOptions { reorder_window: Duration::from_secs(5), ..TraceOptions::default() };
    let mut reader = TraceReader::new(input.as_bytes(), opts);
    let mut most = 0;
    let mut n = 0;
    while let Some(call) = reader.next() {
        call.unwrap();
        most = most.max(reader.buffered());
        n += 1;
    }
    assert_eq!(n, 10_000);
    assert!(most <= 51, "{most}");
    assert_eq!(reader.lines_read(), 10_000);
    assert_eq!(reader.bytes_read(), input.len() as u64);
}

#[test]
fn skip_keeps_the_first_errors_and_counts_the_rest() {
    let mut input = String::new();
    for i in 0..100 {
        input.push_str(&format!("{}\nbad {i}\n", GOOD_CSV));
    }
    let (calls, skipped, count) = csv(&input);
    assert_eq!(calls.len(), 100);
    assert_eq!(count, 100);
    assert_eq!(skipped.len(), KEPT_ERRORS);
    assert_eq!(skipped.iter().map(|e| e.line).collect::<Vec<_>>(), (1..=20).map(|i| 2 * i).collect::<Vec<_>>());
}

#[test]
fn fail_yields_the_first_error_and_then_nothing() {
    let input = format!("{GOOD_CSV}\nbad\nworse\n{GOOD_CSV}\n");
    let opts = TraceOptions { on_bad_line: OnBadLine::Fail, ..TraceOptions::default() };
    let mut reader = TraceReader::new(input.as_bytes(), opts);
    // The good line is still inside the window when line 2 fails.
    let first = reader.next().unwrap().unwrap_err();
    assert_eq!(first.line, 2);
    assert!(first.message.starts_with("key: missing"), "{first}");
    assert!(reader.next().is_none());
    assert!(reader.next().is_none());
    assert_eq!(reader.lines_read(), 2);
}

#[test]
fn an_overlong_line_is_a_bad_line_and_the_next_one_reads() {
    let mut input = format!("{GOOD_CSV}\n1700000000,").into_bytes();
    input.resize(input.len() + MAX_LINE + 10, b'k');
    input.extend_from_slice(format!(",200,1ms\n{GOOD_CSV}\n").as_bytes());
    let (calls, skipped, _) = read(&input, TraceOptions::default());
    assert_eq!(calls.iter().map(|c| c.line).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(skipped[0].to_string(), format!("line 2: longer than {MAX_LINE} bytes"));
    // A reader with a small buffer, so the long line comes in many pieces.
    let small = io::BufReader::with_capacity(7, &input[..]);
    let mut reader = TraceReader::new(small, TraceOptions::default());
    assert_eq!(reader.by_ref().filter_map(Result::ok).count(), 2);
    assert_eq!(reader.skipped_count(), 1);
    assert_eq!(reader.bytes_read(), input.len() as u64);
}

/// Reads its bytes, then fails.
struct Broken<'a>(&'a [u8]);

impl Read for Broken<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0.is_empty() {
            return Err(io::Error::other("disk on fire"));
        }
        let n = self.0.read(buf)?;
        Ok(n)
    }
}

#[test]
fn a_read_error_ends_the_trace_in_either_mode() {
    let input = format!("{GOOD_CSV}\n{GOOD_CSV}\n");
    let reader = TraceReader::new(io::BufReader::new(Broken(input.as_bytes())), TraceOptions::default());
    let out: Vec<_> = reader.collect();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].as_ref().unwrap_err().to_string(), "line 3: read error: disk on fire");
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn check_no_panic<R: BufRead>(reader: TraceReader<R>) {
    let mut last = None;
    for call in reader {
        let call = call.unwrap();
        assert!(last.is_none_or(|at| at <= call.at), "in order");
        last = Some(call.at);
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    const ALPHABET: &[u8] = b"0123456789.,:/-+\" []TZzmsu\\\xff\xc3\xa9abcGET HTTP";
    let formats = [TraceFormat::Csv, TraceFormat::AccessLog];
    let groups = [GroupBy::All, GroupBy::Key, GroupBy::Host, GroupBy::Route];
    for round in 0..400 {
        let mut input = Vec::new();
        for _ in 0..20 {
            let len = rng.next() % 120;
            for _ in 0..len {
                let r = rng.next();
                input.push(if r.is_multiple_of(3) {
                    r as u8 >> 1
                } else {
                    ALPHABET[(r >> 8) as usize % ALPHABET.len()]
                });
            }
            input.push(b'\n');
        }
        let opts = |format| TraceOptions { format, group_by: groups[round % 4], ..TraceOptions::default() };
        for format in formats {
            check_no_panic(TraceReader::new(&input[..], opts(format)));
        }
    }
}

#[test]
fn mutated_good_lines_never_panic() {
    // Random byte edits of good lines: closer to real damage than noise.
    let mut rng = XorShift(42);
    let groups = [GroupBy::All, GroupBy::Key, GroupBy::Host, GroupBy::Route];
    for (format, seed) in [(TraceFormat::Csv, SMALL_CSV), (TraceFormat::AccessLog, ACCESS_LOG)] {
        for round in 0..300 {
            let mut input = seed.to_vec();
            for _ in 0..1 + rng.next() % 8 {
                let at = rng.next() as usize % input.len();
                match rng.next() % 3 {
                    0 => input[at] = rng.next() as u8,
                    1 => {
                        input.remove(at);
                    }
                    _ => {
                        let bytes = b"\",[]\"9.-:\xff";
                        input.insert(at, bytes[rng.next() as usize % bytes.len()]);
                    }
                }
            }
            let opts = TraceOptions { format, group_by: groups[round % 4], ..TraceOptions::default() };
            check_no_panic(TraceReader::new(&input[..], opts));
        }
    }
}
