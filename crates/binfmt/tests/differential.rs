//! The image's sh entrypoint and `qus register`'s Rust path, against a real
//! kernel: for a table of argument cases in all three dialects, each runs in
//! a fresh private binfmt_misc and must leave byte-identical entries, the same
//! stdout, the same stderr and the same exit status. Every case also checks
//! a few facts on its own, so the two cannot agree on something wrong.
//!
//! The entrypoint runs under this machine's busybox, and under the busybox every other host
//! of the default matrix ships (images/qus.lock's pins), each through this machine's QEMU
//! in the same private binfmt_misc, against the Rust path told the same host: every case
//! under one shell of each busybox version, word size and byte order this machine's is not
//! (loong64's 1.38, s390x's big-endian, i386's 32 bits on amd64), the other hosts in turn;
//! `QUS_TEST_SHELLS=all` runs every case under every host's busybox.
//!
//! Needs: Linux 6.7+ (private binfmt_misc per user namespace), util-linux
//! `unshare`, `dpkg-deb`, and the Debian packages `ci/fetch-test-debs` downloads
//! into `$QUS_TEST_DEBS` (default `~/.cache/qus/test-debs`): busybox-static of every
//! host, bookworm's qemu-user-static and trixie's qemu-user for this machine.

mod support;

use std::fs;
use std::path::Path;
use support::*;

/// One argument case.
struct Case {
    name: &'static str,
    layout: Layout,
    env: Vec<(&'static str, String)>,
    /// Shell run first in the namespace (`$BB`, `$M`, `$ROOT` are set; `OUT`
    /// is replaced by the export directory).
    before: String,
    setup: Vec<Vec<String>>,
    /// Shell run after the setup commands, before the command.
    between: String,
    args: Vec<String>,
    /// Shell words appended to the command line as they are.
    raw_args: String,
    /// Shell run after the command; its stdout must hold `post_has`.
    post: String,
    no_mount_ns: bool,
    code: i32,
    /// (entry, flags) that must be registered afterwards.
    present: Vec<(&'static str, &'static str)>,
    /// Entries that must exist afterwards, whatever their flags.
    present_any: Vec<&'static str>,
    /// Entries that must not be registered afterwards.
    absent: Vec<&'static str>,
    /// Substrings stdout must contain.
    stdout_has: Vec<&'static str>,
    /// Substrings stderr must contain.
    stderr_has: Vec<&'static str>,
    /// Substrings stderr must not contain.
    stderr_lacks: Vec<&'static str>,
    /// Substrings of the binfmt_misc dump (`ROOT` is the image root).
    dump_has: Vec<&'static str>,
    /// Substrings of the `post` snippet's output.
    post_has: Vec<&'static str>,
    /// stdout must be one valid JSON document.
    json: bool,
    /// Directory both runs export into (compared file by file).
    export_dir: Option<tempfile::TempDir>,
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|a| a.to_string()).collect()
}

fn case(name: &'static str, args: &[&str]) -> Case {
    Case {
        name,
        layout: Layout::Full,
        // Pretend an x86_64 host everywhere, so expectations hold on any
        // machine (the real host's own target is never in the image).
        env: vec![("QUS_HOST_ARCH", "x86_64".to_string())],
        before: String::new(),
        setup: vec![],
        between: String::new(),
        args: s(args),
        raw_args: String::new(),
        post: String::new(),
        no_mount_ns: false,
        code: 0,
        present: vec![],
        present_any: vec![],
        absent: vec![],
        stdout_has: vec![],
        stderr_has: vec![],
        stderr_lacks: vec![],
        dump_has: vec![],
        post_has: vec![],
        json: false,
        export_dir: None,
    }
}

