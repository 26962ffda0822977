use super::*;
use crate::config::lockfile::{LockedPackage, BUSYBOX};

#[test]
fn default_config_is_valid() {
    let c = Config::load(None).unwrap();
    assert_eq!(c.default, "d10.0");
    assert!(c.hosts.contains(&Host::Riscv64));
    let d7 = c.source("d7.2").unwrap();
    assert!(
        !d7.files.contains_key(&Host::Riscv64),
        "bookworm has no riscv64"
    );
    let d10 = c.source("d10.0").unwrap();
    assert!(d10.targets_for(Host::Arm32v7).contains(&"arm".to_string()));
    assert!(!d10
        .targets_for(Host::Arm32v7)
        .contains(&"aarch64".to_string()));
    assert!(d10
        .targets_for(Host::Amd64)
        .contains(&"aarch64".to_string()));
}

fn with(replace: &str, by: &str) -> Result<Config, ConfigError> {
    let text = DEFAULT_CONFIG.replacen(replace, by, 1);
    assert_ne!(
        text, DEFAULT_CONFIG,
        "test did not change anything: {replace}"
    );
    with_default_lock(&text, "test.yml")
}

/// The built-in lock, which pins every package of the built-in config.
fn default_lock() -> LockFile {
    LockFile::parse(DEFAULT_LOCK, lockfile::DEFAULT_LOCK_NAME).unwrap()
}

/// `text` (the built-in config, changed) with the built-in lock merged.
fn with_default_lock(text: &str, origin: &str) -> Result<Config, ConfigError> {
    Config::parse_with_lock(text, origin, Some((&default_lock(), "qus.lock")))
}

#[test]
fn the_built_in_lock_pins_every_package_of_the_built_in_config_and_nothing_inline_does() {
    let c = with_default_lock(DEFAULT_CONFIG, "qus.yml").unwrap();
    let loaded = Config::load(None).unwrap();
    assert_eq!((&loaded.busybox, &loaded.sources), (&c.busybox, &c.sources));
    assert_eq!(loaded.lock.as_deref(), Some(lockfile::DEFAULT_LOCK_NAME));
    let e = Config::parse(DEFAULT_CONFIG, "qus.yml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("run `qus lock`"), "{e}");
    // The pins of this machine's mirror: forky's 11.1.2 where trixie-backports' 11.1.3
    // is listed but not served.
    let d11 = c.source("d11.1").unwrap();
    for h in [Host::Ppc64le, Host::S390x, Host::Riscv64, Host::Loong64] {
        assert_eq!(d11.files[&h].version, "1:11.1.2+ds-3", "{h}");
    }
    assert_eq!(d11.files[&Host::Amd64].version, "1:11.1.3+ds-2~bpo13+1");
    assert_eq!(d11.fallback_suites, ["forky"]);
}

#[test]
fn unknown_key_names_file_line_and_column() {
    let err = with("repo: qus", "repo: qus\nrepos: typo")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("test.yml:"), "{err}");
    assert!(err.contains("unknown field `repos`"), "{err}");
    // The typo is on the line after `repo:`, in column 1.
    let repo_line = DEFAULT_CONFIG
        .lines()
        .position(|l| l.starts_with("repo: qus"))
        .unwrap()
        + 1;
    let want = format!("test.yml:{}:1: unknown field `repos`", repo_line + 1);
    assert!(err.starts_with(&want), "want {want}: {err}");
}

