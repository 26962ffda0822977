//! Engine selection like the docker CLI (contexts, `DOCKER_HOST`, `DOCKER_CONTEXT`) and
//! Podman's Docker-compatible API: builds go to the engine the settings choose and to no
//! other, and every connection error names the engine and how it was chosen.
//!
//! Podman runs as `podman system service` on a private socket with a private store
//! (`--root`, vfs), so a test neither sees nor leaves images in the machine's Podman.
//! Containers cannot run under Podman on these VMs (runc cannot set the rlimits), which
//! `qus test` never needs: it creates a container only to copy the emulators out.

use crate::support::*;
use qus_registry::testkit::TestRegistry;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `podman system service` on a socket and store of its own; stopped and removed on drop.
struct Podman {
    child: Child,
    dir: tempfile::TempDir,
}

impl Podman {
    fn start() -> Podman {
        Podman::start_with(&[])
    }

    /// With `insecure` registries reached over plain HTTP: Podman, unlike Docker, treats
    /// loopback registries as HTTPS unless its registries.conf says otherwise.
    fn start_with(insecure: &[&str]) -> Podman {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("podman.sock");
        let conf = dir.path().join("registries.conf");
        let text: String = insecure
            .iter()
            .map(|r| format!("[[registry]]\nlocation = \"{r}\"\ninsecure = true\n"))
            .collect();
        std::fs::write(&conf, text).unwrap();
        let child = Command::new("podman")
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .arg("--root")
            .arg(dir.path().join("root"))
            .arg("--runroot")
            .arg(dir.path().join("run"))
            .args([
                "--storage-driver",
                "vfs",
                "--events-backend",
                "none",
                "system",
                "service",
                "--time=0",
            ])
            .arg(format!("unix://{}", sock.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("podman (apt-get install podman; .ci/run installs it)");
        let p = Podman { child, dir };
        let start = Instant::now();
        while !p.sock().exists() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "podman system service did not open {}",
                p.sock().display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        p
    }

    fn sock(&self) -> PathBuf {
        self.dir.path().join("podman.sock")
    }

    fn host(&self) -> String {
        format!("unix://{}", self.sock().display())
    }

    /// A client of Podman's own, to check what qus did there.
    fn client(&self) -> bollard::Docker {
        bollard::Docker::connect_with_unix(
            &self.sock().to_string_lossy(),
            120,
            bollard::API_DEFAULT_VERSION,
        )
        .unwrap()
    }

    /// The image's ID in Podman; `None` when Podman does not have it.
    fn image_id(&self, reference: &str) -> Option<String> {
        block_on(async {
            match self.client().inspect_image(reference).await {
                Ok(i) => i.id,
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => None,
                Err(e) => panic!("inspecting {reference} in podman: {e}"),
            }
        })
    }

    /// Every tag Podman has.
    fn tags(&self) -> Vec<String> {
        block_on(async {
            let list = self
                .client()
                .list_images(None::<bollard::query_parameters::ListImagesOptions>)
                .await
                .unwrap();
            list.into_iter().flat_map(|i| i.repo_tags).collect()
        })
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Its images live in its private store, removed with the folder.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A docker CLI config folder with contexts `(name, host)` and, when given, a
/// `currentContext`, laid out as `docker context create` writes it.
fn docker_config(contexts: &[(&str, &str)], current: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, host) in contexts {
        let meta = dir
            .path()
            .join("contexts/meta")
            .join(hex::encode(Sha256::digest(name.as_bytes())));
        std::fs::create_dir_all(&meta).unwrap();
        let json = serde_json::json!({
            "Name": name,
            "Metadata": { "Description": "qus test" },
            "Endpoints": { "docker": { "Host": host, "SkipTLSVerify": false } },
        });
        std::fs::write(meta.join("meta.json"), json.to_string()).unwrap();
    }
    let mut config = serde_json::json!({ "auths": {} });
    if let Some(c) = current {
        config["currentContext"] = c.into();
    }
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    dir
}

/// `qus` with the engine settings cleared, then `config` as DOCKER_CONFIG.
fn qus_with(cfg: &TestConfig, config: &Path) -> Command {
    let mut c = cfg.qus();
    c.env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .env("DOCKER_CONFIG", config);
    c
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn a_context_sends_build_and_test_to_podman_and_not_to_the_default_daemon() {
    let podman = Podman::start();
    let cfg = real_config();
    let repo = Repo::new("qus-test-engine");
    let config = docker_config(&[("qus-pm", &podman.host())], Some("qus-pm"));
    let build = || {
        run(qus_with(&cfg, config.path())
            .args(["build", "--json", "--repo", &repo.name])
            .args(TWO_HOSTS)
            .args(cfg.debs_flag()))
    };
    let (ok, out, err) = build();
    assert!(ok, "build through the context: {err}");
    let built: serde_json::Value = serde_json::from_str(&out).unwrap();
    let images = built["images"].as_array().unwrap();
    assert_eq!(images.len(), 8, "register, pkg, full, aarch64 for 2 hosts");
    for img in images {
        let reference = img["reference"].as_str().unwrap();
        let id = podman
            .image_id(reference)
            .unwrap_or_else(|| panic!("podman does not have {reference}: {:?}", podman.tags()));
        assert_eq!(Some(id.as_str()), img["id"].as_str(), "{reference}");
        assert!(
            inspect(reference).is_none(),
            "{reference} reached the default daemon"
        );
    }
    // Podman names what it loads `localhost/…`; qus's references still find them.
    assert!(
        podman
            .tags()
            .iter()
            .any(|t| t == &format!("localhost/{}:arm64v8-d10.0-aarch64", repo.name)),
        "{:?}",
        podman.tags()
    );

    // Podman's inspect has no Variant: arm64/v8 images are still seen as up to date.
    let (ok, _, err) = build();
    assert!(ok, "second build: {err}");
    assert!(err.contains("8 images: 0 built, 8 unchanged"), "{err}");

    // qus test reads the emulators out of Podman's images (no container runs there).
    let (ok, out, err) = run(qus_with(&cfg, config.path())
        .args(["test", "--json", "--repo", &repo.name])
        .args(TWO_HOSTS)
        .args(cfg.debs_flag()));
    assert!(ok, "qus test through podman: {err}\n{out}");
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows["emulators"].as_array().unwrap().len(), 2, "{out}");

    // DOCKER_HOST wins over the config's currentContext: the default daemon has none of
    // these images.
    let (ok, _, err) = run(qus_with(&cfg, config.path())
        .env("DOCKER_HOST", "unix:///var/run/docker.sock")
        .args(["test", "--repo", &repo.name])
        .args(TWO_HOSTS)
        .args(cfg.debs_flag()));
    assert!(!ok);
    assert!(err.contains("is in the daemon"), "{err}");
}

#[test]
fn docker_host_overrides_docker_context_and_a_down_tcp_engine_is_named() {
    let cfg = real_config();
    let port = closed_port();
    let tcp = format!("tcp://127.0.0.1:{port}");
    let config = docker_config(&[("qus-elsewhere", "unix:///nonexistent/qus.sock")], None);
    let (ok, _, err) = run(qus_with(&cfg, config.path())
        .env("DOCKER_CONTEXT", "qus-elsewhere")
        .env("DOCKER_HOST", &tcp)
        .args(["build"])
        .args(NARROW)
        .args(cfg.debs_flag()));
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "cannot reach the container engine at {tcp} (DOCKER_HOST)"
        )),
        "{err}"
    );
    assert!(!err.contains("qus-elsewhere"), "{err}");

