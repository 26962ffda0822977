//! The byte-level rules every argument and environment value passes, once,
//! for both implementations.
//!
//! The entrypoint runs as root in a privileged container and `qus register`
//! as root on a host, so a value is checked before it reaches a path, a
//! register line, a glob or a message. The rules are sets of allowed bytes
//! (no locale, no Unicode): this module is their only definition, and
//! [`crate::sh::sh_data`] renders each one as an sh `case` pattern that the
//! busybox entrypoint uses unchanged, so the two implementations cannot drift.
//!
//! - every argument and every variable of [`crate::request::ENV_VARS`] that
//!   is set: printable ASCII ([`Rule::Printable`]); anything else is refused
//!   before parsing, so later messages may quote values as they are;
//! - target and platform names (`--install` items, `TARGET…`, `-t`,
//!   `QUS_HOST_ARCH`): [`Rule::Item`];
//! - `--uninstall` items: [`Rule::Pattern`], the same plus the sh glob
//!   bytes both matchers implement (`* ? [ ] ! ^ :`, no backslash);
//! - interpreter name prefix and suffix: [`Rule::Affix`] (no `/`, so a
//!   prefix such as `../../x` cannot move the interpreter, exports included);
//! - directories (interpreters, exports, the mount point): [`Rule::Path`]
//!   (no whitespace, quotes, `:` or backslash).

use crate::error::Error;

/// A set of allowed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// 0x20..=0x7e: what every argument and environment value must be.
    Printable,
    /// Letters, digits and `._+-/@`.
    Item,
    /// [`Rule::Item`] plus the glob bytes `*?[]!^:`.
    Pattern,
    /// Letters, digits and `._+-@` (no `/`).
    Affix,
    /// Letters, digits and `/._+-@%,=~`.
    Path,
    /// Bytes a JSON string may hold unescaped here: printable ASCII but `"`
    /// and `\`. Not a validation rule: the status JSON escapes the rest.
    JsonPlain,
}

/// Every rule, in the order the sh data lists them.
pub const RULES: &[Rule] = &[
    Rule::Printable,
    Rule::Item,
    Rule::Pattern,
    Rule::Affix,
    Rule::Path,
    Rule::JsonPlain,
];

const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

impl Rule {
    /// Its name in the sh data (`qus_rule_<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Rule::Printable => "printable",
            Rule::Item => "item",
            Rule::Pattern => "pattern",
            Rule::Affix => "affix",
            Rule::Path => "path",
            Rule::JsonPlain => "json",
        }
    }

    /// The punctuation allowed besides letters and digits.
    fn punctuation(self) -> &'static str {
        match self {
            Rule::Item => "._+-/@",
            Rule::Pattern => "._+-/@*?[]!^:",
            Rule::Affix => "._+-@",
            Rule::Path => "/._+-@%,=~",
            Rule::Printable | Rule::JsonPlain => "",
        }
    }

    /// Whether byte `b` is allowed.
    pub fn allows(self, b: u8) -> bool {
        match self {
            Rule::Printable => (0x20..=0x7e).contains(&b),
            Rule::JsonPlain => (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\',
            other => b.is_ascii_alphanumeric() || other.punctuation().as_bytes().contains(&b),
        }
    }

    /// Whether every byte of `value` is allowed.
    pub fn accepts(self, value: &[u8]) -> bool {
        value.iter().all(|&b| self.allows(b))
    }

    /// What the rule allows, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Rule::Printable => "printable ASCII only",
            Rule::Item => "letters, digits and ._+-/@ only",
            Rule::Pattern => "letters, digits and ._+-/@*?[]!^: only",
            Rule::Affix => "letters, digits and ._+-@ only",
            Rule::Path => "letters, digits and /._+-@%,=~ only",
            Rule::JsonPlain => "printable ASCII but '\"' and '\\'",
        }
    }

    /// Checks `value`, the `what` of the command line (`--install item`,
    /// `QEMU_BINARY_PREFIX`, …).
    pub fn check(self, what: &str, value: &str) -> Result<(), Error> {
        if self.accepts(value.as_bytes()) {
            return Ok(());
        }
        Err(Error::BadValue {
            what: what.to_string(),
            value: value.to_string(),
            allowed: self.describe(),
        })
    }

    /// The sh `case` pattern that matches a value holding a byte the rule
    /// does not allow: `*[!…]*`. Every allowed byte is spelled out (no
    /// ranges, whose meaning depends on the locale): `]` comes first and `-`
    /// last, `[` is never followed by `:`, `.` or `=`, and no set holds a
    /// backslash, so no byte is read as bracket syntax. Printable ASCII is
    /// the one class, `[:print:]` (the entrypoint runs with `LC_ALL=C`), as
    /// its set would need the backslash.
    pub fn sh_pattern(self) -> String {
        if self == Rule::Printable {
            return "*[![:print:]]*".to_string();
        }
        let mut set: Vec<u8> = (0u8..=0x7f).filter(|&b| self.allows(b)).collect();
        // Order: `]` first, then everything but `[`/`-`, then `[`, then `-`.
        let rank = |b: u8| match b {
            b']' => 0,
            b'[' => 2,
            b'-' => 3,
            _ => 1,
        };
        set.sort_by_key(|&b| (rank(b), b));
        let mut s = String::from("*[!");
        for b in set {
            s.push(char::from(b));
        }
        s.push_str("]*");
        s
    }
}

