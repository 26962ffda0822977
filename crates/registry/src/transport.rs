//! One HTTP exchange with a registry: authentication, retries, error mapping.
//!
//! Every operation in [`crate::client`] describes its request as a [`Call`] and gets
//! back a fully read, bounded [`Answer`] whose status it declared acceptable; anything
//! else arrives as a typed [`Error`]. Keeping auth (401 → challenge → token or Basic →
//! retry once), retries (temporary errors, exponential backoff, bounded) and transport
//! failures (timeout, refused, dropped) in this one place means each operation is a few
//! lines of protocol, and every operation fails the same way.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, Url};
use serde::Deserialize;

use crate::auth::{Auth, Challenge, Secret};
use crate::error::{classify, Error, Result};

/// Longest backoff between two attempts, whatever the base.
const BACKOFF_CAP: Duration = Duration::from_secs(8);
/// A token is refreshed this long before the registry says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);
/// Token lifetime when the token service does not say (the distribution spec's default).
const TOKEN_DEFAULT_LIFETIME: u64 = 60;

/// A request, described so it can be sent again (retry, or after a 401).
pub(crate) struct Call<'a> {
    /// Registry as named in the reference (auth key, error messages).
    pub registry: &'a str,
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

/// What we learned about one registry's authentication.
#[derive(Default)]
struct Session {
    challenge: Option<Challenge>,
    tokens: HashMap<String, Token>,
}

/// Retry policy.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Retry {
    pub retries: u32,
    pub backoff: Duration,
}

pub(crate) struct Transport {
    http: reqwest::Client,
    connect_timeout: Duration,
    request_timeout: Duration,
    retry: Retry,
    auth: Mutex<HashMap<String, Auth>>,
    sessions: Mutex<HashMap<String, Session>>,
}