    // The same engine chosen by a context is named with the context.
    let config = docker_config(&[("qus-down", &tcp)], Some("qus-down"));
    let (ok, _, err) = run(qus_with(&cfg, config.path())
        .args(["build"])
        .args(NARROW)
        .args(cfg.debs_flag()));
    assert!(!ok);
    let from = config.path().join("config.json");
    assert!(
        err.contains(&format!("{tcp} (context qus-down from {})", from.display())),
        "{err}"
    );
}

#[test]
fn an_unknown_context_is_an_error_naming_it_and_where_qus_looked() {
    let cfg = real_config();
    let config = docker_config(&[], None);
    for (how, args) in [
        ("DOCKER_CONTEXT", vec!["build"]),
        ("--context", vec!["--context", "qus-no-such", "build"]),
    ] {
        let mut cmd = qus_with(&cfg, config.path());
        if how == "DOCKER_CONTEXT" {
            cmd.env("DOCKER_CONTEXT", "qus-no-such");
        }
        let (ok, _, err) = run(cmd.args(args).args(NARROW).args(cfg.debs_flag()));
        assert!(!ok);
        assert!(
            err.contains("unknown docker context \"qus-no-such\""),
            "{how}: {err}"
        );
        assert!(err.contains(how), "{how}: {err}");
        assert!(
            err.contains(&config.path().join("contexts/meta").display().to_string()),
            "{how}: {err}"
        );
    }
    // Commands that need no engine do not care.
    let (ok, _, err) = run(qus_with(&cfg, config.path())
        .env("DOCKER_CONTEXT", "qus-no-such")
        .args(["plan"])
        .args(NARROW));
    assert!(ok, "{err}");
}

