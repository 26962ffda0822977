//! Release assets like dbhi/qus's: one `qemu-T-static_H.tgz` per host × target and a
//! `SHA256SUMS`, reproducible byte for byte (fixed tar metadata, gzip without name or time).
//! Each host's assets come from one source, the one its unversioned tags use among those
//! selected (`plan::newest_among`), so the names stay one per host and target. A package
//! that cannot be used leaves out only its host's assets: the rest are written, and
//! `SHA256SUMS` lists exactly what this run wrote.

mod qus_binary;

use crate::arch::Host;
use crate::packages::shortfall::Shortfall;
use crate::packages::{prepare_partial, SourceOptions};
use crate::plan::{PackagePlan, Plan, Role};
use crate::ui::progress::Progress;
use anyhow::Context as _;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// One asset to write.
#[derive(Debug, Clone)]
pub struct AssetSpec {
    /// File name: `qemu-aarch64-static_amd64.tgz`.
    pub name: String,
    /// The emulator to pack.
    pub emulator: PathBuf,
    /// Its name inside the archive: `qemu-aarch64-static`.
    pub member: String,
    /// Where the emulator comes from.
    pub origin: AssetOrigin,
}

/// What an asset holds: which host's emulator of which target, from which QEMU.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AssetOrigin {
    /// The host it runs on (qus's name).
    pub host: String,
    /// The QEMU target.
    pub target: String,
    /// The source (`d11.1`).
    pub source: String,
    /// The version of the QEMU package.
    pub qemu_version: String,
}

/// A written asset.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Asset {
    /// File name.
    pub name: String,
    /// What it holds: an emulator (its host, target and QEMU), or `None` for a qus binary
    /// (`qus_<host>`).
    #[serde(flatten)]
    pub origin: Option<AssetOrigin>,
    /// sha256 of the file.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Whether the file was (re)written.
    pub status: AssetStatus,
}

/// What happened to an asset file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AssetStatus {
    /// Written now.
    Written,
    /// It already held exactly these bytes.
    Unchanged,
}

/// The asset name for a host and target.
pub fn asset_name(host: &str, target: &str) -> String {
    format!("qemu-{target}-static_{host}.tgz")
}

/// The release asset that holds the signing key's public half.
pub(crate) const PUBLIC_KEY_ASSET: &str = "cosign.pub";

/// Writes every asset and `SHA256SUMS` into `out`, each through a temporary file renamed
/// into place, so an interrupted run never leaves a truncated asset under its final name.
///
/// Compression is the slow part (a full release is ~2 GB of emulators), so assets are
/// written `cpus` at a time, and with `memo` (a folder in qus's cache) an asset whose input and
/// output are both unchanged since the last run is left alone: `memo` maps a digest of
/// everything that decides the asset to the sha256 of the file it gave.
pub fn write_assets(
    out: &Path,
    specs: &[AssetSpec],
    mtime: u64,
    memo: Option<&Path>,
    extra: &[Asset],
    cpus: usize,
) -> io::Result<Vec<Asset>> {
    std::fs::create_dir_all(out)?;
    if let Some(m) = memo {
        std::fs::create_dir_all(m)?;
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = cpus.clamp(1, specs.len().max(1));
    let results: Vec<Vec<io::Result<Asset>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(spec) = specs.get(i) else { break };
                        done.push(write_one(out, spec, mtime, memo));
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec![Err(io::Error::other("an asset writer panicked"))])
            })
            .collect()
    });
    let mut written = results
        .into_iter()
        .flatten()
        .collect::<io::Result<Vec<Asset>>>()?;
    written.extend_from_slice(extra);
    written.sort_by(|a, b| a.name.cmp(&b.name));
    let sums: String = written
        .iter()
        .map(|a| format!("{}  {}\n", a.sha256, a.name))
        .collect();
    write_atomic(&out.join("SHA256SUMS"), sums.as_bytes())?;
    Ok(written)
}

/// Bumped when the asset format changes, so old memo entries stop matching.
const FORMAT: &str = "qus-asset v2 gzip-6";

