//! End to end on the machine's daemon and the host's binfmt_misc: the image registers, a
//! foreign container runs, uninstalling makes it fail again, and the host is left as found.
//!
//! These VMs refuse `--privileged` (runc cannot apply every capability), so the tests use
//! `--cap-add SYS_ADMIN`, which is what registering needs. Tests that touch the host's
//! binfmt_misc hold a lock file so that no two run at once, whatever runs them.

use crate::support::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const LOCK: &str = "/tmp/qus-host-binfmt.lock";

/// Holds the host binfmt_misc for the duration of a test.
///
/// Since Linux 6.7 the kernel drops every entry when the last mount of a binfmt_misc
/// instance goes away. These VMs boot without it mounted, so an entry a container registers
/// would vanish with the container: the guard mounts it on the host for the test (as
/// systemd does on ordinary hosts) and puts everything back as found: every entry the test
/// added is removed, and binfmt_misc is unmounted again if the guard mounted it.
struct HostBinfmt {
    _lock: std::fs::File,
    mounted_here: bool,
    before: BTreeMap<String, String>,
}

const MOUNT: &str = "/proc/sys/fs/binfmt_misc";

impl HostBinfmt {
    fn take() -> HostBinfmt {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(LOCK)
            .unwrap();
        f.lock().unwrap();
        let mounted_here = !Path::new(MOUNT).join("status").exists();
        if mounted_here {
            let ok = Command::new("mount")
                .args(["-t", "binfmt_misc", "binfmt_misc", MOUNT])
                .status()
                .unwrap()
                .success();
            assert!(ok, "cannot mount binfmt_misc on the host");
        }
        clear_leftovers();
        HostBinfmt {
            _lock: f,
            mounted_here,
            before: host_entries(),
        }
    }

    /// Whether the host had this entry before the test.
    fn had(&self, name: &str) -> bool {
        self.before.contains_key(name)
    }
}

impl Drop for HostBinfmt {
    fn drop(&mut self) {
        for name in host_entries().keys() {
            if !self.before.contains_key(name) {
                let _ = std::fs::write(Path::new(MOUNT).join(name), "-1");
            }
        }
        if self.mounted_here {
            let _ = Command::new("umount").arg(MOUNT).status();
        }
    }
}

/// Removes what an interrupted earlier run left: these tests' entries (a qus image's
/// `/usr/bin/qemu-*-static`) survive a killed test process while binfmt_misc stays mounted,
/// and with F the kernel holds a file of a container long gone, so execs through them fail
/// (ENOTCONN from its dead fuse-overlayfs) and every test that expects to register sees
/// "kept" instead. Nothing restores such an entry: its file no longer exists.
fn clear_leftovers() {
    for (name, entry) in host_entries() {
        let ours = ["qemu-aarch64", "qemu-riscv64", "qemu-x86_64"].contains(&name.as_str());
        let image_path = entry.lines().any(|l| {
            l.strip_prefix("interpreter /usr/bin/qemu-")
                .is_some_and(|rest| rest.ends_with("-static"))
        });
        if ours && image_path {
            eprintln!("removing {name}, left on the host by an interrupted earlier run: {entry}");
            let _ = std::fs::write(Path::new(MOUNT).join(&name), "-1");
        }
    }
}

/// Every entry of the host's binfmt_misc, with its file.
fn host_entries() -> BTreeMap<String, String> {
    std::fs::read_dir(MOUNT)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "register" && n != "status")
                .filter_map(|n| host_entry(&n).map(|c| (n, c)))
                .collect()
        })
        .unwrap_or_default()
}

fn host_entry(name: &str) -> Option<String> {
    std::fs::read_to_string(Path::new(MOUNT).join(name)).ok()
}

fn docker(args: &[&str]) -> (bool, String, String) {
    run(Command::new("docker").args(args))
}

