//! One error type for the whole source stage.
//!
//! Every variant names the thing that is wrong (package file, archive entry, URL, arch) and,
//! where there is one, what the user can do about it: the CLI prints these as they are, so
//! they must make sense without a backtrace. Variants carry data, not just text, so that
//! callers and tests can match on them.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while fetching, verifying or unpacking a package.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or folder could not be read, created or written.
    #[error("{action} {}: {source}{}", .path.display(), io_hint(.source))]
    Io {
        /// What was being done ("cannot read", "cannot write", ...).
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// The file does not start with the `!<arch>` magic of a .deb (or any known package).
    #[error("{}: not a Debian package (no ar archive header); was it downloaded completely, or is it another kind of file?", path.display())]
    NotAPackage {
        /// The package file.
        path: PathBuf,
    },

    /// The package is of a kind qus does not read (a source or delta rpm, an rpm payload
    /// layout newer than qus, ...).
    #[error("{}: {what} is not supported; qus reads binary .deb packages and binary rpms (v4 and v6 formats) with cpio payloads", path.display())]
    UnsupportedFormat {
        /// The package file.
        path: PathBuf,
        /// What the package is or uses.
        what: String,
    },

    /// An rpm's lead, headers or cpio payload are structurally wrong.
    #[error("{}: not a valid rpm package: {part}: {detail}", path.display())]
    BadRpm {
        /// The package file.
        path: PathBuf,
        /// Where: `lead`, `signature header`, `header` or `payload`.
        part: &'static str,
        /// What is wrong.
        detail: String,
    },

    /// An rpm's header or payload does not have the digest the package records for it.
    #[error("{}: the rpm {what} does not match the sha256 digest recorded in the package (expected {expected}, got {actual}); the package is corrupt or was modified, download it again", path.display())]
    RpmDigestMismatch {
        /// The package file.
        path: PathBuf,
        /// `header` or `payload`.
        what: &'static str,
        /// The recorded digest (hex).
        expected: String,
        /// The digest of what is there (hex).
        actual: String,
    },

    /// An rpm of a source with a keyring has no header signature.
    #[error(
        "{}: not signed; Fedora signs its rpms, and the source's keyring {} requires a header \
         signature by one of its keys{detail}: pin the rpm as Fedora's mirrors publish it, or \
         remove `keyring:` from the source to rely on its sha256 pin alone",
        path.display(),
        keyring.display()
    )]
    RpmUnsigned {
        /// The package file.
        path: PathBuf,
        /// The keyring it had to be signed by.
        keyring: PathBuf,
        /// More on what it has instead (empty, or starting with `; `).
        detail: String,
    },

    /// An rpm's header signature is not a good one by a key of the source's keyring.
    #[error("{}: {detail} (keyring {})", path.display(), keyring.display())]
    RpmSignature {
        /// The package file.
        path: PathBuf,
        /// The keyring checked against.
        keyring: PathBuf,
        /// What is wrong: a foreign signer, a signature that does not verify, a revoked or
        /// expired key.
        detail: String,
    },

    /// An rpm's payload is compressed with something qus cannot decompress.
    #[error("{}: the rpm payload is compressed with {compressor:?}, which qus cannot read (it reads zstd, xz, lzma and gzip payloads)", path.display())]
    UnknownPayloadCompressor {
        /// The package file.
        path: PathBuf,
        /// The rpm header's PAYLOADCOMPRESSOR.
        compressor: String,
    },

    /// An rpm's cpio payload ends without its `TRAILER!!!` entry.
    #[error("{}: the rpm's cpio payload has no TRAILER!!! entry ({detail}); the package is truncated or corrupt, download it again", path.display())]
    CpioTrailerMissing {
        /// The package file.
        path: PathBuf,
        /// Where the archive ended.
        detail: String,
    },

    /// The archive ends before a member (or a member header) does.
    #[error("{}: truncated in {member}: {detail}; download the package again", path.display())]
    Truncated {
        /// The package file.
        path: PathBuf,
        /// The member that is cut short (`debian-binary`, `control.tar.xz`, ..., or for an
        /// rpm `rpm lead`, `rpm signature header`, `rpm header`, `rpm payload`).
        member: String,
        /// What was expected and what was there.
        detail: String,
    },

    /// The archive is structurally wrong (bad member header, members out of order, ...).
    #[error("{}: not a valid Debian package: {detail}", path.display())]
    Malformed {
        /// The package file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },

    /// A `control.tar.*`/`data.tar.*` member uses a compression qus cannot read.
    #[error("{}: member {member} uses an unknown compression (qus reads .tar, .tar.xz, .tar.zst and .tar.gz)", path.display())]
    UnknownCompression {
        /// The package file.
        path: PathBuf,
        /// The member name.
        member: String,
    },

    /// Decompressing or un-tarring a member failed: the bytes are corrupt.
    #[error("{}: member {member} is corrupt: {source}; download the package again", path.display())]
    Corrupt {
        /// The package file.
        path: PathBuf,
        /// The member name.
        member: String,
        /// The decoder's error.
        #[source]
        source: io::Error,
    },

    /// The control file lacks a required field or is not deb822.
    #[error("{}: bad control file: {detail}", path.display())]
    BadControl {
        /// The package file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },

    /// An archive entry has an absolute path or a `..` component.
    #[error("{}: entry {entry:?} would be written outside the package root ({reason}); refusing the package", path.display())]
    PathEscape {
        /// The package file.
        path: PathBuf,
        /// The entry's path as stored in the archive.
        entry: String,
        /// "absolute path" or "`..` component".
        reason: &'static str,
    },

    /// A symbolic link points outside the package root.
    #[error("{}: symlink {entry:?} -> {target:?} points outside the package; refusing the package", path.display())]
    SymlinkEscape {
        /// The package file.
        path: PathBuf,
        /// The link's path.
        entry: String,
        /// The link's target as stored.
        target: String,
    },

    /// A hard link names a file outside the package root.
    #[error("{}: hard link {entry:?} -> {target:?} points outside the package; refusing the package", path.display())]
    HardlinkEscape {
        /// The package file.
        path: PathBuf,
        /// The link's path.
        entry: String,
        /// The link's target as stored.
        target: String,
    },

    /// Following symbolic links from an entry never ends.
    #[error("{}: symlink {entry:?} is part of a loop; refusing the package", path.display())]
    SymlinkLoop {
        /// The package file.
        path: PathBuf,
        /// The first link of the loop that was followed.
        entry: String,
    },

    /// A link that qus has to follow (an emulator alias) points at nothing in the package.
    #[error("{}: link {entry:?} -> {target:?} points at nothing in the package", path.display())]
    DanglingLink {
        /// The package file.
        path: PathBuf,
        /// The link's path.
        entry: String,
        /// The link's target as stored.
        target: String,
    },

    /// An entry's parent folder is a symbolic link inside the archive.
    #[error("{}: entry {entry:?} goes through the symlink {link:?}; refusing the package", path.display())]
    ThroughSymlink {
        /// The package file.
        path: PathBuf,
        /// The entry's path.
        entry: String,
        /// The symlink on its way.
        link: String,
    },

    /// Two archive entries have the same path (or two emulators the same target).
    #[error("{}: {entry:?} appears twice in the package; refusing the package", path.display())]
    DuplicateEntry {
        /// The package file.
        path: PathBuf,
        /// The repeated path (or `qemu-T` target name).
        entry: String,
    },

    /// Unpacking would produce more bytes than [`crate::Limits::max_unpacked`].
    #[error("{}: member {member} unpacks to more than {limit} bytes (a decompression bomb?); raise Limits::max_unpacked if the package is genuine", path.display())]
    TooLarge {
        /// The package file.
        path: PathBuf,
        /// The member being unpacked.
        member: String,
        /// The cap in bytes.
        limit: u64,
    },

    /// Unpacking expands the data more than [`crate::Limits::max_ratio`] times.
    #[error("{}: member {member} expands {ratio}x (more than the {limit}x cap: a decompression bomb?)", path.display())]
    CompressionRatio {
        /// The package file.
        path: PathBuf,
        /// The member being unpacked.
        member: String,
        /// The ratio seen (unpacked / packed bytes so far).
        ratio: u64,
        /// The cap.
        limit: u64,
    },

    /// The archive has more entries than [`crate::Limits::max_entries`].
    #[error("{}: member {member} has more than {limit} entries; refusing the package", path.display())]
    TooManyEntries {
        /// The package file.
        path: PathBuf,
        /// The member being unpacked.
        member: String,
        /// The cap.
        limit: u64,
    },

    /// The package's own `Architecture:` field is not the host arch it is used for.
    #[error("{}: package {package} is for architecture {found:?}, but it is used for host {expected:?}; pick the {expected} package", path.display())]
    ArchMismatch {
        /// The package file.
        path: PathBuf,
        /// The package name.
        package: String,
        /// The `Architecture:` field.
        found: String,
        /// The Debian arch it was expected to be.
        expected: String,
    },

    /// An arch name this crate has no ELF description for.
    #[error("unknown Debian architecture {arch:?}; known: {}", known.join(", "))]
    UnknownArch {
        /// The name given.
        arch: String,
        /// The names that are known.
        known: Vec<String>,
    },

    /// An extracted file is not an ELF executable for the host it is meant for.
    #[error("{}: {entry} is {found}, not an ELF executable for {expected_arch} ({expected}); the package is mislabelled or the wrong one", path.display())]
    NotHostElf {
        /// The package file.
        path: PathBuf,
        /// The entry's path in the package.
        entry: String,
        /// The Debian arch of the host.
        expected_arch: String,
        /// What such an ELF looks like.
        expected: String,
        /// What the file is.
        found: String,
    },

    /// Requested emulator targets are not in the package.
    #[error("{}: no emulator for {} in this package (it ships: {}); drop the target or use a package that has it", path.display(), missing.join(", "), if shipped.is_empty() { "none".to_string() } else { shipped.join(", ") })]
    MissingTargets {
        /// The package file.
        path: PathBuf,
        /// The requested targets that are absent.
        missing: Vec<String>,
        /// The targets the package does ship (so far as it was read).
        shipped: Vec<String>,
    },

    /// The package ships no `usr/bin/qemu-*` emulator at all.
    #[error("{}: no qemu-* emulator under usr/bin; is this qemu-user (≥ 9.1) or qemu-user-static (≤ 9.0)?", path.display())]
    NoEmulators {
        /// The package file.
        path: PathBuf,
    },

    /// A file asked for by [`crate::FileRequest`] is not in the package.
    #[error("{}: {entry} is not in this package (as a regular file)", path.display())]
    FileMissing {
        /// The package file.
        path: PathBuf,
        /// The entry that was asked for.
        entry: String,
    },

    /// A sha256 given in configuration is not 64 hex digits.
    #[error("invalid sha256 {value:?}: expected 64 hex digits")]
    BadSha256 {
        /// The value given.
        value: String,
    },

    /// A package reference's pool path is not a plain relative path to a file.
    #[error("invalid pool path {value:?}: {reason}")]
    BadPoolPath {
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A URL could not be parsed or joined.
    #[error("invalid URL {value:?}: {reason}")]
    BadUrl {
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The content of a download or local file does not have the pinned sha256.
    #[error("sha256 mismatch for {file} from {origin}: expected {expected}, got {actual}; the mirror or file is not the pinned one (nothing was cached)")]
    ChecksumMismatch {
        /// The file name (pool basename or local name).
        file: String,
        /// Where it came from (URL or path).
        origin: String,
        /// The pinned sum.
        expected: String,
        /// The sum of what was received.
        actual: String,
    },

    /// The content of a download or local file does not have the pinned size.
    #[error("size mismatch for {file} from {origin}: expected {expected} bytes, got {actual} (nothing was cached)")]
    SizeMismatch {
        /// The file name.
        file: String,
        /// Where it came from.
        origin: String,
        /// The pinned size.
        expected: u64,
        /// The size received.
        actual: u64,
    },

    /// A download without a pinned size goes on past any plausible package size.
    #[error("GET {url}: more than {limit} bytes and still going; not a package (pin its size to be sure)")]
    DownloadTooLarge {
        /// The URL.
        url: String,
        /// The cap in bytes.
        limit: u64,
    },

    /// The server answered with a non-success HTTP status (a transient one, on every try).
    #[error("GET {url}{}: HTTP {status}{}", tried(*attempts), if *status == 404 { "; the mirror does not have this file (an old pin, or not a full Debian mirror?)" } else { "" })]
    HttpStatus {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// How many times it was asked.
        attempts: u32,
    },

    /// Asking whether a file is served got only transient failures (5xx, 429).
    #[error("HEAD {url}: HTTP {status} on each of {attempts} tries; the mirror is failing, try again later or use another mirror")]
    ProbeFailed {
        /// The URL.
        url: String,
        /// The last status.
        status: u16,
        /// How many times it was asked.
        attempts: u32,
    },

    /// The server could not be reached at all.
    #[error(
        "cannot reach {url}{}: {source}; check the mirror URL and the network (or use --debs DIR)",
        tried(*attempts)
    )]
    Unreachable {
        /// The URL.
        url: String,
        /// The client error.
        #[source]
        source: reqwest::Error,
        /// How many times it was tried.
        attempts: u32,
    },

    /// The HTTP client could not be set up (TLS back end).
    #[error("cannot set up the HTTP client: {source}")]
    HttpClient {
        /// The client error.
        #[source]
        source: reqwest::Error,
    },

    /// The server stopped answering for longer than the read or connect timeout.
    #[error("GET {url}{}: no data for {after:?} (timeout); the mirror is too slow or stuck", tried(*attempts))]
    Timeout {
        /// The URL.
        url: String,
        /// The timeout that elapsed.
        after: Duration,
        /// How many times it was tried.
        attempts: u32,
    },

    /// The transfer broke off before the whole file arrived (on every try).
    #[error("GET {url}{}: transfer interrupted after {received} bytes{}: {detail}; nothing was cached", tried(*attempts), match expected { Some(n) => format!(" of {n}"), None => String::new() })]
    Interrupted {
        /// The URL.
        url: String,
        /// Bytes received (on the last try, with those of the tries it resumed).
        received: u64,
        /// Bytes announced, if known.
        expected: Option<u64>,
        /// The underlying error.
        detail: String,
        /// How many times it was tried.
        attempts: u32,
    },

    /// A `--debs DIR` folder has no file for the package.
    #[error("{}: no file for {wanted} (looked for {}); run `apt-get download` for it there", dir.display(), tried.join(", "))]
    NotInLocalDir {
        /// The folder.
        dir: PathBuf,
        /// The pool basename wanted.
        wanted: String,
        /// The names looked for.
        tried: Vec<String>,
    },

    /// Another process holds the cache lock for too long.
    #[error("{} is locked by another qus process and was not released within {waited:?}; wait for it to finish, or remove a stale process", path.display())]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// How long we waited.
        waited: Duration,
    },

    /// An OpenPGP keyring cannot be read or holds no usable key.
    #[error("keyring {}: {detail}", .path.display())]
    Keyring {
        /// The keyring file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },

    /// A suite's Release is not signed at all.
    #[error(
        "{release}: the suite is not signed (no clearsigned InRelease, no Release.gpg); qus \
         refuses unsigned indexes: a mirror or proxy could feed any package"
    )]
    Unsigned {
        /// The Release file's URL.
        release: String,
    },

    /// A suite's Release signature is not a good one by a key of the keyring.
    #[error("{release}: {detail} (keyring {})", .keyring.display())]
    BadSignature {
        /// The Release file's URL.
        release: String,
        /// The keyring checked against.
        keyring: PathBuf,
        /// What is wrong: foreign signer, bad signature, expired key or Release.
        detail: String,
    },

    /// A suite's Release is past its `Valid-Until`: the mirror serves a stale copy.
    #[error("{release}: expired: its Valid-Until ({valid_until}) has passed, so the mirror serves an old copy")]
    ReleaseExpired {
        /// The Release file's URL.
        release: String,
        /// Its `Valid-Until`, as written.
        valid_until: String,
    },

    /// A Debian index file (Release, Packages) is malformed.
    #[error("{what}: {detail}")]
    BadIndex {
        /// Which file (URL or name).
        what: String,
        /// What is wrong, with the line if known.
        detail: String,
    },

    /// A Debian version string is invalid.
    #[error("invalid Debian version {value:?}: {reason}")]
    BadVersion {
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The Release file does not list an index file qus needs.
    #[error(
        "{release}: does not list {path} in its SHA256 section; wrong suite, component or arch?"
    )]
    NotInRelease {
        /// The Release file (URL or name).
        release: String,
        /// The index path looked for.
        path: String,
    },

    /// No stanza in a Packages index for this package and arch.
    #[error("{index}: no package {package} for architecture {arch}")]
    PackageNotFound {
        /// The Packages file (URL or name).
        index: String,
        /// The package name.
        package: String,
        /// The arch.
        arch: String,
    },
}

