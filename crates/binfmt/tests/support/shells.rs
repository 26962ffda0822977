//! The shells the images ship: busybox-static of every host of the default matrix, at the
//! version images/qus.lock pins, and the emulator that runs each on this machine (Debian's
//! static `qemu-user` for this machine, from the test packages), so the differential test
//! can run the entrypoint under each as that host's image does.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use qus_binfmt::table::{self, Target};

use super::{extract, find_deb, host_deb_arch, host_machine, process_tempdir};

/// Name of the binfmt_misc entry that runs a foreign shell: not `qemu-<target>`, so no reset,
/// pattern or platform of a case removes it (only an exact `--uninstall qus-test-shell`).
pub const SHELL_ENTRY: &str = "qus-test-shell";

/// One host's busybox, as its image ships it.
#[derive(Debug)]
pub struct Shell {
    /// Its version, word size and byte order ([`kind_of`]).
    pub kind: String,
    /// The qus host name (images/qus.yml).
    pub host: String,
    /// busybox-static's Debian version, as pinned.
    pub version: String,
    /// `uname -m` of such a host: what `QUS_HOST_ARCH` says to pretend it.
    pub machine: &'static str,
    /// The unpacked busybox.
    pub busybox: PathBuf,
    /// The target whose emulator runs it here, and that emulator; None when this machine
    /// runs it natively (i386 on x86_64).
    pub emulator: Option<(&'static Target, PathBuf)>,
}

impl Shell {
    /// `busybox 1:1.37.0-6+b9 (s390x)`, for messages.
    pub fn label(&self) -> String {
        format!("busybox {} ({})", self.version, self.host)
    }

    /// The register line of the entry that runs this shell, with F so the kernel opens
    /// the emulator now (None when it runs natively).
    pub fn entry_line(&self) -> Option<String> {
        let (t, emulator) = self.emulator.as_ref()?;
        let line = qus_binfmt::line::render_entry(
            SHELL_ENTRY,
            t.magic,
            t.mask,
            emulator.to_str().expect("a UTF-8 temporary path"),
            qus_binfmt::Flags::PERSISTENT,
        );
        Some(line.expect("a valid register line"))
    }
}

/// `uname -m` of a qus host.
fn machine_of(host: &str) -> &'static str {
    match host {
        "amd64" => "x86_64",
        "arm64v8" => "aarch64",
        "arm32v7" => "armv7l",
        "arm32v6" => "armv6l",
        "i386" => "i686",
        "ppc64le" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loong64" => "loongarch64",
        other => panic!("images/qus.lock pins busybox for host {other}, which these tests do not know: add its uname -m to tests/support/shells.rs"),
    }
}

/// One `role: busybox` package of images/qus.lock.
struct Pin {
    host: String,
    version: String,
    /// Its pool file name (`busybox-static_1.37.0-6+b9_s390x.deb`).
    file: String,
}

/// The busybox pins of images/qus.lock, read line by line (the lock is YAML that `qus lock`
/// writes, one `key: value` per line).
fn busybox_pins() -> Vec<Pin> {
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/qus.lock");
    let text = std::fs::read_to_string(&lock)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", lock.display()));
    let mut pins = Vec::new();
    let mut role = "";
    let (mut host, mut version) = (String::new(), String::new());
    for line in text.lines() {
        let line = line.trim_start_matches("- ").trim();
        let Some((key, value)) = line.split_once(": ") else {
            continue;
        };
        match key {
            "role" => role = if value == "busybox" { "busybox" } else { "" },
            "host" => host = value.to_string(),
            "version" => version = value.to_string(),
            "file" if role == "busybox" => pins.push(Pin {
                host: host.clone(),
                version: version.clone(),
                file: value.rsplit('/').next().unwrap_or(value).to_string(),
            }),
            _ => {}
        }
    }
    assert!(!pins.is_empty(), "no busybox pin in {}", lock.display());
    pins
}

/// The `.deb` of a pin among the test packages.
fn pinned_deb(pin: &Pin) -> PathBuf {
    let arch = pin
        .file
        .strip_suffix(".deb")
        .and_then(|f| f.rsplit('_').next())
        .expect("a pool file name ends in _ARCH.deb");
    let dir = qus_source::testkit::test_debs();
    let found = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| qus_source::testkit::pool_name(p) == pin.file);
    found.unwrap_or_else(|| {
        panic!(
            "{} (the busybox images/qus.lock pins for {}, {arch}) is not in {}: run ci/fetch-test-debs",
            pin.file,
            pin.host,
            dir.display()
        )
    })
}

