//! Reading a Debian mirror's indexes, for `qus lock` (pin the newest packages) and
//! `qus check` (is a pin out of date?).
//!
//! Pure parsing and comparison live in [`release`], [`packages`] and [`version`]; this
//! module adds the network operations: fetch `dists/<suite>/Release` (or `InRelease`) once
//! per suite ([`fetch_release`]), then the `Packages` index of one component and arch,
//! verified against the Release sums ([`fetch_index`]); [`fetch_packages`] does both.

pub mod packages;
pub mod release;
pub mod signature;
pub mod version;

use url::Url;

pub use packages::{decompress_index, newest, parse_packages, PackageEntry};
pub use release::{IndexFile, Release};
pub use signature::{Keyring, Signer, DEBIAN_ARCHIVE_KEYRING};
pub use version::{compare, Version};

use crate::error::{Error, Result};
use crate::http::Http;

/// Largest Release file accepted.
const MAX_RELEASE: u64 = 16 << 20;
/// Largest compressed Packages file accepted (trixie main/amd64 is ~10 MB as xz).
const MAX_PACKAGES_PACKED: u64 = 256 << 20;
/// Largest decompressed Packages file accepted (~70 MB today).
const MAX_PACKAGES: u64 = 1 << 30;

/// A fetched and verified Packages index.
#[derive(Debug, Clone)]
pub struct PackagesIndex {
    /// The URL it was read from.
    pub url: String,
    /// The Release file it was verified against.
    pub release: Release,
    /// Its packages.
    pub entries: Vec<PackageEntry>,
}

impl PackagesIndex {
    /// The newest version of `package` for `arch`, or an error naming the index.
    pub fn newest(&self, package: &str, arch: &str) -> Result<&PackageEntry> {
        newest(&self.entries, package, arch).ok_or_else(|| Error::PackageNotFound {
            index: self.url.clone(),
            package: package.to_string(),
            arch: arch.to_string(),
        })
    }
}

/// Fetches and verifies `dists/<suite>/<component>/binary-<arch>/Packages{.xz,.gz,}` from a
/// mirror root, preferring the compressed forms the Release file lists.
pub async fn fetch_packages(
    http: &Http,
    mirror: &Url,
    suite: &str,
    component: &str,
    arch: &str,
    keyring: &Keyring,
) -> Result<PackagesIndex> {
    let release = fetch_release(http, mirror, suite, keyring).await?;
    fetch_index(http, mirror, &release, suite, component, arch).await
}

/// Fetches `dists/<suite>/InRelease` and checks its signature against `keyring`, or, when a
/// mirror has no InRelease, `Release` and its detached `Release.gpg`; refuses a suite that
/// is unsigned, signed by no key of the keyring, or whose `Valid-Until` has passed. The
/// returned Release is parsed from the signed text only, and names its signers.
///
/// One Release serves every arch of a suite: callers that read several indexes of one suite
/// fetch it once and pass it to [`fetch_index`].
pub async fn fetch_release(
    http: &Http,
    mirror: &Url,
    suite: &str,
    keyring: &Keyring,
) -> Result<Release> {
    fetch_release_with(http, mirror, suite, keyring, Expiry::Refuse).await
}

/// What to do with a Release whose `Valid-Until` has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expiry {
    /// Refuse it: the mirror serves a stale copy (apt's default).
    #[default]
    Refuse,
    /// Read it anyway (apt's `Acquire::Check-Valid-Until=false`): the signature is still
    /// checked; [`Release::expired`] tells the caller to say so.
    Accept,
}

