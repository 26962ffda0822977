//! `qus register` on a bare host: an emulator the request names is missing, so qus fetches
//! this host's pinned QEMU package from a loopback mirror, installs the emulator in a
//! directory of its own and registers it with F; `--persist` writes a systemd binfmt.d
//! file, and uninstalling takes both away. Everything happens in a private binfmt_misc
//! (`unshare --user --map-root-user --mount`, Linux 6.7+), so the host is never touched and
//! no lock is needed.

use crate::support::*;
use qus_source::testkit::Server;
use std::path::Path;
use std::process::Command;

/// A loopback mirror whose pool holds the config's qemu-user package for amd64.
fn mirror_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let f = deb("qemu-user", "amd64");
    let dest = root.path().join(pool_path(&f));
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::copy(&f, &dest).unwrap();
    root
}

/// The folder qus installs into under the install dir: the pinned version (the test
/// config's `1:10.0`) without its epoch, so that no `:` reaches a binfmt_misc line.
const VERSION_DIR: &str = "10.0";

/// Runs `script` in a private user and mount namespace with binfmt_misc mounted at $MNT and
/// `q` a function running `qus register` with the test's dirs; returns the files it wrote.
fn in_namespace(cfg: &TestConfig, work: &Path, mirror: &str, script: &str) -> String {
    let mnt = work.join("binfmt_misc");
    std::fs::create_dir_all(&mnt).unwrap();
    let empty = work.join("no-emulators");
    std::fs::create_dir_all(&empty).unwrap();
    let driver = format!(
        r#"set -u
mount -t binfmt_misc none "$MNT" || {{ echo "cannot mount binfmt_misc" >&2; exit 90; }}
q() {{ "$QUS" --config "$CFG" register --install-dir "$W/inst" --persist-dir "$W/binfmt.d" --mirror "$MIRROR" "$@"; }}
{script}
"#
    );
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", &driver])
        .env("MNT", &mnt)
        .env("QUS_BINFMT_MOUNT", &mnt)
        .env("QUS", env!("CARGO_BIN_EXE_qus"))
        .env("CFG", &cfg.path)
        .env("W", work)
        .env("MIRROR", mirror)
        // The binfmt dialect looks here: empty, so this host has no emulator.
        .env("QEMU_BINARY_PATH", &empty)
        .env("QUS_CACHE", work.join("cache"))
        .env_remove("QUS_CONFIG")
        .env_remove("QUS_MIRROR")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "the namespace driver failed ({:?}): {text}",
        out.status
    );
    text
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn register_on_a_bare_host_installs_registers_persists_and_uninstalls() {
    let cfg = real_config();
    let root = mirror_root();
    let server = Server::start(root.path()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    in_namespace(
        &cfg,
        w,
        &server.url(),
        r#"
q --persist --install arm64 >"$W/1.out" 2>"$W/1.err"; echo $? >"$W/1.code"
cat "$MNT/qemu-aarch64" >"$W/1.entry" 2>&1
stat -c %a "$W/inst/10.0/qemu-aarch64" >"$W/1.mode" 2>&1
head -c 4 "$W/inst/10.0/qemu-aarch64" >"$W/1.head" 2>&1
cat "$W/binfmt.d/qus-aarch64.conf" >"$W/1.conf" 2>&1
q --install arm64 --persist >"$W/2.out" 2>"$W/2.err"; echo $? >"$W/2.code"
cat "$MNT/qemu-aarch64" >"$W/2.entry" 2>&1
ls "$W/inst/"*/ >"$W/2.ls" 2>&1
q --uninstall qemu-aarch64 >"$W/3.out" 2>"$W/3.err"; echo $? >"$W/3.code"
ls "$MNT" >"$W/3.ls"
"#,
    );
    let err1 = read(&w.join("1.err"));
    assert_eq!(read(&w.join("1.code")).trim(), "0", "{err1}");
    let bin = w.join("inst").join(VERSION_DIR).join("qemu-aarch64");
    let entry = read(&w.join("1.entry"));
    assert!(
        entry.contains(&format!("interpreter {}\n", bin.display())),
        "{entry}\n{err1}"
    );
    // binfmt's spelling asks for OCF; what qus installed always gets F.
    assert!(entry.contains("flags: OCF"), "{entry}");
    assert_eq!(read(&w.join("1.mode")).trim(), "755");
    assert_eq!(read(&w.join("1.head")), "\x7fELF");
    assert!(err1.contains("installed"), "{err1}");

    let conf = read(&w.join("1.conf"));
    let line = conf.lines().nth(1).unwrap_or_default();
    assert!(conf.starts_with("# Written by qus register"), "{conf}");
    assert!(
        line.starts_with(":qemu-aarch64:M::\\x7f\\x45\\x4c\\x46\\x02")
            && line.ends_with(&format!(":{}:OCF", bin.display())),
        "{conf}"
    );

    // Idempotent: the same entry, nothing rewritten, nothing fetched again.
    let err2 = read(&w.join("2.err"));
    assert_eq!(read(&w.join("2.code")).trim(), "0", "{err2}");
    assert_eq!(read(&w.join("2.entry")), entry);
    assert!(err2.contains("already installed"), "{err2}");
    assert_eq!(
        server.hits(&pool_path(&deb("qemu-user", "amd64"))),
        1,
        "fetched once, then from the cache"
    );
    assert_eq!(read(&w.join("2.ls")).trim(), "qemu-aarch64");

    // Uninstall: the entry, the conf file and the binary go; a foreign conf file stays.
    let err3 = read(&w.join("3.err"));
    assert_eq!(read(&w.join("3.code")).trim(), "0", "{err3}");
    assert!(!read(&w.join("3.ls")).contains("qemu-aarch64"));
    assert!(!w.join("binfmt.d/qus-aarch64.conf").exists(), "{err3}");
    assert!(!bin.exists(), "{err3}");
    assert!(
        !bin.parent().unwrap().exists(),
        "the empty version dir goes too"
    );
}

#[test]
fn foreign_files_are_never_removed_or_overwritten() {
    let cfg = real_config();
    let root = mirror_root();
    let server = Server::start(root.path()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let persist = w.join("binfmt.d");
    std::fs::create_dir_all(&persist).unwrap();
    std::fs::write(persist.join("qus-riscv64.conf"), "mine\n").unwrap();
    let extra = w.join("inst").join(VERSION_DIR);
    std::fs::create_dir_all(&extra).unwrap();
    std::fs::write(extra.join("notes"), "mine\n").unwrap();
    in_namespace(
        &cfg,
        w,
        &server.url(),
        r#"
q --persist --install riscv64 >"$W/1.out" 2>"$W/1.err"; echo $? >"$W/1.code"
q -r -e >"$W/2.out" 2>"$W/2.err"; echo $? >"$W/2.code"
"#,
    );
    let err1 = read(&w.join("1.err"));
    // Registered, but the conf file that is not qus's is refused, by name.
    assert_eq!(read(&w.join("1.code")).trim(), "1", "{err1}");
    assert!(
        err1.contains("qus-riscv64.conf exists and qus did not write it"),
        "{err1}"
    );
    assert_eq!(read(&persist.join("qus-riscv64.conf")), "mine\n");
    // dbhi's -r removes every entry, then what qus installed, and only that.
    let err2 = read(&w.join("2.err"));
    assert_eq!(read(&w.join("2.code")).trim(), "0", "{err2}");
    assert!(!extra.join("qemu-riscv64").exists(), "{err2}");
    assert_eq!(read(&extra.join("notes")), "mine\n");
    assert_eq!(read(&persist.join("qus-riscv64.conf")), "mine\n");
}

#[test]
fn a_missing_package_or_mirror_says_which_and_what_to_do() {
    let cfg = real_config();
    let work = tempfile::tempdir().unwrap();
    let empty = work.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let inst = work.path().join("inst");
    let server = Server::start(&empty).unwrap();
    let go = |cfg: &TestConfig| {
        let out = cfg
            .qus()
            .args(["register", "--install-dir"])
            .arg(&inst)
            .args(["--install", "arm64", "--mirror", &server.url()])
            .env("QEMU_BINARY_PATH", &empty)
            .env("QUS_BINFMT_MOUNT", work.path().join("nowhere"))
            .env_remove("QUS_MIRROR")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // The mirror does not have the pinned file: a failure (1), naming it and the host.
    let (code, err) = go(&cfg);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("qemu-user") && err.contains("amd64"), "{err}");
    assert!(!inst.exists(), "nothing installed: {err}");
    // The config pins no package for this host: a config error (2) that says what to do.
    let arm_only = config_with(vec![Pin::new("arm64v8", deb("qemu-user", "arm64"))], vec![]);
    let (code, err) = go(&arm_only);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("pins no QEMU package for this host (amd64)"),
        "{err}"
    );
    assert!(err.contains("qus lock"), "{err}");
}
