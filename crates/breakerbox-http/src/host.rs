//! The per-host key, `"{scheme}://{host}:{port}"` in lower case, built without a heap
//! allocation for any host of ordinary length.
//!
//! Every per-host breaker of the crate ([`HttpBreaker`](crate::HttpBreaker), the tower
//! `PerHostLayer`, the reqwest `BreakerMiddleware`) reads a request's [`Host`] here and
//! keys its `BreakerBox<String>` with [`Host::with_key`] (through
//! [`Breakers`](crate::breakers::Breakers)), so that one host has one key whichever way
//! it is reached, and a lookup of a known host borrows the key from the stack.

use http::Uri;

/// The scheme (`http` or `https`, in any case), host and port (the scheme's default when
/// the address has none) a request goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Host<'a> {
    scheme: &'a str,
    host: &'a str,
    port: u16,
}

impl<'a> Host<'a> {
    /// The host of `uri`.
    ///
    /// # Errors
    ///
    /// Why `uri` names no host: no scheme, a scheme other than `http` or `https`, or no
    /// host.
    pub(crate) fn of_uri(uri: &'a Uri) -> Result<Self, &'static str> {
        let scheme = uri.scheme_str().ok_or("no scheme: expected http:// or https://")?;
        let default_port = default_port(scheme).ok_or("unsupported scheme: expected http or https")?;
        let (host, port) = uri.authority().map(|a| host_port(a.as_str())).ok_or("no host")?;
        if host.is_empty() {
            return Err("no host");
        }
        let port = match port {
            Port::Default => default_port,
            Port::Given(port) => port,
            Port::Invalid => return Err("invalid port: the port must be a number from 1 to 65535"),
        };
        Ok(Self { scheme, host, port })
    }

    /// The host of `url`; `None` when it has no `http` or `https` host, or its port is
    /// 0.
    #[cfg(feature = "reqwest-middleware")]
    pub(crate) fn of_url(url: &'a ::reqwest::Url) -> Option<Self> {
        let scheme = url.scheme();
        let default_port = default_port(scheme)?;
        let host = url.host_str().filter(|h| !h.is_empty())?;
        // Found by the `host_key` fuzz target: `Url` accepts port 0 (`http://h:0/`),
        // which `of_uri` refuses as no port a connection can go to. Keying it
        // made the middleware keep a breaker for `"http://h:0"` where the tower layer,
        // reading the same address as a `Uri`, keeps none.
        let port = match url.port() {
            Some(0) => return None,
            port => port.unwrap_or(default_port),
        };
        Some(Self { scheme, host, port })
    }

    /// Calls `f` with the key, `"{scheme}://{host}:{port}"`, scheme and host in ASCII
    /// lower case.
    pub(crate) fn with_key<R>(self, f: impl FnOnce(&str) -> R) -> R {
        with_key(self.scheme, self.host, self.port, f)
    }
}

/// Room for the scheme, `://`, a 253-byte DNS name (or a bracketed IPv6 address), `:`
/// and a port; longer keys go to the heap.
const STACK: usize = 288;

/// Room for most keys (`https://api-17.internal.example.com:443` is 39 bytes): a buffer
/// this small costs next to nothing to zero, where zeroing `STACK` bytes on every
/// request would cost more than the lookup.
const SHORT: usize = 64;

/// The port of an authority.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Port {
    /// None given (or an empty one, `host:`): the scheme's.
    Default,
    /// A port from 1 to 65535.
    Given(u16),
    /// Not a port a connection can go to: 0, above 65535, not a number.
    Invalid,
}

impl Port {
    /// As `Uri::port_u16` reads it.
    #[cfg(test)]
    fn as_u16(self) -> Option<u16> {
        match self {
            Self::Given(port) => Some(port),
            _ => None,
        }
    }
}

/// The host and port of an authority, as `Uri::host` and `Uri::port_u16` read them, in
/// one pass: after any user info (up to the last `@`), a bracketed IPv6 address or the
/// text before the first `:`, then the port after it. A byte loop, because it runs on
/// every request: `rsplit_once` and `split_once` cost a search call each.
fn host_port(authority: &str) -> (&str, Port) {
    let bytes = authority.as_bytes();
    let mut start = 0;
    let mut colon = None;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'@' => {
                start = i + 1;
                colon = None;
            }
            b':' if colon.is_none() => colon = Some(i),
            _ => {}
        }
    }
    let rest = &authority[start..];
    let (host, port) = if rest.starts_with('[') {
        match rest.bytes().position(|b| b == b']') {
            Some(i) => (&rest[..=i], rest[i + 1..].strip_prefix(':')),
            None => (rest, None),
        }
    } else {
        match colon {
            Some(i) => (&authority[start..i], Some(&authority[i + 1..])),
            None => (rest, None),
        }
    };
    let port = match port {
        None | Some("") => Port::Default,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => Port::Invalid,
            Ok(port) => Port::Given(port),
        },
    };
    (host, port)
}

/// The default port of `http` and `https`, in any case (`http::Uri` gives both in
/// lower case: the exact match is the one taken).
fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ if scheme.eq_ignore_ascii_case("http") => Some(80),
        _ if scheme.eq_ignore_ascii_case("https") => Some(443),
        _ => None,
    }
}