#[test]
fn wrong_type_is_a_syntax_error() {
    let err = with("hosts:", "hosts: 3\nold_hosts:").unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Syntax {
                location: Some(_),
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn unknown_arch_lists_valid_names() {
    let err = with("  - amd64", "  - vax").unwrap_err().to_string();
    assert!(err.contains("'vax'") && err.contains("arm64v8"), "{err}");
}

#[test]
fn duplicate_host_through_an_alias() {
    let err = with("  - amd64", "  - amd64\n  - x86_64")
        .unwrap_err()
        .to_string();
    assert!(err.contains("listed twice"), "{err}");
}

#[test]
fn bad_sha_and_escaping_path() {
    let err = with("sha256: dccccdab", "sha256: XXdccccdab")
        .unwrap_err()
        .to_string();
    assert!(err.contains("64 lowercase hex"), "{err}");
    let err = with(
        "file: pool/main/b/busybox/busybox-static_1.35",
        "file: pool/../../etc/busybox-static_1.35",
    )
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
    let err = with("targets: [aarch64,", "targets: [vax, aarch64,")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown QEMU target 'vax'"), "{err}");
}

#[test]
fn fedora_sources_take_per_target_package_lists() {
    let sha = "a".repeat(64);
    // Appended to `sources:`, which the guests section follows.
    let (sources, guests) =
        DEFAULT_CONFIG.split_at(DEFAULT_CONFIG.find("\n# Guest programs").unwrap());
    let fedora = |name: &str, entry: &str| {
        format!(
            "{sources}\n  - name: {name}\n    distro: fedora\n    suite: \"43\"\n    package: qemu-user-static\n    version: \"2:10.0\"\n    targets: [aarch64, arm]\n    files:\n      amd64:\n{entry}{guests}"
        )
    };
    let two = format!(
        "        packages:\n          - {{ file: r/a.rpm, sha256: {sha}, targets: [aarch64] }}\n          - {{ file: r/b.rpm, sha256: {sha}, targets: [arm] }}\n"
    );
    let c = with_default_lock(&fedora("f10.0", &two), "f.yml").unwrap();
    let f = c.source("f10.0").unwrap();
    assert_eq!(f.distro, Distro::Fedora);
    assert_eq!(f.targets_for(Host::Amd64), ["aarch64", "arm"]);
    assert_eq!(f.files[&Host::Amd64].all().count(), 2);

    let e = with_default_lock(&fedora("d10.1", &two), "f.yml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("starts with 'f'"), "{e}");
    let no_targets = format!("        packages:\n          - {{ file: r/a.rpm, sha256: {sha} }}\n");
    let e = with_default_lock(&fedora("f10.0", &no_targets), "f.yml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("say which `targets`"), "{e}");
    let line = DEFAULT_CONFIG
        .lines()
        .find(|l| l.starts_with("      arm32v7: { targets:"))
        .unwrap();
    let debian_list = DEFAULT_CONFIG.replacen(
        line,
        &format!(
            "      amd64:\n        packages: [{{ file: r/a.deb, sha256: {sha}, version: '1', targets: [arm] }}]\n{line}"
        ),
        1,
    );
    let e = with_default_lock(&debian_list, "d.yml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("Fedora's per-target rpms"), "{e}");
    let e = with_default_lock(
        &fedora("f10.0", &two).replacen(
            "    distro: fedora\n",
            "    distro: fedora\n    fallback_suites: [\"42\"]\n",
            1,
        ),
        "f.yml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("sources[f10.0].fallback_suites: a Fedora source"),
        "{e}"
    );
}

#[test]
fn default_must_exist() {
    let err = with("default: d10.0", "default: d9.9")
        .unwrap_err()
        .to_string();
    assert!(err.contains("'d9.9' is not one of the sources"), "{err}");
}

#[test]
fn alias_bomb_is_refused() {
    // A billion-laughs value where a list of host names is expected: typed
    // deserialisation must refuse it at the first nested list, before any expansion.
    let mut levels = vec!["&a0 [x, x, x, x, x, x, x, x, x, x]".to_string()];
    for i in 1..9 {
        levels.push(format!(
            "&a{i} [{}]",
            vec![format!("*a{}", i - 1); 10].join(", ")
        ));
    }
    let doc = DEFAULT_CONFIG.replacen(
        "hosts:\n",
        &format!("hosts: [{}]\nx:\n", levels.join(", ")),
        1,
    );
    let err = Config::parse(&doc, "bomb.yml").unwrap_err().to_string();
    assert!(err.starts_with("bomb.yml:"), "{err}");
    assert!(err.contains("invalid type: sequence"), "{err}");
}

// ---- The lock file merged into the config.

const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn locked(role: &str, host: Host, suite: &str, package: &str, version: &str) -> LockedPackage {
    LockedPackage {
        role: role.into(),
        host,
        suite: suite.into(),
        package: package.into(),
        version: version.into(),
        file: format!(
            "pool/main/x/{package}/{package}_{version}_{}.deb",
            host.debian()
        ),
        size: 7,
        sha256: SHA_A.into(),
    }
}

/// A config with no pins at all: everything comes from a lock.
const BARE: &str = "repo: qus\ndefault: d10.0\nhosts: [amd64, arm32v7, riscv64]\n\
    busybox: { package: busybox-static, suite: trixie }\n\
    sources:\n\
    \x20 - { name: d10.0, distro: debian, suite: trixie, package: qemu-user, targets: [aarch64, arm],\n\
    \x20     files: { arm32v7: { targets: [arm] } } }\n\
    \x20 - { name: d7.2, distro: debian, suite: bookworm, package: qemu-user-static, targets: [aarch64, arm] }\n";

/// The error of BARE with `replace` replaced by `by`, and the bare lock, as `m.yml`.
fn bare_error(replace: &str, by: &str) -> String {
    let text = BARE.replacen(replace, by, 1);
    assert_ne!(text, BARE, "test did not change anything: {replace}");
    Config::parse_with_lock(&text, "m.yml", Some((&bare_lock(), "m.lock")))
        .unwrap_err()
        .to_string()
}

fn bare_lock() -> LockFile {
    let mut l = LockFile::new();
    for h in [Host::Amd64, Host::Arm32v7, Host::Riscv64] {
        l.packages.push(locked(
            BUSYBOX,
            h,
            "trixie",
            "busybox-static",
            "1:1.37.0-6+b9",
        ));
        l.packages.push(locked(
            "d10.0",
            h,
            "trixie",
            "qemu-user",
            "1:10.0.13+ds-0+deb13u1",
        ));
    }
    for h in [Host::Amd64, Host::Arm32v7] {
        l.packages.push(locked(
            "d7.2",
            h,
            "bookworm",
            "qemu-user-static",
            "1:7.2+dfsg-7",
        ));
    }
    l.unavailable.push(lockfile::Unavailable {
        role: "d7.2".into(),
        host: Host::Riscv64,
        suite: "bookworm".into(),
        package: "qemu-user-static".into(),
    });
    l
}

#[test]
fn lock_replaces_the_inline_pin_and_keeps_its_targets() {
    // With a lock, a host a source does not pin must be one the lock says the suite
    // lacks; otherwise the lock is older than the config.
    let mut lock = default_lock();
    lock.unavailable
        .retain(|u| !(u.role == "d7.2" && u.host == Host::Riscv64));
    let e =
        Config::parse_with_lock(DEFAULT_CONFIG, "qus.yml", Some((&lock, "qus.lock"))).unwrap_err();
    assert!(
        e.to_string()
            .contains("sources[d7.2]: no qemu-user-static is pinned for host riscv64"),
        "{e}"
    );

    // A lock pin replaces an inline one; the config's per-host targets stay.
    let inline = format!(
        "{{ targets: [arm], file: pool/main/q/qemu/inline_armhf.deb, sha256: {}, version: '1:10.0.12' }}",
        "b".repeat(64)
    );
    let text = BARE
        .replace("arm32v7: { targets: [arm] }", &format!("arm32v7: {inline}"))
        .replace(
            "files: { arm32v7:",
            &format!(
                "files: {{ amd64: {{ file: pool/main/q/qemu/inline_amd64.deb, sha256: {}, version: '1:10.0.12' }}, arm32v7:",
                "c".repeat(64)
            ),
        );
    let mut lock = bare_lock();
    lock.packages
        .retain(|p| !(p.role == "d10.0" && p.host == Host::Amd64));
    for p in &mut lock.packages {
        if p.role == "d10.0" && p.host == Host::Arm32v7 {
            p.version = "1:10.0.14+ds-0+deb13u1".into();
        }
    }
    let c = Config::parse_with_lock(&text, "m.yml", Some((&lock, "m.lock"))).unwrap();
    assert_eq!(c.lock.as_deref(), Some("m.lock"));
    let d10 = c.source("d10.0").unwrap();
    let f = &d10.files[&Host::Arm32v7];
    assert_eq!(
        (f.sha256.as_str(), f.size, f.version.as_str()),
        (SHA_A, Some(7), "1:10.0.14+ds-0+deb13u1")
    );
    assert!(f.file.ends_with("_armhf.deb"), "{}", f.file);
    assert_eq!(d10.targets_for(Host::Arm32v7), ["arm"]);
    // A host the lock does not pin keeps its inline pin.
    assert_eq!(d10.files[&Host::Amd64].version, "1:10.0.12");
    assert!(d10.files[&Host::Amd64].sha256.starts_with("ccc"));
    // The source's version is the newest of its files (10.0.14 > 10.0.13 > 10.0.12).
    assert_eq!(d10.version, "1:10.0.14+ds-0+deb13u1");
    assert_eq!(c.busybox.suite, "trixie");
    assert_eq!(c.busybox.files[&Host::Amd64].version, "1:1.37.0-6+b9");
}

#[test]
fn a_bare_config_takes_every_pin_from_the_lock() {
    let c = Config::parse_with_lock(BARE, "m.yml", Some((&bare_lock(), "m.lock"))).unwrap();
    let d7 = c.source("d7.2").unwrap();
    assert_eq!(
        d7.files.keys().copied().collect::<Vec<_>>(),
        [Host::Amd64, Host::Arm32v7]
    );
    assert_eq!(d7.version, "1:7.2+dfsg-7");
    assert_eq!(
        c.source("d10.0").unwrap().targets_for(Host::Arm32v7),
        ["arm"]
    );
    assert_eq!(c.busybox.files.len(), 3);
}

#[test]
fn nothing_pinned_says_to_run_qus_lock() {
    let e = Config::parse(BARE, "m.yml").unwrap_err().to_string();
    assert!(
        e.starts_with(
            "m.yml: busybox: no busybox-static is pinned for hosts amd64, arm32v7, riscv64"
        ),
        "{e}"
    );
    assert!(e.contains("m.lock") && e.contains("run `qus lock`"), "{e}");
    // A lock older than the config: a host was added since.
    let mut lock = bare_lock();
    lock.packages
        .retain(|p| !(p.role == "d10.0" && p.host == Host::Riscv64));
    let e = Config::parse_with_lock(BARE, "m.yml", Some((&lock, "m.lock")))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("sources[d10.0]: no qemu-user is pinned for host riscv64"),
        "{e}"
    );
    assert!(e.contains("run `qus lock`"), "{e}");
    // busybox that the suite does not have for a host of `hosts`.
    let mut lock = bare_lock();
    lock.packages
        .retain(|p| !(p.role == BUSYBOX && p.host == Host::Riscv64));
    lock.unavailable.push(lockfile::Unavailable {
        role: BUSYBOX.into(),
        host: Host::Riscv64,
        suite: "trixie".into(),
        package: "busybox-static".into(),
    });
    let e = Config::parse_with_lock(BARE, "m.yml", Some((&lock, "m.lock")))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("trixie has no busybox-static for host riscv64"),
        "{e}"
    );
}

#[test]
fn a_lock_for_another_suite_or_source_is_out_of_date() {
    let mut lock = bare_lock();
    lock.packages[1].suite = "bookworm".into();
    let e = Config::parse_with_lock(BARE, "m.yml", Some((&lock, "m.lock")))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("m.lock: d10.0 amd64 is locked as qemu-user from bookworm"),
        "{e}"
    );
    assert!(e.contains("run `qus lock`"), "{e}");
    let mut lock = bare_lock();
    lock.packages[1].role = "d9.0".into();
    let e = Config::parse_with_lock(BARE, "m.yml", Some((&lock, "m.lock")))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("d9.0 amd64 is locked, but m.yml has no such source"),
        "{e}"
    );
}

#[test]
fn busybox_needs_a_suite_and_inline_pins_need_file_sha_and_version() {
    let e = with(
        "  package: busybox-static\n  suite: trixie\n",
        "  package: busybox-static\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("missing field `suite`"), "{e}");
    let e = with(", sha256: dccccdab", ", sha: dccccdab")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `sha`"), "{e}");
    let inline = |entry: &str| {
        bare_error(
            "busybox: { package: busybox-static, suite: trixie }",
            &format!("busybox: {{ package: busybox-static, suite: trixie, files: {{ amd64: {entry} }} }}"),
        )
    };
    let e = inline("{ file: pool/main/b/b.deb, version: '1' }");
    assert!(
        e.contains("busybox.files.amd64: give `file` and `sha256` together"),
        "{e}"
    );
    let e = inline(&format!("{{ file: pool/main/b/b.deb, sha256: {SHA_A} }}"));
    assert!(e.contains("busybox.files.amd64: no version"), "{e}");
}

#[test]
fn load_reads_the_lock_beside_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("m.yml");
    std::fs::write(&cfg, BARE).unwrap();
    let lock_path = dir.path().join("m.lock");
    bare_lock().write(&lock_path, "m.yml").unwrap();
    let c = Config::load(Some(&cfg)).unwrap();
    assert_eq!(
        c.lock.as_deref(),
        Some(lock_path.display().to_string().as_str())
    );
    assert_eq!(c.busybox.files.len(), 3);

    // A malformed lock: file, line and column.
    let text = std::fs::read_to_string(&lock_path).unwrap();
    let bad = text.replacen("size: 7", "size: seven", 1);
    std::fs::write(&lock_path, &bad).unwrap();
    let e = Config::load(Some(&cfg)).unwrap_err().to_string();
    let line = bad.lines().position(|l| l.contains("seven")).unwrap() + 1;
    let want = format!("{}:{line}:", lock_path.display());
    assert!(e.starts_with(&want), "want {want}: {e}");
    assert!(
        e.contains("invalid type: string \"seven\", expected u64"),
        "{e}"
    );

    // `qus lock` sets it aside instead, and still reads a config without pins.
    let input = Config::load_for_lock(Some(&cfg)).unwrap();
    assert!(input.ignored_lock.unwrap().starts_with(&want));
    assert_eq!(input.lock_path, lock_path);
    assert!(input.config.busybox.files.is_empty());
    std::fs::remove_file(&lock_path).unwrap();
    let input = Config::load_for_lock(Some(&cfg)).unwrap();
    assert!(input.ignored_lock.is_none() && input.config.lock.is_none());
    assert!(Config::load(Some(&cfg))
        .unwrap_err()
        .to_string()
        .contains("run `qus lock`"));
}

#[test]
fn known_failures_name_targets_of_their_source_and_say_why() {
    let base =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/images/qus.yml")).unwrap();
    let c = with_default_lock(&base, "qus.yml").unwrap();
    let d72 = c.source("d7.2").unwrap();
    assert!(d72.known_failure(Host::Amd64, "loongarch64").is_some());
    assert!(d72.known_failure(Host::I386, "mips64el").is_some());
    assert!(d72.known_failure(Host::Amd64, "mips64el").is_none());
    let bad = |entry: &str| {
        let text = base.replacen(
            "    known_failures:\n",
            &format!("    known_failures:\n{entry}"),
            1,
        );
        with_default_lock(&text, "qus.yml").unwrap_err().to_string()
    };
    let e = bad("      - targets: [nosuch]\n        reason: \"x\"\n");
    assert!(
        e.contains("'nosuch' is not one of the source's targets"),
        "{e}"
    );
    let e = bad("      - targets: [arm]\n        reason: \" \"\n");
    assert!(e.contains("`reason:` is empty"), "{e}");
}

// ---- fallback_suites: where `qus lock` may take a host's package when its suite serves none.

#[test]
fn fallback_suites_are_checked_and_a_lock_may_pin_from_them() {
    let text = BARE.replace(
        "suite: trixie, package: qemu-user,",
        "suite: trixie, fallback_suites: [forky, sid], package: qemu-user,",
    );
    let c = Config::parse_with_lock(&text, "m.yml", Some((&bare_lock(), "m.lock"))).unwrap();
    let d10 = c.source("d10.0").unwrap();
    assert_eq!(d10.suites_for(Host::Amd64), ["trixie", "forky", "sid"]);
    assert_eq!(c.busybox.suites_for(Host::Amd64), ["trixie"]);

    // A lock entry from a fallback suite is current; from any other suite it is stale.
    let mut lock = bare_lock();
    lock.packages[1].suite = "forky".into();
    let c = Config::parse_with_lock(&text, "m.yml", Some((&lock, "m.lock"))).unwrap();
    assert_eq!(
        c.source("d10.0").unwrap().files[&Host::Amd64].version,
        "1:10.0.13+ds-0+deb13u1"
    );
    lock.packages[1].suite = "bookworm".into();
    let e = Config::parse_with_lock(&text, "m.yml", Some((&lock, "m.lock")))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("d10.0 amd64 is locked as qemu-user from bookworm, but sources[d10.0] says qemu-user from trixie or forky or sid"),
        "{e}"
    );

    // A host's own suite (`suite:` in its files entry) comes first, then the fallbacks.
    let own = text.replace(
        "arm32v7: { targets: [arm] }",
        "arm32v7: { targets: [arm], suite: sid }",
    );
    let c = Config::parse_with_lock(
        &own,
        "m.yml",
        Some((&lock_with_suite(Host::Arm32v7, "sid"), "m.lock")),
    )
    .unwrap();
    assert_eq!(
        c.source("d10.0").unwrap().suites_for(Host::Arm32v7),
        ["sid", "forky"]
    );
}

