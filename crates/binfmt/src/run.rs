//! One invocation, start to finish: parse, plan, apply, report.
//!
//! This is `qus register` and the test helper; the sh entrypoint implements
//! the same steps in the same order with the same messages, which the
//! differential test checks. Planning (which targets, which are skipped, with
//! which flags) is pure and separate from the writes.

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;

use crate::apply::{self, Binfmt, EntryInfo, QusStatus, Record, Registered, Verdict};
use crate::dialect::{self, Dialect, Env, Interpreter, Named, Removal, Request, Selection};
use crate::error::{Error, Userns};
use crate::export;
use crate::host;
use crate::judge::{self, Want};
use crate::line::{shown_flags, Flags};
use crate::pages;
use crate::request::Installed;
use crate::table::{self, Target};
use crate::view::View;

/// Exit status when everything asked for was done.
pub const EXIT_OK: i32 = 0;
/// Exit status when at least one target or entry failed (others were still
/// done: registration is best effort per target, but unlike tonistiigi/binfmt
/// a failure is not hidden behind exit status 0).
pub const EXIT_FAILED: i32 = 1;
/// Exit status for arguments that do not parse.
pub const EXIT_USAGE: i32 = 2;

/// What to do for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Register (or export) it.
    Register {
        /// The target.
        target: &'static Target,
        /// Its interpreter path.
        interpreter: String,
        /// Flags for its line.
        flags: Flags,
    },
    /// Skip it: it is in the host's family.
    Skip(&'static Target),
    /// Skip it whatever the options: it is the host's own architecture, and
    /// registering it would hand every native binary (the emulator itself
    /// included) to QEMU.
    Native(&'static Target),
    /// A name that is no target (binfmt `--install`).
    Unknown(String),
}

/// The targets of a selection, resolved against what exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Set when `All` found no emulator in this directory, so every target is
    /// planned (without F when registering) for interpreters on the host.
    pub no_emulator_in: Option<String>,
    /// In order.
    pub steps: Vec<Step>,
}

/// Inputs of [`plan`] besides the selection.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    /// Where interpreters are.
    pub interpreter: &'a Interpreter,
    /// The chosen directory of `interpreter.dirs`.
    pub dir: &'a str,
    /// Requested flags.
    pub flags: Flags,
    /// QEMU target of the host (`uname -m` normalised).
    pub host_target: &'a str,
    /// Family of the host.
    pub host_family: &'a str,
    /// Register the host family too.
    pub ignore_family: bool,
    /// Planning files for another system: keep F even without emulators here.
    pub for_export: bool,
    /// Interpreters qus installed ([`Request::installed`]): used with F for a
    /// target whose interpreter is missing from `dir`.
    pub installed: Option<&'a str>,
}

/// The path of `target`'s interpreter in a directory qus installed.
pub fn installed_path(dir: &str, target: &Target) -> String {
    format!("{}/qemu-{}", dir.trim_end_matches('/'), target.binary)
}

/// Resolves a selection. `exists` says whether an interpreter path exists.
pub fn plan(sel: &Selection, input: &PlanInput<'_>, exists: &dyn Fn(&str) -> bool) -> Plan {
    let mut flags = input.flags;
    let mut no_emulator_in = None;
    let candidates: Vec<Named> = match sel {
        Selection::All => {
            let present: Vec<Named> = table::TARGETS
                .iter()
                .filter(|t| {
                    exists(&input.interpreter.path_in(input.dir, t))
                        || input
                            .installed
                            .is_some_and(|d| exists(&installed_path(d, t)))
                })
                .map(Named::Target)
                .collect();
            if present.is_empty() {
                no_emulator_in = Some(input.dir.to_string());
                if !input.for_export {
                    flags.fix_binary = false;
                }
                table::TARGETS.iter().map(Named::Target).collect()
            } else {
                present
            }
        }
        Selection::Named(names) => {
            let mut seen: Vec<Named> = Vec::new();
            for n in names {
                if !seen.contains(n) {
                    seen.push(n.clone());
                }
            }
            seen
        }
    };
    let steps = candidates
        .into_iter()
        .map(|n| match n {
            Named::Unknown(s) => Step::Unknown(s),
            Named::Target(t) if t.name == input.host_target => Step::Native(t),
            Named::Target(t) if t.family == input.host_family && !input.ignore_family => {
                Step::Skip(t)
            }
            Named::Target(t) => {
                let usual = input.interpreter.path_in(input.dir, t);
                match input.installed.map(|d| installed_path(d, t)) {
                    // F: the kernel keeps the file open, so containers in other
                    // mount namespaces, which do not see the install dir, can use it.
                    Some(ours) if !exists(&usual) && exists(&ours) => Step::Register {
                        target: t,
                        interpreter: ours,
                        flags: Flags {
                            fix_binary: true,
                            ..flags
                        },
                    },
                    _ => Step::Register {
                        target: t,
                        interpreter: usual,
                        flags,
                    },
                }
            }
        })
        .collect();
    Plan {
        no_emulator_in,
        steps,
    }
}

