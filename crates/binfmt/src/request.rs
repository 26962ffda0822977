//! What one invocation asks for, whatever the dialect it was spelled in.
//!
//! The three parsers of [`crate::dialect`] (one per dialect, as the sh
//! entrypoint has three) all produce these values; [`crate::run()`] consumes
//! them. Kept apart from the parsers so that neither the parsers nor the
//! runner own the shared vocabulary.

use std::collections::BTreeMap;

use crate::error::Error;
use crate::line::Flags;
use crate::rules::Rule;
use crate::table::Target;

/// Default binfmt_misc mount point.
pub const DEFAULT_MOUNT: &str = "/proc/sys/fs/binfmt_misc";

/// The environment a request is parsed in: the variables that matter, taken
/// from the process or given by a caller (tests, the lead's `qus register`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

/// Variables read by the parser and the registrar (the sh entrypoint reads
/// the same ones).
pub const ENV_VARS: &[&str] = &[
    "QUS_ROOT",
    "QUS_BINFMT_MOUNT",
    "QUS_HOST_ARCH",
    "QUS_IGNORE_FAMILY",
    "QUS_QEMU_VERSION",
    "QEMU_BIN_DIR",
    "QEMU_BINARY_PATH",
    "QEMU_BINARY_PREFIX",
    "QEMU_PRESERVE_ARGV0",
    "QUS_KERNEL_RELEASE",
    "QUS_PAGE_SIZE",
    "QUS_ALLOW_PRIVATE",
];

/// The rule each variable's value must pass when set, in the order both
/// implementations check them (see [`crate::rules`]). The others are only
/// compared with fixed words (`QUS_IGNORE_FAMILY`, `QEMU_PRESERVE_ARGV0`) or
/// printed (`QUS_QEMU_VERSION`, a Debian version such as `1:10.0.3+ds-1`,
/// set by the images), so printable ASCII is all they need.
pub const ENV_RULES: &[(&str, Rule)] = &[
    ("QUS_ROOT", Rule::Path),
    ("QUS_BINFMT_MOUNT", Rule::Path),
    ("QUS_HOST_ARCH", Rule::Item),
    ("QUS_KERNEL_RELEASE", Rule::Item),
    ("QUS_PAGE_SIZE", Rule::Item),
    ("QEMU_BIN_DIR", Rule::Path),
    ("QEMU_BINARY_PATH", Rule::Path),
    ("QEMU_BINARY_PREFIX", Rule::Affix),
];

impl Env {
    /// The relevant variables of this process. A value that is not UTF-8 is
    /// kept lossily: it then fails the printable-ASCII check of [`Env::check`],
    /// as it does in the sh entrypoint, instead of panicking here.
    pub fn from_process() -> Env {
        Env::from_pairs(std::env::vars_os().filter_map(|(k, v)| {
            let k = k.into_string().ok()?;
            ENV_VARS
                .contains(&k.as_str())
                .then(|| (k, v.to_string_lossy().into_owned()))
        }))
    }

    /// Checks every variable that is set, in [`ENV_VARS`] order for
    /// printable ASCII, then in [`ENV_RULES`] order for its own rule.
    pub fn check(&self) -> Result<(), Error> {
        for k in ENV_VARS {
            if let Some(v) = self.get(k) {
                if !Rule::Printable.accepts(v.as_bytes()) {
                    return Err(Error::NotPrintable(format!("environment variable {k}")));
                }
            }
        }
        for (k, rule) in ENV_RULES {
            if let Some(v) = self.get(k) {
                rule.check(k, v)?;
            }
        }
        Ok(())
    }

    /// An environment from explicit pairs.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Env {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// A variable's value; empty counts as unset, as in `${VAR:-default}`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The image root every built-in path is under (`QUS_ROOT`, for tests;
    /// empty in images and on hosts).
    pub fn root(&self) -> String {
        self.get("QUS_ROOT")
            .map(|r| r.trim_end_matches('/').to_string())
            .unwrap_or_default()
    }

    /// Where binfmt_misc is (or gets) mounted.
    pub fn mount(&self) -> String {
        self.get("QUS_BINFMT_MOUNT")
            .unwrap_or(DEFAULT_MOUNT)
            .to_string()
    }

    /// Whether `QUS_IGNORE_FAMILY` asks to register the host's family too.
    pub fn ignore_family(&self) -> bool {
        matches!(self.get("QUS_IGNORE_FAMILY"), Some("1" | "yes" | "true"))
    }

    /// Whether `QUS_ALLOW_PRIVATE` allows registering where the host does not
    /// see it.
    pub fn allow_private(&self) -> bool {
        matches!(self.get("QUS_ALLOW_PRIVATE"), Some("1" | "yes" | "true"))
    }
}

