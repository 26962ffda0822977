//! The `:name:M::magic:mask:interpreter:flags` line written to `register`.
//!
//! Pure: rendering and validation only, so every rule the kernel applies
//! (fs/binfmt_misc.c, `create_entry`) is checked before anything is written
//! and is unit-tested without a kernel.

use crate::error::Error;
use crate::table::Target;

/// Longest line `register` accepts: `MAX_REGISTER_LENGTH` in the kernel's
/// fs/binfmt_misc.c (1920 since Linux 4.x and still in 6.x, including the
/// per-user-namespace instances of 6.7+); `create_entry` returns EINVAL past it.
pub const MAX_REGISTER_LENGTH: usize = 1920;

/// Largest magic/mask the kernel accepts: `BINPRM_BUF_SIZE`.
pub const BINPRM_BUF_SIZE: usize = 256;

/// binfmt_misc flags, chosen per call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// P: pass the original `argv[0]` to the emulator.
    pub preserve_argv0: bool,
    /// O: hand the emulator an open fd of the binary (lets it run
    /// unreadable binaries). Implied by `credentials`.
    pub open_binary: bool,
    /// C: compute credentials from the binary (setuid works); implies O.
    pub credentials: bool,
    /// F: the kernel opens the interpreter now and keeps the open file, so
    /// it keeps working after this container (and its filesystem) is gone.
    pub fix_binary: bool,
}

impl Flags {
    /// Only F: what `docker run --privileged qus` without arguments uses.
    pub const PERSISTENT: Flags = Flags {
        preserve_argv0: false,
        open_binary: false,
        credentials: false,
        fix_binary: true,
    };

    /// The flag letters, in the order the kernel prints them in an entry
    /// file (`P`, `O`, `C`, `F`); C always brings O along, as QEMU writes it.
    pub fn letters(&self) -> String {
        let mut s = String::new();
        if self.preserve_argv0 {
            s.push('P');
        }
        if self.open_binary || self.credentials {
            s.push('O');
        }
        if self.credentials {
            s.push('C');
        }
        if self.fix_binary {
            s.push('F');
        }
        s
    }
}

/// Escapes bytes as `\xHH` text, the form `register` and binfmt.d expect.
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 4);
    for b in bytes {
        s.push_str(&format!("\\x{b:02x}"));
    }
    s
}

/// Flags as messages show them: `flags OCF`, or `no flags`.
pub fn shown_flags(letters: &str) -> String {
    if letters.is_empty() {
        "no flags".to_string()
    } else {
        format!("flags {letters}")
    }
}

/// Checks an entry name the way the kernel does, plus the names binfmt_misc
/// itself uses and whitespace (which would make the entry unusable from sh).
pub fn validate_name(name: &str) -> Result<(), Error> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name == "register"
        || name == "status"
        || name.contains('/')
        || name.contains(':')
        || name.chars().any(|c| c.is_whitespace() || c.is_control());
    if bad {
        return Err(Error::BadName(name.to_string()));
    }
    Ok(())
}

/// Checks an interpreter path: absolute, no `:` (the line's delimiter), no
/// control characters (a newline would end the line early), no `.` or `..`
/// components (the path the kernel opens is the path qus checked).
pub fn validate_interpreter(path: &str) -> Result<(), Error> {
    if !path.starts_with('/') {
        return Err(Error::BadInterpreter {
            path: path.to_string(),
            why: "it must be an absolute path",
        });
    }
    if path.contains(':') {
        return Err(Error::BadInterpreter {
            path: path.to_string(),
            why: "it must not contain ':'",
        });
    }
    if path.chars().any(|c| c.is_control()) {
        return Err(Error::BadInterpreter {
            path: path.to_string(),
            why: "it must not contain control characters",
        });
    }
    if path.split('/').any(|c| c == "." || c == "..") {
        return Err(Error::BadInterpreter {
            path: path.to_string(),
            why: "it must not contain '.' or '..' components",
        });
    }
    Ok(())
}

