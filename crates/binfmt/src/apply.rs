//! Talking to a binfmt_misc mount: mount it, register, remove, read status.
//!
//! The only module that touches the kernel. Each write is a single write(2),
//! as the kernel parses one line per write; an entry that already exists is
//! removed first so that registering is idempotent instead of failing with
//! EEXIST; `status`, `register` and `WSLInterop` are never written.

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde::Serialize;

use crate::error::{Errno, Error, Op};
use crate::line::{self, Flags};
use crate::table::{self, Target};

/// Files of a binfmt_misc mount that are not entries.
const CONTROL_FILES: &[&str] = &["register", "status"];

/// An entry that removals never touch, even when a pattern matches it: WSL's
/// own interop handler.
const PROTECTED: &str = "WSLInterop";

/// One registered entry, as read back from its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// Entry name (file name).
    pub name: String,
    /// First line is `enabled`.
    pub enabled: bool,
    /// `interpreter` line, if any.
    pub interpreter: Option<String>,
    /// `flags:` line (may be empty).
    pub flags: String,
    /// The whole file.
    pub raw: String,
}

/// Whether a registration created an entry or replaced one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// There was no entry of that name.
    New,
    /// An entry of that name was removed first.
    Replaced,
}

/// tonistiigi/binfmt's status JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// OCI platforms this host runs: native ones, then emulated ones.
    pub supported: Vec<String>,
    /// Enabled entries, by name.
    pub emulators: Vec<String>,
}

impl Status {
    /// Indented JSON as binfmt prints it (two spaces, trailing newline).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into());
        s.push('\n');
        s
    }
}

/// A binfmt_misc mount point and the operations on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binfmt {
    mount: String,
}

impl Binfmt {
    /// Operations on the binfmt_misc mounted (or to be mounted) at `mount`.
    pub fn new(mount: impl Into<String>) -> Binfmt {
        Binfmt {
            mount: mount.into(),
        }
    }

    /// The mount point.
    pub fn mount_point(&self) -> &str {
        &self.mount
    }

    fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.mount)
    }

    /// Whether binfmt_misc is mounted there (its `register` file exists).
    pub fn is_mounted(&self) -> bool {
        Path::new(&self.path("register")).exists()
    }

    /// Mounts binfmt_misc unless it already is. Returns whether it mounted.
    pub fn ensure_mounted(&self) -> Result<bool, Error> {
        if self.is_mounted() {
            return Ok(false);
        }
        if !Path::new(&self.mount).is_dir() {
            return Err(Error::NoMountPoint(self.mount.clone()));
        }
        mount_binfmt_misc(&self.mount)?;
        Ok(true)
    }

    /// Every entry, sorted by name (bytewise, as sh globs sort in the C
    /// locale), without `register` and `status`.
    pub fn entries(&self) -> Result<Vec<EntryInfo>, Error> {
        let mut names: Vec<String> = fs::read_dir(&self.mount)
            .map_err(|e| Error::io(&self.mount, e))?
            .filter_map(|d| d.ok())
            .map(|d| d.file_name().to_string_lossy().into_owned())
            // sh's `*` skips dot files; so does this, for identical listings.
            .filter(|n| !CONTROL_FILES.contains(&n.as_str()) && !n.starts_with('.'))
            .collect();
        names.sort();
        let mut out = Vec::new();
        for name in names {
            let path = self.path(&name);
            // An entry removed meanwhile is simply gone.
            let Ok(raw) = fs::read_to_string(&path) else {
                continue;
            };
            out.push(parse_entry(&name, raw));
        }
        Ok(out)
    }

    /// Whether an entry of that name exists.
    pub fn exists(&self, name: &str) -> bool {
        Path::new(&self.path(name)).exists()
    }

    /// Registers `target`, replacing an entry of the same name. With F the
    /// interpreter must exist and be executable here, and is checked first
    /// so the error names the path instead of a bare ENOENT.
    pub fn register(
        &self,
        target: &Target,
        interpreter: &str,
        flags: Flags,
    ) -> Result<Registered, Error> {
        line::validate_interpreter(interpreter)?;
        if flags.fix_binary {
            check_interpreter(interpreter)?;
        }
        let line = line::render(target, interpreter, flags)?;
        self.register_line(&target.entry_name(), &line)
    }

    /// Writes a rendered line to `register` in one write(2), removing an
    /// existing entry `name` first.
    pub fn register_line(&self, name: &str, line: &str) -> Result<Registered, Error> {
        line::validate_name(name)?;
        let replaced = if self.exists(name) {
            self.write_entry(name, Op::Remove)?;
            Registered::Replaced
        } else {
            Registered::New
        };
        write_once(&self.path("register"), line.as_bytes(), Op::Register)?;
        Ok(replaced)
    }

    /// Removes entry `name`. Returns false when there was none.
    pub fn remove(&self, name: &str) -> Result<bool, Error> {
        if CONTROL_FILES.contains(&name) || name == PROTECTED {
            return Err(Error::BadName(name.to_string()));
        }
        line::validate_name(name)?;
        if !self.exists(name) {
            return Ok(false);
        }
        self.write_entry(name, Op::Remove)?;
        Ok(true)
    }

    fn write_entry(&self, name: &str, op: Op) -> Result<(), Error> {
        write_once(&self.path(name), b"-1", op)
    }

    /// Entry names a removal pattern selects, as binfmt's `--uninstall`
    /// does: sh-glob matches, else the first entry equal to the pattern or
    /// ending in `-<pattern>`. Never `WSLInterop`.
    pub fn select(&self, pattern: &str) -> Result<Vec<String>, Error> {
        let names: Vec<String> = self
            .entries()?
            .into_iter()
            .map(|e| e.name)
            .filter(|n| n != PROTECTED)
            .collect();
        Ok(select_names(&names, pattern))
    }

    /// The status JSON of tonistiigi/binfmt for a host whose `uname -m` is
    /// `machine`.
    pub fn status(&self, machine: &str) -> Result<Status, Error> {
        let entries = self.entries()?;
        Ok(status_of(&entries, machine))
    }
}

/// Which of `names` a removal pattern selects (see [`Binfmt::select`]).
pub fn select_names(names: &[String], pattern: &str) -> Vec<String> {
    let globbed: Vec<String> = names
        .iter()
        .filter(|n| crate::glob::matches(pattern, n))
        .cloned()
        .collect();
    if !globbed.is_empty() {
        return globbed;
    }
    let suffix = format!("-{pattern}");
    names
        .iter()
        .find(|n| *n == pattern || n.ends_with(&suffix))
        .cloned()
        .into_iter()
        .collect()
}

/// The status JSON from entries already read.
pub fn status_of(entries: &[EntryInfo], machine: &str) -> Status {
    let mut supported: Vec<String> = table::native_platforms(machine)
        .into_iter()
        .map(str::to_string)
        .collect();
    for t in table::TARGETS {
        let name = t.entry_name();
        if entries.iter().any(|e| e.enabled && e.name == name) {
            for p in t.oci {
                if !supported.iter().any(|s| s == p) {
                    supported.push(p.to_string());
                }
            }
        }
    }
    let emulators = entries
        .iter()
        .filter(|e| e.enabled)
        .map(|e| e.name.clone())
        .collect();
    Status {
        supported,
        emulators,
    }
}

/// Parses the text of an entry file.
pub fn parse_entry(name: &str, raw: String) -> EntryInfo {
    let mut lines = raw.lines();
    let enabled = lines.next() == Some("enabled");
    let mut interpreter = None;
    let mut flags = String::new();
    for l in lines {
        if let Some(i) = l.strip_prefix("interpreter ") {
            interpreter = Some(i.to_string());
        } else if let Some(f) = l.strip_prefix("flags: ") {
            flags = f.to_string();
        }
    }
    EntryInfo {
        name: name.to_string(),
        enabled,
        interpreter,
        flags,
        raw,
    }
}