fn write_one(out: &Path, spec: &AssetSpec, mtime: u64, memo: Option<&Path>) -> io::Result<Asset> {
    let path = out.join(&spec.name);
    let key = match memo {
        Some(m) => Some(m.join(input_digest(spec, mtime)?)),
        None => None,
    };
    if let Some(key) = &key {
        if let (Ok(want), Ok(have)) = (std::fs::read_to_string(key), sha256_file(&path)) {
            if want.trim() == have.0 {
                return Ok(Asset {
                    name: spec.name.clone(),
                    origin: Some(spec.origin.clone()),
                    sha256: have.0,
                    size: have.1,
                    status: AssetStatus::Unchanged,
                });
            }
        }
    }
    let bytes = tgz(&spec.emulator, &spec.member, mtime)?;
    write_atomic(&path, &bytes)?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    if let Some(key) = &key {
        write_atomic(key, sha256.as_bytes())?;
    }
    Ok(Asset {
        name: spec.name.clone(),
        origin: Some(spec.origin.clone()),
        sha256,
        size: bytes.len() as u64,
        status: AssetStatus::Written,
    })
}

/// sha256 of everything that decides an asset's bytes: the format, the member name, the
/// mtime and the emulator's content.
fn input_digest(spec: &AssetSpec, mtime: u64) -> io::Result<String> {
    let mut h = Sha256::new();
    h.update(format!("{FORMAT}\0{}\0{mtime}\0", spec.member));
    let mut f = std::fs::File::open(&spec.emulator)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", spec.emulator.display())))?;
    feed(&mut h, &mut f)?;
    Ok(hex::encode(h.finalize()))
}

fn sha256_file(path: &Path) -> io::Result<(String, u64)> {
    let mut h = Sha256::new();
    let n = feed(&mut h, &mut std::fs::File::open(path)?)?;
    Ok((hex::encode(h.finalize()), n))
}

fn feed(h: &mut Sha256, r: &mut impl io::Read) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0;
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                h.update(&buf[..n]);
                total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn tgz(src: &Path, member: &str, mtime: u64) -> io::Result<Vec<u8>> {
    let f = std::fs::File::open(src)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", src.display())))?;
    let len = f.metadata()?.len();
    // qus's one gzip (no name, mtime 0): only the content decides the bytes.
    let gz = crate::image::gzip::Gzip::new(Vec::new(), crate::image::gzip::ASSET_LEVEL)?;
    let mut tar = tar::Builder::new(gz);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o755);
    h.set_size(len);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    tar.append_data(&mut h, member, io::Read::take(f, len))?;
    let gz = tar.into_inner()?;
    gz.finish()
}

fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_mode(path, bytes, 0o644)
}

/// Writes `bytes` to `path` through a temporary file renamed into place, with `mode`.
pub(crate) fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    // Release files are for everyone to read; the temporary file starts as 0600.
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(mode),
    )?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// What `qus assets` writes besides the emulators, and where.
#[derive(Debug, Clone)]
pub(crate) struct AssetsOptions {
    /// The folder (`--out`).
    pub out: PathBuf,
    /// The public half of `--sign-key`, written as `cosign.pub`.
    pub public_key: Option<String>,
    /// Static qus binaries to ship as `qus_<host>` (`--qus-binary`).
    pub qus_binaries: Vec<PathBuf>,
    /// `--json`.
    pub json: bool,
}

