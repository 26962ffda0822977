//! Which container engine qus talks to, chosen the way the docker CLI chooses, so that a
//! machine set up for `docker` (a context, `DOCKER_HOST`, Podman's socket) needs nothing
//! more for qus.
//!
//! The order is the CLI's: `--context`, then `DOCKER_HOST`, then `DOCKER_CONTEXT`, then
//! `currentContext` of `$DOCKER_CONFIG/config.json`, else the default socket. A context
//! `NAME` is stored under `$DOCKER_CONFIG/contexts/meta/<sha256(NAME)>/meta.json` (its
//! `Endpoints.docker`), its TLS material under `contexts/tls/<sha256(NAME)>/docker/`; the
//! context `default` is the default socket (or `DOCKER_HOST`).
//!
//! Resolution is pure over the values `app` reads at the edge and a [`Files`] reader, so
//! every rule is unit-tested on an in-memory config folder; the endpoint carries how it
//! was chosen, so a connection error can say which setting to change. Talking to the
//! engine is [`docker`]'s job; [`build_context`] writes what its classic builder reads.

pub(crate) mod build_context;
pub(crate) mod docker;

use serde::Deserialize;
use sha2::Digest as _;
use std::path::{Path, PathBuf};

/// The engine when nothing selects another.
pub(crate) const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Engine selection as resolved by `app` (or the error, reported when a command first
/// needs the engine: `qus release` without `--builder dockerfile` never does).
pub(crate) type Engine = Result<Endpoint, EngineError>;

/// The settings engine selection reads, as plain values (empty variables already dropped).
#[derive(Debug, Clone, Default)]
pub(crate) struct EngineEnv {
    /// `--context NAME`.
    pub context_flag: Option<String>,
    /// `DOCKER_HOST`.
    pub docker_host: Option<String>,
    /// `DOCKER_CONTEXT`.
    pub docker_context: Option<String>,
    /// `DOCKER_TLS_VERIFY` is set (to anything but an empty string).
    pub tls_verify: bool,
    /// `DOCKER_CERT_PATH`; `None`: the config folder, as the CLI does.
    pub cert_path: Option<PathBuf>,
    /// `$DOCKER_CONFIG`, else `~/.docker`.
    pub config_dir: PathBuf,
}

/// The few file reads resolution needs (the disk at the edge, `app`; a folder in memory in
/// the tests).
pub(crate) trait Files {
    /// The file's text; `Ok(None)` when there is no such file.
    fn read(&self, path: &Path) -> std::io::Result<Option<String>>;
    /// Whether `path` is a file.
    fn is_file(&self, path: &Path) -> bool;
}

/// An engine to connect to, and why this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// The address as configured (`unix:///run/podman/podman.sock`, `tcp://h:2376`).
    pub host: String,
    /// How to reach it.
    pub transport: Transport,
    /// How it was chosen, for messages: `DOCKER_HOST`, `context podman from DOCKER_CONTEXT`.
    pub origin: String,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.host, self.origin)
    }
}

/// How an endpoint is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Transport {
    /// A unix socket.
    Unix(PathBuf),
    /// Plain HTTP to `host:port`.
    Tcp(String),
    /// HTTPS to `host:port`, the server checked against `ca`, with a client certificate.
    Tls {
        /// `host:port`.
        addr: String,
        /// The CA the engine's certificate must chain to.
        ca: PathBuf,
        /// The client certificate.
        cert: PathBuf,
        /// Its key.
        key: PathBuf,
    },
}

/// Why no engine could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EngineError {
    /// The named context is not in the config folder.
    #[error(
        "unknown docker context \"{name}\" ({origin}): {meta} does not exist (a context NAME \
         is read from <docker config>/contexts/meta/<sha256 of NAME>/meta.json; `docker \
         context ls` lists them, `docker context create` makes one)"
    )]
    UnknownContext {
        /// The name.
        name: String,
        /// Where the name came from.
        origin: String,
        /// The file that would describe it.
        meta: PathBuf,
    },
    /// A file could not be read or parsed.
    #[error("{what} ({origin}): {message}")]
    Config {
        /// The file and what was in it.
        what: String,
        /// Where the choice came from.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// The address cannot be used.
    #[error("engine address {host} ({origin}): {message}")]
    Address {
        /// The address.
        host: String,
        /// Where it came from.
        origin: String,
        /// What is wrong, and what to do.
        message: String,
    },
}

