//! "Did you mean …": the nearest valid spellings of a name the user mistyped.
//!
//! One rule for every vocabulary (hosts, targets, registration names): the spellings at the
//! smallest edit distance (adjacent swaps count as one edit, so `arm46` is one edit from
//! `arm64`), when that distance is small for the name's length. A suggestion is shown as
//! the canonical name, with the spelling that matched when it differs (`aarch64 (arm64)`).

/// Up to three suggestions for `typed` among `(spelling, canonical)` pairs, nearest first.
pub fn suggest<'a>(
    typed: &str,
    spellings: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<String> {
    let typed = typed.trim().to_ascii_lowercase();
    let limit = (typed.chars().count() / 3).clamp(1, 3);
    let mut scored: Vec<(usize, &str, &str)> = spellings
        .into_iter()
        .map(|(s, c)| (strsim::osa_distance(&typed, s), s, c))
        .filter(|(d, _, _)| *d <= limit)
        .collect();
    scored.sort_by_key(|(d, _, _)| *d);
    let Some(best) = scored.first().map(|(d, _, _)| *d) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (_, spelling, canonical) in scored.into_iter().filter(|(d, _, _)| *d == best) {
        if seen.contains(&canonical) || out.len() == 3 {
            continue;
        }
        seen.push(canonical);
        out.push(if spelling == canonical {
            canonical.to_string()
        } else {
            format!("{canonical} ({spelling})")
        });
    }
    out
}

/// `did you mean a or b? ` (with the trailing space), or nothing.
pub fn did_you_mean(suggestions: &[String]) -> String {
    match suggestions {
        [] => String::new(),
        [one] => format!("did you mean {one}? "),
        [init @ .., last] => format!("did you mean {} or {last}? ", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_and_typos_find_the_name() {
        let v = [
            ("arm64", "aarch64"),
            ("aarch64", "aarch64"),
            ("riscv64", "riscv64"),
        ];
        assert_eq!(suggest("arm46", v), ["aarch64 (arm64)"]);
        assert_eq!(suggest("aarch46", v), ["aarch64"]);
        assert_eq!(suggest("AARCH46", v), ["aarch64"]);
        assert!(suggest("sparc", v).is_empty());
    }

    #[test]
    fn phrase() {
        assert_eq!(did_you_mean(&[]), "");
        assert_eq!(did_you_mean(&["a".into()]), "did you mean a? ");
        assert_eq!(
            did_you_mean(&["a".into(), "b".into(), "c".into()]),
            "did you mean a, b or c? "
        );
    }
}