#[test]
fn the_dockerfile_builder_builds_and_releases_through_podman() {
    let registry = TestRegistry::start().unwrap();
    let podman = Podman::start_with(&[&registry.host()]);
    let cfg = real_config();
    let repo = format!("{}/qus-engine-classic", registry.host());
    let config = docker_config(&[("qus-pm", &podman.host())], None);
    let release = || {
        run(qus_with(&cfg, config.path())
            .args(["--context", "qus-pm", "release", "--builder", "dockerfile"])
            .args(["--test", "none", "--json", "--repo", &repo])
            .args(NARROW)
            .args(cfg.debs_flag()))
    };
    let (ok, out, err) = release();
    assert!(ok, "release through podman: {err}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["pushed"].as_array().unwrap().len(), 4, "{out}");
    assert!(err.contains("8 lists written"), "{err}");
    for tag in ["amd64-d10.0", "amd64-d10.0-aarch64"] {
        let reference = format!("{repo}:{tag}");
        assert!(podman.image_id(&reference).is_some(), "{reference}");
        assert!(
            inspect(&reference).is_none(),
            "{reference} in the default daemon"
        );
    }
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{repo}:latest"))
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["manifests"][0]["platform"]["architecture"], "amd64");

    // Podman's build cache and push stream are enough to see that nothing changed.
    let (ok, _, err) = release();
    assert!(ok, "second release: {err}");
    assert!(
        err.contains("0 pushed, 4 already present") && err.contains("0 lists written, 8 unchanged"),
        "{err}"
    );

    // A registry Podman was not told is plain HTTP: the error says where to tell it.
    let other = TestRegistry::start().unwrap();
    let (ok, _, err) = run(qus_with(&cfg, config.path())
        .args(["--context", "qus-pm", "release", "--builder", "dockerfile"])
        .args(["--test", "none", "--repo"])
        .arg(format!("{}/qus-engine-classic", other.host()))
        .args(NARROW)
        .args(cfg.debs_flag()));
    assert!(!ok);
    assert!(
        err.contains("HTTP response to HTTPS client") && err.contains("registries.conf"),
        "{err}"
    );
}

/// A TLS front for the machine's Docker socket that asks clients for a certificate of the
/// test CA: an engine reached over `tcp://` with TLS, as a remote daemon with
/// `--tlsverify` is.
const TLS_FRONT: &str = r#"
import socket, ssl, sys, threading
port, cert, key, ca, target = sys.argv[1:]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.verify_mode = ssl.CERT_REQUIRED
ctx.load_verify_locations(ca)
srv = socket.socket()
srv.bind(("127.0.0.1", int(port)))
srv.listen(16)
print("ready", flush=True)
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    finally:
        a.close()
        b.close()
def serve(c):
    try:
        t = ctx.wrap_socket(c, server_side=True)
    except (ssl.SSLError, OSError):
        c.close()
        return
    u = socket.socket(socket.AF_UNIX)
    u.connect(target)
    threading.Thread(target=pipe, args=(u, t), daemon=True).start()
    pipe(t, u)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

struct TlsFront(Child);

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_context_with_tls_material_reaches_a_tls_engine() {
    use std::io::BufRead as _;
    let ca = qus_registry::testkit::TestCa::new().unwrap();
    let work = tempfile::tempdir().unwrap();
    let client = ca.certs_d(work.path(), "client", true).unwrap();
    let server = ca.server_tls(true);
    let port = closed_port();
    let mut child = Command::new("python3")
        .args(["-c", TLS_FRONT, &port.to_string()])
        .arg(&server.certificate)
        .arg(&server.key)
        .arg(ca.ca_cert())
        .arg("/var/run/docker.sock")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _front = TlsFront(child);
    assert_eq!(line.trim(), "ready");

    let host = format!("tcp://127.0.0.1:{port}");
    let config = docker_config(&[("qus-tls", &host)], None);
    let with_material = |ca_pem: &Path| {
        let tls = config
            .path()
            .join("contexts/tls")
            .join(hex::encode(Sha256::digest(b"qus-tls")))
            .join("docker");
        std::fs::create_dir_all(&tls).unwrap();
        std::fs::copy(ca_pem, tls.join("ca.pem")).unwrap();
        std::fs::copy(client.join("client.cert"), tls.join("cert.pem")).unwrap();
        std::fs::copy(client.join("client.key"), tls.join("key.pem")).unwrap();
    };
    with_material(&ca.ca_cert());
    let cfg = real_config();
    let repo = Repo::new("qus-test-tls");
    let qus_test = || {
        run(qus_with(&cfg, config.path())
            .env("DOCKER_CONTEXT", "qus-tls")
            .args(["test", "--repo", &repo.name])
            .args(NARROW)
            .args(cfg.debs_flag()))
    };
    // The engine answered over TLS: it was asked for the images, and has none of them.
    let (ok, _, err) = qus_test();
    assert!(!ok);
    assert!(err.contains("is in the daemon"), "{err}");

    // Another CA: the engine's certificate is refused, and the error names the engine.
    let other = qus_registry::testkit::TestCa::new().unwrap();
    with_material(&other.ca_cert());
    let (ok, _, err) = qus_test();
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "cannot reach the container engine at {host} (context qus-tls from DOCKER_CONTEXT, TLS)"
        )),
        "{err}"
    );
}
