//! Persistence: files that make a boot re-register what qus registers now.
//!
//! binfmt_misc forgets everything at reboot. Two host mechanisms replay it:
//! systemd-binfmt reads `/etc/binfmt.d/*.conf` (one register line per line),
//! and Debian's binfmt-support imports `/usr/share/binfmts/<name>` files of
//! `key value` lines (update-binfmts(8), "FORMAT FILES": package,
//! interpreter, magic, offset, mask, credentials, preserve, fix_binary).
//!
//! Exports are written as root into system directories, so a file is never
//! written through: it is created under a fresh name in the same directory
//! (O_CREAT|O_EXCL|O_NOFOLLOW, mode 0644, synced) and renamed over the
//! destination, which replaces a symlink instead of following it, and a
//! crash leaves the old file or the new one, never an empty one that
//! systemd-binfmt rejects at boot. A directory anyone may write to without
//! the sticky bit is refused: another user could swap the file between the
//! write and the rename.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::dialect::ExportFormat;
use crate::error::{Errno, Error};
use crate::line::{self, Flags};
use crate::table::Target;

/// File name of `target` in an export directory of `format`.
pub fn file_name(format: ExportFormat, target: &Target) -> String {
    match format {
        ExportFormat::BinfmtD => format!("{}.conf", target.entry_name()),
        ExportFormat::UpdateBinfmts => target.entry_name(),
    }
}

/// systemd binfmt.d content: the register line and a newline.
pub fn binfmt_d(target: &Target, interpreter: &str, flags: Flags) -> Result<String, Error> {
    Ok(format!("{}\n", line::render(target, interpreter, flags)?))
}

/// Debian update-binfmts import file. `package` is `qemu-<T>`, as QEMU's
/// `qemu-binfmt-conf.sh --debian` writes it, so `update-binfmts --package
/// qemu-<T> --remove` undoes it. update-binfmts has no O without C; C
/// implies O there as in the kernel.
pub fn update_binfmts(target: &Target, interpreter: &str, flags: Flags) -> Result<String, Error> {
    // Render once for the validation the kernel line gets.
    line::render(target, interpreter, flags)?;
    let yn = |b: bool| if b { "yes" } else { "no" };
    Ok(format!(
        "package {name}\ninterpreter {interpreter}\nmagic {magic}\noffset 0\nmask {mask}\ncredentials {c}\nfix_binary {f}\npreserve {p}\n",
        name = target.entry_name(),
        magic = line::escape(target.magic),
        mask = line::escape(target.mask),
        c = yn(flags.credentials),
        f = yn(flags.fix_binary),
        p = yn(flags.preserve_argv0),
    ))
}

/// Content of `target`'s file in `format`.
pub fn render(
    format: ExportFormat,
    target: &Target,
    interpreter: &str,
    flags: Flags,
) -> Result<String, Error> {
    match format {
        ExportFormat::BinfmtD => binfmt_d(target, interpreter, flags),
        ExportFormat::UpdateBinfmts => update_binfmts(target, interpreter, flags),
    }
}

