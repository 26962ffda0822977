//! Typed errors, and errno names with hints a user can act on.
//!
//! Messages name the errno symbolically (`EACCES`) rather than with the C
//! library's text, so the Rust path and the busybox entrypoint print the same
//! words for the same failure (the differential test relies on it).

use std::io;

/// Everything that can go wrong, from parsing arguments to writing
/// `register`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The arguments do not form a valid request (exit status 2).
    #[error("{0}")]
    Usage(String),
    /// An argument or environment value with a byte outside printable
    /// ASCII: refused before parsing (see [`crate::rules`]).
    #[error("{0} is not printable ASCII (control characters and bytes above 0x7e are refused)")]
    NotPrintable(
        /// `argument N` or `environment variable NAME`.
        String,
    ),
    /// A value with a byte its [`crate::rules::Rule`] does not allow.
    #[error("bad value for {what}: '{value}' ({allowed})")]
    BadValue {
        /// Which option or variable.
        what: String,
        /// The value (printable ASCII: checked before).
        value: String,
        /// What the rule allows.
        allowed: &'static str,
    },
    /// A target name that is not in the table.
    #[error("unknown target '{0}' (valid: {valid})", valid = crate::table::names())]
    UnknownTarget(String),
    /// An entry name binfmt_misc would reject or that would clash with its
    /// own files.
    #[error(
        "bad entry name '{0}': no '/', ':' or whitespace, not '.', '..', 'register' or 'status'"
    )]
    BadName(String),
    /// An interpreter path that cannot go into a register line.
    #[error("bad interpreter path '{path}': {why}")]
    BadInterpreter {
        /// The offending path.
        path: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Magic and mask of different length, empty, or longer than
    /// `BINPRM_BUF_SIZE`.
    #[error("magic and mask must be 1 to 256 bytes of equal length")]
    BadMagic(
        /// Entry name.
        String,
    ),
    /// The rendered line is longer than the kernel accepts.
    #[error("register line is {len} bytes, the kernel accepts at most 1920")]
    LineTooLong {
        /// Entry name.
        name: String,
        /// Length of the rendered line.
        len: usize,
    },
    /// F needs the interpreter to exist now.
    #[error("interpreter {0} does not exist (F opens it now, so it must exist here)")]
    InterpreterMissing(String),
    /// The interpreter exists but cannot be executed.
    #[error("interpreter {0} is not executable")]
    InterpreterNotExecutable(String),
    /// The kernel predates the F flag and the user did not allow dropping
    /// it: nothing is removed or registered.
    #[error("Linux {release} does not support the F flag (Linux 4.8+), so nothing was changed; --allow-without-f registers without it (the interpreters must then exist wherever foreign binaries run)")]
    NoFixBinary {
        /// The kernel release the decision was made on.
        release: String,
    },
    /// Registering in a user namespace's own binfmt_misc, which the host
    /// never sees, without `--allow-private`: nothing is registered.
    #[error("this process runs in a user namespace, so {0} is that namespace's own binfmt_misc (Linux 6.7+): the host would not see these registrations, so nothing was registered; to register for the host, run qus register as root on it, or a rootful engine with --privileged; --allow-private registers in this namespace anyway")]
    PrivateBinfmt(String),
    /// No trustworthy source says what the host is, so the host's own
    /// architecture could be registered by accident: refused.
    #[error("cannot tell the host's architecture: /proc/sys/kernel/arch is missing (Linux 6.1+ has it) and the running executable cannot be read through /proc; set QUS_HOST_ARCH to the host's uname -m")]
    HostUnknown,
    /// The kernel refused the new line as a stand-in, before anything was
    /// removed: the previous entry is still there, untouched.
    #[error("{0}; the previous entry was left in place")]
    NotReplaced(Box<Error>),
    /// Other registrations kept writing an entry of that name that does not
    /// satisfy this one, however often it was replaced.
    #[error("other registrations kept replacing it at the same time ({0} tries); run again once they are done")]
    Contended(u32),
    /// The entry could not be written after it was removed: the stand-in
    /// stays, so that foreign binaries keep running.
    #[error("{write}; the stand-in entry {stand_in} stays registered so that foreign binaries keep running")]
    StandInKept {
        /// Why the entry could not be written.
        write: Box<Error>,
        /// The stand-in's name.
        stand_in: String,
    },
    /// An export directory anyone may write to without the sticky bit:
    /// another user could swap the files written there.
    #[error("{0} is writable by others without the sticky bit: refusing to write exports there")]
    UnsafeExportDir(String),
    /// An export's destination is a directory (or a link to one).
    #[error("cannot replace {0}: it is a directory")]
    ExportIsDirectory(String),
    /// Creating an export directory or file failed.
    #[error("cannot {action} {path}: {errno}")]
    Export {
        /// `create directory` or `write`.
        action: &'static str,
        /// The path.
        path: String,
        /// What the kernel said.
        errno: Errno,
    },
    /// The mount point does not exist at all.
    #[error("{0} does not exist: the kernel has no binfmt_misc (CONFIG_BINFMT_MISC) or /proc is not mounted; on the host try: modprobe binfmt_misc")]
    NoMountPoint(String),
    /// The kernel does not know the binfmt_misc filesystem.
    #[error("cannot mount binfmt_misc at {0}: the kernel has no binfmt_misc filesystem; on the host try: modprobe binfmt_misc")]
    NoBinfmtMisc(String),
    /// mount(2) failed.
    #[error("cannot mount binfmt_misc at {mount}: {errno}: {hint}", hint = errno.hint_in(Op::Mount, *userns))]
    Mount {
        /// Mount point.
        mount: String,
        /// What the kernel said.
        errno: Errno,
        /// The namespace it happened in, for the hint.
        userns: Userns,
    },
    /// Opening or writing a binfmt_misc file failed.
    #[error("cannot write {path}: {errno}: {hint}", hint = errno.hint_in(*op, *userns))]
    Write {
        /// File being written (`register` or an entry).
        path: String,
        /// Which write it was, for the hint.
        op: Op,
        /// What the kernel said.
        errno: Errno,
        /// The namespace it happened in, for the hint.
        userns: Userns,
    },
    /// Any other I/O failure (reading entries, writing exports).
    #[error("{path}: {source}")]
    Io {
        /// File or directory involved.
        path: String,
        /// Underlying error.
        source: io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The errno of a failed write to binfmt_misc, if that is what failed.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Write { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// Which user namespace a process runs in, as far as binfmt_misc cares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Userns {
    /// The initial one: binfmt_misc is the host's.
    #[default]
    Initial,
    /// Another one (a rootless engine, userns-remap) on a kernel before 6.7,
    /// where binfmt_misc has no per-namespace instance: registering needs
    /// the host.
    Shared,
    /// Another one on Linux 6.7+: its binfmt_misc is its own, and the host
    /// never sees those entries.
    Private,
}

/// The operation an errno came from; the same errno means different things
/// when opening `register`, writing a line to it, or mounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// mount(2) of binfmt_misc.
    Mount,
    /// open(2) of `register` or an entry file for writing.
    Open,
    /// write(2) of a register line.
    Register,
    /// write(2) of `-1` to an entry file.
    Remove,
}

/// The errno values binfmt_misc and mount(2) produce, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Errno {
    /// Operation not permitted.
    EPERM,
    /// Permission denied.
    EACCES,
    /// No such file or directory.
    ENOENT,
    /// File exists.
    EEXIST,
    /// Invalid argument.
    EINVAL,
    /// Read-only file system.
    EROFS,
    /// No such device (unknown filesystem type).
    ENODEV,
    /// Device or resource busy.
    EBUSY,
    /// Any other errno, by number.
    Other(i32),
}

