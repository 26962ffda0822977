//! Credentials as values that cannot leak, and the `WWW-Authenticate` challenge.
//!
//! A secret lives in [`Secret`], whose `Debug` and `Display` print `<redacted>`, so an
//! `Auth` or [`PushCredentials`] can be logged, put in an error or dumped with `{:?}`
//! without exposing anything; only [`Secret::expose`] gives the text, at the point
//! where it goes on the wire. The challenge parser is pure, so the token flow's
//! decisions are tested without a server.

use std::collections::BTreeMap;
use std::fmt;

use crate::reference::{DOCKER_HUB, DOCKER_HUB_CONFIG_KEY};

/// A password or token. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    /// The secret text, for the request that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Secret {
        Secret(text)
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Secret {
        Secret(text.to_string())
    }
}

/// How to authenticate to one registry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Auth {
    /// No credentials (public pulls, loopback test registries).
    #[default]
    Anonymous,
    /// Username and password: sent as Basic, or used to obtain a bearer token.
    Basic {
        /// User name (not secret; shown in messages).
        user: String,
        /// Password.
        pass: Secret,
    },
    /// A registry bearer token, sent as is.
    Bearer(Secret),
    /// An OAuth2 refresh token (Docker config `identitytoken`), exchanged for a bearer token.
    IdentityToken(Secret),
}

impl Auth {
    /// Username + password.
    pub fn basic(user: impl Into<String>, pass: impl Into<Secret>) -> Auth {
        Auth::Basic {
            user: user.into(),
            pass: pass.into(),
        }
    }

    /// The same credential in the shape Docker's push API (bollard's
    /// `DockerCredentials`) takes, for `registry` as named in the reference.
    pub fn push_credentials(&self, registry: &str) -> PushCredentials {
        let serveraddress = if registry == DOCKER_HUB {
            DOCKER_HUB_CONFIG_KEY.to_string()
        } else {
            registry.to_string()
        };
        let mut creds = PushCredentials {
            username: None,
            password: None,
            identitytoken: None,
            registrytoken: None,
            serveraddress,
        };
        match self {
            Auth::Anonymous => {}
            Auth::Basic { user, pass } => {
                creds.username = Some(user.clone());
                creds.password = Some(pass.clone());
            }
            Auth::Bearer(token) => creds.registrytoken = Some(token.clone()),
            Auth::IdentityToken(token) => creds.identitytoken = Some(token.clone()),
        }
        creds
    }
}

impl fmt::Display for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Anonymous => f.write_str("no credentials"),
            Auth::Basic { user, .. } => write!(f, "the password of user {user:?}"),
            Auth::Bearer(_) => f.write_str("a bearer token"),
            Auth::IdentityToken(_) => f.write_str("an identity token"),
        }
    }
}

/// Credentials for the Docker Engine's push (`X-Registry-Auth`), field for field what
/// bollard's `DockerCredentials` holds. Secrets stay redacted in `Debug`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushCredentials {
    /// User name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<Secret>,
    /// OAuth2 refresh token.
    pub identitytoken: Option<Secret>,
    /// Registry bearer token.
    pub registrytoken: Option<Secret>,
    /// Registry address as the daemon expects it (`host:port`; the Hub's v1 URL).
    pub serveraddress: String,
}

/// What a `WWW-Authenticate` header asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// Get a token from `realm` for `service` and `scope`.
    Bearer {
        /// Token endpoint URL.
        realm: String,
        /// `service` parameter to send back.
        service: Option<String>,
        /// `scope` the registry wants for this request.
        scope: Option<String>,
    },
    /// Send `Authorization: Basic`.
    Basic,
}

impl Challenge {
    /// Parses one header value; `None` for schemes we do not speak or a Bearer without realm.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => Some(Challenge::Basic),
            "bearer" => {
                let mut params = auth_params(rest);
                let realm = params.remove("realm").filter(|r| !r.is_empty())?;
                Some(Challenge::Bearer {
                    realm,
                    service: params.remove("service"),
                    scope: params.remove("scope"),
                })
            }
            _ => None,
        }
    }
}

