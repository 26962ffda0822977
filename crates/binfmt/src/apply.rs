//! Talking to a binfmt_misc mount: mount it, register, remove, read status.
//!
//! The only module that writes to the kernel. Each write is a single
//! write(2), as the kernel parses one line per write. The kernel has no
//! "replace", so replacing an entry goes through a stand-in: the new line is
//! first registered under another name (`<name>.qus-<n>`), which the kernel
//! tries first (it looks at the newest entry first), then the old entry is
//! removed, the new one written under its own name and the stand-in removed.
//! A foreign binary started at any moment finds an entry, and a line the
//! kernel refuses is refused as the stand-in, before anything is removed.
//! Registrations race (several CI jobs on one host): a write that finds the
//! name taken (EEXIST) reads the entry again and judges it, and an entry
//! that vanished meanwhile is simply gone. Removals touch only entries qus
//! owns (`qemu-<T>` for a target of the table) unless an entry is named
//! exactly, and never `register`, `status` or WSL's interop handlers.

use std::ffi::{CString, OsStr, OsString};
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{Errno, Error, Op, Userns};
use crate::line;
use crate::rules::Rule;
use crate::table;

/// Files of a binfmt_misc mount that are not entries.
const CONTROL_FILES: &[&str] = &["register", "status"];

/// Entries no removal ever touches, even named exactly: WSL's interop
/// handlers (`WSLInterop`, and `WSLInterop-late` of newer WSL).
pub const PROTECTED_PREFIX: &str = "WSLInterop";

/// One registered entry, as read back from its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// Entry name (file name; any bytes but `/`).
    pub name: OsString,
    /// First line is `enabled`.
    pub enabled: bool,
    /// `interpreter` line, if any.
    pub interpreter: Option<String>,
    /// `flags:` line (may be empty).
    pub flags: String,
    /// The whole file.
    pub raw: String,
}

impl EntryInfo {
    /// The name's bytes.
    pub fn name_bytes(&self) -> &[u8] {
        self.name.as_bytes()
    }

    /// Whether qus owns it: `qemu-<T>` for a target `T` of the table.
    pub fn owned(&self) -> bool {
        is_owned(self.name_bytes())
    }

    /// The value of a `key value` line of the file (`offset`, `magic`,
    /// `mask`).
    pub fn field(&self, key: &str) -> Option<&str> {
        self.raw
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
    }

    /// The flags, as the file shows them (`flags F` or `no flags`).
    pub fn shown_flags(&self) -> String {
        crate::line::shown_flags(&self.flags)
    }
}

/// Whether an entry name is one qus owns: `qemu-<T>` for a target of the
/// table. Only those are removed by patterns and resets.
pub fn is_owned(name: &[u8]) -> bool {
    name.strip_prefix(b"qemu-")
        .is_some_and(|t| table::TARGETS.iter().any(|x| x.name.as_bytes() == t))
}

/// Whether no removal may ever touch it: `register`, `status`, WSL's.
pub fn is_protected(name: &[u8]) -> bool {
    CONTROL_FILES.iter().any(|c| c.as_bytes() == name)
        || name.starts_with(PROTECTED_PREFIX.as_bytes())
}

/// How a registration ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    /// There was no entry of that name.
    New,
    /// It replaced this entry.
    Replaced(EntryInfo),
    /// Another registration wrote the entry at the same time, and it does
    /// what this one asks: left as it is.
    Raced(EntryInfo),
}

/// How a registration judges an entry it finds while writing its own (see
/// [`Binfmt::register_line`]; `crate::judge` has the rules).
pub struct Judge<'a> {
    /// The entry is the one the registration would write.
    pub same: &'a dyn Fn(&EntryInfo) -> bool,
    /// The entry does what the registration asks.
    pub satisfies: &'a dyn Fn(&EntryInfo) -> bool,
}

/// How many stand-in names a replacement tries (`<name>.qus-1` …): several
/// registrations may replace the same entry at once.
pub const STAND_IN_NAMES: u32 = 8;

