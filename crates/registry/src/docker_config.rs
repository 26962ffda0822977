//! Credentials from the user's Docker config, as `docker login` left them.
//!
//! Users already logged in with the Docker CLI; qus must push with the same identity
//! without asking again and without running `docker`. This reads
//! `$DOCKER_CONFIG/config.json` (else `~/.docker/config.json`) the way the CLI does:
//! a `credHelpers` entry for the registry wins, then `credsStore`, then the inline
//! `auths` entry (base64 `auth`, or `username`/`password`, or `identitytoken`). A
//! helper is run as `docker-credential-<name> get` with the server address on stdin.
//!
//! Parsing and the lookup decision are pure ([`DockerConfig::lookup`]); only
//! [`DockerConfig::resolve`] runs a process, and never for longer than
//! [`HELPER_TIMEOUT`]: a helper waiting on a locked keyring or a password prompt must not
//! hang a release.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use crate::auth::{Auth, Secret};
use crate::error::{truncate, Error, Result};
use crate::reference::{DOCKER_HUB, DOCKER_HUB_API, DOCKER_HUB_CONFIG_KEY};

#[derive(Debug, Default, Deserialize)]
struct RawConfig {
    #[serde(default)]
    auths: BTreeMap<String, RawAuth>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Default, Deserialize)]
struct RawAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

// Hand-written so a `{:?}` of the config never shows a secret.
impl std::fmt::Debug for RawAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawAuth")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// How long a credential helper may take before it is killed and the lookup fails.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// The parsed Docker config (only the parts about credentials).
#[derive(Debug, Default)]
pub struct DockerConfig {
    raw: RawConfig,
    source: Option<PathBuf>,
    helper_dir: Option<PathBuf>,
    helper_timeout: Option<Duration>,
}

/// What the config says to do for one registry, before running anything.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Credentials stored in the file itself.
    Inline(Auth),
    /// Ask `docker-credential-<helper>` for `server`.
    Helper {
        /// The helper's suffix (`pass`, `secretservice`, `ecr-login` …).
        helper: String,
        /// What to write on its stdin.
        server: String,
    },
    /// Nothing configured: anonymous.
    None,
}

/// What a credential helper prints.
#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

impl DockerConfig {
    /// Parses config.json text.
    pub fn parse(json: &str) -> Result<DockerConfig> {
        let raw = serde_json::from_str(json).map_err(|e| Error::Credentials {
            registry: "(any)".into(),
            reason: format!("Docker config is not valid: {e}"),
        })?;
        Ok(DockerConfig {
            raw,
            ..Default::default()
        })
    }

