//! One layer, computed once: its files as a tar (whose sha256 is the diffID), compressed
//! with one fixed gzip (`crate::image::gzip`) so the same files give the same blob on every
//! machine, and kept in the [`Store`] by digest.

use super::store::{LayerMemo, Store, StoreError};
use super::tar::{TarError, Tree};
use crate::image::files::{layer_key, Entry};
use qus_registry::Digest;
use sha2::Digest as _;
use std::io::{self, Write};

/// A layer that could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LayerError {
    /// Its files cannot make a tar.
    #[error("layer {what}: {source}")]
    Tar {
        /// Which layer.
        what: String,
        /// Why.
        source: TarError,
    },
    /// The cache failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Rewriting a layer whose cached blob was corrupt gave other bytes: its files changed.
    #[error(
        "layer {what}: its files changed since it was computed (the cache is being modified?)"
    )]
    Changed {
        /// Which layer.
        what: String,
    },
}

/// A computed layer: its files and what they hash to.
#[derive(Debug, Clone)]
pub(crate) struct Layer {
    /// What it is, for messages (`qemu-aarch64 for amd64`).
    pub what: String,
    /// Its files.
    pub entries: Vec<Entry>,
    /// The mtime of every entry.
    pub mtime: u64,
    /// Digest and sizes of the tar and the compressed blob.
    pub memo: LayerMemo,
}

impl Layer {
    /// Writes the uncompressed tar to `w` (what a daemon loads).
    pub(crate) fn write_tar<W: Write + ?Sized>(&self, w: &mut W) -> Result<(), LayerError> {
        let tree = Tree::new(&self.entries).map_err(|source| self.tar_error(source))?;
        tree.write(w, self.mtime)
            .map_err(|source| self.tar_error(source))
    }

    fn tar_error(&self, source: TarError) -> LayerError {
        LayerError::Tar {
            what: self.what.clone(),
            source,
        }
    }
}

/// The compressed blob of `layer`, its hash checked; a blob found corrupt in the cache is
/// written again from the layer's files (the same files give the same bytes).
pub(crate) fn blob(store: &Store, layer: &Layer) -> Result<Vec<u8>, LayerError> {
    match store.read_blob(&layer.memo.digest) {
        Ok(bytes) => Ok(bytes),
        Err(StoreError::Corrupt { .. }) => {
            // read_blob removed it, so the memo misses and the layer is written anew.
            let again = prepare(store, &layer.what, layer.entries.clone(), layer.mtime)?;
            if again.memo != layer.memo {
                return Err(LayerError::Changed {
                    what: layer.what.clone(),
                });
            }
            Ok(store.read_blob(&layer.memo.digest)?)
        }
        Err(e) => Err(e.into()),
    }
}

/// The layer of `entries`: from the store's memo when it has one (no file is read), else
/// written, hashed and compressed into the store.
pub(crate) fn prepare(
    store: &Store,
    what: &str,
    entries: Vec<Entry>,
    mtime: u64,
) -> Result<Layer, LayerError> {
    let key = layer_key(&entries, mtime);
    if let Some(memo) = store.layer(&key) {
        return Ok(Layer {
            what: what.to_string(),
            entries,
            mtime,
            memo,
        });
    }
    let tar_error = |source| LayerError::Tar {
        what: what.to_string(),
        source,
    };
    let tree = Tree::new(&entries).map_err(tar_error)?;
    let tmp = store.temp_blob()?;
    let tmp_path = tmp.path().to_path_buf();
    let file = io::BufWriter::with_capacity(1 << 20, tmp);
    let blob = Hashing::new(file);
    let gz =
        crate::image::gzip::Gzip::new(blob, crate::image::gzip::LAYER_LEVEL).map_err(|source| {
            StoreError::Io {
                what: "compressing into",
                path: tmp_path.clone(),
                source,
            }
        })?;
    let mut tar = Hashing::new(gz);
    tree.write(&mut tar, mtime).map_err(tar_error)?;
    let (gz, diff_id, tar_size) = tar.finish();
    let io_err = |source| StoreError::Io {
        what: "compressing into",
        path: tmp_path.clone(),
        source,
    };
    let blob = gz.finish().map_err(io_err)?;
    let (file, digest, size) = blob.finish();
    let tmp = file.into_inner().map_err(|e| io_err(e.into_error()))?;
    store.commit_blob(tmp, &digest)?;
    let memo = LayerMemo {
        diff_id,
        tar_size,
        digest,
        size,
    };
    store.set_layer(&key, &memo)?;
    Ok(Layer {
        what: what.to_string(),
        entries,
        mtime,
        memo,
    })
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: sha2::Sha256,
    len: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Hashing<W> {
        Hashing {
            inner,
            hasher: sha2::Sha256::new(),
            len: 0,
        }
    }

    fn finish(self) -> (W, Digest, u64) {
        let hex = hex::encode(self.hasher.finalize());
        let digest = Digest::parse(&format!("sha256:{hex}")).expect("a sha256 is a digest");
        (self.inner, digest, self.len)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::files::Content;
    use std::io::Read;

    fn entries() -> Vec<Entry> {
        vec![Entry::File {
            path: "usr/bin/qemu-x-static".into(),
            mode: 0o755,
            content: Content::Bytes((0..100_000u32).map(|i| (i % 7) as u8).collect()),
        }]
    }

    #[test]
    fn same_files_same_digests_and_a_memo_hit_reads_nothing() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (sa, sb) = (
            Store::open(a.path()).unwrap(),
            Store::open(b.path()).unwrap(),
        );
        let la = prepare(&sa, "x", entries(), 0).unwrap();
        let lb = prepare(&sb, "x", entries(), 0).unwrap();
        assert_eq!(la.memo, lb.memo, "two empty caches, one result");
        // The blob is a gzip of the tar, and the tar hashes to the diffID.
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&sa.read_blob(&la.memo.digest).unwrap()[..])
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(Digest::sha256(&tar), la.memo.diff_id);
        assert_eq!(tar.len() as u64, la.memo.tar_size);
        let mut again = Vec::new();
        la.write_tar(&mut again).unwrap();
        assert_eq!(again, tar);
        // The gzip is pinned: another implementation or level would change every digest
        // qus ever published, so a change here must be deliberate.
        assert_eq!(
            la.memo.digest.to_string(),
            "sha256:1661b8b1cfc9666e3e877458cbf4e5f80f4941574d28efe63f8b256093419958"
        );
        // Another mtime is another layer.
        assert_ne!(prepare(&sa, "x", entries(), 1).unwrap().memo, la.memo);
    }
}
