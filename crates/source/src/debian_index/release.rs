//! `Release` / `InRelease`: the suite's table of index files and their sums.
//!
//! qus trusts a `Packages` index only through the sum the Release file gives for it, and a
//! Release only through its OpenPGP signature ([`super::signature`], checked by
//! [`super::fetch_release`]): this module parses text already verified.

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
    /// `Valid-Until:` (security and other suites that must be refreshed), as written.
    pub valid_until: Option<String>,
    /// The `SHA256:` section.
    pub files: Vec<IndexFile>,
    /// The keyring's keys that signed it (empty when parsed without checking).
    pub signers: Vec<super::signature::Signer>,
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
            valid_until: field("Valid-Until"),
            files,
            signers: Vec::new(),
        })
    }

    /// Whether the Release's `Valid-Until` has passed at `now` (never, without one).
    pub fn expired(&self, now: std::time::SystemTime) -> Result<bool> {
        let now = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(self.valid_until_secs()?.is_some_and(|until| until <= now))
    }

    /// The `Valid-Until` date as seconds since the epoch, when the Release has one.
    pub fn valid_until_secs(&self) -> Result<Option<u64>> {
        let Some(v) = &self.valid_until else {
            return Ok(None);
        };
        parse_rfc2822(v).map(Some).ok_or_else(|| Error::BadIndex {
            what: self.origin.clone(),
            detail: format!("Valid-Until {v:?} is not a date"),
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

/// Pure: seconds since the epoch of a Release date (`Sat, 06 Dec 2026 20:39:42 UTC`, or
/// with a numeric zone `+0000`).
pub fn parse_rfc2822(text: &str) -> Option<u64> {
    let mut parts = text.split_whitespace();
    let mut first = parts.next()?;
    if first.ends_with(',') {
        first = parts.next()?;
    }
    let day: u64 = first.parse().ok()?;
    let name = parts.next()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == name)? as u64
        + 1;
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(|x| x.parse::<u64>().ok());
    let (h, mi, sec) = (
        hms.next()??,
        hms.next()??,
        hms.next().flatten().unwrap_or(0),
    );
    let offset: i64 = match parts.next() {
        None | Some("UTC" | "GMT" | "Z") => 0,
        Some(z) if z.len() == 5 && (z.starts_with('+') || z.starts_with('-')) => {
            let n: i64 = z[1..].parse().ok()?;
            let secs = (n / 100) * 3600 + (n % 100) * 60;
            if z.starts_with('-') {
                -secs
            } else {
                secs
            }
        }
        Some(_) => return None,
    };
    if !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    // days_from_civil (Howard Hinnant).
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * m as i64 + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let t = days * 86_400 + (h * 3600 + mi * 60 + sec) as i64 - offset;
    u64::try_from(t).ok()
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
    fn release_dates() {
        assert_eq!(parse_rfc2822("Thu, 01 Jan 1970 00:00:00 UTC"), Some(0));
        assert_eq!(
            parse_rfc2822("Tue, 14 Nov 2023 22:13:20 UTC"),
            Some(1_700_000_000)
        );
        assert_eq!(
            parse_rfc2822("Tue, 14 Nov 2023 23:13:20 +0100"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_rfc2822("yesterday"), None);
        let r = Release::parse(
            &format!("Valid-Until: Tue, 14 Nov 2023 22:13:20 UTC\nSHA256:\n {SUM} 0 a\n"),
            "R",
        )
        .unwrap();
        assert_eq!(r.valid_until_secs().unwrap(), Some(1_700_000_000));
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
