//! Downloads that a busy mirror breaks once: tried again, resumed with a Range request
//! where the server allows it, started over where it does not, and never tried again
//! when the answer is final.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qus_source::testkit::Fault;
use qus_source::{Cache, Error, PackageRef, Progress, Retrying};

use crate::fetch::{assert_no_blob, fetcher, mirror, origin, wrong_sum, Mirror};
use crate::support::{sha256_file, tree};

/// Where the first GET is cut.
const CUT: usize = 300_000;

/// The requests of a GET cut at [`CUT`] and the one that asks for the rest.
fn cut_and_rest() -> [String; 2] {
    ["GET".to_string(), format!("GET bytes={CUT}-")]
}

/// Fetches `pkg` into a new cache: the result, the retries the progress callback was told
/// of, and the cache folder.
async fn fetch(
    m: &Mirror,
    pkg: &PackageRef,
) -> (
    Result<qus_source::VerifiedPackage, Error>,
    Vec<Retrying>,
    tempfile::TempDir,
) {
    let cache = tempfile::tempdir().unwrap();
    let seen: Arc<Mutex<Vec<Retrying>>> = Arc::default();
    let s = seen.clone();
    let progress = move |p: &Progress| {
        if let Some(r) = &p.retry {
            s.lock().unwrap().push(r.clone());
        }
    };
    let got = fetcher(cache.path())
        .fetch(pkg, &origin(m), &progress)
        .await;
    let seen = seen.lock().unwrap().clone();
    (got, seen, cache)
}

/// The package, and nothing else but its sidecar and lock, is in the cache: no temp file.
fn assert_cached_once(cache_root: &Path, pkg: &PackageRef) {
    let hex = pkg.sha256.to_hex();
    assert_eq!(
        tree(&cache_root.join("blobs/sha256")),
        [
            hex.clone(),
            format!("{hex}.lock"),
            format!("{hex}.verified")
        ]
    );
    let cached = Cache::open(cache_root).unwrap().blob_path(&pkg.sha256);
    assert_eq!(sha256_file(&cached), hex);
}

#[tokio::test]
async fn a_transfer_cut_once_resumes_with_a_range_request() {
    let m = mirror();
    m.server.fault_once(Fault::Cut(CUT));
    let (got, retries, cache) = fetch(&m, &m.amd64).await;
    let got = got.unwrap();
    assert!(!got.from_cache);
    assert_eq!(Some(got.size), m.amd64.size);
    let path = &m.amd64.pool_path;
    assert_eq!(m.server.requests(path), cut_and_rest());
    assert_eq!(
        Some(m.server.sent(path)),
        m.amd64.size,
        "the rest, not the whole file again"
    );
    assert_cached_once(cache.path(), &m.amd64);
    let [r] = &retries[..] else {
        panic!("{retries:?}")
    };
    assert!(r.resume && r.attempt == 2 && r.attempts == 4, "{r:?}");
    assert_eq!(r.failure, "cut short after 0.3 MB");
    assert!(r.to_string().contains("resuming"), "{r}");
}

#[tokio::test]
async fn a_server_that_ignores_range_sends_the_whole_file_again() {
    let m = mirror();
    m.server.ignore_range(true);
    m.server.fault_once(Fault::Cut(CUT));
    let (got, _, cache) = fetch(&m, &m.amd64).await;
    got.unwrap();
    let path = &m.amd64.pool_path;
    assert_eq!(m.server.requests(path), cut_and_rest());
    assert_eq!(
        Some(m.server.sent(path)),
        m.amd64.size.map(|n| n + CUT as u64),
        "the 200 is taken from byte 0"
    );
    assert_cached_once(cache.path(), &m.amd64);
}

#[tokio::test]
async fn a_206_of_the_wrong_part_starts_over_from_0() {
    let m = mirror();
    m.server.fault_once(Fault::Cut(CUT));
    m.server.fault_once(Fault::WrongRange);
    let (got, _, cache) = fetch(&m, &m.amd64).await;
    got.unwrap();
    let [cut, rest] = cut_and_rest();
    assert_eq!(
        m.server.requests(&m.amd64.pool_path),
        [cut, rest, "GET".into()]
    );
    assert_cached_once(cache.path(), &m.amd64);
}

#[tokio::test]
async fn a_503_once_is_tried_again_after_the_wait_the_server_asks() {
    let m = mirror();
    m.server.fault_once(Fault::Status(503, Some(1)));
    let (got, retries, cache) = fetch(&m, &m.arm64).await;
    got.unwrap();
    assert_eq!(m.server.requests(&m.arm64.pool_path), ["GET", "GET"]);
    assert_cached_once(cache.path(), &m.arm64);
    let [r] = &retries[..] else {
        panic!("{retries:?}")
    };
    assert_eq!(r.failure, "HTTP 503");
    assert!(!r.resume);
    assert_eq!(r.wait, Duration::from_secs(1), "Retry-After: 1");
}

#[tokio::test]
async fn a_mirror_busy_on_every_try_is_an_error_naming_the_tries() {
    let m = mirror();
    for _ in 0..4 {
        m.server.fault_once(Fault::Status(429, None));
    }
    let (got, retries, cache) = fetch(&m, &m.arm64).await;
    let err = got.unwrap_err();
    assert!(
        matches!(
            err,
            Error::HttpStatus {
                status: 429,
                attempts: 4,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("(tried 4 times): HTTP 429"),
        "{err}"
    );
    assert_eq!(m.server.requests(&m.arm64.pool_path).len(), 4);
    assert_eq!(
        retries.iter().map(|r| r.attempt).collect::<Vec<_>>(),
        [2, 3, 4]
    );
    assert_no_blob(cache.path());
}

#[tokio::test]
async fn final_answers_are_not_tried_again() {
    let m = mirror();
    for status in [403, 404, 410] {
        m.server.fault_once(Fault::Status(status, None));
        let (got, retries, cache) = fetch(&m, &m.amd64).await;
        let err = got.unwrap_err();
        assert!(
            matches!(err, Error::HttpStatus { status: s, attempts: 1, .. } if s == status),
            "{err}"
        );
        assert!(retries.is_empty(), "{retries:?}");
        assert_no_blob(cache.path());
    }
    assert_eq!(m.server.requests(&m.amd64.pool_path), ["GET"; 3]);
}

#[tokio::test]
async fn a_checksum_mismatch_is_not_tried_again_and_caches_nothing() {
    let m = mirror();
    let bad = wrong_sum(&m.amd64);
    let (got, retries, cache) = fetch(&m, &bad).await;
    let err = got.unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
    assert!(retries.is_empty(), "{retries:?}");
    assert_eq!(m.server.requests(&bad.pool_path), ["GET"]);
    assert_no_blob(cache.path());
}

#[tokio::test]
async fn a_resumed_file_with_the_wrong_sum_is_refused_whole() {
    // The hash covers the bytes of both tries: a wrong pin is caught after a resume too.
    let m = mirror();
    m.server.fault_once(Fault::Cut(CUT));
    let bad = wrong_sum(&m.amd64);
    let (got, _, cache) = fetch(&m, &bad).await;
    let err = got.unwrap_err();
    let Error::ChecksumMismatch { actual, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(
        actual,
        &m.amd64.sha256.to_hex(),
        "the sum of the whole file"
    );
    assert_eq!(m.server.requests(&bad.pool_path).len(), 2);
    assert_no_blob(cache.path());
}