/// The directory of `interpreter.dirs` to use: the first that exists, else
/// the last.
pub fn resolve_dir(interpreter: &Interpreter) -> String {
    interpreter
        .dirs
        .iter()
        .find(|d| Path::new(d).is_dir())
        .or(interpreter.dirs.last())
        .cloned()
        .unwrap_or_default()
}

/// Runs one invocation with the raw arguments after the command name
/// (`qus register ARGS…`, or the image's entrypoint arguments). Writes
/// machine-readable output (dry-run lines, lists, JSON, help) to `out` and
/// progress and errors to `err`; returns the exit status (0, 1 when a target
/// failed, 2 for bad arguments).
pub fn run(args: &[OsString], env: &Env, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let usage = |err: &mut dyn Write, e: Error| {
        let _ = writeln!(err, "qus: error: {e}");
        let _ = writeln!(err, "qus: run with -h for usage");
        EXIT_USAGE
    };
    let mut strings = Vec::with_capacity(args.len());
    for (i, a) in args.iter().enumerate() {
        match a.to_str() {
            Some(s) => strings.push(s.to_string()),
            // Not UTF-8, so not printable ASCII: the same words as parse's.
            None => return usage(err, Error::NotPrintable(format!("argument {}", i + 1))),
        }
    }
    match dialect::parse(&strings, env) {
        Ok(req) => run_request(&req, env, out, err),
        Err(e) => usage(err, e),
    }
}

/// Runs a parsed request (see [`run`]); `qus register` adjusts the request
/// (its installed interpreters) between parsing and running.
pub fn run_request(req: &Request, env: &Env, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    execute_request(req, env, out, err).code
}

/// What [`execute_request`] did to binfmt_misc or, in a dry run, would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The exit status, as [`run_request`] returns it.
    pub code: i32,
    /// The entries afterwards: read back after a run; after a dry run, the
    /// entries the run would leave. None when binfmt_misc was not looked at
    /// (help, version, exports, a refusal before it).
    pub entries: Option<Vec<EntryInfo>>,
}

/// [`run_request`], also returning the entries it left (or would leave):
/// `qus register` writes its persistence files and cleans up from them.
pub fn execute_request(
    req: &Request,
    env: &Env,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Outcome {
    let mut r = Reporter {
        out,
        err,
        failed: false,
        warnings: Vec::new(),
    };
    let entries = execute(req, env, &mut r);
    Outcome {
        code: if r.failed { EXIT_FAILED } else { EXIT_OK },
        entries,
    }
}

struct Reporter<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    failed: bool,
    /// Warnings given so far, for the status JSON.
    warnings: Vec<String>,
}

impl Reporter<'_> {
    fn out(&mut self, s: &str) {
        let _ = self.out.write_all(s.as_bytes());
    }
    fn out_bytes(&mut self, b: &[u8]) {
        let _ = self.out.write_all(b);
    }
    fn say(&mut self, s: &str) {
        let _ = writeln!(self.err, "qus: {s}");
    }
    fn warn(&mut self, s: &str) {
        self.say(&format!("warning: {s}"));
        self.warnings.push(s.to_string());
    }
    fn fail(&mut self, s: &str) {
        self.failed = true;
        let _ = writeln!(self.err, "qus: error: {s}");
    }
}

