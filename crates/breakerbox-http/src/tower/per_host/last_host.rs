//! The host a [`PerHostService`](super::PerHostService) called last, remembered with its
//! breaker, so that a service whose requests go to one host (a client per upstream, the
//! common shape) skips reading the host, building the key and looking it up.
//!
//! # Why it is sound
//!
//! The key is a function of the URI's scheme and authority alone, so a request whose
//! scheme and authority are byte for byte those remembered has the remembered key. Its
//! breaker is still the family's for that key while
//! [`BreakerBox::departures`] has not changed: a key's breaker is replaced only after it
//! has left the family. Any departure (of any key) forgets nothing but makes the next
//! request look its key up again. A URI that differs only in case (`API.example`) is not
//! the same bytes: it takes the lookup, which lower-cases it to the same key.
//!
//! # When it remembers
//!
//! A lookup costs a hash and a probe; remembering costs a handle (a reference-count
//! increment, and a decrement for the one it replaces). The first host is remembered;
//! another replaces it after [`PATIENCE`] requests in a row that were not to it. A
//! service that alternates between a few hosts keeps the first and looks the others
//! up; one that goes round many hosts replaces the remembered one at most every
//! [`PATIENCE`] requests, so that the cost of remembering stays small beside the
//! lookups it cannot save. No allocation either way: the authority is copied into a
//! buffer of [`ROOM`] bytes (a longer one is not remembered).

use breakerbox::{Breaker, BreakerBox};
use http::Uri;

/// The longest authority remembered, in bytes.
const ROOM: usize = 64;

/// Requests in a row to other hosts before the remembered one is replaced.
const PATIENCE: u32 = 8;

/// The last host of a service and its breaker.
#[derive(Clone, Debug, Default)]
pub(crate) struct LastHost {
    seen: Option<Seen>,
    /// Requests since the last one to the remembered host.
    misses: u32,
}

#[derive(Clone, Debug)]
struct Seen {
    https: bool,
    len: usize,
    authority: [u8; ROOM],
    breaker: Breaker,
    /// The family's departures when `breaker` was looked up.
    departures: u64,
}

impl LastHost {
    /// The breaker of `uri`'s host if it is the host remembered and its breaker is still
    /// the family's.
    #[inline]
    pub(crate) fn breaker(&mut self, uri: &Uri, family: &BreakerBox<String>) -> Option<&Breaker> {
        let seen = self.seen.as_ref()?;
        let hit = scheme_is(uri, seen.https)
            && uri.authority().is_some_and(|a| same_bytes(a.as_str().as_bytes(), &seen.authority[..seen.len]))
            && family.departures() == seen.departures;
        if hit {
            self.misses = 0;
            Some(&seen.breaker)
        } else {
            self.misses = self.misses.saturating_add(1);
            None
        }
    }

    /// Whether a lookup of another host should be remembered (see the module docs).
    #[inline]
    pub(crate) fn wants(&self) -> bool {
        self.seen.is_none() || self.misses >= PATIENCE
    }

    /// Remembers `breaker` as the breaker of `uri`'s host, looked up when the family's
    /// departures were `departures`. A URI whose scheme is not `http` or `https` in lower
    /// case, or whose authority is longer than [`ROOM`], is not remembered.
    pub(crate) fn remember(&mut self, uri: &Uri, breaker: Breaker, departures: u64) {
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return,
        };
        let Some(authority) = uri.authority().map(|a| a.as_str().as_bytes()) else { return };
        if authority.len() > ROOM {
            return;
        }
        let mut room = [0u8; ROOM];
        room[..authority.len()].copy_from_slice(authority);
        self.seen = Some(Seen { https, len: authority.len(), authority: room, breaker, departures });
        self.misses = 0;
    }
}

