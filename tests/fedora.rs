//! A Fedora source: per-target `qemu-user-static-<group>` rpms (zstd cpio payloads), tagged
//! `fV`. The rpms are built here with Debian's rpmbuild around real emulator binaries (taken
//! from Debian's qemu-user package by qus's own extraction), not hand-made bytes.

use crate::support::*;
use qus_source::testkit;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Builds two x86_64 rpms of one `qemu` build (aarch64, arm) into `out`; returns them and
/// the emulators that went in.
fn build_rpms(out: &Path) -> (Vec<PathBuf>, PathBuf) {
    let bindir = out.join("bin");
    std::fs::create_dir_all(&bindir).unwrap();
    qus_source::extract_emulators(
        &deb("qemu-user", "amd64"),
        &bindir,
        &qus_source::EmulatorRequest::new("amd64").targets(["aarch64", "arm"]),
        &qus_source::Limits::default(),
    )
    .unwrap();
    let targets = ["aarch64", "arm"];
    let spec = testkit::rpm::qemu_spec(&targets);
    let rpms = testkit::rpm::rpmbuild(&spec, &targets, "x86_64", "w3.zstdio", &bindir, out);
    (rpms, bindir)
}

/// A config with the source `f10.0` pinning `rpms` (aarch64, arm) for amd64, copied into the
/// packages folder; `keyring` (beside the config) on the source when given.
fn fedora_config(rpms: &[PathBuf], keyring: Option<&Path>) -> TestConfig {
    let cfg = config_with(vec![Pin::new("amd64", deb("qemu-user", "amd64"))], vec![]);
    let mut text = std::fs::read_to_string(&cfg.path).unwrap();
    text.push_str(
        "  - name: f10.0\n    distro: fedora\n    suite: \"43\"\n    package: qemu-user-static\n    version: \"2:10.0.13-1.qus\"\n    targets: [aarch64, arm]\n",
    );
    if let Some(k) = keyring {
        std::fs::copy(k, cfg.dir.path().join("fedora.gpg")).unwrap();
        text.push_str("    keyring: fedora.gpg\n");
    }
    text.push_str("    files:\n      amd64:\n        packages:\n");
    for (rpm, target) in rpms.iter().zip(["aarch64", "arm"]) {
        let (sha, size) = sum(rpm);
        let name = rpm.file_name().unwrap().to_string_lossy();
        std::fs::copy(rpm, cfg.debs.join(&*name)).unwrap();
        text.push_str(&format!(
            "          - {{ file: releases/43/Everything/x86_64/os/Packages/q/{name}, size: {size}, sha256: {sha}, targets: [{target}] }}\n"
        ));
    }
    std::fs::write(&cfg.path, text).unwrap();
    cfg
}

/// `qus build` of the f10.0 source for amd64 into `repo`, from the config's package folder.
fn build_f10(cfg: &TestConfig, repo: &str) -> (bool, String, String) {
    run(cfg
        .qus()
        .args([
            "build",
            "--sources",
            "f10.0",
            "--hosts",
            "amd64",
            "--repo",
            repo,
        ])
        .arg("--packages")
        .arg(&cfg.debs))
}

