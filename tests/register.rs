//! End to end on the machine's daemon and the host's binfmt_misc: the image registers, a
//! foreign container runs, uninstalling makes it fail again, and the host is left as found.
//!
//! These VMs refuse `--privileged` (runc cannot apply every capability), so the tests use
//! `--cap-add SYS_ADMIN`, which is what registering needs. Tests that touch the host's
//! binfmt_misc hold a lock file so that no two run at once, whatever runs them.

use crate::support::*;
use std::path::Path;
use std::process::Command;

const LOCK: &str = "/tmp/qus-host-binfmt.lock";

/// Holds the host binfmt_misc for the duration of a test.
///
/// Since Linux 6.7 the kernel drops every entry when the last mount of a binfmt_misc
/// instance goes away. These VMs boot without it mounted, so an entry a container registers
/// would vanish with the container: the guard mounts it on the host for the test (as
/// systemd does on ordinary hosts) and puts everything back as found.
struct HostBinfmt {
    _lock: std::fs::File,
    mounted_here: bool,
    was_registered: bool,
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
        HostBinfmt {
            _lock: f,
            mounted_here,
            was_registered: host_entry("qemu-aarch64").is_some(),
        }
    }
}

impl Drop for HostBinfmt {
    fn drop(&mut self) {
        if !self.was_registered {
            let _ = std::fs::write(Path::new(MOUNT).join("qemu-aarch64"), "-1");
        }
        if self.mounted_here {
            let _ = Command::new("umount").arg(MOUNT).status();
        }
    }
}

fn host_entry(name: &str) -> Option<String> {
    std::fs::read_to_string(Path::new(MOUNT).join(name)).ok()
}

fn docker(args: &[&str]) -> (bool, String, String) {
    run(Command::new("docker").args(args))
}

/// Builds a FROM-scratch linux/arm64 image holding Debian's arm64 busybox-static.
fn arm64_busybox_image(reference: &str, work: &Path) {
    let cache = qus_source::Cache::open(work.join("cache")).unwrap();
    let (sha, size) = sum(&deb("busybox-static", "arm64"));
    let pkg = qus_source::VerifiedPackage {
        path: deb("busybox-static", "arm64"),
        sha256: sha.parse().unwrap(),
        size,
        from_cache: false,
    };
    let bb = cache
        .extract_file(
            &pkg,
            &qus_source::FileRequest::busybox("arm64"),
            &qus_source::Limits::default(),
        )
        .unwrap();
    let mut ctx = tar::Builder::new(Vec::new());
    let df = b"FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(df.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    ctx.append_data(&mut h, "Dockerfile", &df[..]).unwrap();
    ctx.append_path_with_name(&bb.path, "busybox").unwrap();
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
        .args([
            "build",
            "--hosts",
            "amd64,arm64v8",
            "--targets",
            "aarch64",
            "--sources",
            "d10.0",
        ])
        .args(["--repo", &repo.name])
        .args(cfg.debs_flag()));
    assert!(ok, "{err}");
    let foreign = format!("{}:arm64-busybox", repo.name);
    arm64_busybox_image(&foreign, cfg.dir.path());
    let qus_image = format!("{}:amd64-d10.0-aarch64", repo.name);

    if !host.was_registered {
        let (ok, out, err) = docker(&["run", "--rm", &foreign, "uname", "-m"]);
        assert!(!ok, "arm64 ran before registration: {out}");
        assert!(err.contains("exec format error"), "{err}");
    }

    // What users type (with --cap-add instead of --privileged on these VMs): no arguments.
    let (ok, out, err) = docker(&["run", "--rm", "--cap-add", "SYS_ADMIN", &qus_image]);
    assert!(ok, "registration failed: {out}{err}");
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

#[test]
fn qus_register_on_the_host_without_an_engine() {
    let host = HostBinfmt::take();
    // The interpreter from the real arm64-capable package, extracted by qus's own code.
    let work = tempfile::tempdir().unwrap();
    let cache = qus_source::Cache::open(work.path().join("cache")).unwrap();
    let (sha, size) = sum(&deb("qemu-user", "amd64"));
    let pkg = qus_source::VerifiedPackage {
        path: deb("qemu-user", "amd64"),
        sha256: sha.parse().unwrap(),
        size,
        from_cache: false,
    };
    let x = cache
        .extract_emulators(
            &pkg,
            &qus_source::EmulatorRequest::new("amd64").targets(["aarch64"]),
            &qus_source::Limits::default(),
        )
        .unwrap();
    // `unshare --mount`: qus mounts binfmt_misc in a private mount namespace, so the host's
    // mount table is left as it was while the registration itself is the host's.
    let (ok, out, err) = run(Command::new("unshare")
        .arg("--mount")
        .arg(env!("CARGO_BIN_EXE_qus"))
        .args(["register", "-s", "--", "-p", "aarch64"])
        .env("QEMU_BIN_DIR", &x.dir));
    assert!(ok, "{out}{err}");
    let entry = host_entry("qemu-aarch64").expect("registered");
    assert!(
        entry.contains(&format!(
            "interpreter {}/qemu-aarch64-static",
            x.dir.display()
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