impl Case {
    fn layout(mut self, l: Layout) -> Self {
        self.layout = l;
        self
    }
    fn env(mut self, k: &'static str, v: &str) -> Self {
        self.env.retain(|(kk, _)| *kk != k);
        self.env.push((k, v.to_string()));
        self
    }
    fn no_env(mut self, k: &'static str) -> Self {
        self.env.retain(|(kk, _)| *kk != k);
        self
    }
    fn before(mut self, sh: &str) -> Self {
        self.before.push_str(sh);
        self.before.push('\n');
        self
    }
    fn setup(mut self, args: &[&str]) -> Self {
        self.setup.push(s(args));
        self
    }
    fn between(mut self, sh: &str) -> Self {
        self.between.push_str(sh);
        self.between.push('\n');
        self
    }
    fn raw_args(mut self, words: &str) -> Self {
        self.raw_args = words.to_string();
        self
    }
    fn post(mut self, sh: &str) -> Self {
        self.post = sh.to_string();
        self
    }
    fn no_mount_ns(mut self) -> Self {
        self.no_mount_ns = true;
        self
    }
    fn code(mut self, c: i32) -> Self {
        self.code = c;
        self
    }
    fn present(mut self, e: &[(&'static str, &'static str)]) -> Self {
        self.present.extend_from_slice(e);
        self
    }
    fn present_any(mut self, e: &[&'static str]) -> Self {
        self.present_any.extend_from_slice(e);
        self
    }
    fn absent(mut self, e: &[&'static str]) -> Self {
        self.absent.extend_from_slice(e);
        self
    }
    fn stdout(mut self, s: &'static str) -> Self {
        self.stdout_has.push(s);
        self
    }
    fn stderr(mut self, s: &'static str) -> Self {
        self.stderr_has.push(s);
        self
    }
    fn stderr_lacks(mut self, s: &'static str) -> Self {
        self.stderr_lacks.push(s);
        self
    }
    fn dump(mut self, s: &'static str) -> Self {
        self.dump_has.push(s);
        self
    }
    fn post_has(mut self, s: &'static str) -> Self {
        self.post_has.push(s);
        self
    }
    fn json(mut self) -> Self {
        self.json = true;
        self
    }
    /// `OUT` (in arguments and snippets) is a fresh export directory.
    fn exporting(mut self) -> Self {
        self.export_dir = Some(tempfile::tempdir().unwrap());
        self
    }
}

fn read_exports(case: &Case) -> Vec<(String, String)> {
    let Some(d) = &case.export_dir else {
        return vec![];
    };
    let out = d.path().join("out");
    let mut files: Vec<(String, String)> = fs::read_dir(&out)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| {
                    let meta = fs::symlink_metadata(e.path()).unwrap();
                    let content = if meta.file_type().is_symlink() {
                        format!("-> {}", fs::read_link(e.path()).unwrap().display())
                    } else if meta.is_dir() {
                        "(directory)".to_string()
                    } else {
                        fs::read_to_string(e.path()).unwrap()
                    };
                    (e.file_name().to_string_lossy().into_owned(), content)
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    // Both runs must start from the same directory: the `before` snippet
    // makes it again when it needs one.
    let _ = fs::remove_dir_all(&out);
    files
}

/// The export directory of a case (empty when it exports nothing).
fn out_dir(c: &Case) -> String {
    c.export_dir
        .as_ref()
        .map(|d| d.path().join("out").to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// The [`Spec`] of a case whose image root is `root`.
fn spec_of<'a>(c: &'a Case, root: &Path) -> Spec<'a> {
    let r = root.to_str().unwrap().to_string();
    let out = out_dir(c);
    // Arguments and expectations spell the root ROOT; the snippets have
    // it as $ROOT already. OUT is the export directory in both.
    let subst = |x: &str| x.replace("ROOT", &r).replace("OUT", &out);
    let snippet = |x: &str| x.replace("OUT", &quote(&out));
    Spec {
        env: c.env.iter().map(|(k, v)| (*k, subst(v))).collect(),
        before: snippet(&c.before),
        setup: c
            .setup
            .iter()
            .map(|a| a.iter().map(|w| subst(w)).collect())
            .collect(),
        between: snippet(&c.between),
        args: c.args.iter().map(|a| subst(a)).collect(),
        raw_args: snippet(&c.raw_args),
        post: snippet(&c.post),
        no_mount_ns: c.no_mount_ns,
        shell: None,
    }
}

/// Runs a case with the sh entrypoint then with the Rust path, and requires identical
/// results; returns the sh outcome, its exported files and the context for messages.
fn run_both(
    c: &Case,
    root: &Path,
    spec: &Spec<'_>,
    shell: &str,
) -> (Outcome, Vec<(String, String)>, String) {
    let mut sh = run_spec(Impl::Sh, root, spec);
    let sh_files = read_exports(c);
    let rust = run_spec(Impl::Rust, root, spec);
    let rust_files = read_exports(c);
    let ctx = format!(
        "case '{}' {:?} under {shell}\n--- sh stderr:\n{}\n--- rust stderr:\n{}",
        c.name, c.args, sh.stderr, rust.stderr
    );
    let told_host = spec.env.iter().any(|(k, _)| *k == "QUS_HOST_ARCH");
    if let (Some(shell), false) = (spec.shell, told_host) {
        sh.stderr = without_emulation_note(&sh.stderr, shell, &ctx);
    }
    assert_eq!(sh.dump, rust.dump, "binfmt_misc entries differ: {ctx}");
    assert_eq!(sh.stdout, rust.stdout, "stdout differs: {ctx}");
    assert_eq!(sh.stderr, rust.stderr, "stderr differs: {ctx}");
    assert_eq!(sh.code, rust.code, "exit status differs: {ctx}");
    assert_eq!(sh.post, rust.post, "post-run state differs: {ctx}");
    assert_eq!(sh_files, rust_files, "exported files differ: {ctx}");
    (sh, sh_files, ctx)
}

/// An emulated shell that finds the host itself (no `QUS_HOST_ARCH`) says it runs under
/// emulation, which the native Rust path has no reason to say: `stderr` without that note,
/// once it is checked to name the emulated target's family and this machine.
fn without_emulation_note(stderr: &str, shell: &Shell, ctx: &str) -> String {
    let Some((target, _)) = &shell.emulator else {
        return stderr.to_string();
    };
    let machine = host_machine();
    let tail = format!(", the kernel is {machine}): the host is {machine}");
    let mut out = String::new();
    for line in stderr.split_inclusive('\n') {
        let note = line
            .strip_prefix("qus: note: running under emulation (uname -m says ")
            .and_then(|l| l.trim_end().strip_suffix(tail.as_str()));
        match note {
            Some(claimed) => assert_eq!(
                qus_binfmt::table::host_family(claimed),
                target.family,
                "the emulation note names another architecture: {ctx}"
            ),
            None => out.push_str(line),
        }
    }
    out
}

/// Runs the case under a foreign host's busybox, as that host's image runs it, against the
/// Rust path told the same host: the cases' own `QUS_HOST_ARCH=x86_64` becomes that host's
/// `uname -m` (what the case checks on its own assumes x86_64, so only the two are compared).
fn check_under(c: &Case, shell: &Shell) {
    let root = make_root_with_busybox(c.layout, &shell.busybox);
    let mut spec = spec_of(c, root.path());
    spec.shell = Some(shell);
    for (k, v) in &mut spec.env {
        if *k == "QUS_HOST_ARCH" && v == "x86_64" {
            *v = shell.machine.to_string();
        }
    }
    run_both(c, root.path(), &spec, &shell.label());
}

/// Runs every case with both implementations, requires identical results,
/// checks each case's own facts, and returns the sh outcomes. Then each case
/// runs under the other hosts' busyboxes [`shells_for_case`] picks.
fn check(cases: Vec<Case>) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for (k, c) in cases.into_iter().enumerate() {
        let root = make_root(c.layout);
        let r = root.path().to_str().unwrap().to_string();
        let out = out_dir(&c);
        let subst = |x: &str| x.replace("ROOT", &r).replace("OUT", &out);
        let spec = spec_of(&c, root.path());
        let (sh, files, ctx) = run_both(&c, root.path(), &spec, "this machine's busybox");
        assert_eq!(sh.code, c.code, "exit status: {ctx}");
        for (name, flags) in &c.present {
            assert!(
                has_entry(&sh.dump, name, flags),
                "{name} with flags '{flags}' missing: {ctx}\n--- dump:\n{}",
                sh.dump
            );
        }
        for name in &c.present_any {
            assert!(
                entry_names(&sh.dump).iter().any(|n| n == name),
                "{name} should still be registered: {ctx}\n--- dump:\n{}",
                sh.dump
            );
        }
        for name in &c.absent {
            assert!(
                !entry_names(&sh.dump).iter().any(|n| n == name),
                "{name} should not be registered: {ctx}\n--- dump:\n{}",
                sh.dump
            );
        }
        for want in &c.stdout_has {
            let want = subst(want);
            assert!(
                sh.stdout.contains(&want),
                "stdout lacks {want:?}: {ctx}\n--- stdout:\n{}",
                sh.stdout
            );
        }
        for want in &c.stderr_has {
            let want = subst(want);
            assert!(sh.stderr.contains(&want), "stderr lacks {want:?}: {ctx}");
        }
        for unwanted in &c.stderr_lacks {
            assert!(
                !sh.stderr.contains(unwanted),
                "stderr has {unwanted:?}: {ctx}"
            );
        }
        for want in &c.dump_has {
            let want = subst(want);
            assert!(
                sh.dump.contains(&want),
                "dump lacks {want:?}: {ctx}\n--- dump:\n{}",
                sh.dump
            );
        }
        for want in &c.post_has {
            assert!(
                sh.post.contains(want),
                "post lacks {want:?}: {ctx}\n--- post:\n{}",
                sh.post
            );
        }
        if c.json {
            if let Err(e) = serde_json::from_str::<serde_json::Value>(&sh.stdout) {
                panic!(
                    "stdout is not JSON ({e}): {ctx}\n--- stdout:\n{}",
                    sh.stdout
                );
            }
        }
        if c.export_dir.is_some() && c.code == 0 && !c.args.iter().any(|a| a == "--dry-run") {
            assert!(!files.is_empty(), "nothing exported: {ctx}");
        }
        for shell in shells_for_case(k) {
            check_under(&c, shell);
        }
        outcomes.push(sh);
    }
    outcomes
}

#[test]
fn default_request_registers_every_emulator_persistently() {
    let single = single_target();
    check(vec![
        case("no arguments", &[])
            .json()
            .present(&[
                ("qemu-arm", "F"),
                ("qemu-riscv64", "F"),
                ("qemu-s390x", "F"),
            ])
            .absent(&["qemu-i386", "qemu-i486", "qemu-x86_64", "qemu-alpha"])
            .stderr("skipping qemu-i386: the host (x86_64) is in family i386"),
        case("no arguments, register-only image", &[])
            .layout(Layout::RegisterOnly)
            .present(&[
                ("qemu-arm", ""),
                ("qemu-loongarch64", ""),
                ("qemu-mipsn32el", ""),
            ])
            .absent(&["qemu-x86_64"])
            .stderr("no emulator in"),
        case("no arguments, one-target image", &[])
            .layout(Layout::Single)
            .present(&[(
                if single == "aarch64" {
                    "qemu-aarch64"
                } else {
                    "qemu-x86_64"
                },
                "F",
            )])
            .absent(&["qemu-arm", "qemu-riscv64"]),
        case("--ignore-family", &["--ignore-family"])
            .present(&[("qemu-i386", "F"), ("qemu-i486", "F")]),
        case("QUS_IGNORE_FAMILY=1", &[])
            .env("QUS_IGNORE_FAMILY", "1")
            .present(&[("qemu-i386", "F")]),
        case("another host family", &[])
            .env("QUS_HOST_ARCH", "riscv64")
            .present(&[("qemu-i386", "F"), ("qemu-arm", "F")])
            .absent(&["qemu-riscv64"]),
        // A loong64 host (uname -m: loongarch64) never registers its own family.
        case("a loong64 host", &[])
            .env("QUS_HOST_ARCH", "loongarch64")
            .present(&[("qemu-riscv64", "F"), ("qemu-s390x", "F")])
            .absent(&["qemu-loongarch64"])
            .stderr("skipping qemu-loongarch64: it is the host's own architecture"),
        case("help", &["-h"])
            .stdout("dbhi/qus:")
            .stdout("tonistiigi/binfmt"),
        case("dry run of the default request", &["--dry-run"])
            .stdout(":qemu-riscv64:M::\\x7f\\x45\\x4c\\x46\\x02\\x01")
            .stdout("/usr/bin/qemu-riscv64-static:F\n"),
        case("bad option", &["--bogus"])
            .code(2)
            .stderr("unknown option '--bogus'"),
    ]);
}

#[test]
fn dbhi_qus_dialect() {
    check(vec![
        case("-s -- -p aarch64", &["-s", "--", "-p", "aarch64"])
            .present(&[("qemu-aarch64", "F")])
            .absent(&["qemu-arm"]),
        case(
            "persistent + credential",
            &["-s", "--", "-p", "-c", "aarch64", "riscv64"],
        )
        .present(&[("qemu-aarch64", "OCF"), ("qemu-riscv64", "OCF")]),
        case("grouped -pc", &["-s", "--", "-pc", "arm"]).present(&[("qemu-arm", "OCF")]),
        case("--preserve-argv0", &["-s", "--", "--preserve-argv0", "arm"])
            .present(&[("qemu-arm", "P")]),
        case("-p yes", &["-s", "--", "-p", "yes", "riscv64"]).present(&[("qemu-riscv64", "F")]),
        case("-s alone registers all without F", &["-s"])
            .present(&[("qemu-arm", ""), ("qemu-s390x", "")]),
        case("-t dry run of all", &["-s", "--", "-t", "-p"])
            .stdout("/qus/bin/qemu-arm-static:F\n")
            .absent(&["qemu-arm"]),
        case("replacing an entry", &["-s", "--", "-p", "aarch64"])
            .setup(&["-s", "--", "aarch64"])
            .present(&[("qemu-aarch64", "F")])
            .stderr("replacing the previous entry"),
        case("-l lists only", &["-l"])
            .setup(&["-s", "--", "-p", "aarch64", "arm"])
            .stdout("qemu-aarch64 enabled F ")
            .stdout("qemu-arm enabled F "),
        case("-l -- -t", &["-l", "--", "-t"])
            .setup(&["-s", "--", "-p", "aarch64"])
            .stdout("qemu-aarch64 enabled F "),
        case("-- -r removes all", &["--", "-r"])
            .setup(&["-s", "--", "-p", "aarch64", "arm", "riscv64"])
            .absent(&["qemu-aarch64", "qemu-arm", "qemu-riscv64"])
            .stderr("removed qemu-arm"),
        case("-- -r TARGET", &["--", "-r", "arm"])
            .setup(&["-s", "--", "-p", "aarch64", "arm"])
            .present(&[("qemu-aarch64", "F")])
            .absent(&["qemu-arm"]),
        case("-r -e resets and stops", &["-r", "-e"])
            .setup(&["-s", "--", "-p", "aarch64", "arm"])
            .absent(&["qemu-aarch64", "qemu-arm"]),
        case(
            "-t targets in front",
            &["-s", "-t", "aarch64,riscv64", "--", "-p"],
        )
        .present(&[("qemu-aarch64", "F"), ("qemu-riscv64", "F")])
        .absent(&["qemu-arm"]),
        case("no -s: interpreter missing", &["--", "-p", "aarch64"])
            .code(1)
            .stderr("qus: error: qemu-aarch64: interpreter ")
            .absent(&["qemu-aarch64"]),
        case("host family skipped", &["-s", "--", "-p", "x86_64", "arm"])
            .present(&[("qemu-arm", "F")])
            .absent(&["qemu-x86_64"])
            .stderr("skipping qemu-x86_64"),
        case(
            "--ignore-family never registers the host's own target",
            &["--ignore-family", "-s", "--", "-p", "x86_64", "i386"],
        )
        .present(&[("qemu-i386", "F")])
        .absent(&["qemu-x86_64"])
        .stderr("skipping qemu-x86_64: it is the host's own architecture (x86_64)"),
        case("unknown target", &["-s", "--", "-p", "nope"])
            .code(2)
            .stderr("unknown target 'nope'"),
        case("bare target before --", &["aarch64"]).code(2),
        case("-Q and -F", &["--", "-Q", "/opt/q", "-F", "-x", "arm"]).present(&[("qemu-arm", "")]),
        case("bad interpreter directory", &["--", "-Q", "/a:b", "arm"])
            .code(2)
            .stderr("qus: error: bad value for -Q: '/a:b' (letters, digits and /._+-@%,=~ only)"),
    ]);
}

#[test]
fn multiarch_dialect() {
    check(vec![
        case("--reset -p yes", &["--reset", "-p", "yes"])
            .setup(&["--install", "arm64"])
            .present(&[("qemu-aarch64", "F"), ("qemu-arm", "F")])
            // Left to the registration, which replaces it (other flags) through a
            // stand-in instead of removing it first.
            .stderr_lacks("removed qemu-aarch64")
            .stderr("registered qemu-aarch64 -> ROOT/usr/bin/qemu-aarch64-static (flags F), replacing the previous entry: it was -> ROOT/usr/bin/qemu-aarch64-static (flags OCF)"),
        case(
            "credential + persistent",
            &["--reset", "-p", "yes", "--credential", "yes"],
        )
        .present(&[("qemu-arm", "OCF")]),
        case("preserve-argv0", &["-p", "yes", "--preserve-argv0", "yes"])
            .present(&[("qemu-riscv64", "PF")]),
        case("--reset alone", &["--reset"]).present(&[("qemu-arm", "")]),
        case("= forms and a target", &["--persistent=yes", "aarch64"])
            .present(&[("qemu-aarch64", "F")])
            .absent(&["qemu-arm"]),
        case("bad yes/no", &["-p", "maybe"])
            .code(2)
            .stderr("-p takes yes or no"),
        case("--qemu-suffix", &["--qemu-suffix", "", "-p", "yes", "arm"])
            .code(1)
            .stderr("qemu-arm: interpreter "),
    ]);
}

#[test]
fn tonistiigi_binfmt_dialect() {
    check(vec![
        case("--install all", &["--install", "all"])
            .present(&[("qemu-aarch64", "OCF"), ("qemu-arm", "OCF")])
            .absent(&["qemu-i386"])
            .stdout("\"emulators\": [\n    \"qemu-aarch64\",")
            .stdout("\"linux/arm64\""),
        case("--install platforms", &["--install", "arm64,riscv64,arm"])
            .present(&[
                ("qemu-aarch64", "OCF"),
                ("qemu-riscv64", "OCF"),
                ("qemu-arm", "OCF"),
            ])
            .absent(&["qemu-s390x"]),
        case(
            "linux/ prefix + preserve argv0",
            &["--install", "linux/arm64"],
        )
        .env("QEMU_PRESERVE_ARGV0", "1")
        .present(&[("qemu-aarch64", "POCF")]),
        case("unknown platform", &["--install", "arm64,nope"])
            .code(1)
            .present(&[("qemu-aarch64", "OCF")])
            .stderr("unknown target 'nope'"),
        case("--uninstall exact", &["--uninstall", "qemu-aarch64"])
            .setup(&["--install", "all"])
            .absent(&["qemu-aarch64"])
            .present(&[("qemu-arm", "OCF")]),
        case("--uninstall glob", &["--uninstall", "qemu-*"])
            .setup(&["--install", "all"])
            .absent(&["qemu-aarch64", "qemu-arm", "qemu-riscv64"])
            // binfmt's JSON for no entry at all.
            .stdout("\"emulators\": null")
            .json(),
        case(
            "--uninstall platform + unknown",
            &["--uninstall", "arm64,foo"],
        )
        .setup(&["--install", "all"])
        .absent(&["qemu-aarch64"])
        .stderr("no binfmt_misc entry matches 'foo'"),
        case("--version", &["--version"]).stdout("qus-binfmt/"),
        // The images set a Debian version, epoch and all.
        case("--version with the image's QEMU version", &["--version"])
            .env("QUS_QEMU_VERSION", "1:10.0.13+ds-0+deb13u1")
            .stdout(" qemu/1:10.0.13+ds-0+deb13u1\n"),
        case("QEMU_BINARY_PREFIX", &["--install", "riscv64"])
            .env("QEMU_BINARY_PREFIX", "x-")
            .code(1)
            .stderr("x-qemu-riscv64-static does not exist"),
        case("QEMU_BINARY_PATH", &["-install=arm"])
            .env("QEMU_BINARY_PATH", "/opt/none")
            .code(1)
            .stderr("interpreter /opt/none/qemu-arm-static does not exist"),
        case(
            "--mount",
            &["--mount", "/proc/sys/fs/binfmt_misc", "--install", "arm64"],
        )
        .present(&[("qemu-aarch64", "OCF")]),
        case("register-only image drops F", &["--install", "all"])
            .layout(Layout::RegisterOnly)
            .present(&[("qemu-aarch64", "OC"), ("qemu-hexagon", "OC")]),
        // A dry run mounts nothing, and its status is what the run would leave.
        case(
            "dry run still prints status",
            &["--dry-run", "--install", "all"],
        )
        .stdout(":qemu-arm:M::")
        .stdout("\"linux/arm64\"")
        .stdout("\"dry_run\": true")
        .stderr("would mount binfmt_misc at ")
        .dump("(not mounted)"),
        case(
            "dry run of an uninstall sees what the run sees",
            &["--dry-run", "--uninstall", "qemu-aarch64,qemu-*"],
        )
        .setup(&["--install", "arm64,riscv64"])
        .stderr("would remove qemu-aarch64")
        .stderr("would remove qemu-riscv64")
        .stdout("\"emulators\": null")
        .present(&[("qemu-aarch64", "OCF"), ("qemu-riscv64", "OCF")]),
        case(
            "dry run of a reset and register",
            &["--dry-run", "--reset", "-p", "yes"],
        )
        .setup(&["--install", "arm64"])
        .stderr_lacks("would remove qemu-aarch64")
        .stderr(
            "replacing the previous entry: it was -> ROOT/usr/bin/qemu-aarch64-static (flags OCF)",
        )
        .stdout("/usr/bin/qemu-aarch64-static:F\n")
        .present(&[("qemu-aarch64", "OCF")]),
        case("Go flag: bad flag", &["-install", "arm64", "-nope"])
            .code(2)
            .stderr("flag provided but not defined: -nope"),
    ]);
}

#[test]
fn persistence_exports() {
    check(vec![
        case("binfmt.d for all", &["--export-binfmt-d", "OUT"])
            .exporting()
            .stderr("wrote "),
        case(
            "update-binfmts via binfmt",
            &[
                "--install",
                "arm64,riscv64",
                "--export-update-binfmts",
                "OUT",
            ],
        )
        .exporting(),
        case(
            "multiarch --debian",
            &["--debian", "--exportdir", "OUT", "-p", "yes"],
        )
        .exporting(),
        case(
            "multiarch --systemd CPU",
            &["--systemd", "aarch64", "--exportdir", "OUT"],
        )
        .exporting(),
        case(
            "dbhi -- -s -e",
            &["-s", "--", "-p", "-s", "-e", "OUT", "riscv64"],
        )
        .exporting(),
        case(
            "export dry run",
            &[
                "--dry-run",
                "--export-binfmt-d=OUT",
                "-s",
                "--",
                "-p",
                "arm",
            ],
        )
        .exporting()
        .stdout("/qemu-arm.conf\n:qemu-arm:M::"),
        case(
            "register-only image exports every target",
            &["--export-update-binfmts", "OUT"],
        )
        .layout(Layout::RegisterOnly)
        .exporting()
        .stderr("exporting every target"),
    ]);
    // Spot-check the formats themselves once.
    let c = case(
        "content",
        &["--install", "arm64", "--export-update-binfmts", "OUT"],
    )
    .exporting();
    let root = make_root(Layout::Full);
    let env: Vec<(&str, &str)> = c.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = c.export_dir.as_ref().unwrap().path().join("out");
    let args: Vec<String> = c
        .args
        .iter()
        .map(|a| a.replace("OUT", out.to_str().unwrap()))
        .collect();
    let o = run_in_namespace(Impl::Sh, root.path(), &env, &[], &args, "");
    assert_eq!(o.code, 0, "{}", o.stderr);
    let files = read_exports(&c);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, "qemu-aarch64");
    assert!(files[0].1.starts_with("package qemu-aarch64\ninterpreter "));
    assert!(files[0]
        .1
        .ends_with("credentials yes\nfix_binary yes\npreserve no\n"));
}

#[test]
fn registered_emulator_runs_a_foreign_binary() {
    // aarch64's busybox through qemu-aarch64-static (x86_64's through
    // qemu-x86_64-static on an arm64 host), all inside the namespace.
    let target = single_target();
    let arch = if target == "aarch64" {
        "arm64"
    } else {
        "amd64"
    };
    let b = binaries();
    let foreign = b.foreign_busybox[arch].to_str().unwrap().to_string();
    let root = make_root(Layout::Single);
    for imp in [Impl::Sh, Impl::Rust] {
        let probe = root.path().join(format!("uname-{imp:?}"));
        let extra = format!("'{foreign}' uname -m > '{}' 2>&1", probe.to_str().unwrap());
        let o = run_in_namespace(imp, root.path(), &[], &[], &[], &extra);
        assert_eq!(o.code, 0, "{imp:?}: {}", o.stderr);
        assert_eq!(
            fs::read_to_string(&probe).unwrap().trim(),
            target,
            "{imp:?}"
        );
        // And without a registration the foreign binary does not run. The namespace gets an
        // empty binfmt_misc of its own first: with none mounted, the kernel would look the
        // binary up in the host's, which another job may have registered qemu-aarch64 in.
        let empty = format!("\"$BB\" mount -t binfmt_misc binfmt_misc $M && {extra}");
        let o = run_in_namespace(imp, root.path(), &[], &[], &s(&["-h"]), &empty);
        assert_eq!(o.code, 0);
        assert_ne!(
            fs::read_to_string(&probe).unwrap().trim(),
            target,
            "{imp:?}"
        );
    }
}

#[test]
fn host_binfmt_misc_is_untouched() {
    let before = host_binfmt_snapshot();
    let root = make_root(Layout::Full);
    for imp in [Impl::Sh, Impl::Rust] {
        let o = run_in_namespace(imp, root.path(), &[], &[], &s(&["--install", "all"]), "");
        assert_eq!(o.code, 0, "{}", o.stderr);
        assert!(o
            .stderr
            .contains("warning: this process runs in a user namespace"));
    }
    assert_eq!(before, host_binfmt_snapshot());
}

#[test]
fn unprivileged_and_missing_binfmt_misc_errors_say_what_to_do() {
    // Run as nobody, outside any namespace, with the mount point moved to a
    // scratch directory: the mount attempt fails, nothing else is touched.
    let root = make_root(Layout::Full);
    let scratch = tempfile::tempdir().unwrap();
    let scratch_dir = scratch.path().to_str().unwrap().to_string();
    let cases: [(&str, &str); 2] = [
        (
            scratch_dir.as_str(),
            "qus: error: cannot mount binfmt_misc at SCRATCH: EPERM: not allowed: run the container with --privileged (or --cap-add SYS_ADMIN), or run qus register as root\n",
        ),
        (
            "/nonexistent/binfmt_misc",
            "qus: error: /nonexistent/binfmt_misc does not exist: the kernel has no binfmt_misc (CONFIG_BINFMT_MISC) or /proc is not mounted; on the host try: modprobe binfmt_misc\n",
        ),
    ];
    for (mount, want) in cases {
        let want = want.replace("SCRATCH", &scratch_dir);
        for imp in [Impl::Sh, Impl::Rust] {
            let o = run_unprivileged(imp, root.path(), mount, &s(&["--install", "arm64"]));
            assert_eq!(o.code, 1, "{imp:?}: {}", o.stderr);
            assert_eq!(o.stderr, want, "{imp:?}");
            assert_eq!(o.stdout, "", "{imp:?}");
        }
    }
    assert!(fs::read_dir(scratch.path()).unwrap().next().is_none());
}

#[test]
fn foreign_image_under_emulation_knows_the_real_host() {
    // The other architecture's image: its busybox runs through the emulator
    // registered first, so `uname -m` lies. /proc/sys/kernel/arch does not;
    // without it (hidden here, as on kernels before 6.1) the executable the
    // kernel runs for the shell, read by a child, is the emulator: an ELF of
    // the host. Either way the host's own architecture is never planned.
    let target = single_target();
    let arch = if target == "aarch64" {
        "arm64"
    } else {
        "amd64"
    };
    let b = binaries();
    let host = host_target();
    let machine = host_machine();
    for hide_kernel_arch in [false, true] {
        if !hide_kernel_arch && fs::metadata("/proc/sys/kernel/arch").is_err() {
            eprintln!("skipped: this kernel has no /proc/sys/kernel/arch");
            continue;
        }
        let host_root = make_root(Layout::Single);
        let foreign_root = make_root_with_busybox(Layout::RegisterOnly, &b.foreign_busybox[arch]);
        let fr = foreign_root.path().to_str().unwrap();
        let probe = host_root.path().join("probe");
        let p = probe.to_str().unwrap();
        let hide = if hide_kernel_arch {
            "\"$BB\" mount --bind /dev/null /proc/sys/kernel/arch\n"
        } else {
            ""
        };
        let extra = format!(
            "{hide}QUS_ROOT='{fr}' '{fr}/qus/busybox' sh '{fr}/qus/register' --dry-run --ignore-family >'{p}.out' 2>'{p}.err'; echo $? >'{p}.code'"
        );
        let o = run_in_namespace(Impl::Sh, host_root.path(), &[], &[], &[], &extra);
        assert_eq!(o.code, 0, "{}", o.stderr);
        let read = |ext: &str| fs::read_to_string(format!("{p}.{ext}")).unwrap();
        let (out, err) = (read("out"), read("err"));
        assert_eq!(read("code").trim(), "0", "{err}");
        let ctx = format!("hidden kernel.arch: {hide_kernel_arch}\n{err}");
        assert!(
            err.contains(&format!(
                "note: running under emulation (uname -m says {target}, the kernel is {machine})"
            )),
            "{ctx}"
        );
        assert!(
            err.contains(&format!(
                "skipping qemu-{host}: it is the host's own architecture"
            )),
            "{ctx}"
        );
        assert!(!out.contains(&format!(":qemu-{host}:")), "{out}");
        assert!(out.contains(&format!(":qemu-{target}:")), "{out}");
        // The status it prints calls the real host's platforms native.
        let json = &out[out.find('{').expect("status JSON")..];
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["qus"]["host"], machine.as_str(), "{json}");
    }
}

