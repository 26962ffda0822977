//! A temp file in the cache being filled and hashed: where a package's bytes go, from a
//! mirror or a local folder, before they are verified and get their final name.
//!
//! The temp file sits beside the cache entry, so the final rename is atomic; it is deleted
//! when the sink drops, so a wrong, short or interrupted transfer leaves nothing that a later
//! run could mistake for the package.

use tokio::io::AsyncWriteExt;

use crate::cache::Cache;
use crate::digest::Hasher;
use crate::error::{Error, Result};
use crate::pinned::{PackageRef, VerifiedPackage};
use crate::progress::{Progress, Retrying};

/// Progress callbacks get a call at most every this many bytes (and at the end).
const PROGRESS_STEP: u64 = 1 << 20;
/// Most bytes stored for a package without a pinned size (qemu packages are ~70 MB).
const MAX_UNPINNED: u64 = 2 << 30;

/// What is told of a transfer's progress.
pub(crate) type OnProgress<'a> = dyn Fn(&Progress) + Send + Sync + 'a;

/// A temp file in the cache being filled and hashed.
pub(crate) struct Sink<'a> {
    cache: &'a Cache,
    /// URL or path, for messages.
    origin: String,
    pkg: &'a PackageRef,
    tmp: tempfile::NamedTempFile,
    file: tokio::fs::File,
    hasher: Hasher,
    /// Bytes written (and hashed) so far.
    pub(crate) done: u64,
    /// Bytes in all, when known (for progress).
    pub(crate) total: Option<u64>,
    reported: u64,
    progress: &'a OnProgress<'a>,
}

impl<'a> Sink<'a> {
    pub(crate) async fn new(
        cache: &'a Cache,
        origin: String,
        pkg: &'a PackageRef,
        total: Option<u64>,
        progress: &'a OnProgress<'a>,
    ) -> Result<Sink<'a>> {
        let dir = cache.blobs_dir();
        let tmp = tempfile::Builder::new()
            .prefix(".qus-")
            .suffix(".part")
            .tempfile_in(&dir)
            .map_err(|e| Error::io("cannot create a temporary file in", &dir, e))?;
        let std_file = tmp
            .as_file()
            .try_clone()
            .map_err(|e| Error::io("cannot write", tmp.path(), e))?;
        progress(&Progress {
            file: pkg.file_name().to_string(),
            done: 0,
            total,
            retry: None,
        });
        Ok(Sink {
            cache,
            origin,
            pkg,
            file: tokio::fs::File::from_std(std_file),
            tmp,
            hasher: Hasher::default(),
            done: 0,
            total,
            reported: 0,
            progress,
        })
    }

    /// The package being filled in.
    pub(crate) fn pkg(&self) -> &'a PackageRef {
        self.pkg
    }

    /// A new, empty sink for the same package (this one's temp file goes when it drops).
    pub(crate) async fn fresh(&self, total: Option<u64>) -> Result<Sink<'a>> {
        Sink::new(
            self.cache,
            self.origin.clone(),
            self.pkg,
            total,
            self.progress,
        )
        .await
    }

    /// Tells the progress callback that the transfer is tried again.
    pub(crate) fn retrying(&self, retry: Retrying) {
        (self.progress)(&Progress {
            file: self.pkg.file_name().to_string(),
            done: self.done,
            total: self.total,
            retry: Some(retry),
        });
    }

    pub(crate) async fn write(&mut self, data: &[u8]) -> Result<()> {
        // A pinned size bounds how much a hostile server can make us store.
        let after = self.done + data.len() as u64;
        match self.pkg.size {
            Some(max) if after > max => {
                return Err(Error::SizeMismatch {
                    file: self.pkg.file_name().to_string(),
                    origin: self.origin.clone(),
                    expected: max,
                    actual: after,
                })
            }
            None if after > MAX_UNPINNED => {
                return Err(Error::DownloadTooLarge {
                    url: self.origin.clone(),
                    limit: MAX_UNPINNED,
                })
            }
            _ => {}
        }
        self.hasher.update(data);
        self.file
            .write_all(data)
            .await
            .map_err(|e| Error::io("cannot write", self.tmp.path(), e))?;
        self.done += data.len() as u64;
        if self.done - self.reported >= PROGRESS_STEP {
            self.reported = self.done;
            (self.progress)(&Progress {
                file: self.pkg.file_name().to_string(),
                done: self.done,
                total: self.total,
                retry: None,
            });
        }
        Ok(())
    }

    pub(crate) async fn finish(mut self) -> Result<VerifiedPackage> {
        let origin = self.origin.clone();
        self.file
            .flush()
            .await
            .map_err(|e| Error::io("cannot write", self.tmp.path(), e))?;
        let file_name = self.pkg.file_name().to_string();
        if let Some(expected) = self.pkg.size {
            if expected != self.done {
                return Err(Error::SizeMismatch {
                    file: file_name,
                    origin: origin.clone(),
                    expected,
                    actual: self.done,
                });
            }
        }
        let actual = self.hasher.finish();
        if actual != self.pkg.sha256 {
            return Err(Error::ChecksumMismatch {
                file: file_name,
                origin: origin.clone(),
                expected: self.pkg.sha256.to_hex(),
                actual: actual.to_hex(),
            });
        }
        if self.reported != self.done {
            (self.progress)(&Progress {
                file: file_name,
                done: self.done,
                total: self.total,
                retry: None,
            });
        }
        // fsync off the async threads; commit's own fsync then has nothing left to write.
        self.file
            .sync_all()
            .await
            .map_err(|e| Error::io("cannot write", self.tmp.path(), e))?;
        drop(self.file);
        self.cache.commit(self.tmp, &actual, &origin)
    }
}