#[test]
fn fedora_rpms_become_f_tagged_images() {
    let work = tempfile::tempdir().unwrap();
    let (rpms, bindir) = build_rpms(work.path());
    // Signed as Fedora signs, and checked against the key named in the config.
    let key = testkit::TestKey::generate("qus fedora <fedora@qus.invalid>", "never");
    for rpm in &rpms {
        key.rpmsign(rpm);
    }
    let cfg = fedora_config(&rpms, Some(&key.keyring));

    let plan = plan_json(&cfg, &["--sources", "f10.0", "--hosts", "amd64"]);
    let fedora: Vec<&serde_json::Value> = plan["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["distro"] == "fedora")
        .collect();
    assert_eq!(fedora.len(), 2, "one rpm per group: {fedora:?}");
    for p in &fedora {
        let k = p["keyring"].as_str().unwrap();
        assert!(k.ends_with("fedora.gpg"), "{p}");
    }

    let repo = Repo::new("qus-test-fedora");
    let (ok, _, err) = build_f10(&cfg, &repo.name);
    assert!(ok, "{err}");
    assert!(err.contains("signed by qus fedora"), "{err}");
    let pkg = inspect(&format!("{}:amd64-f10.0-pkg", repo.name)).unwrap();
    assert_eq!(pkg.layers.len(), 2);
    assert_eq!(pkg.labels["qus.source"], "f10.0");
    let arm = file_from_image(
        &format!("{}:amd64-f10.0-arm", repo.name),
        "usr/bin/qemu-arm-static",
    )
    .unwrap();
    let went_in = std::fs::read(bindir.join("qemu-arm-static")).unwrap();
    assert_eq!(Sha256::digest(&arm), Sha256::digest(&went_in));
    assert_eq!(
        u16::from_le_bytes([arm[18], arm[19]]),
        62,
        "x86-64 host binary"
    );
}

#[test]
fn a_fedora_source_without_a_mirror_says_so() {
    let cfg = config_with(vec![Pin::new("amd64", deb("qemu-user", "amd64"))], vec![]);
    let mut text = std::fs::read_to_string(&cfg.path).unwrap();
    text.push_str(&format!(
        "  - name: f10.0\n    distro: fedora\n    suite: \"43\"\n    package: qemu-user-static\n    version: \"2:10.0\"\n    targets: [aarch64]\n    files:\n      amd64: {{ file: releases/x.rpm, sha256: {} }}\n",
        "0".repeat(64)
    ));
    std::fs::write(&cfg.path, text).unwrap();
    let repo = Repo::new("qus-test-fedora-nomirror");
    let (ok, _, err) = run(qus(cfg.dir.path())
        .env_remove("QUS_FEDORA_MIRROR")
        .env("QUS_MIRROR", "http://127.0.0.1:9/debian")
        .arg("--config")
        .arg(&cfg.path)
        .args([
            "build",
            "--sources",
            "f10.0",
            "--hosts",
            "amd64",
            "--repo",
            &repo.name,
        ]));
    assert!(!ok);
    assert!(err.contains("no Fedora mirror configured"), "{err}");
}

#[test]
fn fedora_rpms_must_be_signed_when_the_source_names_a_keyring() {
    let work = tempfile::tempdir().unwrap();
    let (rpms, _) = build_rpms(work.path());
    let key = testkit::TestKey::generate("qus fedora <fedora@qus.invalid>", "never");
    // Unsigned; then signed by a key the keyring does not hold.
    let other = testkit::TestKey::generate("qus other <other@qus.invalid>", "never");
    let signed: Vec<PathBuf> = rpms
        .iter()
        .map(|r| {
            let s = work.path().join(format!(
                "signed-{}",
                r.file_name().unwrap().to_string_lossy()
            ));
            std::fs::copy(r, &s).unwrap();
            other.rpmsign(&s);
            s
        })
        .collect();
    let other_id = &other.fingerprint[other.fingerprint.len() - 16..];
    for (rpms, want) in [
        (&rpms, "not signed; Fedora signs its rpms".to_string()),
        (&signed, "which the keyring does not hold".to_string()),
    ] {
        let cfg = fedora_config(rpms, Some(&key.keyring));
        let repo = Repo::new("qus-test-fedora-unsigned");
        let (ok, _, err) = build_f10(&cfg, &repo.name);
        assert!(!ok);
        assert!(err.contains(&want), "{err}");
        assert!(err.contains("qemu-user-static"), "{err}");
        if want.contains("hold") {
            assert!(err.contains(other_id), "{err}");
        }
        assert!(
            inspect(&format!("{}:amd64-f10.0-pkg", repo.name)).is_none(),
            "refused before any image was made"
        );
    }
}
