//! Release assets like dbhi/qus's: one `qemu-T-static_H.tgz` per host × target and a
//! `SHA256SUMS`, reproducible byte for byte (fixed tar metadata, gzip without name or time).

use sha2::{Digest, Sha256};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// One asset to write.
#[derive(Debug, Clone)]
pub struct AssetSpec {
    /// File name: `qemu-aarch64-static_amd64.tgz`.
    pub name: String,
    /// The emulator to pack.
    pub emulator: PathBuf,
    /// Its name inside the archive: `qemu-aarch64-static`.
    pub member: String,
}

/// A written asset.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Asset {
    /// File name.
    pub name: String,
    /// sha256 of the file.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// The asset name for a host and target.
pub fn asset_name(host: &str, target: &str) -> String {
    format!("qemu-{target}-static_{host}.tgz")
}

/// Writes every asset and `SHA256SUMS` into `out`, each through a temporary file renamed
/// into place, so an interrupted run never leaves a truncated asset under its final name.
pub fn write_assets(out: &Path, specs: &[AssetSpec], mtime: u64) -> io::Result<Vec<Asset>> {
    std::fs::create_dir_all(out)?;
    let mut written = Vec::new();
    for spec in specs {
        let bytes = tgz(&spec.emulator, &spec.member, mtime)?;
        write_atomic(&out.join(&spec.name), &bytes)?;
        written.push(Asset {
            name: spec.name.clone(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            size: bytes.len() as u64,
        });
    }
    written.sort_by(|a, b| a.name.cmp(&b.name));
    let sums: String = written
        .iter()
        .map(|a| format!("{}  {}\n", a.sha256, a.name))
        .collect();
    write_atomic(&out.join("SHA256SUMS"), sums.as_bytes())?;
    Ok(written)
}

fn tgz(src: &Path, member: &str, mtime: u64) -> io::Result<Vec<u8>> {
    let f = std::fs::File::open(src)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", src.display())))?;
    let len = f.metadata()?.len();
    // No file name and mtime 0 in the gzip header: only the content decides the bytes.
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
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
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    // Release files are for everyone to read; the temporary file starts as 0600.
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
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
        };
        let a = write_assets(&dir.path().join("a"), std::slice::from_ref(&spec), 7).unwrap();
        let b = write_assets(&dir.path().join("b"), &[spec], 7).unwrap();
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
}
