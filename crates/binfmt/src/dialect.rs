//! The three command lines users already type, parsed into one [`Request`].
//!
//! qus replaces three registration images, so its entrypoint accepts each of
//! their spellings unchanged:
//! - dbhi/qus: `[-h] [-l] [-s] [-- [-p] [-c] [-r] [-t] [--preserve-argv0] [TARGET…]]`
//! - multiarch/qemu-user-static: `--reset -p yes`, `--credential yes`, …
//! - tonistiigi/binfmt: `--install arm64,riscv64`, `--uninstall 'qemu-*'`, …
//!
//! Detection (after removing the qus-wide options `--ignore-family`,
//! `--dry-run`, `--export-binfmt-d DIR`, `--export-update-binfmts DIR`):
//! 1. no arguments: the default request (register every emulator in the
//!    image, persistent);
//! 2. any of binfmt's flags (`install`, `uninstall`, `mount`, `version`, with
//!    one or two dashes, `=value` or not): tonistiigi/binfmt;
//! 3. a bare `--`: dbhi/qus;
//! 4. any multiarch/QEMU-script option (`--reset`, `-p`/`--persistent`,
//!    `-c`/`--credential`, `-g`/`--preserve-argv0`, `-Q`/`--qemu-path`,
//!    `-F`/`--qemu-suffix`, `-d`/`--debian`, `--systemd`, `--exportdir`):
//!    multiarch;
//! 5. anything else (`-h`, `-l`, `-s`, …): dbhi/qus.
//!
//! Parsing is pure: the environment comes in as an [`Env`] value and nothing
//! touches the filesystem, so every rule is unit-tested here.

use std::collections::BTreeMap;

use crate::error::Error;
use crate::line::Flags;
use crate::table::{self, Target};

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
];

impl Env {
    /// The relevant variables of this process.
    pub fn from_process() -> Env {
        Env::from_pairs(std::env::vars().filter(|(k, _)| ENV_VARS.contains(&k.as_str())))
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
    /// Print tonistiigi/binfmt's JSON status at the end.
    pub status_json: bool,
    /// Write persistence files instead of registering.
    pub exports: Vec<Export>,
    /// binfmt_misc mount point.
    pub mount: String,
}

impl Request {
    fn new(dialect: Dialect, env: &Env, interpreter: Interpreter) -> Request {
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
            status_json: false,
            exports: Vec::new(),
            mount: env.mount(),
        }
    }
}

/// Usage text for every dialect (`-h`, `--help`); the sh entrypoint prints the
/// same text from its generated data.
pub const USAGE: &str = "\
Register QEMU user-mode emulators with binfmt_misc.

  (no arguments)       register every emulator in this image, persistent (F),
                       except those of the host's own family

dbhi/qus:  [-h] [-l] [-s] [-r] [-e] [-t T,T] [-- [-p] [-c] [-r] [-t]
                                   [--preserve-argv0] [-Q DIR] [-F SUFFIX] [TARGET...]]
  -h                   this help
  -l                   list registered entries (without '--': list only)
  -s                   interpreters are qemu-T-static
  -r / -e / -t T,T     remove every qemu-* entry / stop after front options / targets
  -- -p                persistent (F)      -- -c   credentials (OC)
  -- -r                remove TARGETs (all known targets when none) and stop
  -- -t                dry run: print the lines that would be written
  -- --preserve-argv0  preserve argv[0] (P)
  -- -Q DIR / -F SUF   interpreter directory / name suffix
  TARGET...            QEMU target names; none means all

multiarch/qemu-user-static:
  --reset              remove every qemu-* entry first
  -p|--persistent yes|no   -c|--credential yes|no   -g|--preserve-argv0 yes|no
  --qemu-path DIR   --qemu-suffix SUF   --debian   --systemd CPU|ALL   --exportdir DIR

tonistiigi/binfmt (prints its JSON status after every call):
  --install all|arm64,riscv64,arm    --uninstall qemu-aarch64|'qemu-*'|arm64
  --mount DIR    --version
  env: QEMU_BINARY_PATH, QEMU_BINARY_PREFIX, QEMU_PRESERVE_ARGV0

qus options (any dialect):
  --ignore-family               register targets of the host's family too
                                (also QUS_IGNORE_FAMILY=1)
  --dry-run                     print the lines that would be written
  --export-binfmt-d DIR         write systemd binfmt.d files instead of registering
  --export-update-binfmts DIR   write Debian update-binfmts files instead

