//! Helpers for the pipeline tests: real Debian packages, a config pinned to them, a unique
//! repository per test that is removed from the daemon afterwards, and the `qus` binary.

#![allow(dead_code)]

pub mod mirror;
pub mod proxy;

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub use qus_source::testkit::{pool_name, real_deb as deb};

/// Where .ci/run (ci/fetch-test-debs) puts the real packages.
pub fn debs_dir() -> PathBuf {
    let dir = qus_source::testkit::test_debs();
    assert!(
        dir.is_dir(),
        "{} is missing: run ci/fetch-test-debs (or .ci/run) to download the test packages",
        dir.display()
    );
    dir
}

/// sha256 and size of a file.
pub fn sum(path: &Path) -> (String, u64) {
    let bytes = std::fs::read(path).unwrap();
    (hex::encode(Sha256::digest(&bytes)), bytes.len() as u64)
}

/// The pool path a file as `apt-get download` names it would have in a mirror.
pub fn pool_path(file: &Path) -> String {
    let plain = pool_name(file);
    let pkg = plain.split('_').next().unwrap_or_default();
    format!("pool/main/t/test/{pkg}/{plain}")
}

/// One pinned file for a config.
pub struct Pin {
    pub host: &'static str,
    pub file: PathBuf,
    pub targets: Option<&'static str>,
}

impl Pin {
    pub fn new(host: &'static str, file: PathBuf) -> Pin {
        Pin {
            host,
            file,
            targets: None,
        }
    }

    fn yaml(&self, indent: &str) -> String {
        let (sha, size) = sum(&self.file);
        let targets = self
            .targets
            .map(|t| format!(", targets: [{t}]"))
            .unwrap_or_default();
        format!(
            "{indent}{}: {{ file: {}, size: {size}, sha256: {sha}{targets} }}\n",
            self.host,
            pool_path(&self.file)
        )
    }
}

/// A config file pinned to the test packages.
pub struct TestConfig {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    pub debs: PathBuf,
}

/// Two hosts, one target of the real packages: lists with two platforms, and a short build.
pub const TWO_HOSTS: &[&str] = &[
    "--hosts",
    "amd64,arm64v8",
    "--targets",
    "aarch64",
    "--sources",
    "d10.0",
];

const T64: &str = "aarch64, arm, riscv64, x86_64";
const T32: &str = "arm, i386";

/// Pins the real trixie and bookworm packages for amd64, arm64v8 and arm32v7.
pub fn real_config() -> TestConfig {
    config_with(
        vec![
            Pin::new("amd64", deb("qemu-user", "amd64")),
            Pin::new("arm64v8", deb("qemu-user", "arm64")),
            Pin {
                targets: Some(T32),
                ..Pin::new("arm32v7", deb("qemu-user", "armhf"))
            },
        ],
        vec![
            Pin::new("amd64", deb("qemu-user-static", "amd64")),
            Pin::new("arm64v8", deb("qemu-user-static", "arm64")),
        ],
    )
}

/// A config with the given d10.0 and d7.2 pins; busybox for the three test hosts.
pub fn config_with(d10: Vec<Pin>, d7: Vec<Pin>) -> TestConfig {
    let dir = tempfile::tempdir().unwrap();
    let debs = dir.path().join("debs");
    std::fs::create_dir_all(&debs).unwrap();
    let mut text = String::from(
        "repo: qus-test\ndefault: d10.0\nhosts: [amd64, arm64v8, arm32v7]\nbusybox:\n  package: busybox-static\n  suite: trixie\n  version: \"1\"\n  files:\n",
    );
    let bb = [
        Pin::new("amd64", deb("busybox-static", "amd64")),
        Pin::new("arm64v8", deb("busybox-static", "arm64")),
        Pin::new("arm32v7", deb("busybox-static", "armhf")),
    ];
    for p in bb.iter().chain(&d10).chain(&d7) {
        link(&p.file, &debs);
    }
    for p in &bb {
        text.push_str(&p.yaml("    "));
    }
    text.push_str(&format!(
        "sources:\n  - name: d10.0\n    distro: debian\n    suite: trixie\n    package: qemu-user\n    version: \"1:10.0\"\n    targets: [{T64}]\n    files:\n"
    ));
    for p in &d10 {
        text.push_str(&p.yaml("      "));
    }
    if !d7.is_empty() {
        text.push_str(&format!(
            "  - name: d7.2\n    distro: debian\n    suite: bookworm\n    package: qemu-user-static\n    version: \"1:7.2\"\n    targets: [{T64}]\n    files:\n"
        ));
        for p in &d7 {
            text.push_str(&p.yaml("      "));
        }
    }
    let path = dir.path().join("qus.yml");
    std::fs::write(&path, text).unwrap();
    TestConfig { dir, path, debs }
}

