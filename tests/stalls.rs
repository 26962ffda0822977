//! Registries that stall: one that stops sending in the middle of a manifest, one that
//! announces a manifest far larger than qus reads and then trickles it. `qus verify` and
//! `qus release` must fail within the time `--timeout` sets, naming the registry, instead
//! of waiting for the CI job's own timeout. A mirror that never answers gets the same
//! idle time (`QUS_TIMEOUT`).

use crate::support::*;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the fake registry misbehaves on manifest requests.
#[derive(Clone, Copy)]
enum Misbehaviour {
    /// Headers and 10 of the 1000 bytes announced, then silence.
    StallMidManifest,
    /// A 100 GB Content-Length, then one byte every 200 ms.
    HugeAndTrickling,
}

/// A loopback server that answers the API check (`GET /v2/`) like a registry and every
/// manifest request as [`Misbehaviour`] says. Stopped on drop.
struct StallingRegistry {
    port: u16,
    stop: Arc<AtomicBool>,
    manifest_gets: Arc<AtomicUsize>,
}

impl StallingRegistry {
    fn start(how: Misbehaviour) -> StallingRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let manifest_gets = Arc::new(AtomicUsize::new(0));
        let (st, gets) = (stop.clone(), manifest_gets.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (st, gets) = (st.clone(), gets.clone());
                std::thread::spawn(move || serve(conn, how, &st, &gets));
            }
        });
        StallingRegistry {
            port,
            stop,
            manifest_gets,
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for StallingRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One connection: requests answered in turn (keep-alive) until a manifest GET, which
/// misbehaves until the client leaves or the server stops.
fn serve(conn: TcpStream, how: Misbehaviour, stop: &AtomicBool, gets: &AtomicUsize) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
        }
        let mut words = request_line.split_whitespace();
        let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        if path == "/v2/" {
            let _ = out.write_all(
                b"HTTP/1.1 200 OK\r\nDocker-Distribution-API-Version: registry/2.0\r\n\
                  Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
            );
            continue;
        }
        let length = match how {
            Misbehaviour::StallMidManifest => 1000u64,
            Misbehaviour::HugeAndTrickling => 100_000_000_000,
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.index.v1+json\r\n\
             Content-Length: {length}\r\n\r\n"
        );
        if out.write_all(head.as_bytes()).is_err() {
            return;
        }
        if method == "HEAD" {
            // No digest header: the client reads the manifest to learn it.
            continue;
        }
        gets.fetch_add(1, Ordering::SeqCst);
        let _ = out.write_all(b"{\"schemaVe");
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(200));
            if let Misbehaviour::HugeAndTrickling = how {
                if out.write_all(b" ").is_err() {
                    return;
                }
            }
        }
        return;
    }
}

/// Runs `qus <command> --repo <registry>/qus-stall --timeout 2` and returns (success,
/// stderr, how long it took).
fn qus_against(
    cfg: &TestConfig,
    command: &str,
    registry: &StallingRegistry,
) -> (bool, String, Duration) {
    let repo = format!("{}/qus-stall", registry.host());
    let mut cmd = cfg.qus();
    cmd.args([command, "--repo", &repo, "--timeout", "2"])
        .args(NARROW)
        .args(cfg.debs_flag())
        .env("DOCKER_HOST", "tcp://127.0.0.1:1");
    let started = Instant::now();
    let (ok, _, err) = run(&mut cmd);
    (ok, err, started.elapsed())
}

#[test]
fn a_registry_that_stalls_mid_manifest_fails_verify_and_release_in_bounded_time() {
    let cfg = real_config();
    let registry = StallingRegistry::start(Misbehaviour::StallMidManifest);
    for command in ["verify", "release"] {
        let (ok, err, took) = qus_against(&cfg, command, &registry);
        assert!(
            !ok,
            "{command} against a stalling registry succeeded: {err}"
        );
        assert!(err.contains(&registry.host()), "{command}: {err}");
        assert!(err.contains("GET manifest"), "{command}: {err}");
        assert!(err.contains("no byte received for 2 s"), "{command}: {err}");
        assert!(err.contains("4 attempts"), "{command}: {err}");
        assert!(err.contains("--timeout"), "{command}: {err}");
        // While it waited, it said so.
        assert!(err.contains("waiting for registry"), "{command}: {err}");
        // 4 attempts of 2 s, and the backoffs between them; verify also builds first.
        assert!(took < Duration::from_secs(60), "{command} took {took:?}");
    }
    // Retried: each stalled GET was tried again.
    assert!(registry.manifest_gets.load(Ordering::SeqCst) >= 8);
}

#[test]
fn a_registry_announcing_a_huge_manifest_is_refused_before_reading() {
    let cfg = real_config();
    let registry = StallingRegistry::start(Misbehaviour::HugeAndTrickling);
    for command in ["verify", "release"] {
        let (ok, err, took) = qus_against(&cfg, command, &registry);
        assert!(!ok, "{command} against a lying registry succeeded: {err}");
        assert!(err.contains(&registry.host()), "{command}: {err}");
        assert!(
            err.contains("announced 100000000000 bytes"),
            "{command}: {err}"
        );
        assert!(took < Duration::from_secs(60), "{command} took {took:?}");
    }
}

#[test]
fn a_mirror_that_stalls_fails_a_release_in_the_time_timeout_sets() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    let cfg = real_config();
    let layout = cfg.dir.path().join("oci");
    let mut cmd = cfg.qus();
    // A layout-only release: no engine, no registry, only the mirror.
    cmd.args(["release", "--test", "none", "--oci-layout"])
        .arg(&layout)
        .args(NARROW)
        .args(["--mirror", &format!("http://127.0.0.1:{port}/debian")])
        .env("QUS_TIMEOUT", "2")
        .env("DOCKER_HOST", "tcp://127.0.0.1:1");
    let started = Instant::now();
    let (ok, _, err) = run(&mut cmd);
    let took = started.elapsed();
    assert!(
        !ok,
        "a release from a mirror that never answers succeeded: {err}"
    );
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.contains("no data for 2s"), "{err}");
    // 4 attempts of 2 s and the backoffs between them.
    assert!(took < Duration::from_secs(60), "took {took:?}");
}