/// The steps of one invocation, in the order the sh entrypoint takes them
/// too: everything that can be refused is decided (host, plan, F support)
/// before the first write, so a refusal never leaves a half-done host. A
/// dry run takes every decision the run takes, from the same entries, and
/// prints what the run would write instead of writing it.
fn execute(req: &Request, env: &Env, r: &mut Reporter<'_>) -> Option<Vec<EntryInfo>> {
    if req.help {
        r.out(dialect::USAGE);
        return None;
    }
    if req.version {
        r.out(&format!(
            "qus-binfmt/{} qemu/{}\n",
            env!("CARGO_PKG_VERSION"),
            env.get("QUS_QEMU_VERSION").unwrap_or("unknown")
        ));
        return None;
    }
    let release = host::kernel_release(env);
    let userns = host::userns(release);
    // Only what plans targets or calls platforms native needs the host.
    let host = if req.register.is_some() || req.status_json {
        match host::detect(env) {
            Ok(h) => Some(h),
            Err(e) => {
                r.fail(&e.to_string());
                return None;
            }
        }
    } else {
        None
    };
    let machine = host.as_ref().map(|h| h.machine.clone()).unwrap_or_default();
    if let Some(h) = host.as_ref().filter(|h| h.emulated()) {
        r.say(&format!(
            "note: running under emulation (uname -m says {}, the kernel is {machine}): the host is {machine}",
            h.claimed
        ));
    }
    let host_target = table::host_target(&machine).to_string();
    let family = table::host_family(&machine).to_string();
    let dir = resolve_dir(&req.interpreter);
    let exists = present(req);
    let input = |for_export| PlanInput {
        interpreter: &req.interpreter,
        dir: &dir,
        flags: req.flags,
        host_target: &host_target,
        host_family: &family,
        ignore_family: req.ignore_family,
        for_export,
        installed: req.installed.as_ref().map(|i| i.dir.as_str()),
    };

    if !req.exports.is_empty() {
        if let Some(sel) = &req.register {
            let p = plan(sel, &input(true), &exists);
            report_plan_notes(&p, &machine, &family, false, r);
            for ex in &req.exports {
                for step in &p.steps {
                    if let Step::Register {
                        target,
                        interpreter,
                        flags,
                    } = step
                    {
                        export_one(ex, target, interpreter, *flags, req.dry_run, r);
                    }
                }
            }
        }
        return None;
    }

    let mut planned = None;
    if let Some(sel) = &req.register {
        let mut p = plan(sel, &input(false), &exists);
        report_plan_notes(&p, &machine, &family, true, r);
        let wants_f = p
            .steps
            .iter()
            .any(|s| matches!(s, Step::Register { flags, .. } if flags.fix_binary));
        if wants_f && !host::at_least(release, host::FIX_BINARY_SINCE) {
            let shown = release.map(|(a, b)| format!("{a}.{b}")).unwrap_or_default();
            if !req.allow_without_f {
                // Before any removal: `--reset` on such a host must not
                // delete working entries it cannot replace.
                r.fail(&Error::NoFixBinary { release: shown }.to_string());
                return None;
            }
            r.say(&format!(
                "note: Linux {shown} does not support the F flag (Linux 4.8+): registering without it, so the interpreters must exist wherever foreign binaries run"
            ));
            for s in &mut p.steps {
                if let Step::Register { flags, .. } = s {
                    flags.fix_binary = false;
                }
            }
        }
        let registering: Vec<&Target> = p
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Register { target, .. } => Some(*target),
                _ => None,
            })
            .collect();
        if userns == Userns::Private && !req.allow_private && !registering.is_empty() {
            // binfmt#288: a registration the host cannot see is no success.
            r.fail(&Error::PrivateBinfmt(req.mount.clone()).to_string());
            return None;
        }
        if !registering.is_empty() {
            warn_page_size(&registering, pages::host_page_size(env), r);
        }
        planned = Some(p);
    }

    let touches = req.list || req.status_json || !req.remove.is_empty() || req.register.is_some();
    if !touches {
        return None;
    }
    let bf = Binfmt::new(req.mount.clone()).in_namespace(userns);
    let view = open_view(req, &bf, userns, release, r)?;
    // Entries the run registers afterwards are left to that step, which
    // keeps them when they are the same and replaces them through a
    // stand-in otherwise: removing them first would leave foreign binaries
    // with no entry for a moment.
    let registers: Vec<String> = planned
        .iter()
        .flat_map(|p| &p.steps)
        .filter_map(|s| match s {
            Step::Register { target, .. } => Some(target.entry_name()),
            _ => None,
        })
        .collect();
    let mut changes = Changes {
        bf: &bf,
        view,
        dry_run: req.dry_run,
        installed: req.installed.as_ref(),
        qemu_version: env.get("QUS_QEMU_VERSION").filter(|v| !v.is_empty()),
        registers,
        records: Vec::new(),
    };

    if req.list {
        list(changes.view.entries(), r);
    }
    for removal in &req.remove {
        changes.remove(removal, r);
    }
    if let Some(p) = &planned {
        // The call without arguments (also setup-qemu-action's status call)
        // keeps what is registered with more flags than it asks for too.
        let superset = req.dialect == Dialect::Default;
        for step in &p.steps {
            if let Step::Register {
                target,
                interpreter,
                flags,
            } = step
            {
                changes.register(target, interpreter, *flags, superset, r);
            }
        }
    }

    let registrations = std::mem::take(&mut changes.records);
    let after = if req.dry_run {
        Ok(changes.view.into_entries())
    } else {
        bf.entries()
    };
    let entries = match after {
        Ok(e) => e,
        Err(e) => {
            r.fail(&e.to_string());
            return None;
        }
    };
    if req.status_json {
        let qus = QusStatus {
            version: env!("CARGO_PKG_VERSION").to_string(),
            host: machine.clone(),
            user_namespace: userns != Userns::Initial,
            host_sees_entries: userns != Userns::Private,
            dry_run: req.dry_run,
            installs: req
                .installed
                .as_ref()
                .map(|i| i.files.clone())
                .unwrap_or_default(),
            registrations,
            warnings: r.warnings.clone(),
        };
        r.out(&apply::status_of(&entries, &machine, qus).to_json());
    }
    Some(entries)
}

