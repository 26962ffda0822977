//! Typed errors, and the distribution error envelope they are decoded from.
//!
//! Callers make two decisions from an error: what to tell the user (so every variant
//! names the registry and the operation, and never a credential), and whether to try
//! again ([`Error::is_temporary`]). The mapping from an HTTP answer to a variant is a
//! pure function ([`classify`]) so it is tested without a network.

use std::time::Duration;

use serde::Deserialize;

use crate::digest::InvalidDigest;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One entry of the distribution error envelope.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct RegistryError {
    /// Machine-readable code (`MANIFEST_UNKNOWN`, `DENIED`, `UNAVAILABLE`, …).
    #[serde(default)]
    pub code: String,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
    /// Free-form detail (any JSON).
    #[serde(default)]
    pub detail: Option<serde_json::Value>,
}

/// The distribution spec's error body: `{"errors":[{"code","message","detail"}]}`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct ErrorEnvelope {
    /// The errors, in the registry's order.
    #[serde(default)]
    pub errors: Vec<RegistryError>,
}

/// Longest registry-provided text we repeat in an error (bodies can be huge HTML pages).
const SUMMARY_MAX: usize = 300;

impl ErrorEnvelope {
    /// Decodes a body; `None` when it is not an envelope with at least one error.
    pub fn parse(body: &[u8]) -> Option<ErrorEnvelope> {
        let envelope: ErrorEnvelope = serde_json::from_slice(body).ok()?;
        (!envelope.errors.is_empty()).then_some(envelope)
    }

    /// The first error's code.
    pub fn code(&self) -> Option<&str> {
        self.errors
            .first()
            .map(|e| e.code.as_str())
            .filter(|c| !c.is_empty())
    }

    /// Whether any entry carries `code`.
    pub fn has_code(&self, code: &str) -> bool {
        self.errors.iter().any(|e| e.code == code)
    }

