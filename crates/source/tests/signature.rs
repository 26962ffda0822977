//! OpenPGP signatures of Release files: Debian's real InRelease with Debian's real archive
//! keyring (gpgv, Debian's own verifier, is the oracle), and suites signed by a test key
//! made with GnuPG, served over loopback: accepted with that key, refused when unsigned,
//! foreign-signed, expired, or changed after signing.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use qus_source::debian_index::{self, signature, Keyring, DEBIAN_ARCHIVE_KEYRING};
use qus_source::testkit::{test_debs, Server, TestKey};
use qus_source::{Error, FetchOptions, Http};

/// The real InRelease ci/fetch-test-debs saved from the mirror.
fn real_inrelease() -> PathBuf {
    let p = test_debs().join("dists/trixie/InRelease");
    assert!(
        p.is_file(),
        "{} is missing: run ci/fetch-test-debs",
        p.display()
    );
    p
}

#[test]
fn the_real_inrelease_verifies_with_debians_keyring_as_gpgv_says() {
    let file = real_inrelease();
    let text = std::fs::read_to_string(&file).unwrap();
    let keyring = Keyring::load(std::path::Path::new(DEBIAN_ARCHIVE_KEYRING)).unwrap();
    let (signed, signers) =
        signature::verify_clearsigned(&text, &keyring, SystemTime::now(), "InRelease").unwrap();
    let mut ours: Vec<String> = signers.iter().map(|s| s.fingerprint.clone()).collect();
    ours.dedup();
    assert_eq!(
        ours,
        qus_source::testkit::gpgv_signers(&file, std::path::Path::new(DEBIAN_ARCHIVE_KEYRING))
    );
    assert!(signers
        .iter()
        .all(|s| s.user_id.as_deref().is_some_and(|u| u.contains("Debian"))));
    assert!(
        signed.contains("Codename: trixie\n"),
        "the signed text, LF ends"
    );
    let release = debian_index::Release::parse(&signed, "InRelease").unwrap();
    assert!(release.packages_path("main", "amd64").is_some());

    // One byte of the signed text changed: refused, naming the reason.
    let tampered = text.replacen("Codename: trixie", "Codename: trixiE", 1);
    let err = signature::verify_clearsigned(&tampered, &keyring, SystemTime::now(), "InRelease")
        .unwrap_err();
    assert!(matches!(err, Error::BadSignature { .. }), "{err}");
    assert!(err.to_string().contains("does not verify"), "{err}");

    // A keyring that lacks Debian's keys: the signers are foreign.
    let other = TestKey::generate("qus other <other@qus.invalid>", "never");
    let foreign = Keyring::load(&other.keyring).unwrap();
    let err =
        signature::verify_clearsigned(&text, &foreign, SystemTime::now(), "InRelease").unwrap_err();
    assert!(err.to_string().contains("foreign signer"), "{err}");
}

/// A suite `dists/s/` with a one-line Release, signed both ways by `key` (when given).
fn suite(key: Option<&TestKey>, release: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("dists/s");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Release"), release).unwrap();
    if let Some(k) = key {
        k.sign_suite(&dir);
    }
    root
}

const RELEASE: &str = "Codename: s\nSHA256:\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 main/binary-amd64/Packages\n";

async fn fetch(root: &std::path::Path, keyring: &Keyring) -> Result<debian_index::Release, Error> {
    fetch_with(root, keyring, debian_index::Expiry::Refuse).await
}

async fn fetch_with(
    root: &std::path::Path,
    keyring: &Keyring,
    expiry: debian_index::Expiry,
) -> Result<debian_index::Release, Error> {
    let server = Server::start(root).unwrap();
    let http = Http::new(&FetchOptions {
        system_proxy: false,
        ..FetchOptions::default()
    })
    .unwrap();
    let mirror = url::Url::parse(&server.url()).unwrap();
    debian_index::fetch_release_with(&http, &mirror, "s", keyring, expiry).await
}

