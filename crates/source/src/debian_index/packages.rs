//! `Packages` indexes: one stanza per binary package, with its pool path and sums.

use std::io::Read;

use crate::compression::Compression;
use crate::deb822;
use crate::debian_index::version::Version;
use crate::digest::Sha256;
use crate::error::{Error, Result};
use crate::pinned::PackageRef;

/// One binary package of an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageEntry {
    /// `Package:`.
    pub package: String,
    /// `Version:`.
    pub version: String,
    /// `Architecture:`.
    pub architecture: String,
    /// `Filename:` (pool path).
    pub filename: String,
    /// `Size:`.
    pub size: u64,
    /// `SHA256:`.
    pub sha256: Sha256,
    /// `Source:` as written (may carry a version in parentheses).
    pub source: Option<String>,
}

impl PackageEntry {
    /// The pin for this package, as [`crate::Fetcher::fetch`] takes it.
    pub fn package_ref(&self) -> Result<PackageRef> {
        let mut r = PackageRef::new(&self.filename, &self.sha256.to_hex(), Some(self.size))?;
        r.size = Some(self.size);
        Ok(r)
    }
}

/// Parses a (decompressed) Packages file; `origin` names it in errors.
pub fn parse_packages(text: &str, origin: &str) -> Result<Vec<PackageEntry>> {
    let bad = |detail: String| Error::BadIndex {
        what: origin.to_string(),
        detail,
    };
    let stanzas = deb822::parse(text).map_err(|(l, d)| bad(format!("line {l}: {d}")))?;
    stanzas
        .iter()
        .map(|s| {
            let field = |n: &str| {
                s.get(n)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| bad(format!("stanza at line {}: no {n}: field", s.line)))
            };
            let size = field("Size")?;
            let sum = field("SHA256")?;
            Ok(PackageEntry {
                package: field("Package")?.to_string(),
                version: field("Version")?.to_string(),
                architecture: field("Architecture")?.to_string(),
                filename: field("Filename")?.to_string(),
                size: size
                    .parse()
                    .map_err(|_| bad(format!("stanza at line {}: bad Size {size:?}", s.line)))?,
                sha256: sum
                    .parse()
                    .map_err(|_| bad(format!("stanza at line {}: bad SHA256 {sum:?}", s.line)))?,
                source: s.get("Source").map(str::to_string),
            })
        })
        .collect()
}

/// Pure: the newest version of `package` for `arch`. Entries with unparsable versions are
/// ignored rather than allowed to win.
pub fn newest<'a>(
    entries: &'a [PackageEntry],
    package: &str,
    arch: &str,
) -> Option<&'a PackageEntry> {
    entries
        .iter()
        .filter(|e| e.package == package && e.architecture == arch)
        .filter_map(|e| Some((e.version.parse::<Version>().ok()?, e)))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, e)| e)
}

/// Decompresses an index by its file name (`Packages.xz`, `.gz`, `.zst` or none), refusing
/// more than `max` bytes of output.
pub fn decompress_index(name: &str, bytes: &[u8], max: u64) -> Result<String> {
    let comp = ["xz", "gz", "zst"]
        .iter()
        .find_map(|ext| {
            name.strip_suffix(ext)
                .and_then(|n| n.strip_suffix('.'))
                .map(|_| *ext)
        })
        .map(|ext| match ext {
            "xz" => Compression::Xz,
            "gz" => Compression::Gzip,
            _ => Compression::Zstd,
        })
        .unwrap_or(Compression::None);
    let corrupt = |detail: String| Error::BadIndex {
        what: name.to_string(),
        detail,
    };
    let dec = comp
        .decoder(bytes, false)
        .map_err(|e| corrupt(format!("cannot decompress: {e}")))?;
    let mut out = Vec::new();
    dec.take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| corrupt(format!("cannot decompress: {e}")))?;
    if out.len() as u64 > max {
        return Err(corrupt(format!("decompresses to more than {max} bytes")));
    }
    String::from_utf8(out).map_err(|_| corrupt("not UTF-8 text".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stanza(pkg: &str, ver: &str, arch: &str) -> String {
        format!(
            "Package: {pkg}\nSource: qemu\nVersion: {ver}\nArchitecture: {arch}\nFilename: pool/main/q/qemu/{pkg}_{ver}_{arch}.deb\nSize: 10\nSHA256: {}\nDescription: x\n more\n\n",
            "ab".repeat(32)
        )
    }

    #[test]
    fn newest_wins_per_arch() {
        let text = [
            stanza("qemu-user", "1:10.0.2+ds-2", "amd64"),
            stanza("qemu-user", "1:10.0.13+ds-0+deb13u1", "amd64"),
            stanza("qemu-user", "1:11.0~rc1-1", "arm64"),
            stanza("qemu-user", "1:10.0.13+ds-0+deb13u1~bpo", "amd64"),
        ]
        .concat();
        let e = parse_packages(&text, "Packages").unwrap();
        assert_eq!(e.len(), 4);
        let n = newest(&e, "qemu-user", "amd64").unwrap();
        assert_eq!(n.version, "1:10.0.13+ds-0+deb13u1");
        assert_eq!(n.package_ref().unwrap().size, Some(10));
        assert!(newest(&e, "qemu-user", "riscv64").is_none());
        assert!(newest(&e, "busybox-static", "amd64").is_none());
    }

    #[test]
    fn missing_fields_name_the_stanza() {
        let err = parse_packages("Package: a\nVersion: 1\n", "P").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn decompression_is_capped() {
        let xz = liblzma::encode_all(&[b'a'; 1000][..], 6).unwrap();
        assert_eq!(
            decompress_index("Packages.xz", &xz, 1000).unwrap().len(),
            1000
        );
        assert!(decompress_index("Packages.xz", &xz, 999).is_err());
        assert!(decompress_index("Packages.xz", b"garbage", 999).is_err());
        assert_eq!(decompress_index("Packages", b"x", 9).unwrap(), "x");
    }
}