    /// `CODE: message; …`, bounded in length.
    pub fn summary(&self) -> String {
        let text = self
            .errors
            .iter()
            .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
                (false, false) => format!("{}: {}", e.code, e.message),
                (false, true) => e.code.clone(),
                _ => e.message.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ");
        truncate(&text, SUMMARY_MAX)
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary, marking the cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Everything that can go wrong talking to a registry or publishing an index.
///
/// Messages name the registry and the operation; none contains a password or token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A reference string does not parse.
    #[error("invalid image reference {input:?}: {reason}")]
    InvalidReference {
        /// The text as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A digest string does not parse.
    #[error(transparent)]
    InvalidDigest(#[from] InvalidDigest),
    /// The registry wants credentials we do not have, or refused the ones we sent.
    #[error("unauthorized: registry {registry} refused {op} with {auth}: {detail}")]
    Unauthorized {
        /// The registry as named in the reference.
        registry: String,
        /// What we were doing.
        op: String,
        /// Which kind of credential was used (never the credential itself).
        auth: String,
        /// The registry's or our explanation.
        detail: String,
    },
    /// Authenticated, but not allowed (403 / `DENIED`).
    #[error("denied: registry {registry} does not allow {op}: {message}")]
    Denied {
        /// The registry as named in the reference.
        registry: String,
        /// What we were doing.
        op: String,
        /// The registry's explanation.
        message: String,
    },
    /// The manifest, blob or repository does not exist (404).
    #[error("not found: {op} at registry {registry}{}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    NotFound {
        /// The registry as named in the reference.
        registry: String,
        /// What we were looking for.
        op: String,
        /// The envelope's code (`MANIFEST_UNKNOWN`, `BLOB_UNKNOWN`, `NAME_UNKNOWN`).
        code: Option<String>,
    },
    /// Any other non-success answer (5xx, 429, an unexpected 4xx).
    #[error("registry {registry} answered {status}{} to {op}: {message}{}",
        code.as_deref().map(|c| format!(" {c}")).unwrap_or_default(),
        retry_after.map(|w| format!(" (it asks to retry after {} s)", w.as_secs())).unwrap_or_default())]
    ServerError {
        /// The registry as named in the reference.
        registry: String,
        /// What we were doing.
        op: String,
        /// HTTP status.
        status: u16,
        /// The envelope's first code, when there was an envelope.
        code: Option<String>,
        /// The envelope's summary, or a bounded excerpt of the body.
        message: String,
        /// How long the registry asked to wait (`Retry-After`) before trying again.
        retry_after: Option<Duration>,
    },
    /// A pull quota is used up (Docker Hub's `toomanyrequests`): it lasts hours, so it is
    /// not retried.
    #[error("pull limit: registry {registry} refused {op}: {limit} ({message}); qus does not retry a used-up quota. {hint}")]
    PullLimit {
        /// The registry as named in the reference.
        registry: String,
        /// What we were doing.
        op: String,
        /// Which limit, as the registry's headers state it (`100 pulls per 6 h window, 0 left`).
        limit: String,
        /// The registry's own words.
        message: String,
        /// What to do about it.
        hint: String,
    },
    /// The registry refused a manifest's media type (zot refuses Docker's by default; old
    /// registries refuse OCI's; some refuse to change a tag's family).
    #[error("registry {registry} refused {op} as {media_type} ({refusal}): it may not accept this media type family, or the tag already holds the other one; try the {other} media types")]
    MediaTypeRefused {
        /// The registry as named in the reference.
        registry: String,
        /// What we were doing.
        op: String,
        /// The media type that was refused.
        media_type: String,
        /// The other family, to try instead (`OCI` or `Docker`).
        other: &'static str,
        /// The registry's answer: status, code and message.
        refusal: String,
    },
    /// A request stalled: no connection, no byte for the idle time, or not done by its
    /// deadline (on every attempt).
    #[error(
        "timeout: registry {registry}, {op}: {what}{}; the registry, or a proxy or link on \
         the way, stalled. Try again later; on a slow link allow more time with \
         --timeout SECS (QUS_TIMEOUT)",
        tried(*attempts)
    )]
    Timeout {
        /// The registry as named in the reference.
        registry: String,
        /// What we were doing.
        op: String,
        /// Which limit passed: `no byte received for 60 s`.
        what: String,
        /// How many times it was tried.
        attempts: u32,
    },
    /// No connection, or the connection dropped mid-request.
    #[error("registry {registry} unreachable during {op}: {detail}")]
    Unreachable {
        /// The registry as named in the reference.
        registry: String,
        /// What we were doing.
        op: String,
        /// Why (connection refused, reset, closed), with a hint.
        detail: String,
    },
    /// The TLS handshake failed: an untrusted certificate, a client certificate wanted, a
    /// server that does not speak TLS. Not retried: the same handshake fails the same way.
    #[error("TLS with registry {registry} failed during {op}: {detail}")]
    TlsHandshake {
        /// The registry as named in the reference.
        registry: String,
        /// What we were doing.
        op: String,
        /// The TLS error and where the certificate that would fix it goes.
        detail: String,
    },
    /// The registry answered, but not with what the protocol promises.
    #[error("invalid response from registry {registry} to {op}: {reason}")]
    InvalidResponse {
        /// The registry as named in the reference.
        registry: String,
        /// What we were doing.
        op: String,
        /// What was wrong (digest mismatch, not JSON, missing header …).
        reason: String,
    },
    /// An index entry names a manifest that is not in the target repository.
    #[error(
        "cannot publish {target}: manifest {entry} is not in the registry; nothing was written"
    )]
    MissingManifest {
        /// The list tag being published.
        target: String,
        /// The entry that is missing (reference or digest).
        entry: String,
    },
    /// An entry's declared platform disagrees with its image config.
    #[error("cannot publish {target}: entry {entry} is declared {declared} but its image config says {config}; nothing was written")]
    PlatformMismatch {
        /// The list tag being published.
        target: String,
        /// The offending entry.
        entry: String,
        /// Platform given for the entry.
        declared: String,
        /// Platform found in the image config.
        config: String,
    },
    /// An entry cannot be part of the index (another repository, a nested list, a duplicate platform …).
    #[error("cannot publish {target}: entry {entry}: {reason}; nothing was written")]
    InvalidEntry {
        /// The list tag being published.
        target: String,
        /// The offending entry.
        entry: String,
        /// Why.
        reason: String,
    },
    /// Credentials could not be read (Docker config, credential helper).
    #[error("credentials for {registry}: {reason}")]
    Credentials {
        /// The registry whose credentials were being looked up.
        registry: String,
        /// What failed (never includes the secret).
        reason: String,
    },
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    /// What a Docker certs.d folder holds for a registry cannot be used.
    #[error("TLS settings for registry {registry} in {path}: {reason}")]
    Tls {
        /// The registry as named in the reference.
        registry: String,
        /// The file or folder at fault.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    /// Whether trying the same idempotent request again may succeed: timeouts, lost
    /// connections, 5xx (but 501), 429, and the envelope codes that say "later".
    pub fn is_temporary(&self) -> bool {
        match self {
            Error::Timeout { .. } | Error::Unreachable { .. } => true,
            Error::ServerError { status, code, .. } => {
                (*status >= 500 && *status != 501)
                    || *status == 429
                    || matches!(code.as_deref(), Some("UNAVAILABLE" | "TOOMANYREQUESTS"))
            }
            _ => false,
        }
    }

    /// This error after `n` attempts (a timeout says how many were made).
    pub(crate) fn attempted(mut self, n: u32) -> Error {
        if let Error::Timeout { attempts, .. } = &mut self {
            *attempts = n;
        }
        self
    }

    /// How long the registry asked to wait before trying again, when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::ServerError { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The registry this error is about, when it is about one.
    pub fn registry(&self) -> Option<&str> {
        match self {
            Error::Unauthorized { registry, .. }
            | Error::Denied { registry, .. }
            | Error::NotFound { registry, .. }
            | Error::ServerError { registry, .. }
            | Error::Timeout { registry, .. }
            | Error::Unreachable { registry, .. }
            | Error::TlsHandshake { registry, .. }
            | Error::InvalidResponse { registry, .. }
            | Error::Credentials { registry, .. }
            | Error::PullLimit { registry, .. }
            | Error::MediaTypeRefused { registry, .. }
            | Error::Tls { registry, .. } => Some(registry),
            _ => None,
        }
    }
}

