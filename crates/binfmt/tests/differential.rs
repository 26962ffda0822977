//! The image's sh entrypoint and `qus register`'s Rust path, against a real
//! kernel: for a table of argument cases in all three dialects, each runs in
//! a fresh private binfmt_misc and must leave byte-identical entries, the same
//! stdout, the same stderr and the same exit status. Every case also checks
//! a few facts on its own, so the two cannot agree on something wrong.
//!
//! Needs: Linux 6.7+ (private binfmt_misc per user namespace), util-linux
//! `unshare`, `dpkg-deb`, and Debian's busybox-static / qemu-user-static debs
//! in `$QUS_TEST_DEBS` (default `~/.cache/qus/debs`, filled by `.ci/run`).

mod support;

use std::fs;
use support::*;

/// One argument case.
struct Case {
    name: &'static str,
    layout: Layout,
    env: Vec<(&'static str, String)>,
    setup: Vec<Vec<String>>,
    args: Vec<String>,
    code: i32,
    /// (entry, flags) that must be registered afterwards.
    present: Vec<(&'static str, &'static str)>,
    /// Entries that must not be registered afterwards.
    absent: Vec<&'static str>,
    /// Substrings stdout must contain.
    stdout_has: Vec<&'static str>,
    /// Substrings stderr must contain.
    stderr_has: Vec<&'static str>,
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
        setup: vec![],
        args: s(args),
        code: 0,
        present: vec![],
        absent: vec![],
        stdout_has: vec![],
        stderr_has: vec![],
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
    fn setup(mut self, args: &[&str]) -> Self {
        self.setup.push(s(args));
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
    /// Replaces the argument `OUT` with a fresh export directory.
    fn exporting(mut self) -> Self {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out").to_str().unwrap().to_string();
        for a in &mut self.args {
            *a = a.replace("OUT", &out);
        }
        self.export_dir = Some(d);
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
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        fs::read_to_string(e.path()).unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let _ = fs::remove_dir_all(&out);
    files
}

fn check(cases: Vec<Case>) {
    for c in cases {
        let root = make_root(c.layout);
        let env: Vec<(&str, &str)> = c.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let sh = run_in_namespace(Impl::Sh, root.path(), &env, &c.setup, &c.args, "");
        let sh_files = read_exports(&c);
        let rust = run_in_namespace(Impl::Rust, root.path(), &env, &c.setup, &c.args, "");
        let rust_files = read_exports(&c);
        let ctx = format!(
            "case '{}' {:?}\n--- sh stderr:\n{}\n--- rust stderr:\n{}",
            c.name, c.args, sh.stderr, rust.stderr
        );
        assert_eq!(sh.dump, rust.dump, "binfmt_misc entries differ: {ctx}");
        assert_eq!(sh.stdout, rust.stdout, "stdout differs: {ctx}");
        assert_eq!(sh.stderr, rust.stderr, "stderr differs: {ctx}");
        assert_eq!(sh.code, rust.code, "exit status differs: {ctx}");
        assert_eq!(sh_files, rust_files, "exported files differ: {ctx}");

        assert_eq!(sh.code, c.code, "exit status: {ctx}");
        for (name, flags) in &c.present {
            assert!(
                has_entry(&sh.dump, name, flags),
                "{name} with flags '{flags}' missing: {ctx}\n--- dump:\n{}",
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
            assert!(
                sh.stdout.contains(want),
                "stdout lacks {want:?}: {ctx}\n--- stdout:\n{}",
                sh.stdout
            );
        }
        for want in &c.stderr_has {
            assert!(sh.stderr.contains(want), "stderr lacks {want:?}: {ctx}");
        }
        if c.export_dir.is_some() && c.code == 0 && !c.args.iter().any(|a| a == "--dry-run") {
            assert!(!sh_files.is_empty(), "nothing exported: {ctx}");
        }
    }
}

#[test]
fn default_request_registers_every_emulator_persistently() {
    let single = single_target();
    check(vec![
        case("no arguments", &[])
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
        case("bad interpreter path", &["--", "-Q", "/a:b", "arm"])
            .code(1)
            .stderr("must not contain ':'"),
    ]);
}

#[test]
fn multiarch_dialect() {
    check(vec![
        case("--reset -p yes", &["--reset", "-p", "yes"])
            .setup(&["--install", "arm64"])
            .present(&[("qemu-aarch64", "F"), ("qemu-arm", "F")])
            .stderr("removed qemu-aarch64"),
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
            .stdout("\"emulators\": []"),
        case(
            "--uninstall platform + unknown",
            &["--uninstall", "arm64,foo"],
        )
        .setup(&["--install", "all"])
        .absent(&["qemu-aarch64"])
        .stderr("no binfmt_misc entry matches 'foo'"),
        case("--version", &["--version"]).stdout("qus-binfmt/"),
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
        case(
            "dry run still prints status",
            &["--dry-run", "--install", "all"],
        )
        .stdout(":qemu-arm:M::")
        .stdout("\"supported\"")
        .absent(&["qemu-arm"]),
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
    let o = run_in_namespace(Impl::Sh, root.path(), &env, &[], &c.args, "");
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
        // And without a registration the foreign binary does not run.
        let o = run_in_namespace(imp, root.path(), &[], &[], &s(&["-h"]), &extra);
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
    // registered first, so `uname -m` lies; /proc/sys/kernel/arch does not,
    // and the host's own architecture must never be planned.
    if std::fs::metadata("/proc/sys/kernel/arch").is_err() {
        eprintln!("skipped: this kernel has no /proc/sys/kernel/arch");
        return;
    }
    let target = single_target();
    let arch = if target == "aarch64" {
        "arm64"
    } else {
        "amd64"
    };
    let b = binaries();
    let host_root = make_root(Layout::Single);
    let foreign_root = make_root_with_busybox(Layout::RegisterOnly, &b.foreign_busybox[arch]);
    let fr = foreign_root.path().to_str().unwrap();
    let probe = host_root.path().join("probe");
    let p = probe.to_str().unwrap();
    let extra = format!(
        "QUS_ROOT='{fr}' '{fr}/qus/busybox' sh '{fr}/qus/register' --dry-run --ignore-family >'{p}.out' 2>'{p}.err'; echo $? >'{p}.code'"
    );
    let o = run_in_namespace(Impl::Sh, host_root.path(), &[], &[], &[], &extra);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let read = |ext: &str| fs::read_to_string(format!("{p}.{ext}")).unwrap();
    let (out, err) = (read("out"), read("err"));
    assert_eq!(read("code").trim(), "0", "{err}");
    let host = host_target();
    let machine = host_machine();
    assert!(
        err.contains(&format!(
            "note: running under emulation (uname -m says {target}, the kernel is {machine})"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "skipping qemu-{host}: it is the host's own architecture"
        )),
        "{err}"
    );
    assert!(!out.contains(&format!(":qemu-{host}:")), "{out}");
    assert!(out.contains(&format!(":qemu-{target}:")), "{out}");
}