/// Whether an interpreter is there for the plan: on disk, or among those
/// `qus register` installs for this run (not written yet in a dry run).
fn present(req: &Request) -> impl Fn(&str) -> bool + '_ {
    move |p: &str| Path::new(p).exists() || req.installed.as_ref().is_some_and(|i| i.provides(p))
}

/// Mounts binfmt_misc (a dry run only says it would) and reads its entries;
/// unmounted in a dry run, binfmt_misc has none the run would see.
fn open_view(
    req: &Request,
    bf: &Binfmt,
    userns: Userns,
    release: Option<(u32, u32)>,
    r: &mut Reporter<'_>,
) -> Option<View> {
    let mounted_here = if req.dry_run {
        if !bf.is_mounted() {
            // The run's own refusal, so the dry run fails where it would.
            if let Err(e) = bf.check_mount_point() {
                r.fail(&e.to_string());
                return None;
            }
            r.say(&format!("would mount binfmt_misc at {}", bf.mount_point()));
        }
        false
    } else {
        match bf.ensure_mounted() {
            Ok(m) => m,
            Err(e) => {
                r.fail(&e.to_string());
                return None;
            }
        }
    };
    if userns == Userns::Private {
        r.warn(&format!(
            "this process runs in a user namespace, so {} is that namespace's own binfmt_misc (Linux 6.7+): the host will not see these registrations; to register for the host, run qus register as root on it, or a rootful engine with --privileged",
            bf.mount_point()
        ));
    } else if mounted_here
        && req.register.is_some()
        && host::at_least(release, host::PRIVATE_BINFMT_MISC_SINCE)
    {
        r.say(&apply::unmount_note(bf.mount_point()));
    }
    if !bf.is_mounted() {
        return Some(View::default());
    }
    match bf.entries() {
        Ok(e) => Some(View::new(e)),
        Err(e) => {
            r.fail(&e.to_string());
            None
        }
    }
}

/// dbhi's `-l`: one line per entry.
fn list(entries: &[EntryInfo], r: &mut Reporter<'_>) {
    for e in entries {
        let mut line = e.name_bytes().to_vec();
        line.extend_from_slice(
            format!(
                " {} {} {}\n",
                if e.enabled { "enabled" } else { "disabled" },
                if e.flags.is_empty() { "-" } else { &e.flags },
                e.interpreter.as_deref().unwrap_or("-")
            )
            .as_bytes(),
        );
        r.out_bytes(&line);
    }
}

/// A registration [`run_request`] would make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// The target.
    pub target: &'static Target,
    /// Its interpreter path.
    pub interpreter: String,
    /// Flags for its line.
    pub flags: Flags,
}

/// The registrations `req` asks for on this host, planned exactly as
/// [`run_request`] plans them, without writing anything: `qus register`
/// asks which interpreters are missing before it installs any.
pub fn planned(req: &Request, env: &Env) -> Result<Vec<Planned>, Error> {
    let Some(sel) = &req.register else {
        return Ok(Vec::new());
    };
    let machine = host::detect(env)?.machine;
    let dir = resolve_dir(&req.interpreter);
    let input = PlanInput {
        interpreter: &req.interpreter,
        dir: &dir,
        flags: req.flags,
        host_target: table::host_target(&machine),
        host_family: table::host_family(&machine),
        ignore_family: req.ignore_family,
        for_export: !req.exports.is_empty(),
        installed: req.installed.as_ref().map(|i| i.dir.as_str()),
    };
    let p = plan(sel, &input, &present(req));
    Ok(p.steps
        .into_iter()
        .filter_map(|s| match s {
            Step::Register {
                target,
                interpreter,
                flags,
            } => Some(Planned {
                target,
                interpreter,
                flags,
            }),
            _ => None,
        })
        .collect())
}

