//! One HTTP exchange with a registry: authentication, retries, error mapping.
//!
//! Every operation in [`crate::client`] describes its request as a [`Call`] and gets
//! back a fully read, bounded [`Answer`] whose status it declared acceptable; anything
//! else arrives as a typed [`Error`]. Keeping auth, retries and transport failures in this
//! one place means each operation is a few lines of protocol, and every operation fails
//! the same way.
//!
//! Authentication follows the distribution token spec and Docker's client:
//! - 401 → the challenge is answered (Basic, or a token fetched with one `scope=` parameter
//!   per scope; an identity token is exchanged by an OAuth2 refresh POST, with the plain
//!   GET as fallback when the token service has no OAuth2 endpoint: 404/405);
//! - a 401 to what was sent (a token past its time, a helper's credential that expired)
//!   asks the credential source again, once, before giving up;
//! - concurrent misses of one token fetch it once (single flight), and so do concurrent
//!   re-resolutions of one registry's credentials;
//! - credentials and tokens go only to the registry's own origin and its token service: an
//!   upload `Location` on another host gets no `Authorization`, and a plain-HTTP token
//!   service named by an HTTPS registry is not used at all.
//!
//! Retries (temporary errors of idempotent calls) honour `Retry-After` up to a cap and
//! otherwise back off exponentially with jitter; a used-up pull quota is not retried.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, Url};
use serde::Deserialize;

use crate::auth::{realm_allowed, token_scopes, Auth, Challenge, Secret};
use crate::credentials::CredentialSource;
use crate::error::{classify, Error, ErrorEnvelope, Result};
use crate::limits::{watched, Pulse, Stall, Timeouts, WaitNotice};
use crate::retry::{backoff, is_pull_quota, Quota};
use crate::tls::HttpClients;

/// A token is refreshed this long before the registry says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);
/// Token lifetime when the token service does not say (the distribution spec's default).
const TOKEN_DEFAULT_LIFETIME: u64 = 60;
/// The single-flight key of a registry's credential re-resolution (no scope is named so).
const CREDENTIALS_FLIGHT: &str = "\0credentials";
/// Largest token-service answer read.
const TOKEN_ANSWER_MAX: usize = 64 * 1024;

/// A request, described so it can be sent again (retry, or after a 401).
pub(crate) struct Call<'a> {
    /// Registry as named in the reference (auth key, error messages).
    pub registry: &'a str,
    /// `scheme://host:port/` of the registry's API: the only origin, besides its token
    /// service, that receives its credentials.
    pub home: Url,
    /// Repository, for the token scope (`None` for `/v2/`).
    pub repository: Option<&'a str>,
    /// Whether the token needs `push` as well as `pull`.
    pub push: bool,
    pub method: Method,
    pub url: Url,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Bytes>,
    /// What we are doing, for messages: `GET manifest 127.0.0.1:5000/qus:t`.
    pub op: String,
    /// Statuses the caller handles; anything else becomes an error.
    pub accept: &'a [u16],
    /// Larger answers are refused (a registry cannot make us buffer without bound).
    pub max_body: usize,
}

/// A fully read answer.
pub(crate) struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

struct Token {
    value: Secret,
    expires: Instant,
}

/// What we know about one registry's authentication.
#[derive(Default)]
struct RegistryAuth {
    /// Where the credentials come from (`None`: fixed, nothing to ask again).
    source: Option<Arc<dyn CredentialSource>>,
    auth: Auth,
    /// Bumped at each resolution: a 401 seen under an older one is answered already.
    generation: u64,
    challenge: Option<Challenge>,
    /// Tokens by the scope they were fetched for.
    tokens: HashMap<String, Token>,
}

/// What asking a credential source again gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resolved {
    /// The credentials are fixed.
    NoSource,
    /// Asked; the same credentials.
    Unchanged,
    /// Asked; new credentials (tokens dropped).
    Changed,
    /// Another task asked since this one saw its 401.
    ByOther,
}

impl Resolved {
    /// Whether trying again may now get another answer.
    fn is_new(self) -> bool {
        matches!(self, Resolved::Changed | Resolved::ByOther)
    }
}

