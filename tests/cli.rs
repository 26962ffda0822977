//! The command-line conventions: completions and a man page from the same definitions as
//! `--help`, `--progress`, and exit statuses a script can rely on (0 ok, 1 failed or found
//! a difference, 2 usage or config error).

use crate::support::*;

fn qus_in(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = qus(dir).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn completion_scripts_name_qus_and_its_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = qus_in(dir.path(), &["completion", "bash"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("qus"), "{out}");
    for sub in ["build", "release", "register", "completion", "man"] {
        assert!(out.contains(sub), "bash completion lacks {sub}");
    }
    assert!(out.contains("--progress"), "flags too");
    for shell in ["zsh", "fish"] {
        let (code, out, err) = qus_in(dir.path(), &["completion", shell]);
        assert_eq!(code, Some(0), "{shell}: {err}");
        assert!(out.contains("release"), "{shell}: {out}");
    }
    let (code, _, err) = qus_in(dir.path(), &["completion", "tcsh"]);
    assert_eq!(code, Some(2), "an unknown shell is a usage error: {err}");
}

#[test]
fn man_page_is_roff_with_an_exit_status_section() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = qus_in(dir.path(), &["man"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with(".TH"), "{}", &out[..out.len().min(200)]);
    assert_eq!(out.matches(".TH ").count(), 1);
    assert!(out.contains(".SH \"EXIT STATUS\""), "{out}");
    assert!(
        out.contains("register") && out.contains("\\-\\-progress"),
        "{out}"
    );
    // And `--help` says the same.
    let (code, out, _) = qus_in(dir.path(), &["--help"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("Exit status:") && out.contains("usage or configuration error"));
}

#[test]
fn progress_plain_draws_no_bars() {
    let cfg = real_config();
    let out_dir = cfg.dir.path().join("assets");
    let go = |extra: &[&str], env: Option<&str>| {
        let mut c = cfg.qus();
        c.args([
            "assets",
            "--hosts",
            "amd64",
            "--targets",
            "aarch64",
            "--out",
        ])
        .arg(&out_dir)
        .args(cfg.debs_flag())
        .args(extra);
        if let Some(v) = env {
            c.env("QUS_PROGRESS", v);
        }
        let out = c.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = go(&["--progress", "plain"], None);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.lines().count() >= 2, "a line per step: {err}");
    assert!(err.lines().all(|l| l.starts_with("qus: ")), "{err}");
    assert!(
        !err.contains('\x1b') && !err.contains('\r'),
        "no control characters: {err:?}"
    );
    // The environment spells it too, and clap checks its value.
    let (code, err) = go(&[], Some("plain"));
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains('\x1b'), "{err:?}");
    let (code, err) = go(&[], Some("bars"));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("QUS_PROGRESS") || err.contains("--progress"),
        "{err}"
    );
}

#[test]
fn usage_and_config_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = qus_in(dir.path(), &["plan", "--no-such-flag"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, _, err) = qus_in(dir.path(), &["build", "--progress", "fancy"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, _, err) = qus_in(dir.path(), &["plan", "--repo", "UPPER/case"]);
    assert_eq!(code, Some(2), "{err}");
    // A config that is not YAML: a config error, naming the file and the line.
    let bad = dir.path().join("qus.yml");
    std::fs::write(&bad, "repo: [unclosed\n").unwrap();
    let (code, _, err) = qus_in(dir.path(), &["--config", bad.to_str().unwrap(), "plan"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(bad.to_str().unwrap()), "{err}");
    let (code, _, err) = qus_in(
        dir.path(),
        &[
            "--config",
            dir.path().join("missing.yml").to_str().unwrap(),
            "plan",
        ],
    );
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn a_failure_while_working_exits_1() {
    // The pinned package is not where --debs says: the fetch fails, the flags were fine.
    let cfg = real_config();
    let empty = tempfile::tempdir().unwrap();
    let out = cfg
        .qus()
        .args([
            "assets",
            "--hosts",
            "amd64",
            "--targets",
            "aarch64",
            "--out",
        ])
        .arg(cfg.dir.path().join("assets"))
        .arg("--debs")
        .arg(empty.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
}
