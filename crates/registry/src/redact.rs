//! Credentials typed into a reference never reach a message.
//!
//! Image references have no place for credentials, yet users paste `user:pass@host/repo` or
//! `https://user:token@host/repo` into a flag, and every error that quotes its input would
//! then print the password. [`redact_userinfo`] replaces such a `user:pass` part with
//! `<redacted>`; it is pure, so each message that may quote user input goes through it, and
//! the one case that looks alike but is not a credential — `name:tag@sha256:…`, a tag
//! followed by a digest — is told apart by what follows the `@`.

use std::borrow::Cow;

/// What stands in for a redacted `user:pass`.
pub const REDACTED: &str = "<redacted>";

/// `text` with every `user:pass@` (alone or after `scheme://`) replaced by `<redacted>@`.
pub fn redact_userinfo(text: &str) -> Cow<'_, str> {
    if !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find(is_delimiter).unwrap_or(rest.len());
        let (word, tail) = rest.split_at(end);
        match redact_word(word) {
            Some(w) => {
                changed = true;
                out.push_str(&w);
            }
            None => out.push_str(word),
        }
        // Copy the delimiter (one character) and go on.
        let mut chars = tail.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

/// Where a word of a message ends: spaces and the punctuation that quotes or lists values.
fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '(' | ')' | '<' | '>' | ',' | ';')
}

/// The word with its userinfo redacted, or `None` when it has none.
fn redact_word(word: &str) -> Option<String> {
    let (scheme, body) = match word.find("://") {
        Some(i) => word.split_at(i + 3),
        None => ("", word),
    };
    // The last `@` that does not introduce a digest ends the userinfo (a password may hold
    // an `@` itself).
    let at = body
        .rmatch_indices('@')
        .map(|(i, _)| i)
        .find(|&i| !is_digest(&body[i + 1..]))?;
    let userinfo = &body[..at];
    if !userinfo.contains(':') {
        // `user@host` names no secret.
        return None;
    }
    Some(format!("{scheme}{REDACTED}{}", &body[at..]))
}

/// Whether `text` (what follows an `@`) is a digest, well-formed or not: `algorithm:encoded`
/// to the end of the word, with a digest algorithm's name (`sha256`, `sha512`, `blake3`) or
/// an encoded part as long as a real one: `md5:0123` counts, `myhost:5000/repo` does not.
fn is_digest(text: &str) -> bool {
    let Some((algorithm, encoded)) = text.split_once(':') else {
        return false;
    };
    let algorithm_ok = !algorithm.is_empty()
        && algorithm
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+._-".contains(c));
    let encoded_ok = !encoded.is_empty()
        && encoded
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "=_-".contains(c));
    let named = ["sha", "blake", "md"]
        .iter()
        .any(|p| algorithm.starts_with(p));
    algorithm_ok && encoded_ok && (named || encoded.len() >= 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn credentials_in_references_are_redacted() {
        let cases = [
            ("alice:s3cret@reg.example/qus", "<redacted>@reg.example/qus"),
            (
                "invalid image reference \"bob:pw@127.0.0.1:5000/qus:t\": bad",
                "invalid image reference \"<redacted>@127.0.0.1:5000/qus:t\": bad",
            ),
            (
                "--repo https://u:tok@host:443/qus failed",
                "--repo https://<redacted>@host:443/qus failed",
            ),
            ("u:p@ss@host/qus", "<redacted>@host/qus"),
            ("u:pa/ss@host/qus", "<redacted>@host/qus"),
            ("u:p@myhost:5000", "<redacted>@myhost:5000"),
        ];
        for (input, want) in cases {
            assert_eq!(redact_userinfo(input), want, "{input}");
        }
        let secret = redact_userinfo("x u:p@h/r y u2:p2@h2/r2");
        assert_eq!(secret, "x <redacted>@h/r y <redacted>@h2/r2");
    }

    #[test]
    fn digests_and_plain_text_are_left_alone() {
        for text in [
            format!("127.0.0.1:5000/qus:tag@sha256:{HEX}"),
            format!("127.0.0.1:5000/qus@sha256:{HEX}"),
            "127.0.0.1:5000/qus@sha256:abc".to_string(),
            "mail me at user@example.com".to_string(),
            "no at sign: 127.0.0.1:5000/qus:t".to_string(),
            String::new(),
        ] {
            assert!(matches!(redact_userinfo(&text), Cow::Borrowed(_)), "{text}");
        }
        // A digest after the credentials does not hide them.
        assert_eq!(
            redact_userinfo(&format!("u:p@host/qus:t@sha256:{HEX}")),
            format!("<redacted>@host/qus:t@sha256:{HEX}")
        );
    }
}
