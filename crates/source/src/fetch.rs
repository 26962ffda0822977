//! Bringing a pinned package into the cache, from a Debian mirror or a local folder.
//!
//! Either way the bytes stream into a temp file beside the cache entry while being hashed
//! (module `sink`); only when the sha256 (and size, if pinned) match does the file get its
//! content-addressed name. A wrong, short or interrupted transfer therefore never leaves
//! anything that a later run could mistake for the package. A download that fails on the
//! way is tried again, and resumed where it broke off (module `download`).

use std::path::{Path, PathBuf};

use tokio::io::AsyncReadExt;
use url::Url;

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::http::{FetchOptions, Http};
use crate::pinned::{PackageRef, VerifiedPackage};
use crate::progress::Progress;
use crate::sink::{OnProgress, Sink};

/// Where packages come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A Debian mirror root (the folder holding `pool/` and `dists/`), over HTTP(S).
    Mirror(Url),
    /// A folder of `.deb` files as `apt-get download` leaves them (`--debs DIR`).
    LocalDir(PathBuf),
}

impl Origin {
    /// A mirror root URL; a missing trailing `/` is added so pool paths join under it.
    pub fn mirror(url: &str) -> Result<Origin> {
        let bad = |reason: String| Error::BadUrl {
            value: url.to_string(),
            reason,
        };
        let mut u = Url::parse(url).map_err(|e| bad(e.to_string()))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(bad("only http and https mirrors are supported".into()));
        }
        if !u.path().ends_with('/') {
            let p = format!("{}/", u.path());
            u.set_path(&p);
        }
        Ok(Origin::Mirror(u))
    }

    /// A local folder.
    pub fn local_dir(dir: impl Into<PathBuf>) -> Origin {
        Origin::LocalDir(dir.into())
    }
}

/// Fetches packages into a cache.
#[derive(Debug, Clone)]
pub struct Fetcher {
    cache: Cache,
    http: Http,
}

impl Fetcher {
    /// A fetcher writing into `cache`.
    pub fn new(cache: Cache, opts: FetchOptions) -> Result<Fetcher> {
        Ok(Fetcher {
            http: Http::new(&opts)?,
            cache,
        })
    }

    /// The HTTP client (shared with [`crate::debian_index`]).
    pub fn http(&self) -> &Http {
        &self.http
    }

    /// The cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Returns the package from the cache, or brings it there from `origin` and verifies it.
    /// `progress` is told how far a transfer is, and when it is tried again.
    pub async fn fetch(
        &self,
        pkg: &PackageRef,
        origin: &Origin,
        progress: &(dyn Fn(&Progress) + Send + Sync),
    ) -> Result<VerifiedPackage> {
        let _lock = self.cache.lock_blob(&pkg.sha256).await?;
        if let Some(hit) = self.cache.lookup_locked(&pkg.sha256, pkg.size)? {
            progress(&Progress {
                file: pkg.file_name().to_string(),
                done: hit.size,
                total: Some(hit.size),
                retry: None,
            });
            return Ok(hit);
        }
        match origin {
            Origin::Mirror(base) => {
                let url = pool_url(base, &pkg.pool_path)?;
                crate::download::download(&self.http, &self.cache, pkg, url, progress).await
            }
            Origin::LocalDir(dir) => self.import(pkg, dir, progress).await,
        }
    }