env: QEMU_BIN_DIR (interpreter directory), QUS_BINFMT_MOUNT (mount point),
     QUS_HOST_ARCH (host machine, default uname -m)
";

/// The qus-wide options, pulled out of the argument list wherever they are.
struct Globals {
    ignore_family: bool,
    dry_run: bool,
    exports: Vec<Export>,
    rest: Vec<String>,
}

fn globals(args: &[String]) -> Result<Globals, Error> {
    let mut g = Globals {
        ignore_family: false,
        dry_run: false,
        exports: Vec::new(),
        rest: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let export = |format, dir: Option<&String>, flag: &str| match dir {
            Some(d) if !d.is_empty() => Ok(Export {
                format,
                dir: d.clone(),
            }),
            _ => Err(Error::Usage(format!("option {flag} needs a directory"))),
        };
        match a.as_str() {
            "--ignore-family" => g.ignore_family = true,
            "--dry-run" => g.dry_run = true,
            "--export-binfmt-d" => g.exports.push(export(ExportFormat::BinfmtD, it.next(), a)?),
            "--export-update-binfmts" => {
                g.exports
                    .push(export(ExportFormat::UpdateBinfmts, it.next(), a)?)
            }
            _ => {
                if let Some(d) = a.strip_prefix("--export-binfmt-d=") {
                    g.exports.push(export(
                        ExportFormat::BinfmtD,
                        Some(&d.to_string()),
                        "--export-binfmt-d",
                    )?);
                } else if let Some(d) = a.strip_prefix("--export-update-binfmts=") {
                    g.exports.push(export(
                        ExportFormat::UpdateBinfmts,
                        Some(&d.to_string()),
                        "--export-update-binfmts",
                    )?);
                } else {
                    g.rest.push(a.clone());
                }
            }
        }
    }
    Ok(g)
}

/// binfmt's flag name if `arg` is one of its flags (`-install`,
/// `--install=x`, …).
fn binfmt_flag(arg: &str) -> Option<&str> {
    let name = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'))?;
    let name = name.split('=').next().unwrap_or(name);
    matches!(name, "install" | "uninstall" | "mount" | "version").then_some(name)
}

const MULTIARCH_ONLY: &[&str] = &[
    "--reset",
    "-p",
    "--persistent",
    "-c",
    "--credential",
    "-g",
    "--preserve-argv0",
    "-Q",
    "--qemu-path",
    "-F",
    "--qemu-suffix",
    "-d",
    "--debian",
    "--systemd",
    "--exportdir",
];

fn is_multiarch(arg: &str) -> bool {
    let name = arg.split('=').next().unwrap_or(arg);
    MULTIARCH_ONLY.contains(&name)
}

/// Which dialect `args` (without the qus-wide options) are written in.
pub fn detect(args: &[String]) -> Dialect {
    if args.is_empty() {
        Dialect::Default
    } else if args.iter().any(|a| binfmt_flag(a).is_some()) {
        Dialect::Binfmt
    } else if args.iter().any(|a| a == "--") {
        Dialect::Qus
    } else if args.iter().any(|a| is_multiarch(a)) {
        Dialect::Multiarch
    } else {
        Dialect::Qus
    }
}

/// Parses the arguments of one invocation (without the program name).
pub fn parse(args: &[String], env: &Env) -> Result<Request, Error> {
    let g = globals(args)?;
    let dialect = detect(&g.rest);
    let mut req = match dialect {
        Dialect::Default => {
            let mut r = Request::new(dialect, env, usr_bin(env, "-static"));
            r.register = Some(Selection::All);
            r.flags = Flags::PERSISTENT;
            r
        }
        Dialect::Qus => parse_qus(&g.rest, env)?,
        Dialect::Multiarch => parse_multiarch(&g.rest, env)?,
        Dialect::Binfmt => parse_binfmt(&g.rest, env)?,
    };
    req.ignore_family |= g.ignore_family;
    req.dry_run |= g.dry_run;
    req.exports.extend(g.exports);
    if !req.exports.is_empty() && req.register.is_none() && !req.help && !req.version {
        req.register = Some(Selection::All);
    }
    Ok(req)
}