/// Debian's arm64 busybox-static, extracted under `work`.
fn arm64_busybox(work: &Path) -> std::path::PathBuf {
    let cache = qus_source::Cache::open(work.join("cache")).unwrap();
    let (sha, size) = sum(&deb("busybox-static", "arm64"));
    let pkg = qus_source::VerifiedPackage {
        path: deb("busybox-static", "arm64"),
        sha256: sha.parse().unwrap(),
        size,
        from_cache: false,
    };
    cache
        .extract_file(
            &pkg,
            &qus_source::FileRequest::busybox("arm64"),
            &qus_source::Limits::default(),
        )
        .unwrap()
        .path
}

/// This machine's qemu-aarch64 from the real qemu-user package, extracted under `work`:
/// its directory (`qemu-aarch64-static` in it).
fn host_emulator_dir(work: &Path) -> std::path::PathBuf {
    let cache = qus_source::Cache::open(work.join("cache")).unwrap();
    let (sha, size) = sum(&deb("qemu-user", "amd64"));
    let pkg = qus_source::VerifiedPackage {
        path: deb("qemu-user", "amd64"),
        sha256: sha.parse().unwrap(),
        size,
        from_cache: false,
    };
    cache
        .extract_emulators(
            &pkg,
            &qus_source::EmulatorRequest::new("amd64").targets(["aarch64"]),
            &qus_source::Limits::default(),
        )
        .unwrap()
        .dir
}

/// Builds a FROM-scratch linux/arm64 image holding Debian's arm64 busybox-static.
fn arm64_busybox_image(reference: &str, work: &Path) {
    let bb = arm64_busybox(work);
    let mut ctx = tar::Builder::new(Vec::new());
    let df = b"FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(df.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    ctx.append_data(&mut h, "Dockerfile", &df[..]).unwrap();
    ctx.append_path_with_name(&bb, "busybox").unwrap();
    let body = ctx.into_inner().unwrap();
    block_on(async {
        use futures::StreamExt;
        let d = daemon();
        let opts = bollard::query_parameters::BuildImageOptionsBuilder::default()
            .dockerfile("Dockerfile")
            .t(reference)
            .platform("linux/arm64")
            .rm(true)
            .build();
        let mut s = d.build_image(opts, None, Some(bollard::body_full(body.into())));
        while let Some(item) = s.next().await {
            let info = item.unwrap();
            assert!(info.error_detail.is_none(), "{:?}", info.error_detail);
        }
    });
}

#[test]
fn image_registers_arm64_runs_and_uninstall_undoes_it() {
    let host = HostBinfmt::take();
    let cfg = real_config();
    let repo = Repo::new("qus-test-e2e");
    let (ok, _, err) = run(cfg
        .qus()
        .arg("build")
        .args(TWO_HOSTS)
        .args(["--repo", &repo.name])
        .args(cfg.debs_flag()));
    assert!(ok, "{err}");
    let foreign = format!("{}:arm64-busybox", repo.name);
    arm64_busybox_image(&foreign, cfg.dir.path());
    let qus_image = format!("{}:amd64-d10.0-aarch64", repo.name);

    if !host.had("qemu-aarch64") {
        let (ok, out, err) = docker(&["run", "--rm", &foreign, "uname", "-m"]);
        assert!(!ok, "arm64 ran before registration: {out}");
        assert!(err.contains("exec format error"), "{err}");
    }

    // What users type (with --cap-add instead of --privileged on these VMs): no arguments.
    let (ok, out, err) = docker(&["run", "--rm", "--cap-add", "SYS_ADMIN", &qus_image]);
    assert!(ok, "registration failed: {out}{err}");
    // ... which ends with binfmt's status on stdout, the human lines on stderr.
    let status: serde_json::Value = serde_json::from_str(out.trim()).expect("status JSON");
    assert!(status["supported"]
        .as_array()
        .unwrap()
        .contains(&"linux/arm64".into()));
    assert!(
        err.contains("qus: registered qemu-aarch64 -> /usr/bin/qemu-aarch64-static"),
        "{err}"
    );
    let entry = host_entry("qemu-aarch64").expect("qemu-aarch64 registered on the host");
    assert!(
        entry.contains("interpreter /usr/bin/qemu-aarch64-static"),
        "{entry}"
    );
    assert!(entry.contains("flags: F"), "persistent: {entry}");

    let (ok, out, err) = docker(&["run", "--rm", &foreign, "uname", "-m"]);
    assert!(ok, "arm64 container did not run: {err}");
    assert_eq!(out.trim(), "aarch64");

    // The arm64v8 image's own entrypoint, run under emulation, in dry-run mode: it must see
    // the real host (x86_64), so it plans aarch64 and does not plan x86_64.
    let arm_image = format!("{}:arm64v8-d10.0-aarch64", repo.name);
    let (ok, out, err) = docker(&["run", "--rm", &arm_image, "-s", "--", "-t", "aarch64"]);
    assert!(ok, "foreign entrypoint failed: {out}{err}");
    assert!(out.contains(":qemu-aarch64:M::"), "{out}");

    // tonistiigi/binfmt's spelling removes it; the foreign container fails again.
    let (ok, out, err) = docker(&[
        "run",
        "--rm",
        "--cap-add",
        "SYS_ADMIN",
        &qus_image,
        "--uninstall",
        "qemu-aarch64",
    ]);
    assert!(ok, "uninstall failed: {out}{err}");
    assert!(out.contains("\"emulators\""), "binfmt's status JSON: {out}");
    assert!(host_entry("qemu-aarch64").is_none(), "still registered");
    let (ok, _, err) = docker(&["run", "--rm", &foreign, "uname", "-m"]);
    assert!(!ok && err.contains("exec format error"), "{err}");

    // multiarch's spelling registers again, persistent.
    let (ok, out, err) = docker(&[
        "run",
        "--rm",
        "--cap-add",
        "SYS_ADMIN",
        &qus_image,
        "--reset",
        "-p",
        "yes",
    ]);
    assert!(ok, "{out}{err}");
    assert!(host_entry("qemu-aarch64").unwrap().contains("flags: F"));
    // The guard's drop removes it again unless it was there before the test.
    drop(host);
}