fn report_plan_notes(
    p: &Plan,
    machine: &str,
    family: &str,
    registering: bool,
    r: &mut Reporter<'_>,
) {
    if let Some(dir) = &p.no_emulator_in {
        if registering {
            r.say(&format!(
                "note: no emulator in {dir}: registering every target without F, so the interpreters must exist at that path wherever foreign binaries run"
            ));
        } else {
            r.say(&format!(
                "note: no emulator in {dir}: exporting every target"
            ));
        }
    }
    for step in &p.steps {
        match step {
            Step::Skip(t) => r.say(&format!(
                "skipping qemu-{}: the host ({machine}) is in family {family} and runs it natively; --ignore-family registers it anyway",
                t.name
            )),
            Step::Native(t) => r.say(&format!(
                "skipping qemu-{}: it is the host's own architecture ({machine}); registering it would hand every native binary to QEMU",
                t.name
            )),
            Step::Unknown(n) => r.fail(&Error::UnknownTarget(n.clone()).to_string()),
            Step::Register { .. } => {}
        }
    }
}

/// What a replaced entry was, for the messages and the status.
fn replaced_reason(old: &EntryInfo) -> String {
    format!(
        "it was {}-> {} ({})",
        if old.enabled { "" } else { "disabled " },
        old.interpreter.as_deref().unwrap_or_default(),
        old.shown_flags()
    )
}

/// One warning per target whose programs may fail on this host's page size
/// (see [`pages`]); nothing when the page size is unknown.
fn warn_page_size(targets: &[&Target], host_page: Option<u64>, r: &mut Reporter<'_>) {
    let Some(page) = host_page else { return };
    for t in targets {
        if let Some(w) = pages::warning(t, page) {
            r.warn(&w);
        }
    }
}

/// Where a run's changes go: binfmt_misc (nowhere in a dry run) and the
/// view every later decision of the run is taken from.
struct Changes<'a> {
    bf: &'a Binfmt,
    view: View,
    dry_run: bool,
    installed: Option<&'a Installed>,
    /// `QUS_QEMU_VERSION`: the QEMU of the image's interpreters.
    qemu_version: Option<&'a str>,
    /// Entries the run registers after its removals: removals leave them.
    registers: Vec<String>,
    /// One per registration, for the status.
    records: Vec<Record>,
}