    /// Reads `path`; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<DockerConfig> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let mut config = DockerConfig::parse(&text).map_err(|e| match e {
                    Error::Credentials { reason, .. } => Error::Credentials {
                        registry: "(any)".into(),
                        reason: format!("{}: {reason}", path.display()),
                    },
                    e => e,
                })?;
                config.source = Some(path.to_path_buf());
                Ok(config)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DockerConfig::default()),
            Err(e) => Err(Error::Credentials {
                registry: "(any)".into(),
                reason: format!("cannot read {}: {e}", path.display()),
            }),
        }
    }

    /// Reads `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
    pub fn load_default() -> Result<DockerConfig> {
        match default_path() {
            Some(path) => DockerConfig::load(&path),
            None => Ok(DockerConfig::default()),
        }
    }

    /// Looks helpers up in `dir` instead of `PATH` (tests, bundled helpers).
    pub fn with_helper_dir(mut self, dir: impl Into<PathBuf>) -> DockerConfig {
        self.helper_dir = Some(dir.into());
        self
    }

    /// Kills a credential helper that has not answered after `timeout` (default
    /// [`HELPER_TIMEOUT`]).
    pub fn with_helper_timeout(mut self, timeout: Duration) -> DockerConfig {
        self.helper_timeout = Some(timeout);
        self
    }

    /// The file this config was read from, if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// Decides where the credentials for `registry` (as named in a reference) come from.
    pub fn lookup(&self, registry: &str) -> Result<Lookup> {
        let keys = candidate_keys(registry);
        let server = if registry == DOCKER_HUB {
            DOCKER_HUB_CONFIG_KEY.to_string()
        } else {
            registry.to_string()
        };
        let helper = keys
            .iter()
            .find_map(|k| {
                self.raw
                    .cred_helpers
                    .iter()
                    .find(|(key, _)| normalize_key(key) == *k)
            })
            .map(|(_, h)| h.clone())
            .or_else(|| self.raw.creds_store.clone())
            .filter(|h| !h.is_empty());
        if let Some(helper) = helper {
            return Ok(Lookup::Helper { helper, server });
        }
        self.inline(registry)
    }

    fn inline(&self, registry: &str) -> Result<Lookup> {
        let keys = candidate_keys(registry);
        let entry = keys.iter().find_map(|k| {
            self.raw
                .auths
                .iter()
                .find(|(key, _)| normalize_key(key) == *k)
                .map(|(_, v)| v)
        });
        let Some(entry) = entry else {
            return Ok(Lookup::None);
        };
        let bad = |reason: &str| Error::Credentials {
            registry: registry.to_string(),
            reason: reason.to_string(),
        };
        if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
            return Ok(Lookup::Inline(Auth::IdentityToken(token.into())));
        }
        if let Some(token) = entry.registrytoken.as_deref().filter(|t| !t.is_empty()) {
            return Ok(Lookup::Inline(Auth::Bearer(token.into())));
        }
        if let Some(encoded) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| bad("the `auth` entry in the Docker config is not base64"))?;
            let decoded = String::from_utf8(decoded)
                .map_err(|_| bad("the `auth` entry in the Docker config is not UTF-8"))?;
            let (user, pass) = decoded
                .split_once(':')
                .ok_or_else(|| bad("the `auth` entry in the Docker config is not user:password"))?;
            return Ok(Lookup::Inline(Auth::basic(user, pass)));
        }
        match (&entry.username, &entry.password) {
            (Some(user), Some(pass)) if !user.is_empty() => {
                Ok(Lookup::Inline(Auth::basic(user.as_str(), pass.as_str())))
            }
            _ => Ok(Lookup::None),
        }
    }

    /// The credentials for `registry`, running a credential helper when the config
    /// names one. A helper that knows nothing about the registry gives the inline
    /// entry, if any, else anonymous.
    pub fn resolve(&self, registry: &str) -> Result<Auth> {
        match self.lookup(registry)? {
            Lookup::Inline(auth) => Ok(auth),
            Lookup::None => Ok(Auth::Anonymous),
            Lookup::Helper { helper, server } => {
                match self.run_helper(registry, &helper, &server)? {
                    Some(auth) => Ok(auth),
                    None => match self.inline(registry)? {
                        Lookup::Inline(auth) => Ok(auth),
                        _ => Ok(Auth::Anonymous),
                    },
                }
            }
        }
    }

    fn run_helper(&self, registry: &str, helper: &str, server: &str) -> Result<Option<Auth>> {
        let fail = |reason: String| Error::Credentials {
            registry: registry.to_string(),
            reason,
        };
        if helper.contains('/') || helper.contains('\\') {
            return Err(fail(format!(
                "credential helper name {helper:?} contains a path separator"
            )));
        }
        let program = format!("docker-credential-{helper}");
        let path = match &self.helper_dir {
            Some(dir) => dir.join(&program),
            None => PathBuf::from(&program),
        };
        let mut child = Command::new(&path)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(format!("cannot run {program}: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading gives EPIPE: its exit status tells more.
            let _ = stdin.write_all(server.as_bytes());
        }
        // Read both pipes on threads so a chatty helper cannot block on a full pipe while
        // this thread watches the clock.
        let reader = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut out = Vec::new();
                if let Some(mut p) = pipe {
                    let _ = p.read_to_end(&mut out);
                }
                out
            })
        };
        let stdout = reader(
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let stderr = reader(
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let timeout = self.helper_timeout.unwrap_or(HELPER_TIMEOUT);
        let deadline = Instant::now() + timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(fail(format!(
                        "{program} get did not answer within {timeout:?} and was stopped \
                         (is it waiting for a password prompt or a locked keyring?)"
                    )));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => return Err(fail(format!("{program} did not finish: {e}"))),
            }
        };
        let out = std::process::Output {
            status,
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        };
        if !out.status.success() {
            let said = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            if said.to_ascii_lowercase().contains("credentials not found") {
                return Ok(None);
            }
            // The helper's own words, bounded: they are an error message, not a secret.
            return Err(fail(format!(
                "{program} get failed ({}): {}",
                out.status,
                truncate(said.trim(), 200)
            )));
        }
        let answer: HelperAnswer = serde_json::from_slice(&out.stdout).map_err(|_| {
            fail(format!(
                "{program} get printed something that is not its JSON answer"
            ))
        })?;
        if answer.secret.is_empty() {
            return Ok(None);
        }
        // The CLI's convention: this user name marks an identity (refresh) token.
        if answer.username == "<token>" {
            return Ok(Some(Auth::IdentityToken(Secret::new(answer.secret))));
        }
        Ok(Some(Auth::basic(answer.username, answer.secret)))
    }
}

