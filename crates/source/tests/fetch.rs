//! Fetching into the cache from a loopback mirror and from a local folder, with the faults
//! real mirrors and disks have.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qus_source::{Cache, Error, FetchOptions, Fetcher, Origin, PackageRef, Progress, RetryPolicy};

use crate::support::{pool_name, real_deb, sha256_file, test_debs, tree};
use qus_source::testkit::{Mode, Server};

/// A mirror root with the real busybox-static packages at their pool paths.
pub(crate) struct Mirror {
    _root: tempfile::TempDir,
    pub server: Server,
    pub amd64: PackageRef,
    pub arm64: PackageRef,
}

pub(crate) fn mirror() -> Mirror {
    let root = tempfile::tempdir().unwrap();
    let mut refs = Vec::new();
    for arch in ["amd64", "arm64"] {
        let deb = real_deb("busybox-static", arch);
        let pool = format!("pool/main/b/busybox/{}", pool_name(&deb));
        let dest = root.path().join(&pool);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&deb, &dest).unwrap();
        let size = std::fs::metadata(&deb).unwrap().len();
        refs.push(PackageRef::new(&pool, &sha256_file(&deb), Some(size)).unwrap());
    }
    let server = Server::start(root.path()).unwrap();
    let arm64 = refs.pop().unwrap();
    let amd64 = refs.pop().unwrap();
    Mirror {
        _root: root,
        server,
        amd64,
        arm64,
    }
}

/// The default number of tries, without the default waits between them.
pub(crate) fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        backoff: Duration::from_millis(20),
        backoff_cap: Duration::from_millis(100),
        ..RetryPolicy::default()
    }
}

pub(crate) fn opts() -> FetchOptions {
    FetchOptions {
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(5),
        system_proxy: false,
        retry: quick_retries(),
    }
}

pub(crate) fn fetcher(cache_root: &Path) -> Fetcher {
    Fetcher::new(Cache::open(cache_root).unwrap(), opts()).unwrap()
}

pub(crate) fn origin(m: &Mirror) -> Origin {
    Origin::mirror(&m.server.url()).unwrap()
}

/// Nothing but lock files in the blob folder: no final name, no temp file.
pub(crate) fn assert_no_blob(cache_root: &Path) {
    let left: Vec<String> = tree(&cache_root.join("blobs/sha256"))
        .into_iter()
        .filter(|p| !p.ends_with(".lock"))
        .collect();
    assert!(left.is_empty(), "left in the cache: {left:?}");
}

pub(crate) fn wrong_sum(p: &PackageRef) -> PackageRef {
    let mut bad = p.clone();
    let mut bytes = *bad.sha256.as_bytes();
    bytes[0] ^= 0xff;
    bad.sha256 = qus_source::Sha256::from_bytes(bytes);
    bad
}

#[tokio::test]
async fn download_then_cache_hit() {
    let m = mirror();
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(cache.path());
    let seen: Arc<Mutex<Vec<Progress>>> = Arc::default();
    let s = seen.clone();
    let progress = move |p: &Progress| s.lock().unwrap().push(p.clone());
    let got = f.fetch(&m.amd64, &origin(&m), &progress).await.unwrap();
    assert!(!got.from_cache);
    assert_eq!(got.path, f.cache().blob_path(&m.amd64.sha256));
    assert_eq!(sha256_file(&got.path), m.amd64.sha256.to_hex());
    assert_eq!(Some(got.size), m.amd64.size);
    {
        let seen = seen.lock().unwrap();
        let last = seen.last().unwrap();
        assert_eq!((last.done, last.total), (got.size, Some(got.size)));
        assert!(seen.windows(2).all(|w| w[0].done <= w[1].done));
    }
    assert_eq!(m.server.hits(&m.amd64.pool_path), 1);

    let again = fetcher(cache.path())
        .fetch(&m.amd64, &origin(&m), &|_| {})
        .await
        .unwrap();
    assert!(again.from_cache);
    assert_eq!(again.path, got.path);
    assert_eq!(
        m.server.hits(&m.amd64.pool_path),
        1,
        "a cache hit makes no request"
    );
}