impl Changes<'_> {
    /// The QEMU version of an interpreter this run writes, when known.
    fn version_of(&self, interpreter: &str) -> Option<String> {
        match self.installed.filter(|i| i.provides(interpreter)) {
            Some(i) => Some(i.qemu_version.clone()),
            None => self.qemu_version.map(str::to_string),
        }
    }

    fn record(&mut self, target: &Target, e: Option<&EntryInfo>, verdict: Verdict, reason: String) {
        self.records.push(Record {
            target: target.name.to_string(),
            interpreter: e.and_then(|e| e.interpreter.clone()).unwrap_or_default(),
            flags: e.map(|e| e.flags.clone()).unwrap_or_default(),
            qemu_version: None,
            verdict,
            reason,
        });
    }

    fn written(
        &mut self,
        target: &Target,
        interpreter: &str,
        flags: Flags,
        verdict: Verdict,
        reason: String,
    ) {
        let qemu_version = self.version_of(interpreter);
        self.records.push(Record {
            target: target.name.to_string(),
            interpreter: interpreter.to_string(),
            flags: flags.letters(),
            qemu_version,
            verdict,
            reason,
        });
    }

    fn fail(
        &mut self,
        target: &Target,
        interpreter: &str,
        flags: Flags,
        msg: String,
        r: &mut Reporter<'_>,
    ) {
        r.fail(&format!("{}: {msg}", target.entry_name()));
        self.records.push(Record {
            target: target.name.to_string(),
            interpreter: interpreter.to_string(),
            flags: flags.letters(),
            qemu_version: None,
            verdict: Verdict::Failed,
            reason: msg,
        });
    }

    fn register(
        &mut self,
        target: &Target,
        interpreter: &str,
        flags: Flags,
        superset: bool,
        r: &mut Reporter<'_>,
    ) {
        let name = target.entry_name();
        // What qus register installs for this run is not written yet in a
        // dry run; the run checks it once it is.
        let pending = self.dry_run && self.installed.is_some_and(|i| i.provides(interpreter));
        let checked = crate::line::validate_interpreter(interpreter)
            .and_then(|_| {
                if flags.fix_binary && !pending {
                    apply::check_interpreter(interpreter)
                } else {
                    Ok(())
                }
            })
            .and_then(|_| crate::line::render(target, interpreter, flags));
        let line = match checked {
            Ok(l) => l,
            Err(e) => return self.fail(target, interpreter, flags, e.to_string(), r),
        };
        let want = Want {
            target,
            interpreter,
            flags,
        };
        let old = self.view.get(&name).cloned();
        if let Some(old) = old.as_ref() {
            if judge::equivalent(old, &want, superset, &judge::same_file_here) {
                r.say(&format!(
                    "{name} is already registered -> {} ({}): kept",
                    old.interpreter.as_deref().unwrap_or_default(),
                    old.shown_flags()
                ));
                let why = "already registered the same way".to_string();
                return self.record(target, Some(old), Verdict::Kept, why);
            }
        }
        let shown = shown_flags(&flags.letters());
        let done = if self.dry_run {
            r.out(&format!("{line}\n"));
            Ok(match old {
                Some(o) => Registered::Replaced(o),
                None => Registered::New,
            })
        } else {
            let judge = apply::Judge {
                same: &|e| judge::equivalent(e, &want, superset, &judge::same_file_here),
                satisfies: &|e| judge::satisfies(e, &want),
            };
            self.bf.register_line(&name, &line, &judge)
        };
        match done {
            Ok(Registered::New) => {
                r.say(&format!("registered {name} -> {interpreter} ({shown})"));
                let why = "no entry before".to_string();
                self.written(target, interpreter, flags, Verdict::Registered, why);
            }
            Ok(Registered::Replaced(old)) => {
                let why = replaced_reason(&old);
                r.say(&format!(
                    "registered {name} -> {interpreter} ({shown}), replacing the previous entry: {why}"
                ));
                self.written(target, interpreter, flags, Verdict::Replaced, why);
            }
            Ok(Registered::Raced(e)) => {
                r.say(&format!(
                    "{name} was registered at the same time by another registration -> {} ({}): kept",
                    e.interpreter.as_deref().unwrap_or_default(),
                    e.shown_flags()
                ));
                let why = "another registration wrote it at the same time".to_string();
                self.record(target, Some(&e), Verdict::Kept, why);
                self.view.put(e);
                return;
            }
            Err(e) => return self.fail(target, interpreter, flags, e.to_string(), r),
        }
        self.view.register(target, interpreter, flags);
    }

    fn remove(&mut self, removal: &Removal, r: &mut Reporter<'_>) {
        match removal {
            Removal::AllQemu => {
                let names: Vec<OsString> = self
                    .view
                    .entries()
                    .iter()
                    .filter(|e| e.owned())
                    .map(|e| e.name.clone())
                    .collect();
                self.remove_names(&names, r);
            }
            Removal::Targets(ts) => {
                let names: Vec<OsString> = ts
                    .iter()
                    .map(|t| t.entry_name())
                    .filter(|n| self.view.get(n).is_some())
                    .map(OsString::from)
                    .collect();
                self.remove_names(&names, r);
            }
            // One item at a time, as binfmt's --uninstall goes item by item.
            Removal::Patterns(ps) => {
                for p in ps {
                    if apply::is_protected(p.as_bytes()) {
                        r.say(&format!(
                            "leaving {p} alone: qus never removes register, status or WSL's interop entries"
                        ));
                        continue;
                    }
                    let names = apply::select_names(&self.view.names(), p);
                    if names.is_empty() {
                        r.say(&format!("no binfmt_misc entry matches '{p}'"));
                    }
                    self.remove_names(&names, r);
                }
            }
        }
    }

    fn remove_names(&mut self, names: &[OsString], r: &mut Reporter<'_>) {
        for n in names {
            if self.registers.iter().any(|x| n == x.as_str()) {
                continue;
            }
            // Printable: owned names, or an exact match of a checked argument.
            let shown = n.to_string_lossy();
            if self.dry_run {
                r.say(&format!("would remove {shown}"));
                self.view.remove(n);
                continue;
            }
            match self.bf.remove(n) {
                Ok(true) => r.say(&format!("removed {shown}")),
                // Listed a moment ago, gone now: someone else removed it.
                Ok(false) => {}
                Err(e) => {
                    r.fail(&format!("{shown}: {e}"));
                    continue;
                }
            }
            self.view.remove(n);
        }
    }
}