impl Errno {
    /// Classifies an `io::Error` by its raw OS error.
    pub fn from_io(e: &io::Error) -> Errno {
        match e.raw_os_error() {
            Some(libc::EPERM) => Errno::EPERM,
            Some(libc::EACCES) => Errno::EACCES,
            Some(libc::ENOENT) => Errno::ENOENT,
            Some(libc::EEXIST) => Errno::EEXIST,
            Some(libc::EINVAL) => Errno::EINVAL,
            Some(libc::EROFS) => Errno::EROFS,
            Some(libc::ENODEV) => Errno::ENODEV,
            Some(libc::EBUSY) => Errno::EBUSY,
            Some(n) => Errno::Other(n),
            None => Errno::Other(0),
        }
    }

    /// What to do about it, given where it happened (in the initial user
    /// namespace).
    pub fn hint(&self, op: Op) -> &'static str {
        self.hint_in(op, Userns::Initial)
    }

    /// What to do about it, given where it happened and in which user
    /// namespace: "use --privileged" is no help to a rootless user who did.
    pub fn hint_in(&self, op: Op, userns: Userns) -> &'static str {
        let privilege: &str = match userns {
            Userns::Initial => "not allowed: run the container with --privileged (or --cap-add SYS_ADMIN), or run qus register as root",
            Userns::Shared => "not allowed: this process runs in a user namespace (rootless engine or userns-remap), where Linux before 6.7 cannot register; register from the host instead: qus register as root, or a rootful engine with --privileged",
            Userns::Private => "not allowed in this user namespace: a rootless engine needs --privileged (or --cap-add SYS_ADMIN) for a binfmt_misc of its own, which the host does not see; to register for the host, run qus register as root on it, or a rootful engine with --privileged",
        };
        match (self, op) {
            (Errno::EPERM | Errno::EACCES | Errno::EROFS, Op::Mount | Op::Open | Op::Remove) => {
                privilege
            }
            (Errno::EPERM | Errno::EROFS, Op::Register) => privilege,
            (Errno::EACCES, Op::Register) => {
                "the kernel could not open the interpreter (not executable, or on a noexec mount)"
            }
            (Errno::ENOENT, Op::Open) => "binfmt_misc is not mounted there",
            (Errno::ENOENT, Op::Register) => "the kernel could not find the interpreter",
            (Errno::ENOENT, _) => "no such file or directory",
            (Errno::EEXIST, _) => {
                "already registered (another process registered it at the same time)"
            }
            (Errno::EINVAL, Op::Register) => {
                "the kernel rejected the line (name, magic/mask, flags or longer than 1920 bytes)"
            }
            (Errno::EINVAL, _) => "invalid argument",
            (Errno::ENODEV, _) => "the kernel has no binfmt_misc filesystem",
            (Errno::EBUSY, _) => "busy",
            (Errno::Other(_), _) => "unexpected error",
        }
    }
}

impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Errno::Other(n) => write!(f, "errno {n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_names_and_hints() {
        let e = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(Errno::from_io(&e), Errno::EACCES);
        assert_eq!(Errno::EACCES.to_string(), "EACCES");
        assert!(Errno::EPERM.hint(Op::Open).contains("--privileged"));
        assert!(Errno::EACCES.hint(Op::Open).contains("SYS_ADMIN"));
        assert!(Errno::ENOENT.hint(Op::Open).contains("not mounted"));
        assert!(Errno::EEXIST
            .hint(Op::Register)
            .contains("already registered"));
        assert!(Errno::EINVAL.hint(Op::Register).contains("1920"));
        assert_eq!(Errno::Other(5).to_string(), "errno 5");
    }

    #[test]
    fn userns_hints_say_what_a_rootless_user_can_do() {
        assert!(Errno::EPERM
            .hint_in(Op::Mount, Userns::Shared)
            .contains("before 6.7"));
        assert!(Errno::EACCES
            .hint_in(Op::Open, Userns::Private)
            .contains("which the host does not see"));
        assert_eq!(
            Errno::EPERM.hint(Op::Mount),
            Errno::EPERM.hint_in(Op::Mount, Userns::Initial)
        );
    }

    #[test]
    fn write_error_reads_well() {
        let e = Error::Write {
            path: "/proc/sys/fs/binfmt_misc/register".into(),
            op: Op::Open,
            errno: Errno::EPERM,
            userns: Userns::Initial,
        };
        assert_eq!(
            e.to_string(),
            "cannot write /proc/sys/fs/binfmt_misc/register: EPERM: not allowed: run the container with --privileged (or --cap-add SYS_ADMIN), or run qus register as root"
        );
    }
}
