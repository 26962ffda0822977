//! sh `case`-pattern matching.
//!
//! The sh entrypoint matches entry names and host machine names with
//! `case $name in $pattern)`; the Rust side needs the very same semantics
//! (`*`, `?`, `[set]`, `[!set]`, `[a-z]`, `\c`) so both pick the same entries
//! for `--uninstall 'qemu-*'`. Unmatched `[` is a literal, as in sh.

/// Whether `name` matches the sh pattern `pattern`.
pub fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_from(&p, &n)
}

fn match_from(p: &[char], n: &[char]) -> bool {
    // Iterative with one backtrack point for the last `*`: linear enough for
    // entry names and free of recursion depth issues.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' => {
                    if let Some((hit, next)) = bracket(p, pi, n[ni]) {
                        if hit {
                            pi = next;
                            ni += 1;
                            continue;
                        }
                    } else if n[ni] == '[' {
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                }
                '\\' if pi + 1 < p.len() => {
                    if p[pi + 1] == n[ni] {
                        pi += 2;
                        ni += 1;
                        continue;
                    }
                }
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
    p[pi..].iter().all(|&c| c == '*')
}

/// Evaluates the bracket expression starting at `p[start] == '['` against `c`.
/// Returns (matched, index after `]`), or None when the bracket is unclosed.
fn bracket(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let ch = *p.get(i)?;
        if ch == ']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&e| e != ']') {
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

#[cfg(test)]
mod tests {
    use super::matches;

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
        assert!(!matches("armv[4-9]*l", "armv7b"));
        assert!(matches("qemu-[!a]*", "qemu-riscv64"));
        assert!(!matches("qemu-[!a]*", "qemu-arm"));
        assert!(matches("[]]", "]"));
        assert!(matches("x[", "x["));
        assert!(matches("a\\*", "a*"));
        assert!(!matches("a\\*", "ab"));
    }
}
