//! What users read, stored under tests/snapshots/ so that every change of wording is a
//! reviewed diff: `--help` of qus and of each subcommand, and the error (message and exit
//! status) of each bad input a newcomer typed (issue 21). None needs a daemon or a
//! network: each stops while parsing or planning. `QUS_BLESS=1` rewrites the files.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Variables set for one run.
type Vars = &'static [(&'static str, &'static str)];

/// (file name, environment, arguments).
const BAD_INPUTS: &[(&str, Vars, &[&str])] = &[
    ("targets-arm46", &[], &["plan", "--targets", "arm46"]),
    ("targets-aarch46", &[], &["plan", "--targets", "aarch46"]),
    ("hosts-arm46", &[], &["plan", "--hosts", "arm46"]),
    (
        "platform-typo",
        &[],
        &["build", "--platform", "linux/arm46"],
    ),
    ("hosts-mips64le", &[], &["plan", "--hosts", "mips64le"]),
    (
        "hosts-i686-qemu11",
        &[],
        &["plan", "--hosts", "i686", "--sources", "d11.1"],
    ),
    ("repo-from-env", &[("QUS_REPO", "Bad Repo")], &["plan"]),
    ("repo-flag", &[], &["plan", "--repo", "Bad Repo"]),
    (
        "config-missing",
        &[],
        &["plan", "--config", "/nonexistent.yml"],
    ),
    ("progress-from-env", &[("QUS_PROGRESS", "bars")], &["check"]),
    ("unknown-flag", &[], &["plan", "--bogus"]),
    ("context-on-plan", &[], &["--context", "x", "plan"]),
    (
        "register-install-arm46",
        &[],
        &["register", "--install", "arm46"],
    ),
    (
        "register-dbhi-aarch46",
        &[],
        &["register", "--", "-p", "aarch46"],
    ),
    (
        "register-mixed-dialects",
        &[],
        &["register", "--install", "aarch64", "--reset", "-p", "yes"],
    ),
    (
        "register-t-before-separator",
        &[],
        &["register", "-t", "aarch64"],
    ),
];

fn snapshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots")
}

/// `$ qus ARGS`, the exit status, stdout and stderr, as one text.
fn transcript(env: &[(&str, &str)], args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_qus"));
    for (k, _) in std::env::vars() {
        if k.starts_with("QUS_") || k.starts_with("DOCKER_") || k.starts_with("QEMU_") {
            c.env_remove(k);
        }
    }
    // Help wraps at the terminal's width (COLUMNS when stdout is none), at most 100.
    c.env_remove("COLUMNS");
    c.current_dir(dir.path())
        .envs(env.iter().copied())
        .args(args);
    let out = c.output().unwrap();
    let prefix: String = env.iter().map(|(k, v)| format!("{k}='{v}' ")).collect();
    format!(
        "$ {prefix}qus {}\nexit status: {}\n--- stdout\n{}--- stderr\n{}",
        args.iter()
            .map(|a| if a.contains(' ') {
                format!("'{a}'")
            } else {
                a.to_string()
            })
            .collect::<Vec<_>>()
            .join(" "),
        out.status.code().map_or("signal".into(), |c| c.to_string()),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Compares `got` with the stored snapshot `name` (or stores it, with QUS_BLESS=1); returns
/// a description of the difference.
fn compare(name: &str, got: &str) -> Option<String> {
    let path = snapshots().join(format!("{name}.txt"));
    if std::env::var_os("QUS_BLESS").is_some() {
        std::fs::create_dir_all(snapshots()).unwrap();
        std::fs::write(&path, got).unwrap();
        return None;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    (want != got).then(|| {
        let first = want
            .lines()
            .zip(got.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(want.lines().count().min(got.lines().count()));
        format!(
            "{}: differs from line {} (QUS_BLESS=1 to accept)\n--- stored\n{}\n--- now\n{}",
            path.display(),
            first + 1,
            want.lines()
                .skip(first)
                .take(3)
                .collect::<Vec<_>>()
                .join("\n"),
            got.lines()
                .skip(first)
                .take(3)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

fn assert_all(diffs: Vec<String>) {
    assert!(diffs.is_empty(), "{}", diffs.join("\n\n"));
}

fn subcommands() -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_qus"))
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A long description wraps onto lines indented deeper than the names.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn help_of_every_subcommand() {
    let subs = subcommands();
    assert!(
        subs.len() >= 13 && subs.contains(&"register".to_string()),
        "{subs:?}"
    );
    let mut diffs = Vec::new();
    diffs.extend(compare("help", &transcript(&[], &["--help"])));
    for sub in &subs {
        let args = [sub.as_str(), "--help"];
        diffs.extend(compare(&format!("help-{sub}"), &transcript(&[], &args)));
    }
    assert_all(diffs);
}

#[test]
fn help_subcommand_prints_what_dash_h_prints() {
    for sub in subcommands() {
        let a = transcript(&[], &["help", &sub]);
        let b = transcript(&[], &[&sub, "-h"]);
        let body = |t: &str| t.split_once('\n').map(|(_, rest)| rest.to_string());
        assert_eq!(body(&a), body(&b), "qus help {sub}");
    }
}

#[test]
fn bad_inputs() {
    let mut diffs = Vec::new();
    for (name, env, args) in BAD_INPUTS {
        let got = transcript(env, args);
        assert!(got.contains("exit status: 2\n"), "{got}");
        let stderr = got.split("--- stderr\n").nth(1).unwrap_or("");
        assert!(stderr.starts_with("qus: error: "), "one prefix: {got}");
        diffs.extend(compare(name, &got));
    }
    assert_all(diffs);
}

#[test]
fn plan_table_fits_100_columns() {
    let got = transcript(&[], &["plan"]);
    assert!(got.contains("exit status: 0"), "{got}");
    let widest = got.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    assert!(widest <= 100, "a line of {widest} columns");
    let wide = transcript(&[], &["plan", "--wide"]);
    assert!(wide.lines().map(|l| l.chars().count()).max().unwrap_or(0) > 100);
}

#[test]
fn commands_md_is_generated_from_the_definitions() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/commands.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_qus"))
        .args(["docs", "commands"])
        .output()
        .unwrap();
    let generated = String::from_utf8(out.stdout).unwrap();
    let marker = generated.lines().next().unwrap().to_string();
    let kept = text
        .split(&marker)
        .next()
        .unwrap_or(&text)
        .trim_end()
        .to_string();
    let want = format!("{kept}\n\n{generated}");
    if std::env::var_os("QUS_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    assert!(
        text == want,
        "docs/commands.md's reference differs from `qus docs commands` (QUS_BLESS=1 rewrites it)"
    );
}