#[tokio::test]
async fn a_suite_is_accepted_only_when_signed_by_a_key_of_the_keyring() {
    let key = TestKey::generate("qus test <test@qus.invalid>", "never");
    let keyring = Keyring::load(&key.keyring).unwrap();

    // InRelease.
    let root = suite(Some(&key), RELEASE);
    let r = fetch(root.path(), &keyring).await.unwrap();
    assert_eq!(r.codename.as_deref(), Some("s"));
    assert_eq!(r.signers.len(), 1);
    assert_eq!(r.signers[0].fingerprint, key.fingerprint);
    assert!(r.origin.ends_with("/InRelease"));

    // Release + Release.gpg when there is no InRelease.
    std::fs::remove_file(root.path().join("dists/s/InRelease")).unwrap();
    let r = fetch(root.path(), &keyring).await.unwrap();
    assert_eq!(r.signers[0].fingerprint, key.fingerprint);
    assert!(r.origin.ends_with("/Release"));

    // The Release changed after it was signed.
    std::fs::write(
        root.path().join("dists/s/Release"),
        RELEASE.replace("s\n", "t\n"),
    )
    .unwrap();
    let err = fetch(root.path(), &keyring).await.unwrap_err();
    assert!(err.to_string().contains("does not verify"), "{err}");

    // Unsigned: no InRelease, no Release.gpg.
    let root = suite(None, RELEASE);
    let err = fetch(root.path(), &keyring).await.unwrap_err();
    assert!(matches!(err, Error::Unsigned { .. }), "{err}");
    assert!(err.to_string().contains("not signed"), "{err}");

    // An InRelease that is not clearsigned at all.
    std::fs::write(root.path().join("dists/s/InRelease"), RELEASE).unwrap();
    let err = fetch(root.path(), &keyring).await.unwrap_err();
    assert!(matches!(err, Error::Unsigned { .. }), "{err}");

    // Signed by another key: foreign.
    let other = TestKey::generate("qus other <other@qus.invalid>", "never");
    let root = suite(Some(&other), RELEASE);
    let err = fetch(root.path(), &keyring).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("foreign signer") && msg.contains(&key.keyring.display().to_string()),
        "{msg}"
    );
    // …and accepted once its key is the keyring.
    let r = fetch(root.path(), &Keyring::load(&other.keyring).unwrap())
        .await
        .unwrap();
    assert_eq!(r.signers[0].fingerprint, other.fingerprint);
}

#[tokio::test]
async fn expired_keys_and_releases_are_refused() {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ten_days = Duration::from_secs(10 * 86_400).as_secs();
    // A key made ten days ago that expired after one day, and a Release it signed then.
    let old = TestKey::generate_at("qus old <old@qus.invalid>", "1d", Some(now - ten_days));
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("dists/s");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("InRelease"),
        old.clearsign(RELEASE.as_bytes(), Some(now - ten_days + 3600)),
    )
    .unwrap();
    let err = fetch(root.path(), &Keyring::load(&old.keyring).unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("expired on"), "{err}");

    // A Release whose Valid-Until has passed (the mirror serves a stale copy).
    let key = TestKey::generate("qus test <test@qus.invalid>", "never");
    let root = suite(
        Some(&key),
        &format!("Valid-Until: Tue, 14 Nov 2023 22:13:20 UTC\n{RELEASE}"),
    );
    let err = fetch(root.path(), &Keyring::load(&key.keyring).unwrap())
        .await
        .unwrap_err();
    let fresh = suite(
        Some(&key),
        &format!("Valid-Until: Thu, 31 Dec 2099 23:59:59 UTC\n{RELEASE}"),
    );
    fetch(fresh.path(), &Keyring::load(&key.keyring).unwrap())
        .await
        .expect("a Valid-Until in the future is fine");
    assert!(
        err.to_string()
            .contains("expired: its Valid-Until (Tue, 14 Nov 2023 22:13:20 UTC) has passed"),
        "{err}"
    );
    assert!(matches!(err, Error::ReleaseExpired { .. }), "{err:?}");

    // Read anyway when asked (a mirror that stopped syncing), still checking the signature.
    let keyring = Keyring::load(&key.keyring).unwrap();
    let r = fetch_with(root.path(), &keyring, debian_index::Expiry::Accept)
        .await
        .expect("an expired Release is read when the caller accepts it");
    assert!(r.expired(std::time::SystemTime::now()).unwrap());
    assert!(!r.signers.is_empty());
    let other = TestKey::generate("qus other <other@qus.invalid>", "never");
    let err = fetch_with(
        root.path(),
        &Keyring::load(&other.keyring).unwrap(),
        debian_index::Expiry::Accept,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("foreign signer"), "{err}");
}

#[test]
fn a_keyring_that_is_not_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ring.gpg");
    std::fs::write(&p, b"hello").unwrap();
    let err = Keyring::load(&p).unwrap_err().to_string();
    assert!(err.contains("ring.gpg") && err.contains("keyring"), "{err}");
    let err = Keyring::load(&dir.path().join("missing.gpg"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.gpg"), "{err}");
}
