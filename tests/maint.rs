//! `qus lock`, `qus check` and `qus report` against a loopback Debian mirror whose indexes
//! apt-ftparchive made from the real downloaded packages (issue 5).

use crate::support::mirror::{deb_version, repack_with_version, Archive};
use crate::support::{qus, sum, Repo};
use qus_source::testkit::Server;
use qus_source::testkit::{pool_name, real_deb};
use std::path::PathBuf;
use std::process::Command;

/// A config with no pins at all: `qus lock` must supply every one. armhf's trixie qemu-user
/// ships only 32-bit guests, which the config says (and the lock must keep).
const BARE: &str = "\
repo: qus-test
default: d10.0
hosts: [amd64, arm64v8, arm32v7]
busybox:
  package: busybox-static
  suite: trixie
sources:
  - name: d10.0
    distro: debian
    suite: trixie
    package: qemu-user
    targets: [aarch64, arm, riscv64, x86_64]
    files:
      arm32v7: { targets: [arm, i386] }
  - name: d7.2
    distro: debian
    suite: bookworm
    package: qemu-user-static
    targets: [aarch64, arm, riscv64, x86_64]
";

/// The real packages, by (role, Debian arch).
fn reals() -> Vec<(&'static str, &'static str, PathBuf)> {
    let mut v = Vec::new();
    for arch in ["amd64", "arm64", "armhf"] {
        v.push(("busybox", arch, real_deb("busybox-static", arch)));
        v.push(("d10.0", arch, real_deb("qemu-user", arch)));
    }
    for arch in ["amd64", "arm64"] {
        v.push(("d7.2", arch, real_deb("qemu-user-static", arch)));
    }
    v
}

/// The lock file as the tests read it: plain YAML, not qus's own types.
struct Lock(serde_yaml_ng::Value);

impl Lock {
    fn read(path: &std::path::Path) -> Lock {
        let text = std::fs::read_to_string(path).unwrap();
        Lock(serde_yaml_ng::from_str(&text).unwrap())
    }

    fn packages(&self) -> &Vec<serde_yaml_ng::Value> {
        self.0["packages"].as_sequence().unwrap()
    }

    /// The pin of (role, qus host name).
    fn get(&self, role: &str, host: &str) -> Option<&serde_yaml_ng::Value> {
        self.packages()
            .iter()
            .find(|p| p["role"].as_str() == Some(role) && p["host"].as_str() == Some(host))
    }

    fn is_unavailable(&self, role: &str, host: &str) -> bool {
        self.0["unavailable"].as_sequence().is_some_and(|u| {
            u.iter()
                .any(|p| p["role"].as_str() == Some(role) && p["host"].as_str() == Some(host))
        })
    }
}

/// qus's host name for a Debian arch of the test packages.
fn host_of(debian_arch: &str) -> &'static str {
    match debian_arch {
        "amd64" => "amd64",
        "arm64" => "arm64v8",
        "armhf" => "arm32v7",
        other => panic!("no host for {other}"),
    }
}

/// trixie (busybox-static, qemu-user: amd64 arm64 armhf) and bookworm (qemu-user-static:
/// amd64 arm64 — no armhf index, so arm32v7 is "unavailable" there).
fn archive() -> Archive {
    let mut a = Archive::new();
    for (role, _, deb) in reals() {
        a.add(&deb, if role == "busybox" { "busybox" } else { "qemu" });
    }
    a.suite(
        "trixie",
        &["busybox-static", "qemu-user"],
        &["amd64", "arm64", "armhf"],
    );
    a.suite("bookworm", &["qemu-user-static"], &["amd64", "arm64"]);
    a.index();
    a
}

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    lock: PathBuf,
}

/// `config` with every suite trusting `keyring` (written beside the config, named
/// relative to it as a maintainer would).
fn with_keyring(config: &str, keyring: &std::path::Path) -> String {
    config
        .lines()
        .map(|l| {
            let mut out = format!("{l}\n");
            if let Some(indent) = l.strip_suffix(l.trim_start()) {
                if l.trim_start().starts_with("suite: ") {
                    out.push_str(&format!("{indent}keyring: {}\n", keyring.display()));
                }
            }
            out
        })
        .collect()
}

