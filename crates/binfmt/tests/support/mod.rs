//! Fixtures for tests against a real kernel: Debian's busybox-static and
//! qemu-user-static unpacked into fake image roots, and a runner that executes
//! one command in a fresh private user+mount namespace with its own
//! binfmt_misc (`unshare --user --map-root-user --mount`; Linux 6.7+ gives the
//! namespace its own instance), so the host's binfmt_misc is never touched
//! and tests can run in parallel.

#![allow(dead_code)]

mod shells;
pub use shells::*;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Targets whose emulators the full fake image carries (minus the real
/// host's own target: registering it would hand every native binary of the
/// namespace to QEMU).
pub const FULL_TARGETS: &[&str] = &[
    "aarch64",
    "arm",
    "riscv64",
    "s390x",
    "ppc64le",
    "mips64el",
    "i386",
    "x86_64",
    "loongarch64",
];

pub use qus_source::testkit::real_deb as find_deb;

/// Debian's architecture name for this machine.
pub fn host_deb_arch() -> &'static str {
    match host_machine().as_str() {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        m if m.starts_with("armv") => "armhf",
        "i686" | "i386" => "i386",
        "ppc64le" => "ppc64el",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        _ => "amd64",
    }
}

/// `uname -m` of the machine running the tests.
pub fn host_machine() -> String {
    qus_binfmt::host::detect(&qus_binfmt::Env::default())
        .expect("this machine's architecture")
        .machine
}

/// The QEMU target name of this machine.
pub fn host_target() -> String {
    qus_binfmt::table::host_target(&host_machine()).to_string()
}

/// Held for writing while a file that will be executed is open for writing, and for reading
/// while a process is spawned. A child forked by another test thread inherits every open
/// file until it execs; executing a file still open for writing that way fails with
/// ETXTBSY ("Text file busy"). `spawn` returns once the child has exec'd, so a spawn under
/// the read lock never holds anyone's writable file.
static EXEC_LOCK: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Runs `cmd` to completion, spawned under [`EXEC_LOCK`].
pub fn output(cmd: &mut Command) -> std::io::Result<std::process::Output> {
    let child = {
        let _g = EXEC_LOCK.read().unwrap_or_else(|e| e.into_inner());
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?
    };
    child.wait_with_output()
}