/// Retry policy.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Retry {
    pub retries: u32,
    pub backoff: Duration,
    pub backoff_cap: Duration,
    /// The longest `Retry-After` honoured; a longer one fails at once.
    pub retry_after_cap: Duration,
}

pub(crate) struct Transport {
    clients: HttpClients,
    timeouts: Timeouts,
    on_wait: Option<WaitNotice>,
    retry: Retry,
    registries: Mutex<HashMap<String, RegistryAuth>>,
    flights: Mutex<HashMap<(String, String), Flight>>,
}

/// Held while one task does what concurrent tasks would otherwise all do (fetch a token,
/// ask a credential source).
type Flight = Arc<tokio::sync::Mutex<()>>;

impl Transport {
    pub fn new(
        clients: HttpClients,
        timeouts: Timeouts,
        on_wait: Option<WaitNotice>,
        retry: Retry,
    ) -> Transport {
        Transport {
            clients,
            timeouts,
            on_wait,
            retry,
            registries: Mutex::new(HashMap::new()),
            flights: Mutex::new(HashMap::new()),
        }
    }

    pub fn clients(&self) -> &HttpClients {
        &self.clients
    }

    /// Uses `auth` for `registry`, asking `source` again when it may have changed.
    pub fn set_credentials(
        &self,
        registry: &str,
        source: Option<Arc<dyn CredentialSource>>,
        auth: Auth,
    ) {
        let mut map = self.registries.lock().expect("auth map poisoned");
        let entry = map.entry(registry.to_string()).or_default();
        // Tokens obtained with other credentials must not be reused.
        *entry = RegistryAuth {
            source,
            auth,
            generation: entry.generation + 1,
            ..RegistryAuth::default()
        };
    }

    fn auth_of(&self, registry: &str) -> (Auth, u64) {
        self.registries
            .lock()
            .expect("auth map poisoned")
            .get(registry)
            .map(|r| (r.auth.clone(), r.generation))
            .unwrap_or_default()
    }

    /// The credentials in use for `registry` now.
    pub fn current_auth(&self, registry: &str) -> Auth {
        self.auth_of(registry).0
    }

    /// Asks `registry`'s credential source again (before a push phase); true when the
    /// credentials changed.
    pub async fn refresh(&self, registry: &str) -> Result<bool> {
        let (_, generation) = self.auth_of(registry);
        Ok(self.resolve_again(registry, generation).await? == Resolved::Changed)
    }

    fn flight(&self, registry: &str, key: &str) -> Flight {
        self.flights
            .lock()
            .expect("flight map poisoned")
            .entry((registry.to_string(), key.to_string()))
            .or_default()
            .clone()
    }

    /// Asks the credential source again, unless another task did since generation `seen`.
    async fn resolve_again(&self, registry: &str, seen: u64) -> Result<Resolved> {
        let source = self
            .registries
            .lock()
            .expect("auth map poisoned")
            .get(registry)
            .and_then(|r| r.source.clone());
        let Some(source) = source else {
            return Ok(Resolved::NoSource);
        };
        let flight = self.flight(registry, CREDENTIALS_FLIGHT);
        let _one_at_a_time = flight.lock().await;
        if self.auth_of(registry).1 != seen {
            return Ok(Resolved::ByOther);
        }
        let name = registry.to_string();
        // A credential helper is a process: off the async threads.
        let auth = tokio::task::spawn_blocking(move || source.resolve(&name))
            .await
            .map_err(|e| Error::Credentials {
                registry: registry.to_string(),
                reason: format!("the credential lookup did not finish: {e}"),
            })??;
        let mut map = self.registries.lock().expect("auth map poisoned");
        let entry = map.entry(registry.to_string()).or_default();
        entry.generation += 1;
        if entry.auth == auth {
            return Ok(Resolved::Unchanged);
        }
        entry.auth = auth;
        entry.tokens.clear();
        Ok(Resolved::Changed)
    }

