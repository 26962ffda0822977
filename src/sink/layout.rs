//! An OCI image layout directory as a place images are written to (what skopeo, podman and
//! crane read as `oci:DIR:TAG`): `oci-layout`, `blobs/sha256/`, and `index.json` naming each
//! image and list by its tag (`org.opencontainers.image.ref.name`). Re-running leaves equal
//! blobs alone and replaces only the entries of the tags it writes; a list already there
//! that has a platform the new one lacks is left as it was (and reported), never shrunk.

use crate::image::{Image, Store};
use crate::outcome::LayoutReport;
use qus_registry::{media, Descriptor, Digest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The annotation that names a tag in an OCI layout.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A layout that could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LayoutError {
    /// File I/O failed.
    #[error("OCI layout {}: {source}", path.display())]
    Io {
        /// Where.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The folder holds something that is not an OCI layout.
    #[error("{}: not an OCI image layout ({reason}); give an empty or new folder", path.display())]
    NotLayout {
        /// The folder.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A layer's blob failed.
    #[error(transparent)]
    Layer(#[from] crate::image::LayerError),
}

/// Where a blob's bytes come from.
enum Blob<'a> {
    Bytes(&'a [u8]),
    Layer(&'a crate::image::Layer),
}

#[derive(Serialize, Deserialize)]
struct LayoutIndex {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: String,
    manifests: Vec<Entry>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Entry {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: Digest,
    size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    platform: Option<qus_registry::Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

/// Writes `images` and `lists` (tag, list bytes and descriptor) into the layout at `dir`.
pub(crate) fn write(
    dir: &Path,
    images: &[Image],
    lists: &[(String, Vec<u8>, Descriptor)],
    store: &Store,
) -> Result<LayoutReport, LayoutError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LayoutError::Io { path, source }
    };
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(io_err(&blobs))?;
    let marker = dir.join("oci-layout");
    match std::fs::read(&marker) {
        Ok(text) => {
            let v: serde_json::Value =
                serde_json::from_slice(&text).map_err(|e| LayoutError::NotLayout {
                    path: dir.to_path_buf(),
                    reason: format!("oci-layout: {e}"),
                })?;
            if v["imageLayoutVersion"] != "1.0.0" {
                return Err(LayoutError::NotLayout {
                    path: dir.to_path_buf(),
                    reason: format!("oci-layout says {v}"),
                });
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            atomic_write(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io_err(&marker))?;
        }
        Err(e) => return Err(io_err(&marker)(e)),
    }

    let index_path = dir.join("index.json");
    let (mut all, untagged) = read_index(dir, &index_path)?;
    let mut report = LayoutReport::default();
    let mut kept = Vec::new();
    let mut put = |digest: &Digest, size: u64, bytes: Blob<'_>| -> Result<(), LayoutError> {
        let path = blobs.join(digest.hex());
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == size) {
            report.present += 1;
            return Ok(());
        }
        match bytes {
            Blob::Bytes(b) => atomic_write(&path, b).map_err(io_err(&path))?,
            // A layer: from the store, its hash checked (and rebuilt if corrupt).
            Blob::Layer(l) => {
                atomic_write(&path, &crate::image::blob(store, l)?).map_err(io_err(&path))?
            }
        }
        report.written += 1;
        Ok(())
    };
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    for img in images {
        for l in &img.layers {
            put(&l.memo.digest, l.memo.size, Blob::Layer(l))?;
        }
        put(
            &img.config_digest,
            img.config.len() as u64,
            Blob::Bytes(&img.config),
        )?;
        put(
            &img.descriptor.digest,
            img.descriptor.size,
            Blob::Bytes(&img.manifest),
        )?;
        entries.insert(
            img.tag.clone(),
            Entry {
                media_type: img.descriptor.media_type.clone(),
                digest: img.descriptor.digest.clone(),
                size: img.descriptor.size,
                platform: Some(img.platform.clone()),
                annotations: BTreeMap::from([(REF_NAME.to_string(), img.tag.clone())]),
            },
        );
    }
    for (tag, bytes, d) in lists {
        let lost = all
            .get(tag)
            .map_or_else(Vec::new, |old| lost_platforms(&blobs, old, bytes));
        if !lost.is_empty() {
            kept.push((tag.clone(), lost));
            continue;
        }
        put(&d.digest, d.size, Blob::Bytes(bytes))?;
        entries.insert(
            tag.clone(),
            Entry {
                media_type: d.media_type.clone(),
                digest: d.digest.clone(),
                size: d.size,
                platform: None,
                annotations: BTreeMap::from([(REF_NAME.to_string(), tag.clone())]),
            },
        );
    }

    report.lists_kept = kept;
    // Entries of other tags (an earlier run, another matrix) stay; ours are replaced.
    all.extend(entries);
    report.tags = all.len();
    let index = LayoutIndex {
        schema_version: 2,
        media_type: media::OCI_INDEX.to_string(),
        manifests: untagged.into_iter().chain(all.into_values()).collect(),
    };
    let json = serde_json::to_vec_pretty(&index).expect("an index always serializes");
    atomic_write(&index_path, &json).map_err(io_err(&index_path))?;
    Ok(report)
}

/// The tagged entries of the layout's `index.json` by tag, and the untagged ones.
fn read_index(
    dir: &Path,
    index_path: &Path,
) -> Result<(BTreeMap<String, Entry>, Vec<Entry>), LayoutError> {
    let mut tagged = BTreeMap::new();
    let mut untagged = Vec::new();
    match std::fs::read(index_path) {
        Ok(text) => {
            let old: LayoutIndex =
                serde_json::from_slice(&text).map_err(|e| LayoutError::NotLayout {
                    path: dir.to_path_buf(),
                    reason: format!("index.json: {e}"),
                })?;
            for e in old.manifests {
                match e.annotations.get(REF_NAME) {
                    Some(t) => {
                        tagged.insert(t.clone(), e);
                    }
                    None => untagged.push(e),
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(LayoutError::Io {
                path: index_path.to_path_buf(),
                source,
            })
        }
    }
    Ok((tagged, untagged))
}

/// The platforms the list `old` (an entry of the layout) has and the list `new` lacks; none
/// when `old` is not a list or cannot be read (a damaged layout is written over).
fn lost_platforms(blobs: &Path, old: &Entry, new: &[u8]) -> Vec<String> {
    if !media::is_list(&old.media_type) {
        return Vec::new();
    }
    let read = |bytes: &[u8]| serde_json::from_slice::<qus_registry::Index>(bytes).ok();
    let old = std::fs::read(blobs.join(old.digest.hex()))
        .ok()
        .and_then(|b| read(&b));
    match (old, read(new)) {
        (Some(old), Some(new)) => crate::image::lists::lost_platforms(&old, &new)
            .iter()
            .map(|p| p.to_string())
            .collect(),
        _ => Vec::new(),
    }
}

/// Writes `bytes` to `path` through a temp file in the same folder.
fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
