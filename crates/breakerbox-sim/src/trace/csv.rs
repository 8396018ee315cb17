//! One CSV line: `timestamp,key,outcome,latency`.

use super::fields::{latency, outcome, timestamp};
use super::{GroupBy, Parsed, group, utf8};

const NAMES: [&str; 4] = ["timestamp", "key", "outcome", "latency"];

/// One field: its bytes (between the quotes when quoted), and whether they hold a
/// doubled quote to undo.
#[derive(Clone, Copy, Default)]
struct Field<'a> {
    raw: &'a [u8],
    doubled: bool,
}

/// Splits a line into its four fields.
fn split(line: &[u8]) -> Result<[Field<'_>; 4], String> {
    let mut fields = [Field::default(); 4];
    let mut pos = 0;
    let mut n = 0;
    loop {
        let name = NAMES.get(n).copied();
        while pos < line.len() && matches!(line[pos], b' ' | b'\t') {
            pos += 1;
        }
        let field = if line.get(pos) == Some(&b'"') {
            let start = pos + 1;
            let mut i = start;
            let mut doubled = false;
            loop {
                match line[i..].iter().position(|&b| b == b'"') {
                    None => return Err(format!("{}: unterminated quote", name.unwrap_or("extra field"))),
                    Some(q) if line.get(i + q + 1) == Some(&b'"') => {
                        doubled = true;
                        i += q + 2;
                    }
                    Some(q) => {
                        i += q;
                        break;
                    }
                }
            }
            let field = Field { raw: &line[start..i], doubled };
            pos = i + 1;
            while pos < line.len() && matches!(line[pos], b' ' | b'\t') {
                pos += 1;
            }
            if pos < line.len() && line[pos] != b',' {
                return Err(format!("{}: text after the closing quote", name.unwrap_or("extra field")));
            }
            field
        } else {
            let end = line[pos..].iter().position(|&b| b == b',').map_or(line.len(), |i| pos + i);
            let raw = line[pos..end].trim_ascii_end();
            pos = end;
            Field { raw, doubled: false }
        };
        if n == NAMES.len() {
            return Err("extra field after `latency` (expected 4: timestamp,key,outcome,latency)".into());
        }
        fields[n] = field;
        n += 1;
        if pos >= line.len() {
            break;
        }
        pos += 1; // the comma
    }
    if n < NAMES.len() {
        return Err(format!("{}: missing (expected 4 fields: timestamp,key,outcome,latency)", NAMES[n]));
    }
    Ok(fields)
}

/// Whether `line` is a header: its first field is `timestamp`.
pub(super) fn is_header(line: &[u8]) -> bool {
    let first = line.split(|&b| b == b',').next().unwrap_or_default().trim_ascii();
    let first = first.strip_prefix(b"\"").and_then(|f| f.strip_suffix(b"\"")).unwrap_or(first);
    first.eq_ignore_ascii_case(b"timestamp")
}

/// Parses `line`, writing its group key to `key`.
pub(super) fn parse(line: &[u8], group_by: GroupBy, key: &mut String, scratch: &mut String) -> Result<Parsed, String> {
    let [ts, k, out, lat] = split(line)?;
    let start = timestamp(utf8("timestamp", ts.raw)?).map_err(|e| format!("timestamp: {e}"))?;
    let raw_key = utf8("key", k.raw)?;
    let (recorded, status) = outcome(utf8("outcome", out.raw)?).map_err(|e| format!("outcome: {e}"))?;
    let latency = latency(utf8("latency", lat.raw)?).map_err(|e| format!("latency: {e}"))?;
    let written = if k.doubled {
        scratch.clear();
        for (i, part) in raw_key.split("\"\"").enumerate() {
            if i > 0 {
                scratch.push('"');
            }
            scratch.push_str(part);
        }
        scratch.as_str()
    } else {
        raw_key
    };
    match group_by {
        GroupBy::All => key.push('*'),
        GroupBy::Key => key.push_str(written),
        GroupBy::Host => group::push_key_host(written, key),
        GroupBy::Route => group::push_key_route(written, key),
    }
    Ok(Parsed { logged: start, start, recorded, status, latency })
}
