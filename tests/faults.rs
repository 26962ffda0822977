//! Faults around the cache: two runs at once, and a full disk.

use crate::support::*;
use std::process::Command;

#[test]
fn two_builds_at_once_share_one_cache() {
    let cfg = real_config();
    let cache = tempfile::tempdir().unwrap();
    let repos = [Repo::new("qus-test-conc-a"), Repo::new("qus-test-conc-b")];
    let children: Vec<_> = repos
        .iter()
        .map(|r| {
            qus(cache.path())
                .arg("--config")
                .arg(&cfg.path)
                .args(["build", "--repo", &r.name])
                .args(NARROW)
                .args(cfg.debs_flag())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (c, r) in children.into_iter().zip(&repos) {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(r.images().len(), 4, "{}", r.name);
    }
    // One copy of the package and one extraction in the shared cache.
    let debs: Vec<_> = walk(cache.path())
        .into_iter()
        .filter(|p| {
            std::fs::read(p)
                .map(|b| b.starts_with(b"!<arch>\n"))
                .unwrap_or(false)
        })
        .collect();
    assert_eq!(debs.len(), 2, "qemu-user and busybox once each: {debs:?}");
}

#[test]
fn full_disk_in_the_cache_is_a_clean_error_and_the_cache_stays_usable() {
    let cfg = real_config();
    let cache = tempfile::tempdir().unwrap();
    let repo = Repo::new("qus-test-full");
    // A 30 MB tmpfs over the cache, in a private mount namespace (nothing changes on the
    // host): the 71 MB package cannot fit.
    let script = format!(
        "mount -t tmpfs -o size=30m tmpfs {dir} && exec \"$@\"",
        dir = cache.path().display()
    );
    let (ok, _, err) = run(Command::new("unshare")
        .args(["--mount", "sh", "-c", &script, "sh"])
        .arg(env!("CARGO_BIN_EXE_qus"))
        .arg("--config")
        .arg(&cfg.path)
        .args(["build", "--repo", &repo.name])
        .args(NARROW)
        .args(cfg.debs_flag())
        .env("QUS_CACHE", cache.path()));
    assert!(!ok, "the build fit in 30 MB?");
    assert!(
        err.to_lowercase().contains("disk is full") || err.contains("No space left"),
        "{err}"
    );
    assert!(repo.images().is_empty());
    // Outside the namespace the same cache folder is fine: the build completes.
    let (ok, _, err) = run(qus(cache.path())
        .arg("--config")
        .arg(&cfg.path)
        .args(["build", "--repo", &repo.name])
        .args(NARROW)
        .args(cfg.debs_flag()));
    assert!(ok, "{err}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
