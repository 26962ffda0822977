//! Image references: `host[:port]/path[:tag|@digest]`.
//!
//! Parsed once, at the edge, into a value whose parts are known valid, so that URLs,
//! credential lookups and error messages never have to re-split strings. The grammar is
//! the Docker one (distribution's `reference` package): the first component is a
//! registry only if it looks like a host (a dot, a port, `localhost`, or `[ipv6]`), and
//! the Docker Hub's `library/` prefix applies only to single-component Hub names.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::Error;

/// The Docker Hub as users write it.
pub const DOCKER_HUB: &str = "docker.io";
/// Where the Docker Hub's distribution API actually answers.
pub(crate) const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// Legacy spelling of the Hub that references may still use.
const DOCKER_HUB_INDEX: &str = "index.docker.io";
/// The key under which `docker login` files Hub credentials (and what it sends to
/// credential helpers and as bollard's `serveraddress`).
pub(crate) const DOCKER_HUB_CONFIG_KEY: &str = "https://index.docker.io/v1/";

/// Longest repository name (registry + path) distribution accepts.
const NAME_MAX: usize = 255;
/// Longest tag distribution accepts.
const TAG_MAX: usize = 128;

/// A parsed image reference. Its parts are valid by construction.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses `host[:port]/path[:tag][@digest]`; a name with no host is on the Docker Hub.
    pub fn parse(input: &str) -> Result<Reference, Error> {
        // Credentials pasted into a reference must not be echoed back.
        let fail = |reason: &str| Error::InvalidReference {
            input: crate::redact::redact_userinfo(input).into_owned(),
            reason: reason.to_string(),
        };
        if input.is_empty() {
            return Err(fail("empty reference"));
        }
        let (name_tag, digest) = match input.split_once('@') {
            Some((n, d)) => (n, Some(Digest::parse(d).map_err(|e| fail(e.reason))?)),
            None => (input, None),
        };
        // A ':' after the last '/' starts the tag; one before it is a registry port.
        let last_slash = name_tag.rfind('/');
        let (name, tag) = match name_tag.rfind(':') {
            Some(colon) if last_slash.is_none_or(|s| colon > s) => {
                (&name_tag[..colon], Some(&name_tag[colon + 1..]))
            }
            _ => (name_tag, None),
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(fail)?;
        }
        let (registry, path) = split_registry(name);
        let registry = normalize_registry(registry);
        check_host(&registry).map_err(fail)?;
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        check_path(&repository).map_err(fail)?;
        if registry.len() + 1 + repository.len() > NAME_MAX {
            return Err(fail("repository name longer than 255 characters"));
        }
        Ok(Reference {
            registry,
            repository,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// The registry as the user names it (`127.0.0.1:5000`, `docker.io`): the key for
    /// credentials, protocol choice and error messages.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The `host[:port]` that serves the distribution API (differs only for the Hub).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The repository path inside the registry (`qus`, `library/debian`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if one was given.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if one was given.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What goes after `/manifests/`: the digest if any, else the tag, else `latest`.
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// The same repository with `tag` (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, Error> {
        check_tag(tag).map_err(|reason| Error::InvalidReference {
            input: format!("{}:{tag}", self.name()),
            reason: reason.to_string(),
        })?;
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository addressed by `digest` (the tag is dropped).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// Whether `other` names the same registry and repository.
    pub fn same_repository(&self, other: &Reference) -> bool {
        self.registry == other.registry && self.repository == other.repository
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

/// Splits off the first component when it names a host, as the Docker CLI does.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.')
                || first.contains(':')
                || first.starts_with('[')
                || first == "localhost" =>
        {
            (first, rest)
        }
        _ => (DOCKER_HUB, name),
    }
}

fn normalize_registry(registry: &str) -> String {
    if registry == DOCKER_HUB_INDEX {
        DOCKER_HUB.to_string()
    } else {
        registry.to_string()
    }
}

fn check_tag(tag: &str) -> Result<(), &'static str> {
    let mut bytes = tag.bytes();
    match bytes.next() {
        None => return Err("empty tag"),
        Some(b) if b.is_ascii_alphanumeric() || b == b'_' => {}
        Some(_) => return Err("a tag starts with a letter, digit or '_'"),
    }
    if tag.len() > TAG_MAX {
        return Err("tag longer than 128 characters");
    }
    if !bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
        return Err("a tag may only contain letters, digits, '_', '.' and '-'");
    }
    Ok(())
}

fn check_host(registry: &str) -> Result<(), &'static str> {
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let (addr, after) = rest.split_once(']').ok_or("unterminated [ipv6] host")?;
        addr.parse::<std::net::Ipv6Addr>()
            .map_err(|_| "invalid IPv6 address in host")?;
        if after.is_empty() {
            return Ok(());
        }
        let port = after
            .strip_prefix(':')
            .ok_or("unexpected text after [ipv6] host")?;
        (None, Some(port))
    } else {
        match registry.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        let label_ok = |label: &str| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if !host.split('.').all(label_ok) {
            return Err("invalid registry host");
        }
    }
    if let Some(port) = port {
        let numeric = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
        if !numeric || !matches!(port.parse::<u16>(), Ok(p) if p > 0) {
            return Err("invalid registry port");
        }
    }
    Ok(())
}

/// Path components: lowercase alphanumerics joined by `.`, `_`, `__` or runs of `-`.
fn check_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("empty repository path");
    }
    for component in path.split('/') {
        check_component(component)?;
    }
    Ok(())
}