/// Writes `content` as `dir/name`, creating `dir`, atomically (see the
/// module documentation). Returns the path.
pub fn write(dir: &str, name: &str, content: &str) -> Result<String, Error> {
    let trimmed = dir.trim_end_matches('/');
    let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
    fs::create_dir_all(dir).map_err(|e| Error::Export {
        action: "create directory",
        path: trimmed.to_string(),
        errno: Errno::from_io(&e),
    })?;
    let meta = fs::metadata(dir).map_err(|e| Error::Export {
        action: "create directory",
        path: trimmed.to_string(),
        errno: Errno::from_io(&e),
    })?;
    if meta.mode() & 0o002 != 0 && meta.mode() & 0o1000 == 0 {
        return Err(Error::UnsafeExportDir(trimmed.to_string()));
    }
    let path = format!("{}/{name}", trimmed.trim_end_matches('/'));
    if Path::new(&path).is_dir() {
        return Err(Error::ExportIsDirectory(path));
    }
    let failed = |e: &std::io::Error| Error::Export {
        action: "write",
        path: path.clone(),
        errno: Errno::from_io(e),
    };
    let (tmp, mut file) = create_temporary(trimmed, name).map_err(|e| failed(&e))?;
    let written = file
        .write_all(content.as_bytes())
        .and_then(|_| file.set_permissions(fs::Permissions::from_mode(0o644)))
        .and_then(|_| file.sync_all())
        .and_then(|_| fs::rename(&tmp, &path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(failed(&e));
    }
    Ok(path)
}

/// A new file `dir/.name.XXXXXX` that did not exist (O_EXCL) and is not a
/// link (O_NOFOLLOW); its leading dot and suffix keep systemd-binfmt (which
/// reads `*.conf`) and update-binfmts from ever reading a half-written one.
fn create_temporary(dir: &str, name: &str) -> std::io::Result<(String, fs::File)> {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ u64::from(std::process::id()).rotate_left(32);
    let mut last = None;
    for _ in 0..100 {
        let mut suffix = String::new();
        for _ in 0..6 {
            // xorshift: unpredictable enough next to O_EXCL, which is what
            // makes the name safe.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            suffix.push(char::from(CHARS[(seed % CHARS.len() as u64) as usize]));
        }
        let tmp = format!("{}/.{name}.{suffix}", dir.trim_end_matches('/'));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::from_raw_os_error(libc::EEXIST)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::find;

    #[test]
    fn binfmt_d_is_the_register_line() {
        let t = find("riscv64").unwrap();
        let s = binfmt_d(t, "/usr/bin/qemu-riscv64-static", Flags::PERSISTENT).unwrap();
        assert!(s.starts_with(":qemu-riscv64:M::\\x7f\\x45\\x4c\\x46\\x02"));
        assert!(s.ends_with(":/usr/bin/qemu-riscv64-static:F\n"));
        assert_eq!(s.lines().count(), 1);
        assert_eq!(file_name(ExportFormat::BinfmtD, t), "qemu-riscv64.conf");
    }

    #[test]
    fn update_binfmts_has_every_key() {
        let t = find("aarch64").unwrap();
        let flags = Flags {
            credentials: true,
            fix_binary: true,
            ..Flags::default()
        };
        let s = update_binfmts(t, "/usr/bin/qemu-aarch64-static", flags).unwrap();
        assert_eq!(
            s,
            "package qemu-aarch64\n\
             interpreter /usr/bin/qemu-aarch64-static\n\
             magic \\x7f\\x45\\x4c\\x46\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00\n\
             offset 0\n\
             mask \\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff\n\
             credentials yes\n\
             fix_binary yes\n\
             preserve no\n"
        );
        assert_eq!(file_name(ExportFormat::UpdateBinfmts, t), "qemu-aarch64");
    }

    #[test]
    fn rejects_bad_interpreters_and_writes_files() {
        let t = find("arm").unwrap();
        assert!(render(ExportFormat::UpdateBinfmts, t, "rel", Flags::default()).is_err());
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        let path = write(sub.to_str().unwrap(), "qemu-arm.conf", "x\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "x\n");
        let mode = fs::metadata(&path).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o644);
        // Nothing but the file: the temporary was renamed.
        assert_eq!(fs::read_dir(&sub).unwrap().count(), 1);
    }

    #[test]
    fn replaces_a_symlink_instead_of_writing_through_it() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "keep\n").unwrap();
        std::os::unix::fs::symlink(&victim, out.join("qemu-arm.conf")).unwrap();
        write(out.to_str().unwrap(), "qemu-arm.conf", "line\n").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep\n");
        let meta = fs::symlink_metadata(out.join("qemu-arm.conf")).unwrap();
        assert!(meta.file_type().is_file());
        // A destination that is a directory (or a link to one) is refused.
        fs::create_dir(out.join("qemu-riscv64.conf")).unwrap();
        assert!(matches!(
            write(out.to_str().unwrap(), "qemu-riscv64.conf", "x"),
            Err(Error::ExportIsDirectory(_))
        ));
    }

    #[test]
    fn refuses_directories_others_may_write_without_sticky_bit() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            write(open.to_str().unwrap(), "qemu-arm.conf", "x"),
            Err(Error::UnsafeExportDir(_))
        ));
        assert_eq!(fs::read_dir(&open).unwrap().count(), 0);
        fs::set_permissions(&open, fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(write(open.to_str().unwrap(), "qemu-arm.conf", "x").is_ok());
    }
}
