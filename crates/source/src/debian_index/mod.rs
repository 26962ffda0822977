//! Reading a Debian mirror's indexes, for `qus lock` (pin the newest packages) and
//! `qus check` (is a pin out of date?).
//!
//! Pure parsing and comparison live in [`release`], [`packages`] and [`version`]; this
//! module adds the network operations: fetch `dists/<suite>/Release` (or `InRelease`) once
//! per suite ([`fetch_release`]), then the `Packages` index of one component and arch,
//! verified against the Release sums ([`fetch_index`]); [`fetch_packages`] does both.

pub mod packages;
pub mod release;
pub mod version;

use url::Url;

pub use packages::{decompress_index, newest, parse_packages, PackageEntry};
pub use release::{IndexFile, Release};
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
) -> Result<PackagesIndex> {
    let release = fetch_release(http, mirror, suite).await?;
    fetch_index(http, mirror, &release, suite, component, arch).await
}

/// Fetches `dists/<suite>/Release`, or the `InRelease` beside it when a mirror only has that.
///
/// One Release serves every arch of a suite: callers that read several indexes of one suite
/// fetch it once and pass it to [`fetch_index`].
pub async fn fetch_release(http: &Http, mirror: &Url, suite: &str) -> Result<Release> {
    check_part(suite)?;
    let mut last = None;
    for name in ["Release", "InRelease"] {
        let url = join(mirror, &format!("dists/{suite}/{name}"))?;
        match http.get_bytes(&url, MAX_RELEASE).await {
            Ok(bytes) => {
                let text = String::from_utf8(bytes).map_err(|_| Error::BadIndex {
                    what: url.to_string(),
                    detail: "not UTF-8 text".into(),
                })?;
                return Release::parse(&text, url.as_str());
            }
            Err(e @ Error::HttpStatus { status: 404, .. }) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    // Both answered 404: report the plain Release file, the one every mirror has.
    Err(last.unwrap_or_else(|| Error::BadIndex {
        what: format!("dists/{suite}/Release"),
        detail: "not found".into(),
    }))
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