/// What to do about the common OS errors.
fn io_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::StorageFull => "; the disk is full: free space or use another cache folder",
        io::ErrorKind::PermissionDenied => "; check the folder's owner and permissions",
        _ => "",
    }
}

/// ` (tried 4 times)`, or nothing for a single try.
fn tried(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (tried {attempts} times)")
    } else {
        String::new()
    }
}

impl Error {
    /// Whether the failure may pass if the request is made again: a timeout, a connection
    /// that could not be made or broke off, a 5xx (but 501), 408 or 429. This crate's
    /// requests try these again (see [`crate::RetryPolicy`]) before returning them.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Timeout { .. } | Error::Unreachable { .. } | Error::Interrupted { .. } => true,
            Error::HttpStatus { status, .. } => transient_status(*status),
            _ => false,
        }
    }

    /// The same error, saying it happened on each of `n` tries.
    pub(crate) fn tried(mut self, n: u32) -> Self {
        match &mut self {
            Error::Timeout { attempts, .. }
            | Error::Unreachable { attempts, .. }
            | Error::Interrupted { attempts, .. }
            | Error::HttpStatus { attempts, .. } => *attempts = n,
            _ => {}
        }
        self
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Pure: whether an HTTP status may pass if asked again (408, 429, 5xx but 501).
pub(crate) fn transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502..=599)
}