/// Writes a file that a test may execute (or run as a script), with `mode`.
fn write_executable(path: &Path, content: &[u8], mode: u32) {
    let _g = EXEC_LOCK.write().unwrap_or_else(|e| e.into_inner());
    fs::write(path, content).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Extracts `members` (paths like `./usr/bin/busybox`) of a deb into `dest`.
pub fn extract(deb: &Path, dest: &Path, members: &[String]) {
    fs::create_dir_all(dest).unwrap();
    // Both run while no other test holds a file open for writing: tar writes files that
    // are executed later, so it runs under the write side.
    let _g = EXEC_LOCK.write().unwrap_or_else(|e| e.into_inner());
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .expect("dpkg-deb (tests unpack Debian packages with it)");
    let status = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(dest)
        .args(members)
        .stdin(dpkg.stdout.take().unwrap())
        .status()
        .expect("tar");
    let _ = dpkg.wait();
    assert!(
        status.success(),
        "extracting {members:?} from {}",
        deb.display()
    );
}

/// A temporary directory removed when the test process exits: a `static` is never dropped,
/// so a `TempDir` held by one would stay behind in /tmp after every run.
pub fn process_tempdir() -> PathBuf {
    static DIRS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    extern "C" fn remove_all() {
        let dirs = DIRS.lock().unwrap_or_else(|e| e.into_inner());
        for d in dirs.iter() {
            let _ = fs::remove_dir_all(d);
        }
    }
    let dir = tempfile::tempdir().unwrap().keep();
    let mut dirs = DIRS.lock().unwrap_or_else(|e| e.into_inner());
    if dirs.is_empty() {
        // SAFETY: registers a plain function with no arguments; it runs once, at exit.
        unsafe { libc::atexit(remove_all) };
    }
    dirs.push(dir.clone());
    dir
}

/// Unpacked binaries shared by every test of this process.
pub struct Binaries {
    /// busybox-static of this machine's architecture.
    pub busybox: PathBuf,
    /// `qemu-<T>-static` by target.
    pub emulators: BTreeMap<String, PathBuf>,
    /// busybox-static by Debian architecture, for running foreign binaries.
    pub foreign_busybox: BTreeMap<String, PathBuf>,
}

/// Unpacks the test binaries once per process.
pub fn binaries() -> &'static Binaries {
    static B: OnceLock<Binaries> = OnceLock::new();
    B.get_or_init(|| {
        let dir = process_tempdir();
        let arch = host_deb_arch();
        let bb_dir = dir.join("busybox");
        extract(
            &find_deb("busybox-static", arch),
            &bb_dir,
            &["./usr/bin/busybox".to_string()],
        );
        let mut foreign_busybox = BTreeMap::new();
        for a in ["amd64", "arm64", "armhf"] {
            if a == arch {
                continue;
            }
            let d = dir.join(format!("busybox-{a}"));
            extract(
                &find_deb("busybox-static", a),
                &d,
                &["./usr/bin/busybox".to_string()],
            );
            foreign_busybox.insert(a.to_string(), d.join("usr/bin/busybox"));
        }
        // bookworm's qemu-user-static has `-static` names, as qus images do.
        let qemu_arch = if arch == "amd64" || arch == "arm64" {
            arch
        } else {
            "amd64"
        };
        let q_dir = dir.join("qemu");
        let members: Vec<String> = FULL_TARGETS
            .iter()
            .map(|t| format!("./usr/bin/qemu-{t}-static"))
            .collect();
        extract(&find_deb("qemu-user-static", qemu_arch), &q_dir, &members);
        let emulators = FULL_TARGETS
            .iter()
            .map(|t| {
                (
                    t.to_string(),
                    q_dir.join(format!("usr/bin/qemu-{t}-static")),
                )
            })
            .collect();
        Binaries {
            busybox: bb_dir.join("usr/bin/busybox"),
            emulators,
            foreign_busybox,
        }
    })
}

/// Which emulators a fake image root carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Every target of [`FULL_TARGETS`] but the host's own.
    Full,
    /// No emulator: the register-only image.
    RegisterOnly,
    /// Only aarch64 (or x86_64 on an aarch64 host): a `qus:<T>` image.
    Single,
}

/// A fake image root laid out as the register layer plus emulators, with
/// the entrypoint files from [`qus_binfmt::entrypoint_files`].
pub struct Root {
    /// The directory (QUS_ROOT).
    pub dir: tempfile::TempDir,
}

impl Root {
    /// Path of the root.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The target a single-target image carries on this host.
pub fn single_target() -> &'static str {
    if host_target() == "aarch64" {
        "x86_64"
    } else {
        "aarch64"
    }
}

/// Builds a fake image root.
pub fn make_root(layout: Layout) -> Root {
    make_root_with_busybox(layout, &binaries().busybox)
}

/// Builds a fake image root whose `/qus/busybox` is `busybox` (a foreign
/// one: the image of another architecture).
pub fn make_root_with_busybox(layout: Layout, busybox: &Path) -> Root {
    let b = binaries();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for (path, mode, content) in qus_binfmt::entrypoint_files() {
        let p = root.join(&path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        write_executable(&p, &content, mode);
    }
    let (link, target) = qus_binfmt::QUS_BIN_LINK;
    std::os::unix::fs::symlink(target, root.join(link)).unwrap();
    link_or_copy(busybox, &root.join(qus_binfmt::sh::BUSYBOX_PATH));
    let usr_bin = root.join("usr/bin");
    fs::create_dir_all(&usr_bin).unwrap();
    let host = host_target();
    let wanted: Vec<&str> = match layout {
        Layout::Full => FULL_TARGETS
            .iter()
            .copied()
            .filter(|t| *t != host)
            .collect(),
        Layout::RegisterOnly => vec![],
        Layout::Single => vec![single_target()],
    };
    for t in wanted {
        link_or_copy(&b.emulators[t], &usr_bin.join(format!("qemu-{t}-static")));
    }
    // The Rust side runs from inside the root too: the unprivileged cases run as nobody,
    // who cannot reach a target dir under /root.
    write_executable(&root.join(HELPER_NAME), &fs::read(HELPER).unwrap(), 0o755);
    Root { dir }
}

fn link_or_copy(from: &Path, to: &Path) {
    if fs::hard_link(from, to).is_err() {
        let _g = EXEC_LOCK.write().unwrap_or_else(|e| e.into_inner());
        fs::copy(from, to).unwrap();
    }
}

/// The implementation a command runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    /// `busybox sh /qus/register` from the fake root.
    Sh,
    /// `qus_binfmt::run` through the test helper binary.
    Rust,
}

