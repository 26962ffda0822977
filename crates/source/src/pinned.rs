//! What a pin names and what a verified download is: the values the fetcher, the cache and
//! the index readers hand each other, kept apart from all three so none imports another.

use std::path::PathBuf;

use crate::digest::Sha256;
use crate::error::{Error, Result};

/// A pinned package: where it is in a Debian pool, and what it must hash to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PackageRef {
    /// Path under the mirror root, as in a Packages index's `Filename:`
    /// (`pool/main/q/qemu/qemu-user_10.0.13+ds-0+deb13u1_arm64.deb`).
    pub pool_path: String,
    /// The pinned sum.
    pub sha256: Sha256,
    /// The pinned size, if known.
    pub size: Option<u64>,
}

impl PackageRef {
    /// Checks the pool path and parses the sum.
    pub fn new(pool_path: &str, sha256: &str, size: Option<u64>) -> Result<PackageRef> {
        let bad = |reason| Error::BadPoolPath {
            value: pool_path.to_string(),
            reason,
        };
        if pool_path.starts_with('/') {
            return Err(bad("must be relative to the mirror root"));
        }
        if pool_path.contains(['?', '#', '\\']) {
            return Err(bad("must not contain '?', '#' or '\\'"));
        }
        if pool_path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(bad("must not have empty, '.' or '..' components"));
        }
        Ok(PackageRef {
            pool_path: pool_path.to_string(),
            sha256: sha256.parse()?,
            size,
        })
    }

    /// The pool file name (`qemu-user_10.0.13+ds-0+deb13u1_arm64.deb`).
    pub fn file_name(&self) -> &str {
        self.pool_path.rsplit('/').next().unwrap_or(&self.pool_path)
    }
}

/// A package file in the cache whose sha256 was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPackage {
    /// The cached file (content-addressed; do not modify).
    pub path: PathBuf,
    /// Its sum.
    pub sha256: Sha256,
    /// Its size.
    pub size: u64,
    /// Whether it was already in the cache.
    pub from_cache: bool,
}
