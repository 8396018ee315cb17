//! Unit tests of the field parsers and the group keys; the reader as a whole is tested
//! in `tests/trace_parse.rs`.

use super::fields::{Num, clf_time, decimal, latency, outcome, request_time, secs, show, status, timestamp};
use super::group::{push_key_host, push_key_route, push_route, split_url};
use super::{GroupBy, OnBadLine, Recorded, TraceFormat, csv};

const S: i64 = 1_000_000_000;
const MS: u64 = 1_000_000;

#[test]
fn decimals_are_exact_integers_and_nothing_else() {
    assert_eq!(decimal(b"1", 1_000_000_000), Ok(1_000_000_000));
    assert_eq!(decimal(b"1.5", 1_000_000_000), Ok(1_500_000_000));
    assert_eq!(decimal(b"0.000000001", 1_000_000_000), Ok(1));
    // Below a nanosecond is dropped, not rounded.
    assert_eq!(decimal(b"1.0000000019", 1_000_000_000), Ok(1_000_000_001));
    assert_eq!(decimal(b"0.1", 1_000), Ok(100));
    assert_eq!(decimal(b"0.0001", 1_000), Ok(0));
    for bad in ["", ".", "1.", ".5", "-1", "+1", "1e3", "1.2.3", " 1", "NaN", "inf", "1_000"] {
        assert_eq!(decimal(bad.as_bytes(), 1), Err(Num::Bad), "{bad:?}");
    }
    assert_eq!(decimal(b"18446744073709551616", 1), Err(Num::TooBig));
    assert_eq!(decimal(b"18446744073709551615", 1), Ok(u64::MAX));
    assert_eq!(decimal(b"18446744074", 1_000_000_000), Err(Num::TooBig));
}

#[test]
fn latencies_take_a_unit_or_milliseconds() {
    assert_eq!(latency("12ms"), Ok(12 * MS));
    assert_eq!(latency("1.5s"), Ok(1_500 * MS));
    assert_eq!(latency("250us"), Ok(250_000));
    assert_eq!(latency("250µs"), Ok(250_000));
    assert_eq!(latency("12"), Ok(12 * MS));
    assert_eq!(latency("12.5"), Ok(12_500_000));
    assert_eq!(latency("0"), Ok(0));
    assert_eq!(latency("12xs").unwrap_err(), "`12xs` is not a duration (12ms, 1.5s, 250us or milliseconds)");
    assert_eq!(latency("-5ms").unwrap_err(), "`-5ms` is negative");
    assert_eq!(latency("-5").unwrap_err(), "`-5` is negative");
    for bad in ["NaN", "nan", "inf", "-inf", "", "ms", "s", "1e3", "1,5s", "1.5 s", "-"] {
        assert!(latency(bad).unwrap_err().contains("is not a duration"), "{bad:?}");
    }
    assert_eq!(latency("99999999999999999999s").unwrap_err(), "`99999999999999999999s` is out of range");
}

#[test]
fn request_times_are_seconds_with_a_point_and_microseconds_without() {
    assert_eq!(request_time("0.012"), Ok(12 * MS));
    assert_eq!(request_time("12034"), Ok(12_034_000));
    assert_eq!(request_time("0"), Ok(0));
    assert!(request_time("-").unwrap_err().contains("nginx $request_time"));
    assert!(request_time("12ms").unwrap_err().contains("Apache %D"));
    assert!(request_time("99999999999999999999").unwrap_err().contains("out of range"));
}

#[test]
fn timestamps_in_unix_seconds_and_rfc_3339() {
    assert_eq!(timestamp("1700000000"), Ok(1_700_000_000 * S));
    assert_eq!(timestamp("1700000000.125"), Ok(1_700_000_000 * S + 125_000_000));
    assert_eq!(timestamp("0"), Ok(0));
    assert_eq!(timestamp("1970-01-01T00:00:00Z"), Ok(0));
    assert_eq!(timestamp("2023-11-14T22:13:20Z"), Ok(1_700_000_000 * S));
    assert_eq!(timestamp("2023-11-14t22:13:20z"), Ok(1_700_000_000 * S));
    assert_eq!(timestamp("2023-11-14 22:13:20Z"), Ok(1_700_000_000 * S));
    assert_eq!(timestamp("2023-11-15T00:13:20+02:00"), Ok(1_700_000_000 * S));
    assert_eq!(timestamp("2023-11-14T20:13:20.5-02:00"), Ok(1_700_000_000 * S + S / 2));
    assert_eq!(timestamp("2026-12-01T10:00:00.250Z"), Ok(1_796_119_200 * S + 250_000_000));
    assert_eq!(timestamp("2024-02-29T00:00:00Z"), Ok(1_709_164_800 * S));
    assert_eq!(timestamp("1969-12-31T23:59:59Z"), Ok(-S));
    for bad in [
        "2023-02-29T00:00:00Z",
        "2023-13-01T00:00:00Z",
        "2023-00-01T00:00:00Z",
        "2023-01-32T00:00:00Z",
        "2023-01-01T24:00:00Z",
        "2023-01-01T00:60:00Z",
        "2023-01-01T00:00:00",
        "2023-01-01T00:00:00+0200",
        "2023-01-01T00:00:00+24:00",
        "2023-01-01T00:00:00.Z",
        "2023-01-01",
        "2023-1-01T00:00:00Z",
        "-1700000000",
        "1.2.3",
        "",
        "timestamp",
        "１７",
    ] {
        assert!(timestamp(bad).unwrap_err().contains("is not a timestamp (Unix seconds"), "{bad:?}");
    }
    // Milliseconds by mistake, and years past i64 nanoseconds.
    assert!(timestamp("1700000000000").unwrap_err().contains("out of range"));
    assert!(timestamp("9999-01-01T00:00:00Z").unwrap_err().contains("out of range"));
    assert!(timestamp("0001-01-01T00:00:00Z").unwrap_err().contains("out of range"));
}

