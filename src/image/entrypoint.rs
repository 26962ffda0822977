//! The entrypoint layer: busybox-static for the host, the sh entrypoint and the table it
//! reads (both rendered by `qus_binfmt`, where the table lives), and `/qus/bin`, a link that
//! keeps dbhi/qus's interpreter paths (`/qus/bin/qemu-T-static`) working.

use crate::image::files::{Content, Entry};
use crate::packages::File;
use sha2::{Digest, Sha256};

/// Where emulators live in every image (multiarch/qemu-user-static's path).
pub(crate) const EMULATOR_DIR: &str = "usr/bin";

/// The image's ENTRYPOINT.
pub(crate) fn command() -> &'static [&'static str] {
    qus_binfmt::ENTRYPOINT
}

fn content(file: &File) -> Content {
    Content::File {
        path: file.path.clone(),
        size: file.size,
        sha256: file.sha256.clone(),
    }
}

/// The files of the entrypoint layer, with busybox from `busybox`.
pub(crate) fn layer(busybox: &File) -> Vec<Entry> {
    let mut v = vec![Entry::File {
        path: qus_binfmt::sh::BUSYBOX_PATH.to_string(),
        mode: 0o755,
        content: content(busybox),
    }];
    for (path, mode, bytes) in qus_binfmt::entrypoint_files() {
        v.push(Entry::File {
            path,
            mode,
            content: Content::Bytes(bytes),
        });
    }
    let (link, target) = qus_binfmt::QUS_BIN_LINK;
    v.push(Entry::Symlink {
        path: link.to_string(),
        target: target.to_string(),
    });
    v
}

/// The files of an emulator layer.
pub(crate) fn emulator_layer(target: &str, file: &File) -> Vec<Entry> {
    vec![Entry::File {
        path: format!("{EMULATOR_DIR}/qemu-{target}-static"),
        mode: 0o755,
        content: content(file),
    }]
}

/// sha256 over everything of the entrypoint layer that qus itself writes (busybox is pinned
/// separately, by its package's sum).
pub(crate) fn digest() -> String {
    let mut h = Sha256::new();
    for (path, mode, bytes) in qus_binfmt::entrypoint_files() {
        h.update(path.as_bytes());
        h.update(mode.to_le_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    h.update(command().join(" ").as_bytes());
    let (link, target) = qus_binfmt::QUS_BIN_LINK;
    h.update(format!("{link}->{target}").as_bytes());
    hex::encode(h.finalize())
}