/// `$QEMU_BIN_DIR`, else `<root>/usr/bin`: where multiarch and the default
/// request look (multiarch-compatible paths).
fn usr_bin(env: &Env, suffix: &str) -> Interpreter {
    let dir = env
        .get("QEMU_BIN_DIR")
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}/usr/bin", env.root()));
    Interpreter {
        dirs: vec![dir],
        prefix: String::new(),
        suffix: suffix.to_string(),
    }
}

fn target(name: &str) -> Result<&'static Target, Error> {
    table::lookup(name).ok_or_else(|| Error::UnknownTarget(name.to_string()))
}

fn yes_no(flag: &str, value: Option<&String>) -> Result<bool, Error> {
    match value.map(String::as_str) {
        Some("yes") => Ok(true),
        Some("no") => Ok(false),
        _ => Err(Error::Usage(format!("{flag} takes yes or no"))),
    }
}

fn value<'a>(flag: &str, value: Option<&'a String>) -> Result<&'a String, Error> {
    value.ok_or_else(|| Error::Usage(format!("option {flag} needs a value")))
}

/// Expands grouped short options (`-ls` → `-l -s`) when every letter is in
/// `letters`; others are returned unchanged.
fn ungroup(args: &[String], letters: &str) -> Vec<String> {
    let mut out = Vec::new();
    for a in args {
        let chars: Vec<char> = a.chars().collect();
        if chars.len() > 2
            && chars[0] == '-'
            && chars[1] != '-'
            && chars[1..].iter().all(|c| letters.contains(*c))
        {
            out.extend(chars[1..].iter().map(|c| format!("-{c}")));
        } else {
            out.push(a.clone());
        }
    }
    out
}

fn parse_qus(args: &[String], env: &Env) -> Result<Request, Error> {
    // dbhi's images set QEMU_BIN_DIR=/qus/bin; qus images make /qus/bin a
    // link to /usr/bin, and a host has neither, so: /qus/bin when it exists.
    let dirs = match env.get("QEMU_BIN_DIR") {
        Some(d) => vec![d.to_string()],
        None => vec![
            format!("{}/qus/bin", env.root()),
            format!("{}/usr/bin", env.root()),
        ],
    };
    let mut req = Request::new(
        Dialect::Qus,
        env,
        Interpreter {
            dirs,
            prefix: String::new(),
            suffix: String::new(),
        },
    );
    let sep = args.iter().position(|a| a == "--");
    let (front, back) = match sep {
        Some(i) => (&args[..i], &args[i + 1..]),
        None => (args, &args[..0]),
    };

    let mut named: Vec<Named> = Vec::new();
    let (mut exit_early, mut front_reset) = (false, false);
    let front = ungroup(front, "hlsret");
    let mut it = front.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" | "-help" => req.help = true,
            "-l" | "--list" | "-list" => req.list = true,
            "-s" | "--static" | "-static" => req.interpreter.suffix = "-static".into(),
            "-r" | "--reset" | "-reset" => front_reset = true,
            "-e" | "--exit" | "-exit" => exit_early = true,
            "-t" | "--targets" | "-targets" => {
                for t in value(a, it.next())?.split(',').filter(|t| !t.is_empty()) {
                    named.push(Named::Target(target(t)?));
                }
            }
            "-i" | "--interactive" | "-interactive" => {
                return Err(Error::Usage(
                    "-i (interactive) is not supported: there is no shell in this image besides busybox".into(),
                ))
            }
            other if other.starts_with('-') => {
                return Err(Error::Usage(format!("unknown option '{other}'")))
            }
            other => {
                return Err(Error::Usage(format!(
                    "unexpected argument '{other}': targets go after '--' (e.g. -s -- -p {other})"
                )))
            }
        }
    }
    if req.help {
        return Ok(req);
    }

    let mut clear = false;
    let mut export_dir: Option<String> = None;
    let mut export_formats: Vec<ExportFormat> = Vec::new();
    let back = ungroup(back, "pcrtsdh");
    let mut i = 0;
    while i < back.len() {
        let a = back[i].as_str();
        // dbhi documents `-- -p yes` in places: take an explicit yes/no.
        let flag = |set: &mut bool, i: &mut usize| {
            *set = true;
            match back.get(*i + 1).map(String::as_str) {
                Some("yes") => *i += 1,
                Some("no") => {
                    *set = false;
                    *i += 1
                }
                _ => {}
            }
        };
        match a {
            "-p" | "--persistent" => flag(&mut req.flags.fix_binary, &mut i),
            "-c" | "--credential" => flag(&mut req.flags.credentials, &mut i),
            "--preserve-argv0" => flag(&mut req.flags.preserve_argv0, &mut i),
            "-r" | "--clear" => clear = true,
            "-t" | "--test" => req.dry_run = true,
            "-s" | "--systemd" => export_formats.push(ExportFormat::BinfmtD),
            "-d" | "--debian" => export_formats.push(ExportFormat::UpdateBinfmts),
            "-h" | "--help" => req.help = true,
            "-Q" | "--path" => {
                i += 1;
                req.interpreter.dirs = vec![value(a, back.get(i))?.clone()];
            }
            "-F" | "--suffix" => {
                i += 1;
                req.interpreter.suffix = value(a, back.get(i))?.clone();
            }
            "-e" | "--exportdir" => {
                i += 1;
                export_dir = Some(value(a, back.get(i))?.clone());
            }
            "--" => {}
            other if other.starts_with("--path=") => {
                req.interpreter.dirs = vec![other["--path=".len()..].to_string()]
            }
            other if other.starts_with("--suffix=") => {
                req.interpreter.suffix = other["--suffix=".len()..].to_string()
            }
            other if other.starts_with("--exportdir=") => {
                export_dir = Some(other["--exportdir=".len()..].to_string())
            }
            other if other.starts_with('-') => {
                return Err(Error::Usage(format!("unknown option '{other}' after '--'")))
            }
            other => named.push(Named::Target(target(other)?)),
        }
        i += 1;
    }
    if req.help {
        return Ok(req);
    }
    for format in export_formats {
        req.exports.push(Export {
            format,
            dir: export_dir
                .clone()
                .unwrap_or_else(|| default_export_dir(format).to_string()),
        });
    }

    if front_reset {
        req.remove.push(Removal::AllQemu);
    }
    if exit_early || (sep.is_none() && req.list) {
        return Ok(req);
    }
    if clear {
        let targets = if named.is_empty() {
            table::TARGETS.iter().collect()
        } else {
            named
                .iter()
                .filter_map(|n| match n {
                    Named::Target(t) => Some(*t),
                    Named::Unknown(_) => None,
                })
                .collect()
        };
        req.remove.push(Removal::Targets(targets));
        return Ok(req);
    }
    req.register = Some(selection(named));
    Ok(req)
}