/// How many times a registration writes its entry again when others keep
/// writing one that does not satisfy it.
pub const TRIES: u32 = 5;

/// tonistiigi/binfmt's status JSON, plus a `qus` object of our own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// OCI platforms this host runs: native ones, then those of enabled
    /// entries qus owns.
    pub supported: Vec<String>,
    /// Every entry (binfmt's meaning: the mount's files but `register` and
    /// `status`); `null` in the JSON when there is none, as binfmt prints it.
    pub emulators: Vec<OsString>,
    /// What qus adds, under its own key so binfmt's fields keep their
    /// meaning.
    pub qus: QusStatus,
}

/// The `qus` object of the status JSON.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QusStatus {
    /// qus-binfmt's version.
    pub version: String,
    /// The host's machine, as registration took it.
    pub host: String,
    /// Whether this process runs in a user namespace other than the initial
    /// one.
    pub user_namespace: bool,
    /// Whether the host sees what this binfmt_misc holds: false for the
    /// private instance of a user namespace (Linux 6.7+).
    pub host_sees_entries: bool,
    /// Whether this was a dry run: then `supported` and `emulators` are
    /// what the run would leave, not what binfmt_misc holds.
    pub dry_run: bool,
    /// The interpreters `qus register` installed for this run (a dry run:
    /// would install); none in images.
    pub installs: Vec<String>,
    /// One record per emulator this run registered (or tried to), in the
    /// order of the run.
    pub registrations: Vec<Record>,
    /// The warnings of this run, as printed on stderr (without `qus:
    /// warning: `).
    pub warnings: Vec<String>,
}

/// What a run did to one emulator's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// There was no entry; this run wrote it.
    Registered,
    /// The entry there was left alone: it was the same, or another
    /// registration wrote one at the same time that does what was asked.
    Kept,
    /// This run replaced a different entry.
    Replaced,
    /// Nothing this run asked for is there.
    Failed,
}

impl Verdict {
    /// The word in the status JSON.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Registered => "registered",
            Verdict::Kept => "kept",
            Verdict::Replaced => "replaced",
            Verdict::Failed => "failed",
        }
    }
}

/// One emulator's record in the status JSON (`qus.registrations`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The QEMU target.
    pub target: String,
    /// The entry's interpreter afterwards (when failed: the one asked for).
    pub interpreter: String,
    /// The entry's flags afterwards (when failed: the ones asked for).
    pub flags: String,
    /// The QEMU version of the interpreter, when this run wrote the entry
    /// and knows it (the image's `QUS_QEMU_VERSION`, the version `qus
    /// register` installed); None otherwise: a kept entry with F holds the
    /// file whoever wrote it opened.
    pub qemu_version: Option<String>,
    /// What happened.
    pub verdict: Verdict,
    /// Why, in words.
    pub reason: String,
}

impl Record {
    /// One JSON object on one line, as the sh entrypoint writes it.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"target\": {}, \"interpreter\": {}, \"flags\": {}, \"qemu_version\": {}, \"result\": \"{}\", \"reason\": {}}}",
            json_string(self.target.as_bytes()),
            json_string(self.interpreter.as_bytes()),
            json_string(self.flags.as_bytes()),
            self.qemu_version
                .as_deref()
                .map(|v| json_string(v.as_bytes()))
                .unwrap_or_else(|| "null".into()),
            self.verdict.word(),
            json_string(self.reason.as_bytes()),
        )
    }
}