#[tokio::test]
async fn wrong_sha256_caches_nothing() {
    let m = mirror();
    let cache = tempfile::tempdir().unwrap();
    let bad = wrong_sum(&m.amd64);
    let err = fetcher(cache.path())
        .fetch(&bad, &origin(&m), &|_| {})
        .await
        .unwrap_err();
    let Error::ChecksumMismatch {
        file,
        origin,
        expected,
        actual,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(file, bad.file_name());
    assert!(origin.starts_with("http://127.0.0.1:") && origin.ends_with(&bad.pool_path));
    assert_eq!(expected, &bad.sha256.to_hex());
    assert_eq!(actual, &m.amd64.sha256.to_hex());
    let msg = err.to_string();
    assert!(
        msg.contains(expected) && msg.contains(actual) && msg.contains(file),
        "{msg}"
    );
    assert!(!Cache::open(cache.path())
        .unwrap()
        .blob_path(&bad.sha256)
        .exists());
    assert_no_blob(cache.path());
}

#[tokio::test]
async fn wrong_size_caches_nothing() {
    let m = mirror();
    let cache = tempfile::tempdir().unwrap();
    let mut bad = m.amd64.clone();
    bad.size = Some(1000);
    let err = fetcher(cache.path())
        .fetch(&bad, &origin(&m), &|_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::SizeMismatch { expected: 1000, .. }),
        "{err}"
    );
    assert_no_blob(cache.path());
}

#[tokio::test]
async fn truncated_transfer_caches_nothing() {
    let m = mirror();
    m.server.set_mode(Mode::Truncate(100_000));
    let cache = tempfile::tempdir().unwrap();
    let err = fetcher(cache.path())
        .fetch(&m.amd64, &origin(&m), &|_| {})
        .await
        .unwrap_err();
    // Each try resumes where the last broke off, and is cut again.
    assert!(
        matches!(
            err,
            Error::Interrupted {
                attempts: 4,
                received: 400_000,
                ..
            }
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&m.amd64.pool_path), "{msg}");
    assert!(msg.contains("(tried 4 times)"), "{msg}");
    assert_eq!(
        m.server.requests(&m.amd64.pool_path),
        [
            "GET",
            "GET bytes=100000-",
            "GET bytes=200000-",
            "GET bytes=300000-"
        ]
    );
    assert_no_blob(cache.path());

    // The next run, against a healthy mirror, completes.
    m.server.set_mode(Mode::Normal);
    let got = fetcher(cache.path())
        .fetch(&m.amd64, &origin(&m), &|_| {})
        .await
        .unwrap();
    assert!(!got.from_cache);
}

#[tokio::test]
async fn server_gone() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cache = tempfile::tempdir().unwrap();
    let pkg = PackageRef::new("pool/main/b/busybox/x.deb", &"ab".repeat(32), None).unwrap();
    let url = format!("http://127.0.0.1:{port}/debian/");
    let err = fetcher(cache.path())
        .fetch(&pkg, &Origin::mirror(&url).unwrap(), &|_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Unreachable { attempts: 4, .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&url), "{err}");
    assert_no_blob(cache.path());
}

#[tokio::test]
async fn stalled_mirror_times_out() {
    let m = mirror();
    m.server.set_mode(Mode::Stall);
    let cache = tempfile::tempdir().unwrap();
    let f = Fetcher::new(
        Cache::open(cache.path()).unwrap(),
        FetchOptions {
            read_timeout: Duration::from_secs(1),
            retry: RetryPolicy {
                attempts: 2,
                ..quick_retries()
            },
            ..opts()
        },
    )
    .unwrap();
    let start = std::time::Instant::now();
    let err = f.fetch(&m.amd64, &origin(&m), &|_| {}).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { attempts: 2, .. }), "{err}");
    assert_eq!(m.server.requests(&m.amd64.pool_path), ["GET", "GET"]);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_no_blob(cache.path());
}

