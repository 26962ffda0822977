//! tonistiigi/binfmt: Go `flag` options (`--install arm64,riscv64`,
//! `--uninstall 'qemu-*'`, `--mount DIR`, `--version`) and its environment
//! (`QEMU_BINARY_PATH`, `QEMU_BINARY_PREFIX`, `QEMU_PRESERVE_ARGV0`). The sh
//! twin is `parse_binfmt` in `sh/register.sh`.

use super::checked;
use crate::error::Error;
use crate::line::Flags;
use crate::request::{Dialect, Env, Interpreter, Named, Removal, Request, Selection};
use crate::rules::Rule;
use crate::table;

/// Parses arguments written for this dialect.
pub(super) fn parse(args: &[String], env: &Env) -> Result<Request, Error> {
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
            "mount" => req.mount = checked(Rule::Path, "--mount", &take(&mut i)?)?,
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
    let mut patterns: Vec<String> = Vec::new();
    for u in items(&uninstall) {
        Rule::Pattern.check("--uninstall item", &u)?;
        // Collating elements are the one piece of fnmatch(3) the Rust
        // matcher lacks: refused in both, rather than read differently.
        if u.contains("[.") {
            return Err(Error::Usage(format!(
                "bad value for --uninstall item: '{u}' (collating elements [. .] are not supported)"
            )));
        }
        patterns.push(match table::lookup(&u) {
            Some(t) => t.entry_name(),
            None => u,
        });
    }
    if !patterns.is_empty() {
        req.remove.push(Removal::Patterns(patterns));
    }
    if install == "all" {
        req.register = Some(Selection::All);
    } else {
        let mut named: Vec<Named> = Vec::new();
        for n in items(&install) {
            Rule::Item.check("--install item", &n)?;
            named.push(match table::lookup(&n) {
                Some(t) => Named::Target(t),
                None => Named::Unknown(n),
            });
        }
        if !named.is_empty() {
            req.register = Some(Selection::Named(named));
        }
    }
    req.status_json = true;
    Ok(req)
}

#[cfg(test)]
mod tests {
    use crate::dialect::parse;
    use crate::error::Error;
    use crate::request::*;
    use crate::table::find;

    use crate::dialect::test_support::*;

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

    #[test]
    fn values_pass_their_rule_before_anything_else() {
        // What reached `eval` in the old sh: refused by the item rule.
        assert!(matches!(
            perr(&["--install", "a x};id;:${x"]),
            Error::BadValue { .. }
        ));
        assert!(matches!(
            perr(&["--install", "foo arm"]),
            Error::BadValue { .. }
        ));
        assert!(matches!(
            perr(&["--uninstall", "a b"]),
            Error::BadValue { .. }
        ));
        assert!(matches!(perr(&["--uninstall", "[[.a.]]"]), Error::Usage(_)));
        assert!(p(&["--uninstall", "[[:alpha:]]*"]).remove.len() == 1);
        assert!(matches!(perr(&["--mount", "/a b"]), Error::BadValue { .. }));
        assert!(matches!(
            perr(&["--install", "arm\\64"]),
            Error::BadValue { .. }
        ));
        assert!(matches!(
            perr(&["--install", "arm\n64"]),
            Error::NotPrintable(_)
        ));
        assert!(matches!(
            perr(&["--install", "arm\u{7}"]),
            Error::NotPrintable(_)
        ));
        // A prefix that climbs out of the interpreter directory is refused
        // for exports too, not only for registering.
        let env = Env::from_pairs([("QEMU_BINARY_PREFIX", "../../tmp/x")]);
        assert!(matches!(
            parse(&args(&["--export-binfmt-d", "/out"]), &env),
            Err(Error::BadValue { .. })
        ));
        let env = Env::from_pairs([("QUS_HOST_ARCH", "x86 64")]);
        assert!(parse(&args(&["-h"]), &env).is_err());
        // What the images set: printed only, so any printable ASCII.
        let env = Env::from_pairs([("QUS_QEMU_VERSION", "1:10.0.3+ds-1~bpo")]);
        assert!(parse(&args(&["--version"]), &env).is_ok());
    }
}
