//! The real packages `.ci/run` (`ci/fetch-test-debs`) downloads with `apt-get download`.
//!
//! These panic, with what to run, when the packages are missing: they serve tests.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the real packages are: `$QUS_TEST_DEBS`, else `~/.cache/qus/test-debs`.
pub fn test_debs() -> PathBuf {
    match std::env::var_os("QUS_TEST_DEBS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
            .join(".cache/qus/test-debs"),
    }
}

/// The newest real `<name>_<version>_<arch>.deb` (as `apt-get download` names it).
pub fn real_deb(name: &str, arch: &str) -> PathBuf {
    let dir = test_debs();
    let prefix = format!("{name}_");
    let suffix = format!("_{arch}.deb");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "cannot list {} ({e}): the real Debian packages are missing; run `bash .ci/run` \
                 (it fetches them with apt-get download) or point QUS_TEST_DEBS at a folder with them",
                dir.display()
            )
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(&suffix))
        })
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!(
            "no {name} package for {arch} in {}: run `bash .ci/run` (it fetches them with \
             apt-get download) or point QUS_TEST_DEBS at a folder with {name}_*_{arch}.deb",
            dir.display()
        )
    })
}

/// The pool file name of an `apt-get download` file: the same without the epoch
/// (`qemu-user_1%3a10.0.13+ds-0+deb13u1_arm64.deb` → `qemu-user_10.0.13+ds-0+deb13u1_arm64.deb`).
pub fn pool_name(deb: &Path) -> String {
    let file = deb
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let Some((pkg, rest)) = file.split_once('_') else {
        return file.to_string();
    };
    let rest = match rest.split_once("%3a") {
        Some((epoch, r)) if epoch.bytes().all(|b| b.is_ascii_digit()) => r,
        _ => rest,
    };
    format!("{pkg}_{rest}")
}

/// Runs Debian's `apt-ftparchive` (apt-utils) in `root` and returns its stdout: the
/// `Packages` and `Release` files of a test mirror, made by Debian's own tool.
pub fn ftparchive(root: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("apt-ftparchive")
        .args(args)
        .current_dir(root)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run apt-ftparchive ({e}): apt-get install -y apt-utils (.ci/run installs it)")
        });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
