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
    // (ci/fetch-test-debs), served from loopback; the keyring is the default one.
    let root = qus_source::testkit::test_debs();
    let inrelease = root.join("dists/trixie/InRelease");
    assert!(inrelease.is_file(), "run ci/fetch-test-debs");
    let server = Server::start(&root).unwrap();
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
