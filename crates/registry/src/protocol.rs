//! HTTP or HTTPS, per registry.
//!
//! A loopback registry (CI, tests, a developer's `docker-registry`) usually serves plain
//! HTTP, and the Docker daemon itself talks HTTP to loopback registries without extra
//! configuration; every other registry gets HTTPS unless the user lists it as insecure.
//! A loopback registry that speaks TLS is the exception, and it says so the way the daemon
//! learns it: a `certs.d/<host:port>/` folder (its CA, a client certificate) makes qus use
//! HTTPS for it, verified with that CA. qus does not probe (no extra connection, the same
//! answer on every run): a TLS registry reached over HTTP, or the reverse, fails with a
//! message naming the folder. Deciding from the registry name and that one fact, in one
//! pure function, keeps the rule visible and testable (oci-client's
//! `ClientProtocol::HttpsExcept` is the same idea).

use std::net::IpAddr;

/// URL scheme for a registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `http://`
    Http,
    /// `https://`
    Https,
}

impl Scheme {
    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Which registries get plain HTTP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolPolicy {
    /// Plain HTTP for `localhost`, 127.0.0.0/8 and `::1` (default: true).
    pub plain_http_loopback: bool,
    /// Registries (`host` for any port, or `host:port`) reached over plain HTTP.
    pub insecure: Vec<String>,
}

impl Default for ProtocolPolicy {
    fn default() -> Self {
        ProtocolPolicy {
            plain_http_loopback: true,
            insecure: Vec::new(),
        }
    }
}

impl ProtocolPolicy {
    /// The scheme for `host[:port]` (as in a reference's API host) without TLS settings.
    pub fn scheme_for(&self, registry: &str) -> Scheme {
        self.scheme_with_certs(registry, false)
    }

    /// The scheme for `host[:port]`, knowing whether a `certs.d` folder names it: an
    /// explicit insecure entry wins (plain HTTP), then TLS settings (HTTPS, loopback too),
    /// then loopback (plain HTTP), else HTTPS.
    pub fn scheme_with_certs(&self, registry: &str, has_certs: bool) -> Scheme {
        let listed = self
            .insecure
            .iter()
            .any(|entry| entry_matches(entry, registry));
        if listed || (!has_certs && self.plain_http_loopback && is_loopback(registry)) {
            Scheme::Http
        } else {
            Scheme::Https
        }
    }
}

/// An insecure-list entry without a port covers every port of its host.
fn entry_matches(entry: &str, registry: &str) -> bool {
    if entry.eq_ignore_ascii_case(registry) {
        return true;
    }
    let has_port = if entry.starts_with('[') {
        entry.contains("]:")
    } else {
        entry.contains(':')
    };
    !has_port && host_of(entry).eq_ignore_ascii_case(host_of(registry))
}

/// The host part of `host[:port]` / `[v6]:port` (brackets removed).
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

/// Whether `host[:port]` is on this machine's loopback: `localhost`, 127.0.0.0/8, `::1`.
pub fn is_loopback(registry: &str) -> bool {
    let host = host_of(registry);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether a URL's host is this machine's loopback.
pub(crate) fn is_loopback_url(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_plain_http_by_default() {
        let p = ProtocolPolicy::default();
        for r in [
            "127.0.0.1:5000",
            "127.1.2.3",
            "localhost",
            "LOCALHOST:1",
            "[::1]:5000",
            "[::1]",
        ] {
            assert_eq!(p.scheme_for(r), Scheme::Http, "{r}");
        }
        for r in [
            "registry.example",
            "128.0.0.1:5000",
            "localhost.example:5000",
            "[::2]:5000",
            "10.0.0.1:5000",
        ] {
            assert_eq!(p.scheme_for(r), Scheme::Https, "{r}");
        }
    }

    #[test]
    fn certs_d_makes_loopback_https_and_insecure_still_wins() {
        let p = ProtocolPolicy {
            insecure: vec!["127.0.0.2:5000".into()],
            ..ProtocolPolicy::default()
        };
        assert_eq!(p.scheme_with_certs("127.0.0.1:5000", true), Scheme::Https);
        assert_eq!(p.scheme_with_certs("localhost:5000", true), Scheme::Https);
        assert_eq!(p.scheme_with_certs("127.0.0.1:5000", false), Scheme::Http);
        assert_eq!(p.scheme_with_certs("127.0.0.2:5000", true), Scheme::Http);
        assert_eq!(p.scheme_with_certs("reg.test", false), Scheme::Https);
        for (u, want) in [
            ("http://127.0.0.1:5000/v2/", true),
            ("https://localhost/v2/", true),
            ("http://[::1]:5000/", true),
            ("https://127.9.9.9/", true),
            ("https://reg.test/", false),
            ("http://128.0.0.1/", false),
        ] {
            assert_eq!(is_loopback_url(&url::Url::parse(u).unwrap()), want, "{u}");
        }
    }

    #[test]
    fn insecure_list_and_opt_out() {
        let p = ProtocolPolicy {
            plain_http_loopback: false,
            insecure: vec!["reg.test:5000".into(), "any-port.test".into()],
        };
        assert_eq!(p.scheme_for("127.0.0.1:5000"), Scheme::Https);
        assert_eq!(p.scheme_for("reg.test:5000"), Scheme::Http);
        assert_eq!(p.scheme_for("reg.test:5001"), Scheme::Https);
        assert_eq!(p.scheme_for("any-port.test:443"), Scheme::Http);
        assert_eq!(p.scheme_for("any-port.test"), Scheme::Http);
        assert_eq!(p.scheme_for("other.test"), Scheme::Https);
    }
}