/// Checks that an interpreter exists and is executable, naming the path.
pub fn check_interpreter(path: &str) -> Result<(), Error> {
    if !Path::new(path).exists() {
        return Err(Error::InterpreterMissing(path.to_string()));
    }
    let c = CString::new(Path::new(path).as_os_str().as_bytes())
        .map_err(|_| Error::InterpreterMissing(path.to_string()))?;
    // SAFETY: `c` is a valid NUL-terminated string for the whole call.
    if unsafe { libc::access(c.as_ptr(), libc::X_OK) } != 0 {
        return Err(Error::InterpreterNotExecutable(path.to_string()));
    }
    Ok(())
}

/// Opens `path` for writing and writes `data` with exactly one write(2).
fn write_once(path: &str, data: &[u8], op: Op) -> Result<(), Error> {
    let err = |e: std::io::Error, op| Error::Write {
        path: path.to_string(),
        op,
        errno: Errno::from_io(&e),
    };
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| err(e, Op::Open))?;
    let n = f.write(data).map_err(|e| err(e, op))?;
    if n != data.len() {
        return Err(Error::Write {
            path: path.to_string(),
            op,
            errno: Errno::EINVAL,
        });
    }
    Ok(())
}

fn mount_binfmt_misc(mount: &str) -> Result<(), Error> {
    let target = CString::new(mount).map_err(|_| Error::NoMountPoint(mount.to_string()))?;
    let fstype = c"binfmt_misc";
    // SAFETY: all pointers are valid NUL-terminated strings (or null data)
    // for the duration of the call.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let errno = Errno::from_io(&std::io::Error::last_os_error());
    if errno == Errno::ENODEV || !kernel_has_binfmt_misc() {
        return Err(Error::NoBinfmtMisc(mount.to_string()));
    }
    Err(Error::Mount {
        mount: mount.to_string(),
        errno,
    })
}

fn kernel_has_binfmt_misc() -> bool {
    fs::read_to_string("/proc/filesystems")
        .map(|s| {
            s.lines()
                .any(|l| l.split_whitespace().last() == Some("binfmt_misc"))
        })
        .unwrap_or(true)
}

/// The host machine name: the override (`QUS_HOST_ARCH`), else the kernel's
/// own architecture ([`kernel_arch`]), else uname(2)'s `machine`.
pub fn host_machine(override_: Option<&str>) -> String {
    if let Some(m) = override_ {
        return m.to_string();
    }
    kernel_arch().unwrap_or_else(uname_machine)
}

/// `/proc/sys/kernel/arch` (recent kernels): unlike `uname -m`, QEMU's user
/// mode does not rewrite it, so an image running under emulation (an arm64
/// image on an x86_64 host) still learns the real host and never registers
/// the host's own architecture.
pub fn kernel_arch() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/arch")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// uname(2)'s `machine`: what this process's architecture claims to be.
pub fn uname_machine() -> String {
    // SAFETY: uname fills the zeroed struct; fields are NUL-terminated.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return "unknown".into();
        }
        std::ffi::CStr::from_ptr(u.machine.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

/// Whether the running kernel (Linux 6.7 and later) drops every binfmt_misc
/// entry when the last mount of the instance goes away: a registration made
/// through a container's own mount then ends with the container unless the
/// host keeps binfmt_misc mounted.
pub fn kernel_drops_entries_on_unmount() -> bool {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor) >= (6, 7)
}

/// The note printed when qus mounted binfmt_misc itself on such a kernel.
pub fn unmount_note(mount: &str) -> String {
    format!(
        "note: qus mounted binfmt_misc at {mount}; since Linux 6.7 the kernel drops its entries when the last mount goes away, so in a container they end with the container unless the host keeps binfmt_misc mounted (systemd does; else on the host: mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc)"
    )
}

