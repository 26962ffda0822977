//! Which Debian mirror to fetch from.
//!
//! A mirror is configuration, never a constant in qus: `--mirror`, then `QUS_MIRROR`, then
//! the first Debian archive URI in this machine's own apt sources (deb822 `.sources` files
//! or one-line `sources.list`), which is what a Debian or Ubuntu host already trusts.

use std::path::Path;

/// Picks the mirror: the one given (`--mirror`, or `QUS_MIRROR` through it), then apt's
/// sources under `apt_root` (normally `/`). `None` when nothing names one.
pub(crate) fn resolve(given: Option<&str>, apt_root: &Path) -> Option<String> {
    if let Some(m) = given.filter(|m| !m.trim().is_empty()) {
        return Some(m.trim().trim_end_matches('/').to_string());
    }
    let mut files = vec![apt_root.join("etc/apt/sources.list")];
    if let Ok(rd) = std::fs::read_dir(apt_root.join("etc/apt/sources.list.d")) {
        let mut more: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        more.sort();
        files.extend(more);
    }
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let found = if name.ends_with(".sources") {
            from_deb822(&text)
        } else if name.ends_with(".list") {
            from_one_line(&text)
        } else {
            None
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

/// The first Debian archive URI of a deb822 sources file.
pub(crate) fn from_deb822(text: &str) -> Option<String> {
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().to_string())
            })
        };
        if field("Enabled").is_some_and(|v| v.eq_ignore_ascii_case("no")) {
            continue;
        }
        if !field("Types").is_some_and(|t| t.split_whitespace().any(|t| t == "deb")) {
            continue;
        }
        let suites = field("Suites").unwrap_or_default();
        let Some(uris) = field("URIs") else { continue };
        for uri in uris.split_whitespace() {
            if is_archive(uri, &suites) {
                return Some(uri.trim_end_matches('/').to_string());
            }
        }
    }
    None
}

/// The first Debian archive URI of a one-line `sources.list`.
pub(crate) fn from_one_line(text: &str) -> Option<String> {
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut words = line.split_whitespace();
        if words.next() != Some("deb") {
            continue;
        }
        let mut rest: Vec<&str> = words.collect();
        if rest.first().is_some_and(|w| w.starts_with('[')) {
            while let Some(w) = rest.first() {
                let done = w.ends_with(']');
                rest.remove(0);
                if done {
                    break;
                }
            }
        }
        if let (Some(uri), Some(suite)) = (rest.first(), rest.get(1)) {
            if is_archive(uri, suite) {
                return Some(uri.trim_end_matches('/').to_string());
            }
        }
    }
    None
}

/// A Debian archive carries `pool/main/q/qemu`: security and vendor repositories do not.
fn is_archive(uri: &str, suites: &str) -> bool {
    (uri.starts_with("http://") || uri.starts_with("https://") || uri.starts_with("file:"))
        && !suites.split_whitespace().any(|s| s.ends_with("-security"))
        && uri.trim_end_matches('/').ends_with("/debian")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb822_skips_security_and_vendor_repos() {
        let text = "Types: deb\nURIs: http://127.0.0.1:1/debian-security\nSuites: bookworm-security\nComponents: main\n\n\
                    Types: deb\nURIs: https://127.0.0.1:2/apt\nSuites: stable\n\n\
                    Types: deb\nURIs: http://127.0.0.1:3/debian/\nSuites: bookworm bookworm-updates\nComponents: main\n";
        assert_eq!(
            from_deb822(text).as_deref(),
            Some("http://127.0.0.1:3/debian")
        );
    }

    #[test]
    fn one_line_with_options() {
        let text = "# comment\ndeb-src http://127.0.0.1:4/debian bookworm main\n\
                    deb [arch=amd64 signed-by=/k.gpg] http://127.0.0.1:5/debian bookworm main\n";
        assert_eq!(
            from_one_line(text).as_deref(),
            Some("http://127.0.0.1:5/debian")
        );
    }

    #[test]
    fn given_beats_apt() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc/apt/sources.list.d")).unwrap();
        std::fs::write(
            dir.path().join("etc/apt/sources.list.d/debian.sources"),
            "Types: deb\nURIs: http://127.0.0.1:6/debian\nSuites: trixie\n",
        )
        .unwrap();
        assert_eq!(
            resolve(Some("http://127.0.0.1:7/"), dir.path()).as_deref(),
            Some("http://127.0.0.1:7")
        );
        assert_eq!(
            resolve(Some(" "), dir.path()).as_deref(),
            Some("http://127.0.0.1:6/debian")
        );
        assert_eq!(
            resolve(None, dir.path()).as_deref(),
            Some("http://127.0.0.1:6/debian")
        );
        assert_eq!(resolve(None, &dir.path().join("nothing")), None);
    }
}
