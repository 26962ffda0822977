//! A package from a mirror into a [`Sink`], tried again on transient failures (as the
//! crate's [`crate::RetryPolicy`] says) and resumed where it broke off.
//!
//! A busy mirror resets a 70 MB transfer now and then. When the first answer identified
//! the file (an `ETag`, a `Last-Modified`, or at least a `Content-Length`), a transfer cut
//! short goes on with `Range: bytes=N-` (and `If-Range`, so that a file changed on the
//! mirror comes whole), and the new bytes go through the same hasher: the sha256 checked at
//! the end covers the whole file, whatever number of tries brought it. The rest is taken
//! only from a 206 whose `Content-Range` starts at N and ends the same file; a 200 (a
//! server that ignores Range) replaces what was there with the whole file, and any other
//! answer starts over from byte 0 in a new temp file.

use futures::StreamExt;
use reqwest::header::{HeaderMap, CONTENT_RANGE, ETAG, IF_RANGE, LAST_MODIFIED, RANGE};
use reqwest::Response;
use url::Url;

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::http::Http;
use crate::pinned::{PackageRef, VerifiedPackage};
use crate::progress::Retrying;
use crate::retry::{Failed, Tries};
use crate::sink::{OnProgress, Sink};

/// Downloads `pkg` from `url` into the cache, verified.
pub(crate) async fn download(
    http: &Http,
    cache: &Cache,
    pkg: &PackageRef,
    url: Url,
    progress: &OnProgress<'_>,
) -> Result<VerifiedPackage> {
    let sink = Sink::new(cache, url.to_string(), pkg, pkg.size, progress).await?;
    let mut t = Transfer {
        http,
        url,
        sink,
        file: Validators::default(),
    };
    let mut tries = Tries::new(http.retry());
    loop {
        let failed = match t.once().await {
            Ok(()) => return t.sink.finish().await,
            Err(failed) => failed,
        };
        let Some(wait) = tries.again(&failed) else {
            return Err(tries.give_up(failed));
        };
        t.sink.retrying(Retrying {
            failure: what_failed(&failed.error, t.sink.done),
            resume: t.resumable(),
            attempt: tries.attempt(),
            attempts: tries.attempts(),
            wait,
        });
        tokio::time::sleep(wait).await;
    }
}

/// One package's transfer, over its tries.
struct Transfer<'a> {
    http: &'a Http,
    url: Url,
    sink: Sink<'a>,
    /// What the last whole-file answer said about the file.
    file: Validators,
}

impl Transfer<'_> {
    /// One try: the whole file, or the rest of it.
    async fn once(&mut self) -> Result<(), Failed> {
        let resp = if self.resumable() {
            self.resume().await?
        } else {
            self.start().await?
        };
        self.stream(resp).await
    }

    /// Whether the bytes received so far can be kept.
    fn resumable(&self) -> bool {
        self.sink.done > 0 && self.file.identified()
    }

    /// A GET of the whole file.
    async fn start(&mut self) -> Result<Response, Failed> {
        let get = self.http.client.get(self.url.clone());
        let resp = self.http.send(&self.url, get).await?;
        let resp = self.http.success(&self.url, resp)?;
        self.whole(&resp).await?;
        Ok(resp)
    }

    /// A GET of the bytes still missing; the answer to stream, the rest or the whole file.
    async fn resume(&mut self) -> Result<Response, Failed> {
        let mut get = self
            .http
            .client
            .get(self.url.clone())
            .header(RANGE, format!("bytes={}-", self.sink.done));
        if let Some(v) = self.file.if_range() {
            get = get.header(IF_RANGE, v);
        }
        let resp = self.http.send(&self.url, get).await?;
        match resp.status().as_u16() {
            206 if self.continues(resp.headers()) => Ok(resp),
            // Range ignored, or the file changed (If-Range): here is all of it.
            200 => {
                self.whole(&resp).await?;
                Ok(resp)
            }
            // A 206 of some other part or file, a 416, …: not worth trusting.
            206 | 416 => self.start().await,
            _ => Err(self.http.failure(&self.url, &resp)),
        }
    }

    /// Gets ready for a whole file in `resp`: notes what identifies it, and starts a new
    /// temp file if the current one has bytes.
    async fn whole(&mut self, resp: &Response) -> Result<(), Failed> {
        self.file = Validators::of(resp.headers(), resp.content_length());
        let total = self.file.length.or(self.sink.pkg().size);
        if self.sink.done > 0 {
            self.sink = self.sink.fresh(total).await?;
        }
        self.sink.total = total;
        Ok(())
    }

    /// Whether a 206 is the rest of the file the sink holds the start of.
    fn continues(&self, headers: &HeaderMap) -> bool {
        let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
        let same_file = match (&self.file.etag, header(ETAG)) {
            (Some(ours), Some(theirs)) => ours == theirs,
            _ => true,
        };
        same_file
            && header(CONTENT_RANGE).is_some_and(|r| rest_of(r, self.sink.done, self.sink.total))
    }

    /// Streams a body into the sink; a body cut short is a failure.
    async fn stream(&mut self, resp: Response) -> Result<(), Failed> {
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| {
                self.http
                    .body_error(&self.url, e, self.sink.done, self.sink.total)
            })?;
            self.sink.write(&chunk).await?;
        }
        match self.sink.total {
            Some(n) if self.sink.done < n => Err(Error::Interrupted {
                url: self.url.to_string(),
                received: self.sink.done,
                expected: Some(n),
                detail: "the connection closed early".into(),
                attempts: 1,
            }
            .into()),
            _ => Ok(()),
        }
    }
}

