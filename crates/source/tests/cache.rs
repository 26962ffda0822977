//! The extraction cache: a second run does not unpack again, an interrupted one is redone.

use std::time::Instant;

use qus_source::{
    Cache, EmulatorRequest, FetchOptions, Fetcher, FileRequest, Limits, Origin, PackageRef,
};

use crate::support::{real_deb, sha256_file, test_debs, tree};

/// Brings a real package into a fresh cache through the local-dir origin.
fn cached(cache: &Cache, name: &str, arch: &str) -> qus_source::VerifiedPackage {
    let deb = real_deb(name, arch);
    let pool_name = crate::support::pool_name(&deb);
    let pkg = PackageRef::new(
        &format!("pool/main/x/{pool_name}"),
        &sha256_file(&deb),
        None,
    )
    .unwrap();
    let f = Fetcher::new(cache.clone(), FetchOptions::default()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(f.fetch(&pkg, &Origin::local_dir(test_debs()), &|_| {}))
        .unwrap()
}

#[test]
fn second_extraction_comes_from_the_cache() {
    let root = tempfile::tempdir().unwrap();
    let cache = Cache::open(root.path()).unwrap();
    let pkg = cached(&cache, "qemu-user-static", "arm64");
    let req = EmulatorRequest::new("arm64").targets(["aarch64"]);
    let first = cache
        .extract_emulators(&pkg, &req, &Limits::default())
        .unwrap();
    assert!(!first.from_cache);
    assert_eq!(first.emulators.len(), 1);
    assert!(first.dir.starts_with(root.path().join("extract")));
    assert_eq!(
        tree(&first.dir),
        [".qus-complete.json", "qemu-aarch64-static"]
    );

    let t = Instant::now();
    let second = cache
        .extract_emulators(&pkg, &req, &Limits::default())
        .unwrap();
    assert!(second.from_cache);
    assert!(
        t.elapsed().as_millis() < 500,
        "a cache hit must not unpack ({:?})",
        t.elapsed()
    );
    assert_eq!(second.emulators, first.emulators);

    // Another request is another entry.
    let other = cache
        .extract_emulators(
            &pkg,
            &EmulatorRequest::new("arm64").targets(["alpha"]),
            &Limits::default(),
        )
        .unwrap();
    assert!(!other.from_cache);
    assert_ne!(other.dir, first.dir);
}

#[test]
fn extraction_without_marker_is_redone() {
    let root = tempfile::tempdir().unwrap();
    let cache = Cache::open(root.path()).unwrap();
    let pkg = cached(&cache, "busybox-static", "amd64");
    let req = FileRequest::busybox("amd64");
    let first = cache.extract_file(&pkg, &req, &Limits::default()).unwrap();
    let dir = first.path.parent().unwrap().to_path_buf();
    // Simulate a run killed before the marker: the file is there, the marker is not, and
    // a stray temp file is left over.
    std::fs::remove_file(dir.join(".qus-complete.json")).unwrap();
    std::fs::write(dir.join(".qus-abc.tmp"), b"half").unwrap();
    std::fs::write(&first.path, b"half a busybox").unwrap();
    let again = cache.extract_file(&pkg, &req, &Limits::default()).unwrap();
    assert_eq!(again, first);
    assert_eq!(sha256_file(&again.path), first.sha256.to_hex());
    assert_eq!(tree(&dir), [".qus-complete.json", "busybox"]);
}

#[test]
fn failed_extraction_leaves_no_entry() {
    let root = tempfile::tempdir().unwrap();
    let cache = Cache::open(root.path()).unwrap();
    let pkg = cached(&cache, "busybox-static", "amd64");
    let req = EmulatorRequest::new("amd64").targets(["aarch64"]);
    let err = cache
        .extract_emulators(&pkg, &req, &Limits::default())
        .unwrap_err();
    assert!(
        matches!(err, qus_source::Error::MissingTargets { .. }),
        "{err}"
    );
    let left: Vec<String> = tree(&root.path().join("extract"))
        .into_iter()
        .filter(|p| !p.ends_with(".lock"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
