//! The files `qus register` keeps beside binfmt_misc: `--persist`'s conf files for
//! systemd-binfmt, and, after an uninstall (or an install that may have replaced a
//! version), the removal of its conf files and emulators that no entry needs any more.
//!
//! Both are planned from the entries binfmt_misc holds after the run (as a dry run
//! projects them), then applied or, in a dry run, shown: the two cannot drift.

use super::{manifest, RegisterOptions};
use crate::ui::progress::Progress;
use anyhow::{anyhow, Context as _};
use qus_binfmt::{EntryInfo, Env, Request, Target};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The first line of every conf file qus writes; a file without it is never touched.
const CONF_MARKER: &str = "# Written by qus register; `qus register --uninstall` removes it.";

/// A conf file `--persist` writes: its name in the persist dir and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ConfWrite {
    name: String,
    content: String,
}

/// What qus's own files no entry needs any more.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Cleanup {
    /// qus's conf files whose entry is gone.
    confs: Vec<PathBuf>,
    /// Version directories with installed emulators that nothing names.
    versions: Vec<VersionCleanup>,
}

/// One version directory: what goes, and what its list keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
struct VersionCleanup {
    dir: PathBuf,
    remove: Vec<String>,
    keep: BTreeSet<String>,
}

/// Flags of an entry from the letters the kernel shows.
fn flags_of(letters: &str) -> qus_binfmt::Flags {
    qus_binfmt::Flags {
        preserve_argv0: letters.contains('P'),
        open_binary: letters.contains('O'),
        credentials: letters.contains('C'),
        fix_binary: letters.contains('F'),
    }
}

fn conf_name(target: &Target) -> String {
    format!("qus-{}.conf", target.name)
}

fn is_ours(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.lines().next() == Some(CONF_MARKER))
}

fn entry<'a>(entries: &'a [EntryInfo], name: &str) -> Option<&'a EntryInfo> {
    entries.iter().find(|e| e.name_bytes() == name.as_bytes())
}

/// The conf files `--persist` writes: one for every registration of `req` that binfmt_misc
/// holds (`entries`) as planned, with the flags it got; files already so are left out. A
/// conf file of that name that qus did not write is an error naming it.
pub(super) fn conf_writes(
    req: &Request,
    env: &Env,
    opts: &RegisterOptions,
    entries: &[EntryInfo],
) -> anyhow::Result<Vec<ConfWrite>> {
    let mut writes = Vec::new();
    for p in qus_binfmt::planned(req, env)? {
        let Some(e) = entry(entries, &p.target.entry_name()) else {
            continue;
        };
        if !e.enabled || e.interpreter.as_deref() != Some(p.interpreter.as_str()) {
            continue;
        }
        let name = conf_name(p.target);
        let path = opts.persist_dir.join(&name);
        if path.exists() && !is_ours(&path) {
            return Err(anyhow!(
                "{} exists and qus did not write it: remove it or choose another --persist-dir",
                path.display()
            ));
        }
        let line = qus_binfmt::export::binfmt_d(p.target, &p.interpreter, flags_of(&e.flags))?;
        let content = format!("{CONF_MARKER}\n{line}");
        if std::fs::read_to_string(&path).is_ok_and(|old| old == content) {
            continue;
        }
        writes.push(ConfWrite { name, content });
    }
    Ok(writes)
}