/// A config trusting the archive's key.
fn setup(config: &str, archive: &Archive) -> Setup {
    setup_with(config, Some(archive.keyring()))
}

fn setup_with(config: &str, keyring: Option<&std::path::Path>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qus.yml");
    let config = match keyring {
        Some(k) => {
            std::fs::copy(k, dir.path().join("archive.gpg")).unwrap();
            with_keyring(config, std::path::Path::new("archive.gpg"))
        }
        None => config.to_string(),
    };
    std::fs::write(&path, config).unwrap();
    Setup {
        lock: dir.path().join("qus.lock"),
        config: path,
        dir,
    }
}

impl Setup {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = qus(&self.dir.path().join("cache"));
        c.env_remove("QUS_MIRROR")
            .arg("--config")
            .arg(&self.config)
            .args(args);
        c
    }

    /// Runs and returns (exit code, stdout, stderr).
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.cmd(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    fn lock(&self, server: &Server) -> (i32, String, String) {
        self.run(&["lock", "--mirror", &server.url(), "--json"])
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn lock_pins_the_real_files_then_build_fetches_them_through_the_mirror() {
    let a = archive();
    let server = Server::start(a.root.path()).unwrap();
    let s = setup(BARE, &a);

    // Without pins nothing plans, and the error says what to do.
    let (code, _, err) = s.run(&["plan"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("run `qus lock`"), "{err}");

    let (code, out, err) = s.lock(&server);
    assert_eq!(code, 0, "lock failed: {err}");
    assert!(
        err.contains("bookworm has no qemu-user-static for arm32v7 (armhf)"),
        "note: {err}"
    );
    let doc = json(&out);
    assert_eq!(doc["written"], true);
    assert!(doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["status"] == "new"));

    let text = std::fs::read_to_string(&s.lock).unwrap();
    assert!(
        !text.contains("127.0.0.1") && !text.contains("http"),
        "no mirror in the lock:\n{text}"
    );
    let lock = Lock::read(&s.lock);
    assert_eq!(lock.packages().len(), 3 + 3 + 2);
    for (role, arch, deb) in reals() {
        let host = host_of(arch);
        let p = lock
            .get(role, host)
            .unwrap_or_else(|| panic!("{role} {host} not locked"));
        let (sha, size) = sum(&deb);
        assert_eq!(
            (p["sha256"].as_str().unwrap(), p["size"].as_u64().unwrap()),
            (sha.as_str(), size),
            "{role} {host}"
        );
        assert_eq!(
            p["version"].as_str().unwrap(),
            deb_version(&deb),
            "{role} {host}"
        );
        let file = p["file"].as_str().unwrap();
        assert!(
            file.starts_with("pool/main/") && file.ends_with(&pool_name(&deb)),
            "{file}"
        );
        assert_eq!(
            p["suite"].as_str().unwrap(),
            if role == "d7.2" { "bookworm" } else { "trixie" }
        );
    }
    assert!(lock.is_unavailable("d7.2", "arm32v7"));

    // The plan now carries the locked pins; the config's per-host targets still apply.
    let (code, out, err) = s.run(&["plan", "--json"]);
    assert_eq!(code, 0, "{err}");
    let plan = json(&out);
    let pkgs = plan["packages"].as_array().unwrap();
    let qemu_armhf = pkgs
        .iter()
        .find(|p| p["source"] == "d10.0" && p["host"] == "arm32v7")
        .unwrap();
    assert_eq!(qemu_armhf["sha256"], sum(&real_deb("qemu-user", "armhf")).0);
    assert_eq!(qemu_armhf["targets"], serde_json::json!(["arm", "i386"]));
    assert!(plan["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["source"] == "d7.2" && k["host"] == "arm32v7"));

    // A second lock with nothing new changes nothing.
    let before = std::fs::metadata(&s.lock).unwrap().modified().unwrap();
    let (code, out, err) = s.lock(&server);
    assert_eq!(code, 0, "{err}");
    let doc = json(&out);
    assert_eq!(doc["written"], false);
    assert!(doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["status"] == "unchanged"));
    assert_eq!(
        std::fs::metadata(&s.lock).unwrap().modified().unwrap(),
        before
    );

    // And a build fetches those pins through the mirror and verifies them.
    let repo = Repo::new("qus-test-maint");
    let (code, out, err) = s.run(&[
        "build",
        "--mirror",
        &server.url(),
        "--repo",
        &repo.name,
        "--hosts",
        "amd64",
        "--targets",
        "aarch64",
        "--sources",
        "d10.0",
        "--json",
    ]);
    assert_eq!(code, 0, "build failed: {err}");
    let built = json(&out);
    assert_eq!(built["images"].as_array().unwrap().len(), 4, "{out}");
    for role in ["busybox", "d10.0"] {
        let file = lock.get(role, "amd64").unwrap()["file"].as_str().unwrap();
        assert_eq!(server.hits(file), 1, "{file} fetched once from the mirror");
    }
    assert!(err.contains("sha256 verified"), "{err}");
}

#[test]
fn check_exits_0_when_current_and_1_when_a_newer_version_is_out() {
    let a = archive();
    let server = Server::start(a.root.path()).unwrap();
    let s = setup(BARE, &a);
    let (code, _, err) = s.lock(&server);
    assert_eq!(code, 0, "{err}");

    let (code, out, err) = s.run(&["check", "--mirror", &server.url(), "--json"]);
    assert_eq!(code, 0, "all current: {err}\n{out}");
    let doc = json(&out);
    assert_eq!(doc["status"], "current");
    assert_eq!(doc["packages"].as_array().unwrap().len(), 8);

    // A newer busybox-static for amd64 (a real package, re-packed with a higher version)
    // joins the pool; trixie's indexes are made again and now list both.
    let newer = "1:1.37.0-7";
    let scratch = tempfile::tempdir().unwrap();
    let deb = repack_with_version(&real_deb("busybox-static", "amd64"), newer, scratch.path());
    let pool = a.add(&deb, "busybox");
    a.index();
    let packages =
        std::fs::read_to_string(a.path("dists/trixie/main/binary-amd64/Packages")).unwrap();
    assert_eq!(
        packages.matches("Package: busybox-static\n").count(),
        2,
        "{packages}"
    );

    let (code, out, err) = s.run(&["check", "--mirror", &server.url(), "--json"]);
    assert_eq!(code, 1, "a newer version exists: {err}\n{out}");
    let doc = json(&out);
    assert_eq!(doc["status"], "outdated");
    let rows = doc["packages"].as_array().unwrap();
    let stale: Vec<&serde_json::Value> = rows.iter().filter(|r| r["status"] != "current").collect();
    assert_eq!(stale.len(), 1, "{out}");
    assert_eq!(stale[0]["role"], "busybox");
    assert_eq!(stale[0]["host"], "amd64");
    assert_eq!(stale[0]["status"], "outdated");
    assert_eq!(
        stale[0]["current"],
        deb_version(&real_deb("busybox-static", "amd64"))
    );
    assert_eq!(stale[0]["newest"], newer);
    assert_eq!(stale[0]["newest_file"], pool);
    assert!(err.contains("run `qus lock`"), "{err}");

    // The table says the same.
    let (code, out, _) = s.run(&["check", "--mirror", &server.url()]);
    assert_eq!(code, 1);
    let line = out
        .lines()
        .find(|l| l.contains("outdated"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.starts_with("busybox") && line.contains("amd64") && line.contains(newer),
        "{out}"
    );

    // Locking takes the newer one; then everything is current again.
    let (code, out, err) = s.lock(&server);
    assert_eq!(code, 0, "{err}");
    let doc = json(&out);
    let bumped: Vec<&serde_json::Value> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] != "unchanged")
        .collect();
    assert_eq!(bumped.len(), 1, "{out}");
    assert_eq!(bumped[0]["status"], "updated");
    assert_eq!(bumped[0]["version"], newer);
    assert_eq!(bumped[0]["sha256"], sum(&deb).0);
    let (code, _, err) = s.run(&["check", "--mirror", &server.url()]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn an_index_that_does_not_match_its_release_is_refused() {
    let a = archive();
    let server = Server::start(a.root.path()).unwrap();
    let s = setup(BARE, &a);
    let (code, _, err) = s.lock(&server);
    assert_eq!(code, 0, "{err}");
    let locked = std::fs::read_to_string(&s.lock).unwrap();

    // An extra stanza after the Release was made: the Packages.xz no longer has the size
    // and sum the Release gives for it.
    let rel = "dists/trixie/main/binary-arm64/Packages";
    let mut text = std::fs::read_to_string(a.path(rel)).unwrap();
    text.push_str(&format!(
        "Package: busybox-static\nVersion: 9:9\nArchitecture: arm64\nFilename: pool/x.deb\nSize: 1\nSHA256: {}\n\n",
        "0".repeat(64)
    ));
    a.write_packages("trixie", "arm64", &text);
    for cmd in ["lock", "check"] {
        let (code, out, err) = s.run(&[cmd, "--mirror", &server.url()]);
        assert_eq!(code, 1, "a failure, not a usage error: {cmd}: {err}");
        assert!(
            err.contains("main/binary-arm64/Packages.xz"),
            "{cmd} names the file: {err}"
        );
        assert!(err.contains("mismatch"), "{cmd}: {err}");
        assert!(out.is_empty(), "{cmd} prints no verdict: {out}");
    }
    assert_eq!(
        std::fs::read_to_string(&s.lock).unwrap(),
        locked,
        "the lock is untouched"
    );
}

#[test]
fn inrelease_first_then_release_with_release_gpg() {
    let a = archive();
    let server = Server::start(a.root.path()).unwrap();
    let s = setup(BARE, &a);
    let (code, _, err) = s.lock(&server);
    assert_eq!(code, 0, "{err}");
    assert_eq!(server.hits("dists/trixie/InRelease"), 1);
    assert_eq!(
        server.hits("dists/trixie/Release"),
        0,
        "InRelease is enough"
    );
    // A mirror without InRelease: Release and its detached signature.
    for suite in ["trixie", "bookworm"] {
        std::fs::remove_file(a.path(&format!("dists/{suite}/InRelease"))).unwrap();
    }
    std::fs::remove_file(&s.lock).unwrap();
    let (code, _, err) = s.lock(&server);
    assert_eq!(code, 0, "{err}");
    assert_eq!(server.hits("dists/trixie/Release.gpg"), 1);
    assert_eq!(Lock::read(&s.lock).packages().len(), 8);
}

#[test]
fn lock_refuses_unsigned_and_foreign_signed_suites_and_writes_nothing() {
    let a = archive();
    let server = Server::start(a.root.path()).unwrap();
    // The config trusts another key than the one the archive signs with.
    let other = qus_source::testkit::TestKey::generate("qus other <other@qus.invalid>", "never");
    let s = setup_with(BARE, Some(&other.keyring));
    let foreign = |s: &Setup, cmd: &str| {
        let (code, out, err) = s.run(&[cmd, "--mirror", &server.url()]);
        assert_eq!(code, 1, "a failure, not a usage error: {cmd}: {err}");
        assert!(
            err.contains("dists/trixie/InRelease") && err.contains("foreign signer"),
            "{cmd}: {err}"
        );
        assert!(
            err.contains(&a.key.fingerprint[24..]),
            "names the signer: {err}"
        );
        assert!(out.is_empty(), "{cmd}: {out}");
    };
    foreign(&s, "lock");
    assert!(!s.lock.exists(), "nothing written");

    // Unsigned: no InRelease, no Release.gpg.
    for suite in ["trixie", "bookworm"] {
        for f in ["InRelease", "Release.gpg"] {
            std::fs::remove_file(a.path(&format!("dists/{suite}/{f}"))).unwrap();
        }
    }
    let s = setup(BARE, &a);
    let (code, _, err) = s.lock(&server);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not signed"), "{err}");
    assert!(!s.lock.exists(), "nothing written");

    // Signed again, with the archive's key configured: accepted, and the lock says by whom.
    a.index();
    let (code, out, err) = s.lock(&server);
    assert_eq!(code, 0, "{err}");
    let lock = Lock::read(&s.lock);
    assert_eq!(lock.0["format"].as_u64(), Some(2));
    for suite in ["trixie", "bookworm"] {
        let signed = lock.0["suites"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|x| x["suite"].as_str() == Some(suite))
            .unwrap_or_else(|| panic!("{suite} not in the lock"));
        assert_eq!(
            signed["signed_by"][0]["fingerprint"].as_str(),
            Some(a.key.fingerprint.as_str())
        );
        assert!(signed["signed_by"][0]["uid"]
            .as_str()
            .unwrap()
            .contains("qus test archive"));
    }
    assert_eq!(
        json(&out)["suites"][0]["signed_by"][0]["fingerprint"],
        a.key.fingerprint
    );

    // `qus check` verifies too: with the other key as the keyring, it refuses.
    let locked = std::fs::read_to_string(&s.lock).unwrap();
    std::fs::copy(&other.keyring, s.dir.path().join("archive.gpg")).unwrap();
    foreign(&s, "check");
    foreign(&s, "lock");
    assert_eq!(
        std::fs::read_to_string(&s.lock).unwrap(),
        locked,
        "the lock is untouched"
    );
}

#[test]
fn lock_verifies_debians_real_inrelease_with_debians_keyring() {
    // The real trixie InRelease and amd64 Packages.xz, as the mirror published them
    // (ci/fetch-test-debs), served from loopback with the real packages in the pool (lock
    // pins only files the mirror serves); the keyring is the default one.
    let debs = qus_source::testkit::test_debs();
    let inrelease = debs.join("dists/trixie/InRelease");
    assert!(inrelease.is_file(), "run ci/fetch-test-debs");
    let root = tempfile::tempdir().unwrap();
    for rel in [
        "dists/trixie/InRelease",
        "dists/trixie/main/binary-amd64/Packages.xz",
    ] {
        let dest = root.path().join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(debs.join(rel), dest).unwrap();
    }
    let pooled = [
        ("b/busybox", real_deb("busybox-static", "amd64")),
        ("q/qemu", real_deb("qemu-user", "amd64")),
    ];
    for (dir, deb) in &pooled {
        let dest = root
            .path()
            .join(format!("pool/main/{dir}/{}", pool_name(deb)));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(deb, dest).unwrap();
    }
    let server = Server::start(root.path()).unwrap();
    let s = setup_with(
        "repo: qus-test\ndefault: d10.0\nhosts: [amd64]\nbusybox:\n  package: busybox-static\n  \
         suite: trixie\nsources:\n  - { name: d10.0, distro: debian, suite: trixie, package: \
         qemu-user, targets: [aarch64] }\n",
        None,
    );
    let (code, _, err) = s.lock(&server);
    assert_eq!(code, 0, "lock against the real index: {err}");
    assert!(err.contains("trixie: Release signed by"), "{err}");
    let lock = Lock::read(&s.lock);
    let mut signers: Vec<String> = lock.0["suites"][0]["signed_by"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|x| x["fingerprint"].as_str().unwrap().to_string())
        .collect();
    signers.sort();
    assert!(!signers.is_empty());
    assert_eq!(
        signers,
        qus_source::testkit::gpgv_signers(
            &inrelease,
            std::path::Path::new(qus_source::debian_index::DEBIAN_ARCHIVE_KEYRING)
        ),
        "qus and gpgv agree on who signed"
    );
    assert_eq!(lock.packages().len(), 2);
    for (role, (_, deb)) in ["busybox", "d10.0"].into_iter().zip(&pooled) {
        let p = lock.get(role, "amd64").unwrap();
        assert_eq!(
            p["sha256"].as_str().unwrap(),
            sum(deb).0,
            "{role}: the real file"
        );
    }
}

#[test]
fn a_package_missing_from_the_index_names_package_suite_and_arch() {
    let a = archive();
    let server = Server::start(a.root.path()).unwrap();
    let s = setup(
        &BARE.replace("package: qemu-user\n", "package: qemu-user-binfmt\n"),
        &a,
    );
    let (code, _, err) = s.lock(&server);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("qemu-user-binfmt"), "{err}");
    assert!(err.contains("in trixie for amd64"), "{err}");
    assert!(!s.lock.exists(), "nothing written");
}

#[test]
fn a_malformed_lock_is_located_and_lock_rewrites_it() {
    let a = archive();
    let server = Server::start(a.root.path()).unwrap();
    let s = setup(BARE, &a);
    let (code, _, err) = s.lock(&server);
    assert_eq!(code, 0, "{err}");
    let good = std::fs::read_to_string(&s.lock).unwrap();
    let bad = good.replacen("size: ", "size: big", 1);
    std::fs::write(&s.lock, &bad).unwrap();
    let line = bad.lines().position(|l| l.contains("size: big")).unwrap() + 1;

    let (code, _, err) = s.run(&["plan"]);
    assert_eq!(code, 2);
    let want = format!("{}:{line}:", s.lock.display());
    assert!(err.contains(&want), "want {want}: {err}");
    assert!(err.contains("expected u64"), "{err}");

    // `qus lock` says it is ignoring it, and writes a good one.
    let (code, _, err) = s.lock(&server);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("warning: ignoring the current lock") && err.contains(&want),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&s.lock).unwrap(), good);

    // A malformed config is located the same way (and the lock is not even read).
    std::fs::write(
        &s.config,
        BARE.replace("  suite: trixie\nsources:", "  suite: [trixie\nsources:"),
    )
    .unwrap();
    let (code, _, err) = s.run(&["lock", "--mirror", &server.url()]);
    assert_eq!(code, 2);
    assert!(err.contains(&format!("{}:", s.config.display())), "{err}");
    let loc = err
        .split(&format!("{}:", s.config.display()))
        .nth(1)
        .unwrap();
    let mut parts = loc.splitn(3, ':');
    assert!(
        parts.next().unwrap().parse::<usize>().is_ok(),
        "line: {err}"
    );
    assert!(
        parts.next().unwrap().parse::<usize>().is_ok(),
        "column: {err}"
    );
}

#[test]
fn report_is_the_plans_targets_by_hosts() {
    let a = archive();
    let s = setup(BARE, &a);
    let server = Server::start(a.root.path()).unwrap();
    let (code, _, err) = s.lock(&server);
    assert_eq!(code, 0, "{err}");
    drop(server);

    // Pure: no mirror needed from here on.
    let (code, md, err) = s.run(&["report", "--targets", "aarch64,arm,i386"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        md.contains("| target | amd64 | arm64v8 | arm32v7 |"),
        "{md}"
    );
    assert!(md.contains("| aarch64 | ✓ | ✓ |   |"), "{md}");
    assert!(md.contains("| i386 |   |   | ✓ |"), "{md}");
    assert!(md.contains("### d7.2: qemu-user-static"), "{md}");
    assert!(
        md.contains("- arm32v7: d7.2 has no qemu-user-static package for arm32v7"),
        "{md}"
    );

    let (code, out, err) = s.run(&["report", "--json", "--sources", "d10.0"]);
    assert_eq!(code, 0, "{err}");
    let doc = json(&out);
    let src = &doc["sources"][0];
    assert_eq!(src["source"], "d10.0");
    let row = |t: &str| {
        src["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["target"] == t)
            .unwrap()["hosts"]
            .clone()
    };
    assert_eq!(
        row("arm"),
        serde_json::json!(["amd64", "arm64v8", "arm32v7"])
    );
    assert_eq!(row("x86_64"), serde_json::json!(["amd64", "arm64v8"]));
}

/// The `packages` entry of (role, host) in `lock --json` or `check --json` output.
fn entry<'a>(doc: &'a serde_json::Value, role: &str, host: &str) -> &'a serde_json::Value {
    doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["role"] == role && p["host"] == host)
        .unwrap_or_else(|| panic!("no {role} {host} in {doc}"))
}