#[tokio::test]
async fn missing_on_the_mirror() {
    let m = mirror();
    let cache = tempfile::tempdir().unwrap();
    let pkg = PackageRef::new("pool/main/q/qemu/nothing.deb", &"ab".repeat(32), None).unwrap();
    let err = fetcher(cache.path())
        .fetch(&pkg, &origin(&m), &|_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::HttpStatus {
                status: 404,
                attempts: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("nothing.deb"));
    assert_eq!(
        m.server.requests(&pkg.pool_path),
        ["GET"],
        "a 404 is not asked again"
    );
    assert!(!err.to_string().contains("tried"), "{err}");
}

#[tokio::test]
async fn tampered_cache_entry_is_fetched_again() {
    let m = mirror();
    let cache = tempfile::tempdir().unwrap();
    let got = fetcher(cache.path())
        .fetch(&m.arm64, &origin(&m), &|_| {})
        .await
        .unwrap();
    // Cut the cached file short, as a full disk or a careless hand might.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&got.path)
        .unwrap();
    f.set_len(1000).unwrap();
    drop(f);
    let again = fetcher(cache.path())
        .fetch(&m.arm64, &origin(&m), &|_| {})
        .await
        .unwrap();
    assert!(!again.from_cache);
    assert_eq!(m.server.hits(&m.arm64.pool_path), 2);
    assert_eq!(sha256_file(&again.path), m.arm64.sha256.to_hex());
}

#[tokio::test]
async fn local_dir_with_apt_get_download_names() {
    // test_debs() holds `busybox-static_1%3a1.37.0-6+b9_amd64.deb`; the pool name has no epoch.
    let deb = real_deb("busybox-static", "amd64");
    assert!(deb.file_name().unwrap().to_str().unwrap().contains("%3a"));
    let pkg = PackageRef::new(
        &format!("pool/main/b/busybox/{}", pool_name(&deb)),
        &sha256_file(&deb),
        None,
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let got = fetcher(cache.path())
        .fetch(&pkg, &Origin::local_dir(test_debs()), &|_| {})
        .await
        .unwrap();
    assert_eq!(sha256_file(&got.path), pkg.sha256.to_hex());
    assert!(got.path.starts_with(cache.path()), "copied into the cache");

    // The plain pool name works too.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&deb, dir.path().join(pool_name(&deb))).unwrap();
    let cache2 = tempfile::tempdir().unwrap();
    fetcher(cache2.path())
        .fetch(&pkg, &Origin::local_dir(dir.path()), &|_| {})
        .await
        .unwrap();
}

#[tokio::test]
async fn local_dir_without_the_package() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let pkg = PackageRef::new(
        "pool/main/q/qemu/qemu-user_10.0.13+ds-0+deb13u1_arm64.deb",
        &"ab".repeat(32),
        None,
    )
    .unwrap();
    let err = fetcher(cache.path())
        .fetch(&pkg, &Origin::local_dir(dir.path()), &|_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotInLocalDir { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("qemu-user_<epoch>%3a10.0.13+ds-0+deb13u1_arm64.deb"),
        "{msg}"
    );
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
}

#[tokio::test]
async fn local_dir_with_a_wrong_file() {
    let deb = real_deb("busybox-static", "arm64");
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join(pool_name(&deb));
    std::fs::write(&local, b"not the package").unwrap();
    let pkg = PackageRef::new(
        &format!("pool/main/b/busybox/{}", pool_name(&deb)),
        &sha256_file(&deb),
        None,
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let err = fetcher(cache.path())
        .fetch(&pkg, &Origin::local_dir(dir.path()), &|_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::ChecksumMismatch { origin, .. } if origin == &local.display().to_string()),
        "{err}"
    );
    assert_no_blob(cache.path());
}

#[tokio::test]
async fn concurrent_fetches_share_one_download() {
    let m = mirror();
    m.server.set_mode(Mode::Slow(Duration::from_millis(40)));
    let cache = tempfile::tempdir().unwrap();
    let waits = Arc::new(AtomicUsize::new(0));
    let w = waits.clone();
    // Two Cache handles, as two processes would have: each takes its own flock.
    let a = fetcher(cache.path());
    let b = Fetcher::new(
        Cache::open(cache.path()).unwrap().on_lock_wait(move |_| {
            w.fetch_add(1, Ordering::SeqCst);
        }),
        opts(),
    )
    .unwrap();
    let o = origin(&m);
    let (ra, rb) = tokio::join!(
        a.fetch(&m.amd64, &o, &|_| {}),
        b.fetch(&m.amd64, &o, &|_| {})
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert!(!ra.from_cache && rb.from_cache);
    assert_eq!(m.server.hits(&m.amd64.pool_path), 1);
    assert_eq!(
        waits.load(Ordering::SeqCst),
        1,
        "the second was told it waits"
    );
}

#[tokio::test]
async fn lock_held_too_long_is_a_clear_error() {
    let m = mirror();
    m.server.set_mode(Mode::Stall);
    let cache = tempfile::tempdir().unwrap();
    let holder = Fetcher::new(
        Cache::open(cache.path()).unwrap(),
        FetchOptions {
            read_timeout: Duration::from_secs(2),
            retry: RetryPolicy {
                attempts: 1,
                ..quick_retries()
            },
            ..opts()
        },
    )
    .unwrap();
    let waiter = Fetcher::new(
        Cache::open(cache.path())
            .unwrap()
            .with_lock_timeout(Duration::from_millis(300))
            .on_lock_wait(|_| {}),
        opts(),
    )
    .unwrap();
    let o = origin(&m);
    let (ra, rb) = tokio::join!(
        holder.fetch(&m.amd64, &o, &|_| {}),
        waiter.fetch(&m.amd64, &o, &|_| {})
    );
    assert!(matches!(ra, Err(Error::Timeout { .. })), "{ra:?}");
    let err = rb.unwrap_err();
    assert!(matches!(err, Error::LockTimeout { .. }), "{err}");
    assert!(err.to_string().contains(".lock"), "{err}");
}

#[test]
fn fetch_futures_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(cache.path());
    let pkg = PackageRef::new("pool/x.deb", &"ab".repeat(32), None).unwrap();
    let o = Origin::local_dir("/nonexistent");
    let fut = f.fetch(&pkg, &o, &|_| {});
    assert_send(&fut);
}

/// Disk full in the cache folder: runs [`disk_full_child`] in a private mount namespace with
/// a 1.2 MB tmpfs as the cache (root only; CI runs as root).
#[test]
fn disk_full_is_a_clean_error() {
    let uid = std::process::Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        eprintln!("skipped: needs root for a private tmpfs (CI runs as root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(
            "mount -t tmpfs -o size=1200k qus-test \"$0\" && exec \"$1\" --exact \
             fetch::disk_full_child --ignored --nocapture --test-threads=1",
        )
        .arg(dir.path())
        .arg(&exe)
        .env("QUS_DISK_FULL_DIR", dir.path())
        .env("QUS_TEST_DEBS", test_debs())
        .output()
        .expect("unshare (util-linux) runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(
        text.contains("1 passed"),
        "the child test did not run:\n{text}"
    );
}

#[tokio::test]
#[ignore = "run by disk_full_is_a_clean_error inside a private tmpfs"]
async fn disk_full_child() {
    let root = PathBuf::from(std::env::var_os("QUS_DISK_FULL_DIR").expect("run by the parent"));
    let cache_root = root.join("cache");
    let cache = Cache::open(&cache_root).unwrap();
    let f = Fetcher::new(cache.clone(), opts()).unwrap();
    let local = |arch| {
        let deb = real_deb("busybox-static", arch);
        PackageRef::new(
            &format!("pool/main/b/busybox/{}", pool_name(&deb)),
            &sha256_file(&deb),
            None,
        )
        .unwrap()
    };
    // ~0.95 MB fits.
    let amd64 = f
        .fetch(&local("amd64"), &Origin::local_dir(test_debs()), &|_| {})
        .await
        .unwrap();
    // Extracting busybox (~2 MB) does not.
    let err = cache
        .extract_file(
            &amd64,
            &qus_source::FileRequest::busybox("amd64"),
            &qus_source::Limits::default(),
        )
        .unwrap_err();
    assert!(
        matches!(&err, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull),
        "{err}"
    );
    let extract_left: Vec<String> = tree(&cache_root.join("extract"))
        .into_iter()
        .filter(|p| !p.ends_with(".lock"))
        .collect();
    assert!(extract_left.is_empty(), "{extract_left:?}");
    // Neither does a second package (~0.85 MB).
    let arm64 = local("arm64");
    let err = f
        .fetch(&arm64, &Origin::local_dir(test_debs()), &|_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull),
        "{err}"
    );
    assert!(!cache.blob_path(&arm64.sha256).exists());
    let blobs: Vec<String> = tree(&cache_root.join("blobs/sha256"))
        .into_iter()
        .filter(|p| !p.ends_with(".lock"))
        .collect();
    let amd64_hex = amd64.sha256.to_hex();
    assert_eq!(blobs, [amd64_hex.clone(), format!("{amd64_hex}.verified")]);
    // The entry that made it is still trusted.
    assert!(cache.lookup(&amd64.sha256, None).unwrap().is_some());
}

/// `qus lock`'s question, "is this pinned file served?", asked without a download.
#[tokio::test]
async fn probe_asks_with_head_then_a_range_get_where_head_is_refused() {
    let m = mirror();
    let http = qus_source::Http::new(&opts()).unwrap();
    let Origin::Mirror(base) = origin(&m) else {
        panic!("a mirror")
    };
    let served = http.probe_package(&base, &m.amd64).await.unwrap();
    assert_eq!(served, qus_source::Served::Yes { size: m.amd64.size });
    assert_eq!(m.server.requests(&m.amd64.pool_path), ["HEAD"]);

    // Listed in an index, absent from the pool.
    let mut gone = m.amd64.clone();
    gone.pool_path = gone.pool_path.replace("amd64", "s390x");
    let answer = http.probe_package(&base, &gone).await.unwrap();
    assert_eq!(answer, qus_source::Served::No { status: 404 });

    // A server that answers HEAD with 405: one byte of a range GET tells, and the file is
    // not downloaded.
    m.server.refuse_head(true);
    let served = http.probe_package(&base, &m.arm64).await.unwrap();
    assert_eq!(served, qus_source::Served::Yes { size: m.arm64.size });
    assert_eq!(
        m.server.requests(&m.arm64.pool_path),
        ["HEAD", "GET bytes=0-0"]
    );
    assert_eq!(m.server.hits(&m.arm64.pool_path), 0, "no whole-file GET");
    let answer = http.probe_package(&base, &gone).await.unwrap();
    assert_eq!(answer, qus_source::Served::No { status: 404 });
}

#[tokio::test]
async fn probe_tries_a_stalled_mirror_again_then_says_it_timed_out() {
    let m = mirror();
    m.server.set_mode(Mode::Stall);
    let http = qus_source::Http::new(&FetchOptions {
        read_timeout: Duration::from_millis(300),
        ..opts()
    })
    .unwrap();
    let Origin::Mirror(base) = origin(&m) else {
        panic!("a mirror")
    };
    let err = http.probe_package(&base, &m.amd64).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { attempts: 4, .. }), "{err}");
    assert_eq!(
        m.server.requests(&m.amd64.pool_path),
        ["HEAD", "HEAD", "HEAD", "HEAD"],
        "a timeout is never taken for 'not served'"
    );
}
