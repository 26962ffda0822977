//! Shared test helpers: finding the real packages, building hostile ones, and checking that
//! nothing was written where it should not be. The loopback mirror is
//! `qus_source::testkit::Server`.

#![allow(dead_code)]

pub mod debgen;

use std::path::Path;

pub use qus_source::testkit::{pool_name, real_deb, test_debs};

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
