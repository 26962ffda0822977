//! The matrix configuration (`images/qus.yml`).
//!
//! Two levels, as ripgrep does with its flags: [`RawConfig`] mirrors the YAML file and only
//! checks syntax and types (unknown keys are errors, so a typo never silently drops a pin);
//! [`Config`] is the resolved, validated value every later stage uses: host names normalised,
//! duplicates rejected, every host of every source pinned to a file and a sha256.

use crate::arch::{Host, UnknownArch};
use crate::reference;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The default configuration, shipped in the binary so `qus plan` works anywhere.
pub const DEFAULT_CONFIG: &str = include_str!("../../../images/qus.yml");
/// Where the default configuration lives in the repository (for messages).
pub const DEFAULT_CONFIG_NAME: &str = "images/qus.yml";

/// A configuration that cannot be used, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// YAML syntax, a wrong type or an unknown key.
    #[error("{path}{}: {message}", location.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
    Syntax {
        /// The file.
        path: String,
        /// Line and column (1-based), when the parser knows them.
        location: Option<(usize, usize)>,
        /// The parser's message.
        message: String,
    },
    /// The YAML is well formed but says something impossible.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// A pinned package file: where it is in a Debian mirror's pool and what it must hash to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageFile {
    /// Path below the mirror root: `pool/main/q/qemu/qemu-user_…_arm64.deb`.
    pub file: String,
    /// Expected size in bytes, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Expected sha256, lowercase hex.
    pub sha256: String,
    /// Emulators this host's package ships, when different from the source's list (Debian
    /// 10.0 builds only 32-bit guests on 32-bit hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<String>>,
}

/// `busybox:` — the shell that runs the registration entrypoint inside every image.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBusybox {
    /// Debian package name (`busybox-static`).
    pub package: String,
    /// Pinned Debian version.
    pub version: String,
    /// One file per host.
    pub files: BTreeMap<String, PackageFile>,
}

/// The distribution a QEMU source comes from; decides the tag prefix (`d`, `f`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Distro {
    /// Debian `.deb` packages.
    Debian,
}

/// One entry of `sources:` — a pinned QEMU version.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// The version part of tags: `d10.0` gives `amd64-d10.0-aarch64`.
    pub name: String,
    /// Where the packages come from.
    pub distro: Distro,
    /// Debian suite the pins were taken from (for `qus lock`/`qus check`).
    pub suite: String,
    /// Package name (`qemu-user`, `qemu-user-static`).
    pub package: String,
    /// Pinned package version (`1:10.0.13+ds-0+deb13u1`).
    pub version: String,
    /// Emulators (QEMU target names) the packages ship.
    pub targets: Vec<String>,
    /// One pinned file per host.
    pub files: BTreeMap<String, PackageFile>,
}

/// The YAML file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Image repository: a local name (`qus`) or a registry path (`127.0.0.1:5000/qus`).
    pub repo: String,
    /// The source whose images also get the unversioned tags (`latest`, `aarch64` …).
    pub default: String,
    /// Hosts built when `--hosts` is not given.
    pub hosts: Vec<String>,
    /// The entrypoint's shell.
    pub busybox: RawBusybox,
    /// Pinned QEMU versions.
    pub sources: Vec<RawSource>,
}

/// A resolved QEMU source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// Tag version part (`d10.0`).
    pub name: String,
    /// Distribution.
    pub distro: Distro,
    /// Suite.
    pub suite: String,
    /// Package name.
    pub package: String,
    /// Package version.
    pub version: String,
    /// Emulators shipped by default.
    pub targets: Vec<String>,
    /// Pinned files by host.
    pub files: BTreeMap<Host, PackageFile>,
}

impl Source {
    /// Emulators the package for `host` ships.
    pub fn targets_for(&self, host: Host) -> &[String] {
        self.files
            .get(&host)
            .and_then(|f| f.targets.as_deref())
            .unwrap_or(&self.targets)
    }
}

/// The resolved busybox pins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Busybox {
    /// Package name.
    pub package: String,
    /// Package version.
    pub version: String,
    /// Pinned files by host.
    pub files: BTreeMap<Host, PackageFile>,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    /// Where it was read from (for messages).
    pub origin: String,
    /// Image repository.
    pub repo: String,
    /// Name of the default source.
    pub default: String,
    /// Default hosts.
    pub hosts: Vec<Host>,
    /// Busybox pins.
    pub busybox: Busybox,
    /// QEMU sources, in file order.
    pub sources: Vec<Source>,
}