#[test]
fn log_times() {
    assert_eq!(clf_time("10/Oct/2000:13:55:36 -0700"), Ok(971_211_336 * S));
    assert_eq!(clf_time("10/oct/2000:20:55:36 +0000"), Ok(971_211_336 * S));
    assert_eq!(clf_time("10/Oct/2000:20:55:36.250 +0000"), Ok(971_211_336 * S + 250_000_000));
    for bad in [
        "10/Oct/2000:13:55:36",
        "10/Okt/2000:13:55:36 -0700",
        "31/Sep/2000:13:55:36 -0700",
        "10/Oct/2000 13:55:36 -0700",
        "10/Oct/2000:13:55:36 -07:00",
        "1/Oct/2000:13:55:36 -0700",
        "",
    ] {
        assert!(clf_time(bad).unwrap_err().contains("is not a log time"), "{bad:?}");
    }
}

#[test]
fn statuses_map_as_breakerbox_http_does() {
    let cases = [
        (100, Recorded::Ignored),
        (101, Recorded::Ignored),
        (200, Recorded::Success),
        (204, Recorded::Success),
        (301, Recorded::Success),
        (399, Recorded::Success),
        (400, Recorded::Ignored),
        (404, Recorded::Ignored),
        (428, Recorded::Ignored),
        (429, Recorded::Overloaded),
        (499, Recorded::Ignored),
        (500, Recorded::Failure),
        (501, Recorded::Failure),
        (502, Recorded::Overloaded),
        (503, Recorded::Overloaded),
        (504, Recorded::Overloaded),
        (505, Recorded::Failure),
        (599, Recorded::Failure),
    ];
    for (code, recorded) in cases {
        assert_eq!(Recorded::from_status(code), recorded, "{code}");
        assert_eq!(outcome(&code.to_string()), Ok((recorded, Some(code))));
    }
    for bad in ["099", "600", "20", "2000", "+200", "65536", "99999999999", "", "2x0"] {
        assert_eq!(status(bad), None, "{bad:?}");
        assert!(outcome(bad).unwrap_err().contains("is not an HTTP status (100..=599) or one of"), "{bad:?}");
    }
}

#[test]
fn outcome_words() {
    for (word, recorded) in [
        ("success", Recorded::Success),
        ("OK", Recorded::Success),
        ("failure", Recorded::Failure),
        ("Error", Recorded::Failure),
        ("overloaded", Recorded::Overloaded),
        ("timeout", Recorded::Overloaded),
        ("ignored", Recorded::Ignored),
    ] {
        assert_eq!(outcome(word), Ok((recorded, None)), "{word}");
    }
}

#[test]
fn urls_split_into_host_and_rest() {
    assert_eq!(split_url("https://api.example.com:8443/x?y"), Some(("api.example.com:8443", "/x?y")));
    assert_eq!(split_url("http://user:pw@h/"), Some(("h", "/")));
    assert_eq!(split_url("http://h"), Some(("h", "")));
    assert_eq!(split_url("http://h?q=1"), Some(("h", "?q=1")));
    assert_eq!(split_url("/a/http://b"), None);
    assert_eq!(split_url("://h/x"), None);
    assert_eq!(split_url("api.example.com/x"), None);
}

fn host(key: &str) -> String {
    let mut out = String::new();
    push_key_host(key, &mut out);
    out
}

fn route(key: &str) -> String {
    let mut out = String::new();
    push_key_route(key, &mut out);
    out
}

