//! What an entry already in binfmt_misc is to a registration: the same
//! entry (left alone), one that does what it asks (a lost race ends there),
//! or one to replace. Pure: the caller says how to tell two interpreter
//! paths apart.
//!
//! "The same" with F: the kernel holds the file it opened when the entry was
//! written, in the mount namespace of whoever wrote it, and shows only the
//! path. Nothing here can see which file that is. An entry with the same
//! match (magic, mask, offset), the same flags and an interpreter that is the
//! same file here (the same path, or paths that resolve to one file, as
//! `/qus/bin/qemu-T-static` and `/usr/bin/qemu-T-static` do in a qus image)
//! counts as the same entry, and is kept: replacing it would only swap one
//! opened copy of the same path for another, and every replacement is a
//! moment where a running registration of another job judges a changed
//! entry. docs/registration.md says how to force a fresh file.

use crate::apply::EntryInfo;
use crate::line::Flags;
use crate::table::Target;

/// What a registration asks for.
#[derive(Debug, Clone, Copy)]
pub struct Want<'a> {
    /// The target.
    pub target: &'a Target,
    /// Its interpreter path.
    pub interpreter: &'a str,
    /// Its flags.
    pub flags: Flags,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Whether the entry is enabled and matches the target's files exactly as
/// its register line would (offset 0, the table's magic and mask).
pub fn matches_target(e: &EntryInfo, t: &Target) -> bool {
    e.enabled
        && e.field("offset") == Some("0")
        && e.field("magic") == Some(hex(t.magic).as_str())
        && e.field("mask") == Some(hex(t.mask).as_str())
}

/// Whether flags `have` hold every letter of `want`.
pub fn has_flags(have: &str, want: &str) -> bool {
    want.chars().all(|c| have.contains(c))
}

/// Whether the entry does what `want` asks, whoever wrote it: it matches
/// the target, and has at least the asked flags. Its interpreter may be
/// another registration's (another image's path, `qus register`'s): that is
/// how a registration that lost a race judges the winner's entry.
pub fn satisfies(e: &EntryInfo, want: &Want<'_>) -> bool {
    matches_target(e, want.target) && has_flags(&e.flags, &want.flags.letters())
}

/// Whether the entry is the one `want` would leave, so registering must not
/// touch it: it matches the target, has exactly the asked flags (at least
/// them when `superset` is allowed: the call without arguments keeps
/// setup-qemu-action's OCF entries) and its interpreter is the same file here
/// (`same_file`, see the module's doc).
pub fn equivalent(
    e: &EntryInfo,
    want: &Want<'_>,
    superset: bool,
    same_file: &dyn Fn(&str, &str) -> bool,
) -> bool {
    let letters = want.flags.letters();
    let flags_ok = if superset {
        has_flags(&e.flags, &letters)
    } else {
        has_flags(&e.flags, &letters) && has_flags(&letters, &e.flags)
    };
    matches_target(e, want.target)
        && flags_ok
        && e.interpreter
            .as_deref()
            .is_some_and(|i| same_file(i, want.interpreter))
}

/// Whether two interpreter paths name one file here: the same path, or two
/// paths that both resolve (links followed) to the same one.
pub fn same_file_here(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::find;
    use crate::view::registered_entry;
    use std::ffi::OsStr;

    fn want(flags: Flags) -> Want<'static> {
        Want {
            target: find("aarch64").unwrap(),
            interpreter: "/usr/bin/qemu-aarch64-static",
            flags,
        }
    }

    const OCF: Flags = Flags {
        preserve_argv0: false,
        open_binary: true,
        credentials: true,
        fix_binary: true,
    };

    #[test]
    fn same_entry_needs_same_match_flags_and_file() {
        let t = find("aarch64").unwrap();
        let same = |a: &str, b: &str| a == b;
        let e = registered_entry(t, "/usr/bin/qemu-aarch64-static", Flags::PERSISTENT);
        assert!(equivalent(&e, &want(Flags::PERSISTENT), false, &same));
        // More flags than asked: the same only for the call without arguments.
        let e = registered_entry(t, "/usr/bin/qemu-aarch64-static", OCF);
        assert!(!equivalent(&e, &want(Flags::PERSISTENT), false, &same));
        assert!(equivalent(&e, &want(Flags::PERSISTENT), true, &same));
        // Fewer: never.
        let e = registered_entry(t, "/usr/bin/qemu-aarch64-static", Flags::PERSISTENT);
        assert!(!equivalent(&e, &want(OCF), true, &same));
        // Another file.
        let e = registered_entry(t, "/qus/bin/qemu-aarch64-static", Flags::PERSISTENT);
        assert!(!equivalent(&e, &want(Flags::PERSISTENT), false, &same));
        assert!(equivalent(&e, &want(Flags::PERSISTENT), false, &|_, _| {
            true
        }));
        // Disabled, or another magic (arm's line under aarch64's name).
        let mut e = registered_entry(t, "/usr/bin/qemu-aarch64-static", Flags::PERSISTENT);
        e.enabled = false;
        assert!(!equivalent(&e, &want(Flags::PERSISTENT), false, &same));
        let arm = registered_entry(
            find("arm").unwrap(),
            "/usr/bin/qemu-aarch64-static",
            Flags::PERSISTENT,
        );
        let e = crate::apply::parse_entry(OsStr::new("qemu-aarch64"), arm.raw);
        assert!(!equivalent(&e, &want(Flags::PERSISTENT), false, &same));
        assert!(!satisfies(&e, &want(Flags::PERSISTENT)));
    }

    #[test]
    fn a_winner_satisfies_with_any_interpreter_and_at_least_the_flags() {
        let t = find("aarch64").unwrap();
        let e = registered_entry(t, "/usr/local/lib/qus/10.0/qemu-aarch64", OCF);
        assert!(satisfies(&e, &want(Flags::PERSISTENT)));
        assert!(satisfies(&e, &want(OCF)));
        let e = registered_entry(t, "/x/qemu-aarch64", Flags::PERSISTENT);
        assert!(!satisfies(&e, &want(OCF)));
    }

    #[test]
    fn paths_to_one_file_are_the_same_file() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("qemu-aarch64-static");
        std::fs::write(&f, b"x").unwrap();
        let l = d.path().join("link");
        std::os::unix::fs::symlink(d.path(), &l).unwrap();
        let via = l.join("qemu-aarch64-static");
        assert!(same_file_here(f.to_str().unwrap(), via.to_str().unwrap()));
        assert!(same_file_here("/nonexistent/a", "/nonexistent/a"));
        assert!(!same_file_here("/nonexistent/a", f.to_str().unwrap()));
    }
}
