//! `qus register`'s arguments, checked before they reach the binfmt front end: the images'
//! entrypoint keeps each dialect's own behaviour (tonistiigi/binfmt reports an unknown
//! `--install` name per target), but on a host one command line gets one answer, and a
//! mistake is a usage error (exit 2) in every dialect.

use qus_binfmt::dialect::{flag_dialect, Dialect, Named, Selection};
use std::ffi::OsString;

/// Refuses a command line that mixes dialects, that spells a dry run the way that
/// registers for real, or that names an unknown target; the rest is the front end's.
pub fn check(args: &[OsString]) -> Result<(), String> {
    let Some(args) = args
        .iter()
        .map(|a| a.to_str().map(str::to_string))
        .collect::<Option<Vec<String>>>()
    else {
        return Ok(());
    };
    mixed_dialects(&args)?;
    targets_before_separator(&args)?;
    unknown_targets(&args)
}

fn dialect_name(d: Dialect) -> &'static str {
    match d {
        Dialect::Binfmt => "tonistiigi/binfmt's",
        Dialect::Multiarch => "multiarch/qemu-user-static's",
        Dialect::Qus | Dialect::Default => "dbhi/qus's",
    }
}

/// `--install aarch64 --reset -p yes`: binfmt's and multiarch's options together, or
/// either with dbhi's `--`.
fn mixed_dialects(args: &[String]) -> Result<(), String> {
    let sep = args.iter().position(|a| a == "--");
    let front = &args[..sep.unwrap_or(args.len())];
    let first = |d: Dialect| {
        front
            .iter()
            .find(|a| flag_dialect(a) == Some(d))
            .map(|a| a.split('=').next().unwrap_or(a).to_string())
    };
    let binfmt = first(Dialect::Binfmt);
    let multiarch = first(Dialect::Multiarch);
    let dbhi = sep.map(|_| "--".to_string());
    let spelled: Vec<(String, Dialect)> = [
        (binfmt, Dialect::Binfmt),
        (multiarch, Dialect::Multiarch),
        (dbhi, Dialect::Qus),
    ]
    .into_iter()
    .filter_map(|(a, d)| a.map(|a| (a, d)))
    .collect();
    if let [(a, da), (b, db), ..] = spelled.as_slice() {
        return Err(format!(
            "'{a}' is {} option and '{b}' {}: one command line takes one dialect \
             (e.g. `qus register --install aarch64`, `qus register --reset -p yes`, or \
             `qus register -- -p aarch64`; `qus register -h` lists each)",
            dialect_name(*da),
            dialect_name(*db)
        ));
    }
    Ok(())
}

/// dbhi's `-t T,T` before `--` names targets and registers them, while `-- -t` is its dry
/// run: `qus register -t aarch64` alone is refused, with both spellings.
fn targets_before_separator(args: &[String]) -> Result<(), String> {
    if args.iter().any(|a| a == "--" || a == "--dry-run")
        || args.iter().any(|a| flag_dialect(a).is_some())
    {
        return Ok(());
    }
    let Some(i) = args.iter().position(|a| {
        matches!(a.as_str(), "-t" | "--targets" | "-targets")
            || (a.len() > 2
                && a.starts_with('-')
                && !a.starts_with("--")
                && a.ends_with('t')
                && a[1..].chars().all(|c| "hlsre".contains(c) || c == 't'))
    }) else {
        return Ok(());
    };
    let list = args.get(i + 1).map_or("TARGET", String::as_str);
    let targets = list.replace(',', " ");
    Err(format!(
        "'{}' before '--' names targets to register (dbhi/qus's `-t T,T`), while `-- -t` is \
         its dry run: write `qus register --dry-run -- {targets}` to see what would be \
         written, or `qus register -- {targets}` to register",
        args[i]
    ))
}

/// A target name no table row has, in any dialect (binfmt's `--install`, dbhi's `-t` and
/// `-- TARGET`, multiarch's none).
fn unknown_targets(args: &[String]) -> Result<(), String> {
    let env = qus_binfmt::Env::default();
    let name = match qus_binfmt::parse(args, &env) {
        Err(qus_binfmt::Error::UnknownTarget(name)) => name,
        Ok(req) => match req.register {
            Some(Selection::Named(named)) => match named.into_iter().find_map(|n| match n {
                Named::Unknown(name) => Some(name),
                Named::Target(_) => None,
            }) {
                Some(name) => name,
                None => return Ok(()),
            },
            _ => return Ok(()),
        },
        Err(_) => return Ok(()),
    };
    Err(format!(
        "unknown target '{name}': {}valid: {}, or an OCI platform (linux/arm64), qus, Debian \
         or uname -m name of one (docs/architectures.md)",
        crate::names::did_you_mean(&crate::targets::suggest(&name)),
        {
            let mut names: Vec<&str> = qus_binfmt::TARGETS.iter().map(|t| t.name).collect();
            names.sort_unstable();
            names.join(", ")
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::check;

    fn c(args: &str) -> Result<(), String> {
        let v: Vec<std::ffi::OsString> = args.split_whitespace().map(Into::into).collect();
        check(&v)
    }

    #[test]
    fn one_dialect_per_command_line() {
        let e = c("--install aarch64 --reset -p yes").unwrap_err();
        assert!(e.contains("'--install'") && e.contains("'--reset'"), "{e}");
        assert!(c("--install aarch64 -- -p").is_err());
        assert!(c("--reset -p yes").is_ok());
        assert!(c("-s -- -p aarch64").is_ok());
        assert!(c("--install aarch64 --dry-run").is_ok());
    }

    #[test]
    fn targets_before_the_separator_are_refused_alone() {
        let e = c("-t aarch64").unwrap_err();
        assert!(e.contains("--dry-run -- aarch64"), "{e}");
        assert!(c("-st aarch64,arm").unwrap_err().contains("-- aarch64 arm"));
        assert!(c("-t aarch64 -- -p").is_ok());
        assert!(c("-t aarch64 --dry-run").is_ok());
    }

    #[test]
    fn unknown_targets_in_every_dialect() {
        for args in ["--install arm46", "-- -p aarch46", "-s -- arm46 -p"] {
            let e = c(args).unwrap_err();
            assert!(e.contains("did you mean aarch64"), "{args}: {e}");
        }
        assert!(c("--install arm64v8,linux/arm/v7").is_ok());
        assert!(c("--uninstall qemu-*").is_ok());
    }
}
