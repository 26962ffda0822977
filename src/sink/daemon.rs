//! The daemon as a place images are written to: one docker-archive (`docker save`'s
//! format: `manifest.json`, configs and uncompressed layer tars by digest), streamed to
//! `POST /images/load`. The daemon's image ID is then the config digest qus computed, the
//! same as the registry's, which is checked after the load.

use crate::engine::docker::{Daemon, DockerError};
use crate::image::{Image, Layer};
use crate::outcome::BuiltImage;
use crate::plan::ImagePlan;
use crate::ui::progress::Progress;
use qus_registry::Digest;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::Arc;

/// What went wrong loading images.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    /// The daemon refused or failed.
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// After the load, a tag names another image than the one loaded.
    #[error("{reference}: after the load the daemon's image is {got}, not {want}")]
    Mismatch {
        /// The tag.
        reference: String,
        /// The config digest qus computed.
        want: Digest,
        /// What the daemon has.
        got: String,
    },
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveManifest {
    config: String,
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// Writes `images` as one docker-archive; each layer once, whatever shares it.
pub(crate) fn write_archive(w: &mut dyn Write, images: &[Image]) -> io::Result<()> {
    let mut layers: BTreeMap<&Digest, &Arc<Layer>> = BTreeMap::new();
    let mut manifest = Vec::with_capacity(images.len());
    for img in images {
        for l in &img.layers {
            layers.entry(&l.memo.diff_id).or_insert(l);
        }
        manifest.push(ArchiveManifest {
            config: blob_name(&img.config_digest),
            repo_tags: vec![img.reference.clone()],
            layers: img
                .layers
                .iter()
                .map(|l| blob_name(&l.memo.diff_id))
                .collect(),
        });
    }
    for (diff_id, layer) in layers {
        member(w, &blob_name(diff_id), layer.memo.tar_size, &mut |w| {
            layer.write_tar(w).map_err(io::Error::other)
        })?;
    }
    let mut configs: BTreeMap<&Digest, &[u8]> = BTreeMap::new();
    for img in images {
        configs.insert(&img.config_digest, &img.config);
    }
    for (d, bytes) in configs {
        member(w, &blob_name(d), bytes.len() as u64, &mut |w| {
            w.write_all(bytes)
        })?;
    }
    let json = serde_json::to_vec(&manifest).map_err(io::Error::other)?;
    member(w, "manifest.json", json.len() as u64, &mut |w| {
        w.write_all(&json)
    })?;
    w.write_all(&[0u8; 1024])
}

/// One member of the archive: a header, `size` bytes from `body`, padding.
fn member(
    w: &mut dyn Write,
    name: &str,
    size: u64,
    body: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_path(name)?;
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    w.write_all(h.as_bytes())?;
    let mut counting = Counting { inner: w, n: 0 };
    body(&mut counting)?;
    if counting.n != size {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{name}: {} bytes written, {size} announced", counting.n),
        ));
    }
    let pad = (512 - size % 512) % 512;
    w.write_all(&[0u8; 512][..pad as usize])
}

struct Counting<'a> {
    inner: &'a mut dyn Write,
    n: u64,
}

impl Write for Counting<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Loads `images` into the daemon and checks that every tag now names its config digest.
pub(crate) async fn load(
    daemon: &Daemon,
    images: Vec<Image>,
    progress: &Progress,
) -> Result<Vec<Image>, LoadError> {
    if images.is_empty() {
        return Ok(images);
    }
    let layers: BTreeMap<&Digest, u64> = images
        .iter()
        .flat_map(|i| i.layers.iter().map(|l| (&l.memo.diff_id, l.memo.tar_size)))
        .collect();
    let what = format!("{} images", images.len());
    progress.step(format!(
        "loading {what} ({} layers, {:.1} MB) into the daemon",
        layers.len(),
        layers.values().sum::<u64>() as f64 / 1e6
    ));
    let _spinner = progress.spinner(&format!("loading {what}"));
    let shared = Arc::new(images);
    let for_writer = shared.clone();
    daemon
        .load(&what, move |w| write_archive(w, &for_writer))
        .await?;
    let images = Arc::try_unwrap(shared).unwrap_or_else(|a| (*a).clone());
    for img in &images {
        let id = loaded_id(daemon, &img.reference).await?;
        if id != img.config_digest.as_str() {
            return Err(LoadError::Mismatch {
                reference: img.reference.clone(),
                want: img.config_digest.clone(),
                got: if id.is_empty() { "missing".into() } else { id },
            });
        }
    }
    Ok(images)
}

/// The image ID a tag names right after a load. A tag the daemon does not show yet is asked
/// for again, a few times over about a second: seen once in the tests, while other loads and
/// removals of the same image ran beside it, the daemon answered "no such image" for a tag
/// it listed moments later. A tag naming another image is answered at once.
async fn loaded_id(daemon: &Daemon, reference: &str) -> Result<String, LoadError> {
    for wait_ms in [0u64, 100, 200, 300, 400] {
        tokio::time::sleep(std::time::Duration::from_millis(wait_ms)).await;
        if let Some(found) = daemon.inspect(reference).await? {
            return Ok(found.id);
        }
    }
    Ok(String::new())
}

/// The images of `plan` the daemon already has with the same inputs and platform
/// (unchanged), and the rest (to make); with `force`, all are to make.
pub(crate) async fn in_daemon<'a>(
    daemon: &Daemon,
    images: impl IntoIterator<Item = &'a ImagePlan>,
    force: bool,
) -> Result<(Vec<BuiltImage>, Vec<&'a ImagePlan>), DockerError> {
    let mut done = Vec::new();
    let mut todo = Vec::new();
    for img in images {
        let current = if force {
            None
        } else {
            daemon.inspect(&img.reference).await?
        };
        match current {
            Some(info)
                if info.labels.get(crate::plan::labels::INPUTS) == Some(&img.inputs)
                    && info.is_platform(&img.platform) =>
            {
                done.push(BuiltImage {
                    layers: info.layers,
                    ..BuiltImage::unchanged(img, info.id)
                });
            }
            _ => todo.push(img),
        }
    }
    Ok((done, todo))
}
