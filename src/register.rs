//! `qus register`: the Rust implementation of the images' entrypoint, for hosts without a
//! container engine. Arguments go to `qus_binfmt` untouched, in any of its three dialects.
//!
//! A bare host has no `qemu-*-static` for the entries to name, so when an emulator the
//! request needs is missing, qus installs its own: the host's pinned QEMU package (the same
//! pins, mirror, sha256 check and extraction as `qus build`), its emulators written under
//! `<install dir>/<QEMU version>/qemu-<target>` and registered from there with F. Every
//! version gets its own directory so that replacing one never rewrites a file an entry
//! still holds open. `--persist` also writes `qus-<target>.conf` files for systemd-binfmt,
//! which binfmt_misc needs to survive a reboot. Uninstalling removes what qus wrote and
//! nothing else: conf files carry a marker line, and an install directory lists the files
//! qus put there.

use crate::config::Config;
use crate::options::SourceOptions;
use crate::progress::Progress;
use anyhow::{anyhow, Context as _};
use qus_binfmt::{Env, Request, Target};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Default `--install-dir`.
pub(crate) const DEFAULT_INSTALL_DIR: &str = "/usr/local/lib/qus";
/// Default `--persist-dir`: where systemd-binfmt looks first.
pub(crate) const DEFAULT_PERSIST_DIR: &str = "/etc/binfmt.d";

/// The first line of every conf file qus writes; a file without it is never touched.
const CONF_MARKER: &str = "# Written by qus register; `qus register --uninstall` removes it.";
/// The list of files qus installed in a version directory.
const MANIFEST: &str = ".qus-installed";

/// What `qus register` does besides the binfmt front end.
#[derive(Debug, Clone)]
pub(crate) struct RegisterOptions {
    /// `--install-dir`.
    pub install_dir: PathBuf,
    /// `--persist`.
    pub persist: bool,
    /// `--persist-dir`: written with `--persist`, cleaned on uninstall.
    pub persist_dir: PathBuf,
    /// `--config`.
    pub config: Option<PathBuf>,
    /// Where the package comes from; `cache` is resolved only when one is fetched.
    pub packages_dir: Option<PathBuf>,
    /// The Debian mirror.
    pub debian_mirror: Option<String>,
    /// The Fedora mirror.
    pub fedora_mirror: Option<String>,
    /// `--cache`.
    pub cache: Option<PathBuf>,
}

/// Runs the binfmt front end with the process environment, installing missing emulators
/// first; its exit status is ours.
pub(crate) fn register_cmd(
    args: &[OsString],
    opts: &RegisterOptions,
    progress: &Progress,
) -> anyhow::Result<ExitCode> {
    let env = Env::from_process();
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    let exit = |code: i32| ExitCode::from(u8::try_from(code).unwrap_or(2));
    let strings: Option<Vec<String>> = args.iter().map(|a| a.to_str().map(String::from)).collect();
    // Whatever does not parse gets the front end's own message and status.
    let Some(mut req) = strings.and_then(|s| qus_binfmt::parse(&s, &env).ok()) else {
        return Ok(exit(qus_binfmt::run(args, &env, &mut out, &mut err)));
    };
    if req.help {
        let code = qus_binfmt::run_request(&req, &env, &mut out, &mut err);
        out.write_all(HOST_USAGE.as_bytes())?;
        return Ok(exit(code));
    }
    let writes = !req.dry_run && req.exports.is_empty();
    let mut installed = false;
    if writes && req.register.is_some() {
        // A host qus cannot identify is the front end's to report.
        let missing: Vec<&'static Target> = match qus_binfmt::planned(&req, &env) {
            Ok(p) => p
                .iter()
                .filter(|p| !Path::new(&p.interpreter).exists())
                .map(|p| p.target)
                .collect(),
            Err(_) => Vec::new(),
        };
        if !missing.is_empty() {
            let all = matches!(req.register, Some(qus_binfmt::Selection::All));
            let dir = install(&missing, all, &env, opts, progress)?;
            req.installed = Some(dir.display().to_string());
            installed = true;
        }
    }
    let code = qus_binfmt::run_request(&req, &env, &mut out, &mut err);
    drop((out, err));
    if !writes {
        return Ok(exit(code));
    }
    let mut failed = false;
    if opts.persist && req.register.is_some() {
        if let Err(e) = persist(&req, &env, opts, progress) {
            progress.warn(format!("{e:#}"));
            failed = true;
        }
    }
    if installed || !req.remove.is_empty() {
        if let Err(e) = clean(&req, opts, progress) {
            progress.warn(format!("{e:#}"));
            failed = true;
        }
    }
    Ok(exit(if failed && code == 0 {
        qus_binfmt::EXIT_FAILED
    } else {
        code
    }))
}