/// docker/setup-qemu-action's calls, as its `src/main.ts` makes them with `image:` set
/// to one of our images (`--cap-add SYS_ADMIN` for its `--privileged` here): the install
/// call, whose output it does not read, then a call without arguments whose stdout it
/// parses as binfmt's JSON status, reading `supported` for its `platforms` output; a
/// non-zero exit with something on stderr fails the step.
#[test]
fn setup_qemu_action_command_sequence() {
    let host = HostBinfmt::take();
    let cfg = real_config();
    let repo = Repo::new("qus-test-action");
    let (ok, _, err) = run(cfg
        .qus()
        .args(["build", "--hosts", "amd64", "--targets", "aarch64,riscv64"])
        .args(["--sources", "d10.0", "--repo", &repo.name])
        .args(cfg.debs_flag()));
    assert!(ok, "{err}");
    // `image: <repo>/qus`: the image with every emulator of this host.
    let image = format!("{}:amd64-d10.0", repo.name);
    let action = |args: &[&str]| {
        let mut all = vec!["run", "--rm", "--cap-add", "SYS_ADMIN", &image];
        all.extend_from_slice(args);
        docker(&all)
    };

    let (ok, out, err) = action(&["--install", "arm64,riscv64"]);
    assert!(ok, "install failed: {out}{err}");
    assert!(err.contains("qus: registered qemu-aarch64"), "{err}");
    let (ok, out, err) = action(&[]);
    assert!(ok, "status call failed: {err}");
    // `JSON.parse(stdout.trim())`, then `supported`.
    let status: serde_json::Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {out}"));
    let supported: Vec<&str> = status["supported"]
        .as_array()
        .expect("supported is an array")
        .iter()
        .map(|p| p.as_str().expect("platform strings"))
        .collect();
    assert_eq!(
        supported,
        ["linux/amd64", "linux/386", "linux/arm64", "linux/riscv64"],
        "{out}"
    );
    assert!(status["emulators"]
        .as_array()
        .unwrap()
        .contains(&"qemu-aarch64".into()));
    assert_eq!(status["qus"]["user_namespace"], false, "{out}");
    assert_eq!(status["qus"]["host_sees_entries"], true, "{out}");
    // The status call keeps what --install registered (binfmt's flags, OCF), and says so
    // on stderr only.
    assert!(
        err.contains("qus: qemu-aarch64 is already registered -> /usr/bin/qemu-aarch64-static (flags OCF): kept"),
        "{err}"
    );
    assert!(host_entry("qemu-aarch64").unwrap().contains("flags: OCF"));
    assert!(host_entry("qemu-riscv64").unwrap().contains("flags: OCF"));
    drop(host);
}