/// Which command line the arguments were written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// No arguments at all.
    Default,
    /// dbhi/qus `register.sh`.
    Qus,
    /// multiarch/qemu-user-static (QEMU's qemu-binfmt-conf.sh options).
    Multiarch,
    /// tonistiigi/binfmt.
    Binfmt,
}

/// A target named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named {
    /// A target of the table.
    Target(&'static Target),
    /// A name binfmt's `--install` did not know; reported per target, as
    /// binfmt does, instead of failing the whole call.
    Unknown(String),
}

/// Which targets to register or export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every emulator present; every target when none is (a register-only
    /// image registers for interpreters on the host).
    All,
    /// These, in this order.
    Named(Vec<Named>),
}

/// Entries to remove, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// Every `qemu-*` entry (multiarch `--reset`, dbhi `-r`).
    AllQemu,
    /// `qemu-<T>` for each target (dbhi `-- -r [TARGET…]`).
    Targets(Vec<&'static Target>),
    /// sh patterns against entry names (binfmt `--uninstall`); a known target
    /// or platform is turned into its exact `qemu-<T>` name.
    Patterns(Vec<String>),
}

/// Where interpreters are: `<dir>/<prefix>qemu-<binary><suffix>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpreter {
    /// Candidate directories; the first that exists is used (the last one
    /// when none does). One entry when the user chose it.
    pub dirs: Vec<String>,
    /// Prepended to `qemu-<binary>` (binfmt's `QEMU_BINARY_PREFIX`).
    pub prefix: String,
    /// Appended to `qemu-<binary>` (`-static` in qus images).
    pub suffix: String,
}

impl Interpreter {
    /// The interpreter path of `target` in directory `dir`.
    pub fn path_in(&self, dir: &str, target: &Target) -> String {
        format!("{dir}/{}qemu-{}{}", self.prefix, target.binary, self.suffix)
    }
}

/// A persistence format to write instead of registering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// systemd's `/etc/binfmt.d/qemu-<T>.conf`.
    BinfmtD,
    /// Debian binfmt-support's `/usr/share/binfmts/qemu-<T>`.
    UpdateBinfmts,
}

/// Write persistence files of `format` into `dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// File format.
    pub format: ExportFormat,
    /// Directory (created when missing).
    pub dir: String,
}

/// One parsed invocation, whatever the dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Which spelling was detected.
    pub dialect: Dialect,
    /// Print usage and stop.
    pub help: bool,
    /// Print the version and stop.
    pub version: bool,
    /// Print the registered entries first (dbhi `-l`).
    pub list: bool,
    /// Removals, done before registering.
    pub remove: Vec<Removal>,
    /// What to register (or export), if anything.
    pub register: Option<Selection>,
    /// Flags for every registration.
    pub flags: Flags,
    /// Where the interpreters are.
    pub interpreter: Interpreter,
    /// Print what would be written; write nothing.
    pub dry_run: bool,
    /// Register the host's own family too.
    pub ignore_family: bool,
    /// On a kernel without the F flag (before 4.8), register without it
    /// instead of refusing.
    pub allow_without_f: bool,
    /// Register in a user namespace's own binfmt_misc, which the host does
    /// not see, instead of refusing.
    pub allow_private: bool,
    /// Print tonistiigi/binfmt's JSON status at the end.
    pub status_json: bool,
    /// Write persistence files instead of registering.
    pub exports: Vec<Export>,
    /// binfmt_misc mount point.
    pub mount: String,
    /// Interpreters `qus register` installs on this host for this run: a
    /// target whose interpreter is missing where [`Request::interpreter`]
    /// says is registered from there instead, with F. No argument sets it,
    /// so the sh entrypoint has none.
    pub installed: Option<Installed>,
}

/// A directory of interpreters `qus register` installs (`qemu-<binary>`, no
/// prefix or suffix), and what it puts there for this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The directory.
    pub dir: String,
    /// The interpreters (whole paths) `qus register` writes there before
    /// this run: the plan counts them as present, so a dry run, which
    /// writes nothing, plans what the real run does.
    pub files: Vec<String>,
    /// The QEMU version of those interpreters (the status reports it).
    pub qemu_version: String,
}

impl Installed {
    /// Whether `path` is one of [`Installed::files`].
    pub fn provides(&self, path: &str) -> bool {
        self.files.iter().any(|f| f == path)
    }
}

impl Request {
    /// An empty request of `dialect`: nothing to do yet, the environment's
    /// mount point and family setting, these interpreters.
    pub(crate) fn new(dialect: Dialect, env: &Env, interpreter: Interpreter) -> Request {
        Request {
            dialect,
            help: false,
            version: false,
            list: false,
            remove: Vec::new(),
            register: None,
            flags: Flags::default(),
            interpreter,
            dry_run: false,
            ignore_family: env.ignore_family(),
            allow_without_f: false,
            allow_private: env.allow_private(),
            status_json: false,
            exports: Vec::new(),
            mount: env.mount(),
            installed: None,
        }
    }
}