/// What a whole-file answer said about the file: enough to ask for the rest of the same
/// file later.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Validators {
    etag: Option<String>,
    last_modified: Option<String>,
    length: Option<u64>,
}

impl Validators {
    fn of(headers: &HeaderMap, length: Option<u64>) -> Validators {
        let header = |name| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Validators {
            etag: header(ETAG),
            last_modified: header(LAST_MODIFIED),
            length,
        }
    }

    /// Whether the file was identified well enough to resume it.
    fn identified(&self) -> bool {
        self.etag.is_some() || self.last_modified.is_some() || self.length.is_some()
    }

    /// The `If-Range` value: a strong ETag, else the Last-Modified date (a weak ETag may
    /// not be used there).
    fn if_range(&self) -> Option<&str> {
        self.etag
            .as_deref()
            .filter(|e| !e.starts_with("W/"))
            .or(self.last_modified.as_deref())
    }
}

/// Pure: whether `Content-Range: value` is the rest of a file from byte `from` on: it
/// starts there and, when the file's length is known, ends that file.
fn rest_of(value: &str, from: u64, total: Option<u64>) -> bool {
    let Some((range, len)) = value
        .trim()
        .strip_prefix("bytes ")
        .and_then(|r| r.split_once('/'))
    else {
        return false;
    };
    let Some((first, last)) = range.split_once('-') else {
        return false;
    };
    let (Ok(first), Ok(last)) = (first.trim().parse::<u64>(), last.trim().parse::<u64>()) else {
        return false;
    };
    match total {
        Some(total) => first == from && len.trim().parse() == Ok(total) && last + 1 == total,
        None => first == from && last >= first,
    }
}

/// Pure: what went wrong, briefly, for the progress line of a retry.
fn what_failed(e: &Error, done: u64) -> String {
    let mb = |n: u64| format!("{:.1} MB", n as f64 / 1e6);
    match e {
        Error::Interrupted {
            received, detail, ..
        } => {
            let how = if detail.to_ascii_lowercase().contains("reset") {
                "connection reset"
            } else {
                "cut short"
            };
            format!("{how} after {}", mb(*received))
        }
        Error::Timeout { after, .. } if done > 0 => {
            format!("no data for {after:?} at {}", mb(done))
        }
        Error::Timeout { after, .. } => format!("no answer for {after:?}"),
        Error::Unreachable { .. } => "cannot connect".into(),
        Error::HttpStatus { status, .. } => format!("HTTP {status}"),
        e => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Progress;
    use reqwest::header::HeaderValue;
    use std::time::Duration;

    /// A progress callback's view of a retry after `e`, with `done` bytes received.
    fn line(e: &Error, done: u64, resume: bool, attempt: u32, wait: Duration) -> String {
        let retry = Retrying {
            failure: what_failed(e, done),
            resume,
            attempt,
            attempts: 4,
            wait,
        };
        Progress {
            file: "qemu-user_11.1.2+ds-3_loong64.deb".into(),
            done,
            total: None,
            retry: Some(retry),
        }
        .to_string()
    }

    #[test]
    fn a_206_must_be_the_rest_of_the_same_length() {
        assert!(rest_of("bytes 100-999/1000", 100, Some(1000)));
        assert!(rest_of("bytes 100-999/1000", 100, None));
        assert!(!rest_of("bytes 0-999/1000", 100, Some(1000)), "from 0");
        assert!(!rest_of("bytes 100-499/1000", 100, Some(1000)), "a part");
        assert!(
            !rest_of("bytes 100-1999/2000", 100, Some(1000)),
            "another file"
        );
        assert!(!rest_of("bytes 100-999/*", 100, Some(1000)));
        assert!(!rest_of("bytes */1000", 100, Some(1000)));
        assert!(!rest_of("items 100-999/1000", 100, Some(1000)));
        assert!(!rest_of("", 100, None));
    }

    #[test]
    fn if_range_takes_a_strong_etag_else_the_date() {
        let mut h = HeaderMap::new();
        assert!(!Validators::of(&h, None).identified());
        assert!(Validators::of(&h, Some(5)).identified(), "a length will do");
        assert_eq!(Validators::of(&h, Some(5)).if_range(), None);
        h.insert(
            LAST_MODIFIED,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        h.insert(ETAG, HeaderValue::from_static("W/\"abc\""));
        let v = Validators::of(&h, None);
        assert_eq!(v.if_range(), Some("Sun, 06 Nov 1994 08:49:37 GMT"));
        h.insert(ETAG, HeaderValue::from_static("\"abc\""));
        assert_eq!(Validators::of(&h, None).if_range(), Some("\"abc\""));
    }

    #[test]
    fn retry_lines_say_what_failed_and_what_comes_next() {
        let reset = Error::Interrupted {
            url: "u".into(),
            received: 59_685_216,
            expected: Some(67_070_916),
            detail: "error decoding response body: Connection reset by peer (os error 104)".into(),
            attempts: 1,
        };
        assert_eq!(
            line(&reset, 59_685_216, true, 2, Duration::from_millis(1300)),
            "qemu-user_11.1.2+ds-3_loong64.deb: connection reset after 59.7 MB, resuming in \
             1.3 s (attempt 2 of 4)"
        );
        let busy = Error::HttpStatus {
            url: "u".into(),
            status: 503,
            attempts: 1,
        };
        assert!(line(&busy, 0, false, 3, Duration::from_secs(2))
            .ends_with(": HTTP 503, trying again in 2.0 s (attempt 3 of 4)"));
    }
}