#[derive(Deserialize)]
struct CliConfig {
    #[serde(rename = "currentContext", default)]
    current_context: Option<String>,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(rename = "Endpoints", default)]
    endpoints: Endpoints,
}

#[derive(Deserialize, Default)]
struct Endpoints {
    docker: Option<DockerEndpoint>,
}

#[derive(Deserialize)]
struct DockerEndpoint {
    #[serde(rename = "Host", default)]
    host: Option<String>,
    #[serde(rename = "SkipTLSVerify", default)]
    skip_tls_verify: bool,
}

/// The folder of a context's metadata or TLS material: the CLI names it by the sha256 of
/// the context's name, so any name is a valid folder name.
pub(crate) fn context_dir(config_dir: &Path, kind: &str, name: &str) -> PathBuf {
    let hash = hex::encode(sha2::Sha256::digest(name.as_bytes()));
    config_dir.join("contexts").join(kind).join(hash)
}

/// Chooses the engine as the docker CLI would.
pub(crate) fn resolve(env: &EngineEnv, files: &dyn Files) -> Engine {
    if let Some(name) = &env.context_flag {
        return context(env, files, name, &format!("context {name} from --context"));
    }
    if let Some(host) = &env.docker_host {
        return from_env_host(env, host, "DOCKER_HOST");
    }
    if let Some(name) = &env.docker_context {
        return context(
            env,
            files,
            name,
            &format!("context {name} from DOCKER_CONTEXT"),
        );
    }
    let config = env.config_dir.join("config.json");
    let origin = format!("currentContext of {}", config.display());
    let text = files.read(&config).map_err(|e| EngineError::Config {
        what: config.display().to_string(),
        origin: origin.clone(),
        message: e.to_string(),
    })?;
    let current = match text {
        None => None,
        Some(t) => {
            serde_json::from_str::<CliConfig>(&t)
                .map_err(|e| EngineError::Config {
                    what: config.display().to_string(),
                    origin: origin.clone(),
                    message: format!("not a docker CLI config: {e}"),
                })?
                .current_context
        }
    };
    match current.filter(|c| !c.is_empty()) {
        Some(name) => context(
            env,
            files,
            &name,
            &format!("context {name} from {}", config.display()),
        ),
        None => from_env_host(env, DEFAULT_HOST, "the default socket"),
    }
}

/// `DOCKER_HOST` or the default socket, with `DOCKER_TLS_VERIFY` deciding TLS for tcp.
fn from_env_host(env: &EngineEnv, host: &str, origin: &str) -> Engine {
    let tls = if env.tls_verify {
        let dir = env
            .cert_path
            .clone()
            .unwrap_or_else(|| env.config_dir.clone());
        Some(Material {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        })
    } else {
        None
    };
    endpoint(host, origin, tls)
}

