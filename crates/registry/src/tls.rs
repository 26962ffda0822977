//! The HTTP clients a registry is reached with: its private CA and client certificate from
//! Docker's `certs.d`, and no proxy for loopback.
//!
//! qus must trust what the Docker daemon trusts for a registry, or a company registry
//! behind a private CA works with `docker push` and fails with qus. The daemon reads
//! `/etc/docker/certs.d/<host:port>/`: every `*.crt` is a CA added to the system roots,
//! every `<name>.cert` + `<name>.key` pair a client certificate; this module reads the same
//! folder the same way ([`CertsDir`]). The material applies to everything done on behalf
//! of that registry (its API, its token service, its upload locations), as the daemon's
//! transport does.
//!
//! A loopback registry is reached directly even when `HTTPS_PROXY`/`HTTP_PROXY` are set and
//! `NO_PROXY` does not list it: a proxy elsewhere cannot reach this machine's loopback, so
//! going through it can only fail. Other hosts keep the environment's proxies.
//!
//! TLS is rustls with ring as its crypto provider ([`tls_provider`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Url;

use crate::error::{Error, Result};
use crate::protocol::is_loopback_url;
use crate::trust::{CertsDVerifier, Pinned};

/// Makes rustls's ring provider the process default, once, before any client is built:
/// reqwest (and bollard's TLS) are built without one (no aws-lc C build) and panic without
/// a default. Call it before any other rustls client of the process.
pub fn tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // Err means another provider was installed first (by the application): that one serves.
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Where the Docker daemon looks for per-registry certificates on Linux.
pub const DOCKER_CERTS_D: &str = "/etc/docker/certs.d";

/// What a `certs.d/<host:port>/` folder holds, as the Docker daemon reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertsDir {
    /// The folder.
    pub dir: PathBuf,
    /// CA certificates (`*.crt`), trusted on top of the system's roots.
    pub roots: Vec<PathBuf>,
    /// Client certificate and key (`<name>.cert` + `<name>.key`), the first by name.
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl CertsDir {
    /// Reads `root/<registry>/` (registry as named in references: `host:port`). `None`
    /// when there is no such folder. A `.cert` without its `.key` (or the reverse) is an
    /// error, as it is for the daemon.
    pub fn load(root: &Path, registry: &str) -> Result<Option<CertsDir>> {
        let dir = root.join(registry);
        let fail = |path: &Path, reason: String| Error::Tls {
            registry: registry.to_string(),
            path: path.display().to_string(),
            reason,
        };
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            // `/etc/docker/certs.d` unreadable to this user: as if absent, the daemon's business.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Ok(None),
            Err(e) => return Err(fail(&dir, format!("cannot read the folder: {e}"))),
        };
        let mut names: Vec<PathBuf> = entries
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()
            .map_err(|e| fail(&dir, format!("cannot read the folder: {e}")))?;
        names.sort();
        let mut found = CertsDir {
            dir: dir.clone(),
            ..CertsDir::default()
        };
        for path in &names {
            match path.extension().and_then(|e| e.to_str()) {
                Some("crt") => found.roots.push(path.clone()),
                Some("cert") => {
                    let key = path.with_extension("key");
                    if !key.is_file() {
                        return Err(fail(
                            path,
                            format!(
                                "client certificate without its key {} (CA certificates must end in .crt)",
                                key.display()
                            ),
                        ));
                    }
                    found.identity.get_or_insert((path.clone(), key));
                }
                Some("key") => {
                    let cert = path.with_extension("cert");
                    if !cert.is_file() {
                        return Err(fail(
                            path,
                            format!("key without its client certificate {}", cert.display()),
                        ));
                    }
                }
                _ => {}
            }
        }
        Ok(Some(found))
    }
}

/// One reqwest client per registry and route (direct or through the environment's proxies),
/// built on first use.
pub(crate) struct HttpClients {
    certs_root: Option<PathBuf>,
    connect_timeout: Duration,
    user_agent: String,
    certs: Mutex<HashMap<String, Option<Arc<CertsDir>>>>,
    built: Mutex<HashMap<(String, bool), reqwest::Client>>,
    /// The verifier of each registry with a certs.d folder, for its refusals.
    verifiers: Mutex<HashMap<String, Arc<CertsDVerifier>>>,
}

impl HttpClients {
    pub fn new(
        certs_root: Option<PathBuf>,
        connect_timeout: Duration,
        user_agent: String,
    ) -> HttpClients {
        HttpClients {
            certs_root,
            connect_timeout,
            user_agent,
            certs: Mutex::new(HashMap::new()),
            built: Mutex::new(HashMap::new()),
            verifiers: Mutex::new(HashMap::new()),
        }
    }

    /// What `certs.d` holds for `registry`, read once.
    pub fn certs_for(&self, registry: &str) -> Result<Option<Arc<CertsDir>>> {
        let Some(root) = self.certs_root.as_ref().filter(|_| !registry.is_empty()) else {
            return Ok(None);
        };
        if let Some(known) = self.certs.lock().expect("certs map poisoned").get(registry) {
            return Ok(known.clone());
        }
        let found = CertsDir::load(root, registry)?.map(Arc::new);
        self.certs
            .lock()
            .expect("certs map poisoned")
            .insert(registry.to_string(), found.clone());
        Ok(found)
    }

    /// The folder certs.d material for `registry` would be read from (for hints).
    pub fn certs_path(&self, registry: &str) -> Option<PathBuf> {
        self.certs_root.as_ref().map(|r| r.join(registry))
    }

