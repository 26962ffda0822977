//! The list of files qus installed in a version directory (`.qus-installed`): uninstalling
//! removes what it lists and nothing else.

use anyhow::{anyhow, Context as _};
use std::collections::BTreeSet;
use std::path::Path;

/// The list's file name.
const MANIFEST: &str = ".qus-installed";

/// The `qemu-*` names the list of `dir` holds (none when there is no list).
pub(super) fn read(dir: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(dir.join(MANIFEST))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("qemu-") && !l.contains('/'))
        .map(str::to_string)
        .collect()
}

/// Writes the list of `dir` through a temporary file and a rename; an empty list removes
/// the file.
pub(super) fn write(dir: &Path, names: &BTreeSet<String>) -> anyhow::Result<()> {
    let path = dir.join(MANIFEST);
    if names.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(anyhow!("cannot remove {}: {e}", path.display()))
            }
            _ => Ok(()),
        };
    }
    let text: String = names.iter().map(|n| format!("{n}\n")).collect();
    let tmp = dir.join(format!("{MANIFEST}.{}", std::process::id()));
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .with_context(|| format!("cannot write {}", path.display()))
}