fn export_one(
    ex: &dialect::Export,
    target: &Target,
    interpreter: &str,
    flags: Flags,
    dry_run: bool,
    r: &mut Reporter<'_>,
) {
    let name = export::file_name(ex.format, target);
    let content = match export::render(ex.format, target, interpreter, flags) {
        Ok(c) => c,
        Err(e) => return r.fail(&format!("{}: {e}", target.entry_name())),
    };
    if dry_run {
        r.out(&format!(
            "# {}/{name}\n{content}",
            ex.dir.trim_end_matches('/')
        ));
        return;
    }
    match export::write(&ex.dir, &name, &content) {
        Ok(path) => r.say(&format!("wrote {path}")),
        Err(e) => r.fail(&e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::find;

    fn interp() -> Interpreter {
        Interpreter {
            dirs: vec!["/usr/bin".into()],
            prefix: String::new(),
            suffix: "-static".into(),
        }
    }

    fn input<'a>(i: &'a Interpreter, family: &'a str, ignore: bool) -> PlanInput<'a> {
        let host_target = match family {
            "i386" => "x86_64",
            "arm" => "aarch64",
            other => other,
        };
        PlanInput {
            interpreter: i,
            dir: "/usr/bin",
            flags: Flags::PERSISTENT,
            host_target,
            host_family: family,
            ignore_family: ignore,
            for_export: false,
            installed: None,
        }
    }

    fn registered(p: &Plan) -> Vec<&str> {
        p.steps
            .iter()
            .filter_map(|s| match s {
                Step::Register { target, .. } => Some(target.name),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn all_means_present_emulators_minus_host_family() {
        let i = interp();
        let present = |p: &str| {
            [
                "/usr/bin/qemu-aarch64-static",
                "/usr/bin/qemu-x86_64-static",
                "/usr/bin/qemu-i386-static",
            ]
            .contains(&p)
        };
        let p = plan(&Selection::All, &input(&i, "i386", false), &present);
        assert_eq!(registered(&p), ["aarch64"]);
        let skipped: Vec<_> = p
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Skip(t) => Some(t.name),
                _ => None,
            })
            .collect();
        // i486 runs on qemu-i386, so it is present too.
        assert_eq!(skipped, ["i386", "i486"]);
        assert!(p.steps.contains(&Step::Native(find("x86_64").unwrap())));
        assert!(p.no_emulator_in.is_none());

        // --ignore-family adds the siblings, never the host's own target.
        let p = plan(&Selection::All, &input(&i, "i386", true), &present);
        assert_eq!(registered(&p), ["i386", "i486", "aarch64"]);
        assert!(p.steps.contains(&Step::Native(find("x86_64").unwrap())));

        let p = plan(&Selection::All, &input(&i, "arm", false), &present);
        assert_eq!(registered(&p), ["i386", "i486", "x86_64"]);
    }

    #[test]
    fn register_only_image_registers_everything_without_f() {
        let i = interp();
        let p = plan(&Selection::All, &input(&i, "i386", false), &|_| false);
        assert_eq!(p.no_emulator_in.as_deref(), Some("/usr/bin"));
        assert_eq!(registered(&p).len(), table::TARGETS.len() - 3);
        for s in &p.steps {
            if let Step::Register { flags, .. } = s {
                assert!(!flags.fix_binary);
            }
        }
        let mut exp = input(&i, "i386", false);
        exp.for_export = true;
        let p = plan(&Selection::All, &exp, &|_| false);
        assert!(p.steps.iter().all(|s| match s {
            Step::Register { flags, .. } => flags.fix_binary,
            _ => true,
        }));
    }

    #[test]
    fn named_targets_keep_order_dedupe_and_skip_family() {
        let i = interp();
        let sel = Selection::Named(vec![
            Named::Target(find("riscv64").unwrap()),
            Named::Target(find("x86_64").unwrap()),
            Named::Target(find("riscv64").unwrap()),
            Named::Unknown("nope".into()),
        ]);
        let p = plan(&sel, &input(&i, "i386", false), &|_| false);
        assert_eq!(p.steps.len(), 3);
        assert_eq!(registered(&p), ["riscv64"]);
        assert!(matches!(p.steps[1], Step::Native(_)));
        assert_eq!(p.steps[2], Step::Unknown("nope".into()));
        match &p.steps[0] {
            Step::Register {
                interpreter, flags, ..
            } => {
                assert_eq!(interpreter, "/usr/bin/qemu-riscv64-static");
                assert!(flags.fix_binary);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn installed_interpreters_fill_in_for_missing_ones_with_f() {
        let i = interp();
        let mut inp = input(&i, "i386", false);
        inp.flags = Flags::default();
        inp.installed = Some("/opt/qus/10.0/");
        let present =
            |p: &str| ["/usr/bin/qemu-arm-static", "/opt/qus/10.0/qemu-aarch64"].contains(&p);
        let p = plan(&Selection::All, &inp, &present);
        assert_eq!(registered(&p), ["arm", "aarch64"]);
        let got: Vec<(&str, bool)> = p
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Register {
                    interpreter, flags, ..
                } => Some((interpreter.as_str(), flags.fix_binary)),
                _ => None,
            })
            .collect();
        // What the host has keeps its flags; what qus installed gets F.
        assert_eq!(
            got,
            [
                ("/usr/bin/qemu-arm-static", false),
                ("/opt/qus/10.0/qemu-aarch64", true)
            ]
        );
    }

    fn run_str(args: &[&str], env: &Env) -> (i32, String, String) {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(&args, env, &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn help_version_and_usage_errors() {
        let env = Env::default();
        let (code, out, _) = run_str(&["-h"], &env);
        assert_eq!(code, 0);
        assert_eq!(out, dialect::USAGE);
        let (code, out, _) = run_str(
            &["--version"],
            &Env::from_pairs([("QUS_QEMU_VERSION", "10.0")]),
        );
        assert_eq!(code, 0);
        assert_eq!(
            out,
            format!("qus-binfmt/{} qemu/10.0\n", env!("CARGO_PKG_VERSION"))
        );
        let (code, _, err) = run_str(&["--bogus"], &env);
        assert_eq!(code, 2);
        assert!(err.starts_with("qus: error: unknown option '--bogus'"));
    }

    #[test]
    fn dry_run_prints_lines_without_touching_binfmt_misc() {
        let root = tempfile::tempdir().unwrap();
        let bin = root.path().join("usr/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("qemu-aarch64-static"), b"x").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            bin.join("qemu-aarch64-static"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let mount = root.path().join("binfmt_misc");
        std::fs::create_dir(&mount).unwrap();
        let env = Env::from_pairs([
            ("QUS_ROOT", root.path().to_str().unwrap()),
            ("QUS_HOST_ARCH", "x86_64"),
            ("QUS_BINFMT_MOUNT", mount.to_str().unwrap()),
        ]);
        let (code, out, err) = run_str(&["--", "-t", "-p"], &env);
        // dbhi dialect without -s: qemu-aarch64 (no suffix) is absent, so
        // All finds no emulator and plans every target without F.
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("note: no emulator in"));
        assert!(err.contains(&format!("would mount binfmt_misc at {}", mount.display())));
        assert!(std::fs::read_dir(&mount).unwrap().next().is_none());
        assert_eq!(out.lines().count(), table::TARGETS.len() - 3);
        assert!(out.lines().all(|l| l.ends_with(':')));
        let (code, out, _) = run_str(&["-s", "--", "-t", "-p"], &env);
        assert_eq!(code, 0);
        assert_eq!(
            out,
            format!(
                "{}\n",
                crate::line::render(
                    find("aarch64").unwrap(),
                    &format!("{}/usr/bin/qemu-aarch64-static", root.path().display()),
                    Flags::PERSISTENT
                )
                .unwrap()
            )
        );
        // Where the run would fail to mount, the dry run fails the same way.
        let gone = Env::from_pairs([
            ("QUS_ROOT", root.path().to_str().unwrap()),
            ("QUS_HOST_ARCH", "x86_64"),
            ("QUS_BINFMT_MOUNT", "/nonexistent/binfmt_misc"),
        ]);
        let (code, out, err) = run_str(&["-s", "--", "-t", "-p"], &gone);
        assert_eq!(code, EXIT_FAILED);
        assert_eq!(out, "");
        assert!(
            err.contains("/nonexistent/binfmt_misc does not exist"),
            "{err}"
        );
    }

    #[test]
    fn export_writes_files_for_planned_targets() {
        let root = tempfile::tempdir().unwrap();
        let out_dir = root.path().join("out");
        let env = Env::from_pairs([("QUS_HOST_ARCH", "aarch64")]);
        let (code, _, err) = run_str(
            &[
                "--install",
                "arm64,riscv64",
                "--export-update-binfmts",
                out_dir.to_str().unwrap(),
            ],
            &env,
        );
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("skipping qemu-aarch64"));
        let s = std::fs::read_to_string(out_dir.join("qemu-riscv64")).unwrap();
        assert!(s.contains("credentials yes\nfix_binary yes\npreserve no\n"));
        assert!(!out_dir.join("qemu-aarch64").exists());
    }
}
