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

mod binfmt;
mod multiarch;
mod qus;

use crate::error::Error;
use crate::line::Flags;
use crate::rules::Rule;
use crate::table::{self, Target};

// The shared vocabulary, where it has always been reachable from.
pub use crate::request::{
    Dialect, Env, Export, ExportFormat, Interpreter, Named, Removal, Request, Selection,
    DEFAULT_MOUNT, ENV_VARS,
};

/// Usage text for every dialect (`-h`, `--help`); the sh entrypoint prints the
/// same text from its generated data.
pub const USAGE: &str = "\
Register QEMU user-mode emulators with binfmt_misc.

  (no arguments)       register every emulator in this image, persistent (F),
                       except those of the host's own family and those
                       already registered with the same interpreter and
                       flags; then print the JSON status (as binfmt does)

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
  --allow-without-f             on Linux before 4.8 (no F flag), register
                                without F instead of refusing
  --allow-private               register in a user namespace's own
                                binfmt_misc, which the host does not see,
                                instead of refusing (also QUS_ALLOW_PRIVATE=1)
  --export-binfmt-d DIR         write systemd binfmt.d files instead of registering
  --export-update-binfmts DIR   write Debian update-binfmts files instead

env: QEMU_BIN_DIR (interpreter directory), QUS_BINFMT_MOUNT (mount point),
     QUS_HOST_ARCH (host machine, default: the kernel's), QUS_KERNEL_RELEASE
     (kernel release, default: the running kernel's)
";

/// The qus-wide options, pulled out of the argument list wherever they are.
struct Globals {
    ignore_family: bool,
    dry_run: bool,
    allow_without_f: bool,
    allow_private: bool,
    exports: Vec<Export>,
    rest: Vec<String>,
}

fn globals(args: &[String]) -> Result<Globals, Error> {
    let mut g = Globals {
        ignore_family: false,
        dry_run: false,
        allow_without_f: false,
        allow_private: false,
        exports: Vec::new(),
        rest: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let export = |format, dir: Option<&String>, flag: &str| match dir {
            Some(d) if !d.is_empty() => {
                Rule::Path.check(flag, d)?;
                Ok(Export {
                    format,
                    dir: d.clone(),
                })
            }
            _ => Err(Error::Usage(format!("option {flag} needs a directory"))),
        };
        match a.as_str() {
            "--ignore-family" => g.ignore_family = true,
            "--dry-run" => g.dry_run = true,
            "--allow-without-f" => g.allow_without_f = true,
            "--allow-private" => g.allow_private = true,
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

/// The dialect an option belongs to alone, if any: tonistiigi/binfmt's flags and the
/// multiarch-only options (a front end can tell a command line that mixes them).
pub fn flag_dialect(arg: &str) -> Option<Dialect> {
    if binfmt_flag(arg).is_some() {
        Some(Dialect::Binfmt)
    } else if is_multiarch(arg) {
        Some(Dialect::Multiarch)
    } else {
        None
    }
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
///
/// Every argument must be printable ASCII and every variable of the
/// environment pass its rule ([`crate::rules`]) before anything else is
/// looked at; the sh entrypoint checks in the same order, so both refuse
/// the same input with the same words.
pub fn parse(args: &[String], env: &Env) -> Result<Request, Error> {
    for (i, a) in args.iter().enumerate() {
        if !Rule::Printable.accepts(a.as_bytes()) {
            return Err(Error::NotPrintable(format!("argument {}", i + 1)));
        }
    }
    env.check()?;
    let g = globals(args)?;
    let dialect = detect(&g.rest);
    let mut req = match dialect {
        Dialect::Default => {
            let mut r = Request::new(dialect, env, usr_bin(env, "-static"));
            r.register = Some(Selection::All);
            r.flags = Flags::PERSISTENT;
            // docker/setup-qemu-action runs the image once more without
            // arguments and parses stdout as binfmt's status.
            r.status_json = true;
            r
        }
        Dialect::Qus => qus::parse(&g.rest, env)?,
        Dialect::Multiarch => multiarch::parse(&g.rest, env)?,
        Dialect::Binfmt => binfmt::parse(&g.rest, env)?,
    };
    req.ignore_family |= g.ignore_family;
    req.dry_run |= g.dry_run;
    req.allow_without_f |= g.allow_without_f;
    req.allow_private |= g.allow_private;
    req.exports.extend(g.exports);
    if !req.exports.is_empty() && req.register.is_none() && !req.help && !req.version {
        req.register = Some(Selection::All);
    }
    Ok(req)
}

/// `$QEMU_BIN_DIR`, else `<root>/usr/bin`: where multiarch and the default
/// request look (multiarch-compatible paths).
pub(super) fn usr_bin(env: &Env, suffix: &str) -> Interpreter {
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

/// The target `name` (checked against [`Rule::Item`] first, as `what`).
pub(super) fn target(what: &str, name: &str) -> Result<&'static Target, Error> {
    Rule::Item.check(what, name)?;
    table::lookup(name).ok_or_else(|| Error::UnknownTarget(name.to_string()))
}

/// `value` after checking it against `rule`, as the value of `what`.
pub(super) fn checked(rule: Rule, what: &str, value: &str) -> Result<String, Error> {
    rule.check(what, value)?;
    Ok(value.to_string())
}

pub(super) fn yes_no(flag: &str, value: Option<&String>) -> Result<bool, Error> {
    match value.map(String::as_str) {
        Some("yes") => Ok(true),
        Some("no") => Ok(false),
        _ => Err(Error::Usage(format!("{flag} takes yes or no"))),
    }
}

pub(super) fn value<'a>(flag: &str, value: Option<&'a String>) -> Result<&'a String, Error> {
    value.ok_or_else(|| Error::Usage(format!("option {flag} needs a value")))
}

/// Expands grouped short options (`-ls` → `-l -s`) when every letter is in
/// `letters`; others are returned unchanged.
pub(super) fn ungroup(args: &[String], letters: &str) -> Vec<String> {
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

pub(super) fn selection(named: Vec<Named>) -> Selection {
    if named.is_empty() {
        Selection::All
    } else {
        Selection::Named(named)
    }
}

pub(super) fn default_export_dir(format: ExportFormat) -> &'static str {
    match format {
        ExportFormat::BinfmtD => "/etc/binfmt.d",
        ExportFormat::UpdateBinfmts => "/usr/share/binfmts",
    }
}

/// What every dialect's tests parse with.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::dialect::parse;
    use crate::error::Error;
    use crate::request::*;
    use crate::table::find;

    pub fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    pub fn p(s: &[&str]) -> Request {
        parse(&args(s), &Env::default()).unwrap()
    }

    pub fn perr(s: &[&str]) -> Error {
        parse(&args(s), &Env::default()).unwrap_err()
    }

    pub fn named(names: &[&str]) -> Selection {
        Selection::Named(
            names
                .iter()
                .map(|n| Named::Target(find(n).unwrap()))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::parse;
    use crate::error::Error;
    use crate::request::*;

    use crate::dialect::test_support::*;

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
        assert!(!r.ignore_family && r.remove.is_empty());
        // setup-qemu-action's second call parses this.
        assert!(r.status_json);
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
}