/// `qus register -h` after the front end's usage.
const HOST_USAGE: &str = "
qus register on a host (these go anywhere among the arguments above):
  --install-dir DIR   where emulators missing on this host are installed and registered
                      from, with F: DIR/<QEMU version>/qemu-T (default: /usr/local/lib/qus)
  --persist           also write qus-T.conf into the persist dir for systemd-binfmt, so
                      that a reboot registers the targets again
  --persist-dir DIR   where --persist writes (default: /etc/binfmt.d)
  --mirror URL, --debs DIR, --cache DIR, --config FILE
                      where the pinned QEMU package comes from (as for qus build)
Uninstalling (--uninstall, --reset, -r, -- -r) also removes what qus installed.
";

/// Fetches this host's pinned QEMU package and installs the emulators of `targets` (every
/// emulator of the package instead when `all`); returns the version directory.
fn install(
    targets: &[&'static Target],
    all: bool,
    env: &Env,
    opts: &RegisterOptions,
    progress: &Progress,
) -> anyhow::Result<PathBuf> {
    let machine = qus_binfmt::host::detect(env)?.machine;
    let host: crate::arch::Host = machine.parse().map_err(|_| {
        crate::exit::usage(format!("this host ({machine}) is no host qus has QEMU packages for: install qemu-user-static from your distribution instead"))
    })?;
    let cfg = Config::load(opts.config.as_deref())?;
    let mut binaries: Vec<String> = targets.iter().map(|t| t.binary.to_string()).collect();
    binaries.sort();
    binaries.dedup();
    if all {
        // "Every emulator": every one the newest package for this host ships.
        let any =
            crate::plan::machine_package(&cfg, host, &[]).ok_or_else(|| no_package(&cfg, host))?;
        let shipped = cfg
            .sources
            .iter()
            .find(|s| matches!(&any.role, crate::plan::Role::Qemu { source } if *source == s.name))
            .map(|s| s.targets_for(host))
            .unwrap_or_default();
        binaries.retain(|b| shipped.contains(b));
    }
    let Some(pkg) = crate::plan::machine_package(&cfg, host, &binaries) else {
        return Err(crate::exit::usage(format!(
            "{} pins no QEMU package for this host ({host}) that ships {}: pin one (qus lock), or name targets its packages ship",
            cfg.origin,
            binaries.iter().map(|b| format!("qemu-{b}")).collect::<Vec<_>>().join(", ")
        )));
    };
    let version = version_dir(&pkg.version);
    let dir = opts.install_dir.join(&version);
    let src = SourceOptions {
        packages_dir: opts.packages_dir.clone(),
        debian_mirror: opts.debian_mirror.clone(),
        fedora_mirror: opts.fedora_mirror.clone(),
        cache: match &opts.cache {
            Some(c) => c.clone(),
            None => qus_source::Cache::default_root()?,
        },
    };
    progress.step(format!(
        "{} missing on this host: installing them from {} {} ({host}) into {}",
        binaries
            .iter()
            .map(|b| format!("qemu-{b}"))
            .collect::<Vec<_>>()
            .join(", "),
        pkg.package,
        pkg.version,
        dir.display()
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let extracted = runtime
        .block_on(crate::packages::prepare(&[&pkg], &src, progress))
        .with_context(|| format!("fetching the QEMU package for this host ({host})"))?;
    let files = extracted
        .emulators
        .into_values()
        .next()
        .ok_or_else(|| anyhow!("{}: no emulator extracted", pkg.file))?;
    create_dir(&dir)?;
    let mut listed = read_manifest(&dir);
    for b in &binaries {
        let file = files
            .get(b)
            .ok_or_else(|| anyhow!("{}: qemu-{b} was not extracted", pkg.file))?;
        let name = format!("qemu-{b}");
        let dest = dir.join(&name);
        if same_content(&dest, &file.sha256) {
            progress.step(format!("{} is already installed", dest.display()));
        } else {
            install_file(&file.path, &dir, &name)?;
            progress.step(format!("installed {}", dest.display()));
        }
        listed.insert(name);
    }
    write_manifest(&dir, &listed)?;
    Ok(dir)
}

fn no_package(cfg: &Config, host: crate::arch::Host) -> anyhow::Error {
    crate::exit::usage(format!(
        "{} pins no QEMU package for this host ({host}): pin one (qus lock) or install qemu-user-static from your distribution",
        cfg.origin
    ))
}

/// A directory name for a Debian or Fedora version: no epoch, and nothing a binfmt_misc
/// line or its checks refuse (`1:10.0.3+ds-1` → `10.0.3+ds-1`).
fn version_dir(version: &str) -> String {
    let v = version.split_once(':').map_or(version, |(_, v)| v);
    v.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._+-~".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn create_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "cannot create {}: run qus register as root, or choose another --install-dir",
            dir.display()
        )
    })
}

fn same_content(path: &Path, sha256: &str) -> bool {
    std::fs::read(path)
        .is_ok_and(|b| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&b)) == sha256)
}