/// What one run left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Exit status of the command under test.
    pub code: i32,
    /// Its standard output (lossy: names may hold any byte).
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// `== NAME` and the content of every binfmt_misc file but `register`,
    /// after the command (`(not mounted)` when there is no binfmt_misc).
    pub dump: String,
    /// Standard output of the `post` snippet, run after the command.
    pub post: String,
}

const HELPER: &str = env!("CARGO_BIN_EXE_qus-binfmt-test-helper");
const HELPER_NAME: &str = "qus-binfmt-test-helper";

/// Single-quotes `s` for sh.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn command_line(imp: Impl, root: &Path, args: &[String], raw_args: &str) -> String {
    let mut words = match imp {
        Impl::Sh => vec![
            quote(root.join("qus/busybox").to_str().unwrap()),
            "sh".to_string(),
            quote(root.join("qus/register").to_str().unwrap()),
        ],
        Impl::Rust => vec![quote(root.join(HELPER_NAME).to_str().unwrap())],
    };
    words.extend(args.iter().map(|a| quote(a)));
    if !raw_args.is_empty() {
        words.push(raw_args.to_string());
    }
    words.join(" ")
}

/// Everything about one run in a namespace.
#[derive(Debug, Clone, Default)]
pub struct Spec<'a> {
    /// Environment of the command (and of the setup commands).
    pub env: Vec<(&'a str, String)>,
    /// Shell run first (with `BB` the root's busybox, `M` the mount point).
    pub before: String,
    /// Commands of the implementation under test run before `args`.
    pub setup: Vec<Vec<String>>,
    /// Shell run after `setup`, before the command.
    pub between: String,
    /// Arguments of the command under test.
    pub args: Vec<String>,
    /// Shell words appended to the command line as they are (bytes that are
    /// not UTF-8, made with printf).
    pub raw_args: String,
    /// Shell run after the command; its stdout is [`Outcome::post`].
    pub post: String,
    /// Without a mount namespace of its own: mounting binfmt_misc then fails
    /// with EPERM, as in a rootless engine without privileges.
    pub no_mount_ns: bool,
    /// The root's busybox is this foreign host's ([`make_root_with_busybox`]): its
    /// emulator is registered first, and this machine's busybox runs the driver and the
    /// snippets (`BB`).
    pub shell: Option<&'a Shell>,
}

/// Runs `setup` commands then `args` with `imp`, all in one fresh private
/// user+mount namespace whose binfmt_misc starts empty and unmounted.
/// `extra` is shell run after the command, before the dump (output ignored).
pub fn run_in_namespace(
    imp: Impl,
    root: &Path,
    env: &[(&str, &str)],
    setup: &[Vec<String>],
    args: &[String],
    extra: &str,
) -> Outcome {
    let spec = Spec {
        env: env.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        setup: setup.to_vec(),
        args: args.to_vec(),
        post: extra.to_string(),
        ..Spec::default()
    };
    run_spec(imp, root, &spec)
}

