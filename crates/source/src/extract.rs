//! Taking the emulators (and single files such as busybox) out of a package.
//!
//! Both Debian layouts are read: `usr/bin/qemu-T-static` (qemu-user-static ≤ 9.0) and
//! `usr/bin/qemu-T` (qemu-user ≥ 9.1, whose alias symlinks such as `qemu-arm64 ->
//! qemu-aarch64` are checked but not extracted). Whatever the layout, every emulator is
//! written as `<work dir>/qemu-T-static`, the name binfmt registrations and the images use.
//!
//! Files are written under a temporary name in the work dir and renamed when complete, so a
//! crashed run never leaves a half file under a final name (the cache also fsyncs before the
//! rename, against power loss); if the extraction fails, the files it already wrote are
//! removed again. With a target list, reading stops as soon as all of them are out: what
//! follows in the archive is neither decompressed nor checked. Nothing is ever written anywhere but directly in the
//! work dir, under names qus makes itself from validated target names.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::digest::{Hasher, Sha256};
use crate::elf::{self, HostElf};
use crate::error::{Error, Result};
use crate::formats::open_package;
use crate::limits::Limits;
use crate::package::{self, EntryKind, Flow, PackageFormat, VisitError};

/// Which emulators to take from a package, for which host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatorRequest {
    /// Debian arch of the host the emulators run on (`arm64`, `armhf`, ...). The package's
    /// `Architecture:` must be exactly this, and every emulator an ELF for it.
    pub arch: String,
    /// QEMU target names (`aarch64`, `riscv64`, ...); `None` takes every emulator, an empty
    /// list none (the package's arch is still checked, its data is not read).
    pub targets: Option<Vec<String>>,
}

impl EmulatorRequest {
    /// Every emulator, for host `arch`.
    pub fn new(arch: impl Into<String>) -> Self {
        EmulatorRequest {
            arch: arch.into(),
            targets: None,
        }
    }

    /// Only these targets (reading stops once all of them are out).
    pub fn targets<I, S>(mut self, targets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut t: Vec<String> = targets.into_iter().map(Into::into).collect();
        t.sort();
        t.dedup();
        self.targets = Some(t);
        self
    }
}

/// One extracted emulator.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Emulator {
    /// QEMU target name (`aarch64`).
    pub target: String,
    /// `<dir>/qemu-<target>-static`.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// sha256 of the content.
    pub sha256: Sha256,
}

impl Emulator {
    /// The file name used everywhere: `qemu-<target>-static`.
    pub fn file_name(target: &str) -> String {
        format!("qemu-{target}-static")
    }
}

/// One regular file to take from a package, e.g. `usr/bin/busybox` from busybox-static.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRequest {
    /// Debian arch the package must be for. With `host_elf`, `all` is refused.
    pub arch: String,
    /// Path in the package (`usr/bin/busybox`).
    pub member: String,
    /// Name to write it under in the work dir (a plain name, no `/`).
    pub file_name: String,
    /// Require an ELF executable for `arch`.
    pub host_elf: bool,
}

impl FileRequest {
    /// `usr/bin/busybox` of busybox-static for host `arch`, written as `busybox`.
    pub fn busybox(arch: impl Into<String>) -> Self {
        FileRequest {
            arch: arch.into(),
            member: "usr/bin/busybox".into(),
            file_name: "busybox".into(),
            host_elf: true,
        }
    }
}

/// One extracted file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExtractedFile {
    /// Path in the package.
    pub member: String,
    /// Where it was written.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// sha256 of the content.
    pub sha256: Sha256,
}

/// How files are written; the cache asks for `durable` (fsync before rename), since it
/// trusts a file again on a later run.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WriteOpts {
    pub durable: bool,
}

/// Extracts the requested emulators of `package` into `work_dir` (created if missing) as
/// `qemu-T-static`, mode 0755. Returns them sorted by target.
pub fn extract_emulators(
    package: &Path,
    work_dir: &Path,
    req: &EmulatorRequest,
    limits: &Limits,
) -> Result<Vec<Emulator>> {
    extract_emulators_with(package, work_dir, req, limits, WriteOpts::default())
}

