//! The on-disk cache: verified packages by sha256, and what was extracted from them.
//!
//! Layout under the root (default `$XDG_CACHE_HOME/qus`, else `~/.cache/qus`):
//!
//! ```text
//! blobs/sha256/<hex>            a package whose content has that sum
//! blobs/sha256/<hex>.verified   sidecar written after verification (see below)
//! blobs/sha256/<hex>.lock       flock'ed while the entry is checked or filled
//! extract/<key>/                emulators (or a file) extracted from one package
//! extract/<key>/.qus-complete.json   marker, written last
//! extract/<key>.lock
//! ```
//!
//! Nothing gets a final name before it is complete and verified: packages are written to a
//! temp file in the same folder, hashed, fsync'ed and renamed; an extraction is only used if
//! its marker exists, and the marker is written after every file is in place.
//!
//! Re-verification of a cached package is by sidecar, not by re-hashing: the sidecar records
//! the sum with the file's size, mtime and inode at the time it was verified, and a hit only
//! needs a `stat`. Re-hashing would cost ~0.2 s per 60 MB package on every run (the whole
//! matrix is 16+ packages, more than the 2 s a no-op re-run may take), and what it guards
//! against, a file changed behind qus's back, also changes its size or mtime; in that case,
//! or when the sidecar is missing, the file is re-hashed and deleted if wrong.
//!
//! Processes sharing the cache lock each entry (see `lock`), so two runs never write the
//! same entry at once; the second waits, with a message, up to a timeout.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::digest::{Hasher, Sha256};
use crate::error::{Error, Result};
use crate::extract::{self, Emulator, EmulatorRequest, ExtractedFile, FileRequest, WriteOpts};
use crate::limits::Limits;
use crate::lock::FileLock;
use crate::pinned::VerifiedPackage;

/// Called when a cache entry is locked by another process, with the lock file's path.
pub type LockWait = dyn Fn(&Path) + Send + Sync;

/// A cache root and how to wait for other processes using it.
#[derive(Clone)]
pub struct Cache {
    root: PathBuf,
    lock_timeout: Duration,
    on_wait: Arc<LockWait>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("root", &self.root)
            .field("lock_timeout", &self.lock_timeout)
            .finish()
    }
}

/// Emulators extracted from one package, in a cache folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extraction {
    /// The folder holding the `qemu-T-static` files.
    pub dir: PathBuf,
    /// The emulators, sorted by target.
    pub emulators: Vec<Emulator>,
    /// Whether this was found in the cache (no unpacking done).
    pub from_cache: bool,
}