/// What to remove once binfmt_misc holds `entries` and `writes` are written: qus's conf
/// files whose entry is gone, then every installed emulator that neither an entry nor a
/// remaining conf file names.
pub(super) fn cleanup(
    opts: &RegisterOptions,
    entries: &[EntryInfo],
    writes: &[ConfWrite],
) -> Cleanup {
    let registered = |name: &str| entry(entries, name).is_some_and(|e| e.enabled);
    let mut in_use: BTreeSet<String> = entries
        .iter()
        .filter_map(|e| e.interpreter.clone())
        .collect();
    let mut confs: BTreeMap<PathBuf, String> = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir(&opts.persist_dir) {
        for f in rd.filter_map(Result::ok) {
            let path = f.path();
            if is_ours(&path) {
                confs.insert(
                    path.clone(),
                    std::fs::read_to_string(&path).unwrap_or_default(),
                );
            }
        }
    }
    for w in writes {
        confs.insert(opts.persist_dir.join(&w.name), w.content.clone());
    }
    let mut plan = Cleanup::default();
    for (path, text) in confs {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(target) = name
            .strip_prefix("qus-")
            .and_then(|n| n.strip_suffix(".conf"))
            .and_then(qus_binfmt::table::find)
        else {
            continue;
        };
        if registered(&target.entry_name()) {
            // Its line names an interpreter a reboot registers again.
            if let Some(interp) = text.lines().nth(1).and_then(|l| l.split(':').nth(6)) {
                in_use.insert(interp.to_string());
            }
        } else {
            plan.confs.push(path);
        }
    }
    let Ok(versions) = std::fs::read_dir(&opts.install_dir) else {
        return plan;
    };
    let mut dirs: Vec<PathBuf> = versions.filter_map(Result::ok).map(|v| v.path()).collect();
    dirs.sort();
    for dir in dirs {
        let (remove, keep): (Vec<String>, Vec<String>) = manifest::read(&dir)
            .into_iter()
            .partition(|name| !in_use.contains(&dir.join(name).display().to_string()));
        if !remove.is_empty() {
            plan.versions.push(VersionCleanup {
                dir,
                remove,
                keep: keep.into_iter().collect(),
            });
        }
    }
    plan
}

/// A dry run's account of the files: what the run would write and remove, on `err`.
pub(super) fn show(
    opts: &RegisterOptions,
    writes: &[ConfWrite],
    cleanup: &Cleanup,
    err: &mut dyn Write,
) -> std::io::Result<()> {
    for w in writes {
        writeln!(
            err,
            "qus: would write {}",
            opts.persist_dir.join(&w.name).display()
        )?;
    }
    for path in &cleanup.confs {
        writeln!(err, "qus: would remove {}", path.display())?;
    }
    for v in &cleanup.versions {
        for name in &v.remove {
            let path = v.dir.join(name);
            // The run passes over a listed file that is gone already.
            if path.exists() {
                writeln!(err, "qus: would remove {}", path.display())?;
            }
        }
    }
    Ok(())
}

/// Writes the conf files; the first failure stops and is returned.
pub(super) fn write_confs(
    opts: &RegisterOptions,
    writes: &[ConfWrite],
    progress: &Progress,
) -> anyhow::Result<()> {
    let dir = opts.persist_dir.display().to_string();
    for w in writes {
        let written = qus_binfmt::export::write(&dir, &w.name, &w.content)?;
        progress.step(format!("wrote {written}"));
    }
    Ok(())
}

/// Removes what `cleanup` lists: conf files first (a failure stops there), then the
/// emulators, keeping in each list whatever could not be removed, and each version
/// directory once empty.
pub(super) fn apply_cleanup(cleanup: &Cleanup, progress: &Progress) -> anyhow::Result<()> {
    for path in &cleanup.confs {
        std::fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))?;
        progress.step(format!("removed {}", path.display()));
    }
    for v in &cleanup.versions {
        let mut listed = v.keep.clone();
        for name in &v.remove {
            let path = v.dir.join(name);
            match std::fs::remove_file(&path) {
                Ok(()) => progress.step(format!("removed {}", path.display())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    progress.warn(format!("cannot remove {}: {e}", path.display()));
                    listed.insert(name.clone());
                }
            }
        }
        manifest::write(&v.dir, &listed)?;
        if listed.is_empty() {
            // Only when empty: a file qus did not put there stays, and so does its folder.
            let _ = std::fs::remove_dir(&v.dir);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_from_letters() {
        let f = flags_of("OCF");
        assert!(f.credentials && f.fix_binary && f.open_binary && !f.preserve_argv0);
        assert_eq!(flags_of("").letters(), "");
    }
}
