//! sh `case`-pattern matching, on bytes.
//!
//! The sh entrypoint matches entry names and host machine names with
//! `case $name in $pattern)`, which busybox hands to the C library's
//! fnmatch(3) (flags 0) in the C locale (the script sets `LC_ALL=C`). This
//! is that language, so both implementations pick the same entries for
//! `--uninstall 'qemu-*'`: `*`, `?`, `[set]`, `[!set]`/`[^set]`, `[a-z]`
//! (by byte value), the classes `[:alpha:]` … `[:xdigit:]` (ASCII only, as
//! in the C locale; an unknown class matches nothing, as glibc does), and an
//! unclosed `[` as a literal. Backslash escapes and collating elements
//! (`[.x.]`, `[=x=]`) are not supported: [`crate::rules`] refuses them in
//! patterns before either implementation sees one.

/// Whether `name` matches the sh pattern `pattern`.
pub fn matches(pattern: &str, name: &str) -> bool {
    matches_bytes(pattern.as_bytes(), name.as_bytes())
}

/// [`matches()`] on raw bytes (entry names need not be UTF-8).
pub fn matches_bytes(p: &[u8], n: &[u8]) -> bool {
    // Iterative with one backtrack point for the last `*`: linear enough for
    // entry names and free of recursion depth issues.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                b'?' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                b'[' => match bracket(p, pi, n[ni]) {
                    Bracket::Hit(next) => {
                        pi = next;
                        ni += 1;
                        continue;
                    }
                    Bracket::Miss => {}
                    // fnmatch gives up on the whole pattern.
                    Bracket::BadClass => return false,
                    Bracket::Unclosed => {
                        if n[ni] == b'[' {
                            pi += 1;
                            ni += 1;
                            continue;
                        }
                    }
                },
                c => {
                    if c == n[ni] {
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

enum Bracket {
    /// Matched; the pattern continues at this index.
    Hit(usize),
    Miss,
    /// No closing `]`: the `[` is a literal.
    Unclosed,
    /// `[:name:]` with a name the C library does not know.
    BadClass,
}

/// Evaluates the bracket expression starting at `p[start] == '['` against `c`.
fn bracket(p: &[u8], start: usize, c: u8) -> Bracket {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let Some(&ch) = p.get(i) else {
            return Bracket::Unclosed;
        };
        if ch == b']' && !first {
            return if hit != negate {
                Bracket::Hit(i + 1)
            } else {
                Bracket::Miss
            };
        }
        first = false;
        if ch == b'[' && p.get(i + 1) == Some(&b':') {
            let rest = &p[i + 2..];
            let Some(end) = rest.windows(2).position(|w| w == b":]") else {
                return Bracket::Unclosed;
            };
            match class(&rest[..end]) {
                Some(f) => hit |= f(c),
                None => return Bracket::BadClass,
            }
            i += 2 + end + 2;
        } else if p.get(i + 1) == Some(&b'-') && p.get(i + 2).is_some_and(|&e| e != b']') {
            let end = p[i + 2];
            if ch <= c && c <= end {
                hit = true;
            }
            i += 3;
        } else {
            if ch == c {
                hit = true;
            }
            i += 1;
        }
    }
}

/// The C locale's character classes.
fn class(name: &[u8]) -> Option<fn(u8) -> bool> {
    Some(match name {
        b"alpha" => |c: u8| c.is_ascii_alphabetic(),
        b"digit" => |c: u8| c.is_ascii_digit(),
        b"alnum" => |c: u8| c.is_ascii_alphanumeric(),
        b"upper" => |c: u8| c.is_ascii_uppercase(),
        b"lower" => |c: u8| c.is_ascii_lowercase(),
        b"xdigit" => |c: u8| c.is_ascii_hexdigit(),
        b"space" => |c: u8| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'),
        b"blank" => |c: u8| c == b' ' || c == b'\t',
        b"punct" => |c: u8| c.is_ascii_punctuation(),
        b"print" => |c: u8| (0x20..=0x7e).contains(&c),
        b"graph" => |c: u8| c.is_ascii_graphic(),
        b"cntrl" => |c: u8| c.is_ascii_control(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::{matches, matches_bytes};

    #[test]
    fn star_question_and_literals() {
        assert!(matches("qemu-*", "qemu-aarch64"));
        assert!(matches("qemu-*", "qemu-"));
        assert!(!matches("qemu-*", "status"));
        assert!(matches("*", "register"));
        assert!(matches("qemu-?rm", "qemu-arm"));
        assert!(!matches("qemu-?rm", "qemu-armeb"));
        assert!(matches("*64", "qemu-riscv64"));
        assert!(matches("q*u-*r*", "qemu-aarch64-for"));
        assert!(!matches("aarch64", "qemu-aarch64"));
    }

    #[test]
    fn brackets_ranges_and_negation() {
        assert!(matches("i[3-6]86", "i686"));
        assert!(!matches("i[3-6]86", "i786"));
        assert!(matches("armv[4-9]*l", "armv7l"));
        assert!(!matches("armv[4-9]*b", "armv7l"));
        assert!(matches("qemu-[!a]*", "qemu-riscv64"));
        assert!(!matches("qemu-[!a]*", "qemu-arm"));
        assert!(matches("qemu-[^a]*", "qemu-riscv64"));
        assert!(matches("[]]", "]"));
        assert!(matches("x[", "x["));
        assert!(matches("[a-]", "-"));
    }

    #[test]
    fn classes_are_the_c_locale_ones() {
        assert!(matches("[[:alpha:]]*", "qemu-arm"));
        assert!(!matches("[[:alpha:]]*", "0x"));
        assert!(matches("qemu-[[:lower:]]*[[:digit:]]", "qemu-riscv64"));
        assert!(!matches("[[:upper:]]*", "qemu-arm"));
        assert!(matches("*[![:print:]]*", "a\tb"));
        assert!(!matches("*[![:print:]]*", "a b"));
        // Bytes above 0x7f are in no class, and match `?` and negations.
        assert!(matches_bytes(b"*[![:print:]]*", b"a\xffb"));
        assert!(matches_bytes(b"a?b", b"a\xffb"));
        assert!(!matches_bytes(b"[[:alpha:]]", b"\xe9"));
        // An unknown class matches nothing, as in glibc.
        assert!(!matches("[[:nope:]]*", "qemu-arm"));
    }
}