#[test]
fn every_host_busybox_runs_the_entrypoint_here() {
    // The shell of every host of the default matrix runs on this machine, the differential
    // cases run under each of them (`check`), and each is the busybox images/qus.lock pins.
    let foreign = foreign_shells();
    assert_eq!(foreign.len() + 1, pinned_shells().len(), "{foreign:#?}");
    let mut seen = std::collections::BTreeSet::new();
    for k in 0..foreign.len() {
        seen.extend(shells_for_case(k).iter().map(|s| s.host.as_str()));
    }
    assert_eq!(seen.len(), foreign.len(), "hosts that no case runs under");
    for shell in foreign {
        let root = make_root_with_busybox(Layout::RegisterOnly, &shell.busybox);
        let spec = Spec {
            env: vec![("QUS_HOST_ARCH", shell.machine.to_string())],
            args: s(&["--version"]),
            post: "\"$ROOT/qus/busybox\" uname -m; \"$ROOT/qus/busybox\" 2>&1 | \"$BB\" head -n 1"
                .to_string(),
            shell: Some(shell),
            ..Spec::default()
        };
        let o = run_spec(Impl::Sh, root.path(), &spec);
        let ctx = format!("{}: {}{}", shell.label(), o.stderr, o.post);
        assert_eq!(o.code, 0, "{ctx}");
        assert!(o.stdout.starts_with("qus-binfmt/"), "{ctx}");
        let (uname, banner) = o.post.split_once('\n').expect("two lines");
        assert_eq!(
            qus_binfmt::table::host_family(uname),
            qus_binfmt::table::host_family(shell.machine),
            "{ctx}"
        );
        assert!(
            banner.contains(&format!("(Debian {})", shell.version)),
            "{ctx}"
        );
    }
}