    /// Runs `f` again on temporary errors, at most `retries` more times, waiting what the
    /// registry asked (`Retry-After`, up to the cap; beyond it, gives up at once) or a
    /// jittered exponential backoff. Only for idempotent work.
    pub async fn retrying<T, F, Fut>(&self, mut f: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            match f().await {
                Err(e) if e.is_temporary() && attempt < self.retry.retries => {
                    let wait = match e.retry_after() {
                        Some(asked) if asked > self.retry.retry_after_cap => return Err(e),
                        Some(asked) => asked,
                        None => backoff(
                            attempt,
                            self.retry.backoff,
                            self.retry.backoff_cap,
                            fastrand::f64(),
                        ),
                    };
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                result => return result.map_err(|e| e.attempted(attempt + 1)),
            }
        }
    }

    /// Sends an idempotent call with retries.
    pub async fn execute(&self, call: &Call<'_>) -> Result<Answer> {
        self.retrying(|| self.attempt(call)).await
    }

    /// One attempt: send with what we know, answer 401 challenges (asking the credential
    /// source again once when what was sent is refused), classify.
    pub async fn attempt(&self, call: &Call<'_>) -> Result<Answer> {
        let ours = call.url.origin() == call.home.origin();
        let scope = call.repository.map(|repo| {
            let actions = if call.push { "pull,push" } else { "pull" };
            format!("repository:{repo}:{actions}")
        });
        let key = scope.clone().unwrap_or_default();
        let (auth, generation) = self.auth_of(call.registry);
        let mut sent = if ours {
            self.known_authorization(call, &auth, scope.as_deref())
                .await?
        } else {
            None
        };
        let mut answer = self.send(call, sent.as_ref()).await?;
        let mut asked_again = false;
        while answer.status == 401 {
            let unauthorized = |detail: String| Error::Unauthorized {
                registry: call.registry.to_string(),
                op: call.op.clone(),
                auth: self.auth_of(call.registry).0.to_string(),
                detail,
            };
            if !ours {
                return Err(unauthorized(format!(
                    "{} asked for credentials, but it is not the registry ({}): qus sends \
                     credentials only to the registry and its token service",
                    origin_text(&call.url),
                    origin_text(&call.home)
                )));
            }
            let refused = || {
                let why = ErrorEnvelope::parse(&answer.body)
                    .map(|e| e.summary())
                    .unwrap_or_else(|| "authentication failed".into());
                unauthorized(format!("credentials rejected ({why})"))
            };
            let Some(challenge) = challenge_of(&answer.headers) else {
                return Err(unauthorized(
                    "the registry answered 401 without a usable WWW-Authenticate challenge".into(),
                ));
            };
            self.registries
                .lock()
                .expect("auth map poisoned")
                .entry(call.registry.to_string())
                .or_default()
                .challenge = Some(challenge.clone());
            if let Some(header) = &sent {
                if asked_again {
                    return Err(refused());
                }
                // What we sent was refused: a token past its time, or credentials that
                // changed since they were read. Ask the source again, once.
                self.forget_token(call.registry, &key, header);
                asked_again = true;
                self.resolve_again(call.registry, generation).await?;
            }
            let fresh = match self
                .answer_challenge(call, &challenge, scope.as_deref())
                .await
            {
                // The token service refused the credentials: they may have expired since
                // they were read.
                Err(e @ Error::Unauthorized { .. }) if !asked_again => {
                    asked_again = true;
                    if !self
                        .resolve_again(call.registry, generation)
                        .await?
                        .is_new()
                    {
                        return Err(e);
                    }
                    self.answer_challenge(call, &challenge, scope.as_deref())
                        .await?
                }
                other => other?,
            };
            let Some(fresh) = fresh else {
                return Err(unauthorized(
                    "authentication required; give credentials (Docker config or --username/--password-stdin)".into(),
                ));
            };
            if sent.as_ref() == Some(&fresh) {
                // The same answer would get the same 401.
                return Err(refused());
            }
            sent = Some(fresh);
            answer = self.send(call, sent.as_ref()).await?;
        }
        if !call.accept.contains(&answer.status) {
            return Err(self.classify_answer(call, &answer));
        }
        Ok(answer)
    }

