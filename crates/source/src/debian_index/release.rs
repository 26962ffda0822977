//! `Release` / `InRelease`: the suite's table of index files and their sums.
//!
//! qus trusts a `Packages` index only through the sum the Release file gives for it. The
//! OpenPGP signature of InRelease is stripped, not checked: the pins in qus.yml (sha256 per
//! package) are the trust anchor, and `qus lock` output is meant to be reviewed.

use crate::deb822;
use crate::digest::Sha256;
use crate::error::{Error, Result};

/// One line of the `SHA256:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    /// Path relative to `dists/<suite>/` (`main/binary-arm64/Packages.xz`).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Sum.
    pub sha256: Sha256,
}

/// A parsed Release file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// Where it came from (URL or name), for messages.
    pub origin: String,
    /// `Suite:`.
    pub suite: Option<String>,
    /// `Codename:`.
    pub codename: Option<String>,
    /// `Date:`.
    pub date: Option<String>,
    /// The `SHA256:` section.
    pub files: Vec<IndexFile>,
}

impl Release {
    /// Parses a Release or InRelease file; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Release> {
        let bad = |detail: String| Error::BadIndex {
            what: origin.to_string(),
            detail,
        };
        let body = strip_clearsign(text).map_err(|d| bad(d.to_string()))?;
        let stanzas = deb822::parse(&body).map_err(|(l, d)| bad(format!("line {l}: {d}")))?;
        let s = stanzas
            .first()
            .ok_or_else(|| bad("empty Release file".into()))?;
        let sums = s
            .get("SHA256")
            .ok_or_else(|| bad("no SHA256 section (qus does not trust MD5 or SHA1)".into()))?;
        let mut files = Vec::new();
        for (k, line) in sums.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(sum), Some(size), Some(path), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(bad(format!(
                    "SHA256 line {k}: expected \"<sum> <size> <path>\", got {line:?}"
                )));
            };
            files.push(IndexFile {
                path: path.to_string(),
                size: size
                    .parse()
                    .map_err(|_| bad(format!("SHA256 line {k}: bad size {size:?}")))?,
                sha256: sum
                    .parse()
                    .map_err(|_| bad(format!("SHA256 line {k}: bad sum {sum:?}")))?,
            });
        }
        let field = |n: &str| s.get(n).map(str::to_string);
        Ok(Release {
            origin: origin.to_string(),
            suite: field("Suite"),
            codename: field("Codename"),
            date: field("Date"),
            files,
        })
    }

    /// The entry for an index path, if listed.
    pub fn file(&self, path: &str) -> Option<&IndexFile> {
        self.files.iter().find(|f| f.path == path)
    }

    /// The `Packages` index of `component`/`arch` this Release lists, preferring the
    /// compressed forms (`main/binary-arm64/Packages.xz`); `None` when the suite has no such
    /// arch (bookworm has no riscv64).
    pub fn packages_path(&self, component: &str, arch: &str) -> Option<String> {
        ["Packages.xz", "Packages.gz", "Packages"]
            .iter()
            .map(|n| format!("{component}/binary-{arch}/{n}"))
            .find(|p| self.file(p).is_some())
    }

    /// Checks `bytes` (as downloaded, still compressed) against the entry for `path`.
    pub fn verify(&self, path: &str, bytes: &[u8], origin: &str) -> Result<()> {
        let entry = self.file(path).ok_or_else(|| Error::NotInRelease {
            release: self.origin.clone(),
            path: path.to_string(),
        })?;
        if entry.size != bytes.len() as u64 {
            return Err(Error::SizeMismatch {
                file: path.to_string(),
                origin: origin.to_string(),
                expected: entry.size,
                actual: bytes.len() as u64,
            });
        }
        let actual = Sha256::of(bytes);
        if actual != entry.sha256 {
            return Err(Error::ChecksumMismatch {
                file: path.to_string(),
                origin: origin.to_string(),
                expected: entry.sha256.to_hex(),
                actual: actual.to_hex(),
            });
        }
        Ok(())
    }
}

/// Pure: the signed text of a clearsigned InRelease, or the text as is.
fn strip_clearsign(text: &str) -> Result<String, &'static str> {
    let mut lines = text.lines();
    let Some(first) = lines.clone().next() else {
        return Ok(String::new());
    };
    if first.trim_end() != "-----BEGIN PGP SIGNED MESSAGE-----" {
        return Ok(text.to_string());
    }
    lines.next();
    // Armor headers ("Hash: SHA512") up to the first blank line.
    for l in lines.by_ref() {
        if l.trim().is_empty() {
            break;
        }
    }
    let mut out = String::new();
    for l in lines {
        if l.trim_end() == "-----BEGIN PGP SIGNATURE-----" {
            return Ok(out);
        }
        out.push_str(l.strip_prefix("- ").unwrap_or(l));
        out.push('\n');
    }
    Err("clearsigned file without a signature block (truncated?)")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUM: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_plain_and_clearsigned() {
        let plain = format!(
            "Origin: Debian\nSuite: stable\nCodename: trixie\nMD5Sum:\n d41d8cd98f00b204e9800998ecf8427e 0 main/binary-arm64/Packages\nSHA256:\n {SUM}        0 main/binary-arm64/Packages\n {SUM} 0 main/binary-arm64/Packages.xz\n"
        );
        let r = Release::parse(&plain, "Release").unwrap();
        assert_eq!(r.codename.as_deref(), Some("trixie"));
        assert_eq!(r.files.len(), 2);
        assert_eq!(
            r.packages_path("main", "arm64").as_deref(),
            Some("main/binary-arm64/Packages.xz")
        );
        assert_eq!(r.packages_path("main", "riscv64"), None);
        r.verify("main/binary-arm64/Packages", b"", "x").unwrap();
        let signed = format!(
            "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n{plain}-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n"
        );
        assert_eq!(Release::parse(&signed, "InRelease").unwrap().files, r.files);
    }

    #[test]
    fn verify_errors() {
        let r = Release::parse(&format!("SHA256:\n {SUM} 0 a/Packages\n"), "R").unwrap();
        assert!(matches!(
            r.verify("a/Packages", b"x", "u"),
            Err(Error::SizeMismatch { .. })
        ));
        assert!(matches!(
            r.verify("b/Packages", b"", "u"),
            Err(Error::NotInRelease { .. })
        ));
        assert!(Release::parse("Suite: x\n", "R").is_err());
        assert!(Release::parse("SHA256:\n zz 1 a\n", "R").is_err());
    }
}
