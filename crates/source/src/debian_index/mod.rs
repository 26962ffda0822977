//! Reading a Debian mirror's indexes, for `qus lock` (pin the newest packages) and
//! `qus check` (is a pin out of date?).
//!
//! Pure parsing and comparison live in [`release`], [`packages`] and [`version`]; this
//! module adds the one network operation: fetch `dists/<suite>/Release`, then the
//! `Packages` index of one component and arch, verified against the Release sums.

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
    for part in [suite, component, arch] {
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
    }
    let join = |p: &str| {
        let mut base = mirror.clone();
        if !base.path().ends_with('/') {
            let with_slash = format!("{}/", base.path());
            base.set_path(&with_slash);
        }
        base.join(p).map_err(|e| Error::BadUrl {
            value: format!("{mirror}{p}"),
            reason: e.to_string(),
        })
    };
    let release_url = join(&format!("dists/{suite}/Release"))?;
    let release_bytes = http.get_bytes(&release_url, MAX_RELEASE).await?;
    let release_text = String::from_utf8(release_bytes).map_err(|_| Error::BadIndex {
        what: release_url.to_string(),
        detail: "not UTF-8 text".into(),
    })?;
    let release = Release::parse(&release_text, release_url.as_str())?;

    let dir = format!("{component}/binary-{arch}");
    let name = ["Packages.xz", "Packages.gz", "Packages"]
        .iter()
        .map(|n| format!("{dir}/{n}"))
        .find(|p| release.file(p).is_some())
        .ok_or_else(|| Error::NotInRelease {
            release: release_url.to_string(),
            path: format!("{dir}/Packages.xz"),
        })?;
    let url = join(&format!("dists/{suite}/{name}"))?;
    let bytes = http.get_bytes(&url, MAX_PACKAGES_PACKED).await?;
    release.verify(&name, &bytes, url.as_str())?;
    let text = decompress_index(&name, &bytes, MAX_PACKAGES)?;
    let entries = parse_packages(&text, url.as_str())?;
    Ok(PackagesIndex {
        url: url.to_string(),
        release,
        entries,
    })
}
