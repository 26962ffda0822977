//! dbhi/qus: `[-h] [-l] [-s] [-r] [-e] [-t T,T] [-- [-p] [-c] [-r] [-t]
//! [--preserve-argv0] [-Q DIR] [-F SUFFIX] [TARGET…]]`.
//!
//! Options before `--` are register.sh's own; those after it are the ones
//! dbhi passed on to QEMU's qemu-binfmt-conf.sh. The sh twin is
//! `parse_qus` in `sh/register.sh`.

use super::{checked, default_export_dir, selection, target, ungroup, value};
use crate::error::Error;
use crate::request::{Dialect, Env, Export, ExportFormat, Interpreter, Named, Removal, Request};
use crate::rules::Rule;
use crate::table;

/// Parses arguments written for this dialect.
pub(super) fn parse(args: &[String], env: &Env) -> Result<Request, Error> {
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
                    named.push(Named::Target(target(a, t)?));
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
                req.interpreter.dirs = vec![checked(Rule::Path, a, value(a, back.get(i))?)?];
            }
            "-F" | "--suffix" => {
                i += 1;
                req.interpreter.suffix = checked(Rule::Affix, a, value(a, back.get(i))?)?;
            }
            "-e" | "--exportdir" => {
                i += 1;
                export_dir = Some(checked(Rule::Path, a, value(a, back.get(i))?)?);
            }
            "--" => {}
            other if other.starts_with("--path=") => {
                req.interpreter.dirs =
                    vec![checked(Rule::Path, "--path", &other["--path=".len()..])?]
            }
            other if other.starts_with("--suffix=") => {
                req.interpreter.suffix =
                    checked(Rule::Affix, "--suffix", &other["--suffix=".len()..])?
            }
            other if other.starts_with("--exportdir=") => {
                export_dir = Some(checked(
                    Rule::Path,
                    "--exportdir",
                    &other["--exportdir=".len()..],
                )?)
            }
            other if other.starts_with('-') => {
                return Err(Error::Usage(format!("unknown option '{other}' after '--'")))
            }
            other => named.push(Named::Target(target("target", other)?)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::parse;
    use crate::error::Error;
    use crate::request::*;
    use crate::table::find;

    use crate::dialect::test_support::*;

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
}
