//! The lock file: `qus.lock` beside `qus.yml`, written by `qus lock`.
//!
//! The config says *what* to build (suites, package names, hosts, targets); the lock says
//! *which exact files*: version, pool path, size and sha256 per (package, host), as a
//! Debian mirror's index gave them. Keeping them apart means a QEMU bump is one reviewed
//! diff of a generated file, and nobody types a sha256 by hand. The lock holds only
//! mirror-independent data (suite, pool paths, sums): it never names a mirror, so one lock
//! works against any mirror, and `--debs DIR` too.
//!
//! This module is the file format alone: parse (with file:line:column on every error,
//! including the value checks, which run during deserialisation), render, and write
//! atomically. Merging a lock into a config is [`crate::config`]'s job.

use crate::arch::Host;
use serde::{Deserialize, Deserializer, Serialize};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The format version this qus writes. Format 2 added `suites` (who signed each suite's
/// Release); format 1 locks, which have no `suites`, are still read.
pub const FORMAT: u32 = 2;
/// The oldest format this qus reads.
pub const OLDEST_FORMAT: u32 = 1;

/// The `role` of busybox pins; every other role is a QEMU source name (`d10.0`).
pub const BUSYBOX: &str = "busybox";

/// Where the lock of the built-in default config lives, relative to the working directory:
/// a qus checkout, where a maintainer runs `qus lock` (and where `images/qus.yml` is).
pub const DEFAULT_LOCK_NAME: &str = "images/qus.lock";

/// A lock file that cannot be read, parsed or written.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The file exists but could not be read.
    #[error("cannot read lock file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// YAML syntax, a wrong type, an unknown key or an invalid value.
    #[error("{path}{}: {message}; fix it or run `qus lock` to rewrite it", location.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
    Syntax {
        /// The file.
        path: String,
        /// Line and column (1-based), when the parser knows them.
        location: Option<(usize, usize)>,
        /// The parser's message.
        message: String,
    },
    /// The lock could not be written.
    #[error("cannot write lock file {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The whole lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    /// Format version ([`FORMAT`]).
    #[serde(deserialize_with = "de_format")]
    pub format: u32,
    /// One pin per (role, host).
    #[serde(default)]
    pub packages: Vec<LockedPackage>,
    /// (role, host) pairs the suite has no package for, so that a host missing from
    /// `packages` can be told apart from a lock older than the config.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<Unavailable>,
    /// Who signed each suite's Release when it was locked (format 2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suites: Vec<LockedSuite>,
}

/// A suite's Release as it was verified: the keys of the keyring that signed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedSuite {
    /// The suite (`trixie`).
    pub suite: String,
    /// The keys that made a good signature, by primary fingerprint.
    pub signed_by: Vec<LockedSigner>,
}

/// One signing key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedSigner {
    /// Primary key fingerprint, uppercase hex (as `gpg --list-keys` shows it).
    pub fingerprint: String,
    /// The key's primary user ID, for the reader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// One pinned package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPackage {
    /// `busybox`, or the QEMU source name (`d10.0`).
    #[serde(deserialize_with = "de_role")]
    pub role: String,
    /// The host it is for.
    pub host: Host,
    /// The Debian suite it was resolved in.
    pub suite: String,
    /// Debian package name.
    pub package: String,
    /// Debian version.
    #[serde(deserialize_with = "de_version")]
    pub version: String,
    /// Path below the mirror root (`pool/main/q/qemu/…deb`).
    #[serde(deserialize_with = "de_pool_path")]
    pub file: String,
    /// Size in bytes.
    pub size: u64,
    /// sha256, lowercase hex.
    #[serde(deserialize_with = "de_sha256")]
    pub sha256: String,
}

/// A (role, host) the suite has no package for (bookworm has no riscv64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unavailable {
    /// `busybox` or a source name.
    #[serde(deserialize_with = "de_role")]
    pub role: String,
    /// The host.
    pub host: Host,
    /// The suite looked in.
    pub suite: String,
    /// The package looked for.
    pub package: String,
}

impl LockFile {
    /// An empty lock of the current format.
    pub fn new() -> LockFile {
        LockFile {
            format: FORMAT,
            packages: Vec::new(),
            unavailable: Vec::new(),
            suites: Vec::new(),
        }
    }