#[test]
fn hosts_of_keys() {
    assert_eq!(host("https://API.example.com:8443/x"), "api.example.com:8443");
    assert_eq!(host("api.example.com/items/1"), "api.example.com");
    assert_eq!(host("payments"), "payments");
    assert_eq!(host("GET https://h/x"), "h");
    assert_eq!(host("/items/1"), "-");
    assert_eq!(host(""), "-");
}

#[test]
fn routes_fold_ids() {
    assert_eq!(route("https://api.example.com/api/items/42?x=1"), "/api/items/:id");
    assert_eq!(route("GET /api/items/42"), "GET /api/items/:id");
    assert_eq!(route("api.example.com/users/123e4567-e89b-12d3-a456-426614174000/orders"), "/users/:id/orders");
    assert_eq!(route("/blobs/0123456789abcdef0123"), "/blobs/:id");
    // Short hex, a version, a word: not ids.
    assert_eq!(route("/blobs/abc123/v2/latest"), "/blobs/abc123/v2/latest");
    assert_eq!(route("/blobs/0123456789abcde"), "/blobs/0123456789abcde");
    assert_eq!(route("/a/42#frag"), "/a/:id");
    assert_eq!(route("/a//42/"), "/a//:id/");
    assert_eq!(route("https://h"), "/");
    assert_eq!(route("payments"), "/");
    let mut out = String::new();
    push_route(Some("OPTIONS"), "*", &mut out);
    assert_eq!(out, "OPTIONS *");
}

fn csv_key(line: &str, group_by: GroupBy) -> Result<String, String> {
    let (mut key, mut scratch) = (String::new(), String::new());
    csv::parse(line.as_bytes(), group_by, &mut key, &mut scratch).map(|_| key)
}

#[test]
fn csv_quoting() {
    assert_eq!(csv_key(r#"1,"a,b",200,1"#, GroupBy::Key).unwrap(), "a,b");
    assert_eq!(csv_key(r#"1,"say ""hi""",200,1"#, GroupBy::Key).unwrap(), r#"say "hi""#);
    assert_eq!(csv_key(r#"1, "padded" ,200,1"#, GroupBy::Key).unwrap(), "padded");
    assert_eq!(csv_key(r#""1","k","200","1ms""#, GroupBy::Key).unwrap(), "k");
    assert_eq!(csv_key("1,,200,1", GroupBy::Key).unwrap(), "");
    assert_eq!(csv_key(r#"1,"a"b,200,1"#, GroupBy::Key).unwrap_err(), "key: text after the closing quote");
    assert_eq!(csv_key(r#"1,"a,200,1"#, GroupBy::Key).unwrap_err(), "key: unterminated quote");
    assert_eq!(csv_key(r#"1,a,"200,1"#, GroupBy::Key).unwrap_err(), "outcome: unterminated quote");
    assert!(csv_key("1,a,200,1,x", GroupBy::Key).unwrap_err().starts_with("extra field after `latency`"));
    assert!(csv_key("1,a,200,1,", GroupBy::Key).unwrap_err().starts_with("extra field after `latency`"));
    assert!(csv_key("1,a,200", GroupBy::Key).unwrap_err().starts_with("latency: missing"));
    assert!(csv_key("1", GroupBy::Key).unwrap_err().starts_with("key: missing"));
    assert!(csv::is_header(b"timestamp,key,outcome,latency"));
    assert!(csv::is_header(b"\"Timestamp\" ,k,o,l"));
    assert!(!csv::is_header(b"1700000000,k,200,1"));
}

#[test]
fn names_round_trip() {
    for f in [TraceFormat::Csv, TraceFormat::AccessLog] {
        assert_eq!(TraceFormat::parse(f.name()), Ok(f));
    }
    for g in [GroupBy::All, GroupBy::Key, GroupBy::Host, GroupBy::Route] {
        assert_eq!(GroupBy::parse(g.name()), Ok(g));
    }
    for b in [OnBadLine::Skip, OnBadLine::Fail] {
        assert_eq!(OnBadLine::parse(b.name()), Ok(b));
    }
    assert_eq!(GroupBy::parse("url").unwrap_err().0, "`url` is not one of all, key, host, route");
    assert_eq!(TraceFormat::parse("json").unwrap_err().0, "`json` is not one of csv, access-log");
    assert_eq!(OnBadLine::parse("warn").unwrap_err().0, "`warn` is not one of skip, fail");
}

#[test]
fn message_helpers() {
    assert_eq!(secs(0), "0s");
    assert_eq!(secs(75_000_000_000), "75s");
    assert_eq!(secs(1_500_000_000), "1.5s");
    assert_eq!(secs(1_000), "0.000001s");
    assert_eq!(show("short"), "short");
    let long = "é".repeat(50);
    assert_eq!(show(&long), format!("{}…", "é".repeat(40)));
}
