//! QEMU 11.1 on three hosts, loong64 among them, and `qus test`: every emulator in every
//! image runs a real guest program of its target (loong64's and riscv64's under this
//! machine's own emulators, chained), from Debian's real packages.

use crate::support::*;
use qus_registry::testkit::TestRegistry;
use std::path::PathBuf;

const TARGETS: &str = "aarch64,riscv64,loongarch64,x86_64,alpha";

/// The 11.1 packages, in a folder of their own beside the 10.0 ones.
fn deb11(arch: &str) -> PathBuf {
    let dir = debs_dir().join("qemu11.1");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}: run ci/fetch-test-debs", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("qemu-user_") && n.ends_with(&format!("_{arch}.deb"))
        })
        .unwrap_or_else(|| panic!("no qemu-user 11.1 for {arch} in {}", dir.display()))
}

/// A config of hosts amd64, riscv64 and loong64 with QEMU 11.1, and an arm64 guest program
/// (not a host here) under `guests:`. `broken_amd64`: amd64's package is instead one
/// whose qemu-aarch64 is a broken file.
fn config(broken_amd64: Option<PathBuf>) -> TestConfig {
    let dir = tempfile::tempdir().unwrap();
    let debs = dir.path().join("debs");
    std::fs::create_dir_all(&debs).unwrap();
    let entry = |host: &str, f: &std::path::Path, extra: &str| {
        let (sha, size) = sum(f);
        let name = f.file_name().unwrap();
        std::fs::copy(f, debs.join(name)).unwrap();
        format!(
            "    {host}: {{ file: {}, size: {size}, sha256: {sha}{extra} }}\n",
            pool_path(f)
        )
    };
    let mut text = String::from(
        "repo: qus-test\ndefault: d11.1\nhosts: [amd64, riscv64, loong64]\nbusybox:\n  package: busybox-static\n  suite: trixie\n  version: \"1\"\n  files:\n",
    );
    text.push_str(&entry("amd64", &deb("busybox-static", "amd64"), ""));
    text.push_str(&entry("riscv64", &deb("busybox-static", "riscv64"), ""));
    text.push_str(&entry(
        "loong64",
        &deb("busybox-static", "loong64"),
        ", suite: forky",
    ));
    text.push_str(&format!(
        "sources:\n  - name: d11.1\n    distro: debian\n    suite: trixie-backports\n    package: qemu-user\n    version: \"1:11.1\"\n    targets: [{TARGETS}]\n    files:\n"
    ));
    let amd64 = broken_amd64.unwrap_or_else(|| deb11("amd64"));
    for (host, f, extra) in [
        ("amd64", amd64, ""),
        ("riscv64", deb11("riscv64"), ", suite: forky"),
        ("loong64", deb11("loong64"), ", suite: forky"),
    ] {
        text.push_str(&format!("  {}", entry(host, &f, extra)));
    }
    text.push_str("guests:\n  package: busybox-static\n  files:\n");
    text.push_str(&entry(
        "arm64",
        &deb("busybox-static", "arm64"),
        ", version: \"1\", suite: trixie",
    ));
    let path = dir.path().join("qus.yml");
    std::fs::write(&path, text).unwrap();
    TestConfig { dir, path, debs }
}

#[test]
fn qemu_11_on_amd64_riscv64_and_loong64_runs_every_emulator() {
    let cfg = config(None);
    let repo = Repo::new("qus-test-11");
    let go = |cmd: &str, extra: &[&str]| {
        run(cfg
            .qus()
            .args([cmd, "--repo", &repo.name, "--targets", TARGETS])
            .args(cfg.debs_flag())
            .args(extra))
    };
    let (ok, _, err) = go("build", &[]);
    assert!(ok, "{err}");
    for (host, platform) in [
        ("amd64", "linux/amd64"),
        ("riscv64", "linux/riscv64"),
        ("loong64", "linux/loong64"),
    ] {
        let info = inspect(&format!("{}:{host}-d11.1", repo.name)).unwrap();
        assert_eq!(info.platform, platform);
        assert!(info.labels["qus.qemu.version"].starts_with("1:11.1"));
    }
    let (ok, out, err) = go("test", &["--json"]);
    assert!(ok, "qus test: {err}\n{out}");
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = rows["emulators"].as_array().unwrap();
    assert_eq!(rows.len(), 3 * 5, "each emulator of each host once");
    let find = |host: &str, target: &str| {
        rows.iter()
            .find(|r| r["host"] == host && r["target"] == target)
            .unwrap_or_else(|| panic!("{host} {target}: {out}"))
    };
    for host in ["amd64", "riscv64", "loong64"] {
        for (target, machine) in [
            ("aarch64", "aarch64"),
            ("riscv64", "riscv64"),
            ("loongarch64", "loongarch64"),
            ("x86_64", "x86_64"),
        ] {
            let r = find(host, target);
            assert_eq!(r["status"], "ran", "{r}");
            assert_eq!(r["machine"], machine, "{r}");
        }
        // Debian has no Alpha binaries: the emulator is asked its version.
        let alpha = find(host, "alpha");
        assert_eq!(alpha["status"], "version-only", "{alpha}");
        assert!(
            alpha["version"].as_str().unwrap().contains("11.1"),
            "{alpha}"
        );
    }
    // loong64's and riscv64's emulators ran under this machine's own.
    assert_eq!(find("amd64", "aarch64")["how"], "direct");
    assert_eq!(find("loong64", "riscv64")["how"], "under qemu-loongarch64");
    assert_eq!(find("riscv64", "loongarch64")["how"], "under qemu-riscv64");
    // Every image that holds an emulator is named with it.
    let full = find("loong64", "aarch64")["images"]
        .as_array()
        .unwrap()
        .clone();
    for tag in [
        "loong64-d11.1-pkg",
        "loong64-d11.1",
        "loong64-d11.1-aarch64",
    ] {
        assert!(full.iter().any(|t| t == tag), "{tag}: {full:?}");
    }
}

