//! A bad package stops `qus build` from making any image that needs it, and a bad command
//! line stops it before anything is made, with an error that names the input (exit 1 and 2).

use crate::support::*;
use std::path::{Path, PathBuf};

/// Runs a build of aarch64 images and expects it to fail without leaving any image that has
/// an emulator (the register image needs only busybox, which is fine: it may be made).
fn fails(cfg: &TestConfig, extra: &[&str]) -> String {
    let repo = Repo::new("qus-test-bad");
    let (ok, _, err) = run(cfg
        .qus()
        .arg("build")
        .arg("--repo")
        .arg(&repo.name)
        .args(cfg.debs_flag())
        .args(["--targets", "aarch64", "--sources", "d10.0"])
        .args(extra));
    assert!(!ok, "the build should have failed");
    let with_emulators: Vec<String> = repo
        .images()
        .into_iter()
        .filter(|t| !t.ends_with("-register"))
        .collect();
    assert!(
        with_emulators.is_empty(),
        "images made from the bad package: {with_emulators:?}"
    );
    err
}

fn amd64_only(file: PathBuf) -> TestConfig {
    config_with(vec![Pin::new("amd64", file)], vec![])
}

#[test]
fn truncated_deb() {
    let real = std::fs::read(deb("qemu-user", "amd64")).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let name = "qemu-user_9.9-trunc_amd64.deb";
    let path = scratch.path().join(name);
    std::fs::write(&path, &real[..real.len() / 2]).unwrap();
    let cfg = amd64_only(path);
    let err = fails(&cfg, &["--hosts", "amd64"]);
    assert!(err.contains(name), "names the file: {err}");
    assert!(
        err.to_lowercase().contains("truncated") || err.to_lowercase().contains("corrupt"),
        "{err}"
    );
}

#[test]
fn wrong_sha256_names_file_expected_and_actual() {
    let cfg = amd64_only(deb("qemu-user", "amd64"));
    let (actual, _) = sum(&deb("qemu-user", "amd64"));
    let text = std::fs::read_to_string(&cfg.path).unwrap();
    let wrong = "0".repeat(64);
    std::fs::write(&cfg.path, text.replace(&actual, &wrong)).unwrap();
    let err = fails(&cfg, &["--hosts", "amd64"]);
    assert!(err.contains(&wrong), "expected sum: {err}");
    assert!(err.contains(&actual), "actual sum: {err}");
    assert!(err.contains("qemu-user_"), "file: {err}");
}

#[test]
fn package_of_the_wrong_arch() {
    // The arm64 package pinned (with its own, correct sum) as amd64's.
    let cfg = amd64_only(deb("qemu-user", "arm64"));
    let err = fails(&cfg, &["--hosts", "amd64"]);
    assert!(err.contains("arm64") && err.contains("amd64"), "{err}");
}

#[test]
fn requested_target_missing_from_the_package() {
    // The config claims armhf's 10.0 package ships aarch64: it does not.
    let cfg = config_with(
        vec![Pin {
            targets: Some("aarch64, arm"),
            ..Pin::new("arm32v7", deb("qemu-user", "armhf"))
        }],
        vec![],
    );
    let err = fails(&cfg, &["--hosts", "arm32v7"]);
    assert!(err.contains("aarch64"), "{err}");
    assert!(err.contains("armhf"), "{err}");
}

#[test]
fn unknown_arch_lists_the_valid_names() {
    let cfg = amd64_only(deb("qemu-user", "amd64"));
    let err = fails(&cfg, &["--hosts", "vax"]);
    assert!(
        err.contains("'vax'") && err.contains("arm64v8") && err.contains("riscv64"),
        "{err}"
    );
}

#[test]
fn tar_entry_escaping_the_work_dir() {
    let scratch = tempfile::tempdir().unwrap();
    let bytes = fake_deb("../../../../tmp/qus-escape-test", b"owned");
    let name = "qemu-user_9.9-evil_amd64.deb";
    let path = scratch.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    let cfg = amd64_only(path);
    let err = fails(&cfg, &["--hosts", "amd64"]);
    assert!(err.contains(name), "{err}");
    assert!(err.contains(".."), "names the entry: {err}");
    assert!(
        !Path::new("/tmp/qus-escape-test").exists(),
        "the entry escaped"
    );
}

#[test]
fn daemon_unreachable() {
    let cfg = amd64_only(deb("qemu-user", "amd64"));
    let (ok, _, err) = run(cfg
        .qus()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .arg("build")
        .args(NARROW)
        .args(cfg.debs_flag()));
    assert!(!ok);
    assert!(err.contains("cannot reach the container engine"), "{err}");
    assert!(
        err.contains("unix:///nonexistent/docker.sock (DOCKER_HOST)"),
        "{err}"
    );
}
