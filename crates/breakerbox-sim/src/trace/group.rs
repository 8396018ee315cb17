//! Group keys: a URL's host, and a route with its ids folded to `:id`.

/// Splits `scheme://authority/rest` into the authority (without `user@`) and the rest
/// (the path, query and fragment; may be empty). `None` if `s` is not an absolute URL.
pub(super) fn split_url(s: &str) -> Option<(&str, &str)> {
    let i = s.find("://")?;
    let scheme = &s[..i];
    let mut chars = scheme.chars();
    if !chars.next()?.is_ascii_alphabetic() || !chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
        return None;
    }
    let after = &s[i + 3..];
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Some((host, rest))
}

/// A leading `METHOD ` (a word of ASCII capitals and a space), and what follows it.
pub(super) fn split_method(s: &str) -> (Option<&str>, &str) {
    match s.split_once(' ') {
        Some((m, rest)) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) => (Some(m), rest),
        _ => (None, s),
    }
}

/// Appends `host` lowercased, or `-` when it is empty.
pub(super) fn push_host(host: &str, out: &mut String) {
    if host.is_empty() {
        out.push('-');
    } else {
        out.extend(host.chars().map(|c| c.to_ascii_lowercase()));
    }
}

/// The host of a CSV key: a URL's authority, else the key up to its first `/` (after
/// an optional `METHOD `).
pub(super) fn push_key_host(key: &str, out: &mut String) {
    let (_, key) = split_method(key);
    match split_url(key) {
        Some((host, _)) => push_host(host, out),
        None => push_host(key.split('/').next().unwrap_or_default(), out),
    }
}

/// The route of a CSV key: its `METHOD ` if it has one, and its path (a URL's path,
/// the key itself when it starts with `/`, else the key from its first `/`), normalized.
pub(super) fn push_key_route(key: &str, out: &mut String) {
    let (method, key) = split_method(key);
    let path = match split_url(key) {
        Some((_, rest)) => rest,
        None => key.find('/').map_or("", |i| &key[i..]),
    };
    push_route(method, path, out);
}

/// `METHOD /path` with the query and fragment dropped and every id-like segment (all
/// digits, a UUID, or 16 or more hex digits) replaced by `:id`. An empty path is `/`.
pub(super) fn push_route(method: Option<&str>, path: &str, out: &mut String) {
    if let Some(m) = method {
        out.push_str(m);
        out.push(' ');
    }
    let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
    if path.is_empty() {
        out.push('/');
        return;
    }
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(if is_id(segment) { ":id" } else { segment });
    }
}

fn is_id(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = !b.is_empty() && b.iter().all(u8::is_ascii_digit);
    let hex = b.len() >= 16 && b.iter().all(u8::is_ascii_hexdigit);
    let uuid = b.len() == 36
        && b.iter()
            .enumerate()
            .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { *c == b'-' } else { c.is_ascii_hexdigit() });
    digits || hex || uuid
}