#[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
struct Sidecar {
    sha256: Sha256,
    size: u64,
    mtime_ns: i128,
    inode: u64,
    /// Where it came from, for people reading the cache.
    origin: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Marker {
    package_sha256: Sha256,
    files: Vec<MarkerFile>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct MarkerFile {
    /// Target for emulators, package path for single files.
    what: String,
    name: String,
    size: u64,
    sha256: Sha256,
}

const MARKER: &str = ".qus-complete.json";
/// Bumped when what an extraction folder holds changes meaning.
const EXTRACT_FORMAT: &str = "qus-extract-v1";

impl Cache {
    /// `$XDG_CACHE_HOME/qus`, else `$HOME/.cache/qus`.
    pub fn default_root() -> Result<PathBuf> {
        let from = |var: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        if let Some(x) = from("XDG_CACHE_HOME") {
            return Ok(x.join("qus"));
        }
        if let Some(h) = from("HOME") {
            return Ok(h.join(".cache").join("qus"));
        }
        Err(Error::io(
            "cannot find a cache folder (set XDG_CACHE_HOME or HOME, or pass one) for",
            PathBuf::from("qus"),
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ))
    }

    /// Opens (creating) a cache at `root`. Lock waits time out after 10 minutes and print
    /// a line to stderr; see [`Cache::with_lock_timeout`] and [`Cache::on_lock_wait`].
    pub fn open(root: impl Into<PathBuf>) -> Result<Cache> {
        let root = root.into();
        for d in [root.join("blobs").join("sha256"), root.join("extract")] {
            fs::create_dir_all(&d).map_err(|e| Error::io("cannot create", &d, e))?;
        }
        // Tells backup tools this folder can be recreated (https://bford.info/cachedir/).
        let tag = root.join("CACHEDIR.TAG");
        if !tag.exists() {
            let _ = fs::write(
                &tag,
                "Signature: 8a477f597d28d172789f06886806bc55\n# qus cache: packages and extracted emulators\n",
            );
        }
        Ok(Cache {
            root,
            lock_timeout: Duration::from_secs(600),
            on_wait: Arc::new(|p: &Path| {
                eprintln!(
                    "qus: waiting for another qus process using the cache ({})",
                    p.display()
                )
            }),
        })
    }

    /// How long to wait for another process's lock before failing.
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// What to do (once per wait) when another process holds a lock.
    pub fn on_lock_wait(mut self, f: impl Fn(&Path) + Send + Sync + 'static) -> Self {
        self.on_wait = Arc::new(f);
        self
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a package with this sum is (or would be) kept.
    pub fn blob_path(&self, sha256: &Sha256) -> PathBuf {
        self.blobs_dir().join(sha256.to_hex())
    }

    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    pub(crate) async fn lock_blob(&self, sha256: &Sha256) -> Result<FileLock> {
        let p = self.blobs_dir().join(format!("{}.lock", sha256.to_hex()));
        FileLock::acquire_async(&p, self.lock_timeout, &*self.on_wait).await
    }

    /// The verified package with this sum, if the cache has it (taking its lock).
    pub fn lookup(&self, sha256: &Sha256, size: Option<u64>) -> Result<Option<VerifiedPackage>> {
        let p = self.blobs_dir().join(format!("{}.lock", sha256.to_hex()));
        let _lock = FileLock::acquire(&p, self.lock_timeout, &*self.on_wait)?;
        self.lookup_locked(sha256, size)
    }

    /// As [`Cache::lookup`], with the entry's lock already held.
    pub(crate) fn lookup_locked(
        &self,
        sha256: &Sha256,
        size: Option<u64>,
    ) -> Result<Option<VerifiedPackage>> {
        let path = self.blob_path(sha256);
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("cannot read", &path, e)),
        };
        let sidecar_path = sidecar_path(&path);
        let hit = VerifiedPackage {
            path: path.clone(),
            sha256: *sha256,
            size: meta.len(),
            from_cache: true,
        };
        if size.is_some_and(|s| s != meta.len()) {
            // The pin's size disagrees with a file whose sum matched: trust the pin, refetch.
            self.evict(&path);
            return Ok(None);
        }
        let recorded: Option<Sidecar> = fs::read(&sidecar_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if recorded.is_some_and(|s| s == sidecar_for(sha256, &meta, &s.origin)) {
            return Ok(Some(hit));
        }
        // No sidecar, or the file changed since it was verified: hash it again.
        let actual = hash_file(&path)?;
        if actual != *sha256 {
            self.evict(&path);
            return Ok(None);
        }
        write_sidecar(&path, &sidecar_for(sha256, &meta, "re-verified"))?;
        Ok(Some(hit))
    }

    fn evict(&self, path: &Path) {
        let _ = fs::remove_file(sidecar_path(path));
        let _ = fs::remove_file(path);
    }

    /// Gives a verified temp file its final name, then records the sidecar.
    pub(crate) fn commit(
        &self,
        tmp: tempfile::NamedTempFile,
        sha256: &Sha256,
        origin: &str,
    ) -> Result<VerifiedPackage> {
        let path = self.blob_path(sha256);
        let tmp_path = tmp.path().to_path_buf();
        tmp.as_file()
            .sync_all()
            .map_err(|e| Error::io("cannot write", &tmp_path, e))?;
        tmp.persist(&path)
            .map_err(|e| Error::io("cannot rename into", &path, e.error))?;
        let meta = fs::metadata(&path).map_err(|e| Error::io("cannot read", &path, e))?;
        write_sidecar(&path, &sidecar_for(sha256, &meta, origin))?;
        Ok(VerifiedPackage {
            path,
            sha256: *sha256,
            size: meta.len(),
            from_cache: false,
        })
    }

    /// Extracts emulators from a verified package into a cache folder keyed by the package's
    /// sum and the request, or returns the folder from an earlier run.
    pub fn extract_emulators(
        &self,
        pkg: &VerifiedPackage,
        req: &EmulatorRequest,
        limits: &Limits,
    ) -> Result<Extraction> {
        let targets = match &req.targets {
            Some(t) => t.join(","),
            None => "*".into(),
        };
        let key = extract_key(&pkg.sha256, &["emulators", &req.arch, &targets]);
        let (dir, files, from_cache) = self.extract_cached(&key, pkg, |dir| {
            let emus = extract::extract_emulators_with(
                &pkg.path,
                dir,
                req,
                limits,
                WriteOpts { durable: true },
            )?;
            Ok(emus
                .into_iter()
                .map(|e| MarkerFile {
                    name: Emulator::file_name(&e.target),
                    what: e.target,
                    size: e.size,
                    sha256: e.sha256,
                })
                .collect())
        })?;
        let emulators = files
            .into_iter()
            .map(|f| Emulator {
                path: dir.join(&f.name),
                target: f.what,
                size: f.size,
                sha256: f.sha256,
            })
            .collect();
        Ok(Extraction {
            dir,
            emulators,
            from_cache,
        })
    }

    /// Extracts one file from a verified package into a cache folder (see
    /// [`Cache::extract_emulators`]).
    pub fn extract_file(
        &self,
        pkg: &VerifiedPackage,
        req: &FileRequest,
        limits: &Limits,
    ) -> Result<ExtractedFile> {
        let key = extract_key(
            &pkg.sha256,
            &[
                "file",
                &req.arch,
                &req.member,
                &req.file_name,
                if req.host_elf { "elf" } else { "any" },
            ],
        );
        let (dir, files, _) = self.extract_cached(&key, pkg, |dir| {
            let f = extract::extract_file_with(
                &pkg.path,
                dir,
                req,
                limits,
                WriteOpts { durable: true },
            )?;
            Ok(vec![MarkerFile {
                what: f.member,
                name: req.file_name.clone(),
                size: f.size,
                sha256: f.sha256,
            }])
        })?;
        let f = files.into_iter().next().ok_or_else(|| Error::FileMissing {
            path: pkg.path.clone(),
            entry: req.member.clone(),
        })?;
        Ok(ExtractedFile {
            path: dir.join(&f.name),
            member: f.what,
            size: f.size,
            sha256: f.sha256,
        })
    }

    fn extract_cached(
        &self,
        key: &str,
        pkg: &VerifiedPackage,
        run: impl FnOnce(&Path) -> Result<Vec<MarkerFile>>,
    ) -> Result<(PathBuf, Vec<MarkerFile>, bool)> {
        let base = self.root.join("extract");
        let dir = base.join(key);
        let _lock = FileLock::acquire(
            &base.join(format!("{key}.lock")),
            self.lock_timeout,
            &*self.on_wait,
        )?;
        let marker_path = dir.join(MARKER);
        if let Some(files) = read_marker(&marker_path, &dir, &pkg.sha256) {
            return Ok((dir, files, true));
        }
        // Whatever is there is the leftover of an interrupted run: start clean.
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| Error::io("cannot clean", &dir, e))?;
        }
        fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
        let files = match run(&dir) {
            Ok(f) => f,
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let marker = Marker {
            package_sha256: pkg.sha256,
            files,
        };
        let json = serde_json::to_vec_pretty(&marker).expect("marker serializes");
        write_atomic(&dir, MARKER, &json)?;
        Ok((dir, marker.files, false))
    }
}

/// Pure: the folder name of an extraction (a sum, so any request text is safe in a path).
fn extract_key(pkg: &Sha256, parts: &[&str]) -> String {
    let mut text = format!("{EXTRACT_FORMAT}\n{pkg}\n");
    for p in parts {
        text.push_str(p);
        text.push('\n');
    }
    Sha256::of(text.as_bytes()).to_hex()[..32].to_string()
}

/// A marker is trusted if it parses, is for this package, and every file has its size.
fn read_marker(marker: &Path, dir: &Path, pkg: &Sha256) -> Option<Vec<MarkerFile>> {
    let m: Marker = serde_json::from_slice(&fs::read(marker).ok()?).ok()?;
    if m.package_sha256 != *pkg {
        return None;
    }
    let all_there = m.files.iter().all(|f| {
        !f.name.contains('/')
            && fs::symlink_metadata(dir.join(&f.name))
                .is_ok_and(|md| md.is_file() && md.len() == f.size)
    });
    all_there.then_some(m.files)
}

fn sidecar_path(blob: &Path) -> PathBuf {
    let mut s = blob.as_os_str().to_owned();
    s.push(".verified");
    PathBuf::from(s)
}

fn sidecar_for(sha256: &Sha256, meta: &fs::Metadata, origin: &str) -> Sidecar {
    Sidecar {
        sha256: *sha256,
        size: meta.len(),
        mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
        inode: meta.ino(),
        origin: origin.to_string(),
    }
}

fn write_sidecar(blob: &Path, s: &Sidecar) -> Result<()> {
    let dir = blob.parent().unwrap_or(Path::new("."));
    let name = sidecar_path(blob);
    let name = name.file_name().unwrap_or_default().to_string_lossy();
    let json = serde_json::to_vec_pretty(s).expect("sidecar serializes");
    write_atomic(dir, &name, &json)
}

/// Writes a small file by temp + fsync + rename.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".qus-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io("cannot create a temporary file in", dir, e))?;
    let tmp_path = tmp.path().to_path_buf();
    tmp.as_file_mut()
        .write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| Error::io("cannot write", &tmp_path, e))?;
    let dest = dir.join(name);
    tmp.persist(&dest)
        .map_err(|e| Error::io("cannot rename into", &dest, e.error))?;
    Ok(())
}