/// The proof that the host's own architecture is never registered by accident: an
/// arm64 image, run under emulation (`--platform linux/arm64`, through the qemu-aarch64 the
/// amd64 image registered), whose only emulator is qemu-x86_64 (an arm64 binary). `uname
/// -m` says aarch64 in there; the entrypoint must still see an x86_64 host and register
/// nothing. Once with /proc/sys/kernel/arch, once with it hidden (as on kernels before 6.1),
/// where the executable the kernel runs (the emulator, an x86_64 ELF) tells.
#[test]
fn foreign_host_image_under_emulation_never_registers_the_host_arch() {
    if qus_binfmt::table::host_target(&qus_binfmt::host::uname_machine()) != "x86_64" {
        eprintln!("skipped: written for an amd64 host emulating arm64");
        return;
    }
    let host = HostBinfmt::take();
    let cfg = real_config();
    let repo = Repo::new("qus-test-foreignhost");
    let (ok, _, err) = run(cfg
        .qus()
        .args([
            "build",
            "--hosts",
            "amd64,arm64v8",
            "--targets",
            "aarch64,x86_64",
        ])
        .args(["--sources", "d10.0", "--repo", &repo.name])
        .args(cfg.debs_flag()));
    assert!(ok, "{err}");
    let (ok, out, err) = docker(&[
        "run",
        "--rm",
        "--cap-add",
        "SYS_ADMIN",
        &format!("{}:amd64-d10.0-aarch64", repo.name),
    ]);
    assert!(ok, "{out}{err}");
    assert!(host_entry("qemu-aarch64").is_some(), "{err}");
    assert!(
        !host.had("qemu-x86_64"),
        "qemu-x86_64 was registered before the test"
    );

    let image = format!("{}:arm64v8-d10.0-x86_64", repo.name);
    let emulated = |prefix: &[&str], args: &[&str]| {
        let mut all = vec![
            "run",
            "--rm",
            "--platform",
            "linux/arm64",
            "--cap-add",
            "SYS_ADMIN",
        ];
        all.extend_from_slice(prefix);
        all.push(&image);
        all.extend_from_slice(args);
        docker(&all)
    };
    // It does run under emulation: its own busybox says aarch64.
    let (ok, out, err) = emulated(&["--entrypoint", "/qus/busybox"], &["uname", "-m"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "aarch64");

    let hide = "/qus/busybox mount --bind /dev/null /proc/sys/kernel/arch && exec /qus/busybox sh /qus/register";
    for (how, prefix, shell) in [
        ("kernel.arch", vec![], None),
        (
            "the executable",
            vec!["--entrypoint", "/qus/busybox"],
            Some(hide),
        ),
    ] {
        let with = |args: &str| -> (bool, String, String) {
            match shell {
                None => emulated(&prefix, &args.split_whitespace().collect::<Vec<_>>()),
                Some(sh) => emulated(&prefix, &["sh", "-c", &format!("{sh} {args}"), "register"]),
            }
        };
        // A dry run first: a wrong plan would send every native exec of this host through
        // an emulator; stop before anything is written if the plan holds qemu-x86_64.
        let (ok, out, err) = with("--dry-run");
        assert!(ok, "{how}: {out}{err}");
        assert!(
            !out.contains(":qemu-x86_64:"),
            "{how}: planned the host's own arch:\n{out}"
        );
        assert!(
            err.contains("note: running under emulation (uname -m says aarch64, the kernel is x86_64): the host is x86_64"),
            "{how}: {err}"
        );
        assert!(
            err.contains("skipping qemu-x86_64: it is the host's own architecture (x86_64)"),
            "{how}: {err}"
        );
        // What users type: no arguments.
        let (ok, out, err) = with("");
        assert!(ok, "{how}: {out}{err}");
        assert!(
            host_entry("qemu-x86_64").is_none(),
            "{how}: qemu-x86_64 registered: {err}"
        );
        let status: serde_json::Value = serde_json::from_str(out.trim()).expect("status JSON");
        assert_eq!(status["qus"]["host"], "x86_64", "{how}: {out}");
        assert_eq!(status["supported"][0], "linux/amd64", "{how}: {out}");
    }
    drop(host);
}

#[test]
fn qus_register_on_the_host_without_an_engine() {
    let host = HostBinfmt::take();
    // The interpreter from the real arm64-capable package, extracted by qus's own code.
    let work = tempfile::tempdir().unwrap();
    let dir = host_emulator_dir(work.path());
    // `unshare --mount`: qus mounts binfmt_misc in a private mount namespace, so the host's
    // mount table is left as it was while the registration itself is the host's.
    let (ok, out, err) = run(Command::new("unshare")
        .arg("--mount")
        .arg(env!("CARGO_BIN_EXE_qus"))
        .args(["register", "-s", "--", "-p", "aarch64"])
        .env("QEMU_BIN_DIR", &dir));
    assert!(ok, "{out}{err}");
    let entry = host_entry("qemu-aarch64").expect("registered");
    assert!(
        entry.contains(&format!(
            "interpreter {}/qemu-aarch64-static",
            dir.display()
        )),
        "{entry}"
    );
    assert!(entry.contains("flags: F"), "{entry}");
    let cfg = real_config();
    let repo = Repo::new("qus-test-hostreg");
    let foreign = format!("{}:arm64-busybox", repo.name);
    arm64_busybox_image(&foreign, cfg.dir.path());
    let (ok, out, err) = docker(&["run", "--rm", &foreign, "uname", "-m"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "aarch64");
    drop(host);
}

/// One registration of the race scene: how to start it, and what it said.
struct Racer {
    label: &'static str,
    cmd: Command,
}

/// The scene (a self-hosted runner with several jobs): while a loop runs an arm64
/// program through binfmt_misc, a dozen registrations in every dialect run side by side,
/// several rounds: the image's entrypoint (binfmt, dbhi, multiarch and no arguments) and
/// `qus register` on the host, with different interpreters and flags, so they replace
/// each other's entries, keep them, or lose races for them. Every registration must exit
/// 0, no execution of the arm64 program may fail, and the host must end with one entry
/// per target and no stand-in left. `QUS_TEST_RACE_ROUNDS` sets the rounds (default 3).
#[test]
fn registrations_race_while_foreign_programs_run() {
    if qus_binfmt::table::host_target(&qus_binfmt::host::uname_machine()) != "x86_64" {
        eprintln!("skipped: written for an amd64 host emulating arm64");
        return;
    }
    let rounds: usize = std::env::var("QUS_TEST_RACE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let host = HostBinfmt::take();
    let cfg = real_config();
    let repo = Repo::new("qus-test-races");
    let (ok, _, err) = run(cfg
        .qus()
        .args(["build", "--hosts", "amd64", "--targets", "aarch64,riscv64"])
        .args(["--sources", "d10.0", "--repo", &repo.name])
        .args(cfg.debs_flag()));
    assert!(ok, "{err}");
    let image = format!("{}:amd64-d10.0", repo.name);
    let work = tempfile::tempdir().unwrap();
    let busybox = arm64_busybox(work.path());
    let emulators = host_emulator_dir(work.path());

    // An entry to start from, so that the loop can run before the first round.
    let (ok, out, err) = docker(&["run", "--rm", "--cap-add", "SYS_ADMIN", &image]);
    assert!(ok, "{out}{err}");

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let looper = {
        let stop = stop.clone();
        let busybox = busybox.clone();
        std::thread::spawn(move || {
            let (mut ran, mut failures) = (0usize, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                ran += 1;
                match Command::new(&busybox).args(["uname", "-m"]).output() {
                    Ok(o) if o.status.success() && o.stdout == b"aarch64\n" => {}
                    Ok(o) => failures.push(format!(
                        "{:?}: {}{}",
                        o.status,
                        String::from_utf8_lossy(&o.stdout),
                        String::from_utf8_lossy(&o.stderr)
                    )),
                    Err(e) => failures.push(e.to_string()),
                }
            }
            (ran, failures)
        })
    };

    let racers = || -> Vec<Racer> {
        let img = |label, args: &[&str]| {
            let mut cmd = Command::new("docker");
            cmd.args(["run", "--rm", "--cap-add", "SYS_ADMIN", &image])
                .args(args);
            Racer { label, cmd }
        };
        let on_host = |label, args: &[&str]| {
            let mut cmd = Command::new("unshare");
            cmd.arg("--mount")
                .arg(env!("CARGO_BIN_EXE_qus"))
                .arg("register")
                .args(args)
                .env("QEMU_BIN_DIR", &emulators)
                .env("QEMU_BINARY_PATH", &emulators);
            Racer { label, cmd }
        };
        vec![
            img("image --install arm64", &["--install", "arm64"]),
            img(
                "image --install arm64,riscv64",
                &["--install", "arm64,riscv64"],
            ),
            img("image (no arguments)", &[]),
            img("image (no arguments), again", &[]),
            img("image -s -- -p aarch64", &["-s", "--", "-p", "aarch64"]),
            img(
                "image -s -- -p -c aarch64",
                &["-s", "--", "-p", "-c", "aarch64"],
            ),
            img("image --reset -p yes", &["--reset", "-p", "yes"]),
            img(
                "image -p yes --credential yes aarch64",
                &["-p", "yes", "--credential", "yes", "aarch64"],
            ),
            on_host("qus register --install arm64", &["--install", "arm64"]),
            on_host(
                "qus register -s -- -p aarch64",
                &["-s", "--", "-p", "aarch64"],
            ),
            on_host("qus register --reset -p yes", &["--reset", "-p", "yes"]),
            on_host("qus register (no arguments)", &[]),
        ]
    };

    let mut verdicts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failed = Vec::new();
    let mut registrations = 0;
    for round in 1..=rounds {
        let children: Vec<(&'static str, std::process::Child)> = racers()
            .into_iter()
            .map(|mut r| {
                let child = r
                    .cmd
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                (r.label, child)
            })
            .collect();
        for (label, child) in children {
            let o = child.wait_with_output().unwrap();
            registrations += 1;
            let err = String::from_utf8_lossy(&o.stderr).into_owned();
            let replaced = err.matches("replacing the previous entry").count();
            let lost = err
                .matches("at the same time by another registration")
                .count();
            for (word, n) in [
                (
                    "registered",
                    err.matches("qus: registered qemu-").count() - replaced,
                ),
                ("replaced", replaced),
                ("kept", err.matches("is already registered").count()),
                ("kept after a lost race", lost),
            ] {
                *verdicts.entry(word).or_default() += n;
            }
            if !o.status.success() {
                failed.push(format!("round {round}: {label}: {:?}\n{err}", o.status));
            }
        }
        let names: Vec<String> = host_entries().into_keys().collect();
        let stand_ins: Vec<&String> = names.iter().filter(|n| n.contains(".qus-")).collect();
        assert!(
            stand_ins.is_empty(),
            "round {round}: stand-ins left: {names:?}; failed so far:\n{}",
            failed.join("\n")
        );
        assert!(
            names.iter().any(|n| n == "qemu-aarch64"),
            "round {round}: no qemu-aarch64 left: {names:?}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ran, exec_failures) = looper.join().unwrap();
    eprintln!(
        "races: {rounds} rounds, {registrations} registrations ({} failed), {ran} arm64 executions ({} failed), verdicts {verdicts:?}",
        failed.len(),
        exec_failures.len()
    );
    assert!(
        failed.is_empty(),
        "registrations failed:\n{}",
        failed.join("\n")
    );
    assert!(
        exec_failures.is_empty(),
        "{} of {ran} arm64 executions failed: {:?}",
        exec_failures.len(),
        &exec_failures[..exec_failures.len().min(5)]
    );
    assert!(ran > 0, "the arm64 loop never ran");
    drop(host);
}