    /// Parses lock text; `origin` names it in errors. Duplicate (role, host) pairs are
    /// errors too, located at the second one's role.
    pub fn parse(text: &str, origin: &str) -> Result<LockFile, LockError> {
        let syntax = |e: serde_yaml_ng::Error| {
            let (location, message) = located(&e);
            LockError::Syntax {
                path: origin.to_string(),
                location,
                message,
            }
        };
        let lock: LockFile = serde_yaml_ng::from_str(text).map_err(syntax)?;
        let mut seen: Vec<(&str, Host)> = Vec::new();
        let keys = lock
            .packages
            .iter()
            .map(|p| (p.role.as_str(), p.host))
            .chain(lock.unavailable.iter().map(|u| (u.role.as_str(), u.host)));
        for (n, (role, host)) in keys.enumerate() {
            if seen.contains(&(role, host)) {
                return Err(LockError::Syntax {
                    path: origin.to_string(),
                    location: nth_role_location(text, n),
                    message: format!("{role} {host} is locked twice"),
                });
            }
            seen.push((role, host));
        }
        Ok(lock)
    }

    /// Reads `path`, returning the lock and its text (what a provenance names it by);
    /// `Ok(None)` when there is no such file.
    pub fn read(path: &Path) -> Result<Option<(LockFile, String)>, LockError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let lock = LockFile::parse(&text, &path.display().to_string())?;
                Ok(Some((lock, text)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(LockError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    #[cfg(test)]
    /// The pin for (role, host).
    pub fn get(&self, role: &str, host: Host) -> Option<&LockedPackage> {
        self.packages
            .iter()
            .find(|p| p.role == role && p.host == host)
    }

    /// Whether the lock records that `role` has no package for `host`.
    pub fn is_unavailable(&self, role: &str, host: Host) -> bool {
        self.unavailable
            .iter()
            .any(|u| u.role == role && u.host == host)
    }

    /// The file's text: a header saying what it is, then the YAML.
    pub fn render(&self, config_name: &str) -> String {
        let mut out = format!(
            "# Written by `qus lock` from the suites in {config_name}: the newest package the\n\
             # mirror served for each (role, host), pinned by pool path, size and sha256, and the\n\
             # keys whose signature of each suite's Release was verified. Review the diff and\n\
             # commit it; run `qus lock` again rather than editing it. It names no mirror on\n\
             # purpose.\n"
        );
        // Serialising plain structs of strings and numbers cannot fail.
        out.push_str(&serde_yaml_ng::to_string(self).unwrap_or_default());
        out
    }

    /// Writes the lock to `path` atomically: a temp file in the same folder, flushed to
    /// disk, then renamed over the old one, so a reader sees the old or the new lock.
    pub fn write(&self, path: &Path, config_name: &str) -> Result<(), LockError> {
        let err = |source| LockError::Write {
            path: path.to_path_buf(),
            source,
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(".qus.lock.")
            .tempfile_in(dir)
            .map_err(err)?;
        tmp.write_all(self.render(config_name).as_bytes())
            .map_err(err)?;
        tmp.as_file().sync_all().map_err(err)?;
        // tempfile creates 0600; a lock is meant to be shared and committed: keep the old
        // file's mode, or make it world-readable.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let perms = std::fs::metadata(path)
                .map(|m| m.permissions())
                .unwrap_or_else(|_| std::fs::Permissions::from_mode(0o644));
            std::fs::set_permissions(tmp.path(), perms).map_err(err)?;
        }
        tmp.persist(path).map_err(|e| err(e.error))?;
        Ok(())
    }
}

impl Default for LockFile {
    fn default() -> Self {
        LockFile::new()
    }
}

/// Where the lock of a config lives: `qus.yml` → `qus.lock` in the same folder; for the
/// built-in default, [`DEFAULT_LOCK_NAME`].
pub fn path_for(config: Option<&Path>) -> PathBuf {
    match config {
        None => PathBuf::from(DEFAULT_LOCK_NAME),
        Some(p) if p.extension().is_some_and(|e| e == "lock") => {
            let mut s = p.as_os_str().to_owned();
            s.push(".lock");
            PathBuf::from(s)
        }
        Some(p) => p.with_extension("lock"),
    }
}

/// Line and column of a YAML error, and its message without the parser's own
/// " at line L column C" (the caller prints `file:L:C:` in front instead).
pub fn located(e: &serde_yaml_ng::Error) -> (Option<(usize, usize)>, String) {
    let location = e.location().map(|l| (l.line(), l.column()));
    let mut message = e.to_string();
    if let Some((l, c)) = location {
        if let Some(m) = message.strip_suffix(&format!(" at line {l} column {c}")) {
            message = m.to_string();
        }
    }
    (location, message)
}

/// Line and column of the `n`th `role:` key of the text, for the duplicate error.
fn nth_role_location(text: &str, n: usize) -> Option<(usize, usize)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let col = l.find("role:")?;
            Some((i + 1, col + 1))
        })
        .nth(n)
}

