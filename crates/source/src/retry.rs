//! When a request to a mirror is tried again, and how long qus waits first: one policy for
//! every request of this crate (package downloads, index files, `qus lock`'s probes).
//!
//! A busy mirror resets connections, times out and answers 5xx or 429 now and then; one such
//! answer must not fail a CI run, so transient failures are tried a few times in all, with
//! a jittered exponential wait between tries (many runners hit by one outage do not come
//! back in lockstep), or what the server asks in `Retry-After`, up to a cap. Permanent
//! answers (404, 403, 410, a file that is not the pinned one) are never tried again.

use std::time::{Duration, SystemTime};

use crate::error::Error;

/// How often, and how patiently, transient failures are tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (1: never try again).
    pub attempts: u32,
    /// The nominal wait before the second try; doubled before each later one.
    pub backoff: Duration,
    /// The longest nominal wait between tries.
    pub backoff_cap: Duration,
    /// The longest `Retry-After` honoured; a server asking more is asked again after this.
    pub retry_after_cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            backoff: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(8),
            retry_after_cap: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Pure: the wait before retry number `retry` (0 for the second try): what the server
    /// asked (at most the cap), else `backoff · 2^retry` (at most its cap) with "equal
    /// jitter", half of it fixed and half scaled by `random` ∈ [0, 1].
    pub(crate) fn wait(&self, retry: u32, asked: Option<Duration>, random: f64) -> Duration {
        if let Some(asked) = asked {
            return asked.min(self.retry_after_cap);
        }
        let nominal = self
            .backoff
            .saturating_mul(2u32.saturating_pow(retry.min(31)))
            .min(self.backoff_cap);
        let half = nominal / 2;
        half + half.mul_f64(random.clamp(0.0, 1.0))
    }
}

/// Pure: how long `Retry-After: value` asks to wait, from `now`: seconds, or an HTTP date
/// (one already past is no wait). `None` for a value that is neither.
pub(crate) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// One try that failed: the error (boxed: failures are rare, results are everywhere), and
/// the wait the server asked for before the next.
#[derive(Debug)]
pub(crate) struct Failed {
    pub error: Box<Error>,
    pub asked: Option<Duration>,
}

impl From<Error> for Failed {
    fn from(error: Error) -> Failed {
        Failed {
            error: Box::new(error),
            asked: None,
        }
    }
}

/// The tries of one request: counts them and says whether another is due.
#[derive(Debug)]
pub(crate) struct Tries {
    policy: RetryPolicy,
    attempt: u32,
}

impl Tries {
    pub(crate) fn new(policy: RetryPolicy) -> Tries {
        Tries { policy, attempt: 1 }
    }

    /// The try under way (1 for the first).
    pub(crate) fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Tries in all, at most.
    pub(crate) fn attempts(&self) -> u32 {
        self.policy.attempts
    }

    /// After a failed try: the wait before the next one (and counts it), or `None` when the
    /// failure is permanent or the tries are used up.
    pub(crate) fn again(&mut self, failed: &Failed) -> Option<Duration> {
        if !failed.error.is_transient() || self.attempt >= self.policy.attempts {
            return None;
        }
        let wait = self
            .policy
            .wait(self.attempt - 1, failed.asked, fastrand::f64());
        self.attempt += 1;
        Some(wait)
    }

    /// The error to give up with: `failed`'s, naming how many tries were made.
    pub(crate) fn give_up(&self, failed: Failed) -> Error {
        failed.error.tried(self.attempt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::transient_status;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            attempts: 4,
            backoff: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(8),
            retry_after_cap: Duration::from_secs(30),
        }
    }

    #[test]
    fn waits_grow_are_capped_and_jittered() {
        let p = policy();
        assert_eq!(p.wait(0, None, 0.0), Duration::from_millis(250));
        assert_eq!(p.wait(0, None, 1.0), Duration::from_millis(500));
        assert_eq!(p.wait(2, None, 1.0), Duration::from_secs(2));
        assert_eq!(p.wait(10, None, 1.0), Duration::from_secs(8), "capped");
        assert_eq!(p.wait(u32::MAX, None, 0.5), Duration::from_secs(6));
        let waits: Vec<Duration> = (0..50).map(|_| p.wait(3, None, fastrand::f64())).collect();
        assert!(waits
            .iter()
            .all(|w| *w >= Duration::from_secs(2) && *w <= Duration::from_secs(4)));
        assert!(waits.iter().any(|w| *w != waits[0]), "{waits:?}");
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let p = policy();
        let asked = |s| Some(Duration::from_secs(s));
        assert_eq!(p.wait(0, asked(3), 0.9), Duration::from_secs(3));
        assert_eq!(p.wait(0, asked(3600), 0.9), Duration::from_secs(30));
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(retry_after("120", now), asked(120));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            asked(30),
            "an HTTP date"
        );
        assert_eq!(retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), asked(0));
        assert_eq!(retry_after("soon", now), None);
    }

    #[test]
    fn transient_and_permanent_statuses() {
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert!(transient_status(s), "{s}");
        }
        for s in [400, 401, 403, 404, 410, 416, 501] {
            assert!(!transient_status(s), "{s}");
        }
    }

    #[test]
    fn tries_stop_at_a_permanent_failure_or_the_last_attempt() {
        let status = |status| {
            Failed::from(Error::HttpStatus {
                url: "http://127.0.0.1:9/x.deb".into(),
                status,
                attempts: 1,
            })
        };
        let mut t = Tries::new(policy());
        assert_eq!(t.again(&status(404)), None, "a 404 is not tried again");
        assert_eq!(t.attempt(), 1);
        let mut n = 1;
        while t.again(&status(503)).is_some() {
            n += 1;
            assert_eq!(t.attempt(), n);
        }
        assert_eq!(n, 4);
        let err = t.give_up(status(503));
        assert!(
            matches!(err, Error::HttpStatus { attempts: 4, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("tried 4 times"), "{err}");
    }
}
