//! Shared test helpers: finding the real packages, building hostile ones, and checking that
//! nothing was written where it should not be. The loopback mirror is
//! `qus_source::testkit::Server`.

#![allow(dead_code)]

pub mod debgen;

use std::path::{Path, PathBuf};

/// Where the real packages are.
pub fn debs_dir() -> PathBuf {
    match std::env::var_os("QUS_TEST_DEBS") {
        Some(d) => PathBuf::from(d),
        None => {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/qus/debs")
        }
    }
}

/// The real package `<name>_<any version>_<arch>.deb`.
pub fn real_deb(name: &str, arch: &str) -> PathBuf {
    let dir = debs_dir();
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
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(&prefix) && n.ends_with(&suffix)
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

/// All files and folders under `root`, relative, sorted.
pub fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// sha256 of a file, as hex.
pub fn sha256_file(p: &Path) -> String {
    qus_source::Sha256::of(&std::fs::read(p).unwrap()).to_hex()
}

/// The pool file name of an `apt-get download` file: the same without the epoch
/// (`qemu-user_1%3a10.0.13+ds-0+deb13u1_arm64.deb` → `qemu-user_10.0.13+ds-0+deb13u1_arm64.deb`).
pub fn pool_name(deb: &Path) -> String {
    let file = deb.file_name().unwrap().to_str().unwrap();
    let (pkg, rest) = file.split_once('_').unwrap();
    let rest = match rest.split_once("%3a") {
        Some((epoch, r)) if epoch.bytes().all(|b| b.is_ascii_digit()) => r,
        _ => rest,
    };
    format!("{pkg}_{rest}")
}
