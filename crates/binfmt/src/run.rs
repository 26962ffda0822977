//! One invocation, start to finish: parse, plan, apply, report.
//!
//! This is `qus register` and the test helper; the sh entrypoint implements
//! the same steps in the same order with the same messages, which the
//! differential test checks. Planning (which targets, which are skipped, with
//! which flags) is pure and separate from the writes.

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;

use crate::apply::{self, Binfmt, Registered};
use crate::dialect::{self, Env, Interpreter, Named, Removal, Request, Selection};
use crate::error::Error;
use crate::export;
use crate::line::Flags;
use crate::table::{self, Target};

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
}

/// Resolves a selection. `exists` says whether an interpreter path exists.
pub fn plan(sel: &Selection, input: &PlanInput<'_>, exists: &dyn Fn(&str) -> bool) -> Plan {
    let mut flags = input.flags;
    let mut no_emulator_in = None;
    let candidates: Vec<Named> = match sel {
        Selection::All => {
            let present: Vec<Named> = table::TARGETS
                .iter()
                .filter(|t| exists(&input.interpreter.path_in(input.dir, t)))
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
            Named::Target(t) => Step::Register {
                target: t,
                interpreter: input.interpreter.path_in(input.dir, t),
                flags,
            },
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
    let mut strings = Vec::with_capacity(args.len());
    for a in args {
        match a.to_str() {
            Some(s) => strings.push(s.to_string()),
            None => {
                let _ = writeln!(err, "qus: error: argument {a:?} is not valid UTF-8");
                return EXIT_USAGE;
            }
        }
    }
    let req = match dialect::parse(&strings, env) {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "qus: error: {e}");
            let _ = writeln!(err, "qus: run with -h for usage");
            return EXIT_USAGE;
        }
    };
    let mut r = Reporter {
        out,
        err,
        failed: false,
    };
    execute(&req, env, &mut r);
    if r.failed {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

struct Reporter<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    failed: bool,
}

impl Reporter<'_> {
    fn out(&mut self, s: &str) {
        let _ = self.out.write_all(s.as_bytes());
    }
    fn say(&mut self, s: &str) {
        let _ = writeln!(self.err, "qus: {s}");
    }
    fn fail(&mut self, s: &str) {
        self.failed = true;
        let _ = writeln!(self.err, "qus: error: {s}");
    }
}