pub(crate) fn extract_emulators_with(
    package: &Path,
    work_dir: &Path,
    req: &EmulatorRequest,
    limits: &Limits,
    opts: WriteOpts,
) -> Result<Vec<Emulator>> {
    let host = host_elf(&req.arch)?;
    let mut pkg = open_package(package, limits)?;
    check_arch(&*pkg, &req.arch, true)?;
    fs::create_dir_all(work_dir).map_err(|e| Error::io("cannot create", work_dir, e))?;
    if req.targets.as_ref().is_some_and(|t| t.is_empty()) {
        return Ok(Vec::new());
    }

    let wanted = req.targets.as_ref();
    let mut written = Cleanup::default();
    let mut out: BTreeMap<String, Emulator> = BTreeMap::new();
    // target -> path in the package, for every real emulator seen (wanted or not).
    let mut shipped: BTreeMap<String, String> = BTreeMap::new();
    let mut aliases = Vec::new();
    let mut stopped = false;
    let pkg_path = package.to_path_buf();

    let tree = package::walk(&mut *pkg, limits, &mut |_, entry| {
        let Some(target) = entry
            .path
            .strip_prefix("usr/bin/")
            .and_then(emulator_target)
        else {
            return Ok(Flow::Continue);
        };
        match entry.kind {
            EntryKind::File => {}
            EntryKind::Symlink | EntryKind::Hardlink => {
                aliases.push(entry.path.to_string());
                return Ok(Flow::Continue);
            }
            _ => return Ok(Flow::Continue),
        }
        if shipped
            .insert(target.to_string(), entry.path.to_string())
            .is_some()
        {
            return Err(Error::DuplicateEntry {
                path: pkg_path.clone(),
                entry: format!("emulator for {target} ({})", entry.path),
            }
            .into());
        }
        if wanted.is_some_and(|w| !w.iter().any(|t| t == target)) {
            return Ok(Flow::Continue);
        }
        let name = Emulator::file_name(target);
        let final_path = work_dir.join(&name);
        let (size, sha256) = write_entry(
            entry.data,
            entry.size,
            work_dir,
            &name,
            Some(host),
            &pkg_path,
            entry.path,
            &req.arch,
            opts,
        )?;
        written.0.push(final_path.clone());
        out.insert(
            target.to_string(),
            Emulator {
                target: target.to_string(),
                path: final_path,
                size,
                sha256,
            },
        );
        if wanted.is_some_and(|w| w.iter().all(|t| out.contains_key(t))) {
            stopped = true;
            return Ok(Flow::Stop);
        }
        Ok(Flow::Continue)
    })?;

    // Aliases are only checked when the whole archive was read: before that, their targets
    // may simply not have streamed past yet.
    if !stopped {
        for alias in &aliases {
            tree.resolve(alias)
                .map_err(|e| package::tree_error(package, e))?;
        }
    }
    if let Some(w) = wanted {
        let missing: Vec<String> = w
            .iter()
            .filter(|t| !out.contains_key(*t))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(Error::MissingTargets {
                path: package.to_path_buf(),
                missing,
                shipped: shipped.into_keys().collect(),
            });
        }
    } else if out.is_empty() {
        return Err(Error::NoEmulators {
            path: package.to_path_buf(),
        });
    }
    written.disarm();
    Ok(out.into_values().collect())
}

/// Extracts one regular file of `package` into `work_dir/<file_name>`, mode 0755.
pub fn extract_file(
    package: &Path,
    work_dir: &Path,
    req: &FileRequest,
    limits: &Limits,
) -> Result<ExtractedFile> {
    extract_file_with(package, work_dir, req, limits, WriteOpts::default())
}

pub(crate) fn extract_file_with(
    package: &Path,
    work_dir: &Path,
    req: &FileRequest,
    limits: &Limits,
    opts: WriteOpts,
) -> Result<ExtractedFile> {
    if req.file_name.is_empty()
        || req.file_name.contains('/')
        || req.file_name == "."
        || req.file_name == ".."
    {
        return Err(Error::io(
            "invalid file name for",
            work_dir.join(&req.file_name),
            std::io::Error::from(std::io::ErrorKind::InvalidInput),
        ));
    }
    let host = if req.host_elf {
        Some(host_elf(&req.arch)?)
    } else {
        None
    };
    let member = crate::tree::normalize(&req.member).map_err(|_| Error::FileMissing {
        path: package.to_path_buf(),
        entry: req.member.clone(),
    })?;
    let mut pkg = open_package(package, limits)?;
    check_arch(&*pkg, &req.arch, req.host_elf)?;
    fs::create_dir_all(work_dir).map_err(|e| Error::io("cannot create", work_dir, e))?;
    let pkg_path = package.to_path_buf();
    let mut found = None;
    package::walk(&mut *pkg, limits, &mut |_, entry| {
        if entry.path != member || entry.kind != EntryKind::File {
            return Ok(Flow::Continue);
        }
        let (size, sha256) = write_entry(
            entry.data,
            entry.size,
            work_dir,
            &req.file_name,
            host,
            &pkg_path,
            entry.path,
            &req.arch,
            opts,
        )?;
        found = Some(ExtractedFile {
            member: member.clone(),
            path: work_dir.join(&req.file_name),
            size,
            sha256,
        });
        Ok(Flow::Stop)
    })?;
    found.ok_or_else(|| Error::FileMissing {
        path: package.to_path_buf(),
        entry: req.member.clone(),
    })
}