fn selection(named: Vec<Named>) -> Selection {
    if named.is_empty() {
        Selection::All
    } else {
        Selection::Named(named)
    }
}

fn default_export_dir(format: ExportFormat) -> &'static str {
    match format {
        ExportFormat::BinfmtD => "/etc/binfmt.d",
        ExportFormat::UpdateBinfmts => "/usr/share/binfmts",
    }
}

fn parse_multiarch(args: &[String], env: &Env) -> Result<Request, Error> {
    // multiarch's image passes `--qemu-suffix -static --qemu-path $QEMU_BIN_DIR`.
    let mut req = Request::new(Dialect::Multiarch, env, usr_bin(env, "-static"));
    let mut named: Vec<Named> = Vec::new();
    let mut export_dir: Option<String> = None;
    let mut export_formats: Vec<ExportFormat> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let raw = args[i].as_str();
        let (a, inline) = match raw.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k, Some(v.to_string())),
            _ => (raw, None),
        };
        let take = |i: &mut usize| -> Option<String> {
            inline.clone().or_else(|| {
                *i += 1;
                args.get(*i).cloned()
            })
        };
        match a {
            "--reset" => req.remove.push(Removal::AllQemu),
            "-p" | "--persistent" => req.flags.fix_binary = yes_no(a, take(&mut i).as_ref())?,
            "-c" | "--credential" => req.flags.credentials = yes_no(a, take(&mut i).as_ref())?,
            "-g" | "--preserve-argv0" => {
                req.flags.preserve_argv0 = yes_no(a, take(&mut i).as_ref())?
            }
            "-Q" | "--qemu-path" => {
                req.interpreter.dirs = vec![value(a, take(&mut i).as_ref())?.clone()]
            }
            "-F" | "--qemu-suffix" => {
                req.interpreter.suffix = value(a, take(&mut i).as_ref())?.clone()
            }
            "-e" | "--exportdir" => export_dir = Some(value(a, take(&mut i).as_ref())?.clone()),
            "-d" | "--debian" => export_formats.push(ExportFormat::UpdateBinfmts),
            "-s" | "--systemd" => {
                let cpu = value(a, take(&mut i).as_ref())?.clone();
                export_formats.push(ExportFormat::BinfmtD);
                if cpu != "ALL" {
                    named.push(Named::Target(target(&cpu)?));
                }
            }
            "-h" | "--help" => req.help = true,
            other if other.starts_with('-') => {
                return Err(Error::Usage(format!("unknown option '{other}'")))
            }
            other => named.push(Named::Target(target(other)?)),
        }
        i += 1;
    }
    if req.help {
        return Ok(req);
    }
    for format in export_formats {
        req.exports.push(Export {
            format,
            dir: export_dir
                .clone()
                .unwrap_or_else(|| default_export_dir(format).to_string()),
        });
    }
    req.register = Some(selection(named));
    Ok(req)
}

