//! The files of a layer, as qus describes them before any tar exists: what is written where,
//! with which mode, and what the content is (bytes qus generates, or a file from the cache
//! whose size and sha256 the extraction recorded). The layer's identity is computed from
//! this description, so a cached layer is found without reading its files.

use sha2::{Digest as _, Sha256};
use std::io;
use std::path::PathBuf;

/// Content of one file in a layer.
#[derive(Debug, Clone)]
pub(crate) enum Content {
    /// Small generated files.
    Bytes(Vec<u8>),
    /// A file on disk, read when the tar is written (emulators are large: never held in
    /// memory), with the size and sha256 the extraction recorded.
    File {
        /// Where it is.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// Its sha256, lowercase hex.
        sha256: String,
    },
}

impl Content {
    /// Its length in bytes.
    pub(crate) fn len(&self) -> io::Result<u64> {
        Ok(match self {
            Content::Bytes(b) => b.len() as u64,
            Content::File { size, .. } => *size,
        })
    }

    fn sha256(&self) -> String {
        match self {
            Content::Bytes(b) => hex::encode(Sha256::digest(b)),
            Content::File { sha256, .. } => sha256.clone(),
        }
    }
}

/// One entry of a layer, relative to the image root (no leading `/`).
#[derive(Debug, Clone)]
pub(crate) enum Entry {
    /// A regular file.
    File {
        /// Path in the image.
        path: String,
        /// Unix permission bits.
        mode: u32,
        /// Content.
        content: Content,
    },
    /// A symbolic link.
    Symlink {
        /// Path in the image.
        path: String,
        /// Link target, as written.
        target: String,
    },
}

impl Entry {
    /// Its path in the image.
    pub(crate) fn path(&self) -> &str {
        match self {
            Entry::File { path, .. } | Entry::Symlink { path, .. } => path,
        }
    }
}

/// sha256 over everything that decides a layer's tar: each entry's path, kind, mode and
/// content digest, in path order, and the mtime every entry gets. Equal keys mean equal
/// tars, so this keys the cache of diffIDs and compressed blobs.
pub(crate) fn layer_key(entries: &[Entry], mtime: u64) -> String {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path().cmp(b.path()));
    let mut h = Sha256::new();
    // The format of the tar itself: a change to the writer must change every key.
    h.update(b"qus-layer-v1\0");
    h.update(mtime.to_le_bytes());
    for e in sorted {
        match e {
            Entry::File {
                path,
                mode,
                content,
            } => {
                h.update(b"f\0");
                h.update(path.as_bytes());
                h.update(b"\0");
                h.update(mode.to_le_bytes());
                h.update(content.sha256().as_bytes());
            }
            Entry::Symlink { path, target } => {
                h.update(b"l\0");
                h.update(path.as_bytes());
                h.update(b"\0");
                h.update(target.as_bytes());
            }
        }
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, data: &[u8]) -> Entry {
        Entry::File {
            path: path.into(),
            mode: 0o755,
            content: Content::Bytes(data.to_vec()),
        }
    }

    #[test]
    fn key_depends_on_content_path_mode_and_mtime_not_order() {
        let a = [file("x", b"1"), file("y", b"2")];
        let b = [file("y", b"2"), file("x", b"1")];
        assert_eq!(layer_key(&a, 0), layer_key(&b, 0));
        assert_ne!(layer_key(&a, 0), layer_key(&a, 1));
        assert_ne!(layer_key(&a, 0), layer_key(&[file("x", b"1")], 0));
        assert_ne!(
            layer_key(&[file("x", b"1")], 0),
            layer_key(&[file("x", b"2")], 0)
        );
        let mut m = file("x", b"1");
        if let Entry::File { mode, .. } = &mut m {
            *mode = 0o644;
        }
        assert_ne!(layer_key(&[m], 0), layer_key(&[file("x", b"1")], 0));
    }
}