    /// The error for an answer the caller does not handle: the envelope's meaning, plus
    /// what the headers add (`Retry-After`, a used-up pull quota).
    fn classify_answer(&self, call: &Call<'_>, answer: &Answer) -> Error {
        let auth = self.auth_of(call.registry).0;
        let mut error = classify(
            call.registry,
            &call.op,
            &auth.to_string(),
            answer.status,
            &answer.body,
        );
        if let Error::ServerError {
            status,
            code,
            message,
            retry_after,
            ..
        } = &mut error
        {
            let throttled = *status == 429 || code.as_deref() == Some("TOOMANYREQUESTS");
            let quota = Quota::from_headers(&answer.headers);
            if throttled && is_pull_quota(&quota, message) {
                let hint = if auth == Auth::Anonymous {
                    "Log in (docker login, or --username with --password-stdin) for an \
                     account's higher limit, or wait for the window to move on"
                } else {
                    "Wait for the window to move on, or use an account with a higher limit"
                };
                return Error::PullLimit {
                    registry: call.registry.to_string(),
                    op: call.op.clone(),
                    limit: quota.describe(),
                    message: message.clone(),
                    hint: hint.to_string(),
                };
            }
            // A TLS server's answer to plain HTTP (Go's 400, whose explanation a HEAD
            // answer cannot carry).
            let tls_spoken_here = message.contains("HTTP request to an HTTPS server")
                || (message == "(no body)" && call.method == Method::HEAD);
            if *status == 400 && call.url.scheme() == "http" && tls_spoken_here {
                return Error::InvalidResponse {
                    registry: call.registry.to_string(),
                    op: call.op.clone(),
                    reason: format!(
                        "400 to plain HTTP: the registry likely speaks HTTPS; qus uses HTTPS \
                         for a loopback registry when {} holds its CA (ca.crt)",
                        self.certs_text(call.registry)
                    ),
                };
            }
            *retry_after = answer
                .header("retry-after")
                .and_then(|v| crate::retry::retry_after(v, SystemTime::now()));
        }
        error
    }

