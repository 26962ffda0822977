//! Installing the emulators a request needs and the host lacks: planned from the request,
//! the host and the config's pins alone (no network, no write), then either shown (a dry
//! run) or done: the host's pinned QEMU package fetched, verified and extracted as `qus
//! build` does, its emulators written under `<install dir>/<version>/qemu-<binary>`.

use super::manifest;
use super::RegisterOptions;
use crate::arch::Host;
use crate::config::Config;
use crate::packages::SourceOptions;
use crate::plan::PackagePlan;
use crate::ui::progress::Progress;
use anyhow::{anyhow, Context as _};
use qus_binfmt::{Env, Request, Target};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// What installing takes: which emulators, from which pinned package, where to.
#[derive(Debug, Clone)]
pub(super) struct InstallPlan {
    host: Host,
    pkg: PackagePlan,
    /// `qemu-<binary>` binaries, sorted.
    binaries: Vec<String>,
    /// `<install dir>/<version>`.
    dir: PathBuf,
}

/// The install a request needs on this host: None when it registers nothing (or only
/// exports), when every interpreter it plans exists, or when the host is one the front end
/// reports itself. Reads the config and its lock; fetches and writes nothing.
pub(super) fn plan(
    req: &Request,
    env: &Env,
    opts: &RegisterOptions,
) -> anyhow::Result<Option<InstallPlan>> {
    if req.register.is_none() || !req.exports.is_empty() {
        return Ok(None);
    }
    // A host qus cannot identify is the front end's to report.
    let missing: Vec<&'static Target> = match qus_binfmt::planned(req, env) {
        Ok(p) => p
            .iter()
            .filter(|p| !Path::new(&p.interpreter).exists())
            .map(|p| p.target)
            .collect(),
        Err(_) => Vec::new(),
    };
    if missing.is_empty() {
        return Ok(None);
    }
    let all = matches!(req.register, Some(qus_binfmt::Selection::All));
    plan_for(&missing, all, env, opts).map(Some)
}

/// The package and files that give this host the emulators of `targets` (every emulator
/// of the package instead when `all`).
fn plan_for(
    targets: &[&'static Target],
    all: bool,
    env: &Env,
    opts: &RegisterOptions,
) -> anyhow::Result<InstallPlan> {
    let machine = qus_binfmt::host::detect(env)?.machine;
    let host: Host = machine.parse().map_err(|_| {
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
            names(&binaries)
        )));
    };
    let dir = opts.install_dir.join(version_dir(&pkg.version));
    Ok(InstallPlan {
        host,
        pkg,
        binaries,
        dir,
    })
}

fn no_package(cfg: &Config, host: Host) -> anyhow::Error {
    crate::exit::usage(format!(
        "{} pins no QEMU package for this host ({host}): pin one (qus lock) or install qemu-user-static from your distribution",
        cfg.origin
    ))
}

fn names(binaries: &[String]) -> String {
    binaries
        .iter()
        .map(|b| format!("qemu-{b}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl InstallPlan {
    /// What the binfmt front end plans with: the directory, and the files this plan puts
    /// there (present for the plan before they exist, so a dry run plans as the run does).
    pub(super) fn installed(&self) -> qus_binfmt::Installed {
        qus_binfmt::Installed {
            dir: self.dir.display().to_string(),
            files: self
                .binaries
                .iter()
                .map(|b| self.dest(b).display().to_string())
                .collect(),
            qemu_version: self.pkg.version.clone(),
        }
    }

    fn dest(&self, binary: &str) -> PathBuf {
        self.dir.join(format!("qemu-{binary}"))
    }

    /// A dry run's account of the install: one line per emulator, on `err`.
    pub(super) fn show(&self, err: &mut dyn Write) -> std::io::Result<()> {
        let p = &self.pkg;
        for b in &self.binaries {
            let dest = self.dest(b);
            let kept = if dest.exists() {
                " (kept if it is the same file)"
            } else {
                ""
            };
            writeln!(
                err,
                "qus: would install qemu-{b} {} into {}{kept} (from {}, sha256 {})",
                version_dir(&p.version),
                dest.display(),
                p.file,
                p.sha256
            )?;
        }
        Ok(())
    }

    /// Fetches the package and installs the planned emulators.
    pub(super) fn run(&self, opts: &RegisterOptions, progress: &Progress) -> anyhow::Result<()> {
        let (pkg, host, dir) = (&self.pkg, self.host, &self.dir);
        let src = SourceOptions {
            packages_dir: opts.packages_dir.clone(),
            debian_mirror: opts.debian_mirror.clone(),
            fedora_mirror: opts.fedora_mirror.clone(),
            cache: match &opts.cache {
                Some(c) => c.clone(),
                None => qus_source::Cache::default_root()?,
            },
            // One package: nothing to extract side by side.
            cpus: 1,
            timeouts: qus_registry::Timeouts::default(),
        };
        progress.step(format!(
            "{} missing on this host: installing them from {} {} ({host}) into {}",
            names(&self.binaries),
            pkg.package,
            pkg.version,
            dir.display()
        ));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let extracted = runtime
            .block_on(crate::packages::prepare(&[pkg], &src, progress))
            .with_context(|| format!("fetching the QEMU package for this host ({host})"))?;
        let files = extracted
            .emulators
            .into_values()
            .next()
            .ok_or_else(|| anyhow!("{}: no emulator extracted", pkg.file))?;
        create_dir(dir)?;
        let mut listed = manifest::read(dir);
        for b in &self.binaries {
            let file = files
                .get(b)
                .ok_or_else(|| anyhow!("{}: qemu-{b} was not extracted", pkg.file))?;
            let name = format!("qemu-{b}");
            let dest = self.dest(b);
            if same_content(&dest, &file.sha256) {
                progress.step(format!("{} is already installed", dest.display()));
            } else {
                install_file(&file.path, dir, &name)?;
                progress.step(format!("installed {}", dest.display()));
            }
            listed.insert(name);
        }
        manifest::write(dir, &listed)
    }
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
}