impl Status {
    /// Indented JSON as binfmt prints it (two spaces, trailing newline).
    /// Written by hand, byte for byte as the sh entrypoint writes it: entry
    /// names are bytes, escaped by [`json_string`].
    pub fn to_json(&self) -> String {
        let list = |items: Vec<String>, indent: &str| -> String {
            if items.is_empty() {
                return "[]".into();
            }
            let body: Vec<String> = items.iter().map(|i| format!("{indent}  {i}")).collect();
            format!("[\n{}\n{indent}]", body.join(",\n"))
        };
        let strings = |items: &[String], indent: &str| -> String {
            list(
                items.iter().map(|s| json_string(s.as_bytes())).collect(),
                indent,
            )
        };
        let supported = strings(&self.supported, "  ");
        let emulators = if self.emulators.is_empty() {
            "null".to_string()
        } else {
            list(
                self.emulators
                    .iter()
                    .map(|e| json_string(e.as_bytes()))
                    .collect(),
                "  ",
            )
        };
        let q = &self.qus;
        let installs = strings(&q.installs, "    ");
        let registrations = list(
            q.registrations.iter().map(Record::to_json).collect(),
            "    ",
        );
        let warnings = strings(&q.warnings, "    ");
        format!(
            "{{\n  \"supported\": {supported},\n  \"emulators\": {emulators},\n  \"qus\": {{\n    \"version\": {},\n    \"host\": {},\n    \"user_namespace\": {},\n    \"host_sees_entries\": {},\n    \"dry_run\": {},\n    \"installs\": {installs},\n    \"registrations\": {registrations},\n    \"warnings\": {warnings}\n  }}\n}}\n",
            json_string(q.version.as_bytes()),
            json_string(q.host.as_bytes()),
            q.user_namespace,
            q.host_sees_entries,
            q.dry_run,
        )
    }
}

/// A JSON string of any bytes: printable ASCII as is, `"` and `\` escaped,
/// every other byte as `\u00XX`. Always valid JSON, and the bytes of a name
/// that is not UTF-8 can still be read back (one escape per byte).
pub fn json_string(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 2);
    s.push('"');
    for &b in bytes {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b if Rule::JsonPlain.allows(b) => s.push(char::from(b)),
            b => s.push_str(&format!("\\u{b:04x}")),
        }
    }
    s.push('"');
    s
}

/// A binfmt_misc mount point and the operations on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binfmt {
    mount: String,
    userns: Userns,
}

impl Binfmt {
    /// Operations on the binfmt_misc mounted (or to be mounted) at `mount`.
    pub fn new(mount: impl Into<String>) -> Binfmt {
        Binfmt {
            mount: mount.into(),
            userns: Userns::Initial,
        }
    }

    /// The same, for a process in that user namespace situation (errors
    /// then say what a rootless user can do).
    pub fn in_namespace(mut self, userns: Userns) -> Binfmt {
        self.userns = userns;
        self
    }

    /// The mount point.
    pub fn mount_point(&self) -> &str {
        &self.mount
    }

    /// `<mount>/<name>`, spelt as the sh entrypoint spells it (messages
    /// name it).
    fn path(&self, name: &OsStr) -> std::path::PathBuf {
        let mut p = OsString::from(&self.mount);
        p.push("/");
        p.push(name);
        p.into()
    }

    /// Whether binfmt_misc is mounted there (its `register` file exists).
    pub fn is_mounted(&self) -> bool {
        self.path(OsStr::new("register")).exists()
    }

    /// Mounts binfmt_misc unless it already is. Returns whether it mounted.
    pub fn ensure_mounted(&self) -> Result<bool, Error> {
        if self.is_mounted() {
            return Ok(false);
        }
        self.check_mount_point()?;
        mount_binfmt_misc(&self.mount, self.userns)?;
        Ok(true)
    }

    /// Fails as [`Binfmt::ensure_mounted`] does when there is nothing to
    /// mount binfmt_misc on.
    pub fn check_mount_point(&self) -> Result<(), Error> {
        if self.is_mounted() || Path::new(&self.mount).is_dir() {
            Ok(())
        } else {
            Err(Error::NoMountPoint(self.mount.clone()))
        }
    }