/// Runs a [`Spec`] with `imp` in a fresh private user (+ mount) namespace.
pub fn run_spec(imp: Impl, root: &Path, spec: &Spec<'_>) -> Outcome {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    // The shell that runs the driver: the root's busybox, or this machine's when the
    // root's is foreign (it can only run once its emulator is registered).
    let bb = match spec.shell {
        Some(_) => binaries().busybox.clone(),
        None => root.join("qus/busybox"),
    };
    let script = driver_script(imp, root, spec, &bb, w);
    // QUS_DEBUG_DRIVER=1 shows the shell each case runs, for a case that fails.
    if std::env::var_os("QUS_DEBUG_DRIVER").is_some() {
        eprintln!("{script}");
    }
    let script_path = w.join("driver.sh");
    write_executable(&script_path, script.as_bytes(), 0o644);

    let mut cmd = Command::new(unshare());
    cmd.args(["--user", "--map-root-user"]);
    if own_mount_ns(spec) {
        cmd.arg("--mount");
    }
    cmd.arg(&bb)
        .arg("sh")
        .arg(&script_path)
        .env_clear()
        .env("QUS_ROOT", root)
        // Every run is in a private binfmt_misc on purpose: allowed, unless a case says
        // otherwise (QUS_ALLOW_PRIVATE=0).
        .env("QUS_ALLOW_PRIVATE", "1");
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    let out = output(&mut cmd).expect("unshare (util-linux) is needed for these tests");
    assert!(
        out.status.success(),
        "the namespace driver failed: {}\n(needs `unshare --user --map-root-user --mount` and Linux 6.7+ for a private binfmt_misc)",
        String::from_utf8_lossy(&out.stderr)
    );
    let read =
        |n: &str| String::from_utf8_lossy(&fs::read(w.join(n)).unwrap_or_default()).into_owned();
    Outcome {
        code: read("code").trim().parse().unwrap_or(-1),
        stdout: read("stdout"),
        stderr: read("stderr"),
        // Without a mount namespace the dump would be the host's, which
        // other processes may change between two runs.
        dump: if spec.no_mount_ns {
            "(the host's)".to_string()
        } else {
            read("dump")
        },
        post: read("post"),
    }
}

/// The driver: the shell that runs a [`Spec`] in the namespace (`bb` runs it and is `$BB`),
/// leaving stdout, stderr, code, post and dump in `w`.
fn driver_script(imp: Impl, root: &Path, spec: &Spec<'_>, bb: &Path, w: &Path) -> String {
    let mut script = format!(
        "M=/proc/sys/fs/binfmt_misc\nBB={}\nROOT={}\n",
        quote(bb.to_str().unwrap()),
        quote(root.to_str().unwrap())
    );
    // A new mount namespace inherits the host's binfmt_misc when the host has one mounted
    // (systemd hosts always do; the host tests mount it for a while): writes there would
    // reach the host's instance. A tmpfs over the mount point hides it, so every case
    // starts unmounted and registers in this namespace's own instance.
    if own_mount_ns(spec) {
        script.push_str(
            "if [ -e $M/status ]; then \"$BB\" mount -t tmpfs qus-hidden $M || exit 97; fi\n",
        );
    }
    if let Some(line) = spec.shell.and_then(Shell::entry_line) {
        script.push_str(&register_shell(&w.join("shell-binfmt"), &line));
    }
    // A case without a mount namespace of its own runs its commands in a user namespace
    // nested in the driver's: the foreign shell's entry (the driver's instance) still
    // runs it, and mounting fails with EPERM as it does there.
    let wrap = |line: String| match (spec.shell, spec.no_mount_ns) {
        (Some(_), true) => format!("{} --user --map-root-user {line}", quote(unshare())),
        _ => line,
    };
    script.push_str(&spec.before);
    script.push('\n');
    for s in &spec.setup {
        script.push_str(&format!(
            "{} >/dev/null 2>&1\n",
            wrap(command_line(imp, root, s, ""))
        ));
    }
    script.push_str(&spec.between);
    script.push('\n');
    script.push_str(&format!(
        "{} >{} 2>{}\necho $? >{}\n",
        wrap(command_line(imp, root, &spec.args, &spec.raw_args)),
        quote(w.join("stdout").to_str().unwrap()),
        quote(w.join("stderr").to_str().unwrap()),
        quote(w.join("code").to_str().unwrap()),
    ));
    script.push_str(&format!(
        "{{\n{}\n}} >{}\n",
        if spec.post.is_empty() {
            ":"
        } else {
            &spec.post
        },
        quote(w.join("post").to_str().unwrap())
    ));
    // Shell builtins only: a case run for a foreign host may have registered this
    // machine's own target (a register-only image registers every target but the host's),
    // after which no program of this machine runs in the namespace.
    script.push_str(&format!(
        "if [ -e $M/register ]; then for f in $M/*; do [ \"${{f##*/}}\" = register ] && continue; echo \"== ${{f##*/}}\"; while IFS= read -r l || [ -n \"$l\" ]; do printf '%s\\n' \"$l\"; done <\"$f\"; done; else echo '(not mounted)'; fi >{}\n",
        quote(w.join("dump").to_str().unwrap())
    ));
    script
}