/// The scopes to ask a token service for: the one this request needs, then each scope the
/// registry's challenge names (space-separated, per the token spec), without repeats. Each
/// becomes its own `scope=` parameter.
pub(crate) fn token_scopes(ours: Option<&str>, challenge: Option<&str>) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    let all = ours
        .into_iter()
        .chain(challenge.into_iter().flat_map(str::split_whitespace));
    for scope in all {
        let scope = scope.trim();
        if !scope.is_empty() && !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_string());
        }
    }
    scopes
}

/// Whether the token service at `realm` may be used for a registry reached with
/// `registry_scheme`: an HTTPS registry only with an HTTPS realm, where nobody on the path
/// reads the password or refresh token sent there, nor swaps the token it hands back.
pub(crate) fn realm_allowed(registry_scheme: &str, realm: &url::Url) -> bool {
    registry_scheme != "https" || realm.scheme() == "https"
}

/// `key=value` or `key="quoted, value"` pairs separated by commas; keys lowercased.
fn auth_params(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        out.insert(key, value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let secret = "hunter2-very-secret";
        let auths = [
            Auth::basic("alice", secret),
            Auth::Bearer(secret.into()),
            Auth::IdentityToken(secret.into()),
        ];
        for auth in &auths {
            for text in [
                format!("{auth:?}"),
                format!("{auth:#?}"),
                format!("{auth}"),
                format!("{:?}", auth.push_credentials("127.0.0.1:5000")),
            ] {
                assert!(!text.contains(secret), "{text}");
            }
        }
        assert!(format!("{:?}", auths[0]).contains("alice"));
        assert_eq!(Secret::from(secret).expose(), secret);
    }

    #[test]
    fn push_credentials_shape() {
        let c = Auth::basic("u", "p").push_credentials("127.0.0.1:5000");
        assert_eq!(c.username.as_deref(), Some("u"));
        assert_eq!(c.password.as_ref().map(Secret::expose), Some("p"));
        assert_eq!(c.serveraddress, "127.0.0.1:5000");
        let c = Auth::IdentityToken("t".into()).push_credentials("docker.io");
        assert_eq!(c.identitytoken.as_ref().map(Secret::expose), Some("t"));
        assert_eq!(c.serveraddress, DOCKER_HUB_CONFIG_KEY);
        assert_eq!(
            Auth::Anonymous.push_credentials("h:1"),
            PushCredentials {
                serveraddress: "h:1".into(),
                ..Default::default()
            }
        );
    }

    #[test]
    fn one_scope_parameter_per_scope() {
        assert_eq!(
            token_scopes(
                Some("repository:qus:pull,push"),
                Some("repository:qus:pull  repository:other:pull repository:qus:pull,push")
            ),
            [
                "repository:qus:pull,push",
                "repository:qus:pull",
                "repository:other:pull"
            ]
        );
        assert_eq!(token_scopes(None, None), Vec::<String>::new());
        assert_eq!(token_scopes(None, Some(" a b ")), ["a", "b"]);
    }

    #[test]
    fn https_registries_use_https_realms_only() {
        let http = url::Url::parse("http://auth.example/token").unwrap();
        let https = url::Url::parse("https://auth.example/token").unwrap();
        assert!(!realm_allowed("https", &http));
        assert!(realm_allowed("https", &https));
        assert!(realm_allowed("http", &http));
        assert!(realm_allowed("http", &https));
    }

    #[test]
    fn parses_challenges() {
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="http://127.0.0.1:1/token",service="reg",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/token".into(),
                service: Some("reg".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            Challenge::parse(r#"bearer  realm=http://x/t , service="s""#),
            Some(Challenge::Bearer {
                realm: "http://x/t".into(),
                service: Some("s".into()),
                scope: None
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="qus-test""#),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse(r#"Bearer service="s""#), None);
        assert_eq!(Challenge::parse("Negotiate"), None);
        assert_eq!(Challenge::parse(""), None);
        assert_eq!(
            auth_params(r#"a="x\"y",b=2"#).get("a").map(String::as_str),
            Some("x\"y")
        );
    }
}