/// [`fetch_release`], with a choice about a Release past its `Valid-Until`.
pub async fn fetch_release_with(
    http: &Http,
    mirror: &Url,
    suite: &str,
    keyring: &Keyring,
    expiry: Expiry,
) -> Result<Release> {
    check_part(suite)?;
    let now = std::time::SystemTime::now();
    let text = |bytes: Vec<u8>, url: &Url| {
        String::from_utf8(bytes).map_err(|_| Error::BadIndex {
            what: url.to_string(),
            detail: "not UTF-8 text".into(),
        })
    };
    let inrelease = join(mirror, &format!("dists/{suite}/InRelease"))?;
    let mut release = match http.get_bytes(&inrelease, MAX_RELEASE).await {
        Ok(bytes) => {
            let t = text(bytes, &inrelease)?;
            let (signed, signers) =
                signature::verify_clearsigned(&t, keyring, now, inrelease.as_str())?;
            let mut r = Release::parse(&signed, inrelease.as_str())?;
            r.signers = signers;
            r
        }
        Err(Error::HttpStatus { status: 404, .. }) => {
            let url = join(mirror, &format!("dists/{suite}/Release"))?;
            let bytes = http.get_bytes(&url, MAX_RELEASE).await?;
            let gpg = join(mirror, &format!("dists/{suite}/Release.gpg"))?;
            let sig = match http.get_bytes(&gpg, MAX_RELEASE).await {
                Ok(s) => s,
                Err(Error::HttpStatus { status: 404, .. }) => {
                    return Err(Error::Unsigned {
                        release: url.to_string(),
                    })
                }
                Err(e) => return Err(e),
            };
            let signers = signature::verify_detached(&bytes, &sig, keyring, now, url.as_str())?;
            let mut r = Release::parse(&text(bytes, &url)?, url.as_str())?;
            r.signers = signers;
            r
        }
        Err(e) => return Err(e),
    };
    if expiry == Expiry::Refuse && release.expired(now)? {
        return Err(Error::ReleaseExpired {
            release: release.origin.clone(),
            valid_until: release.valid_until.clone().unwrap_or_default(),
        });
    }
    release.signers.dedup();
    Ok(release)
}

/// Fetches the `Packages` index of `component`/`arch` that `release` lists, verifies it
/// against the Release sum and parses it.
pub async fn fetch_index(
    http: &Http,
    mirror: &Url,
    release: &Release,
    suite: &str,
    component: &str,
    arch: &str,
) -> Result<PackagesIndex> {
    for part in [suite, component, arch] {
        check_part(part)?;
    }
    let name = release
        .packages_path(component, arch)
        .ok_or_else(|| Error::NotInRelease {
            release: release.origin.clone(),
            path: format!("{component}/binary-{arch}/Packages.xz"),
        })?;
    let url = join(mirror, &format!("dists/{suite}/{name}"))?;
    let bytes = http.get_bytes(&url, MAX_PACKAGES_PACKED).await?;
    release.verify(&name, &bytes, url.as_str())?;
    let text = decompress_index(&name, &bytes, MAX_PACKAGES)?;
    let entries = parse_packages(&text, url.as_str())?;
    Ok(PackagesIndex {
        url: url.to_string(),
        release: release.clone(),
        entries,
    })
}

/// A suite, component or arch must be a plain name (it becomes part of a URL path).
fn check_part(part: &str) -> Result<()> {
    if part.is_empty()
        || part.starts_with('/')
        || part.contains(['?', '#'])
        || part.split('/').any(|c| c == ".." || c == ".")
    {
        return Err(Error::BadUrl {
            value: part.to_string(),
            reason: "not a plain suite, component or architecture name".into(),
        });
    }
    Ok(())
}

/// `mirror` + `path`, keeping the mirror's own path (a mirror at `…/debian` gives `…/debian/dists/…`).
fn join(mirror: &Url, path: &str) -> Result<Url> {
    let mut base = mirror.clone();
    if !base.path().ends_with('/') {
        let with_slash = format!("{}/", base.path());
        base.set_path(&with_slash);
    }
    base.join(path).map_err(|e| Error::BadUrl {
        value: format!("{mirror}{path}"),
        reason: e.to_string(),
    })
}
