//! Files written whole or not at all: through a temporary file in the same folder, synced,
//! then renamed into place, so an interrupted run never leaves a truncated file under its
//! final name.

use std::io::{self, Write as _};
use std::path::Path;

/// Writes `bytes` to `path` with `mode` (a temporary file starts as 0600: release files are
/// for everyone to read).
pub(crate) fn write(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(mode),
    )?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
