//! Asking a mirror whether it serves a file, without downloading it: `qus lock` and
//! `qus check` do so for every file they would pin, since a mirror may list a file in its
//! index and still answer 404 for it (a pool that lags its index, a partial proxy).
//!
//! A HEAD first; where HEAD is refused (405, 501), a one-byte range GET
//! (`Range: bytes=0-0`) whose body is never read. Transient answers (a timeout, a refused
//! connection, 5xx, 429) are tried again as the crate's [`crate::RetryPolicy`] says, and
//! then are an error, never "not served": a flaky mirror must not move a pin.

use reqwest::header::{HeaderMap, CONTENT_LENGTH, CONTENT_RANGE, RANGE};
use url::Url;

use crate::error::transient_status;
use crate::error::{Error, Result};
use crate::fetch::pool_url;
use crate::http::Http;
use crate::pinned::PackageRef;
use crate::retry::{Failed, Tries};

/// What a mirror says about one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// It is there (2xx); `size` is the length the server gave, when it gave one.
    Yes {
        /// The file's length in bytes, from `Content-Length` or `Content-Range`.
        size: Option<u64>,
    },
    /// The server answered with this status: the file cannot be fetched from it.
    No {
        /// The HTTP status (404 for a file the index lists but the pool lacks).
        status: u16,
    },
}

/// How one answer bears on "is the file served?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Served,
    NotServed,
    /// HEAD is not allowed here: ask with a range GET.
    HeadRefused,
    /// Worth another try.
    Transient,
}

/// Pure: the verdict of a status.
fn verdict(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Served,
        405 | 501 => Verdict::HeadRefused,
        s if transient_status(s) => Verdict::Transient,
        _ => Verdict::NotServed,
    }
}

/// Pure: the whole length a response gives: `Content-Range: bytes 0-0/LEN` for a range
/// answer, else `Content-Length`.
fn length(status: u16, headers: &HeaderMap) -> Option<u64> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if status == 206 {
        return header(CONTENT_RANGE)?
            .rsplit_once('/')?
            .1
            .trim()
            .parse()
            .ok();
    }
    header(CONTENT_LENGTH)?.trim().parse().ok()
}

impl Http {
    /// Whether `url` is served: a HEAD, or a one-byte range GET where HEAD is refused.
    /// Timeouts, connection errors, 5xx and 429 are tried again as the retry policy says,
    /// then returned as errors.
    pub async fn probe(&self, url: &Url) -> Result<Served> {
        let mut tries = Tries::new(self.retry());
        loop {
            let failed = match self.probe_once(url).await {
                Ok(served) => return Ok(served),
                Err(failed) => failed,
            };
            match tries.again(&failed) {
                Some(wait) => tokio::time::sleep(wait).await,
                None => {
                    return Err(match tries.give_up(failed) {
                        Error::HttpStatus {
                            url,
                            status,
                            attempts,
                        } => Error::ProbeFailed {
                            url,
                            status,
                            attempts,
                        },
                        e => e,
                    })
                }
            }
        }
    }

    /// Whether the mirror rooted at `mirror` serves `pkg`'s pool file (see [`Http::probe`]).
    pub async fn probe_package(&self, mirror: &Url, pkg: &PackageRef) -> Result<Served> {
        self.probe(&pool_url(mirror, &pkg.pool_path)?).await
    }

    /// One HEAD, and the range GET if HEAD is refused; a transient answer is a failure.
    async fn probe_once(&self, url: &Url) -> Result<Served, Failed> {
        let head = self.send(url, self.client.head(url.clone())).await?;
        let resp = match verdict(head.status().as_u16()) {
            Verdict::HeadRefused => {
                let get = self.client.get(url.clone()).header(RANGE, "bytes=0-0");
                self.send(url, get).await?
            }
            _ => head,
        };
        // The body (one byte, or all of it from a server that ignores Range) is not read:
        // dropping the response closes the connection.
        let status = resp.status().as_u16();
        match verdict(status) {
            Verdict::Served => Ok(Served::Yes {
                size: length(status, resp.headers()),
            }),
            Verdict::Transient => Err(self.failure(url, &resp)),
            // Refused again by the GET: not served.
            Verdict::NotServed | Verdict::HeadRefused => Ok(Served::No { status }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn statuses() {
        assert_eq!(verdict(200), Verdict::Served);
        assert_eq!(verdict(206), Verdict::Served);
        for s in [404, 410, 403, 401] {
            assert_eq!(verdict(s), Verdict::NotServed, "{s}");
        }
        for s in [405, 501] {
            assert_eq!(verdict(s), Verdict::HeadRefused, "{s}");
        }
        for s in [500, 502, 503, 504, 429, 408] {
            assert_eq!(verdict(s), Verdict::Transient, "{s}");
        }
    }

    #[test]
    fn lengths_from_content_range_or_length() {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("1"));
        h.insert(
            CONTENT_RANGE,
            HeaderValue::from_static("bytes 0-0/70528708"),
        );
        assert_eq!(length(206, &h), Some(70528708));
        assert_eq!(length(200, &h), Some(1));
        h.insert(CONTENT_RANGE, HeaderValue::from_static("bytes 0-0/*"));
        assert_eq!(length(206, &h), None);
        assert_eq!(length(200, &HeaderMap::new()), None);
    }
}