/// A context by name.
fn context(env: &EngineEnv, files: &dyn Files, name: &str, origin: &str) -> Engine {
    if name == "default" {
        // The CLI's `default` context is the environment's engine.
        return match &env.docker_host {
            Some(host) => from_env_host(env, host, &format!("{origin}: DOCKER_HOST")),
            None => from_env_host(env, DEFAULT_HOST, &format!("{origin}: the default socket")),
        };
    }
    let meta_path = context_dir(&env.config_dir, "meta", name).join("meta.json");
    let config_err = |message: String| EngineError::Config {
        what: meta_path.display().to_string(),
        origin: origin.to_string(),
        message,
    };
    let text = files
        .read(&meta_path)
        .map_err(|e| config_err(e.to_string()))?
        .ok_or_else(|| EngineError::UnknownContext {
            name: name.to_string(),
            origin: origin.to_string(),
            meta: meta_path.clone(),
        })?;
    let meta: Meta = serde_json::from_str(&text)
        .map_err(|e| config_err(format!("not a docker context: {e}")))?;
    let docker = meta
        .endpoints
        .docker
        .ok_or_else(|| config_err("the context has no docker endpoint".into()))?;
    let host = docker
        .host
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| DEFAULT_HOST.to_string());
    let tls_dir = context_dir(&env.config_dir, "tls", name).join("docker");
    let (ca, cert, key) = (
        tls_dir.join("ca.pem"),
        tls_dir.join("cert.pem"),
        tls_dir.join("key.pem"),
    );
    let has_material = [&ca, &cert, &key].iter().any(|p| files.is_file(p));
    let tcp = host.starts_with("tcp://");
    if tcp && docker.skip_tls_verify {
        return Err(EngineError::Address {
            host,
            origin: origin.to_string(),
            message: "the context sets SkipTLSVerify, which qus does not support (it always \
                      checks the engine's certificate): give the context the engine's CA \
                      (`docker context update --docker \"host=…,ca=ca.pem,cert=…,key=…\"`)"
                .into(),
        });
    }
    let tls = has_material.then_some(Material { ca, cert, key });
    endpoint(&host, origin, tls)
}