impl Config {
    /// Reads and validates a config file; `None` means the built-in default.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            None => Config::parse(DEFAULT_CONFIG, DEFAULT_CONFIG_NAME),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?;
                Config::parse(&text, &p.display().to_string())
            }
        }
    }

    /// Parses and validates YAML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig =
            serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Syntax {
                path: origin.to_string(),
                location: e.location().map(|l| (l.line(), l.column())),
                message: e.to_string(),
            })?;
        resolve(raw, origin)
    }

    /// The source named `name` (`d10.0`).
    pub fn source(&self, name: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.name == name)
    }
}

fn invalid(origin: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        path: origin.to_string(),
        message: message.into(),
    }
}

fn resolve(raw: RawConfig, origin: &str) -> Result<Config, ConfigError> {
    let arch_err = |what: &str, e: UnknownArch| invalid(origin, format!("{what}: {e}"));

    reference::validate_repo(&raw.repo)
        .map_err(|e| invalid(origin, format!("repo: {e}")))?;

    let mut hosts = Vec::new();
    for name in &raw.hosts {
        let h: Host = name.parse().map_err(|e| arch_err("hosts", e))?;
        if hosts.contains(&h) {
            return Err(invalid(
                origin,
                format!("hosts: '{name}' names {h}, which is listed twice"),
            ));
        }
        hosts.push(h);
    }
    if hosts.is_empty() {
        return Err(invalid(origin, "hosts: the list is empty; name at least one host"));
    }

    let busybox = Busybox {
        package: raw.busybox.package,
        version: raw.busybox.version,
        files: resolve_files(raw.busybox.files, origin, "busybox.files")?,
    };
    for f in busybox.files.values() {
        if f.targets.is_some() {
            return Err(invalid(origin, "busybox.files: 'targets' belongs to QEMU sources only"));
        }
    }

    let mut sources: Vec<Source> = Vec::new();
    for s in raw.sources {
        let ctx = format!("sources[{}]", s.name);
        validate_source_name(&s.name).map_err(|m| invalid(origin, format!("{ctx}: {m}")))?;
        if sources.iter().any(|o| o.name == s.name) {
            return Err(invalid(origin, format!("{ctx}: the name is used twice")));
        }
        validate_targets(&s.targets).map_err(|m| invalid(origin, format!("{ctx}.targets: {m}")))?;
        let files = resolve_files(s.files, origin, &format!("{ctx}.files"))?;
        for (h, f) in &files {
            if let Some(t) = &f.targets {
                validate_targets(t)
                    .map_err(|m| invalid(origin, format!("{ctx}.files.{h}.targets: {m}")))?;
            }
        }
        sources.push(Source {
            name: s.name,
            distro: s.distro,
            suite: s.suite,
            package: s.package,
            version: s.version,
            targets: s.targets,
            files,
        });
    }
    if sources.is_empty() {
        return Err(invalid(origin, "sources: the list is empty"));
    }
    if !sources.iter().any(|s| s.name == raw.default) {
        return Err(invalid(
            origin,
            format!(
                "default: '{}' is not one of the sources ({})",
                raw.default,
                sources.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    for h in &hosts {
        if !busybox.files.contains_key(h) {
            return Err(invalid(
                origin,
                format!("busybox.files: host {h} is in 'hosts' but has no busybox package pinned"),
            ));
        }
    }

    Ok(Config {
        origin: origin.to_string(),
        repo: raw.repo,
        default: raw.default,
        hosts,
        busybox,
        sources,
    })
}

fn resolve_files(
    raw: BTreeMap<String, PackageFile>,
    origin: &str,
    ctx: &str,
) -> Result<BTreeMap<Host, PackageFile>, ConfigError> {
    let mut out = BTreeMap::new();
    for (name, file) in raw {
        let h: Host = name
            .parse()
            .map_err(|e: UnknownArch| invalid(origin, format!("{ctx}: {e}")))?;
        validate_sha256(&file.sha256)
            .map_err(|m| invalid(origin, format!("{ctx}.{name}.sha256: {m}")))?;
        validate_pool_path(&file.file)
            .map_err(|m| invalid(origin, format!("{ctx}.{name}.file: {m}")))?;
        if out.insert(h, file).is_some() {
            return Err(invalid(
                origin,
                format!("{ctx}: '{name}' names {h}, which is pinned twice"),
            ));
        }
    }
    Ok(out)
}

fn validate_sha256(s: &str) -> Result<(), String> {
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err(format!("'{s}' is not 64 lowercase hex digits"))
    }
}

fn validate_pool_path(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && !s.starts_with('/')
        && s.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
        && !s.contains(['\\', '\0']);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{s}' must be a relative path below the mirror root without '..' (pool/main/…)"
        ))
    }
}