    /// Every entry, sorted by name bytes (as sh globs sort in the C
    /// locale), without `register`, `status` and names starting with `.`
    /// (which sh's `*` skips).
    pub fn entries(&self) -> Result<Vec<EntryInfo>, Error> {
        let mut names: Vec<OsString> = fs::read_dir(&self.mount)
            .map_err(|e| Error::io(&self.mount, e))?
            .filter_map(|d| d.ok())
            .map(|d| d.file_name())
            .filter(|n| {
                !CONTROL_FILES.iter().any(|c| OsStr::new(c) == n) && !n.as_bytes().starts_with(b".")
            })
            .collect();
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let mut out = Vec::new();
        for name in names {
            // An entry removed meanwhile is simply gone.
            if let Some(e) = self.entry(&name) {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// The entry of that name, if there is one.
    pub fn entry(&self, name: &OsStr) -> Option<EntryInfo> {
        // Lossy: a foreign entry's interpreter path need not be UTF-8, and
        // the entry must still be listed (as the sh entrypoint lists it).
        let raw = fs::read(self.path(name)).ok()?;
        Some(parse_entry(
            name,
            String::from_utf8_lossy(&raw).into_owned(),
        ))
    }

    /// Whether an entry of that name exists.
    pub fn exists(&self, name: &str) -> bool {
        self.path(OsStr::new(name)).exists()
    }

    /// Writes a rendered line for entry `name` to `register`, in one
    /// write(2). An existing entry is replaced through a stand-in (see the
    /// module's doc), so foreign binaries never find no entry; one that is
    /// `judge.same` by now (another registration just wrote it) is left
    /// alone. When the name is taken meanwhile (EEXIST: another registration
    /// won), the entry is read again: if `judge.satisfies` accepts it, it is
    /// left alone ([`Registered::Raced`]), else it is replaced in turn, up to
    /// [`TRIES`] times. Nothing is ever "restored": an entry read from the
    /// kernel may name an interpreter that exists only where it was written.
    pub fn register_line(
        &self,
        name: &str,
        line: &str,
        judge: &Judge<'_>,
    ) -> Result<Registered, Error> {
        let satisfies = judge.satisfies;
        line::validate_name(name)?;
        let register = self.path(OsStr::new("register"));
        let mut stand_in: Option<String> = None;
        let mut replaced: Option<EntryInfo> = None;
        let mut result = Err(Error::Contended(TRIES));
        let mut settled = false;
        for attempt in 0..TRIES {
            if let Some(old) = self.entry(OsStr::new(name)) {
                let accepted = if attempt == 0 {
                    (judge.same)(&old)
                } else {
                    satisfies(&old)
                };
                if accepted {
                    result = Ok(Registered::Raced(old));
                    settled = true;
                    break;
                }
                if stand_in.is_none() {
                    let s = self
                        .stand_in(name, line)
                        .map_err(|e| Error::NotReplaced(Box::new(e)))?;
                    stand_in = Some(s);
                }
                if let Err(e) = self.remove_entry(OsStr::new(name)) {
                    // Removed or replaced by another registration meanwhile (the
                    // kernel then says ENOENT, or EACCES, as seen in containers):
                    // read it again and judge.
                    result = Err(e);
                    continue;
                }
                replaced.get_or_insert(old);
            }
            match self.write_once(&register, line.as_bytes(), Op::Register) {
                Ok(()) => {
                    result = Ok(match replaced.take() {
                        Some(old) => Registered::Replaced(old),
                        None => Registered::New,
                    });
                    settled = true;
                    break;
                }
                Err(e) if e.errno() == Some(Errno::EEXIST) => {}
                Err(e) => {
                    result = Err(e);
                    settled = true;
                    break;
                }
            }
        }
        if !settled {
            if let Some(e) = self.entry(OsStr::new(name)).filter(|e| satisfies(e)) {
                result = Ok(Registered::Raced(e));
            }
        }
        match stand_in {
            Some(s) => self.drop_stand_in(name, s, result),
            None => result,
        }
    }

    /// Registers `line` under the first free name `<name>.qus-<n>`; returns
    /// that name. The kernel's refusal of the line itself comes from here,
    /// before anything was removed.
    fn stand_in(&self, name: &str, line: &str) -> Result<String, Error> {
        let d = line.chars().next().unwrap_or(':');
        let rest = line
            .strip_prefix(&format!("{d}{name}{d}"))
            .ok_or_else(|| Error::BadName(name.to_string()))?;
        let register = self.path(OsStr::new("register"));
        let mut last = Err(Error::Contended(STAND_IN_NAMES));
        for n in 1..=STAND_IN_NAMES {
            let s = format!("{name}.qus-{n}");
            match self.write_once(
                &register,
                format!("{d}{s}{d}{rest}").as_bytes(),
                Op::Register,
            ) {
                Ok(()) => return Ok(s),
                Err(e) if e.errno() == Some(Errno::EEXIST) => last = Err(e),
                Err(e) => return Err(e),
            }
        }
        last
    }

    /// Removes the stand-in once entry `name` exists again; when it does
    /// not (the run failed after removing it), the stand-in stays and the
    /// error says so.
    fn drop_stand_in(
        &self,
        name: &str,
        stand_in: String,
        result: Result<Registered, Error>,
    ) -> Result<Registered, Error> {
        if result.is_err() && !self.exists(name) {
            return result.map_err(|e| Error::StandInKept {
                write: Box::new(e),
                stand_in,
            });
        }
        let _ = self.remove_entry(OsStr::new(&stand_in));
        result
    }

    /// Writes `-1` to entry `name`; one removed meanwhile counts as removed.
    fn remove_entry(&self, name: &OsStr) -> Result<(), Error> {
        match self.write_once(&self.path(name), b"-1", Op::Remove) {
            Err(e) if e.errno() == Some(Errno::ENOENT) => Ok(()),
            other => other,
        }
    }

    /// Removes entry `name`. Returns false when there was none. Never
    /// `register`, `status` or WSL's handlers.
    pub fn remove(&self, name: &OsStr) -> Result<bool, Error> {
        if is_protected(name.as_bytes()) {
            return Err(Error::BadName(name.to_string_lossy().into_owned()));
        }
        if name.is_empty() || name.as_bytes().contains(&b'/') || name == "." || name == ".." {
            return Err(Error::BadName(name.to_string_lossy().into_owned()));
        }
        if !self.path(name).exists() {
            return Ok(false);
        }
        match self.write_once(&self.path(name), b"-1", Op::Remove) {
            Ok(()) => Ok(true),
            // Listed a moment ago, gone now: another run removed it.
            Err(e) if e.errno() == Some(Errno::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Entry names a removal item selects (see [`select_names`]).
    pub fn select(&self, pattern: &str) -> Result<Vec<OsString>, Error> {
        let names: Vec<OsString> = self.entries()?.into_iter().map(|e| e.name).collect();
        Ok(select_names(&names, pattern))
    }

    /// The entries qus owns, by name.
    pub fn owned_entries(&self) -> Result<Vec<OsString>, Error> {
        Ok(self
            .entries()?
            .into_iter()
            .filter(EntryInfo::owned)
            .map(|e| e.name)
            .collect())
    }

    /// Opens `path` for writing and writes `data` with exactly one write(2).
    fn write_once(&self, path: &Path, data: &[u8], op: Op) -> Result<(), Error> {
        let err = |errno, op| Error::Write {
            path: path.to_string_lossy().into_owned(),
            op,
            errno,
            userns: self.userns,
        };
        let mut f = fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| err(Errno::from_io(&e), Op::Open))?;
        let n = f.write(data).map_err(|e| err(Errno::from_io(&e), op))?;
        if n != data.len() {
            return Err(err(Errno::EINVAL, op));
        }
        Ok(())
    }
}

/// Which of `names` a removal item selects: the entries qus owns that match
/// it as an sh pattern, and any entry whose name is exactly the item (so a
/// foreign entry such as `python3.11` goes only when named); never
/// `register`, `status` or WSL's. In `names` order.
pub fn select_names(names: &[OsString], item: &str) -> Vec<OsString> {
    names
        .iter()
        .filter(|n| !is_protected(n.as_bytes()))
        .filter(|n| {
            n.as_bytes() == item.as_bytes()
                || (is_owned(n.as_bytes())
                    && crate::glob::matches_bytes(item.as_bytes(), n.as_bytes()))
        })
        .cloned()
        .collect()
}

/// The status from entries already read.
pub fn status_of(entries: &[EntryInfo], machine: &str, qus: QusStatus) -> Status {
    let mut supported: Vec<String> = table::native_platforms(machine)
        .into_iter()
        .map(str::to_string)
        .collect();
    for t in table::TARGETS {
        let name = t.entry_name();
        if entries
            .iter()
            .any(|e| e.enabled && e.name_bytes() == name.as_bytes())
        {
            for p in t.oci {
                if !supported.iter().any(|s| s == p) {
                    supported.push(p.to_string());
                }
            }
        }
    }
    Status {
        supported,
        emulators: entries.iter().map(|e| e.name.clone()).collect(),
        qus,
    }
}

/// Parses the text of an entry file.
pub fn parse_entry(name: &OsStr, raw: String) -> EntryInfo {
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
        name: name.to_os_string(),
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

fn mount_binfmt_misc(mount: &str, userns: Userns) -> Result<(), Error> {
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
        userns,
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

/// The note printed when qus mounted binfmt_misc itself on a kernel (Linux
/// 6.7+) that drops every entry when the last mount of the instance goes
/// away: a registration made through a container's own mount then ends with
/// the container unless the host keeps binfmt_misc mounted.
pub fn unmount_note(mount: &str) -> String {
    format!(
        "note: qus mounted binfmt_misc at {mount}; since Linux 6.7 the kernel drops its entries when the last mount goes away, so in a container they end with the container unless the host keeps binfmt_misc mounted (systemd does; else on the host: mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, enabled: bool) -> EntryInfo {
        parse_entry(
            OsStr::new(name),
            format!(
                "{}\ninterpreter /usr/bin/{name}-static\nflags: F\noffset 0\nmagic 7f\nmask ff\n",
                if enabled { "enabled" } else { "disabled" }
            ),
        )
    }

    fn names(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_entry_files() {
        let e = entry("qemu-aarch64", true);
        assert!(e.enabled && e.owned());
        assert_eq!(
            e.interpreter.as_deref(),
            Some("/usr/bin/qemu-aarch64-static")
        );
        assert_eq!(e.flags, "F");
        assert!(!entry("x", false).enabled);
        assert!(!entry("qemu-foo", true).owned());
    }

    #[test]
    fn fields_of_an_entry_file() {
        let e = parse_entry(
            OsStr::new("qemu-aarch64"),
            "enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: OCF\noffset 0\nmagic 7f454c46\nmask ffffff00\n".into(),
        );
        assert_eq!(e.field("offset"), Some("0"));
        assert_eq!(e.field("magic"), Some("7f454c46"));
        assert_eq!(e.field("mask"), Some("ffffff00"));
        assert_eq!(e.field("extension"), None);
        assert_eq!(e.shown_flags(), "flags OCF");
        let e = parse_entry(
            OsStr::new("jar"),
            "enabled\nflags: \nextension .jar\n".into(),
        );
        assert_eq!(e.field("extension"), Some(".jar"));
        assert_eq!(e.shown_flags(), "no flags");
    }

    #[test]
    fn status_lists_native_then_emulated_platforms_and_every_entry() {
        let entries = [
            entry("qemu-aarch64", true),
            entry("qemu-arm", true),
            entry("qemu-riscv64", false),
            entry("qemu-foo", true),
            entry("python", true),
        ];
        let s = status_of(&entries, "x86_64", QusStatus::default());
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
        // binfmt's `emulators`: every entry, enabled or not.
        assert_eq!(
            s.emulators,
            names(&[
                "qemu-aarch64",
                "qemu-arm",
                "qemu-riscv64",
                "qemu-foo",
                "python"
            ])
        );
        let s = Status {
            supported: vec!["linux/amd64".into()],
            emulators: vec![],
            qus: QusStatus {
                version: "1".into(),
                host: "x86_64".into(),
                user_namespace: true,
                host_sees_entries: false,
                dry_run: true,
                installs: vec!["/opt/q/qemu-arm".into()],
                registrations: vec![Record {
                    target: "arm".into(),
                    interpreter: "/opt/q/qemu-arm".into(),
                    flags: "F".into(),
                    qemu_version: None,
                    verdict: Verdict::Registered,
                    reason: "no entry before".into(),
                }],
                warnings: vec!["a \"b\"".into()],
            },
        };
        assert_eq!(
            s.to_json(),
            "{\n  \"supported\": [\n    \"linux/amd64\"\n  ],\n  \"emulators\": null,\n  \"qus\": {\n    \"version\": \"1\",\n    \"host\": \"x86_64\",\n    \"user_namespace\": true,\n    \"host_sees_entries\": false,\n    \"dry_run\": true,\n    \"installs\": [\n      \"/opt/q/qemu-arm\"\n    ],\n    \"registrations\": [\n      {\"target\": \"arm\", \"interpreter\": \"/opt/q/qemu-arm\", \"flags\": \"F\", \"qemu_version\": null, \"result\": \"registered\", \"reason\": \"no entry before\"}\n    ],\n    \"warnings\": [\n      \"a \\\"b\\\"\"\n    ]\n  }\n}\n"
        );
        let v: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        assert_eq!(v["supported"][0], "linux/amd64");
        assert!(v["emulators"].is_null());
    }

    #[test]
    fn json_strings_are_valid_for_any_name() {
        assert_eq!(json_string(b"qemu-arm"), "\"qemu-arm\"");
        assert_eq!(json_string(b"a \"b\" \\c"), "\"a \\\"b\\\" \\\\c\"");
        assert_eq!(
            json_string(b"n\nl\t\xff\x7f"),
            "\"n\\u000al\\u0009\\u00ff\\u007f\""
        );
        for name in [&b"x\xc3\xa9"[..], b"\x00\x01", b"'", b"a b"] {
            let v: serde_json::Value = serde_json::from_str(&json_string(name)).unwrap();
            assert!(v.is_string());
        }
    }

    #[test]
    fn removal_items_touch_owned_entries_or_exact_names_only() {
        let all = names(&[
            "WSLInterop",
            "WSLInterop-late",
            "jar",
            "python3.11",
            "qemu-aarch64",
            "qemu-arm",
            "qemu-foo",
            "qemu-riscv64",
        ]);
        assert_eq!(
            select_names(&all, "qemu-*"),
            names(&["qemu-aarch64", "qemu-arm", "qemu-riscv64"])
        );
        assert_eq!(
            select_names(&all, "*"),
            names(&["qemu-aarch64", "qemu-arm", "qemu-riscv64"])
        );
        assert_eq!(
            select_names(&all, "[[:alpha:]]*"),
            names(&["qemu-aarch64", "qemu-arm", "qemu-riscv64"])
        );
        assert_eq!(
            select_names(&all, "qemu-a*"),
            names(&["qemu-aarch64", "qemu-arm"])
        );
        // Foreign entries: only when named exactly.
        assert_eq!(select_names(&all, "python3.11"), names(&["python3.11"]));
        assert_eq!(select_names(&all, "qemu-foo"), names(&["qemu-foo"]));
        assert!(select_names(&all, "python*").is_empty());
        assert!(select_names(&all, "11").is_empty());
        // Never WSL's, even named.
        assert!(select_names(&all, "WSLInterop").is_empty());
        assert!(select_names(&all, "WSL*").is_empty());
        assert!(is_protected(b"status") && is_protected(b"register"));
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
        for n in [
            "status",
            "register",
            "WSLInterop",
            "WSLInterop-late",
            "",
            "a/b",
        ] {
            assert!(
                matches!(b.remove(OsStr::new(n)), Err(Error::BadName(_))),
                "{n}"
            );
        }
        assert!(!b.is_mounted());
        assert!(matches!(b.ensure_mounted(), Err(Error::NoMountPoint(_))));
    }
}