fn check_component(component: &str) -> Result<(), &'static str> {
    const MSG: &str = "repository path components are lowercase letters and digits, joined by '.', '_', '__' or '-'";
    if component.is_empty() {
        return Err("empty repository path component");
    }
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err(MSG);
    }
    let mut run = String::new();
    for &b in bytes {
        if alnum(b) {
            let ok = run.is_empty()
                || run == "."
                || run == "_"
                || run == "__"
                || run.bytes().all(|c| c == b'-');
            if !ok {
                return Err(MSG);
            }
            run.clear();
        } else if matches!(b, b'.' | b'_' | b'-') {
            run.push(b as char);
        } else {
            return Err(MSG);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_valid_references() {
        // input | registry | API host | repository | tag ("-" for none)
        let table = "
            127.0.0.1:5000/qus:aarch64 | 127.0.0.1:5000 | 127.0.0.1:5000 | qus | aarch64
            localhost/a/b/c | localhost | localhost | a/b/c | -
            localhost:5000/qus:d7.2-aarch64 | localhost:5000 | localhost:5000 | qus | d7.2-aarch64
            docker.io/x/qus | docker.io | registry-1.docker.io | x/qus | -
            docker.io/qus:latest | docker.io | registry-1.docker.io | library/qus | latest
            index.docker.io/debian | docker.io | registry-1.docker.io | library/debian | -
            debian | docker.io | registry-1.docker.io | library/debian | -
            x/qus:v1 | docker.io | registry-1.docker.io | x/qus | v1
            [::1]:5000/qus:t | [::1]:5000 | [::1]:5000 | qus | t
            registry.example:443/a_b__c/d-e--f/g.h:T_1.2-3 | registry.example:443 | registry.example:443 | a_b__c/d-e--f/g.h | T_1.2-3
        ";
        for row in table.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let cols: Vec<&str> = row.split('|').map(str::trim).collect();
            let [input, registry, api, repo, tag] = cols[..] else {
                panic!("bad row {row}");
            };
            let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.registry(), registry, "{input}");
            assert_eq!(r.api_host(), api, "{input}");
            assert_eq!(r.repository(), repo, "{input}");
            assert_eq!(r.tag(), (tag != "-").then_some(tag), "{input}");
            assert!(r.digest().is_none());
        }
    }

    #[test]
    fn digest_wins_over_tag() {
        let r = Reference::parse(&format!("127.0.0.1:5000/qus:t@{D}")).unwrap();
        assert_eq!(r.tag(), Some("t"));
        assert_eq!(r.reference(), D);
        let r = Reference::parse(&format!("127.0.0.1:5000/qus@{D}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().as_str(), D);
        assert_eq!(r.to_string(), format!("127.0.0.1:5000/qus@{D}"));
        assert_eq!(
            Reference::parse("127.0.0.1:5000/qus").unwrap().reference(),
            "latest"
        );
    }

    #[test]
    fn rejects_invalid_references_naming_the_input() {
        let bad = [
            "",
            "127.0.0.1:5000/",
            "127.0.0.1:5000/Qus:t",
            "127.0.0.1:5000/qus:",
            "127.0.0.1:5000/qus:-t",
            "127.0.0.1:5000/qus:t!",
            "127.0.0.1:99999/qus",
            "127.0.0.1:/qus",
            "127.0.0.1:5000//qus",
            "127.0.0.1:5000/qus/",
            "127.0.0.1:5000/qu..s",
            "127.0.0.1:5000/_qus",
            "127.0.0.1:5000/qus@sha256:abc",
            "127.0.0.1:5000/qus@md5:0123",
            "[::1/qus",
            "[zz]:5000/qus",
            "bad_host.example/qus",
            "-h.example/qus",
            "127.0.0.1:5000/qus:t:u",
        ];
        for input in bad {
            match Reference::parse(input) {
                Err(Error::InvalidReference { input: named, .. }) => assert_eq!(named, input),
                other => panic!("{input:?} should be invalid, got {other:?}"),
            }
        }
        let long_tag = format!("127.0.0.1:5000/qus:{}", "t".repeat(129));
        assert!(Reference::parse(&long_tag).is_err());
        let long_name = format!("127.0.0.1:5000/{}", "a".repeat(250));
        assert!(Reference::parse(&long_name).is_err());
    }

    #[test]
    fn error_message_names_the_input() {
        let err = Reference::parse("127.0.0.1:5000/Qus").unwrap_err();
        assert!(err.to_string().contains("127.0.0.1:5000/Qus"), "{err}");
    }

    #[test]
    fn credentials_in_a_reference_are_never_echoed() {
        for input in [
            "alice:hunter2-secret@127.0.0.1:5000/qus",
            "https://alice:hunter2-secret@registry.example/qus:t",
            "alice:hunter2-secret@registry.example:5000/qus",
        ] {
            let err = Reference::parse(input).unwrap_err();
            for text in [err.to_string(), format!("{err:?}")] {
                assert!(!text.contains("hunter2-secret"), "{text}");
                assert!(text.contains("<redacted>@"), "{text}");
            }
        }
    }

    #[test]
    fn with_tag_and_digest() {
        let r = Reference::parse("127.0.0.1:5000/qus:a").unwrap();
        assert_eq!(r.with_tag("b").unwrap().to_string(), "127.0.0.1:5000/qus:b");
        assert!(r.with_tag("b/c").is_err());
        let d = Digest::parse(D).unwrap();
        assert_eq!(r.with_digest(d.clone()).reference(), D);
        assert!(r.same_repository(&r.with_digest(d)));
        assert!(!r.same_repository(&Reference::parse("127.0.0.1:5000/other").unwrap()));
    }
}