/// Calls `f` with `"{scheme}://{host}:{port}"`, scheme and host in ASCII lower case.
fn with_key<R>(scheme: &str, host: &str, port: u16, f: impl FnOnce(&str) -> R) -> R {
    let len = scheme.len() + "://".len() + host.len() + ":".len() + digits(port);
    if len <= SHORT {
        f(fill(&mut [0u8; SHORT][..len], scheme, host, port))
    } else if len <= STACK {
        f(fill(&mut [0u8; STACK][..len], scheme, host, port))
    } else {
        f(fill(&mut vec![0u8; len], scheme, host, port))
    }
}

/// Writes the key into `buf`, which is exactly its length. Byte loops rather than
/// `copy_from_slice` and a lower-casing pass: each of those is a call for a few bytes.
fn fill<'b>(buf: &'b mut [u8], scheme: &str, host: &str, port: u16) -> &'b str {
    let (head, port_digits) = buf.split_at_mut(buf.len() - digits(port));
    let (scheme_part, rest) = head.split_at_mut(scheme.len());
    for (d, s) in scheme_part.iter_mut().zip(scheme.bytes()) {
        *d = s.to_ascii_lowercase();
    }
    let (separator, rest) = rest.split_at_mut(3);
    separator.copy_from_slice(b"://");
    let (host_part, colon) = rest.split_at_mut(host.len());
    for (d, s) in host_part.iter_mut().zip(host.bytes()) {
        *d = s.to_ascii_lowercase();
    }
    colon.copy_from_slice(b":");
    let mut n = port;
    for d in port_digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    // Copied from `str`s and lower-cased in ASCII: always UTF-8.
    std::str::from_utf8(buf).unwrap_or_default()
}

/// How many decimal digits `port` has.
fn digits(port: u16) -> usize {
    match port {
        0..=9 => 1,
        10..=99 => 2,
        100..=999 => 3,
        1000..=9999 => 4,
        _ => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(uri: &str) -> Result<String, &'static str> {
        Host::of_uri(&uri.parse().unwrap()).map(|host| host.with_key(str::to_owned))
    }

    #[test]
    fn keys_name_scheme_host_and_port() {
        assert_eq!(key("http://Example.COM/a?b").unwrap(), "http://example.com:80");
        assert_eq!(key("HTTPS://example.com").unwrap(), "https://example.com:443");
        assert_eq!(key("http://127.0.0.1:8080/x").unwrap(), "http://127.0.0.1:8080");
        assert_eq!(key("http://[::1]:9/").unwrap(), "http://[::1]:9");
        assert_eq!(key("http://h:1/").unwrap(), "http://h:1");
        assert_eq!(key("http://h:65535/").unwrap(), "http://h:65535");
        assert_eq!(key("http://h:/").unwrap(), "http://h:80", "an empty port is the scheme's");
        // Issue 9: a port no connection can go to is the caller's mistake.
        for bad in ["http://h:0/", "http://h:65536/", "http://h:99999/"] {
            assert_eq!(key(bad), Err("invalid port: the port must be a number from 1 to 65535"), "{bad}");
        }
        assert!(key("/only/a/path").is_err());
        assert!(key("ftp://example.com/").is_err());
    }

    #[test]
    fn host_and_port_read_as_http_reads_them() {
        for text in [
            "http://example.com/",
            "http://example.com:8080/",
            "http://user:pw@Example.com:81/",
            "http://user@example.com/",
            "http://[::1]/",
            "http://[::1]:9000/",
            "http://[fe80::1%25eth0]:1/",
            "http://example.com:/",
            "http://example.com:99999/",
        ] {
            let uri: Uri = text.parse().unwrap();
            let (host, port) = host_port(uri.authority().unwrap().as_str());
            assert_eq!((host, port.as_u16()), (uri.host().unwrap(), uri.port_u16()), "{text}");
        }
    }

    #[test]
    #[cfg(feature = "reqwest-middleware")]
    fn a_url_and_a_uri_of_one_host_get_one_key() {
        for text in ["http://Example.COM/a?b", "HTTPS://example.com", "http://127.0.0.1:8080/x", "http://[::1]:9/"] {
            let url: ::reqwest::Url = text.parse().unwrap();
            let from_url = Host::of_url(&url).map(|host| host.with_key(str::to_owned));
            assert_eq!(from_url, key(text).ok(), "{text}");
        }
        let file: ::reqwest::Url = "file:///etc/hosts".parse().unwrap();
        assert!(Host::of_url(&file).is_none());
    }

    #[test]
    fn every_buffer_size_gets_the_same_key() {
        for n in
            [1, SHORT - 14, SHORT - 13, SHORT - 12, 200, STACK - 20, STACK - 14, STACK - 13, STACK - 12, STACK, 600]
        {
            let host = "A".repeat(n);
            let got = with_key("HTTP", &host, 12345, str::to_owned);
            assert_eq!(got, format!("http://{}:12345", host.to_ascii_lowercase()), "{n}");
        }
    }
}
