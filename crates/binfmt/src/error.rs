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
    /// The mount point does not exist at all.
    #[error("{0} does not exist: the kernel has no binfmt_misc (CONFIG_BINFMT_MISC) or /proc is not mounted; on the host try: modprobe binfmt_misc")]
    NoMountPoint(String),
    /// The kernel does not know the binfmt_misc filesystem.
    #[error("cannot mount binfmt_misc at {0}: the kernel has no binfmt_misc filesystem; on the host try: modprobe binfmt_misc")]
    NoBinfmtMisc(String),
    /// mount(2) failed.
    #[error("cannot mount binfmt_misc at {mount}: {errno}: {hint}", hint = errno.hint(Op::Mount))]
    Mount {
        /// Mount point.
        mount: String,
        /// What the kernel said.
        errno: Errno,
    },
    /// Opening or writing a binfmt_misc file failed.
    #[error("cannot write {path}: {errno}: {hint}", hint = errno.hint(*op))]
    Write {
        /// File being written (`register` or an entry).
        path: String,
        /// Which write it was, for the hint.
        op: Op,
        /// What the kernel said.
        errno: Errno,
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

    /// What to do about it, given where it happened.
    pub fn hint(&self, op: Op) -> &'static str {
        const PRIVILEGE: &str =
            "not allowed: run the container with --privileged (or --cap-add SYS_ADMIN), or run qus register as root";
        match (self, op) {
            (Errno::EPERM | Errno::EACCES | Errno::EROFS, Op::Mount | Op::Open | Op::Remove) => {
                PRIVILEGE
            }
            (Errno::EPERM | Errno::EROFS, Op::Register) => PRIVILEGE,
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
    fn write_error_reads_well() {
        let e = Error::Write {
            path: "/proc/sys/fs/binfmt_misc/register".into(),
            op: Op::Open,
            errno: Errno::EPERM,
        };
        assert_eq!(
            e.to_string(),
            "cannot write /proc/sys/fs/binfmt_misc/register: EPERM: not allowed: run the container with --privileged (or --cap-add SYS_ADMIN), or run qus register as root"
        );
    }
}