    /// Why `registry`'s certificate was last refused, in the user's words, when its certs.d
    /// folder was consulted.
    pub fn refusal(&self, registry: &str) -> Option<String> {
        self.verifiers
            .lock()
            .expect("verifier map poisoned")
            .get(registry)
            .and_then(|v| v.refusal())
    }

    /// The client for a request to `url` made on behalf of `registry`.
    pub fn client(&self, registry: &str, url: &Url) -> Result<reqwest::Client> {
        let direct = is_loopback_url(url);
        let key = (registry.to_string(), direct);
        if let Some(c) = self.built.lock().expect("client map poisoned").get(&key) {
            return Ok(c.clone());
        }
        let client = self.build(registry, direct)?;
        self.built
            .lock()
            .expect("client map poisoned")
            .insert(key, client.clone());
        Ok(client)
    }

    fn build(&self, registry: &str, direct: bool) -> Result<reqwest::Client> {
        tls_provider();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .user_agent(self.user_agent.clone());
        if direct {
            builder = builder.no_proxy();
        }
        if let Some(certs) = self.certs_for(registry)? {
            let (tls, verifier) = certs_d_tls(registry, &certs)?;
            self.verifiers
                .lock()
                .expect("verifier map poisoned")
                .insert(registry.to_string(), verifier);
            builder = builder.tls_backend_preconfigured(tls);
        }
        builder.build().map_err(|e| Error::Client(e.to_string()))
    }
}

/// The TLS settings of a registry with a certs.d folder: its certificates trusted as the
/// daemon trusts them ([`CertsDVerifier`]), its client certificate presented.
fn certs_d_tls(
    registry: &str,
    certs: &CertsDir,
) -> Result<(rustls::ClientConfig, Arc<CertsDVerifier>)> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let fail = |path: &Path, reason: String| Error::Tls {
        registry: registry.to_string(),
        path: path.display().to_string(),
        reason,
    };
    let read =
        |path: &Path| std::fs::read(path).map_err(|e| fail(path, format!("cannot read: {e}")));
    let certificates = |path: &Path| -> Result<Vec<CertificateDer<'static>>> {
        let found = CertificateDer::pem_slice_iter(&read(path)?)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| fail(path, format!("not a PEM certificate: {e}")))?;
        if found.is_empty() {
            return Err(fail(path, "holds no PEM certificate".into()));
        }
        Ok(found)
    };
    let mut pinned = Vec::new();
    for path in &certs.roots {
        let file = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        for der in certificates(path)? {
            pinned.push(Pinned {
                der,
                file: file.clone(),
            });
        }
    }
    tls_provider();
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let verifier = Arc::new(
        CertsDVerifier::new(pinned, certs.dir.clone(), provider.clone())
            .map_err(|e| fail(&certs.dir, format!("cannot set up certificate checks: {e}")))?,
    );
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Client(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone());
    let mut tls = match &certs.identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = certificates(cert)?;
            let key_der = PrivateKeyDer::from_pem_slice(&read(key)?)
                .map_err(|e| fail(key, format!("not a PEM private key: {e}")))?;
            builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                fail(
                    cert,
                    format!("not a usable client certificate and key (PEM): {e}"),
                )
            })?
        }
    };
    // What reqwest offers when it builds the TLS settings itself.
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((tls, verifier))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_certs_d_folder_like_the_daemon() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(CertsDir::load(root.path(), "127.0.0.1:5000").unwrap(), None);
        let dir = root.path().join("127.0.0.1:5000");
        std::fs::create_dir(&dir).unwrap();
        for f in ["ca.crt", "extra.crt", "client.cert", "client.key", "README"] {
            std::fs::write(dir.join(f), "x").unwrap();
        }
        let found = CertsDir::load(root.path(), "127.0.0.1:5000")
            .unwrap()
            .unwrap();
        assert_eq!(found.roots, vec![dir.join("ca.crt"), dir.join("extra.crt")]);
        assert_eq!(
            found.identity,
            Some((dir.join("client.cert"), dir.join("client.key")))
        );

        std::fs::remove_file(dir.join("client.key")).unwrap();
        let err = CertsDir::load(root.path(), "127.0.0.1:5000").unwrap_err();
        assert!(err.to_string().contains("client.cert"), "{err}");
        assert!(err.to_string().contains("without its key"), "{err}");
        std::fs::remove_file(dir.join("client.cert")).unwrap();
        std::fs::write(dir.join("lone.key"), "x").unwrap();
        let err = CertsDir::load(root.path(), "127.0.0.1:5000").unwrap_err();
        assert!(err.to_string().contains("lone.key"), "{err}");
    }

    #[test]
    fn a_bad_certificate_names_its_file() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("reg.test:443");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("ca.crt"), "not a certificate").unwrap();
        let clients = HttpClients::new(
            Some(root.path().to_path_buf()),
            Duration::from_secs(1),
            "t".into(),
        );
        let err = clients
            .client("reg.test:443", &Url::parse("https://reg.test/v2/").unwrap())
            .unwrap_err();
        assert!(matches!(err, Error::Tls { .. }), "{err:?}");
        assert!(err.to_string().contains("ca.crt"), "{err}");
        // Another registry is unaffected.
        clients
            .client("other.test", &Url::parse("https://other.test/v2/").unwrap())
            .unwrap();
    }
}
