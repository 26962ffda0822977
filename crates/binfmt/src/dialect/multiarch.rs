//! multiarch/qemu-user-static: QEMU's qemu-binfmt-conf.sh options as its
//! image takes them (`--reset -p yes`, `--credential yes`, …). The sh twin
//! is `parse_multiarch` in `sh/register.sh`.

use super::{checked, default_export_dir, selection, target, usr_bin, value, yes_no};
use crate::error::Error;
use crate::request::{Dialect, Env, Export, ExportFormat, Named, Removal, Request};
use crate::rules::Rule;

/// Parses arguments written for this dialect.
pub(super) fn parse(args: &[String], env: &Env) -> Result<Request, Error> {
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
                req.interpreter.dirs =
                    vec![checked(Rule::Path, a, value(a, take(&mut i).as_ref())?)?]
            }
            "-F" | "--qemu-suffix" => {
                req.interpreter.suffix = checked(Rule::Affix, a, value(a, take(&mut i).as_ref())?)?
            }
            "-e" | "--exportdir" => {
                export_dir = Some(checked(Rule::Path, a, value(a, take(&mut i).as_ref())?)?)
            }
            "-d" | "--debian" => export_formats.push(ExportFormat::UpdateBinfmts),
            "-s" | "--systemd" => {
                let cpu = value(a, take(&mut i).as_ref())?.clone();
                export_formats.push(ExportFormat::BinfmtD);
                if cpu != "ALL" {
                    named.push(Named::Target(target(a, &cpu)?));
                }
            }
            "-h" | "--help" => req.help = true,
            other if other.starts_with('-') => {
                return Err(Error::Usage(format!("unknown option '{other}'")))
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
    req.register = Some(selection(named));
    Ok(req)
}

#[cfg(test)]
mod tests {
    use crate::error::Error;
    use crate::request::*;

    use crate::dialect::test_support::*;

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
}