impl Transport {
    pub fn new(
        http: reqwest::Client,
        connect_timeout: Duration,
        request_timeout: Duration,
        retry: Retry,
    ) -> Transport {
        Transport {
            http,
            connect_timeout,
            request_timeout,
            retry,
            auth: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    pub fn set_auth(&self, registry: &str, auth: Auth) {
        self.auth
            .lock()
            .expect("auth map poisoned")
            .insert(registry.to_string(), auth);
        // Tokens obtained with other credentials must not be reused.
        self.sessions
            .lock()
            .expect("session map poisoned")
            .remove(registry);
    }

    fn auth_for(&self, registry: &str) -> Auth {
        self.auth
            .lock()
            .expect("auth map poisoned")
            .get(registry)
            .cloned()
            .unwrap_or_default()
    }

    /// Runs `f` again on temporary errors, with exponential backoff, at most
    /// `retries` more times. Only for idempotent work.
    pub async fn retrying<T, F, Fut>(&self, mut f: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut delay = self.retry.backoff;
        let mut attempt = 0;
        loop {
            match f().await {
                Err(e) if e.is_temporary() && attempt < self.retry.retries => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(BACKOFF_CAP);
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// Sends an idempotent call with retries.
    pub async fn execute(&self, call: &Call<'_>) -> Result<Answer> {
        self.retrying(|| self.attempt(call)).await
    }

    /// One attempt: send with what we know, answer a 401 challenge once, classify.
    pub async fn attempt(&self, call: &Call<'_>) -> Result<Answer> {
        let auth = self.auth_for(call.registry);
        let scope = call.repository.map(|repo| {
            let actions = if call.push { "pull,push" } else { "pull" };
            format!("repository:{repo}:{actions}")
        });
        let header = self
            .known_authorization(call, &auth, scope.as_deref())
            .await?;
        let mut answer = self.send(call, header.as_ref()).await?;
        if answer.status == 401 {
            let challenges: Vec<Challenge> = answer
                .headers
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .filter_map(Challenge::parse)
                .collect();
            // Prefer Bearer when a registry offers both.
            let challenge = challenges
                .iter()
                .find(|c| matches!(c, Challenge::Bearer { .. }))
                .or(challenges.first())
                .cloned();
            let unauthorized = |detail: String| Error::Unauthorized {
                registry: call.registry.to_string(),
                op: call.op.clone(),
                auth: auth.to_string(),
                detail,
            };
            let Some(challenge) = challenge else {
                return Err(unauthorized(
                    "the registry answered 401 without a usable WWW-Authenticate challenge".into(),
                ));
            };
            self.sessions
                .lock()
                .expect("session map poisoned")
                .entry(call.registry.to_string())
                .or_default()
                .challenge = Some(challenge.clone());
            let fresh = self
                .answer_challenge(call, &auth, &challenge, scope.as_deref())
                .await?;
            let Some(fresh) = fresh else {
                return Err(unauthorized(
                    "authentication required; give credentials (Docker config or --username/--password-stdin)".into(),
                ));
            };
            answer = self.send(call, Some(&fresh)).await?;
            if answer.status == 401 {
                let why = crate::error::ErrorEnvelope::parse(&answer.body)
                    .map(|e| e.summary())
                    .unwrap_or_else(|| "authentication failed".into());
                return Err(unauthorized(format!("credentials rejected ({why})")));
            }
        }
        if !call.accept.contains(&answer.status) {
            return Err(classify(
                call.registry,
                &call.op,
                &auth.to_string(),
                answer.status,
                &answer.body,
            ));
        }
        Ok(answer)
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
        let key = scope.unwrap_or("").to_string();
        let challenge = {
            let sessions = self.sessions.lock().expect("session map poisoned");
            let Some(session) = sessions.get(call.registry) else {
                return Ok(None);
            };
            if let Some(token) = session.tokens.get(&key) {
                if token.expires > Instant::now() {
                    return Ok(Some(format!("Bearer {}", token.value.expose())));
                }
            }
            session.challenge.clone()
        };
        match challenge {
            Some(Challenge::Basic) => Ok(basic_header(auth)),
            Some(bearer @ Challenge::Bearer { .. }) => {
                // Our own scope: the last challenge's scope was for another request.
                let bearer = match bearer {
                    Challenge::Bearer { realm, service, .. } => Challenge::Bearer {
                        realm,
                        service,
                        scope: scope.map(str::to_string),
                    },
                    other => other,
                };
                self.answer_challenge(call, auth, &bearer, scope).await
            }
            None => Ok(None),
        }
    }

    /// The header that answers `challenge`, fetching a token if needed; `None` when
    /// we have nothing that could satisfy it.
    async fn answer_challenge(
        &self,
        call: &Call<'_>,
        auth: &Auth,
        challenge: &Challenge,
        scope: Option<&str>,
    ) -> Result<Option<String>> {
        match challenge {
            Challenge::Basic => Ok(basic_header(auth)),
            Challenge::Bearer {
                realm,
                service,
                scope: wanted,
            } => {
                if let Auth::Bearer(token) = auth {
                    return Ok(Some(format!("Bearer {}", token.expose())));
                }
                let token_scope = wanted.as_deref().or(scope);
                let token = self
                    .fetch_token(call, auth, realm, service.as_deref(), token_scope)
                    .await?;
                let header = format!("Bearer {}", token.value.expose());
                self.sessions
                    .lock()
                    .expect("session map poisoned")
                    .entry(call.registry.to_string())
                    .or_default()
                    .tokens
                    .insert(scope.unwrap_or("").to_string(), token);
                Ok(Some(header))
            }
        }
    }

    /// The token dance: GET `realm?service&scope` (Basic credentials if we have
    /// some), or POST an OAuth2 refresh-token grant for an identity token.
    async fn fetch_token(
        &self,
        call: &Call<'_>,
        auth: &Auth,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> Result<Token> {
        let op = format!("token request for {}", call.op);
        let invalid = |reason: String| Error::InvalidResponse {
            registry: call.registry.to_string(),
            op: op.clone(),
            reason,
        };
        let mut url = Url::parse(realm)
            .map_err(|_| invalid(format!("the token realm {realm:?} is not a URL")))?;
        let request = match auth {
            Auth::IdentityToken(refresh) => {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token");
                form.append_pair("refresh_token", refresh.expose());
                form.append_pair("client_id", "qus");
                if let Some(s) = service {
                    form.append_pair("service", s);
                }
                if let Some(s) = scope {
                    form.append_pair("scope", s);
                }
                self.http
                    .post(url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form.finish())
            }
            _ => {
                {
                    let mut query = url.query_pairs_mut();
                    if let Some(s) = service {
                        query.append_pair("service", s);
                    }
                    if let Some(s) = scope {
                        query.append_pair("scope", s);
                    }
                }
                let request = self.http.get(url);
                match auth {
                    Auth::Basic { user, pass } => request.basic_auth(user, Some(pass.expose())),
                    _ => request,
                }
            }
        };
        let response = request
            .timeout(self.request_timeout)
            .send()
            .await
            .map_err(|e| self.transport_error(call.registry, &op, e))?;
        let status = response.status().as_u16();
        let body = read_body(response, 64 * 1024, call.registry, &op, self).await?;
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

    async fn send(&self, call: &Call<'_>, authorization: Option<&String>) -> Result<Answer> {
        let mut request = self
            .http
            .request(call.method.clone(), call.url.clone())
            .timeout(self.request_timeout);
        for (name, value) in &call.headers {
            request = request.header(*name, value);
        }
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value);
        }
        if let Some(body) = &call.body {
            request = request.body(body.clone());
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.transport_error(call.registry, &call.op, e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = read_body(response, call.max_body, call.registry, &call.op, self).await?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// Maps a failure below HTTP to Timeout or Unreachable, with the root cause and a
    /// hint, and without the URL's query or any header.
    pub fn transport_error(&self, registry: &str, op: &str, error: reqwest::Error) -> Error {
        if error.is_timeout() {
            let after = if error.is_connect() {
                self.connect_timeout
            } else {
                self.request_timeout
            };
            return Error::Timeout {
                registry: registry.to_string(),
                op: op.to_string(),
                after,
            };
        }
        let cause = root_cause(&error);
        let detail = if error.is_connect() {
            format!("cannot connect ({cause}); is the registry running, or did it stop?")
        } else {
            format!(
                "connection lost ({cause}); the registry may have stopped or restarted mid-request"
            )
        };
        Error::Unreachable {
            registry: registry.to_string(),
            op: op.to_string(),
            detail,
        }
    }
}

async fn read_body(
    mut response: reqwest::Response,
    max: usize,
    registry: &str,
    op: &str,
    transport: &Transport,
) -> Result<Bytes> {
    let mut body = BytesMut::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport.transport_error(registry, op, e))?
    {
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