/// busybox from trixie, else forky; qemu-user from trixie.
const FALLBACK: &str = "\
repo: qus-test
default: d10.0
hosts: [amd64, arm64v8]
busybox:
  package: busybox-static
  suite: trixie
  fallback_suites: [forky]
sources:
  - name: d10.0
    distro: debian
    suite: trixie
    package: qemu-user
    targets: [aarch64, arm, riscv64, x86_64]
";

/// A mirror whose trixie lists a newer busybox-static for amd64 (a real package re-packed
/// as 1:1.37.0-7) that its pool lacks (404), and no busybox for arm64; forky lists and
/// serves the real ones. Returns the archive, the newer package's pool path, and the real
/// busybox version.
fn unserved_archive() -> (Archive, String, String) {
    let mut a = Archive::new();
    let real = real_deb("busybox-static", "amd64");
    let real_version = deb_version(&real);
    for arch in ["amd64", "arm64"] {
        a.add(&real_deb("busybox-static", arch), "busybox");
        a.add(&real_deb("qemu-user", arch), "qemu");
    }
    let scratch = tempfile::tempdir().unwrap();
    let newer = repack_with_version(&real, "1:1.37.0-7", scratch.path());
    let newer_pool = a.add(&newer, "busybox");
    let qemu = deb_version(&real_deb("qemu-user", "amd64"));
    a.suite_of_versions(
        "trixie",
        &["busybox-static", "qemu-user"],
        &["amd64", "arm64"],
        &["1:1.37.0-7", &qemu],
    );
    a.suite_of_versions(
        "forky",
        &["busybox-static"],
        &["amd64", "arm64"],
        &[&real_version],
    );
    a.index();
    // Listed, then gone from the pool: a backports pool that lags its index.
    std::fs::remove_file(a.path(&newer_pool)).unwrap();
    (a, newer_pool, real_version)
}