/// The TLS files of an endpoint.
struct Material {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// Parses an address; `tls` applies to `tcp://` only, as with the CLI.
fn endpoint(host: &str, origin: &str, tls: Option<Material>) -> Engine {
    let bad = |message: String| EngineError::Address {
        host: host.to_string(),
        origin: origin.to_string(),
        message,
    };
    let (scheme, rest) = host.split_once("://").ok_or_else(|| {
        bad("not an address: expected unix:///path/to.sock or tcp://host:port".into())
    })?;
    let transport = match scheme {
        "unix" => {
            if !rest.starts_with('/') {
                return Err(bad("a unix socket needs an absolute path".into()));
            }
            Transport::Unix(PathBuf::from(rest))
        }
        "tcp" => {
            let authority = rest.trim_end_matches('/');
            if authority.is_empty() || authority.contains('/') {
                return Err(bad("expected tcp://host[:port]".into()));
            }
            // The CLI's default ports: 2376 for TLS, 2375 without.
            let has_port = authority
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.ends_with(':') && p.parse::<u16>().is_ok());
            let with_port = |port: u16| {
                if has_port {
                    authority.to_string()
                } else {
                    format!("{authority}:{port}")
                }
            };
            match tls {
                None => Transport::Tcp(with_port(2375)),
                Some(m) => Transport::Tls {
                    addr: with_port(2376),
                    ca: m.ca,
                    cert: m.cert,
                    key: m.key,
                },
            }
        }
        "ssh" => {
            return Err(bad(
                "ssh:// engines are not supported by qus: forward the engine's socket and \
                 point DOCKER_HOST at it, e.g. `ssh -fNT -L /tmp/engine.sock:/var/run/docker.sock \
                 user@host` then DOCKER_HOST=unix:///tmp/engine.sock"
                    .into(),
            ))
        }
        other => {
            return Err(bad(format!(
                "the scheme {other}:// is not supported: use unix:// or tcp://"
            )))
        }
    };
    let origin = match &transport {
        Transport::Tls { .. } => format!("{origin}, TLS"),
        _ => origin.to_string(),
    };
    Ok(Endpoint {
        host: host.to_string(),
        transport,
        origin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Mem(HashMap<PathBuf, String>);

    impl Mem {
        fn with(mut self, path: PathBuf, text: &str) -> Mem {
            self.0.insert(path, text.to_string());
            self
        }
    }

    impl Files for Mem {
        fn read(&self, path: &Path) -> std::io::Result<Option<String>> {
            Ok(self.0.get(path).cloned())
        }
        fn is_file(&self, path: &Path) -> bool {
            self.0.contains_key(path)
        }
    }

    fn env() -> EngineEnv {
        EngineEnv {
            config_dir: PathBuf::from("/home/u/.docker"),
            ..Default::default()
        }
    }

    fn meta(name: &str) -> PathBuf {
        context_dir(Path::new("/home/u/.docker"), "meta", name).join("meta.json")
    }

    fn meta_json(host: &str) -> String {
        format!(
            r#"{{"Name":"x","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#
        )
    }

    #[test]
    fn the_context_folder_is_named_by_the_sha256_of_the_name() {
        // The docker CLI names the folder by the digest of the name (`digest.FromString`).
        assert_eq!(
            context_dir(Path::new("/c"), "meta", "default"),
            PathBuf::from(
                "/c/contexts/meta/37a8eec1ce19687d132fe29051dca629d164e2c4958ba141d5f4133a33f0688f"
            )
        );
    }

    #[test]
    fn nothing_set_is_the_default_socket() {
        let e = resolve(&env(), &Mem::default()).unwrap();
        assert_eq!(e.host, DEFAULT_HOST);
        assert_eq!(e.transport, Transport::Unix("/var/run/docker.sock".into()));
        assert_eq!(e.origin, "the default socket");
    }

    #[test]
    fn docker_host_beats_docker_context_and_the_config() {
        let files = Mem::default()
            .with(
                "/home/u/.docker/config.json".into(),
                r#"{"currentContext":"pm"}"#,
            )
            .with(meta("pm"), &meta_json("unix:///run/podman/podman.sock"));
        let mut env = env();
        env.docker_host = Some("tcp://127.0.0.1:9".into());
        env.docker_context = Some("pm".into());
        let e = resolve(&env, &files).unwrap();
        assert_eq!(e.transport, Transport::Tcp("127.0.0.1:9".into()));
        assert_eq!(e.origin, "DOCKER_HOST");
    }

    #[test]
    fn the_context_flag_beats_docker_host() {
        let files = Mem::default().with(meta("pm"), &meta_json("unix:///pm.sock"));
        let mut env = env();
        env.docker_host = Some("tcp://127.0.0.1:9".into());
        env.context_flag = Some("pm".into());
        let e = resolve(&env, &files).unwrap();
        assert_eq!(e.transport, Transport::Unix("/pm.sock".into()));
        assert_eq!(e.origin, "context pm from --context");
    }

    #[test]
    fn docker_context_beats_the_config() {
        let files = Mem::default()
            .with(
                "/home/u/.docker/config.json".into(),
                r#"{"currentContext":"a"}"#,
            )
            .with(meta("a"), &meta_json("unix:///a.sock"))
            .with(meta("b"), &meta_json("unix:///b.sock"));
        let mut env = env();
        env.docker_context = Some("b".into());
        let e = resolve(&env, &files).unwrap();
        assert_eq!(e.host, "unix:///b.sock");
        assert_eq!(e.origin, "context b from DOCKER_CONTEXT");
    }

    #[test]
    fn the_config_current_context_is_used_and_named() {
        let files = Mem::default()
            .with(
                "/home/u/.docker/config.json".into(),
                r#"{"auths":{},"currentContext":"podman"}"#,
            )
            .with(meta("podman"), &meta_json("unix:///run/podman/podman.sock"));
        let e = resolve(&env(), &files).unwrap();
        assert_eq!(e.host, "unix:///run/podman/podman.sock");
        assert_eq!(e.origin, "context podman from /home/u/.docker/config.json");
        assert_eq!(
            e.to_string(),
            "unix:///run/podman/podman.sock (context podman from /home/u/.docker/config.json)"
        );
    }

    #[test]
    fn the_default_context_is_the_default_socket_or_docker_host() {
        let mut env = env();
        env.docker_context = Some("default".into());
        let e = resolve(&env, &Mem::default()).unwrap();
        assert_eq!(e.host, DEFAULT_HOST);
        env.context_flag = Some("default".into());
        env.docker_host = Some("unix:///other.sock".into());
        let e = resolve(&env, &Mem::default()).unwrap();
        assert_eq!(e.host, "unix:///other.sock");
        assert_eq!(e.origin, "context default from --context: DOCKER_HOST");
    }

    #[test]
    fn an_unknown_context_says_where_it_looked() {
        let mut env = env();
        env.docker_context = Some("nope".into());
        let err = resolve(&env, &Mem::default()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("\"nope\""), "{text}");
        assert!(text.contains("DOCKER_CONTEXT"), "{text}");
        assert!(text.contains(&meta("nope").display().to_string()), "{text}");
    }

    #[test]
    fn tls_material_in_the_context_means_tls() {
        let tls = context_dir(Path::new("/home/u/.docker"), "tls", "remote").join("docker");
        let files = Mem::default()
            .with(meta("remote"), &meta_json("tcp://engine.example:2376"))
            .with(tls.join("ca.pem"), "ca")
            .with(tls.join("cert.pem"), "cert")
            .with(tls.join("key.pem"), "key");
        let mut env = env();
        env.docker_context = Some("remote".into());
        let e = resolve(&env, &files).unwrap();
        assert_eq!(
            e.transport,
            Transport::Tls {
                addr: "engine.example:2376".into(),
                ca: tls.join("ca.pem"),
                cert: tls.join("cert.pem"),
                key: tls.join("key.pem"),
            }
        );
        assert_eq!(e.origin, "context remote from DOCKER_CONTEXT, TLS");
    }

    #[test]
    fn a_tcp_context_without_material_is_plain_and_skip_verify_is_refused() {
        let files = Mem::default().with(meta("plain"), &meta_json("tcp://build-box.example"));
        let mut env = env();
        env.docker_context = Some("plain".into());
        let e = resolve(&env, &files).unwrap();
        assert_eq!(e.transport, Transport::Tcp("build-box.example:2375".into()));

        let files = Mem::default().with(
            meta("skip"),
            r#"{"Endpoints":{"docker":{"Host":"tcp://h:2376","SkipTLSVerify":true}}}"#,
        );
        env.docker_context = Some("skip".into());
        let err = resolve(&env, &files).unwrap_err().to_string();
        assert!(err.contains("SkipTLSVerify"), "{err}");
    }

    #[test]
    fn docker_tls_verify_uses_the_cert_path() {
        let mut env = env();
        env.docker_host = Some("tcp://h".into());
        env.tls_verify = true;
        let e = resolve(&env, &Mem::default()).unwrap();
        assert_eq!(
            e.transport,
            Transport::Tls {
                addr: "h:2376".into(),
                ca: "/home/u/.docker/ca.pem".into(),
                cert: "/home/u/.docker/cert.pem".into(),
                key: "/home/u/.docker/key.pem".into(),
            }
        );
        env.cert_path = Some("/certs".into());
        let e = resolve(&env, &Mem::default()).unwrap();
        assert!(
            matches!(e.transport, Transport::Tls { ca, .. } if ca == Path::new("/certs/ca.pem"))
        );
        // TLS settings do not apply to a unix socket.
        env.docker_host = Some("unix:///s.sock".into());
        let e = resolve(&env, &Mem::default()).unwrap();
        assert_eq!(e.transport, Transport::Unix("/s.sock".into()));
    }

    #[test]
    fn ssh_and_unknown_schemes_say_what_to_do() {
        let mut env = env();
        env.docker_host = Some("ssh://me@box".into());
        let err = resolve(&env, &Mem::default()).unwrap_err().to_string();
        assert!(err.contains("ssh -fNT -L"), "{err}");
        assert!(err.contains("DOCKER_HOST"), "{err}");
        env.docker_host = Some("npipe:////./pipe/docker_engine".into());
        let err = resolve(&env, &Mem::default()).unwrap_err().to_string();
        assert!(err.contains("npipe://"), "{err}");
        env.docker_host = Some("/var/run/docker.sock".into());
        assert!(resolve(&env, &Mem::default()).is_err());
    }

    #[test]
    fn a_broken_config_or_meta_names_the_file() {
        let files = Mem::default().with("/home/u/.docker/config.json".into(), "{");
        let err = resolve(&env(), &files).unwrap_err().to_string();
        assert!(err.contains("/home/u/.docker/config.json"), "{err}");
        let files = Mem::default().with(meta("x"), r#"{"Endpoints":{}}"#);
        let mut env = env();
        env.docker_context = Some("x".into());
        let err = resolve(&env, &files).unwrap_err().to_string();
        assert!(err.contains("no docker endpoint"), "{err}");
    }
}