/// Pure: the QEMU target of a `usr/bin` file name, in either layout.
pub fn emulator_target(file_name: &str) -> Option<&str> {
    // qemu's own tools live beside the emulators in some packages; they are not targets.
    const NOT_TARGETS: &[&str] = &["img", "io", "nbd", "edid", "keymap", "ga", "debootstrap"];
    let rest = file_name.strip_prefix("qemu-")?;
    let target = rest.strip_suffix("-static").unwrap_or(rest);
    let valid = !target.is_empty()
        && target
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    (valid && !NOT_TARGETS.contains(&target)).then_some(target)
}

fn host_elf(arch: &str) -> Result<&'static HostElf> {
    elf::for_debian_arch(arch).ok_or_else(|| Error::UnknownArch {
        arch: arch.to_string(),
        known: elf::HOSTS
            .iter()
            .map(|h| h.debian_arch.to_string())
            .collect(),
    })
}

fn check_arch(pkg: &dyn PackageFormat, expected: &str, exact: bool) -> Result<()> {
    let info = pkg.info();
    let found = info.architecture.as_str();
    if found == expected || (!exact && found == "all") {
        return Ok(());
    }
    Err(Error::ArchMismatch {
        path: pkg.path().to_path_buf(),
        package: info.name.clone(),
        found: pkg.arch_label(),
        expected: expected.to_string(),
    })
}

/// Streams one entry's data to `dir/name` through a temp file; checks the ELF header first.
#[allow(clippy::too_many_arguments)]
fn write_entry(
    data: &mut dyn Read,
    declared: u64,
    dir: &Path,
    name: &str,
    host: Option<&HostElf>,
    package: &Path,
    entry: &str,
    arch: &str,
    opts: WriteOpts,
) -> Result<(u64, Sha256), VisitError> {
    let mut head = Vec::with_capacity(elf::HEADER_LEN);
    data.take(elf::HEADER_LEN as u64)
        .read_to_end(&mut head)
        .map_err(VisitError::Read)?;
    if let Some(host) = host {
        host.check(&head).map_err(|e| Error::NotHostElf {
            path: package.to_path_buf(),
            entry: entry.to_string(),
            expected_arch: arch.to_string(),
            expected: host.to_string(),
            found: e.found,
        })?;
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".qus-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io("cannot create a temporary file in", dir, e))?;
    let tmp_path = tmp.path().to_path_buf();
    let werr = |e| Error::io("cannot write", &tmp_path, e);
    let mut hasher = Hasher::default();
    hasher.update(&head);
    tmp.as_file_mut().write_all(&head).map_err(werr)?;
    let mut size = head.len() as u64;
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match data.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(VisitError::Read(e)),
        };
        hasher.update(&buf[..n]);
        tmp.as_file_mut().write_all(&buf[..n]).map_err(werr)?;
        size += n as u64;
    }
    if size != declared {
        // tar stops an entry silently when the stream under it ends early.
        return Err(VisitError::Read(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("{entry}: archive says {declared} bytes, only {size} present"),
        )));
    }
    let file = tmp.as_file();
    file.set_permissions(fs::Permissions::from_mode(0o755))
        .map_err(werr)?;
    if opts.durable {
        file.sync_all().map_err(werr)?;
    }
    let final_path = dir.join(name);
    tmp.persist(&final_path)
        .map_err(|e| Error::io("cannot rename into", &final_path, e.error))?;
    Ok((size, hasher.finish()))
}

/// Removes what a failed extraction wrote.
#[derive(Default)]
struct Cleanup(Vec<PathBuf>);

impl Cleanup {
    fn disarm(&mut self) {
        self.0.clear();
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names() {
        assert_eq!(emulator_target("qemu-aarch64"), Some("aarch64"));
        assert_eq!(emulator_target("qemu-aarch64-static"), Some("aarch64"));
        assert_eq!(emulator_target("qemu-x86_64-static"), Some("x86_64"));
        assert_eq!(emulator_target("qemu-sparc32plus"), Some("sparc32plus"));
        assert_eq!(emulator_target("qemu-img"), None);
        assert_eq!(emulator_target("qemu-pr-helper"), None);
        assert_eq!(emulator_target("qemu-"), None);
        assert_eq!(emulator_target("busybox"), None);
        assert_eq!(emulator_target("qemu-A"), None);
    }

    #[test]
    fn request_targets_are_sorted_and_unique() {
        let r = EmulatorRequest::new("amd64").targets(["riscv64", "aarch64", "riscv64"]);
        assert_eq!(r.targets.unwrap(), ["aarch64", "riscv64"]);
    }
}