fn execute(req: &Request, env: &Env, r: &mut Reporter<'_>) {
    if req.help {
        r.out(dialect::USAGE);
        return;
    }
    if req.version {
        r.out(&format!(
            "qus-binfmt/{} qemu/{}\n",
            env!("CARGO_PKG_VERSION"),
            env.get("QUS_QEMU_VERSION").unwrap_or("unknown")
        ));
        return;
    }
    let machine = apply::host_machine(env.get("QUS_HOST_ARCH"));
    if env.get("QUS_HOST_ARCH").is_none() {
        let claimed = apply::uname_machine();
        if claimed != machine {
            r.say(&format!(
                "note: running under emulation (uname -m says {claimed}, the kernel is {machine}): the host is {machine}"
            ));
        }
    }
    let host_target = table::host_target(&machine).to_string();
    let family = table::host_family(&machine).to_string();
    let dir = resolve_dir(&req.interpreter);
    let exists = |p: &str| Path::new(p).exists();

    if !req.exports.is_empty() {
        if let Some(sel) = &req.register {
            let input = PlanInput {
                interpreter: &req.interpreter,
                dir: &dir,
                flags: req.flags,
                host_target: &host_target,
                host_family: &family,
                ignore_family: req.ignore_family,
                for_export: true,
            };
            let p = plan(sel, &input, &exists);
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
        return;
    }

    let bf = Binfmt::new(req.mount.clone());
    let need_mount = req.list
        || req.status_json
        || (!req.dry_run && (!req.remove.is_empty() || req.register.is_some()));
    if need_mount {
        let mounted_here = match bf.ensure_mounted() {
            Ok(m) => m,
            Err(e) => {
                r.fail(&e.to_string());
                return;
            }
        };
        if apply::in_user_namespace() {
            r.say(&format!(
                "warning: this process runs in a user namespace, so {} is that namespace's own binfmt_misc (Linux 6.7+): the host will not see these registrations (rootless engine or userns-remap?)",
                bf.mount_point()
            ));
        } else if mounted_here
            && req.register.is_some()
            && !req.dry_run
            && apply::kernel_drops_entries_on_unmount()
        {
            r.say(&apply::unmount_note(bf.mount_point()));
        }
    }

    if req.list {
        match bf.entries() {
            Ok(entries) => {
                for e in entries {
                    r.out(&format!(
                        "{} {} {} {}\n",
                        e.name,
                        if e.enabled { "enabled" } else { "disabled" },
                        if e.flags.is_empty() { "-" } else { &e.flags },
                        e.interpreter.as_deref().unwrap_or("-")
                    ));
                }
            }
            Err(e) => r.fail(&e.to_string()),
        }
    }

    for removal in &req.remove {
        remove(&bf, removal, req.dry_run, r);
    }

    if let Some(sel) = &req.register {
        let input = PlanInput {
            interpreter: &req.interpreter,
            dir: &dir,
            flags: req.flags,
            host_target: &host_target,
            host_family: &family,
            ignore_family: req.ignore_family,
            for_export: false,
        };
        let p = plan(sel, &input, &exists);
        report_plan_notes(&p, &machine, &family, true, r);
        for step in &p.steps {
            if let Step::Register {
                target,
                interpreter,
                flags,
            } = step
            {
                register_one(&bf, target, interpreter, *flags, req.dry_run, r);
            }
        }
    }

    if req.status_json {
        match bf.status(&machine) {
            Ok(s) => r.out(&s.to_json()),
            Err(e) => r.fail(&e.to_string()),
        }
    }
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

fn register_one(
    bf: &Binfmt,
    target: &Target,
    interpreter: &str,
    flags: Flags,
    dry_run: bool,
    r: &mut Reporter<'_>,
) {
    let name = target.entry_name();
    let checked = crate::line::validate_interpreter(interpreter)
        .and_then(|_| {
            if flags.fix_binary {
                apply::check_interpreter(interpreter)
            } else {
                Ok(())
            }
        })
        .and_then(|_| crate::line::render(target, interpreter, flags));
    let line = match checked {
        Ok(l) => l,
        Err(e) => return r.fail(&format!("{name}: {e}")),
    };
    if dry_run {
        r.out(&format!("{line}\n"));
        return;
    }
    let shown = if flags.letters().is_empty() {
        "no flags".to_string()
    } else {
        format!("flags {}", flags.letters())
    };
    match bf.register_line(&name, &line) {
        Ok(Registered::New) => r.say(&format!("registered {name} -> {interpreter} ({shown})")),
        Ok(Registered::Replaced) => r.say(&format!(
            "registered {name} -> {interpreter} ({shown}), replacing the previous entry"
        )),
        Err(e) => r.fail(&format!("{name}: {e}")),
    }
}

fn remove(bf: &Binfmt, removal: &Removal, dry_run: bool, r: &mut Reporter<'_>) {
    match removal {
        Removal::AllQemu => match bf.entries() {
            Ok(es) => {
                let names: Vec<String> = es
                    .into_iter()
                    .map(|e| e.name)
                    .filter(|n| n.starts_with("qemu-"))
                    .collect();
                remove_names(bf, &names, dry_run, r);
            }
            Err(e) => r.fail(&e.to_string()),
        },
        Removal::Targets(ts) => {
            let names: Vec<String> = ts
                .iter()
                .map(|t| t.entry_name())
                .filter(|n| bf.exists(n))
                .collect();
            remove_names(bf, &names, dry_run, r);
        }
        // One pattern at a time, as binfmt's --uninstall goes item by item.
        Removal::Patterns(ps) => {
            for p in ps {
                match bf.select(p) {
                    Ok(v) if v.is_empty() => r.say(&format!("no binfmt_misc entry matches '{p}'")),
                    Ok(v) => remove_names(bf, &v, dry_run, r),
                    Err(e) => r.fail(&e.to_string()),
                }
            }
        }
    }
}

fn remove_names(bf: &Binfmt, names: &[String], dry_run: bool, r: &mut Reporter<'_>) {
    for n in names {
        if dry_run {
            r.say(&format!("would remove {n}"));
            continue;
        }
        match bf.remove(n) {
            Ok(true) => r.say(&format!("removed {n}")),
            // Listed a moment ago, gone now: someone else removed it.
            Ok(false) => {}
            Err(e) => r.fail(&format!("{n}: {e}")),
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
        let env = Env::from_pairs([
            ("QUS_ROOT", root.path().to_str().unwrap()),
            ("QUS_HOST_ARCH", "x86_64"),
            ("QUS_BINFMT_MOUNT", "/nonexistent/binfmt_misc"),
        ]);
        let (code, out, err) = run_str(&["--", "-t", "-p"], &env);
        // dbhi dialect without -s: qemu-aarch64 (no suffix) is absent, so
        // All finds no emulator and plans every target without F.
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("note: no emulator in"));
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