/// Whether `uri`'s scheme is `https` (or `http`), in lower case as `http::Uri` keeps
/// the standard schemes.
#[inline]
fn scheme_is(uri: &Uri, https: bool) -> bool {
    let want = if https { &http::uri::Scheme::HTTPS } else { &http::uri::Scheme::HTTP };
    uri.scheme() == Some(want)
}

/// `a == b`, compared eight bytes at a time in line: a `memcmp` call costs more than the
/// compare for an authority's few bytes.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a_words, b_words) = (a.chunks_exact(8), b.chunks_exact(8));
    let (a_tail, b_tail) = (a_words.remainder(), b_words.remainder());
    a_words.zip(b_words).all(|(x, y)| word(x) == word(y)) && a_tail.iter().zip(b_tail).all(|(x, y)| x == y)
}

#[inline(always)]
fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(bytes);
    u64::from_ne_bytes(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn family() -> BreakerBox<String> {
        BreakerBox::new(Breaker::builder()).unwrap()
    }

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn same_bytes_is_equality() {
        let words = ["", "a", "abcdefg", "abcdefgh", "abcdefghi", "api-17.internal.example.com:443"];
        for a in words {
            for b in words {
                assert_eq!(same_bytes(a.as_bytes(), b.as_bytes()), a == b, "{a:?} {b:?}");
            }
        }
        let long = "api-17.internal.example.com:443";
        for i in 0..long.len() {
            let mut other = long.as_bytes().to_vec();
            other[i] ^= 1;
            assert!(!same_bytes(long.as_bytes(), &other), "a difference at byte {i}");
        }
    }

    #[test]
    fn a_remembered_host_is_found_by_its_scheme_and_authority_only() {
        let hosts = family();
        let mut last = LastHost::default();
        let a = uri("https://a.example/x");
        assert!(last.breaker(&a, &hosts).is_none(), "nothing remembered yet");
        assert!(last.wants());
        let breaker = hosts.get("https://a.example:443");
        last.remember(&a, breaker.clone(), hosts.departures());
        assert!(last.breaker(&uri("https://a.example/other?q=1"), &hosts).is_some_and(|b| b.same_as(&breaker)));
        for other in ["http://a.example/x", "https://b.example/x", "https://a.example:8443/x", "https://A.example/x"] {
            assert!(last.breaker(&uri(other), &hosts).is_none(), "{other}");
        }
    }

    #[test]
    fn any_departure_forgets_the_remembered_breaker() {
        let hosts = family();
        let mut last = LastHost::default();
        let a = uri("http://a.example/");
        last.remember(&a, hosts.get("http://a.example:80"), hosts.departures());
        hosts.get("http://b.example:80");
        assert!(last.breaker(&a, &hosts).is_some(), "a new key is no departure");
        hosts.remove("http://b.example:80");
        assert!(last.breaker(&a, &hosts).is_none(), "another key left: look up again");
    }

    #[test]
    fn another_host_replaces_the_remembered_one_after_patience_misses() {
        let hosts = family();
        let mut last = LastHost::default();
        last.remember(&uri("http://a.example/"), hosts.get("http://a.example:80"), hosts.departures());
        let b = uri("http://b.example/");
        for _ in 0..PATIENCE - 1 {
            assert!(last.breaker(&b, &hosts).is_none());
            assert!(!last.wants(), "fewer than PATIENCE misses in a row");
        }
        assert!(last.breaker(&uri("http://a.example/"), &hosts).is_some(), "a hit starts the count again");
        for _ in 0..PATIENCE {
            assert!(last.breaker(&b, &hosts).is_none());
        }
        assert!(last.wants());
    }

    #[test]
    fn odd_schemes_and_long_authorities_are_not_remembered() {
        let hosts = family();
        let mut last = LastHost::default();
        let long = format!("http://{}.example/", "a".repeat(ROOM));
        for u in ["ftp://a.example/", long.as_str()] {
            last.remember(&uri(u), Breaker::new(), hosts.departures());
            assert!(last.breaker(&uri(u), &hosts).is_none(), "{u}");
        }
    }
}