/// The bare lock with d10.0's `host` pinned from `suite`.
fn lock_with_suite(host: Host, suite: &str) -> LockFile {
    let mut l = bare_lock();
    for p in &mut l.packages {
        if p.role == "d10.0" && p.host == host {
            p.suite = suite.into();
        }
    }
    l
}

#[test]
fn bad_fallback_suites_name_the_file_and_the_field() {
    let bad = |list: &str| {
        bare_error(
            "suite: trixie, package: qemu-user,",
            &format!("suite: trixie, fallback_suites: {list}, package: qemu-user,"),
        )
    };
    let e = bad("[forky, forky]");
    assert_eq!(
        e,
        "m.yml: sources[d10.0].fallback_suites: 'forky' is listed twice"
    );
    let e = bad("[trixie]");
    assert!(
        e.starts_with(
            "m.yml: sources[d10.0].fallback_suites: 'trixie' is the section's own `suite`"
        ),
        "{e}"
    );
    let e = bad("['../etc']");
    assert!(
        e.starts_with("m.yml: sources[d10.0].fallback_suites: '../etc' is not a Debian suite name"),
        "{e}"
    );
    let e = bad("forky");
    assert!(
        e.starts_with("m.yml:") && e.contains("fallback_suites"),
        "{e}"
    );
    let e = bare_error(
        "busybox: { package: busybox-static, suite: trixie }",
        "busybox: { package: busybox-static, suite: trixie, fallback_suites: ['a b'] }",
    );
    assert!(
        e.starts_with("m.yml: busybox.fallback_suites: 'a b'"),
        "{e}"
    );
}
