//! When to try a request again, and when not to: pure decisions, tested without a server.
//!
//! A registry that answers 429 or 503 may say how long to wait (`Retry-After`, in seconds
//! or as an HTTP date); qus waits that long when it is reasonable and gives up at once when
//! it is not, instead of hammering it three times in a few seconds. Without a hint the wait
//! grows exponentially with jitter, so many runners hit by one outage do not come back in
//! lockstep. A *pull quota* (Docker Hub's `toomanyrequests`, announced by its `ratelimit-*`
//! headers) lasts hours: retrying it only burns what is left, so it fails at once with a
//! message that names the limit.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

/// How long `Retry-After: value` asks to wait, from `now`: seconds, or an HTTP date (a
/// date already past is no wait). `None` for a value that is neither.
pub(crate) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The wait before retry number `attempt` (0 for the first): `base · 2^attempt`, at most
/// `cap`, with "equal jitter" — half of it fixed, half scaled by `random` ∈ [0, 1] — so
/// waits differ between clients yet never drop below half the nominal one.
pub(crate) fn backoff(attempt: u32, base: Duration, cap: Duration, random: f64) -> Duration {
    let nominal = base
        .saturating_mul(2u32.saturating_pow(attempt.min(31)))
        .min(cap);
    let half = nominal / 2;
    half + half.mul_f64(random.clamp(0.0, 1.0))
}

/// A registry's pull quota, as its `ratelimit-limit` / `ratelimit-remaining` headers state
/// it (`100;w=21600`: 100 pulls per 21600 s).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Quota {
    /// Pulls allowed per window, and the window in seconds.
    pub limit: Option<(u64, u64)>,
    /// Pulls left in the current window.
    pub remaining: Option<u64>,
}

impl Quota {
    /// Reads the `ratelimit-*` headers (absent on registries without a quota).
    pub fn from_headers(headers: &HeaderMap) -> Quota {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let parse = |v: &str| -> (Option<u64>, Option<u64>) {
            let mut parts = v.split(';');
            let count = parts.next().and_then(|n| n.trim().parse().ok());
            let window = parts
                .filter_map(|p| p.trim().strip_prefix("w="))
                .find_map(|w| w.trim().parse().ok());
            (count, window)
        };
        let limit = get("ratelimit-limit").and_then(|v| match parse(v) {
            (Some(n), Some(w)) => Some((n, w)),
            _ => None,
        });
        let remaining = get("ratelimit-remaining").and_then(|v| parse(v).0);
        Quota { limit, remaining }
    }

    /// `100 pulls per 6 h window, 0 left`, from what the headers said.
    pub fn describe(&self) -> String {
        let mut text = match self.limit {
            Some((n, w)) => format!("{n} pulls per {} window", window(w)),
            None => "the registry's pull quota".to_string(),
        };
        if let Some(left) = self.remaining {
            text.push_str(&format!(", {left} left"));
        }
        text
    }
}

/// Whether a 429 (or a `TOOMANYREQUESTS` envelope) is a pull quota rather than a passing
/// overload: the quota headers say none is left, or the message says "pull rate limit"
/// (Docker Hub's wording, anonymous or logged in).
pub(crate) fn is_pull_quota(quota: &Quota, message: &str) -> bool {
    quota.remaining == Some(0) || message.to_ascii_lowercase().contains("pull rate limit")
}

/// `21600` → `6 h`; `90` → `90 s`.
fn window(seconds: u64) -> String {
    if seconds >= 3600 && seconds.is_multiple_of(3600) {
        format!("{} h", seconds / 3600)
    } else if seconds >= 60 && seconds.is_multiple_of(60) {
        format!("{} min", seconds / 60)
    } else {
        format!("{seconds} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past: no wait"
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-5", now), None);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let (base, cap) = (Duration::from_millis(500), Duration::from_secs(8));
        assert_eq!(backoff(0, base, cap, 0.0), Duration::from_millis(250));
        assert_eq!(backoff(0, base, cap, 1.0), Duration::from_millis(500));
        assert_eq!(backoff(2, base, cap, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(10, base, cap, 1.0), cap, "capped");
        assert_eq!(backoff(u32::MAX, base, cap, 0.5), Duration::from_secs(6));
        // Jitter spreads waits over [nominal/2, nominal].
        let waits: Vec<Duration> = (0..50)
            .map(|_| backoff(3, base, cap, fastrand::f64()))
            .collect();
        assert!(waits
            .iter()
            .all(|w| *w >= Duration::from_secs(2) && *w <= Duration::from_secs(4)));
        assert!(waits.iter().any(|w| *w != waits[0]), "{waits:?}");
    }

    #[test]
    fn docker_hub_quota_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(Quota::from_headers(&h), Quota::default());
        h.insert("ratelimit-limit", HeaderValue::from_static("100;w=21600"));
        h.insert("ratelimit-remaining", HeaderValue::from_static("0;w=21600"));
        let q = Quota::from_headers(&h);
        assert_eq!(q.limit, Some((100, 21600)));
        assert_eq!(q.remaining, Some(0));
        assert_eq!(q.describe(), "100 pulls per 6 h window, 0 left");
        assert!(is_pull_quota(&q, ""));
        assert!(is_pull_quota(
            &Quota::default(),
            "You have reached your unauthenticated pull rate limit."
        ));
        assert!(!is_pull_quota(&Quota::default(), "slow down"));
        let some_left = Quota {
            limit: Some((10, 3600)),
            remaining: Some(3),
        };
        assert!(!is_pull_quota(&some_left, "too many requests"));
        assert_eq!(some_left.describe(), "10 pulls per 1 h window, 3 left");
    }
}