    fn certs_text(&self, registry: &str) -> String {
        self.clients
            .certs_path(registry)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| format!("certs.d/{registry}"))
    }

    /// Drops the cached token for `key` if it is the one that was refused (another task
    /// may have replaced it with a fresh one already).
    fn forget_token(&self, registry: &str, key: &str, refused: &str) {
        let mut map = self.registries.lock().expect("auth map poisoned");
        if let Some(r) = map.get_mut(registry) {
            let same = r
                .tokens
                .get(key)
                .is_some_and(|t| refused == format!("Bearer {}", t.value.expose()));
            if same {
                r.tokens.remove(key);
            }
        }
    }

    /// The Authorization header we can send before being challenged: a static bearer,
    /// Basic once the registry asked for it, or a (cached or fetched) token once it
    /// asked for one. Saves one 401 round trip per request after the first.
    async fn known_authorization(
        &self,
        call: &Call<'_>,
        auth: &Auth,
        scope: Option<&str>,
    ) -> Result<Option<String>> {
        if let Auth::Bearer(token) = auth {
            return Ok(Some(format!("Bearer {}", token.expose())));
        }
        let challenge = self
            .registries
            .lock()
            .expect("auth map poisoned")
            .get(call.registry)
            .and_then(|r| r.challenge.clone());
        match challenge {
            Some(Challenge::Basic) => Ok(basic_header(auth)),
            Some(Challenge::Bearer { realm, service, .. }) => {
                // Our own scope: the last challenge's scope was for another request.
                let ours = Challenge::Bearer {
                    realm,
                    service,
                    scope: None,
                };
                self.answer_challenge(call, &ours, scope).await
            }
            None => Ok(None),
        }
    }

    /// The header that answers `challenge` with the registry's current credentials,
    /// fetching a token if needed; `None` when we have nothing that could satisfy it.
    async fn answer_challenge(
        &self,
        call: &Call<'_>,
        challenge: &Challenge,
        scope: Option<&str>,
    ) -> Result<Option<String>> {
        let (auth, generation) = self.auth_of(call.registry);
        match challenge {
            Challenge::Basic => Ok(basic_header(&auth)),
            Challenge::Bearer {
                realm,
                service,
                scope: wanted,
            } => {
                if let Auth::Bearer(token) = &auth {
                    return Ok(Some(format!("Bearer {}", token.expose())));
                }
                let key = scope.unwrap_or("");
                if let Some(header) = self.cached_token(call.registry, key) {
                    return Ok(Some(header));
                }
                // One fetch per registry and scope, however many requests missed at once.
                let flight = self.flight(call.registry, key);
                let _one_at_a_time = flight.lock().await;
                if let Some(header) = self.cached_token(call.registry, key) {
                    return Ok(Some(header));
                }
                let scopes = token_scopes(scope, wanted.as_deref());
                let token = self
                    .fetch_token(call, &auth, realm, service.as_deref(), &scopes)
                    .await?;
                let header = format!("Bearer {}", token.value.expose());
                let mut map = self.registries.lock().expect("auth map poisoned");
                let entry = map.entry(call.registry.to_string()).or_default();
                // A token of credentials replaced meanwhile serves this request only.
                if entry.generation == generation {
                    entry.tokens.insert(key.to_string(), token);
                }
                Ok(Some(header))
            }
        }
    }

    fn cached_token(&self, registry: &str, key: &str) -> Option<String> {
        self.registries
            .lock()
            .expect("auth map poisoned")
            .get(registry)
            .and_then(|r| r.tokens.get(key))
            .filter(|t| t.expires > Instant::now())
            .map(|t| format!("Bearer {}", t.value.expose()))
    }

    /// The token dance: GET `realm?service&scope&scope…` (Basic credentials if we have
    /// some), or POST an OAuth2 refresh-token grant for an identity token, falling back to
    /// the GET when the service has no OAuth2 endpoint.
    async fn fetch_token(
        &self,
        call: &Call<'_>,
        auth: &Auth,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<Token> {
        let op = format!("token request for {}", call.op);
        let invalid = |reason: String| Error::InvalidResponse {
            registry: call.registry.to_string(),
            op: op.clone(),
            reason,
        };
        let url = Url::parse(realm)
            .map_err(|_| invalid(format!("the token realm {realm:?} is not a URL")))?;
        if !realm_allowed(call.home.scheme(), &url) {
            return Err(Error::Unauthorized {
                registry: call.registry.to_string(),
                op,
                auth: auth.to_string(),
                detail: format!(
                    "the registry is HTTPS but names a token service over plain HTTP ({}); \
                     qus uses HTTPS token services only for HTTPS registries, so that nobody \
                     on the path reads the credentials or swaps the token",
                    origin_text(&url)
                ),
            });
        }
        let http = self.clients.client(call.registry, &url)?;
        let (status, body) = match auth {
            Auth::IdentityToken(refresh) => {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token");
                form.append_pair("refresh_token", refresh.expose());
                form.append_pair("client_id", "qus");
                if let Some(s) = service {
                    form.append_pair("service", s);
                }
                if !scopes.is_empty() {
                    // OAuth2 takes one space-separated `scope` field.
                    form.append_pair("scope", &scopes.join(" "));
                }
                let post = http
                    .post(url.clone())
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form.finish());
                let (status, body) = self.token_exchange(call, &op, &url, post).await?;
                if matches!(status, 404 | 405) {
                    // No OAuth2 endpoint: the spec's fallback, as containerd and BuildKit
                    // do it (the refresh token as Basic credentials of the `<token>` user).
                    let get = token_get(&http, &url, service, scopes)
                        .basic_auth("<token>", Some(refresh.expose()));
                    self.token_exchange(call, &op, &url, get).await?
                } else {
                    (status, body)
                }
            }
            Auth::Basic { user, pass } => {
                let get =
                    token_get(&http, &url, service, scopes).basic_auth(user, Some(pass.expose()));
                self.token_exchange(call, &op, &url, get).await?
            }
            _ => {
                self.token_exchange(call, &op, &url, token_get(&http, &url, service, scopes))
                    .await?
            }
        };
        if status == 401 || status == 403 {
            return Err(Error::Unauthorized {
                registry: call.registry.to_string(),
                op,
                auth: auth.to_string(),
                detail: "the token service refused the credentials".into(),
            });
        }
        if status != 200 {
            return Err(classify(
                call.registry,
                &op,
                &auth.to_string(),
                status,
                &body,
            ));
        }
        #[derive(Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|_| invalid("the token service did not answer JSON".into()))?;
        let value = answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| invalid("the token service answered without a token".into()))?;
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(TOKEN_DEFAULT_LIFETIME));
        Ok(Token {
            value: Secret::new(value),
            expires: Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN),
        })
    }

    async fn token_exchange(
        &self,
        call: &Call<'_>,
        op: &str,
        url: &Url,
        request: reqwest::RequestBuilder,
    ) -> Result<(u16, Bytes)> {
        let (status, _, body) = self
            .exchange(call.registry, op, url, request, 0, TOKEN_ANSWER_MAX, false)
            .await?;
        Ok((status, body))
    }

    async fn send(&self, call: &Call<'_>, authorization: Option<&String>) -> Result<Answer> {
        let http = self.clients.client(call.registry, &call.url)?;
        let mut request = http.request(call.method.clone(), call.url.clone());
        for (name, value) in &call.headers {
            request = request.header(*name, value);
        }
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value);
        }
        let sending = call.body.as_ref().map_or(0, |b| b.len() as u64);
        if let Some(body) = &call.body {
            request = request.body(body.clone());
        }
        // A HEAD answer's Content-Length is the size of what a GET would send.
        let declared_counts = call.method != Method::HEAD;
        let (status, headers, body) = self
            .exchange(
                call.registry,
                &call.op,
                &call.url,
                request,
                sending,
                call.max_body,
                declared_counts,
            )
            .await?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// Sends `request` (whose body has `sending` bytes) and reads the answer, at most `max`
    /// bytes, under the [`Timeouts`]: the request and the answer's headers, then the body,
    /// each watched for silence and against a deadline scaled to its size. A declared
    /// `Content-Length` above `max` is refused before any of the body is read.
    #[allow(clippy::too_many_arguments)]
    async fn exchange(
        &self,
        registry: &str,
        op: &str,
        url: &Url,
        request: reqwest::RequestBuilder,
        sending: u64,
        max: usize,
        declared_counts: bool,
    ) -> Result<(u16, HeaderMap, Bytes)> {
        let limits = self.timeouts;
        let pulse = Pulse::new();
        let stalled = |stall: Stall| Error::Timeout {
            registry: registry.to_string(),
            op: op.to_string(),
            what: stall.describe(),
            attempts: 1,
        };
        let tell = |silence: Duration| {
            if let Some(on_wait) = &self.on_wait {
                on_wait.tell(&format!(
                    "waiting for registry {registry}: {op}: no byte for {} s (given up after \
                     {} s of silence)",
                    silence.as_secs(),
                    limits.idle.as_secs()
                ));
            }
        };
        let notice: crate::limits::Notice<'_> = self
            .on_wait
            .as_ref()
            .map(|_| (limits.notice_after(), &tell as &(dyn Fn(Duration) + Sync)));
        // Nothing comes back before the body is sent: that phase's silence includes it
        // (and is not announced: the registry is receiving).
        let response = watched(
            &pulse,
            limits.idle + limits.transfer(sending),
            limits.deadline(sending),
            notice.filter(|_| sending == 0),
            request.send(),
        )
        .await
        .map_err(stalled)?
        .map_err(|e| self.transport_error(registry, op, url, e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let declared = response.content_length().filter(|_| declared_counts);
        if let Some(n) = declared.filter(|n| *n > max as u64) {
            return Err(Error::InvalidResponse {
                registry: registry.to_string(),
                op: op.to_string(),
                reason: format!(
                    "the registry announced {n} bytes, and qus reads at most {max} for this; \
                     nothing was read"
                ),
            });
        }
        let expected = declared.unwrap_or(max as u64);
        let body = watched(
            &pulse,
            limits.idle,
            limits.deadline(expected),
            notice,
            read_body(response, max, registry, op, url, self, &pulse),
        )
        .await
        .map_err(stalled)??;
        Ok((status, headers, body))
    }

    /// Maps a failure below HTTP to Timeout, TlsHandshake or Unreachable, with the root
    /// cause and a hint (TLS trouble names the certs.d folder), and without the URL's
    /// query or any header.
    pub fn transport_error(
        &self,
        registry: &str,
        op: &str,
        url: &Url,
        error: reqwest::Error,
    ) -> Error {
        if error.is_timeout() {
            let what = if error.is_connect() {
                format!("no connection within {:?}", self.timeouts.connect)
            } else {
                "timed out".to_string()
            };
            return Error::Timeout {
                registry: registry.to_string(),
                op: op.to_string(),
                what,
                attempts: 1,
            };
        }
        let cause = root_cause(&error);
        let lower = cause.to_ascii_lowercase();
        let certs = self.certs_text(registry);
        let tls = |detail: String| Error::TlsHandshake {
            registry: registry.to_string(),
            op: op.to_string(),
            detail,
        };
        if url.scheme() == "https"
            && (lower.contains("corrupt message") || lower.contains("invalidcontenttype"))
        {
            return tls(format!(
                "{cause}: {} does not seem to speak TLS; qus uses HTTPS for it because it is \
                 not loopback or because {certs} exists",
                origin_text(url)
            ));
        }
        if lower.contains("alert") && lower.contains("certificate") {
            return tls(format!(
                "{cause}: the registry may want a client certificate; put it in {certs} as \
                 client.cert and client.key"
            ));
        }
        if lower.contains("certificate") {
            if let Some(why) = self.clients.refusal(registry) {
                return tls(why);
            }
            return tls(format!(
                "the registry's certificate is not trusted: {}; if {} has a private CA or a \
                 self-signed certificate, put that CA (or the certificate) in {certs}/ca.crt, \
                 as for docker",
                crate::trust::plain(&cause),
                origin_text(url)
            ));
        }
        let mut detail = if error.is_connect() {
            format!("cannot connect ({cause}); is the registry running, or did it stop?")
        } else {
            format!(
                "connection lost ({cause}); the registry may have stopped or restarted mid-request"
            )
        };
        // With TLS 1.3 a server refusing the client's (missing) certificate may just close
        // the connection after the handshake: where a certs.d folder says this registry is
        // a private one without a client certificate, say where one would go.
        let private_without_identity = self
            .clients
            .certs_for(registry)
            .ok()
            .flatten()
            .is_some_and(|c| c.identity.is_none());
        if url.scheme() == "https" && private_without_identity {
            detail.push_str(&format!(
                "; if the registry wants a client certificate, put it in {certs} as \
                 client.cert and client.key"
            ));
        }
        Error::Unreachable {
            registry: registry.to_string(),
            op: op.to_string(),
            detail,
        }
    }
}

/// The challenge of a 401, preferring Bearer when a registry offers both.
fn challenge_of(headers: &HeaderMap) -> Option<Challenge> {
    let challenges: Vec<Challenge> = headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(Challenge::parse)
        .collect();
    challenges
        .iter()
        .find(|c| matches!(c, Challenge::Bearer { .. }))
        .or(challenges.first())
        .cloned()
}

/// GET `realm?service=…&scope=…&scope=…`: one `scope` parameter per scope, as the token
/// spec and Docker's client send them.
fn token_get(
    http: &reqwest::Client,
    realm: &Url,
    service: Option<&str>,
    scopes: &[String],
) -> reqwest::RequestBuilder {
    let mut url = realm.clone();
    {
        let mut query = url.query_pairs_mut();
        if let Some(s) = service {
            query.append_pair("service", s);
        }
        for scope in scopes {
            query.append_pair("scope", scope);
        }
    }
    http.get(url)
}

/// `scheme://host:port` of a URL, for messages (no path, query or userinfo).
fn origin_text(url: &Url) -> String {
    url.origin().ascii_serialization()
}

async fn read_body(
    mut response: reqwest::Response,
    max: usize,
    registry: &str,
    op: &str,
    url: &Url,
    transport: &Transport,
    pulse: &Pulse,
) -> Result<Bytes> {
    let mut body = BytesMut::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport.transport_error(registry, op, url, e))?
    {
        pulse.beat();
        if body.len() + chunk.len() > max {
            return Err(Error::InvalidResponse {
                registry: registry.to_string(),
                op: op.to_string(),
                reason: format!("the answer is larger than {max} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn basic_header(auth: &Auth) -> Option<String> {
    match auth {
        Auth::Basic { user, pass } => {
            let pair = format!("{user}:{}", pass.expose());
            Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ))
        }
        Auth::Bearer(token) => Some(format!("Bearer {}", token.expose())),
        _ => None,
    }
}

/// The innermost error message (`Connection refused (os error 111)`), which names
/// neither URL nor credentials.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}
