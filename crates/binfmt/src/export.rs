//! Persistence: files that make a boot re-register what qus registers now.
//!
//! binfmt_misc forgets everything at reboot. Two host mechanisms replay it:
//! systemd-binfmt reads `/etc/binfmt.d/*.conf` (one register line per line),
//! and Debian's binfmt-support imports `/usr/share/binfmts/<name>` files of
//! `key value` lines (update-binfmts(8), "FORMAT FILES": package,
//! interpreter, magic, offset, mask, credentials, preserve, fix_binary).

use std::fs;
use std::path::Path;

use crate::dialect::ExportFormat;
use crate::error::Error;
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

/// Writes `content` as `dir/name`, creating `dir`. Returns the path.
pub fn write(dir: &str, name: &str, content: &str) -> Result<String, Error> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let path = format!("{}/{name}", dir.trim_end_matches('/'));
    fs::write(Path::new(&path), content).map_err(|e| Error::io(&path, e))?;
    Ok(path)
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
        assert_eq!(fs::read_to_string(path).unwrap(), "x\n");
    }
}