/// Where the Docker CLI keeps its config: `$DOCKER_CONFIG/config.json`, else
/// `$HOME/.docker/config.json` (`None` without either variable).
pub fn default_config_path() -> Option<PathBuf> {
    default_path()
}

fn default_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".docker").join("config.json"))
}

/// `https://host:port/v1/` → `host:port`: config keys may be URLs (old `docker login`).
fn normalize_key(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key).to_string()
}

/// The normalized keys under which `registry`'s credentials may be filed.
fn candidate_keys(registry: &str) -> Vec<String> {
    if registry == DOCKER_HUB {
        vec![
            normalize_key(DOCKER_HUB_CONFIG_KEY),
            DOCKER_HUB.to_string(),
            DOCKER_HUB_API.to_string(),
        ]
    } else {
        vec![registry.to_string()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn auths_with_base64_auth() {
        let json = format!(
            r#"{{"auths":{{"127.0.0.1:5000":{{"auth":"{}"}},"https://127.0.0.2:5000/v1/":{{"auth":"{}"}}}}}}"#,
            b64("alice:pa:ss"),
            b64("bob:pw")
        );
        let c = DockerConfig::parse(&json).unwrap();
        assert_eq!(
            c.lookup("127.0.0.1:5000").unwrap(),
            Lookup::Inline(Auth::basic("alice", "pa:ss"))
        );
        assert_eq!(
            c.resolve("127.0.0.2:5000").unwrap(),
            Auth::basic("bob", "pw")
        );
        assert_eq!(c.lookup("127.0.0.3:5000").unwrap(), Lookup::None);
        assert_eq!(c.resolve("127.0.0.3:5000").unwrap(), Auth::Anonymous);
    }

    #[test]
    fn username_password_and_tokens() {
        let json = r#"{"auths":{
            "a.test":{"username":"u","password":"p"},
            "b.test":{"username":"u","identitytoken":"refresh"},
            "c.test":{"registrytoken":"bearer"},
            "d.test":{}
        }}"#;
        let c = DockerConfig::parse(json).unwrap();
        assert_eq!(c.resolve("a.test").unwrap(), Auth::basic("u", "p"));
        assert_eq!(
            c.resolve("b.test").unwrap(),
            Auth::IdentityToken("refresh".into())
        );
        assert_eq!(c.resolve("c.test").unwrap(), Auth::Bearer("bearer".into()));
        assert_eq!(c.resolve("d.test").unwrap(), Auth::Anonymous);
    }

    #[test]
    fn hub_credentials_are_found_under_the_cli_key() {
        let json = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}}}}}}"#,
            b64("hubuser:hubpass")
        );
        let c = DockerConfig::parse(&json).unwrap();
        assert_eq!(
            c.resolve("docker.io").unwrap(),
            Auth::basic("hubuser", "hubpass")
        );
    }

    #[test]
    fn helpers_take_precedence() {
        let json = format!(
            r#"{{"auths":{{"h.test":{{"auth":"{}"}}}},"credsStore":"store","credHelpers":{{"h.test":"special"}}}}"#,
            b64("inline:pw")
        );
        let c = DockerConfig::parse(&json).unwrap();
        assert_eq!(
            c.lookup("h.test").unwrap(),
            Lookup::Helper {
                helper: "special".into(),
                server: "h.test".into()
            }
        );
        assert_eq!(
            c.lookup("other.test").unwrap(),
            Lookup::Helper {
                helper: "store".into(),
                server: "other.test".into()
            }
        );
        assert_eq!(
            c.lookup("docker.io").unwrap(),
            Lookup::Helper {
                helper: "store".into(),
                server: DOCKER_HUB_CONFIG_KEY.into()
            }
        );
    }

    #[test]
    fn bad_entries_are_typed_errors_without_secrets() {
        let c = DockerConfig::parse(r#"{"auths":{"h.test":{"auth":"!!!"}}}"#).unwrap();
        assert!(matches!(
            c.resolve("h.test"),
            Err(Error::Credentials { .. })
        ));
        let c = DockerConfig::parse(&format!(
            r#"{{"auths":{{"h.test":{{"auth":"{}"}}}}}}"#,
            b64("nocolon-secret")
        ))
        .unwrap();
        let err = c.resolve("h.test").unwrap_err().to_string();
        assert!(!err.contains("nocolon-secret"), "{err}");
        assert!(DockerConfig::parse("not json").is_err());
        let dbg = format!(
            "{:?}",
            DockerConfig::parse(r#"{"auths":{"h":{"username":"u","password":"topsecret"}}}"#)
                .unwrap()
        );
        assert!(!dbg.contains("topsecret"), "{dbg}");
    }

    #[cfg(unix)]
    #[test]
    fn runs_credential_helpers() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, body: &str| {
            let p = dir.path().join(format!("docker-credential-{name}"));
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        // Echoes back the server it was asked about, proving stdin carries it.
        write(
            "ok",
            r#"[ "$1" = get ] || exit 3; read -r s || true; printf '{"ServerURL":"%s","Username":"u-%s","Secret":"s3"}' "$s" "$s""#,
        );
        write(
            "token",
            r#"cat >/dev/null; echo '{"Username":"<token>","Secret":"refresh"}'"#,
        );
        write(
            "none",
            r#"cat >/dev/null; echo 'credentials not found in native keychain'; exit 1"#,
        );
        write(
            "broken",
            r#"cat >/dev/null; echo 'helper exploded' >&2; exit 2"#,
        );
        let config = |helper: &str| {
            DockerConfig::parse(&format!(
                r#"{{"auths":{{"h.test":{{"auth":"{}"}}}},"credHelpers":{{"h.test":"{helper}"}}}}"#,
                b64("inline:pw")
            ))
            .unwrap()
            .with_helper_dir(dir.path())
        };
        assert_eq!(
            config("ok").resolve("h.test").unwrap(),
            Auth::basic("u-h.test", "s3")
        );
        assert_eq!(
            config("token").resolve("h.test").unwrap(),
            Auth::IdentityToken("refresh".into())
        );
        // Not found in the helper: fall back to the inline entry.
        assert_eq!(
            config("none").resolve("h.test").unwrap(),
            Auth::basic("inline", "pw")
        );
        let err = config("broken").resolve("h.test").unwrap_err().to_string();
        assert!(
            err.contains("h.test") && err.contains("helper exploded"),
            "{err}"
        );
        // A helper that never answers is stopped, in bounded time, with a message that says so.
        write("stuck", "exec sleep 30");
        let started = Instant::now();
        let err = config("stuck")
            .with_helper_timeout(Duration::from_millis(300))
            .resolve("h.test")
            .unwrap_err()
            .to_string();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(err.contains("did not answer within"), "{err}");
        let err = config("missing").resolve("h.test").unwrap_err().to_string();
        assert!(err.contains("docker-credential-missing"), "{err}");
        assert!(config("../x").resolve("h.test").is_err());
    }

    #[test]
    fn missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let c = DockerConfig::load(&dir.path().join("config.json")).unwrap();
        assert_eq!(c.resolve("127.0.0.1:5000").unwrap(), Auth::Anonymous);
        std::fs::write(dir.path().join("config.json"), "{").unwrap();
        let err = DockerConfig::load(&dir.path().join("config.json")).unwrap_err();
        assert!(err.to_string().contains("config.json"), "{err}");
    }
}