/// Whether the driver gets a mount namespace: always for a foreign shell, whose
/// emulator's binfmt_misc must be mounted before anything runs.
fn own_mount_ns(spec: &Spec<'_>) -> bool {
    !spec.no_mount_ns || spec.shell.is_some()
}

/// Driver lines that register a foreign shell's emulator (`line`, with F) in the
/// namespace's own binfmt_misc, mounted at `at` rather than at `$M`: every case still
/// starts with `$M` unmounted, and its mount there is the same instance, this entry in it.
fn register_shell(at: &Path, line: &str) -> String {
    let at = quote(at.to_str().unwrap());
    format!(
        "\"$BB\" mkdir -p {at} && \"$BB\" mount -t binfmt_misc binfmt_misc {at} && printf '%s' {} >{at}/register || exit 96\n",
        quote(line)
    )
}

/// util-linux's `unshare`, by absolute path: the driver runs with an empty environment.
fn unshare() -> &'static str {
    static U: OnceLock<String> = OnceLock::new();
    U.get_or_init(|| {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|d| d.join("unshare"))
            .find(|p| p.is_file())
            .and_then(|p| p.to_str().map(str::to_string))
            .expect("unshare (util-linux) is needed for these tests")
    })
}

/// binfmt_misc as the host sees it: its mounts and entries.
pub fn host_binfmt_snapshot() -> String {
    let mounts: String = fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("binfmt_misc"))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut entries: Vec<String> = fs::read_dir("/proc/sys/fs/binfmt_misc")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    entries.sort();
    format!("{mounts}{}", entries.join(" "))
}

/// Whether a dump holds entry `name` with exactly `flags`.
pub fn has_entry(dump: &str, name: &str, flags: &str) -> bool {
    dump.split("== ").any(|block| {
        block.starts_with(&format!("{name}\n")) && block.contains(&format!("\nflags: {flags}\n"))
    })
}

/// Entry names in a dump (without `status`).
pub fn entry_names(dump: &str) -> Vec<String> {
    dump.lines()
        .filter_map(|l| l.strip_prefix("== "))
        .filter(|n| *n != "status")
        .map(str::to_string)
        .collect()
}

/// Runs `args` with `imp` as an unprivileged user (nobody, via setpriv, when
/// the tests run as root) in the host's namespaces, with binfmt_misc expected
/// at `mount`: for error paths only, where nothing can be changed.
pub fn run_unprivileged(imp: Impl, root: &Path, mount: &str, args: &[String]) -> Outcome {
    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    let line = command_line(imp, root, args, "");
    let mut cmd = if is_root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
        c
    } else {
        Command::new("env")
    };
    cmd.arg(root.join("qus/busybox"))
        .args(["sh", "-c", &line])
        .env_clear()
        .env("QUS_ROOT", root)
        .env("QUS_BINFMT_MOUNT", mount)
        .env("QUS_HOST_ARCH", "x86_64");
    let out = output(&mut cmd).expect("setpriv (util-linux)");
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        dump: String::new(),
        post: String::new(),
    }
}