/// Registers foreign entries (not qus's) the way other packages do, plus
/// names with bytes that break naive shell code and JSON.
const FOREIGN: &str = r#""$BB" mount -t binfmt_misc binfmt_misc $M
printf ':jar:E::jar::/usr/bin/jexec:' >$M/register
printf ':python3.11:M::\247\015\015\012::/usr/bin/python3.11:' >$M/register
printf ':qemu-foo:M::\177ELFfoo::/usr/bin/qemu-foo:' >$M/register
printf ':WSLInterop:M::MZ::/init:P' >$M/register
printf ':a b:E::ab::/bin/ab:' >$M/register
printf ':q"uote:E::qu::/bin/qu:' >$M/register
printf ':back\\slash:E::bs::/bin/bs:' >$M/register
printf ':\377x:E::ff::/bin/ff:' >$M/register
printf ':n\nl:E::nl::/bin/nl:' >$M/register
"#;

const FOREIGN_NAMES: &[&str] = &[
    "jar",
    "python3.11",
    "qemu-foo",
    "WSLInterop",
    "a b",
    "q\"uote",
];

#[test]
fn foreign_entries_survive_every_reset_and_uninstall_spelling() {
    let spelling = |name, args: &[&str]| {
        case(name, args)
            .before(FOREIGN)
            .setup(&["-s", "--", "-p", "aarch64", "arm", "riscv64"])
            .present_any(FOREIGN_NAMES)
            .stderr_lacks("removed jar")
            .stderr_lacks("removed python")
            .stderr_lacks("removed qemu-foo")
    };
    let all = &["qemu-aarch64", "qemu-arm", "qemu-riscv64"];
    check(vec![
        spelling("--uninstall 'qemu-*'", &["--uninstall", "qemu-*"])
            .absent(all)
            .json(),
        spelling("--uninstall '*'", &["--uninstall", "*"]).absent(all),
        spelling(
            "--uninstall '[[:alpha:]]*' (a class)",
            &["--uninstall", "[[:alpha:]]*"],
        )
        .absent(all),
        spelling(
            "--uninstall 'qemu-[!r]*' (a negated set)",
            &["--uninstall", "qemu-[!r]*"],
        )
        .absent(&["qemu-aarch64", "qemu-arm"])
        .present_any(&["qemu-riscv64"]),
        spelling("--uninstall arm64 (a platform)", &["--uninstall", "arm64"])
            .absent(&["qemu-aarch64"])
            .present_any(&["qemu-arm", "qemu-riscv64"]),
        spelling(
            "--uninstall linux/arm64,riscv64",
            &["--uninstall", "linux/arm64,riscv64"],
        )
        .absent(&["qemu-aarch64", "qemu-riscv64"]),
        // What the reset registers again is left to the registration, which
        // keeps the same entry (dbhi's /qus/bin path is the same file).
        spelling("--reset -p yes", &["--reset", "-p", "yes"])
            .present(&[("qemu-aarch64", "F"), ("qemu-s390x", "F")])
            .stderr("qemu-riscv64 is already registered -> ROOT/qus/bin/qemu-riscv64-static (flags F): kept")
            .stderr_lacks("removed qemu-"),
        spelling("--reset alone", &["--reset"]).present(&[("qemu-aarch64", "")]),
        spelling("dbhi -- -r", &["--", "-r"]).absent(all),
        spelling("dbhi -r -e", &["-r", "-e"]).absent(all),
        spelling("dbhi -r (then register all)", &["-r", "-s"]).present(&[("qemu-arm", "")]),
        // A foreign entry goes when named exactly, and only then.
        case("--uninstall jar (named exactly)", &["--uninstall", "jar"])
            .before(FOREIGN)
            .absent(&["jar"])
            .present_any(&["python3.11", "qemu-foo"])
            .stderr("removed jar"),
        case(
            "--uninstall qemu-foo (named exactly)",
            &["--uninstall", "qemu-foo,python*"],
        )
        .before(FOREIGN)
        .absent(&["qemu-foo"])
        .present_any(&["python3.11"])
        .stderr("no binfmt_misc entry matches 'python*'"),
        case(
            "--uninstall WSLInterop (never)",
            &["--uninstall", "WSLInterop,status"],
        )
        .before(FOREIGN)
        .present_any(&["WSLInterop"])
        .stderr("leaving WSLInterop alone")
        .stderr("leaving status alone"),
    ]);
}

