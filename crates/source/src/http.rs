//! The one HTTP client of the source stage, with the timeouts and the retry policy every
//! request needs.
//!
//! A mirror that accepts the connection and then stalls must not hang a release run, so
//! there is a connect timeout and a read timeout (time without any bytes), but no total
//! timeout: a 70 MB package on a slow but live link is fine. Errors are mapped once, here,
//! to the crate's URL-naming variants; transient ones are tried again as
//! [`RetryPolicy`] says.

use std::time::{Duration, SystemTime};

use futures::StreamExt;
use reqwest::header::RETRY_AFTER;
use url::Url;

use crate::error::{Error, Result};
use crate::retry::{retry_after, Failed, RetryPolicy, Tries};

/// Network settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOptions {
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Time without receiving any byte before giving up.
    pub read_timeout: Duration,
    /// Honour `http_proxy`/`https_proxy`/`no_proxy` from the environment.
    pub system_proxy: bool,
    /// When transient failures are tried again.
    pub retry: RetryPolicy,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
            system_proxy: true,
            retry: RetryPolicy::default(),
        }
    }
}

/// Makes rustls's ring provider the process default, once, before any client is built:
/// reqwest is built without one (no aws-lc C build) and panics without a default.
pub(crate) fn tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // Err means another provider was installed first (by the application): that one serves.
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A configured HTTP client (cheap to clone).
#[derive(Debug, Clone)]
pub struct Http {
    pub(crate) client: reqwest::Client,
    connect_timeout: Duration,
    read_timeout: Duration,
    retry: RetryPolicy,
}

impl Http {
    /// A client with the options' timeouts.
    pub fn new(opts: &FetchOptions) -> Result<Http> {
        tls_provider();
        let mut b = reqwest::Client::builder()
            .connect_timeout(opts.connect_timeout)
            .read_timeout(opts.read_timeout)
            .user_agent(concat!("qus/", env!("CARGO_PKG_VERSION")));
        if !opts.system_proxy {
            b = b.no_proxy();
        }
        let client = b.build().map_err(|source| Error::HttpClient { source })?;
        Ok(Http {
            client,
            connect_timeout: opts.connect_timeout,
            read_timeout: opts.read_timeout,
            retry: opts.retry,
        })
    }

    /// The retry policy.
    pub(crate) fn retry(&self) -> RetryPolicy {
        self.retry
    }

    /// Sends a request: a response whatever its status, or the transport's failure.
    pub(crate) async fn send(
        &self,
        url: &Url,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Failed> {
        req.send()
            .await
            .map_err(|e| Failed::from(self.request_error(url, e)))
    }

    /// `resp` if its status is a success, else the failure it is (see [`Http::failure`]).
    pub(crate) fn success(
        &self,
        url: &Url,
        resp: reqwest::Response,
    ) -> Result<reqwest::Response, Failed> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(self.failure(url, &resp))
    }

    /// The failure an error status is, with the wait a 429 or 503 asks for in
    /// `Retry-After`.
    pub(crate) fn failure(&self, url: &Url, resp: &reqwest::Response) -> Failed {
        let status = resp.status().as_u16();
        let asked = match status {
            429 | 503 => resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry_after(v, SystemTime::now())),
            _ => None,
        };
        Failed {
            asked,
            ..Failed::from(Error::HttpStatus {
                url: url.to_string(),
                status,
                attempts: 1,
            })
        }
    }

    /// GETs a whole (small) body, refusing more than `max` bytes; transient failures are
    /// tried again from the start.
    pub(crate) async fn get_bytes(&self, url: &Url, max: u64) -> Result<Vec<u8>> {
        let mut tries = Tries::new(self.retry);
        loop {
            match self.get_bytes_once(url, max).await {
                Ok(bytes) => return Ok(bytes),
                Err(failed) => match tries.again(&failed) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return Err(tries.give_up(failed)),
                },
            }
        }
    }

    async fn get_bytes_once(&self, url: &Url, max: u64) -> Result<Vec<u8>, Failed> {
        let resp = self.send(url, self.client.get(url.clone())).await?;
        let resp = self.success(url, resp)?;
        let expected = resp.content_length();
        let mut out = Vec::new();
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| self.body_error(url, e, out.len() as u64, expected))?;
            if out.len() as u64 + chunk.len() as u64 > max {
                return Err(Error::BadIndex {
                    what: url.to_string(),
                    detail: format!("larger than {max} bytes; is this the right URL?"),
                }
                .into());
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    pub(crate) fn request_error(&self, url: &Url, e: reqwest::Error) -> Error {
        let url = url.to_string();
        if e.is_timeout() {
            let after = if e.is_connect() {
                self.connect_timeout
            } else {
                self.read_timeout
            };
            Error::Timeout {
                url,
                after,
                attempts: 1,
            }
        } else {
            Error::Unreachable {
                url,
                source: e,
                attempts: 1,
            }
        }
    }

    /// Maps an error while streaming a body.
    pub(crate) fn body_error(
        &self,
        url: &Url,
        e: reqwest::Error,
        received: u64,
        expected: Option<u64>,
    ) -> Error {
        if e.is_timeout() {
            return Error::Timeout {
                url: url.to_string(),
                after: self.read_timeout,
                attempts: 1,
            };
        }
        let mut detail = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            src = s.source();
        }
        Error::Interrupted {
            url: url.to_string(),
            received,
            expected,
            detail,
            attempts: 1,
        }
    }
}