#[test]
fn lock_pins_the_newest_served_file_and_says_which_was_listed_but_not_served() {
    let (a, newer_pool, real) = unserved_archive();
    let server = Server::start(a.root.path()).unwrap();
    let s = setup(FALLBACK, &a);

    let (code, out, err) = s.lock(&server);
    assert_eq!(code, 0, "lock: {err}");
    assert!(
        err.contains(
            "busybox amd64: trixie 1:1.37.0-7 is listed but the mirror answers 404; trying forky"
        ),
        "progress: {err}"
    );
    let doc = json(&out);
    let pin = |host: &str| entry(&doc, "busybox", host).clone();
    let amd64 = pin("amd64");
    assert_eq!(
        (amd64["suite"].as_str(), amd64["version"].as_str()),
        (Some("forky"), Some(real.as_str()))
    );
    assert_eq!(amd64["sha256"], sum(&real_deb("busybox-static", "amd64")).0);
    let note =
        format!("trixie 1:1.37.0-7 is listed but the mirror answers 404; pinned forky {real}");
    assert_eq!(amd64["note"], note.as_str());
    assert_eq!(amd64["not_served"][0]["file"], newer_pool.as_str());
    assert_eq!(amd64["not_served"][0]["why"], "the mirror answers 404");
    // arm64: trixie lists none, forky does.
    let arm64 = pin("arm64v8");
    assert_eq!(arm64["suite"], "forky");
    assert_eq!(
        arm64["note"],
        format!("trixie lists no busybox-static for arm64; pinned forky {real}").as_str()
    );
    // The own suite's newest, served: no note.
    let qemu = &doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["role"] == "d10.0")
        .unwrap()
        .clone();
    assert_eq!(qemu["note"], serde_json::Value::Null);
    assert_eq!(qemu["suite"], "trixie");

    // The lock says forky, and the config accepts it (forky is a fallback of busybox).
    let lock = Lock::read(&s.lock);
    assert_eq!(
        lock.get("busybox", "amd64").unwrap()["suite"].as_str(),
        Some("forky")
    );
    let (code, _, err) = s.run(&["plan"]);
    assert_eq!(code, 0, "{err}");
    // Asked, never downloaded.
    assert_eq!(server.requests(&newer_pool), ["HEAD"]);
    let file = lock.get("busybox", "amd64").unwrap()["file"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(server.requests(&file), ["HEAD"]);

    // The table says the same.
    let (code, table, err) = s.run(&["lock", "--mirror", &server.url()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        table.contains(&format!("busybox amd64: {note}\n")),
        "{table}"
    );
    let row = table
        .lines()
        .find(|l| l.starts_with("busybox") && l.contains("amd64"))
        .unwrap();
    assert!(
        row.contains("forky") && row.contains("unchanged"),
        "{table}"
    );

    // `qus check`: current, never "outdated" for a file nobody can fetch; it says why.
    let (code, out, err) = s.run(&["check", "--mirror", &server.url(), "--json"]);
    assert_eq!(code, 0, "{err}\n{out}");
    let doc = json(&out);
    assert_eq!(doc["status"], "current");
    let row = entry(&doc, "busybox", "amd64").clone();
    assert_eq!(row["status"], "newer-not-served");
    assert_eq!(row["newest"], real.as_str());
    assert_eq!(
        row["note"],
        format!("trixie 1:1.37.0-7 is listed but the mirror answers 404; the newest served is forky {real}").as_str()
    );
    let (code, table, _) = s.run(&["check", "--mirror", &server.url()]);
    assert_eq!(code, 0);
    assert!(
        table.contains("current (newer listed, not served)"),
        "{table}"
    );
    assert!(
        table.contains("busybox amd64: trixie 1:1.37.0-7 is listed but the mirror answers 404"),
        "{table}"
    );
    assert!(!table.contains("outdated"), "{table}");

    // A lock that pins the unserved file itself: check exits 1 and says so.
    let text = std::fs::read_to_string(&s.lock).unwrap();
    let newer_sum = {
        let packages =
            std::fs::read_to_string(a.path("dists/trixie/main/binary-amd64/Packages")).unwrap();
        let stanza = packages
            .split("\n\n")
            .find(|st| st.contains("Version: 1:1.37.0-7"))
            .unwrap()
            .to_string();
        let field = |n: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(n))
                .unwrap()
                .to_string()
        };
        (field("SHA256: "), field("Size: "))
    };
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    for p in doc["packages"].as_sequence_mut().unwrap() {
        if p["role"].as_str() == Some("busybox") && p["host"].as_str() == Some("amd64") {
            p["suite"] = "trixie".into();
            p["version"] = "1:1.37.0-7".into();
            p["file"] = newer_pool.as_str().into();
            p["sha256"] = newer_sum.0.as_str().into();
            p["size"] = newer_sum.1.parse::<u64>().unwrap().into();
        }
    }
    std::fs::write(&s.lock, serde_yaml_ng::to_string(&doc).unwrap()).unwrap();
    let (code, out, err) = s.run(&["check", "--mirror", &server.url(), "--json"]);
    assert_eq!(code, 1, "{err}\n{out}");
    let row = entry(&json(&out), "busybox", "amd64").clone();
    assert_eq!(row["status"], "not-served");
    assert!(
        row["note"]
            .as_str()
            .unwrap()
            .starts_with("the pinned 1:1.37.0-7 is not served (the mirror answers 404)"),
        "{row}"
    );
    assert!(
        err.contains("out of date or not served: run `qus lock`"),
        "{err}"
    );

    // Nothing any allowed suite lists is served: an error naming host, package and suites,
    // and the lock is left as it was.
    std::fs::remove_file(a.path(&file)).unwrap();
    let before = std::fs::read_to_string(&s.lock).unwrap();
    let (code, out, err) = s.lock(&server);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains(&format!(
            "busybox amd64: the mirror serves no busybox-static for amd64 from trixie, forky: \
             trixie 1:1.37.0-7 (the mirror answers 404), forky {real} (the mirror answers 404)"
        )),
        "{err}"
    );
    assert!(err.contains("nothing was written to"), "{err}");
    assert_eq!(std::fs::read_to_string(&s.lock).unwrap(), before);
}

#[test]
fn a_mirror_that_refuses_head_is_asked_with_a_one_byte_range_get() {
    let a = archive();
    let server = Server::start(a.root.path()).unwrap();
    server.refuse_head(true);
    let s = setup(BARE, &a);
    let (code, _, err) = s.lock(&server);
    assert_eq!(code, 0, "lock: {err}");
    let lock = Lock::read(&s.lock);
    assert_eq!(lock.packages().len(), 8);
    for p in lock.packages() {
        let file = p["file"].as_str().unwrap();
        assert_eq!(server.requests(file), ["HEAD", "GET bytes=0-0"], "{file}");
        assert_eq!(server.hits(file), 0, "{file} is not downloaded");
    }
    // And a file it lists but does not serve is still found out.
    let gone = lock.get("d10.0", "arm64v8").unwrap()["file"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_file(a.path(&gone)).unwrap();
    let (code, _, err) = s.lock(&server);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("d10.0 arm64v8: the mirror serves no qemu-user for arm64 from trixie")
            && err.contains("(the mirror answers 404)"),
        "{err}"
    );
}