    async fn import(
        &self,
        pkg: &PackageRef,
        dir: &Path,
        progress: &OnProgress<'_>,
    ) -> Result<VerifiedPackage> {
        let names = list_dir(dir).await?;
        let candidates = local_candidates(pkg.file_name(), &names);
        if candidates.is_empty() {
            return Err(Error::NotInLocalDir {
                dir: dir.to_path_buf(),
                wanted: pkg.file_name().to_string(),
                tried: local_patterns(pkg.file_name()),
            });
        }
        let mut first_err = None;
        for name in candidates {
            let path = dir.join(&name);
            match self.copy_in(pkg, &path, progress).await {
                Ok(v) => return Ok(v),
                // Another candidate (another epoch) may be the right one.
                Err(e @ (Error::ChecksumMismatch { .. } | Error::SizeMismatch { .. })) => {
                    first_err.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(first_err.expect("at least one candidate was tried"))
    }

    async fn copy_in(
        &self,
        pkg: &PackageRef,
        path: &Path,
        progress: &OnProgress<'_>,
    ) -> Result<VerifiedPackage> {
        let mut f = tokio::fs::File::open(path)
            .await
            .map_err(|e| Error::io("cannot read", path, e))?;
        let total = f.metadata().await.ok().map(|m| m.len());
        let origin = path.display().to_string();
        let mut sink = Sink::new(&self.cache, origin, pkg, total, progress).await?;
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = f
                .read(&mut buf)
                .await
                .map_err(|e| Error::io("cannot read", path, e))?;
            if n == 0 {
                break;
            }
            sink.write(&buf[..n]).await?;
        }
        sink.finish().await
    }
}

/// A pool path below a mirror root.
pub(crate) fn pool_url(base: &Url, pool_path: &str) -> Result<Url> {
    base.join(pool_path).map_err(|e| Error::BadUrl {
        value: format!("{base}{pool_path}"),
        reason: e.to_string(),
    })
}

async fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let mut rd = tokio::fs::read_dir(dir)
        .await
        .map_err(|e| Error::io("cannot list", dir, e))?;
    let mut names = Vec::new();
    while let Some(e) = rd
        .next_entry()
        .await
        .map_err(|e| Error::io("cannot list", dir, e))?
    {
        if let Some(n) = e.file_name().to_str() {
            names.push(n.to_string());
        }
    }
    Ok(names)
}

/// Pure: the files in `names` that can be the pool file `wanted`: the pool name itself, or
/// the `apt-get download` name with the epoch put back (`name_1%3aversion_arch.deb`).
/// The exact name comes first; the sha256 decides in the end.
pub fn local_candidates(wanted: &str, names: &[String]) -> Vec<String> {
    let mut exact = Vec::new();
    let mut epoch = Vec::new();
    let Some((pkg, rest)) = wanted.split_once('_') else {
        return names.iter().filter(|n| *n == wanted).cloned().collect();
    };
    for n in names {
        if n == wanted {
            exact.push(n.clone());
            continue;
        }
        let Some(mid) = n
            .strip_prefix(pkg)
            .and_then(|s| s.strip_prefix('_'))
            .and_then(|s| s.strip_suffix(rest))
        else {
            continue;
        };
        let digits = mid
            .strip_suffix("%3a")
            .or_else(|| mid.strip_suffix("%3A"))
            .or_else(|| mid.strip_suffix(':'));
        if digits.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())) {
            epoch.push(n.clone());
        }
    }
    epoch.sort();
    exact.extend(epoch);
    exact
}

fn local_patterns(wanted: &str) -> Vec<String> {
    let mut v = vec![wanted.to_string()];
    if let Some((pkg, rest)) = wanted.split_once('_') {
        v.push(format!("{pkg}_<epoch>%3a{rest}"));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_paths() {
        let sum = "0".repeat(64);
        let r = PackageRef::new(
            "pool/main/q/qemu/qemu-user_10.0.13+ds-0+deb13u1_arm64.deb",
            &sum,
            None,
        )
        .unwrap();
        assert_eq!(r.file_name(), "qemu-user_10.0.13+ds-0+deb13u1_arm64.deb");
        for bad in [
            "/pool/x.deb",
            "pool/../x.deb",
            "pool//x.deb",
            "pool/x.deb?a",
            "",
        ] {
            assert!(PackageRef::new(bad, &sum, None).is_err(), "{bad}");
        }
        assert!(matches!(
            PackageRef::new("pool/x.deb", "abc", None),
            Err(Error::BadSha256 { .. })
        ));
    }

    #[test]
    fn mirror_urls_get_a_trailing_slash() {
        let Origin::Mirror(u) = Origin::mirror("http://127.0.0.1:1/debian").unwrap() else {
            panic!()
        };
        assert_eq!(
            u.join("pool/main/x.deb").unwrap().as_str(),
            "http://127.0.0.1:1/debian/pool/main/x.deb"
        );
        assert!(Origin::mirror("ftp://127.0.0.1/").is_err());
        assert!(Origin::mirror("not a url").is_err());
    }

    #[test]
    fn local_names_with_and_without_epoch() {
        let wanted = "qemu-user_10.0.13+ds-0+deb13u1_arm64.deb";
        let names: Vec<String> = [
            "qemu-user_1%3a10.0.13+ds-0+deb13u1_arm64.deb",
            "qemu-user_1%3a10.0.13+ds-0+deb13u1_amd64.deb",
            "qemu-user-static_1%3a10.0.13+ds-0+deb13u1_arm64.deb",
            "qemu-user_x%3a10.0.13+ds-0+deb13u1_arm64.deb",
            "qemu-user_10.0.13+ds-0+deb13u1_arm64.deb",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            local_candidates(wanted, &names),
            [
                "qemu-user_10.0.13+ds-0+deb13u1_arm64.deb",
                "qemu-user_1%3a10.0.13+ds-0+deb13u1_arm64.deb"
            ]
        );
    }
}
