//! qus's own binary as a release asset, `qus_<host>`: the file `qus assets --qus-binary`
//! names, copied beside the emulators and listed in SHA256SUMS. Only a statically linked
//! qus is taken: users download it onto any machine of its architecture (a host with no
//! Rust toolchain and no engine, for `qus register`), where a dynamically linked one would
//! need the build machine's libc.

use super::{Asset, AssetStatus};
use crate::arch::Host;
use anyhow::Context as _;
use sha2::{Digest, Sha256};
use std::path::Path;

/// The asset's file name for a host: `qus_amd64`.
pub(crate) fn name(host: Host) -> String {
    format!("qus_{}", host.name())
}

/// Pure: the host a qus binary runs on, from its first bytes (ELF header and program
/// headers), refusing anything but a static executable of a qus host.
pub(crate) fn host_of(bytes: &[u8], file: &Path) -> anyhow::Result<Host> {
    let what = |e: qus_source::elf::NotExpected| {
        crate::exit::usage(format!(
            "--qus-binary {}: {e}, not a qus binary",
            file.display()
        ))
    };
    let header = qus_source::elf::parse(bytes).map_err(what)?;
    let host = Host::all()
        .find(|h| {
            qus_source::elf::for_debian_arch(h.debian()).is_some_and(|e| e.check(bytes).is_ok())
        })
        .ok_or_else(|| {
            crate::exit::usage(format!(
                "--qus-binary {}: an ELF {header} file, for no host qus knows",
                file.display()
            ))
        })?;
    if let Some(interp) = qus_source::elf::interpreter(bytes).map_err(what)? {
        return Err(crate::exit::usage(format!(
            "--qus-binary {}: dynamically linked (its interpreter is {interp}), so it runs only \
             where that libc is: build a static qus with `ci/build-qus --static` (what ci/main \
             and the release workflow use)",
            file.display()
        )));
    }
    Ok(host)
}

/// Copies `file` into `out` as `qus_<host>` (mode 0755, through a temporary file), unless
/// the same bytes are already there.
pub(crate) fn write(out: &Path, file: &Path) -> anyhow::Result<Asset> {
    let bytes = std::fs::read(file)
        .map_err(|e| crate::exit::usage(format!("--qus-binary {}: {e}", file.display())))?;
    let host = host_of(&bytes, file)?;
    let name = name(host);
    let path = out.join(&name);
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let same = std::fs::read(&path).is_ok_and(|have| hex::encode(Sha256::digest(have)) == sha256);
    if !same {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        super::write_atomic_mode(&path, &bytes, 0o755)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(Asset {
        name,
        origin: None,
        sha256,
        size: bytes.len() as u64,
        status: if same {
            AssetStatus::Unchanged
        } else {
            AssetStatus::Written
        },
    })
}