/// Maps a non-success HTTP answer to an [`Error`]. `auth` describes (never reveals)
/// the credential used, for the 401 message.
pub(crate) fn classify(registry: &str, op: &str, auth: &str, status: u16, body: &[u8]) -> Error {
    let envelope = ErrorEnvelope::parse(body);
    let code = envelope.as_ref().and_then(|e| e.code()).map(str::to_string);
    let message = match &envelope {
        Some(e) => e.summary(),
        None if body.is_empty() => "(no body)".to_string(),
        None => truncate(String::from_utf8_lossy(body).trim(), SUMMARY_MAX),
    };
    let registry = registry.to_string();
    let op = op.to_string();
    let denied = envelope.as_ref().is_some_and(|e| e.has_code("DENIED"));
    match status {
        401 => Error::Unauthorized {
            registry,
            op,
            auth: auth.to_string(),
            detail: message,
        },
        403 => Error::Denied {
            registry,
            op,
            message,
        },
        _ if denied => Error::Denied {
            registry,
            op,
            message,
        },
        404 => Error::NotFound { registry, op, code },
        _ => Error::ServerError {
            registry,
            op,
            status,
            code,
            message,
            retry_after: None,
        },
    }
}

/// ` (3 attempts)` after more than one attempt.
fn tried(attempts: u32) -> String {
    if attempts > 1 {
        format!(" ({attempts} attempts)")
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_envelope() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"nope"}},{"code":"X","message":""}]}"#;
        let e = ErrorEnvelope::parse(body).unwrap();
        assert_eq!(e.errors.len(), 2);
        assert_eq!(e.code(), Some("MANIFEST_UNKNOWN"));
        assert_eq!(e.errors[0].detail, Some(serde_json::json!({"Tag": "nope"})));
        assert_eq!(e.summary(), "MANIFEST_UNKNOWN: manifest unknown; X");
        assert!(e.has_code("X"));
    }

    #[test]
    fn non_envelopes_are_none() {
        for body in [
            &b""[..],
            b"not json",
            b"{}",
            br#"{"errors":[]}"#,
            b"<html>502</html>",
        ] {
            assert!(ErrorEnvelope::parse(body).is_none());
        }
        // A `null` detail (distribution's usual) is fine.
        let e = ErrorEnvelope::parse(
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#,
        )
        .unwrap();
        assert_eq!(e.errors[0].detail, None);
    }

    #[test]
    fn classify_by_status_and_code() {
        let env = |code: &str| format!(r#"{{"errors":[{{"code":"{code}","message":"m"}}]}}"#);
        assert!(matches!(
            classify("r", "op", "anonymous", 401, b""),
            Error::Unauthorized { .. }
        ));
        assert!(matches!(
            classify("r", "op", "a", 403, b""),
            Error::Denied { .. }
        ));
        assert!(matches!(
            classify("r", "op", "a", 400, env("DENIED").as_bytes()),
            Error::Denied { .. }
        ));
        match classify("r", "op", "a", 404, env("BLOB_UNKNOWN").as_bytes()) {
            Error::NotFound { code, .. } => assert_eq!(code.as_deref(), Some("BLOB_UNKNOWN")),
            e => panic!("{e:?}"),
        }
        let e = classify("r", "op", "a", 500, env("UNKNOWN").as_bytes());
        assert!(e.is_temporary(), "{e:?}");
        assert!(e.to_string().contains("500 UNKNOWN"), "{e}");
        assert!(!classify("r", "op", "a", 501, b"").is_temporary());
        assert!(classify("r", "op", "a", 429, b"").is_temporary());
        assert!(classify("r", "op", "a", 400, env("TOOMANYREQUESTS").as_bytes()).is_temporary());
        assert!(!classify("r", "op", "a", 400, env("MANIFEST_INVALID").as_bytes()).is_temporary());
        assert!(!classify("r", "op", "a", 401, b"").is_temporary());
    }

    #[test]
    fn long_bodies_are_cut() {
        let body = "é".repeat(1000);
        match classify("r", "op", "a", 502, body.as_bytes()) {
            Error::ServerError { message, .. } => assert!(message.len() <= SUMMARY_MAX + 4),
            e => panic!("{e:?}"),
        }
    }
}