fn parse_binfmt(args: &[String], env: &Env) -> Result<Request, Error> {
    let prefix = env.get("QEMU_BINARY_PREFIX").unwrap_or("").to_string();
    let dir = env
        .get("QEMU_BINARY_PATH")
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}/usr/bin", env.root()));
    let mut req = Request::new(
        Dialect::Binfmt,
        env,
        Interpreter {
            dirs: vec![dir],
            prefix,
            suffix: "-static".into(),
        },
    );
    req.flags = Flags {
        credentials: true,
        fix_binary: true,
        preserve_argv0: env.get("QEMU_PRESERVE_ARGV0").is_some(),
        open_binary: false,
    };
    let (mut install, mut uninstall) = (String::new(), String::new());
    let mut i = 0;
    // Go's flag package: one or two dashes, `=value` or next argument, and
    // parsing stops at the first non-flag argument or `--`.
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--" || !a.starts_with('-') || a == "-" {
            break;
        }
        let body = a.trim_start_matches('-');
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let take = |i: &mut usize| -> Result<String, Error> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => {
                    *i += 1;
                    args.get(*i)
                        .cloned()
                        .ok_or_else(|| Error::Usage(format!("flag needs an argument: -{name}")))
                }
            }
        };
        match name {
            "install" => install = take(&mut i)?,
            "uninstall" => uninstall = take(&mut i)?,
            "mount" => req.mount = take(&mut i)?,
            "version" => {
                req.version = match inline.as_deref() {
                    None | Some("true") | Some("1") => true,
                    Some("false") | Some("0") => false,
                    Some(v) => {
                        return Err(Error::Usage(format!(
                            "invalid boolean value \"{v}\" for -version"
                        )))
                    }
                }
            }
            "h" | "help" => req.help = true,
            _ => {
                return Err(Error::Usage(format!(
                    "flag provided but not defined: -{name}"
                )))
            }
        }
        i += 1;
    }
    if req.help || req.version {
        return Ok(req);
    }
    let items = |s: &str| -> Vec<String> {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    };
    let patterns: Vec<String> = items(&uninstall)
        .into_iter()
        .map(|u| match table::lookup(&u) {
            Some(t) => t.entry_name(),
            None => u,
        })
        .collect();
    if !patterns.is_empty() {
        req.remove.push(Removal::Patterns(patterns));
    }
    if install == "all" {
        req.register = Some(Selection::All);
    } else {
        let named: Vec<Named> = items(&install)
            .into_iter()
            .map(|n| match table::lookup(&n) {
                Some(t) => Named::Target(t),
                None => Named::Unknown(n),
            })
            .collect();
        if !named.is_empty() {
            req.register = Some(Selection::Named(named));
        }
    }
    if req.register.is_some() && req.interpreter.prefix.contains('/') {
        return Err(Error::Usage(
            "binary prefix must not contain path separator (Hint: set $QEMU_BINARY_PATH to specify the directory)".into(),
        ));
    }
    req.status_json = true;
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::find;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    fn p(s: &[&str]) -> Request {
        parse(&args(s), &Env::default()).unwrap()
    }

    fn perr(s: &[&str]) -> Error {
        parse(&args(s), &Env::default()).unwrap_err()
    }

    fn named(names: &[&str]) -> Selection {
        Selection::Named(
            names
                .iter()
                .map(|n| Named::Target(find(n).unwrap()))
                .collect(),
        )
    }

    #[test]
    fn detection_rule() {
        assert_eq!(detect(&args(&[])), Dialect::Default);
        assert_eq!(detect(&args(&["-s", "--", "-p"])), Dialect::Qus);
        assert_eq!(detect(&args(&["-l"])), Dialect::Qus);
        assert_eq!(detect(&args(&["-h"])), Dialect::Qus);
        assert_eq!(detect(&args(&["--reset", "-p", "yes"])), Dialect::Multiarch);
        assert_eq!(detect(&args(&["--credential", "yes"])), Dialect::Multiarch);
        assert_eq!(detect(&args(&["--persistent=yes"])), Dialect::Multiarch);
        assert_eq!(detect(&args(&["--install", "all"])), Dialect::Binfmt);
        assert_eq!(detect(&args(&["-install=arm64"])), Dialect::Binfmt);
        assert_eq!(detect(&args(&["--uninstall", "qemu-*"])), Dialect::Binfmt);
        assert_eq!(detect(&args(&["--version"])), Dialect::Binfmt);
        // `--` wins over multiarch-looking options after it.
        assert_eq!(detect(&args(&["--", "-p", "-c"])), Dialect::Qus);
    }

    #[test]
    fn no_arguments_registers_everything_persistent() {
        let r = p(&[]);
        assert_eq!(r.dialect, Dialect::Default);
        assert_eq!(r.register, Some(Selection::All));
        assert_eq!(r.flags, Flags::PERSISTENT);
        assert_eq!(r.interpreter.dirs, ["/usr/bin"]);
        assert_eq!(r.interpreter.suffix, "-static");
        assert_eq!(r.mount, DEFAULT_MOUNT);
        assert!(!r.ignore_family && !r.status_json && r.remove.is_empty());
    }

    #[test]
    fn globals_apply_to_every_dialect() {
        let r = p(&["--ignore-family"]);
        assert_eq!(r.dialect, Dialect::Default);
        assert!(r.ignore_family);
        let r = p(&["-s", "--", "-p", "--ignore-family", "arm"]);
        assert!(r.ignore_family);
        assert_eq!(r.register, Some(named(&["arm"])));
        let r = p(&["--install", "arm", "--ignore-family"]);
        assert!(r.ignore_family && r.dialect == Dialect::Binfmt);
        let r = parse(&args(&[]), &Env::from_pairs([("QUS_IGNORE_FAMILY", "1")])).unwrap();
        assert!(r.ignore_family);
        let r = p(&["--export-binfmt-d", "/out", "--export-update-binfmts=/deb"]);
        assert_eq!(
            r.exports,
            [
                Export {
                    format: ExportFormat::BinfmtD,
                    dir: "/out".into()
                },
                Export {
                    format: ExportFormat::UpdateBinfmts,
                    dir: "/deb".into()
                }
            ]
        );
        assert_eq!(r.register, Some(Selection::All));
        assert!(matches!(perr(&["--export-binfmt-d"]), Error::Usage(_)));
        assert!(p(&["--dry-run"]).dry_run);
    }

    #[test]
    fn qus_register_static_persistent() {
        let r = p(&["-s", "--", "-p", "aarch64"]);
        assert_eq!(r.dialect, Dialect::Qus);
        assert_eq!(r.register, Some(named(&["aarch64"])));
        assert_eq!(r.flags.letters(), "F");
        assert_eq!(r.interpreter.suffix, "-static");
        assert_eq!(r.interpreter.dirs, ["/qus/bin", "/usr/bin"]);
    }

    #[test]
    fn qus_flags_and_targets() {
        let r = p(&["-s", "--", "-p", "-c", "--preserve-argv0", "riscv64", "arm"]);
        assert_eq!(r.flags.letters(), "POCF");
        assert_eq!(r.register, Some(named(&["riscv64", "arm"])));
        let r = p(&["--", "-pc", "aarch64"]);
        assert_eq!(r.flags.letters(), "OCF");
        assert_eq!(r.interpreter.suffix, "");
        // dbhi's older `-p yes` spelling.
        let r = p(&["-s", "--", "-p", "yes", "aarch64"]);
        assert_eq!(r.flags.letters(), "F");
        assert_eq!(r.register, Some(named(&["aarch64"])));
        let r = p(&["-s", "--", "-p", "no"]);
        assert_eq!(r.flags.letters(), "");
        assert_eq!(r.register, Some(Selection::All));
        let r = p(&["-s", "-t", "aarch64,riscv64", "--", "-p"]);
        assert_eq!(r.register, Some(named(&["aarch64", "riscv64"])));
    }

    #[test]
    fn qus_without_separator() {
        // `-s` alone registers all, without F, as dbhi's register.sh did.
        let r = p(&["-s"]);
        assert_eq!(r.register, Some(Selection::All));
        assert_eq!(r.flags.letters(), "");
        // `-l` alone only lists.
        let r = p(&["-l"]);
        assert!(r.list && r.register.is_none());
        // `-l -- -t` lists then dry-runs everything.
        let r = p(&["-l", "--", "-t"]);
        assert!(r.list && r.dry_run);
        assert_eq!(r.register, Some(Selection::All));
        let r = p(&["-r", "-e"]);
        assert_eq!(r.remove, [Removal::AllQemu]);
        assert!(r.register.is_none());
        let r = p(&["-r"]);
        assert_eq!(r.remove, [Removal::AllQemu]);
        assert_eq!(r.register, Some(Selection::All));
        let r = p(&["-ls"]);
        assert!(r.list && r.interpreter.suffix == "-static");
    }

    #[test]
    fn qus_clear_removes_and_stops() {
        let r = p(&["--", "-r"]);
        match &r.remove[..] {
            [Removal::Targets(t)] => assert_eq!(t.len(), table::TARGETS.len()),
            other => panic!("{other:?}"),
        }
        assert!(r.register.is_none());
        let r = p(&["--", "-r", "aarch64", "arm"]);
        assert_eq!(
            r.remove,
            [Removal::Targets(vec![
                find("aarch64").unwrap(),
                find("arm").unwrap()
            ])]
        );
        let r = p(&["-s", "--", "-t", "-p", "aarch64"]);
        assert!(r.dry_run);
    }

    #[test]
    fn qus_paths_exports_and_errors() {
        let r = p(&["--", "-Q", "/opt/q", "-F", "-x", "aarch64"]);
        assert_eq!(r.interpreter.dirs, ["/opt/q"]);
        assert_eq!(r.interpreter.suffix, "-x");
        let env = Env::from_pairs([("QEMU_BIN_DIR", "/q"), ("QUS_ROOT", "/r/")]);
        let r = parse(&args(&["-s", "--", "-p"]), &env).unwrap();
        assert_eq!(r.interpreter.dirs, ["/q"]);
        let env = Env::from_pairs([("QUS_ROOT", "/r/")]);
        let r = parse(&args(&["-s", "--", "-p"]), &env).unwrap();
        assert_eq!(r.interpreter.dirs, ["/r/qus/bin", "/r/usr/bin"]);
        let r = p(&["--", "-s", "-e", "/out", "aarch64"]);
        assert_eq!(
            r.exports,
            [Export {
                format: ExportFormat::BinfmtD,
                dir: "/out".into()
            }]
        );
        let r = p(&["--", "-d"]);
        assert_eq!(r.exports[0].dir, "/usr/share/binfmts");
        assert!(matches!(
            perr(&["-s", "--", "-p", "nope"]),
            Error::UnknownTarget(_)
        ));
        assert!(matches!(perr(&["-x"]), Error::Usage(_)));
        assert!(matches!(perr(&["aarch64"]), Error::Usage(_)));
        assert!(matches!(perr(&["-i"]), Error::Usage(_)));
        assert!(matches!(perr(&["--", "-z"]), Error::Usage(_)));
        assert!(matches!(perr(&["--", "-Q"]), Error::Usage(_)));
        assert!(p(&["-h"]).help);
        assert!(p(&["--", "-h"]).help);
    }

    #[test]
    fn multiarch_spellings() {
        let r = p(&["--reset", "-p", "yes"]);
        assert_eq!(r.dialect, Dialect::Multiarch);
        assert_eq!(r.remove, [Removal::AllQemu]);
        assert_eq!(r.register, Some(Selection::All));
        assert_eq!(r.flags.letters(), "F");
        assert_eq!(r.interpreter.dirs, ["/usr/bin"]);
        assert_eq!(r.interpreter.suffix, "-static");
        let r = p(&[
            "--reset",
            "--persistent",
            "yes",
            "--credential",
            "yes",
            "--preserve-argv0",
            "yes",
        ]);
        assert_eq!(r.flags.letters(), "POCF");
        let r = p(&["--persistent=yes", "-c", "no", "-g", "no"]);
        assert_eq!(r.flags.letters(), "F");
        assert!(r.remove.is_empty());
        let r = p(&["-p", "yes", "aarch64"]);
        assert_eq!(r.register, Some(named(&["aarch64"])));
        let r = p(&["--qemu-path", "/opt", "--qemu-suffix=", "-p", "no"]);
        assert_eq!(r.interpreter.dirs, ["/opt"]);
        assert_eq!(r.interpreter.suffix, "");
        let r = p(&["--systemd", "aarch64", "--exportdir", "/out"]);
        assert_eq!(r.register, Some(named(&["aarch64"])));
        assert_eq!(r.exports[0].format, ExportFormat::BinfmtD);
        assert_eq!(r.exports[0].dir, "/out");
        let r = p(&["--systemd", "ALL", "-p", "yes"]);
        assert_eq!(r.register, Some(Selection::All));
        assert_eq!(r.exports[0].dir, "/etc/binfmt.d");
        let r = p(&["--debian", "-p", "yes"]);
        assert_eq!(r.exports[0].format, ExportFormat::UpdateBinfmts);
        assert!(matches!(perr(&["-p", "maybe"]), Error::Usage(_)));
        assert!(matches!(perr(&["--reset", "-p"]), Error::Usage(_)));
        assert!(matches!(perr(&["--reset", "--bogus"]), Error::Usage(_)));
        assert!(matches!(
            perr(&["--reset", "nope"]),
            Error::UnknownTarget(_)
        ));
        assert!(p(&["--reset", "-h"]).help);
    }

    #[test]
    fn binfmt_install_uninstall_and_env() {
        let r = p(&["--install", "all"]);
        assert_eq!(r.dialect, Dialect::Binfmt);
        assert_eq!(r.register, Some(Selection::All));
        assert_eq!(r.flags.letters(), "OCF");
        assert!(r.status_json);
        let r = p(&["--install", "arm64,riscv64,arm"]);
        assert_eq!(r.register, Some(named(&["aarch64", "riscv64", "arm"])));
        let r = p(&["-install=linux/arm64,linux/arm/v7"]);
        assert_eq!(r.register, Some(named(&["aarch64", "arm"])));
        let r = p(&["--install", "arm64,nope"]);
        assert_eq!(
            r.register,
            Some(Selection::Named(vec![
                Named::Target(find("aarch64").unwrap()),
                Named::Unknown("nope".into())
            ]))
        );
        let r = p(&["--uninstall", "qemu-aarch64,qemu-*,arm64,python"]);
        assert_eq!(
            r.remove,
            [Removal::Patterns(vec![
                "qemu-aarch64".into(),
                "qemu-*".into(),
                "qemu-aarch64".into(),
                "python".into()
            ])]
        );
        assert!(r.register.is_none() && r.status_json);
        let r = p(&["--mount", "/mnt/b", "--install", "arm64"]);
        assert_eq!(r.mount, "/mnt/b");
        // Go's flag package stops at the first non-flag.
        let r = p(&["--install", "arm64", "extra", "--bogus"]);
        assert_eq!(r.register, Some(named(&["aarch64"])));
        assert!(p(&["--version"]).version);
        assert!(!p(&["--version=false"]).version);
        assert!(matches!(perr(&["--install"]), Error::Usage(_)));
        assert!(matches!(
            perr(&["--install", "x", "-bogus"]),
            Error::Usage(_)
        ));

        let env = Env::from_pairs([
            ("QEMU_BINARY_PATH", "/opt/bin"),
            ("QEMU_BINARY_PREFIX", "x-"),
            ("QEMU_PRESERVE_ARGV0", "1"),
        ]);
        let r = parse(&args(&["--install", "arm64"]), &env).unwrap();
        assert_eq!(r.flags.letters(), "POCF");
        assert_eq!(
            r.interpreter
                .path_in(&r.interpreter.dirs[0], find("aarch64").unwrap()),
            "/opt/bin/x-qemu-aarch64-static"
        );
        let env = Env::from_pairs([("QEMU_BINARY_PREFIX", "a/b")]);
        assert!(parse(&args(&["--install", "arm64"]), &env).is_err());
    }
}