#[test]
fn odd_entry_names_list_and_print_as_valid_json() {
    let outs = check(vec![
        case("status with odd names", &["--uninstall", "nothing-here"])
            .before(FOREIGN)
            .json()
            .stdout("\"a b\"")
            .stdout("\"q\\\"uote\"")
            .stdout("\"back\\\\slash\"")
            .stdout("\"n\\u000al\"")
            .stdout("\"\\u00ffx\""),
        case("-l with odd names", &["-l"])
            .before(FOREIGN)
            .stdout("a b enabled - /bin/ab\n")
            .stdout("n\nl enabled - /bin/nl\n"),
    ]);
    let v: serde_json::Value = serde_json::from_str(&outs[0].stdout).unwrap();
    let emulators: Vec<&str> = v["emulators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    // Sorted by bytes, every entry (binfmt's meaning), escapes decoded.
    assert_eq!(
        emulators,
        [
            "WSLInterop",
            "a b",
            "back\\slash",
            "jar",
            "n\nl",
            "python3.11",
            "q\"uote",
            "qemu-foo",
            "\u{ff}x"
        ]
    );
    // Foreign and unknown entries never make a platform "supported".
    assert_eq!(
        v["supported"],
        serde_json::json!(["linux/amd64", "linux/386"])
    );
}

#[test]
fn arguments_and_environment_pass_one_byte_rule_in_both() {
    check(vec![
        // What reached `eval` in the old sh (and ran `id`): refused.
        case("injection attempt", &["--install", "a x};touch${IFS}ROOT/pwned;:${x"])
            .code(2)
            .stderr("qus: error: bad value for --install item: 'a x};touch${IFS}")
            .post("[ -e \"$ROOT/pwned\" ] || echo clean")
            .post_has("clean")
            .absent(&["qemu-arm"]),
        case("item with a space", &["--install", "foo arm"])
            .code(2)
            .stderr("bad value for --install item: 'foo arm'")
            .absent(&["qemu-arm"]),
        case("quote in a pattern", &["--uninstall", "a'b"])
            .code(2)
            .stderr("bad value for --uninstall item: 'a'b'"),
        case("collating element", &["--uninstall", "[[.a.]]*"])
            .code(2)
            .stderr("collating elements [. .] are not supported"),
        case("bytes that are not UTF-8", &["--uninstall"])
            .raw_args("\"$(printf 'qemu-\\377')\"")
            .code(2)
            .stderr("qus: error: argument 2 is not printable ASCII"),
        case("a newline in an argument", &["-s", "--", "-p"])
            .raw_args("\"$(printf 'arm\\naarch64')\"")
            .code(2)
            .stderr("argument 4 is not printable ASCII"),
        case("a target with a space (dbhi)", &["-s", "--", "-p", "arm aarch64"])
            .code(2)
            .stderr("bad value for target: 'arm aarch64'")
            .absent(&["qemu-arm"]),
        case("an environment value with a newline", &["--install", "arm"])
            .env("QEMU_BINARY_PREFIX", "x\ny")
            .code(2)
            .stderr("environment variable QEMU_BINARY_PREFIX is not printable ASCII"),
        // Not UTF-8: the Rust side must refuse it as sh does, not panic.
        case("an environment value that is not UTF-8", &["--install", "arm"])
            .between("export QEMU_BINARY_PREFIX=\"$(printf 'x\\377')\"")
            .code(2)
            .stderr("qus: error: environment variable QEMU_BINARY_PREFIX is not printable ASCII"),
        case("a prefix that climbs out", &["--install", "arm"])
            .env("QEMU_BINARY_PREFIX", "../../tmp/x")
            .code(2)
            .stderr("bad value for QEMU_BINARY_PREFIX: '../../tmp/x'"),
        case("a suffix with a slash", &["--", "-F", "/../x", "arm"])
            .code(2)
            .stderr("bad value for -F: '/../x'"),
        case("a host name with a space", &["--install", "arm"])
            .env("QUS_HOST_ARCH", "x86 64")
            .code(2)
            .stderr("bad value for QUS_HOST_ARCH"),
        case("an interpreter directory with '..'", &["--", "-p", "-Q", "/usr/bin/../../tmp", "arm"])
            .code(1)
            .stderr("qemu-arm: bad interpreter path '/usr/bin/../../tmp/qemu-arm': it must not contain '.' or '..' components")
            .absent(&["qemu-arm"]),
    ]);
}

#[test]
fn replacing_an_entry_is_safe() {
    check(vec![
        // The new line is refused by the kernel (a directory passes `test -x`
        // but is no interpreter): refused as the stand-in, before the old
        // entry was touched, which stays as it was, F and all.
        case("a refused line leaves the old entry in place", &["--", "-p", "-Q", "ROOT/bad", "aarch64"])
            .before("\"$BB\" mkdir -p \"$ROOT/bad/qemu-aarch64\"")
            .setup(&["-s", "--", "-p", "-c", "aarch64"])
            .code(1)
            .stderr("qus: error: qemu-aarch64: cannot write /proc/sys/fs/binfmt_misc/register: EACCES: the kernel could not open the interpreter (not executable, or on a noexec mount); the previous entry was left in place\n")
            .present(&[("qemu-aarch64", "OCF")])
            .absent(&["qemu-aarch64.qus-1"])
            .dump("interpreter ROOT/qus/bin/qemu-aarch64-static\n"),
        case("a disabled entry stays disabled", &["--", "-p", "-Q", "ROOT/bad", "aarch64"])
            .before("\"$BB\" mkdir -p \"$ROOT/bad/qemu-aarch64\"")
            .setup(&["-s", "--", "-p", "aarch64"])
            .between("echo 0 >$M/qemu-aarch64")
            .code(1)
            .stderr("the previous entry was left in place")
            .dump("== qemu-aarch64\ndisabled\ninterpreter ROOT/qus/bin/qemu-aarch64-static\nflags: F\n"),
        // The old entry's interpreter (F kept it open) is gone from this
        // filesystem: nothing ever tries to register it again from here, and
        // the entry keeps working.
        case("an old entry whose interpreter is gone here stays", &["--", "-p", "-Q", "ROOT/bad", "aarch64"])
            .before("\"$BB\" mkdir -p \"$ROOT/bad/qemu-aarch64\" \"$ROOT/old\"; \"$BB\" cp \"$ROOT/usr/bin/qemu-aarch64-static\" \"$ROOT/old/qemu-aarch64\"")
            .setup(&["--", "-p", "-Q", "ROOT/old", "aarch64"])
            .between("\"$BB\" rm \"$ROOT/old/qemu-aarch64\"")
            .code(1)
            .stderr("EACCES: the kernel could not open the interpreter (not executable, or on a noexec mount); the previous entry was left in place\n")
            .dump("interpreter ROOT/old/qemu-aarch64\n"),
        // No F before Linux 4.8: refused before anything is removed.
        case("kernel without F refuses, removes nothing", &["--reset", "-p", "yes"])
            .env("QUS_KERNEL_RELEASE", "3.10.0-1160.el7.x86_64")
            .setup(&["-s", "--", "aarch64"])
            .code(1)
            .stderr("qus: error: Linux 3.10 does not support the F flag (Linux 4.8+), so nothing was changed; --allow-without-f registers without it")
            .stderr_lacks("removed")
            .present(&[("qemu-aarch64", "")])
            .absent(&["qemu-arm"]),
        case("kernel without F, allowed", &["--reset", "-p", "yes", "--allow-without-f"])
            .env("QUS_KERNEL_RELEASE", "4.7.10")
            .stderr("note: Linux 4.7 does not support the F flag (Linux 4.8+): registering without it")
            .present(&[("qemu-arm", ""), ("qemu-aarch64", "")]),
        case("kernel with F", &["--reset", "-p", "yes"])
            .env("QUS_KERNEL_RELEASE", "4.8.0")
            .present(&[("qemu-arm", "F")]),
        case("kernel without F, no F asked", &["-s", "--", "arm"])
            .env("QUS_KERNEL_RELEASE", "3.10.0")
            .present(&[("qemu-arm", "")]),
    ]);
}

#[test]
fn exports_never_write_through_links_or_into_open_directories() {
    check(vec![
        case("a symlinked export target is replaced, not followed", &["--export-binfmt-d", "OUT", "-s", "--", "-p", "aarch64"])
            .before("\"$BB\" mkdir -p OUT; echo keep >\"$ROOT/victim\"; \"$BB\" ln -s \"$ROOT/victim\" OUT/qemu-aarch64.conf")
            .exporting()
            .post("\"$BB\" cat \"$ROOT/victim\"; [ -L OUT/qemu-aarch64.conf ] || echo regular")
            .post_has("keep\nregular\n")
            .stderr("wrote "),
        case("an export destination that is a directory", &["--export-binfmt-d", "OUT", "-s", "--", "-p", "aarch64"])
            .before("\"$BB\" mkdir -p OUT/qemu-aarch64.conf")
            .exporting()
            .code(1)
            .stderr("/qemu-aarch64.conf: it is a directory"),
        case("a directory anyone may write to", &["--export-binfmt-d", "OUT", "-s", "--", "-p", "aarch64"])
            .before("\"$BB\" mkdir -p OUT; \"$BB\" chmod 777 OUT")
            .exporting()
            .code(1)
            .stderr("is writable by others without the sticky bit: refusing to write exports there"),
        case("a sticky directory anyone may write to", &["--export-binfmt-d", "OUT", "-s", "--", "-p", "aarch64"])
            .before("\"$BB\" mkdir -p OUT; \"$BB\" chmod 1777 OUT")
            .exporting()
            .post("\"$BB\" ls -a OUT")
            .post_has(".\n..\nqemu-aarch64.conf\n"),
        case("'..' prefix on exports", &["--export-binfmt-d", "OUT"])
            .env("QEMU_BINARY_PREFIX", "../../../tmp/x")
            .exporting()
            .code(2)
            .stderr("bad value for QEMU_BINARY_PREFIX"),
        case("'..' in the interpreter directory of an export", &["-s", "--", "-p", "-Q", "/usr/bin/../../tmp", "-s", "-e", "OUT", "riscv64"])
            .exporting()
            .code(1)
            .stderr("it must not contain '.' or '..' components"),
    ]);
}

#[test]
fn no_argument_call_registers_then_prints_binfmt_status() {
    let outs = check(vec![
        case("setup-qemu-action: --install all, then no arguments", &[])
            .setup(&["--install", "all"])
            .json()
            .present(&[("qemu-aarch64", "OCF"), ("qemu-arm", "OCF")])
            .stderr("qus: qemu-aarch64 is already registered -> ROOT")
            .stderr_lacks("registered qemu-"),
        case("no arguments replaces what differs", &[])
            .setup(&["-s", "--", "aarch64"])
            .json()
            .present(&[("qemu-aarch64", "F")])
            .stderr("replacing the previous entry"),
        case("no arguments, nothing before", &[]).json(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&outs[2].stdout).unwrap();
    let supported: Vec<&str> = v["supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    // Native platforms of the (pretended) x86_64 host, then every emulated
    // platform the full image registered, in the table's order.
    if host_target() == "x86_64" {
        assert_eq!(
            supported,
            [
                "linux/amd64",
                "linux/386",
                "linux/arm/v7",
                "linux/arm/v6",
                "linux/ppc64le",
                "linux/mips64le",
                "linux/s390x",
                "linux/arm64",
                "linux/riscv64",
                "linux/loong64"
            ]
        );
    }
    assert_eq!(supported[..2], ["linux/amd64", "linux/386"]);
    assert_eq!(v["qus"]["host"], "x86_64");
    // These runs are in a private user namespace: the status says so.
    assert_eq!(v["qus"]["user_namespace"], true);
    assert_eq!(v["qus"]["host_sees_entries"], false);
    assert!(v["qus"]["warnings"][0]
        .as_str()
        .unwrap()
        .contains("the host will not see these registrations"));
}

#[test]
fn user_namespace_messages_fit_the_kernel() {
    let scratch = "/tmp";
    check(vec![
        // Linux 6.7+: the namespace's own binfmt_misc; one warning line.
        case("private instance (6.7+)", &["-s", "--", "-p", "arm"])
            .stderr("qus: warning: this process runs in a user namespace, so /proc/sys/fs/binfmt_misc is that namespace's own binfmt_misc (Linux 6.7+): the host will not see these registrations; to register for the host, run qus register as root on it, or a rootful engine with --privileged\n"),
        // Before 6.7 there is no private instance: no such warning.
        case("no private instance before 6.7", &["-s", "--", "-p", "arm"])
            .env("QUS_KERNEL_RELEASE", "6.6.0")
            .stderr_lacks("warning"),
        // EPERM in a user namespace: what a rootless user can do about it.
        case("EPERM in a user namespace (6.7+)", &["--install", "arm"])
            .env("QUS_BINFMT_MOUNT", scratch)
            .no_mount_ns()
            .code(1)
            .stderr("qus: error: cannot mount binfmt_misc at /tmp: EPERM: not allowed in this user namespace: a rootless engine needs --privileged (or --cap-add SYS_ADMIN) for a binfmt_misc of its own, which the host does not see; to register for the host, run qus register as root on it, or a rootful engine with --privileged\n"),
        case("EPERM in a user namespace before 6.7", &["--install", "arm"])
            .env("QUS_BINFMT_MOUNT", scratch)
            .env("QUS_KERNEL_RELEASE", "5.15.0")
            .no_mount_ns()
            .code(1)
            .stderr("EPERM: not allowed: this process runs in a user namespace (rootless engine or userns-remap), where Linux before 6.7 cannot register; register from the host instead: qus register as root, or a rootful engine with --privileged\n"),
    ]);
}

#[test]
fn host_comes_from_what_emulation_does_not_rewrite() {
    let host = host_target();
    // Without /proc/sys/kernel/arch (kernels before 6.1, simulated by
    // hiding it), both read the ELF the kernel runs.
    let no_kernel_arch = "\"$BB\" mount --bind /dev/null /proc/sys/kernel/arch";
    let host_arg: &'static str = Box::leak(host.clone().into_boxed_str());
    let outs = check(vec![
        case(
            "no kernel.arch: the running executable tells",
            &["--ignore-family", "-s", "--", "-t", "-p", host_arg, "riscv64"],
        )
        .no_env("QUS_HOST_ARCH")
        .before(no_kernel_arch)
        .stdout(":qemu-riscv64:M::")
        .stderr_lacks("running under emulation"),
        // Nothing to read at all: refuse rather than guess.
        case("no way to tell: refused", &["-s", "--", "-t", "-p", "aarch64"])
            .no_env("QUS_HOST_ARCH")
            .before(no_kernel_arch)
            .before("\"$BB\" mount -t tmpfs none /proc")
            .code(1)
            .stderr("qus: error: cannot tell the host's architecture: /proc/sys/kernel/arch is missing (Linux 6.1+ has it) and the running executable cannot be read through /proc; set QUS_HOST_ARCH to the host's uname -m\n"),
    ]);
    let err = &outs[0].stderr;
    assert!(
        err.contains(&format!(
            "skipping qemu-{host}: it is the host's own architecture"
        )),
        "{err}"
    );
}

/// The registrations of every dialect keep an entry that is already what they would write,
/// replace a different one through a stand-in (never a moment without an entry), leave
/// to the registration what a reset or uninstall would remove and register again, and say
/// which of registered, kept, replaced or failed happened, on stderr and in the status.
#[test]
fn the_same_entry_is_kept_and_a_different_one_replaced_through_a_stand_in() {
    let outs = check(vec![
        case("binfmt --install twice: kept", &["--install", "arm64"])
            .setup(&["--install", "arm64"])
            .json()
            .present(&[("qemu-aarch64", "OCF")])
            .stderr("qus: qemu-aarch64 is already registered -> ROOT/usr/bin/qemu-aarch64-static (flags OCF): kept\n")
            .stdout("\"result\": \"kept\", \"reason\": \"already registered the same way\""),
        case("dbhi twice: kept", &["-s", "--", "-p", "aarch64"])
            .setup(&["-s", "--", "-p", "aarch64"])
            .stderr("qemu-aarch64 is already registered -> ROOT/qus/bin/qemu-aarch64-static (flags F): kept"),
        // /qus/bin is a link to /usr/bin: the same file, so the same entry.
        case("multiarch after dbhi, one file by two paths: kept", &["-p", "yes", "aarch64"])
            .setup(&["-s", "--", "-p", "aarch64"])
            .stderr("qemu-aarch64 is already registered -> ROOT/qus/bin/qemu-aarch64-static (flags F): kept")
            .dump("interpreter ROOT/qus/bin/qemu-aarch64-static\n"),
        case("other flags: replaced through a stand-in", &["--install", "arm64"])
            .setup(&["-s", "--", "-p", "aarch64"])
            .json()
            .present(&[("qemu-aarch64", "OCF")])
            .absent(&["qemu-aarch64.qus-1"])
            .stderr("registered qemu-aarch64 -> ROOT/usr/bin/qemu-aarch64-static (flags OCF), replacing the previous entry: it was -> ROOT/qus/bin/qemu-aarch64-static (flags F)\n")
            .stdout("\"result\": \"replaced\", \"reason\": \"it was -> ROOT/qus/bin/qemu-aarch64-static (flags F)\""),
        case("a disabled entry is replaced", &["-s", "--", "-p", "aarch64"])
            .setup(&["-s", "--", "-p", "aarch64"])
            .between("echo 0 >$M/qemu-aarch64")
            .present(&[("qemu-aarch64", "F")])
            .stderr("replacing the previous entry: it was disabled -> ROOT/qus/bin/qemu-aarch64-static (flags F)"),
        // Another replacement holds the first stand-in name: the next one is taken, and
        // the other's is left alone.
        case("a stand-in name in use: the next one", &["--install", "arm64"])
            .setup(&["-s", "--", "-p", "aarch64"])
            .between("printf ':qemu-aarch64.qus-1:M::\\177ELFxx::/bin/other:' >$M/register")
            .present(&[("qemu-aarch64", "OCF")])
            .present_any(&["qemu-aarch64.qus-1"])
            .absent(&["qemu-aarch64.qus-2"])
            .dump("== qemu-aarch64.qus-1\nenabled\ninterpreter /bin/other\n"),
        case("a reset keeps what it registers again", &["--reset", "-p", "yes"])
            .setup(&["--reset", "-p", "yes"])
            .stderr("qemu-aarch64 is already registered -> ROOT/usr/bin/qemu-aarch64-static (flags F): kept")
            .stderr_lacks("removed qemu-")
            .stderr_lacks("registered qemu-"),
        case("--uninstall and --install of one entry: kept", &["--uninstall", "qemu-*", "--install", "arm64"])
            .setup(&["--install", "arm64,arm"])
            .json()
            .present(&[("qemu-aarch64", "OCF")])
            .absent(&["qemu-arm"])
            .stderr_lacks("removed qemu-aarch64")
            .stderr("removed qemu-arm\n"),
        case("no entry: registered, with the image's QEMU version", &["--install", "arm64"])
            .env("QUS_QEMU_VERSION", "1:10.0.3+ds-1")
            .json()
            .stdout("{\"target\": \"aarch64\", \"interpreter\": \"ROOT/usr/bin/qemu-aarch64-static\", \"flags\": \"OCF\", \"qemu_version\": \"1:10.0.3+ds-1\", \"result\": \"registered\", \"reason\": \"no entry before\"}"),
        case("a failure is a record too", &["--install", "arm64"])
            .env("QEMU_BINARY_PATH", "ROOT/nowhere")
            .json()
            .code(1)
            .stdout("\"result\": \"failed\", \"reason\": \"interpreter ROOT/nowhere/qemu-aarch64-static does not exist (F opens it now, so it must exist here)\""),
    ]);
    let v: serde_json::Value = serde_json::from_str(&outs[0].stdout).unwrap();
    // binfmt's own fields are still there for setup-qemu-action.
    assert!(v["supported"].is_array() && v["emulators"].is_array());
    let r = &v["qus"]["registrations"];
    assert_eq!(r.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(r[0]["target"], "aarch64");
    assert_eq!(r[0]["flags"], "OCF");
    assert_eq!(r[0]["result"], "kept");
    assert!(r[0]["qemu_version"].is_null());
}

/// A registration the host cannot see (this process's own binfmt_misc, in a user
/// namespace) fails unless asked for; page sizes larger than a guest's are warned about.
#[test]
fn private_registrations_fail_and_large_pages_warn() {
    check(vec![
        case("a private registration fails", &["--install", "arm64"])
            .env("QUS_ALLOW_PRIVATE", "0")
            .code(1)
            .stderr("qus: error: this process runs in a user namespace, so /proc/sys/fs/binfmt_misc is that namespace's own binfmt_misc (Linux 6.7+): the host would not see these registrations, so nothing was registered;")
            .absent(&["qemu-aarch64"]),
        case("--allow-private registers it", &["--install", "arm64", "--allow-private"])
            .env("QUS_ALLOW_PRIVATE", "0")
            .present(&[("qemu-aarch64", "OCF")])
            .stderr("the host will not see these registrations"),
        case("an uninstall in private needs no permission", &["--uninstall", "qemu-*"])
            .env("QUS_ALLOW_PRIVATE", "0")
            .json(),
        case("16K pages warn for fixed 4K guests", &["--install", "arm64,riscv64,ppc64le"])
            .env("QUS_PAGE_SIZE", "16384")
            .json()
            .stderr("qus: warning: qemu-riscv64: this host's pages are 16K, larger than the 4K pages QEMU's user mode gives riscv64 programs")
            .stderr_lacks("qemu-aarch64: this host's pages")
            .stderr_lacks("qemu-ppc64le: this host's pages")
            .stdout("qemu-riscv64: this host's pages are 16K"),
        case("64K pages warn for 8K guests too", &["-s", "--", "-p", "aarch64", "riscv64"])
            .env("QUS_PAGE_SIZE", "065536")
            .stderr("qemu-riscv64: this host's pages are 64K, larger than the 4K pages")
            .stderr_lacks("qemu-aarch64: this host's pages"),
        case("4K pages warn for nothing", &["--install", "arm64,riscv64"])
            .env("QUS_PAGE_SIZE", "4096")
            .stderr_lacks("this host's pages"),
        case("the real page size", &["--install", "riscv64"]).no_env("QUS_PAGE_SIZE"),
    ]);
}
