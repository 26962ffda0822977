//! What a distribution registry stores on disk, counted.
//!
//! "Each emulator stored once per host" and "registry bytes ≤ 0.5× theirs" are claims
//! about the registry's filesystem storage, so tests and the benchmark measure it
//! there: every blob is `<root>/docker/registry/v2/blobs/sha256/<2 hex>/<hex>/data`.

use std::io;
use std::path::Path;

/// Blob count and total size of a registry storage folder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StorageStats {
    /// Number of blobs (layers, configs and manifests alike).
    pub blobs: u64,
    /// Sum of their sizes in bytes.
    pub bytes: u64,
}

/// Counts the blobs under a distribution `rootdirectory`. A root with no blobs yet
/// (fresh registry) counts zero.
pub fn storage_stats(root: &Path) -> io::Result<StorageStats> {
    let blobs = root.join("docker/registry/v2/blobs/sha256");
    let mut stats = StorageStats::default();
    let prefixes = match std::fs::read_dir(&blobs) {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(stats),
        Err(e) => return Err(e),
    };
    for prefix in prefixes {
        let prefix = prefix?;
        if !prefix.file_type()?.is_dir() {
            continue;
        }
        for blob in std::fs::read_dir(prefix.path())? {
            let data = blob?.path().join("data");
            match std::fs::metadata(&data) {
                Ok(meta) if meta.is_file() => {
                    stats.blobs += 1;
                    stats.bytes += meta.len();
                }
                // An upload in progress or a deleted blob leaves a folder without data.
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_data_files_only() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(storage_stats(root.path()).unwrap(), StorageStats::default());
        let base = root.path().join("docker/registry/v2/blobs/sha256");
        for (hex, size) in [("aa11", 3usize), ("aa22", 5), ("bb33", 7)] {
            let dir = base.join(&hex[..2]).join(hex);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("data"), vec![0u8; size]).unwrap();
        }
        std::fs::create_dir_all(base.join("cc/cc44")).unwrap();
        assert_eq!(
            storage_stats(root.path()).unwrap(),
            StorageStats {
                blobs: 3,
                bytes: 15
            }
        );
    }
}
