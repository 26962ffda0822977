//! `qus register`: the Rust implementation of the images' entrypoint, for hosts without a
//! container engine. Arguments go to `qus_binfmt` untouched, in any of its three dialects.
//!
//! A bare host has no `qemu-*-static` for the entries to name, so when an emulator the
//! request needs is missing, qus installs its own ([`install`]): the host's pinned QEMU
//! package (the same pins, mirror, sha256 check and extraction as `qus build`), its
//! emulators written under `<install dir>/<QEMU version>/qemu-<target>` and registered from
//! there with F. Every version gets its own directory so that replacing one never rewrites
//! a file an entry still holds open. `--persist` also writes `qus-<target>.conf` files for
//! systemd-binfmt, which binfmt_misc needs to survive a reboot. Uninstalling removes what
//! qus wrote and nothing else ([`files`]): conf files carry a marker line, and an install
//! directory lists the files qus put there ([`manifest`]).
//!
//! Each step is planned first and then done, or, in a dry run, shown: the install from the
//! request and the pins alone, the registrations by the front end with the planned
//! emulators counted as present, the files from the entries the run leaves (as the dry run
//! projects them). So a dry run says what the run does, and fails where it fails.

mod files;
mod install;
mod manifest;

use crate::ui::progress::Progress;
use qus_binfmt::Env;
use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// Default `--install-dir`.
pub(crate) const DEFAULT_INSTALL_DIR: &str = "/usr/local/lib/qus";
/// Default `--persist-dir`: where systemd-binfmt looks first.
pub(crate) const DEFAULT_PERSIST_DIR: &str = "/etc/binfmt.d";

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
    // A registration the host would not see is refused by the front end: install nothing
    // for it first.
    let private = qus_binfmt::host::userns(qus_binfmt::host::kernel_release(&env))
        == qus_binfmt::error::Userns::Private;
    let install = if private && !req.allow_private {
        None
    } else {
        install::plan(&req, &env, opts)?
    };
    if let Some(plan) = &install {
        req.installed = Some(plan.installed());
        if req.dry_run {
            plan.show(&mut err)?;
        } else {
            plan.run(opts, progress)?;
        }
    }
    let outcome = qus_binfmt::execute_request(&req, &env, &mut out, &mut err);
    let code = outcome.code;
    let Some(entries) = outcome.entries.filter(|_| req.exports.is_empty()) else {
        return Ok(exit(code));
    };
    let failed = files_step(
        &req,
        &env,
        opts,
        &entries,
        install.is_some(),
        &mut err,
        progress,
    )?;
    Ok(exit(if failed && code == 0 {
        qus_binfmt::EXIT_FAILED
    } else {
        code
    }))
}

/// qus's files beside binfmt_misc, planned from the entries the run left (a dry run: would
/// leave), then written and removed or, in a dry run, shown. Returns whether a step failed.
fn files_step(
    req: &qus_binfmt::Request,
    env: &Env,
    opts: &RegisterOptions,
    entries: &[qus_binfmt::EntryInfo],
    installed: bool,
    err: &mut dyn std::io::Write,
    progress: &Progress,
) -> anyhow::Result<bool> {
    let mut failed = false;
    let mut writes = Vec::new();
    if opts.persist && req.register.is_some() {
        match files::conf_writes(req, env, opts, entries) {
            Ok(w) => writes = w,
            Err(e) => {
                progress.warn(format!("{e:#}"));
                failed = true;
            }
        }
    }
    let cleanup = if installed || !req.remove.is_empty() {
        files::cleanup(opts, entries, &writes)
    } else {
        files::Cleanup::default()
    };
    if req.dry_run {
        files::show(opts, &writes, &cleanup, err)?;
        return Ok(failed);
    }
    if let Err(e) = files::write_confs(opts, &writes, progress) {
        progress.warn(format!("{e:#}"));
        failed = true;
    }
    if let Err(e) = files::apply_cleanup(&cleanup, progress) {
        progress.warn(format!("{e:#}"));
        failed = true;
    }
    Ok(failed)
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
A dry run (--dry-run, -- -t) also says what would be installed, written and removed,
and changes nothing.
";
