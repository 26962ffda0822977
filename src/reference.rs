//! Image reference grammar (the subset of Docker's that qus writes).
//!
//! Checked up front so that a bad `repo:` fails when the config is read, not after an hour
//! of building when the first tag is applied.

/// Checks a repository name: `[registry[:port]/]component(/component)*`, lowercase.
pub fn validate_repo(repo: &str) -> Result<(), String> {
    if repo.is_empty() || repo.len() > 255 {
        return Err(format!("'{repo}' must be 1 to 255 characters"));
    }
    let mut parts: Vec<&str> = repo.split('/').collect();
    // A first part with a dot, a colon or "localhost" is a registry host, as in Docker.
    if parts.len() > 1 {
        let first = parts[0];
        if first.contains('.') || first.contains(':') || first == "localhost" {
            validate_registry(first).map_err(|m| format!("'{repo}': {m}"))?;
            parts.remove(0);
        }
    }
    for p in parts {
        if !is_path_component(p) {
            return Err(format!(
                "'{repo}': '{p}' is not a valid repository path component \
                 (lowercase letters, digits, and . _ __ - between them)"
            ));
        }
    }
    Ok(())
}

/// Checks a tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), String> {
    let mut bytes = tag.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    if first_ok
        && tag.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        Ok(())
    } else {
        Err(format!(
            "'{tag}' is not a valid tag (letters, digits, _ . -; at most 128)"
        ))
    }
}

fn validate_registry(host: &str) -> Result<(), String> {
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) if !n.ends_with(']') || host.starts_with('[') => (n, Some(p)),
        _ => (host, None),
    };
    if let Some(p) = port {
        if p.parse::<u16>().is_err() {
            return Err(format!("registry port '{p}' is not a number"));
        }
    }
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'));
    if ok {
        Ok(())
    } else {
        Err(format!("registry host '{name}' is not valid"))
    }
}

fn is_path_component(p: &str) -> bool {
    // [a-z0-9]+ separated by '.', '_', '__' or runs of '-'.
    let b = p.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &p[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repos() {
        for ok in [
            "qus",
            "dbhi/qus",
            "127.0.0.1:5000/qus",
            "localhost/a/b",
            "a__b",
            "a--b.c",
        ] {
            assert!(validate_repo(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "QUS",
            "qus:tag",
            "-qus",
            "a/",
            "a//b",
            "127.0.0.1:port/x",
            "a..b",
        ] {
            assert!(validate_repo(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags() {
        assert!(validate_tag("arm64v8-d10.0-aarch64_be").is_ok());
        assert!(validate_tag(".hidden").is_err());
        assert!(validate_tag(&"a".repeat(129)).is_err());
        assert!(validate_tag("a/b").is_err());
    }
}