/// Every pinned busybox, this machine's included, unpacked once per process, with the
/// emulators that run them.
pub fn pinned_shells() -> &'static [Shell] {
    static S: OnceLock<Vec<Shell>> = OnceLock::new();
    S.get_or_init(|| {
        let dir = process_tempdir();
        let here = host_machine();
        let pins = busybox_pins();
        let mut members: Vec<String> = pins
            .iter()
            .map(|p| target_of(machine_of(&p.host)))
            .filter(|t| !runs_natively(t, &here))
            .map(|t| format!("./usr/bin/qemu-{}", t.binary))
            .collect();
        members.sort();
        members.dedup();
        let qemu_dir = dir.join("qemu");
        if !members.is_empty() {
            // Trixie's qemu-user is static, its emulators named without a suffix.
            extract(&find_deb("qemu-user", host_deb_arch()), &qemu_dir, &members);
        }
        pins.into_iter()
            .map(|pin| {
                let bb_dir = dir.join(format!("busybox-{}", pin.host));
                extract(
                    &pinned_deb(&pin),
                    &bb_dir,
                    &["./usr/bin/busybox".to_string()],
                );
                let busybox = bb_dir.join("usr/bin/busybox");
                let machine = machine_of(&pin.host);
                let t = target_of(machine);
                let emulator = (!runs_natively(t, &here))
                    .then(|| (t, qemu_dir.join(format!("usr/bin/qemu-{}", t.binary))));
                Shell {
                    kind: kind_of(&pin.version, &busybox),
                    host: pin.host,
                    version: pin.version,
                    machine,
                    busybox,
                    emulator,
                }
            })
            .collect()
    })
}

/// Every pinned busybox but this machine's own: the shells of the other hosts' images.
pub fn foreign_shells() -> Vec<&'static Shell> {
    let here = table::host_target(&host_machine()).to_string();
    pinned_shells()
        .iter()
        .filter(|s| table::host_target(s.machine) != here)
        .collect()
}

/// The foreign shells the `k`th case of a test runs under. Every case runs under one shell
/// of each kind (busybox version, word size, byte order) that this machine's busybox is
/// not, one that runs natively if there is one (it costs no emulation); the other shells
/// take turns, one a case. `QUS_TEST_SHELLS=all`: every case under every shell.
pub fn shells_for_case(k: usize) -> Vec<&'static Shell> {
    let foreign = foreign_shells();
    if std::env::var("QUS_TEST_SHELLS").as_deref() == Ok("all") {
        return foreign;
    }
    let here = host_machine();
    let own_kind = pinned_shells()
        .iter()
        .find(|s| table::host_target(s.machine) == table::host_target(&here))
        .map(|s| s.kind.clone());
    let mut every_case: Vec<&Shell> = Vec::new();
    for s in &foreign {
        if Some(&s.kind) == own_kind.as_ref() {
            continue;
        }
        match every_case.iter().position(|e| e.kind == s.kind) {
            None => every_case.push(s),
            Some(i) if s.emulator.is_none() => every_case[i] = s,
            Some(_) => {}
        }
    }
    let turns: Vec<&Shell> = foreign
        .iter()
        .filter(|s| !every_case.iter().any(|e| e.host == s.host))
        .copied()
        .collect();
    if !turns.is_empty() {
        every_case.push(turns[k % turns.len()]);
    }
    every_case
}

/// `1:1.37.0-6+b9 64-bit big-endian`: what may make one busybox run a script differently
/// from another, read from its ELF header (EI_CLASS, EI_DATA).
fn kind_of(version: &str, busybox: &Path) -> String {
    let mut head = [0u8; 6];
    std::fs::File::open(busybox)
        .and_then(|mut f| f.read_exact(&mut head))
        .expect("the unpacked busybox");
    let bits = if head[4] == 2 { 64 } else { 32 };
    let order = if head[5] == 2 {
        "big-endian"
    } else {
        "little-endian"
    };
    format!("{version} {bits}-bit {order}")
}

fn target_of(machine: &str) -> &'static Target {
    table::find(table::host_target(machine)).expect("a host of the matrix is a QEMU target")
}

/// Whether a machine `here` runs the target's programs itself: x86_64 runs i386's.
fn runs_natively(t: &Target, here: &str) -> bool {
    let native = table::native_platforms(here);
    t.oci.iter().any(|p| native.contains(p))
}
