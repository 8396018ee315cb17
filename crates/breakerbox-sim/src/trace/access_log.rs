//! One access log line: `[vhost] client ident user [time] "request" status bytes
//! ["referer" "user agent" ...] request-time`.

use super::fields::{clf_time, request_time, show, status};
use super::{GroupBy, Parsed, Recorded, group, utf8};

const FORMAT: &str =
    "client ident user [10/Oct/2000:13:55:36 -0700] \"GET /path HTTP/1.1\" status bytes ... request-time";

fn skip_spaces(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|&&c| c == b' ' || c == b'\t').count();
    &b[n..]
}

/// The next space-separated token and what follows it.
fn token(b: &[u8]) -> (&[u8], &[u8]) {
    let b = skip_spaces(b);
    let end = b.iter().position(|&c| c == b' ' || c == b'\t').unwrap_or(b.len());
    b.split_at(end)
}

/// A `"..."` at the start of `b` (backslash escapes, as Apache writes `\"`): its
/// content and what follows; `None` when it does not close.
fn quoted(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some((&b[1..i], &b[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

/// Parses `line`, writing its group key to `key`.
pub(super) fn parse(line: &[u8], group_by: GroupBy, key: &mut String) -> Result<Parsed, String> {
    let open = line.iter().position(|&b| b == b'[').ok_or_else(|| format!("time: missing (expected {FORMAT})"))?;
    let mut prefix = [&[][..]; 4];
    let mut n = 0;
    for tok in line[..open].split(|&b| b == b' ' || b == b'\t').filter(|t| !t.is_empty()) {
        if n < 4 {
            prefix[n] = tok;
        }
        n += 1;
    }
    let vhost = match n {
        3 => None,
        4 => Some(utf8("vhost", prefix[0])?),
        _ => {
            return Err(format!(
                "expected 3 fields (client ident user) or 4 (vhost client ident user) before the time, found {n}"
            ));
        }
    };
    let names: &[&str] =
        if vhost.is_some() { &["vhost", "client", "ident", "user"] } else { &["client", "ident", "user"] };
    for (name, tok) in names.iter().zip(prefix).skip(usize::from(vhost.is_some())) {
        utf8(name, tok)?;
    }

    let after_open = &line[open + 1..];
    let close = after_open.iter().position(|&b| b == b']').ok_or("time: no closing `]`")?;
    let logged = clf_time(utf8("time", &after_open[..close])?).map_err(|e| format!("time: {e}"))?;

    let rest = skip_spaces(&after_open[close + 1..]);
    if rest.first() != Some(&b'"') {
        return Err("request: missing (expected a quoted request line, as \"GET /path HTTP/1.1\")".into());
    }
    let (request, rest) = quoted(rest).ok_or("request: unterminated quote")?;
    let request = utf8("request", request)?;

    let (code, rest) = token(rest);
    if code.is_empty() {
        return Err("status: missing (expected an HTTP status after the request)".into());
    }
    let code = utf8("status", code)?;
    let code = status(code).ok_or_else(|| format!("status: `{}` is not an HTTP status (100..=599)", show(code)))?;

    let (bytes, mut rest) = token(rest);
    if bytes.is_empty() {
        return Err("bytes: missing (expected a byte count or `-` after the status)".into());
    }
    if bytes != b"-" && !bytes.iter().all(u8::is_ascii_digit) {
        let bytes = utf8("bytes", bytes)?;
        return Err(format!("bytes: `{}` is not a byte count or `-`", show(bytes)));
    }

    let mut quoted_fields = 0;
    let time = loop {
        let r = skip_spaces(rest);
        let name = ["referer", "user agent"].get(quoted_fields).copied().unwrap_or("quoted field");
        match r.first() {
            None => {
                return Err(
                    "request time: missing (append nginx $request_time or Apache %D to the log format, last)".into()
                );
            }
            Some(b'"') => {
                let (content, after) = quoted(r).ok_or_else(|| format!("{name}: unterminated quote"))?;
                utf8(name, content)?;
                rest = after;
                quoted_fields += 1;
            }
            Some(_) => {
                let (tok, after) = token(r);
                let tok = utf8("request time", tok)?;
                if !skip_spaces(after).is_empty() {
                    return Err(format!("extra field after the request time `{}`", show(tok)));
                }
                break tok;
            }
        }
    };
    let latency = request_time(time).map_err(|e| format!("request time: {e}"))?;
    let start = i64::try_from(latency)
        .ok()
        .and_then(|l| logged.checked_sub(l))
        .ok_or_else(|| format!("request time: `{}` is out of range", show(time)))?;

    let mut parts = request.split(' ').filter(|p| !p.is_empty());
    let method = parts.next().filter(|m| m.bytes().all(|b| b.is_ascii_uppercase() || b == b'-'));
    let target = method.and(parts.next());
    match group_by {
        GroupBy::All => key.push('*'),
        GroupBy::Key | GroupBy::Host => match (vhost, target) {
            (Some(vhost), _) => group::push_host(vhost, key),
            (None, Some(t)) if method == Some("CONNECT") => group::push_host(t, key),
            (None, Some(t)) => group::push_host(group::split_url(t).map_or("", |(host, _)| host), key),
            (None, None) => key.push('-'),
        },
        GroupBy::Route => match target {
            Some(t) => group::push_route(method, group::split_url(t).map_or(t, |(_, path)| path), key),
            None => key.push('-'),
        },
    }
    Ok(Parsed { logged, start, recorded: Recorded::from_status(code), status: Some(code), latency })
}
