//! Where qus keeps what it computed about images, in the cache folder (`QUS_CACHE`):
//!
//! ```text
//! oci/blobs/sha256/<hex>   compressed layers, content-addressed
//! oci/layers/<key>.json    a layer's diffID, tar size and blob, by the key of its files
//! oci/images/<key>.json    an image's manifest descriptor, by its inputs and media types
//! ```
//!
//! Blobs get their final name only when complete (temp file, rename), so two runs sharing
//! the cache can write the same blob at once. A memo is a hint, never trusted alone: a
//! layer memo counts only while its blob is there with the recorded size, every blob is
//! re-hashed when a sink reads it (and written again from its files when corrupt), and an image memo is only compared with what a registry
//! already holds.

use qus_registry::Digest;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

/// A cache entry that cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// Reading or writing the cache failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What qus was doing.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A blob whose bytes do not hash to its name.
    #[error("cached blob {} is corrupt (its content hashes to {actual}); it was removed", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What it hashed to.
        actual: Digest,
    },
}

/// What a layer memo records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LayerMemo {
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// Size of the uncompressed tar.
    pub tar_size: u64,
    /// sha256 of the compressed blob.
    pub digest: Digest,
    /// Size of the compressed blob.
    pub size: u64,
}

/// What an image memo records: the manifest a plan's image gave last time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ImageMemo {
    /// Manifest digest.
    pub digest: Digest,
    /// Manifest size.
    pub size: u64,
    /// Manifest media type.
    pub media_type: String,
    /// Config digest (the daemon's image ID).
    pub config: Digest,
}

/// The image part of the cache.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    root: PathBuf,
}

impl Store {
    /// The store under the cache folder `cache`, created when missing.
    pub(crate) fn open(cache: &Path) -> Result<Store, StoreError> {
        let root = cache.join("oci");
        for d in ["blobs/sha256", "layers", "images"] {
            let p = root.join(d);
            std::fs::create_dir_all(&p).map_err(|source| StoreError::Io {
                what: "creating",
                path: p,
                source,
            })?;
        }
        Ok(Store { root })
    }

    /// Where blob `digest` lives.
    pub(crate) fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Whether blob `digest` is there with `size` bytes (a stat, not a hash).
    pub(crate) fn has_blob(&self, digest: &Digest, size: u64) -> bool {
        std::fs::metadata(self.blob_path(digest)).is_ok_and(|m| m.len() == size)
    }

    /// Reads blob `digest` whole and checks its hash; a corrupt blob is deleted.
    pub(crate) fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(digest);
        let bytes = std::fs::read(&path).map_err(|source| StoreError::Io {
            what: "reading",
            path: path.clone(),
            source,
        })?;
        let actual = Digest::sha256(&bytes);
        if actual != *digest {
            let _ = std::fs::remove_file(&path);
            return Err(StoreError::Corrupt { path, actual });
        }
        Ok(bytes)
    }

    /// A temp file beside the blobs, to be given its name by [`Store::commit_blob`].
    pub(crate) fn temp_blob(&self) -> Result<tempfile::NamedTempFile, StoreError> {
        let dir = self.root.join("blobs/sha256");
        tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&dir)
            .map_err(|source| StoreError::Io {
                what: "creating a temp file in",
                path: dir,
                source,
            })
    }

    /// Gives a complete temp file its content-addressed name.
    pub(crate) fn commit_blob(
        &self,
        tmp: tempfile::NamedTempFile,
        digest: &Digest,
    ) -> Result<(), StoreError> {
        let path = self.blob_path(digest);
        tmp.persist(&path).map_err(|e| StoreError::Io {
            what: "storing",
            path,
            source: e.error,
        })?;
        Ok(())
    }

    #[cfg(test)]
    /// Stores small bytes (configs, manifests) as a blob.
    pub(crate) fn put_blob(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::sha256(bytes);
        if self.has_blob(&digest, bytes.len() as u64) {
            return Ok(digest);
        }
        let mut tmp = self.temp_blob()?;
        std::io::Write::write_all(&mut tmp, bytes).map_err(|source| StoreError::Io {
            what: "writing",
            path: tmp.path().to_path_buf(),
            source,
        })?;
        self.commit_blob(tmp, &digest)?;
        Ok(digest)
    }

    /// The layer memo for `key`, when it is there and its blob too.
    pub(crate) fn layer(&self, key: &str) -> Option<LayerMemo> {
        let memo: LayerMemo =
            self.read_json(&self.root.join("layers").join(format!("{key}.json")))?;
        self.has_blob(&memo.digest, memo.size).then_some(memo)
    }

    /// Records the layer memo for `key`.
    pub(crate) fn set_layer(&self, key: &str, memo: &LayerMemo) -> Result<(), StoreError> {
        self.write_json(&self.root.join("layers").join(format!("{key}.json")), memo)
    }

    /// The image memo for `key`.
    pub(crate) fn image(&self, key: &str) -> Option<ImageMemo> {
        self.read_json(&self.root.join("images").join(format!("{key}.json")))
    }

    /// Records the image memo for `key`.
    pub(crate) fn set_image(&self, key: &str, memo: &ImageMemo) -> Result<(), StoreError> {
        self.write_json(&self.root.join("images").join(format!("{key}.json")), memo)
    }

    fn read_json<T: for<'de> Deserialize<'de>>(&self, path: &Path) -> Option<T> {
        // A missing or damaged memo is a miss: it is recomputed and rewritten.
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    fn write_json<T: Serialize>(&self, path: &Path, value: &T) -> Result<(), StoreError> {
        let io_err = |source| StoreError::Io {
            what: "writing",
            path: path.to_path_buf(),
            source,
        };
        let dir = path.parent().unwrap_or(&self.root);
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err)?;
        serde_json::to_writer(&mut tmp, value).map_err(|e| io_err(io::Error::other(e)))?;
        tmp.persist(path).map_err(|e| io_err(e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_round_trip_and_corruption_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let d = s.put_blob(b"hello").unwrap();
        assert!(s.has_blob(&d, 5));
        assert_eq!(s.read_blob(&d).unwrap(), b"hello");

        std::fs::write(s.blob_path(&d), b"HELLO").unwrap();
        let err = s.read_blob(&d).unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
        assert!(!s.blob_path(&d).exists(), "a corrupt blob is removed");
    }

    #[test]
    fn a_layer_memo_without_its_blob_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let d = s.put_blob(b"gz").unwrap();
        let memo = LayerMemo {
            diff_id: Digest::sha256(b"tar"),
            tar_size: 3,
            digest: d.clone(),
            size: 2,
        };
        s.set_layer("k", &memo).unwrap();
        assert_eq!(s.layer("k"), Some(memo));
        std::fs::remove_file(s.blob_path(&d)).unwrap();
        assert_eq!(s.layer("k"), None);
        std::fs::write(dir.path().join("oci/layers/j.json"), b"{not json").unwrap();
        assert_eq!(s.layer("j"), None);
    }
}