#[test]
fn a_broken_emulator_fails_the_test_and_is_never_pushed() {
    let work = tempfile::tempdir().unwrap();
    // A header-only amd64 ELF: the package checks pass, the kernel refuses to run it.
    let broken = work.path().join("qemu-user_9.9_amd64.deb");
    std::fs::write(
        &broken,
        fake_deb(
            "./usr/bin/qemu-aarch64",
            &qus_source::testkit::elf("amd64", 4096),
        ),
    )
    .unwrap();
    let cfg = config(Some(broken));
    let repo = Repo::new("qus-test-broken");
    let narrow = ["--hosts", "amd64", "--targets", "aarch64"];
    let (ok, _, err) = run(cfg
        .qus()
        .args(["build", "--repo", &repo.name])
        .args(narrow)
        .args(cfg.debs_flag()));
    assert!(ok, "{err}");
    let mut test = cfg.qus();
    test.args(["test", "--repo", &repo.name])
        .args(narrow)
        .args(cfg.debs_flag());
    let out = test.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("FAILED:"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains("qemu-aarch64 of amd64")
            && line.contains("amd64-d11.1-aarch64")
            && line.contains("amd64-d11.1-pkg"),
        "{line}"
    );

    // A release tests what it is about to push: the image with the broken emulator (and the
    // lists that would name it) stay out of the registry.
    let registry = TestRegistry::start().unwrap();
    let target = format!("{}/qus-broken", registry.host());
    let (ok, out, err) = run(cfg
        .qus()
        .args(["release", "--json", "--repo", &target])
        .args(narrow)
        .args(cfg.debs_flag()));
    assert!(!ok, "the release pushed a broken emulator");
    assert!(
        err.contains("amd64-d11.1-aarch64") && err.contains("qemu-aarch64"),
        "{err}"
    );
    // Its JSON holds the test's rows, the failure among them.
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = summary["tests"].as_array().expect("tests rows");
    let aarch64 = rows
        .iter()
        .find(|r| r["host"] == "amd64" && r["target"] == "aarch64")
        .unwrap_or_else(|| panic!("no amd64 aarch64 row: {summary}"));
    assert_eq!(aarch64["status"], "failed", "{aarch64}");
    let client = qus_registry::Client::new(qus_registry::ClientConfig::default()).unwrap();
    for tag in [
        "amd64-d11.1-aarch64",
        "amd64-d11.1-pkg",
        "aarch64",
        "latest",
    ] {
        let r = qus_registry::Reference::parse(&format!("{target}:{tag}")).unwrap();
        assert!(
            block_on(client.manifest_head(&r)).unwrap().is_none(),
            "{tag} was pushed"
        );
    }

    // The maintainers acknowledge it (`known_failures:`): reported as known, exit 0, and the
    // release publishes the images.
    let text = std::fs::read_to_string(&cfg.path).unwrap().replace(
        "guests:\n",
        "    known_failures:\n      - hosts: [amd64]\n        targets: [aarch64]\n        reason: \"a header-only ELF\"\nguests:\n",
    );
    std::fs::write(&cfg.path, text).unwrap();
    let out = test.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("known: qemu-aarch64 of amd64")
                && l.contains("a header-only ELF")),
        "{text}"
    );
    let (ok, out, err) = run(cfg
        .qus()
        .args(["release", "--json", "--repo", &target])
        .args(narrow)
        .args(cfg.debs_flag()));
    assert!(ok, "{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["tests"][0]["status"], "known-failure", "{summary}");
    let r = qus_registry::Reference::parse(&format!("{target}:amd64-d11.1-aarch64")).unwrap();
    assert!(block_on(client.manifest_head(&r)).unwrap().is_some());
}