/// `qus assets`: one `qemu-T-static_H.tgz` per host × target, each host's from the source
/// `sources` names for it, and SHA256SUMS.
pub(crate) async fn assets_cmd(
    plan: &Plan,
    sources: &BTreeMap<Host, String>,
    src: &SourceOptions,
    opts: &AssetsOptions,
    progress: &Progress,
) -> anyhow::Result<ExitCode> {
    let out = opts.out.as_path();
    // First, so that a binary that cannot be an asset stops the run before any work.
    let binaries = opts
        .qus_binaries
        .iter()
        .map(|f| qus_binary::write(out, f))
        .collect::<anyhow::Result<Vec<Asset>>>()?;
    let qemu: Vec<&PackagePlan> = plan
        .packages
        .iter()
        .filter(
            |p| matches!(&p.role, Role::Qemu { source } if sources.get(&p.host) == Some(source)),
        )
        .collect();
    let prepared = prepare_partial(&qemu, src, progress).await?;
    let mut shortfall = Shortfall::default();
    for mut f in prepared.failures {
        f.left_out = f
            .package
            .targets
            .iter()
            .map(|t| asset_name(f.package.host.name(), t))
            .collect();
        shortfall.failed_packages.push(f);
    }
    let mut specs = Vec::new();
    let mut from = Vec::new();
    for ((source, host), emus) in &prepared.extracted.emulators {
        let version = qemu
            .iter()
            .find(|p| p.host == *host)
            .map_or_else(String::new, |p| p.version.clone());
        from.push(format!("{host} {source} ({version})"));
        for (target, file) in emus {
            specs.push(AssetSpec {
                name: asset_name(host.name(), target),
                emulator: file.path.clone(),
                member: format!("qemu-{target}-static"),
                origin: AssetOrigin {
                    host: host.name().to_string(),
                    target: target.clone(),
                    source: source.clone(),
                    qemu_version: version.clone(),
                },
            });
        }
    }
    let dir = out.to_path_buf();
    let epoch = plan.epoch;
    let memo = src.cache.join("assets");
    progress.step(format!(
        "writing {} assets to {}: {}",
        specs.len(),
        out.display(),
        from.join(", ")
    ));
    let cpus = src.cpus;
    let written = tokio::task::spawn_blocking(move || {
        write_assets(&dir, &specs, epoch, Some(&memo), &binaries, cpus)
    })
    .await
    .context("writing assets")?
    .with_context(|| format!("writing assets to {}", out.display()))?;
    let unchanged = written
        .iter()
        .filter(|x| x.status == AssetStatus::Unchanged)
        .count();
    if let Some(pem) = &opts.public_key {
        // The key `cosign verify --key` and `qus verify --key` check signatures with.
        let path = out.join(PUBLIC_KEY_ASSET);
        write_atomic(&path, pem.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        progress.step(format!("public key of --sign-key in {}", path.display()));
    }
    for line in shortfall.lines("assets") {
        progress.error(line);
    }
    progress.step(format!(
        "{} assets ({} written, {unchanged} unchanged) and SHA256SUMS in {}",
        written.len(),
        written.len() - unchanged,
        out.display()
    ));
    if opts.json {
        crate::ui::output::out_json(&serde_json::json!({
            "assets": written,
            "failed_packages": shortfall.failed_packages,
        }))?;
    }
    match shortfall.error("assets") {
        Some(e) => Err(e),
        None => Ok(ExitCode::SUCCESS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproducible_and_summed() {
        let dir = tempfile::tempdir().unwrap();
        let emu = dir.path().join("e");
        std::fs::write(&emu, b"\x7fELF...").unwrap();
        let spec = AssetSpec {
            name: asset_name("amd64", "aarch64"),
            emulator: emu,
            member: "qemu-aarch64-static".into(),
            origin: AssetOrigin::default(),
        };
        let a = write_assets(
            &dir.path().join("a"),
            std::slice::from_ref(&spec),
            7,
            None,
            &[],
            2,
        )
        .unwrap();
        let b = write_assets(&dir.path().join("b"), &[spec], 7, None, &[], 2).unwrap();
        assert_eq!(a[0].sha256, b[0].sha256);
        assert_eq!(a[0].name, "qemu-aarch64-static_amd64.tgz");
        let sums = std::fs::read_to_string(dir.path().join("a/SHA256SUMS")).unwrap();
        assert_eq!(
            sums,
            format!("{}  qemu-aarch64-static_amd64.tgz\n", a[0].sha256)
        );
        let f = std::fs::File::open(dir.path().join("a/qemu-aarch64-static_amd64.tgz")).unwrap();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
        let e = ar.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(e.path().unwrap().to_str(), Some("qemu-aarch64-static"));
        assert_eq!(e.header().mode().unwrap(), 0o755);
        let mode = std::fs::metadata(dir.path().join("a/SHA256SUMS"))
            .unwrap()
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o644
        );
    }

    #[test]
    fn unchanged_assets_are_left_alone_and_changed_ones_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let (out, memo) = (dir.path().join("out"), dir.path().join("memo"));
        let emu = dir.path().join("e");
        std::fs::write(&emu, b"\x7fELF one").unwrap();
        let spec = AssetSpec {
            name: asset_name("amd64", "arm"),
            emulator: emu.clone(),
            member: "qemu-arm-static".into(),
            origin: AssetOrigin::default(),
        };
        let specs = std::slice::from_ref(&spec);
        let status = || write_assets(&out, specs, 0, Some(&memo), &[], 2).unwrap()[0].clone();
        let first = status();
        assert_eq!(first.status, AssetStatus::Written);
        let again = status();
        assert_eq!(
            (again.status, &again.sha256),
            (AssetStatus::Unchanged, &first.sha256)
        );
        // A damaged output is rewritten, not trusted.
        std::fs::write(out.join(&spec.name), b"junk").unwrap();
        let repaired = status();
        assert_eq!(
            (repaired.status, &repaired.sha256),
            (AssetStatus::Written, &first.sha256)
        );
        // A new emulator gives a new asset.
        std::fs::write(&emu, b"\x7fELF two").unwrap();
        let changed = status();
        assert_eq!(changed.status, AssetStatus::Written);
        assert_ne!(changed.sha256, first.sha256);
    }
}