pub(crate) fn hash_file(path: &Path) -> Result<Sha256> {
    let mut f = fs::File::open(path).map_err(|e| Error::io("cannot read", path, e))?;
    let mut h = Hasher::default();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Error::io("cannot read", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_request() {
        let s = Sha256::of(b"x");
        let a = extract_key(&s, &["emulators", "amd64", "*"]);
        assert_eq!(a.len(), 32);
        assert_ne!(a, extract_key(&s, &["emulators", "arm64", "*"]));
        assert_ne!(a, extract_key(&s, &["emulators", "amd64", "aarch64"]));
    }

    #[test]
    fn tampered_blob_is_rehashed_and_evicted() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let data = b"package bytes";
        let sum = Sha256::of(data);
        let mut tmp = tempfile::NamedTempFile::new_in(cache.blobs_dir()).unwrap();
        tmp.write_all(data).unwrap();
        let v = cache.commit(tmp, &sum, "test").unwrap();
        assert!(cache.lookup(&sum, Some(13)).unwrap().is_some());
        // Same size, different content, and a new mtime: not trusted, re-hashed, evicted.
        std::thread::sleep(Duration::from_millis(20));
        fs::write(&v.path, b"PACKAGE BYTES").unwrap();
        assert!(cache.lookup(&sum, None).unwrap().is_none());
        assert!(!v.path.exists());
    }
}
