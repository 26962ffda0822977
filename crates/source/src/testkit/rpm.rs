//! rpms the way Fedora's qemu.spec makes them (`qemu-user-static-<T>` subpackages of an
//! epoch-2 `qemu`, each with `/usr/bin/qemu-<T>-static`), built with Debian's `rpmbuild`
//! around real emulator binaries: binary-only, no compiling, no debuginfo, no stripping.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `qemu` version the built rpms carry (`2:10.0.13-1.qus`).
pub const VERSION: &str = "10.0.13";
/// Their release.
pub const RELEASE: &str = "1.qus";

/// The spec of a build whose subpackage `qemu-user-static-<T>` carries
/// `%{bindir}/qemu-<T>-static` as `/usr/bin/qemu-<T>-static`, for each of `targets`.
pub fn qemu_spec(targets: &[&str]) -> String {
    let mut s = format!(
        "%global debug_package %{{nil}}\n%global __os_install_post %{{nil}}\n\
         %define _build_id_links none\nName: qemu\nVersion: {VERSION}\nRelease: {RELEASE}\n\
         Epoch: 2\nSummary: QEMU\nLicense: GPL-2.0-only\n%description\nQEMU.\n"
    );
    for t in targets {
        s.push_str(&format!(
            "%package user-static-{t}\nSummary: QEMU user mode emulation of {t} binaries \
             (static)\nAutoReqProv: no\n%description user-static-{t}\n{t}.\n"
        ));
    }
    s.push_str("%install\nmkdir -p %{buildroot}/usr/bin\n");
    for t in targets {
        s.push_str(&format!(
            "install -m 0755 %{{bindir}}/qemu-{t}-static %{{buildroot}}/usr/bin/\n"
        ));
    }
    for t in targets {
        s.push_str(&format!(
            "%files user-static-{t}\n/usr/bin/qemu-{t}-static\n"
        ));
    }
    s
}

/// Runs `rpmbuild -bb` on `spec` for the rpm arch `target` (`x86_64`, `aarch64`) with the
/// payload compression `payload` (`w3.zstdio`, `w2.xzdio` …), taking the emulators from
/// `bindir`; everything happens under `work`. Returns the path of each target's rpm.
pub fn rpmbuild(
    spec: &str,
    targets: &[&str],
    arch: &str,
    payload: &str,
    bindir: &Path,
    work: &Path,
) -> Vec<PathBuf> {
    let top = work.join("top");
    std::fs::create_dir_all(work.join("tmp")).unwrap();
    let spec_file = work.join("qemu.spec");
    std::fs::write(&spec_file, spec).unwrap();
    let out = Command::new("rpmbuild")
        .args(["-bb", "--quiet", "--target", arch])
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg("--define")
        .arg(format!("_tmppath {}", work.join("tmp").display()))
        .arg("--define")
        .arg(format!("_binary_payload {payload}"))
        .arg("--define")
        .arg(format!("bindir {}", bindir.display()))
        .arg(&spec_file)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run rpmbuild ({e}): install Debian's `rpm` package (.ci/run does)")
        });
    assert!(
        out.status.success(),
        "rpmbuild failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    targets
        .iter()
        .map(|t| {
            top.join("RPMS").join(arch).join(format!(
                "qemu-user-static-{t}-{VERSION}-{RELEASE}.{arch}.rpm"
            ))
        })
        .collect()
}