/// Renders and validates the register line for `target`.
pub fn render(target: &Target, interpreter: &str, flags: Flags) -> Result<String, Error> {
    render_entry(
        &target.entry_name(),
        target.magic,
        target.mask,
        interpreter,
        flags,
    )
}

/// Renders and validates a register line for any magic entry.
pub fn render_entry(
    name: &str,
    magic: &[u8],
    mask: &[u8],
    interpreter: &str,
    flags: Flags,
) -> Result<String, Error> {
    validate_name(name)?;
    validate_interpreter(interpreter)?;
    if magic.is_empty() || magic.len() != mask.len() || magic.len() > BINPRM_BUF_SIZE {
        return Err(Error::BadMagic(name.to_string()));
    }
    let line = format!(
        ":{name}:M::{}:{}:{interpreter}:{}",
        escape(magic),
        escape(mask),
        flags.letters()
    );
    if line.len() > MAX_REGISTER_LENGTH {
        return Err(Error::LineTooLong {
            name: name.to_string(),
            len: line.len(),
        });
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{find, TARGETS};

    #[test]
    fn renders_aarch64_with_f() {
        let t = find("aarch64").unwrap();
        let line = render(t, "/usr/bin/qemu-aarch64-static", Flags::PERSISTENT).unwrap();
        assert_eq!(
            line,
            ":qemu-aarch64:M::\\x7f\\x45\\x4c\\x46\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00:\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff:/usr/bin/qemu-aarch64-static:F"
        );
    }

    #[test]
    fn flag_letters_follow_kernel_order_and_c_implies_o() {
        let all = Flags {
            preserve_argv0: true,
            open_binary: false,
            credentials: true,
            fix_binary: true,
        };
        assert_eq!(all.letters(), "POCF");
        assert_eq!(Flags::default().letters(), "");
        assert_eq!(Flags::PERSISTENT.letters(), "F");
        let o = Flags {
            open_binary: true,
            ..Flags::default()
        };
        assert_eq!(o.letters(), "O");
        let c = Flags {
            credentials: true,
            ..Flags::default()
        };
        assert_eq!(c.letters(), "OC");
    }

    #[test]
    fn every_target_renders_within_the_kernel_limit() {
        let long_path = format!("/{}", "x".repeat(200));
        for t in TARGETS {
            let line = render(t, &long_path, Flags::PERSISTENT).unwrap();
            assert!(line.len() <= MAX_REGISTER_LENGTH);
            assert!(line.starts_with(&format!(":qemu-{}:M::\\x7f", t.name)));
        }
    }

    #[test]
    fn rejects_what_the_kernel_rejects() {
        let t = find("arm").unwrap();
        for name in [
            "", ".", "..", "a/b", "a:b", "a b", "a\tb", "register", "status",
        ] {
            assert!(
                matches!(
                    render_entry(name, t.magic, t.mask, "/x", Flags::default()),
                    Err(Error::BadName(_))
                ),
                "{name:?}"
            );
        }
        for path in [
            "relative",
            "/a:b",
            "/a\nb",
            "",
            "/usr/bin/../../tmp/x",
            "/./x",
        ] {
            assert!(
                matches!(
                    render(t, path, Flags::default()),
                    Err(Error::BadInterpreter { .. })
                ),
                "{path:?}"
            );
        }
        let too_long = format!("/{}", "x".repeat(MAX_REGISTER_LENGTH));
        assert!(matches!(
            render(t, &too_long, Flags::default()),
            Err(Error::LineTooLong { .. })
        ));
        assert!(matches!(
            render_entry("qemu-x", b"\x7f", b"", "/x", Flags::default()),
            Err(Error::BadMagic(_))
        ));
    }

    #[test]
    fn escape_is_lowercase_hex() {
        assert_eq!(escape(&[0x7f, 0x45, 0xab, 0x00]), "\\x7f\\x45\\xab\\x00");
    }
}
