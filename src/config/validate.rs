//! The checks that the config, the lock file and the command line share: each value kind is
//! validated by one function, whoever reads it.

/// Checks a sha256 is 64 lowercase hex digits.
pub(crate) fn validate_sha256(s: &str) -> Result<(), String> {
    if s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(format!("'{s}' is not 64 lowercase hex digits"))
    }
}

/// Whether `path` is relative and plain: no empty, `.` or `..` component, so it stays below
/// whatever it is joined to (a mirror root, an image root).
pub(crate) fn is_plain_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Checks a pool path stays below the mirror root.
pub(crate) fn validate_pool_path(s: &str) -> Result<(), String> {
    let ok = is_plain_relative(s) && !s.contains(['\\', '\0']);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{s}' must be a relative path below the mirror root without '..' (pool/main/…)"
        ))
    }
}

/// Checks a Debian suite name (`trixie`, `trixie-backports`): it becomes part of a mirror
/// URL (`dists/<suite>/`).
pub(crate) fn validate_suite(s: &str) -> Result<(), String> {
    let ok = is_plain_relative(s)
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '+' | '/'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{s}' is not a Debian suite name (like trixie or trixie-backports)"
        ))
    }
}

/// Checks a source name is `d`/`f` and a version (`d10.0`).
pub(crate) fn validate_source_name(s: &str) -> Result<(), String> {
    let mut chars = s.chars();
    let ok = matches!(chars.next(), Some('d' | 'f'))
        && chars.clone().next().is_some_and(|c| c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_digit() || c == '.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name '{s}' must be 'd' (Debian) or 'f' (Fedora) and a version, like d10.0"
        ))
    }
}

/// Checks QEMU target names against the binfmt table.
pub fn validate_targets(targets: &[String]) -> Result<(), String> {
    let mut seen = Vec::new();
    for t in targets {
        if !crate::targets::is_known(t) {
            return Err(format!(
                "unknown QEMU target '{t}': valid targets are {}",
                crate::targets::known().join(", ")
            ));
        }
        if seen.contains(&t) {
            return Err(format!("target '{t}' is listed twice"));
        }
        seen.push(t);
    }
    Ok(())
}

/// Checks an image repository (`qus`, `127.0.0.1:5000/qus`) with the registry client's own
/// reference grammar, so that what the config accepts is exactly what can be pushed.
pub(crate) fn validate_repo(repo: &str) -> Result<(), String> {
    let parsed = qus_registry::Reference::parse(repo).map_err(|e| e.to_string())?;
    if parsed.tag().is_some() || parsed.digest().is_some() {
        return Err(format!(
            "'{repo}' names a tag or digest: give the repository only (qus chooses the tags)"
        ));
    }
    Ok(())
}