/// Whether this process runs in a non-initial user namespace, where (since
/// Linux 6.7) a binfmt_misc mount is private to that namespace and the host
/// never sees its entries. The initial namespace maps every uid to itself:
/// `0 0 4294967295`.
pub fn in_user_namespace() -> bool {
    let Ok(map) = fs::read_to_string("/proc/self/uid_map") else {
        return false;
    };
    let words: Vec<&str> = map.split_whitespace().collect();
    if words != ["0", "0", "4294967295"] {
        return true;
    }
    // Same map but another namespace than pid 1 (when pid 1 is visible).
    match (
        fs::read_link("/proc/self/ns/user"),
        fs::read_link("/proc/1/ns/user"),
    ) {
        (Ok(a), Ok(b)) => a != b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, enabled: bool) -> EntryInfo {
        parse_entry(
            name,
            format!(
                "{}\ninterpreter /usr/bin/{name}-static\nflags: F\noffset 0\nmagic 7f\nmask ff\n",
                if enabled { "enabled" } else { "disabled" }
            ),
        )
    }

    #[test]
    fn parses_entry_files() {
        let e = entry("qemu-aarch64", true);
        assert!(e.enabled);
        assert_eq!(
            e.interpreter.as_deref(),
            Some("/usr/bin/qemu-aarch64-static")
        );
        assert_eq!(e.flags, "F");
        assert!(!entry("x", false).enabled);
    }

    #[test]
    fn status_lists_native_then_emulated_platforms() {
        let entries = [
            entry("qemu-aarch64", true),
            entry("qemu-arm", true),
            entry("qemu-riscv64", false),
            entry("python", true),
        ];
        let s = status_of(&entries, "x86_64");
        assert_eq!(
            s.supported,
            [
                "linux/amd64",
                "linux/386",
                "linux/arm/v7",
                "linux/arm/v6",
                "linux/arm64"
            ]
        );
        assert_eq!(s.emulators, ["qemu-aarch64", "qemu-arm", "python"]);
        assert_eq!(
            Status {
                supported: vec!["linux/amd64".into()],
                emulators: vec![]
            }
            .to_json(),
            "{\n  \"supported\": [\n    \"linux/amd64\"\n  ],\n  \"emulators\": []\n}\n"
        );
    }

    #[test]
    fn removal_patterns_select_like_binfmt() {
        let names: Vec<String> = ["qemu-aarch64", "qemu-arm", "qemu-riscv64", "python3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(select_names(&names, "qemu-*").len(), 3);
        assert_eq!(
            select_names(&names, "qemu-a*"),
            ["qemu-aarch64", "qemu-arm"]
        );
        assert_eq!(select_names(&names, "qemu-arm"), ["qemu-arm"]);
        // binfmt's fallback: `<prefix>-<name>`.
        assert_eq!(select_names(&names, "riscv64"), ["qemu-riscv64"]);
        assert!(select_names(&names, "nope").is_empty());
    }

    #[test]
    fn checks_interpreters() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert!(matches!(
            check_interpreter(missing.to_str().unwrap()),
            Err(Error::InterpreterMissing(_))
        ));
        let f = dir.path().join("f");
        fs::write(&f, b"x").unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        // root can read anything but access(X_OK) still needs an x bit.
        assert!(matches!(
            check_interpreter(f.to_str().unwrap()),
            Err(Error::InterpreterNotExecutable(_))
        ));
        fs::set_permissions(&f, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(check_interpreter(f.to_str().unwrap()).is_ok());
    }

    #[test]
    fn refuses_control_files() {
        let b = Binfmt::new("/nonexistent");
        for n in ["status", "register", "WSLInterop"] {
            assert!(matches!(b.remove(n), Err(Error::BadName(_))));
        }
        assert!(!b.is_mounted());
        assert!(matches!(b.ensure_mounted(), Err(Error::NoMountPoint(_))));
        assert_eq!(host_machine(Some("aarch64")), "aarch64");
        assert!(!host_machine(None).is_empty());
    }
}
