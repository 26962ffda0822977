//! Debian version comparison, per Debian Policy §5.6.12.
//!
//! `[epoch:]upstream[-revision]`: epochs compare as numbers; upstream and revision compare by
//! alternating non-digit runs (where `~` sorts before everything, even the end of the
//! string, and letters before other characters) and digit runs (as numbers). This is the
//! algorithm dpkg implements; `qus check` uses it to tell whether a pin is out of date.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// A parsed Debian version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    /// The epoch (0 when absent).
    pub epoch: u64,
    /// The upstream version.
    pub upstream: String,
    /// The Debian revision (empty when absent).
    pub revision: String,
}

impl FromStr for Version {
    type Err = Error;

    fn from_str(s: &str) -> Result<Version, Error> {
        let bad = |reason| Error::BadVersion {
            value: s.to_string(),
            reason,
        };
        let t = s.trim();
        if t.is_empty() {
            return Err(bad("empty"));
        }
        let (epoch, rest) = match t.split_once(':') {
            Some((e, r)) => {
                if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad("the epoch must be a number"));
                }
                (e.parse().map_err(|_| bad("the epoch is too large"))?, r)
            }
            None => (0, t),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((u, r)) => (u, r),
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err(bad("empty upstream version"));
        }
        if !upstream.as_bytes()[0].is_ascii_digit() {
            return Err(bad("the upstream version must start with a digit"));
        }
        let ok = |p: &str, extra: &[u8]| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+.~".contains(&b) || extra.contains(&b))
        };
        // A hyphen in upstream is allowed only when there is a revision (it split on the
        // last one); a colon never after the epoch.
        if !ok(upstream, b"-") || !ok(revision, b"") || (revision.is_empty() && rest.ends_with('-'))
        {
            return Err(bad("invalid character"));
        }
        Ok(Version {
            epoch,
            upstream: upstream.to_string(),
            revision: revision.to_string(),
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch > 0 {
            write!(f, "{}:", self.epoch)?;
        }
        f.write_str(&self.upstream)?;
        if !self.revision.is_empty() {
            write!(f, "-{}", self.revision)?;
        }
        Ok(())
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| compare_part(&self.upstream, &other.upstream))
            .then_with(|| compare_part(&self.revision, &other.revision))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares two version strings; an unparsable one sorts before any valid one.
pub fn compare(a: &str, b: &str) -> Ordering {
    match (a.parse::<Version>(), b.parse::<Version>()) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        (Ok(_), Err(_)) => Ordering::Greater,
        (Err(_), Ok(_)) => Ordering::Less,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

/// Sort weight of a character in a non-digit run; `None` is the end of the string.
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => c as i32,
        Some(c) => c as i32 + 256,
    }
}

fn compare_part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(|c| c.is_ascii_digit());
    while i < a.len() || j < b.len() {
        // Non-digit run.
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (wa, wb) = (weight(a.get(i).copied()), weight(b.get(j).copied()));
            if wa != wb {
                return wa.cmp(&wb);
            }
            i += 1;
            j += 1;
        }
        // Digit run, as a number: skip leading zeros, then the longer run is larger, and
        // for equal lengths the first differing digit decides.
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn ordering_table() {
        let table = [
            ("1:10.0.13+ds-0+deb13u1", "1:10.0.2+ds-2", Greater),
            ("1.0~rc1", "1.0", Less),
            ("1.0~rc1", "1.0~rc2", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0~", "1.0", Less),
            ("1.0", "1.0+b1", Less),
            ("1.0a", "1.0", Greater),
            ("1.0a", "1.0+", Less),
            ("1.0", "1.0-0", Equal),
            ("1.0-1", "1.0-1", Equal),
            ("01.0", "1.0", Equal),
            ("1:7.2+dfsg-7+deb12u18+b3", "1:7.2+dfsg-7+deb12u18", Greater),
            ("1:7.2+dfsg-7+deb12u18", "1:10.0.13+ds-0+deb13u1", Less),
            ("2.0", "1:1.0", Less),
            ("1.2.3-1", "1.2.3-1~bpo12+1", Greater),
            ("1.10", "1.9", Greater),
            ("1.0-1ubuntu1", "1.0-1", Greater),
            ("1.0-1.1", "1.0-1", Greater),
            ("9.1.0+ds-1", "9.0.2+ds-4", Greater),
            ("1.2-3-4", "1.2-3", Greater),
        ];
        for (a, b, want) in table {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn parses_parts() {
        let v: Version = "1:10.0.13+ds-0+deb13u1".parse().unwrap();
        assert_eq!(
            (v.epoch, v.upstream.as_str(), v.revision.as_str()),
            (1, "10.0.13+ds", "0+deb13u1")
        );
        assert_eq!(v.to_string(), "1:10.0.13+ds-0+deb13u1");
        let v: Version = "1.2-3-4".parse().unwrap();
        assert_eq!((v.upstream.as_str(), v.revision.as_str()), ("1.2-3", "4"));
    }

    #[test]
    fn rejects_invalid() {
        for bad in [
            "", "a1.0", "x:1.0", ":1.0", "1.0-", "1.0 2", "1:", "1.0-a_b",
        ] {
            assert!(bad.parse::<Version>().is_err(), "{bad:?}");
        }
    }
}