fn validate_source_name(s: &str) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        let c = Config::load(None).unwrap();
        assert_eq!(c.default, "d10.0");
        assert!(c.hosts.contains(&Host::Riscv64));
        let d7 = c.source("d7.2").unwrap();
        assert!(!d7.files.contains_key(&Host::Riscv64), "bookworm has no riscv64");
        let d10 = c.source("d10.0").unwrap();
        assert!(d10.targets_for(Host::Arm32v7).contains(&"arm".to_string()));
        assert!(!d10.targets_for(Host::Arm32v7).contains(&"aarch64".to_string()));
        assert!(d10.targets_for(Host::Amd64).contains(&"aarch64".to_string()));
    }

    fn with(replace: &str, by: &str) -> Result<Config, ConfigError> {
        let text = DEFAULT_CONFIG.replacen(replace, by, 1);
        assert_ne!(text, DEFAULT_CONFIG, "test did not change anything: {replace}");
        Config::parse(&text, "test.yml")
    }

    #[test]
    fn unknown_key_names_file_line_and_column() {
        let err = with("repo: qus", "repo: qus\nrepos: typo").unwrap_err().to_string();
        assert!(err.starts_with("test.yml:"), "{err}");
        assert!(err.contains("unknown field `repos`"), "{err}");
        // `repo:` is on line 10 of the default file; the typo follows it.
        assert!(err.starts_with("test.yml:11:1:"), "line and column: {err}");
    }

    #[test]
    fn wrong_type_is_a_syntax_error() {
        let err = with("hosts:", "hosts: 3\nold_hosts:").unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { location: Some(_), .. }), "{err}");
    }

    #[test]
    fn unknown_arch_lists_valid_names() {
        let err = with("  - amd64", "  - vax").unwrap_err().to_string();
        assert!(err.contains("'vax'") && err.contains("arm64v8"), "{err}");
    }

    #[test]
    fn duplicate_host_through_an_alias() {
        let err = with("  - amd64", "  - amd64\n  - x86_64").unwrap_err().to_string();
        assert!(err.contains("listed twice"), "{err}");
    }

    #[test]
    fn bad_sha_and_escaping_path() {
        let err = with("sha256: ca6ede", "sha256: XXca6ede").unwrap_err().to_string();
        assert!(err.contains("64 lowercase hex"), "{err}");
        let err = with("file: pool/main/q/qemu/qemu-user_10", "file: pool/../../etc/qemu-user_10")
            .unwrap_err()
            .to_string();
        assert!(err.contains("without '..'"), "{err}");
    }

    #[test]
    fn invalid_repo_reference() {
        let err = with("repo: qus", "repo: QUS:Bad").unwrap_err().to_string();
        assert!(err.contains("repo:"), "{err}");
    }

    #[test]
    fn unknown_target() {
        let err = with("targets: [aarch64,", "targets: [vax, aarch64,").unwrap_err().to_string();
        assert!(err.contains("unknown QEMU target 'vax'"), "{err}");
    }

    #[test]
    fn default_must_exist() {
        let err = with("default: d10.0", "default: d9.9").unwrap_err().to_string();
        assert!(err.contains("'d9.9' is not one of the sources"), "{err}");
    }

    #[test]
    fn alias_bomb_is_refused() {
        // A billion-laughs value where a list of host names is expected: typed
        // deserialisation must refuse it at the first nested list, before any expansion.
        let mut levels = vec!["&a0 [x, x, x, x, x, x, x, x, x, x]".to_string()];
        for i in 1..9 {
            levels.push(format!("&a{i} [{}]", vec![format!("*a{}", i - 1); 10].join(", ")));
        }
        let doc = DEFAULT_CONFIG.replacen("hosts:\n", &format!("hosts: [{}]\nx:\n", levels.join(", ")), 1);
        let err = Config::parse(&doc, "bomb.yml").unwrap_err().to_string();
        assert!(err.starts_with("bomb.yml:"), "{err}");
        assert!(err.contains("invalid type: sequence"), "{err}");
    }
}
