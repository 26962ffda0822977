//! Debian indexes made by Debian's own tool (`apt-ftparchive`, package apt-utils) over real
//! packages, read back, verified, and served from a loopback mirror.

use qus_source::debian_index::{self, decompress_index, newest, parse_packages, Keyring, Release};
use qus_source::{Cache, Error, FetchOptions, Fetcher, Origin};

use crate::support::debgen::{self, dir, file};
use crate::support::{pool_name, real_deb, sha256_file};
use qus_source::testkit::{ftparchive, Server, TestKey};

const OLDER: &[&str] = &["1:1.36.1-9", "1:1.37.0-6", "1:1.37.0~rc1-1"];

/// A mirror root: the real busybox-static for amd64 and arm64, three older fake versions for
/// amd64, and `dists/trixie/{Release, main/binary-amd64/Packages{,.xz}}` made by
/// apt-ftparchive, signed (InRelease, Release.gpg) by a test key; and that key's keyring.
fn archive() -> (tempfile::TempDir, Keyring, TestKey) {
    let key = TestKey::generate("qus index test <index@qus.invalid>", "never");
    let root = unsigned_archive();
    key.sign_suite(&root.path().join("dists/trixie"));
    let keyring = Keyring::load(&key.keyring).unwrap();
    (root, keyring, key)
}

fn unsigned_archive() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let pool = root.path().join("pool/main/b/busybox");
    std::fs::create_dir_all(&pool).unwrap();
    for arch in ["amd64", "arm64"] {
        let deb = real_deb("busybox-static", arch);
        std::fs::copy(&deb, pool.join(pool_name(&deb))).unwrap();
    }
    for v in OLDER {
        let control = debgen::control_text_version("busybox-static", v, "amd64");
        let bytes = debgen::ar(&[
            ("debian-binary", b"2.0\n".to_vec()),
            (
                "control.tar.xz",
                debgen::xz(&debgen::tar(&[
                    dir("./"),
                    file("./control", control.into_bytes()),
                ])),
            ),
            ("data.tar.xz", debgen::xz(&debgen::tar(&[dir("./")]))),
        ]);
        let name = format!("busybox-static_{}_amd64.deb", v.split_once(':').unwrap().1);
        std::fs::write(pool.join(name), bytes).unwrap();
    }
    let bin = root.path().join("dists/trixie/main/binary-amd64");
    std::fs::create_dir_all(&bin).unwrap();
    let packages = ftparchive(root.path(), &["--arch", "amd64", "packages", "pool"]);
    std::fs::write(bin.join("Packages"), &packages).unwrap();
    std::fs::write(bin.join("Packages.xz"), debgen::xz(&packages)).unwrap();
    let release = ftparchive(
        root.path(),
        &[
            "-o",
            "APT::FTPArchive::Release::Codename=trixie",
            "release",
            "dists/trixie",
        ],
    );
    std::fs::write(root.path().join("dists/trixie/Release"), release).unwrap();
    root
}

#[test]
fn real_indexes_parse_verify_and_pick_the_newest() {
    let root = unsigned_archive();
    let suite = root.path().join("dists/trixie");
    let release = Release::parse(
        &std::fs::read_to_string(suite.join("Release")).unwrap(),
        "Release",
    )
    .unwrap();
    assert_eq!(release.codename.as_deref(), Some("trixie"));
    let xz = std::fs::read(suite.join("main/binary-amd64/Packages.xz")).unwrap();
    release
        .verify("main/binary-amd64/Packages.xz", &xz, "Packages.xz")
        .unwrap();
    let text = decompress_index("Packages.xz", &xz, 1 << 20).unwrap();
    let entries = parse_packages(&text, "Packages").unwrap();
    assert_eq!(
        entries.len(),
        4,
        "the real one and three older ones, amd64 only"
    );

    let real = real_deb("busybox-static", "amd64");
    let n = newest(&entries, "busybox-static", "amd64").unwrap();
    assert_eq!(n.version, "1:1.37.0-6+b9");
    assert_eq!(n.sha256.to_hex(), sha256_file(&real));
    assert_eq!(n.size, std::fs::metadata(&real).unwrap().len());
    assert_eq!(
        n.filename,
        format!("pool/main/b/busybox/{}", pool_name(&real))
    );
    assert_eq!(n.source.as_deref(), Some("busybox (1:1.37.0-6)"));
    assert!(newest(&entries, "busybox-static", "arm64").is_none());
}

#[tokio::test]
async fn lock_flow_over_http_index_then_package() {
    let (root, keyring, _key) = archive();
    let server = Server::start(root.path()).unwrap();
    let opts = FetchOptions {
        system_proxy: false,
        ..FetchOptions::default()
    };
    let cache = tempfile::tempdir().unwrap();
    let fetcher = Fetcher::new(Cache::open(cache.path()).unwrap(), opts).unwrap();
    let mirror = url::Url::parse(&server.url()).unwrap();
    let index =
        debian_index::fetch_packages(fetcher.http(), &mirror, "trixie", "main", "amd64", &keyring)
            .await
            .unwrap();
    assert!(index
        .url
        .ends_with("dists/trixie/main/binary-amd64/Packages.xz"));
    let pin = index
        .newest("busybox-static", "amd64")
        .unwrap()
        .package_ref()
        .unwrap();
    let got = fetcher
        .fetch(&pin, &Origin::mirror(&server.url()).unwrap(), &|_| {})
        .await
        .unwrap();
    assert_eq!(
        sha256_file(&got.path),
        sha256_file(&real_deb("busybox-static", "amd64"))
    );

    let err = index.newest("qemu-user", "amd64").unwrap_err();
    assert!(matches!(err, Error::PackageNotFound { .. }), "{err}");
    assert!(
        err.to_string().contains("binary-amd64/Packages.xz"),
        "{err}"
    );
}

#[tokio::test]
async fn packages_not_matching_the_release_is_refused() {
    let (root, keyring, _key) = archive();
    let xz = root
        .path()
        .join("dists/trixie/main/binary-amd64/Packages.xz");
    let mut bytes = std::fs::read(&xz).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&xz, bytes).unwrap();
    let server = Server::start(root.path()).unwrap();
    let http = qus_source::Http::new(&FetchOptions {
        system_proxy: false,
        ..FetchOptions::default()
    })
    .unwrap();
    let mirror = url::Url::parse(&server.url()).unwrap();
    let err = debian_index::fetch_packages(&http, &mirror, "trixie", "main", "amd64", &keyring)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{msg}");
    assert!(
        msg.contains("main/binary-amd64/Packages.xz") && msg.contains("http://127.0.0.1:"),
        "{msg}"
    );
}

#[tokio::test]
async fn arch_not_in_the_release() {
    let (root, keyring, _key) = archive();
    let server = Server::start(root.path()).unwrap();
    let http = qus_source::Http::new(&FetchOptions {
        system_proxy: false,
        ..FetchOptions::default()
    })
    .unwrap();
    let mirror = url::Url::parse(&server.url()).unwrap();
    let err = debian_index::fetch_packages(&http, &mirror, "trixie", "main", "riscv64", &keyring)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotInRelease { .. }), "{err}");
    assert!(err.to_string().contains("binary-riscv64"), "{err}");
}