/// Copies `from` to `dir/name` through a temporary name in `dir` and a rename, so an entry
/// never sees a half-written interpreter; mode 0755.
fn install_file(from: &Path, dir: &Path, name: &str) -> anyhow::Result<()> {
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let dest = dir.join(name);
    let done = (|| -> std::io::Result<()> {
        let _ = std::fs::remove_file(&tmp);
        std::fs::copy(from, &tmp)?;
        let f = std::fs::File::open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o755))?;
        f.sync_all()?;
        std::fs::rename(&tmp, &dest)
    })();
    if let Err(e) = done {
        let _ = std::fs::remove_file(&tmp);
        return Err(anyhow!(
            "cannot install {}: {e} (run qus register as root, or choose another --install-dir)",
            dest.display()
        ));
    }
    Ok(())
}

fn read_manifest(dir: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(dir.join(MANIFEST))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("qemu-") && !l.contains('/'))
        .map(str::to_string)
        .collect()
}

fn write_manifest(dir: &Path, names: &BTreeSet<String>) -> anyhow::Result<()> {
    let path = dir.join(MANIFEST);
    if names.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(anyhow!("cannot remove {}: {e}", path.display()))
            }
            _ => Ok(()),
        };
    }
    let text: String = names.iter().map(|n| format!("{n}\n")).collect();
    let tmp = dir.join(format!("{MANIFEST}.{}", std::process::id()));
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .with_context(|| format!("cannot write {}", path.display()))
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

/// Writes a conf file for every registration of `req` that is now in binfmt_misc as
/// planned, with the flags it got.
fn persist(
    req: &Request,
    env: &Env,
    opts: &RegisterOptions,
    progress: &Progress,
) -> anyhow::Result<()> {
    let bf = qus_binfmt::Binfmt::new(req.mount.clone());
    let dir = opts.persist_dir.display().to_string();
    for p in qus_binfmt::planned(req, env)? {
        let Some(e) = bf.entry(std::ffi::OsStr::new(&p.target.entry_name())) else {
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
        let written = qus_binfmt::export::write(&dir, &name, &content)?;
        progress.step(format!("wrote {written}"));
    }
    Ok(())
}

fn is_ours(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.lines().next() == Some(CONF_MARKER))
}

/// After an uninstall (or an install that may have replaced a version): removes qus's conf
/// files whose entry is gone, then every installed emulator that neither an entry nor a
/// remaining conf file names.
fn clean(req: &Request, opts: &RegisterOptions, progress: &Progress) -> anyhow::Result<()> {
    let bf = qus_binfmt::Binfmt::new(req.mount.clone());
    let entries = bf.entries()?;
    let registered = |name: &str| {
        entries
            .iter()
            .any(|e| e.name_bytes() == name.as_bytes() && e.enabled)
    };
    let mut in_use: BTreeSet<String> = entries
        .iter()
        .filter_map(|e| e.interpreter.clone())
        .collect();
    if let Ok(rd) = std::fs::read_dir(&opts.persist_dir) {
        for f in rd.filter_map(Result::ok) {
            let path = f.path();
            let name = f.file_name().to_string_lossy().into_owned();
            let Some(target) = name
                .strip_prefix("qus-")
                .and_then(|n| n.strip_suffix(".conf"))
                .and_then(qus_binfmt::table::find)
            else {
                continue;
            };
            if !is_ours(&path) {
                continue;
            }
            if registered(&target.entry_name()) {
                // Its line names an interpreter a reboot registers again.
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                if let Some(interp) = text.lines().nth(1).and_then(|l| l.split(':').nth(6)) {
                    in_use.insert(interp.to_string());
                }
                continue;
            }
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
            progress.step(format!("removed {}", path.display()));
        }
    }
    let Ok(versions) = std::fs::read_dir(&opts.install_dir) else {
        return Ok(());
    };
    for v in versions.filter_map(Result::ok) {
        let dir = v.path();
        let mut listed = read_manifest(&dir);
        if listed.is_empty() {
            continue;
        }
        let before = listed.len();
        listed.retain(|name| {
            let path = dir.join(name);
            if in_use.contains(&path.display().to_string()) {
                return true;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    progress.step(format!("removed {}", path.display()));
                    false
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                Err(e) => {
                    progress.warn(format!("cannot remove {}: {e}", path.display()));
                    true
                }
            }
        });
        if listed.len() != before {
            write_manifest(&dir, &listed)?;
        }
        if listed.is_empty() {
            // Only when empty: a file qus did not put there stays, and so does its folder.
            let _ = std::fs::remove_dir(&dir);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_dirs_drop_the_epoch_and_keep_lines_valid() {
        assert_eq!(
            version_dir("1:10.0.13+ds-0+deb13u1"),
            "10.0.13+ds-0+deb13u1"
        );
        assert_eq!(version_dir("7.2"), "7.2");
        assert_eq!(version_dir("1:a:b c"), "a_b_c");
    }

    #[test]
    fn flags_from_letters() {
        let f = flags_of("OCF");
        assert!(f.credentials && f.fix_binary && f.open_binary && !f.preserve_argv0);
        assert_eq!(flags_of("").letters(), "");
    }
}