impl TestConfig {
    /// `qus --config <this config>` with a cache of its own.
    pub fn qus(&self) -> Command {
        let mut c = qus(self.dir.path());
        c.arg("--config").arg(&self.path);
        c
    }

    /// `--debs <this config's package folder>`.
    pub fn debs_flag(&self) -> [&std::ffi::OsStr; 2] {
        [std::ffi::OsStr::new("--debs"), self.debs.as_os_str()]
    }
}

fn link(file: &Path, dir: &Path) {
    let dest = dir.join(file.file_name().unwrap());
    if !dest.exists() && std::fs::hard_link(file, &dest).is_err() {
        std::fs::copy(file, &dest).unwrap();
    }
}

/// A repository name no other test or run uses; its images are removed on drop.
pub struct Repo {
    pub name: String,
}

impl Repo {
    pub fn new(prefix: &str) -> Repo {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        Repo {
            name: format!(
                "{prefix}-{}-{}-{nanos}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ),
        }
    }

    /// Image references the daemon has in this repository.
    pub fn images(&self) -> Vec<String> {
        block_on(async {
            let d = daemon();
            let mut filters = HashMap::new();
            filters.insert("reference".to_string(), vec![format!("{}:*", self.name)]);
            let opts = bollard::query_parameters::ListImagesOptions {
                filters: Some(filters),
                ..Default::default()
            };
            let list = d.list_images(Some(opts)).await.unwrap();
            list.into_iter().flat_map(|i| i.repo_tags).collect()
        })
    }
}

impl Drop for Repo {
    fn drop(&mut self) {
        // Tagged images, and those a later build untagged but a push still names by digest.
        let tag = format!("{}:", self.name);
        let digest = format!("{}@", self.name);
        block_on(async {
            let Ok(d) = bollard::Docker::connect_with_local_defaults() else {
                return;
            };
            let Ok(all) = d
                .list_images(None::<bollard::query_parameters::ListImagesOptions>)
                .await
            else {
                return;
            };
            // By reference, never by ID: another test may have built the same image (the
            // build cache makes IDs equal), and removing an ID would take its tags too.
            for i in all {
                let refs = i.repo_tags.iter().filter(|t| t.starts_with(&tag));
                let digests = i.repo_digests.iter().filter(|t| t.starts_with(&digest));
                for r in refs.chain(digests) {
                    let _ = d
                        .remove_image(
                            r,
                            None::<bollard::query_parameters::RemoveImageOptions>,
                            None,
                        )
                        .await;
                }
            }
        });
    }
}

/// Runs a future to completion on a fresh runtime (tests are synchronous).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A `qus` command with a private cache under `cache`.
pub fn qus(cache: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_qus"));
    c.env("QUS_CACHE", cache)
        .env_remove("QUS_CONFIG")
        .env_remove("SOURCE_DATE_EPOCH")
        .stdin(Stdio::null());
    c
}

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Runs and returns (success, stdout, stderr).
pub fn run(cmd: &mut Command) -> (bool, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    (
        status.success(),
        String::from_utf8_lossy(&stdout).into(),
        String::from_utf8_lossy(&stderr).into(),
    )
}

/// Runs a `--json` command and returns (exit code, stdout as JSON, stderr).
pub fn run_json(cmd: &mut Command) -> (Option<i32>, serde_json::Value, String) {
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {err}"));
    (out.status.code(), json, err)
}

/// Asserts that a run's `--json` names `n` lists left as they were at `place` (`registry`,
/// `layout`), each because it would have lost the platforms `lost`.
pub fn assert_lists_kept(json: &serde_json::Value, place: &str, n: usize, lost: &[&str]) {
    let kept = json["lists_not_written"].as_array().unwrap();
    assert_eq!(kept.len(), n, "{json}");
    for l in kept {
        assert_eq!(l["why"], "fewer-platforms", "{l}");
        assert_eq!(l["place"], place, "{l}");
        assert_eq!(l["lost"], serde_json::json!(lost), "{l}");
    }
}

/// Runs with `input` on stdin and returns (success, stdout, stderr).
pub fn run_with_stdin(cmd: &mut Command, input: &str) -> (bool, String, String) {
    use std::io::Write as _;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The smallest useful matrix: one host, one target, one source.
pub const NARROW: &[&str] = &[
    "--hosts",
    "amd64",
    "--targets",
    "aarch64",
    "--sources",
    "d10.0",
];

/// The machine's daemon, through bollard directly: the tests check what qus did with a
/// client of their own.
pub fn daemon() -> bollard::Docker {
    bollard::Docker::connect_with_local_defaults().expect("the Docker daemon")
}

/// What the tests read of an image in the daemon.
#[derive(Debug)]
pub struct ImageInfo {
    /// Image ID (config digest).
    pub id: String,
    /// `os/architecture[/variant]`.
    pub platform: String,
    /// Layer diffIDs.
    pub layers: Vec<String>,
    /// Config labels.
    pub labels: HashMap<String, String>,
    /// Config entrypoint.
    pub entrypoint: Vec<String>,
}

/// Inspects an image through the daemon; `None` when it does not have it.
pub fn inspect(reference: &str) -> Option<ImageInfo> {
    block_on(async {
        match daemon().inspect_image(reference).await {
            Ok(i) => {
                let mut platform = format!(
                    "{}/{}",
                    i.os.unwrap_or_default(),
                    i.architecture.unwrap_or_default()
                );
                if let Some(v) = i.variant.filter(|v| !v.is_empty()) {
                    platform = format!("{platform}/{v}");
                }
                let config = i.config.unwrap_or_default();
                Some(ImageInfo {
                    id: i.id.unwrap_or_default(),
                    platform,
                    layers: i.root_fs.and_then(|r| r.layers).unwrap_or_default(),
                    labels: config.labels.unwrap_or_default(),
                    entrypoint: config.entrypoint.unwrap_or_default(),
                })
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => None,
            Err(e) => panic!("inspecting {reference}: {e}"),
        }
    })
}

/// The `qus plan --json` of a command line (same flags as a build).
pub fn plan_json(cfg: &TestConfig, args: &[&str]) -> serde_json::Value {
    let (ok, out, err) = run(qus(cfg.dir.path())
        .arg("--config")
        .arg(&cfg.path)
        .arg("plan")
        .arg("--json")
        .args(args));
    assert!(ok, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// Reads the file `path` (no leading `/`) from the filesystem of an image, by exporting it.
pub fn file_from_image(reference: &str, path: &str) -> Option<Vec<u8>> {
    use futures::StreamExt;
    let bytes = block_on(async {
        let d = daemon();
        let mut s = d.export_image(reference);
        let mut all = Vec::new();
        while let Some(chunk) = s.next().await {
            all.extend_from_slice(&chunk.unwrap());
        }
        all
    });
    // `docker save`: layer tars inside a tar; the last layer that has the file wins.
    let mut found = None;
    let mut outer = tar::Archive::new(&bytes[..]);
    for e in outer.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().to_string();
        if !name.ends_with("layer.tar") {
            continue;
        }
        let mut layer = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut layer).unwrap();
        let mut inner = tar::Archive::new(&layer[..]);
        for f in inner.entries().unwrap() {
            let mut f = f.unwrap();
            let p = f
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            if p == path {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut f, &mut v).unwrap();
                found = Some(v);
            }
        }
    }
    found
}

/// A syntactically valid .deb (qemu-user 9.9, Architecture amd64) whose data.tar.gz has
/// one entry `path` (written raw: it may be hostile, with `..` in it).
pub fn fake_deb(path: &str, content: &[u8]) -> Vec<u8> {
    let control = tar_gz(&[(
        "./control",
        b"Package: qemu-user\nVersion: 9.9\nArchitecture: amd64\nMaintainer: t\nDescription: t\n"
            .as_slice(),
    )]);
    let data = tar_gz(&[(path, content)]);
    let mut out = Vec::new();
    {
        let mut ar = ar::Builder::new(&mut out);
        for (name, bytes) in [
            ("debian-binary", b"2.0\n".to_vec()),
            ("control.tar.gz", control),
            ("data.tar.gz", data),
        ] {
            let h = ar::Header::new(name.as_bytes().to_vec(), bytes.len() as u64);
            ar.append(&h, &bytes[..]).unwrap();
        }
    }
    out
}

fn tar_gz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut t = tar::Builder::new(gz);
    for (path, bytes) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o755);
        h.set_entry_type(tar::EntryType::Regular);
        // Written raw: the tar crate refuses `..` in set_path, and a hostile archive would not.
        let name = h.as_gnu_mut().unwrap();
        name.name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        t.append(&h, *bytes).unwrap();
    }
    let mut gz = t.into_inner().unwrap();
    std::io::Write::flush(&mut gz).unwrap();
    gz.finish().unwrap()
}