fn de_format<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = u32::deserialize(d)?;
    if !(OLDEST_FORMAT..=FORMAT).contains(&v) {
        return Err(serde::de::Error::custom(format!(
            "lock format {v} is not supported by this qus (it reads formats {OLDEST_FORMAT} to \
             {FORMAT}; a newer qus wrote it, or run `qus lock` to rewrite it)"
        )));
    }
    Ok(v)
}

fn de_role<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = String::deserialize(d)?;
    if v != BUSYBOX && crate::config::validate::validate_source_name(&v).is_err() {
        return Err(serde::de::Error::custom(format!(
            "role '{v}' is neither '{BUSYBOX}' nor a source name like d10.0"
        )));
    }
    Ok(v)
}

fn de_version<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = String::deserialize(d)?;
    v.parse::<qus_source::debian_index::Version>()
        .map_err(serde::de::Error::custom)?;
    Ok(v)
}

fn de_pool_path<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = String::deserialize(d)?;
    crate::config::validate::validate_pool_path(&v).map_err(serde::de::Error::custom)?;
    Ok(v)
}

fn de_sha256<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = String::deserialize(d)?;
    crate::config::validate::validate_sha256(&v).map_err(serde::de::Error::custom)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "598a3fd92bdafc34cd81196b2952ad36e910e47a4ecf162f8ce5e8e262598e53";

    fn sample() -> LockFile {
        LockFile {
            format: FORMAT,
            packages: vec![
                LockedPackage {
                    role: BUSYBOX.into(),
                    host: Host::Amd64,
                    suite: "trixie".into(),
                    package: "busybox-static".into(),
                    version: "1:1.37.0-6+b9".into(),
                    file: "pool/main/b/busybox/busybox-static_1.37.0-6+b9_amd64.deb".into(),
                    size: 955316,
                    sha256: SHA.into(),
                },
                LockedPackage {
                    role: "d10.0".into(),
                    host: Host::Arm32v7,
                    suite: "trixie".into(),
                    package: "qemu-user".into(),
                    version: "1:10.0.13+ds-0+deb13u1".into(),
                    file: "pool/main/q/qemu/qemu-user_10.0.13+ds-0+deb13u1_armhf.deb".into(),
                    size: 29487300,
                    sha256: SHA.into(),
                },
            ],
            unavailable: vec![Unavailable {
                role: "d7.2".into(),
                host: Host::Riscv64,
                suite: "bookworm".into(),
                package: "qemu-user-static".into(),
            }],
            suites: vec![LockedSuite {
                suite: "trixie".into(),
                signed_by: vec![LockedSigner {
                    fingerprint: "4CB50190207B4758A3F73A796ED0E7B82643E131".into(),
                    uid: Some(
                        "Debian Archive Automatic Signing Key (12/bookworm) <ftpmaster@debian.org>"
                            .into(),
                    ),
                }],
            }],
        }
    }

    #[test]
    fn format_1_locks_are_read() {
        let text = replaced("format: 2", "format: 1");
        let text = &text[..text.find("suites:").unwrap()];
        let old = LockFile::parse(text, "old.lock").unwrap();
        assert_eq!(old.format, 1);
        assert!(old.suites.is_empty());
        assert_eq!(old.packages, sample().packages);
    }

    #[test]
    fn round_trip_with_header_and_qus_host_names() {
        let text = sample().render("images/qus.yml");
        assert!(text.starts_with("# Written by `qus lock` from the suites in images/qus.yml"));
        assert!(text.contains("host: arm32v7"), "{text}");
        assert!(!text.contains("http"), "no mirror in a lock: {text}");
        assert_eq!(LockFile::parse(&text, "qus.lock").unwrap(), sample());
    }

    #[test]
    fn lookups() {
        let l = sample();
        assert_eq!(l.get("d10.0", Host::Arm32v7).unwrap().size, 29487300);
        assert!(l.get("d10.0", Host::Amd64).is_none());
        assert!(l.is_unavailable("d7.2", Host::Riscv64));
        assert!(!l.is_unavailable("d10.0", Host::Riscv64));
    }

    fn err(text: &str) -> String {
        LockFile::parse(text, "x.lock").unwrap_err().to_string()
    }

    fn replaced(from: &str, to: &str) -> String {
        let text = sample().render("c.yml");
        assert!(text.contains(from), "{from} not in {text}");
        text.replacen(from, to, 1)
    }

    fn line_of(text: &str, needle: &str) -> usize {
        text.lines().position(|l| l.contains(needle)).unwrap() + 1
    }

    #[test]
    fn malformed_yaml_names_file_line_and_column() {
        let e = err("format: 2\npackages:\n  - role: busybox\n   host: [\n");
        assert!(e.starts_with("x.lock:"), "{e}");
        let loc: Vec<&str> = e.splitn(4, ':').collect();
        assert!(
            loc[1].parse::<usize>().is_ok() && loc[2].parse::<usize>().is_ok(),
            "{e}"
        );
        assert!(e.contains("run `qus lock`"), "{e}");
    }

    /// Value errors are located at the start of their entry (serde_yaml_ng marks the
    /// mapping a custom error comes from), unknown keys at the key itself.
    #[test]
    fn bad_values_are_located_at_their_entry() {
        for (from, to, what) in [
            ("host: amd64", "host: vax", "'vax'"),
            (
                &format!("sha256: {SHA}")[..],
                "sha256: abc",
                "64 lowercase hex",
            ),
            ("file: pool/main/b", "file: /etc/b", "relative path"),
            (
                "version: 1:1.37.0-6+b9",
                "version: x:y",
                "invalid Debian version",
            ),
            ("role: busybox", "role: qemu", "role 'qemu'"),
            (
                "package: busybox-static",
                "package: busybox-static\n  mirror: x",
                "unknown field `mirror`",
            ),
        ] {
            let text = replaced(from, to);
            let e = LockFile::parse(&text, "x.lock").unwrap_err().to_string();
            assert!(e.contains(what), "{to}: {e}");
            let line = line_of(&text, to.lines().last().unwrap().trim());
            let entry = text
                .lines()
                .take(line)
                .filter(|l| l.contains("- role:"))
                .count();
            let entry_line = text
                .lines()
                .enumerate()
                .filter(|(_, l)| l.contains("- role:"))
                .nth(entry - 1)
                .unwrap()
                .0
                + 1;
            let (l, rest) = e.strip_prefix("x.lock:").unwrap().split_once(':').unwrap();
            let l: usize = l.parse().unwrap();
            assert!(
                l == line || l == entry_line,
                "{to}: want line {entry_line} or {line}: {e}"
            );
            assert!(
                rest.split_once(':').unwrap().0.parse::<usize>().is_ok(),
                "column: {e}"
            );
            assert!(e.contains("packages[0]"), "names the entry: {e}");
            assert!(!e.contains(" at line "), "location once: {e}");
        }
    }

    #[test]
    fn unknown_format_and_duplicates() {
        let e = err(&replaced("format: 2", "format: 3"));
        assert!(
            e.starts_with("x.lock:") && e.contains("format 3 is not supported"),
            "{e}"
        );
        let text =
            replaced("host: arm32v7", "host: amd64").replacen("role: d10.0", "role: busybox", 1);
        let e = err(&text);
        assert!(e.contains("busybox amd64 is locked twice"), "{e}");
        let line = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.contains("role:"))
            .nth(1)
            .unwrap()
            .0
            + 1;
        assert!(e.starts_with(&format!("x.lock:{line}:")), "{e}");
    }

    #[test]
    fn paths_beside_the_config() {
        assert_eq!(
            path_for(Some(Path::new("a/qus.yml"))),
            PathBuf::from("a/qus.lock")
        );
        assert_eq!(
            path_for(Some(Path::new("my.yaml"))),
            PathBuf::from("my.lock")
        );
        assert_eq!(
            path_for(Some(Path::new("matrix"))),
            PathBuf::from("matrix.lock")
        );
        assert_eq!(
            path_for(Some(Path::new("odd.lock"))),
            PathBuf::from("odd.lock.lock")
        );
        assert_eq!(path_for(None), PathBuf::from("images/qus.lock"));
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qus.lock");
        std::fs::write(&path, "old").unwrap();
        sample().write(&path, "qus.yml").unwrap();
        assert_eq!(LockFile::read(&path).unwrap().unwrap().0, sample());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["qus.lock"]);
        assert!(LockFile::read(&dir.path().join("none.lock"))
            .unwrap()
            .is_none());
    }
}