/// The letters and digits every rule but [`Rule::Printable`] allows, for
/// documentation.
pub fn alnum() -> &'static str {
    ALNUM
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_allow_what_they_say() {
        assert!(Rule::Item.accepts(b"linux/arm64"));
        assert!(Rule::Item.accepts(b"aarch64_be"));
        assert!(!Rule::Item.accepts(b"foo arm"));
        assert!(!Rule::Item.accepts(b"a};id;:${x"));
        assert!(Rule::Pattern.accepts(b"[[:alpha:]]*"));
        assert!(!Rule::Pattern.accepts(b"a\\*"));
        assert!(Rule::Affix.accepts(b"x-"));
        assert!(!Rule::Affix.accepts(b"../x"));
        assert!(Rule::Path.accepts(b"/usr/bin"));
        assert!(!Rule::Path.accepts(b"/a:b"));
        assert!(!Rule::Path.accepts(b"/a b"));
        assert!(!Rule::Path.accepts("/é".as_bytes()));
        assert!(Rule::Printable.accepts(b"a b'\"x"));
        assert!(!Rule::Printable.accepts(b"a\nb"));
        assert!(!Rule::Printable.accepts(b"\xff"));
        assert!(!Rule::JsonPlain.accepts(b"a\"b"));
        let e = Rule::Affix.check("QEMU_BINARY_PREFIX", "../x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad value for QEMU_BINARY_PREFIX: '../x' (letters, digits and ._+-@ only)"
        );
        assert_eq!(alnum().len(), 62);
    }

    #[test]
    fn sh_patterns_match_exactly_the_refused_bytes() {
        // The sh side matches `*[!set]*`; read back as a glob here (the same
        // bracket syntax both matchers implement), every byte 0..=255 must be
        // refused exactly when the rule refuses it.
        for rule in RULES {
            let pattern = rule.sh_pattern();
            assert!(!pattern.contains('\\'), "{pattern}");
            if *rule != Rule::Printable {
                let set = &pattern[3..pattern.len() - 2];
                assert!(!set.contains("[:") && !set.contains("[.") && !set.contains("[="));
            }
            for b in 0u8..=255 {
                let value = [b'a', b, b'a'];
                assert_eq!(
                    crate::glob::matches_bytes(pattern.as_bytes(), &value),
                    !rule.accepts(&value),
                    "{rule:?} byte {b:#04x} pattern {pattern}"
                );
            }
        }
        assert_eq!(
            Rule::Affix.sh_pattern(),
            "*[!+.0123456789@ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz-]*"
        );
    }
}
