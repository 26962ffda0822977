//! `qus register` on a bare host: an emulator the request names is missing, so qus fetches
//! this host's pinned QEMU package from a loopback mirror, installs the emulator in a
//! directory of its own and registers it with F; `--persist` writes a systemd binfmt.d
//! file, and uninstalling takes both away. A dry run of each README example says exactly
//! what the run then does. Everything happens in a private binfmt_misc (`unshare --user
//! --map-root-user --mount`, Linux 6.7+), so the host is never touched and no lock is
//! needed.

use crate::support::*;
use qus_source::testkit::Server;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// A loopback mirror whose pool holds the config's qemu-user package for amd64.
fn mirror_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let f = deb("qemu-user", "amd64");
    let dest = root.path().join(pool_path(&f));
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::copy(&f, &dest).unwrap();
    root
}

/// The folder qus installs into under the install dir: the pinned version (the test
/// config's `1:10.0`) without its epoch, so that no `:` reaches a binfmt_misc line.
const VERSION_DIR: &str = "10.0";

/// Runs `script` in a private user and mount namespace with `q` a function running `qus
/// register` with the test's dirs, and binfmt_misc mounted at $MNT first when `mount`;
/// returns the driver's stderr.
fn in_namespace(cfg: &TestConfig, work: &Path, mirror: &str, mount: bool, script: &str) -> String {
    let mnt = work.join("binfmt_misc");
    std::fs::create_dir_all(&mnt).unwrap();
    let empty = work.join("no-emulators");
    std::fs::create_dir_all(&empty).unwrap();
    let mount = if mount {
        r#"mount -t binfmt_misc none "$MNT" || { echo "cannot mount binfmt_misc" >&2; exit 90; }"#
    } else {
        ""
    };
    let driver = format!(
        r#"set -u
{mount}
q() {{ "$QUS" --config "$CFG" register --install-dir "$W/inst" --persist-dir "$W/binfmt.d" --mirror "$MIRROR" "$@"; }}
{script}
"#
    );
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", &driver])
        .env("MNT", &mnt)
        .env("QUS_BINFMT_MOUNT", &mnt)
        .env("QUS", env!("CARGO_BIN_EXE_qus"))
        .env("CFG", &cfg.path)
        .env("W", work)
        .env("MIRROR", mirror)
        // The dialects look here: empty, so this host has no emulator.
        .env("QEMU_BINARY_PATH", &empty)
        .env("QEMU_BIN_DIR", &empty)
        .env("QUS_CACHE", work.join("cache"))
        // A private binfmt_misc on purpose.
        .env("QUS_ALLOW_PRIVATE", "1")
        .env_remove("QUS_CONFIG")
        .env_remove("QUS_MIRROR")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "the namespace driver failed ({:?}): {text}",
        out.status
    );
    text
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn register_on_a_bare_host_installs_registers_persists_and_uninstalls() {
    let cfg = real_config();
    let root = mirror_root();
    let server = Server::start(root.path()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    in_namespace(
        &cfg,
        w,
        &server.url(),
        true,
        r#"
QUS_ALLOW_PRIVATE=0 q --persist --install arm64 >"$W/0.out" 2>"$W/0.err"; echo $? >"$W/0.code"
ls "$MNT" >"$W/0.ls"; ls "$W" >"$W/0.work"
q --persist --install arm64 >"$W/1.out" 2>"$W/1.err"; echo $? >"$W/1.code"
cat "$MNT/qemu-aarch64" >"$W/1.entry" 2>&1
stat -c %a "$W/inst/10.0/qemu-aarch64" >"$W/1.mode" 2>&1
head -c 4 "$W/inst/10.0/qemu-aarch64" >"$W/1.head" 2>&1
cat "$W/binfmt.d/qus-aarch64.conf" >"$W/1.conf" 2>&1
q --install arm64 --persist >"$W/2.out" 2>"$W/2.err"; echo $? >"$W/2.code"
cat "$MNT/qemu-aarch64" >"$W/2.entry" 2>&1
ls "$W/inst/"*/ >"$W/2.ls" 2>&1
q --uninstall qemu-aarch64 >"$W/3.out" 2>"$W/3.err"; echo $? >"$W/3.code"
ls "$MNT" >"$W/3.ls"
"#,
    );
    // This namespace's own binfmt_misc, which the host does not see: refused unless
    // allowed, before anything is installed or registered.
    let err0 = read(&w.join("0.err"));
    assert_eq!(read(&w.join("0.code")).trim(), "1", "{err0}");
    assert!(
        err0.contains("the host would not see these registrations, so nothing was registered"),
        "{err0}"
    );
    assert!(!read(&w.join("0.ls")).contains("qemu-aarch64"));
    assert!(!read(&w.join("0.work")).contains("inst"), "{err0}");

    let err1 = read(&w.join("1.err"));
    assert_eq!(read(&w.join("1.code")).trim(), "0", "{err1}");
    let bin = w.join("inst").join(VERSION_DIR).join("qemu-aarch64");
    let entry = read(&w.join("1.entry"));
    assert!(
        entry.contains(&format!("interpreter {}\n", bin.display())),
        "{entry}\n{err1}"
    );
    // binfmt's spelling asks for OCF; what qus installed always gets F.
    assert!(entry.contains("flags: OCF"), "{entry}");
    assert_eq!(read(&w.join("1.mode")).trim(), "755");
    assert_eq!(read(&w.join("1.head")), "\x7fELF");
    assert!(err1.contains("installed"), "{err1}");

    let conf = read(&w.join("1.conf"));
    let line = conf.lines().nth(1).unwrap_or_default();
    assert!(conf.starts_with("# Written by qus register"), "{conf}");
    assert!(
        line.starts_with(":qemu-aarch64:M::\\x7f\\x45\\x4c\\x46\\x02")
            && line.ends_with(&format!(":{}:OCF", bin.display())),
        "{conf}"
    );

    // The status says what happened to the emulator, and which QEMU it is.
    let record = |n: &str| -> serde_json::Value {
        let out = read(&w.join(format!("{n}.out")));
        let v: serde_json::Value = serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("{n}.out is not JSON ({e}): {out}"));
        let r = v["qus"]["registrations"].as_array().expect("registrations");
        assert_eq!(r.len(), 1, "{v}");
        r[0].clone()
    };
    let r1 = record("1");
    assert_eq!(r1["result"], "registered", "{r1}");
    assert_eq!(r1["target"], "aarch64");
    assert_eq!(r1["flags"], "OCF");
    assert_eq!(r1["interpreter"], bin.display().to_string());
    assert_eq!(r1["qemu_version"], "1:10.0", "{r1}");
    assert!(
        err1.contains(&format!(
            "qus: registered qemu-aarch64 -> {} (flags OCF)",
            bin.display()
        )),
        "{err1}"
    );

    // Idempotent: the same entry, nothing rewritten, nothing fetched again.
    let err2 = read(&w.join("2.err"));
    assert_eq!(read(&w.join("2.code")).trim(), "0", "{err2}");
    assert_eq!(read(&w.join("2.entry")), entry);
    let r2 = record("2");
    assert_eq!(r2["result"], "kept", "{r2}");
    assert_eq!(r2["reason"], "already registered the same way");
    assert!(r2["qemu_version"].is_null(), "{r2}");
    assert!(
        err2.contains("qus: qemu-aarch64 is already registered -> "),
        "{err2}"
    );
    assert!(err2.contains("already installed"), "{err2}");
    assert_eq!(
        server.hits(&pool_path(&deb("qemu-user", "amd64"))),
        1,
        "fetched once, then from the cache"
    );
    assert_eq!(read(&w.join("2.ls")).trim(), "qemu-aarch64");

    // Uninstall: the entry, the conf file and the binary go; a foreign conf file stays.
    let err3 = read(&w.join("3.err"));
    assert_eq!(read(&w.join("3.code")).trim(), "0", "{err3}");
    assert!(!read(&w.join("3.ls")).contains("qemu-aarch64"));
    assert!(!w.join("binfmt.d/qus-aarch64.conf").exists(), "{err3}");
    assert!(!bin.exists(), "{err3}");
    assert!(
        !bin.parent().unwrap().exists(),
        "the empty version dir goes too"
    );
}

#[test]
fn foreign_files_are_never_removed_or_overwritten() {
    let cfg = real_config();
    let root = mirror_root();
    let server = Server::start(root.path()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let persist = w.join("binfmt.d");
    std::fs::create_dir_all(&persist).unwrap();
    std::fs::write(persist.join("qus-riscv64.conf"), "mine\n").unwrap();
    let extra = w.join("inst").join(VERSION_DIR);
    std::fs::create_dir_all(&extra).unwrap();
    std::fs::write(extra.join("notes"), "mine\n").unwrap();
    in_namespace(
        &cfg,
        w,
        &server.url(),
        true,
        r#"
q --persist --install riscv64 >"$W/1.out" 2>"$W/1.err"; echo $? >"$W/1.code"
q -r -e >"$W/2.out" 2>"$W/2.err"; echo $? >"$W/2.code"
"#,
    );
    let err1 = read(&w.join("1.err"));
    // Registered, but the conf file that is not qus's is refused, by name.
    assert_eq!(read(&w.join("1.code")).trim(), "1", "{err1}");
    assert!(
        err1.contains("qus-riscv64.conf exists and qus did not write it"),
        "{err1}"
    );
    assert_eq!(read(&persist.join("qus-riscv64.conf")), "mine\n");
    // dbhi's -r removes every entry, then what qus installed, and only that.
    let err2 = read(&w.join("2.err"));
    assert_eq!(read(&w.join("2.code")).trim(), "0", "{err2}");
    assert!(!extra.join("qemu-riscv64").exists(), "{err2}");
    assert_eq!(read(&extra.join("notes")), "mine\n");
    assert_eq!(read(&persist.join("qus-riscv64.conf")), "mine\n");
}

#[test]
fn a_missing_package_or_mirror_says_which_and_what_to_do() {
    let cfg = real_config();
    let work = tempfile::tempdir().unwrap();
    let empty = work.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let inst = work.path().join("inst");
    // Never mounted: every run fails or stops before it would mount binfmt_misc here.
    let unmounted = work.path().join("binfmt_misc");
    std::fs::create_dir_all(&unmounted).unwrap();
    let server = Server::start(&empty).unwrap();
    let go = |cfg: &TestConfig, dry: bool| {
        let out = cfg
            .qus()
            .args(["register", "--install-dir"])
            .arg(&inst)
            .args(["--install", "arm64", "--mirror", &server.url()])
            .args(dry.then_some("--dry-run"))
            .env("QEMU_BINARY_PATH", &empty)
            .env("QUS_BINFMT_MOUNT", &unmounted)
            .env_remove("QUS_MIRROR")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // A dry run fetches nothing, so it cannot know: it plans the install and exits 0.
    let (code, err) = go(&cfg, true);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("qus: would install qemu-aarch64 10.0 into "),
        "{err}"
    );
    assert_eq!(server.hits(&pool_path(&deb("qemu-user", "amd64"))), 0);
    // The mirror does not have the pinned file: a failure (1), naming it and the host.
    let (code, err) = go(&cfg, false);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("qemu-user") && err.contains("amd64"), "{err}");
    assert!(!inst.exists(), "nothing installed: {err}");
    // The config pins no package for this host: a config error (2) that says what to do.
    // The dry run fails the same way.
    let arm_only = config_with(vec![Pin::new("arm64v8", deb("qemu-user", "arm64"))], vec![]);
    for dry in [false, true] {
        let (code, err) = go(&arm_only, dry);
        assert_eq!(code, Some(2), "{err}");
        assert!(
            err.contains("pins no QEMU package for this host (amd64)"),
            "{err}"
        );
        assert!(err.contains("qus lock"), "{err}");
    }
}

/// One run of `qus register`.
struct Run {
    code: String,
    out: String,
    err: String,
}

/// A README example in a fresh private binfmt_misc: `setup` (shell), then the example as a
/// dry run, then for real, with what each left behind.
struct Trial {
    dry: Run,
    real: Run,
    /// Whether binfmt_misc was mounted before and after the dry run.
    mounted: (String, String),
    /// binfmt_misc mounts in the namespace before and after the dry run.
    mounts: (String, String),
    /// The install dir, persist dir and cache (path, type, size, mode, mtime) before the
    /// dry run, after it, and after the real run.
    trees: [String; 3],
    /// Entries (name → file) after the dry run and after the real run.
    entries: [BTreeMap<String, String>; 2],
}

fn quote(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

fn trial(setup: &str, dry: &[&str], real: &[&str]) -> Trial {
    let cfg = real_config();
    let root = mirror_root();
    let server = Server::start(root.path()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let script = format!(
        r#"
snap() {{ find "$W/inst" "$W/binfmt.d" "$W/cache" -printf '%p %y %s %m %T@\n' 2>/dev/null | sort; }}
dump() {{
    [ -e "$MNT/register" ] || return 0
    for f in "$MNT"/*; do
        case ${{f##*/}} in register|status) continue ;; esac
        printf '== %s\n' "${{f##*/}}"; cat "$f"
    done
}}
mounted() {{ if [ -e "$MNT/register" ]; then echo yes; else echo no; fi; }}
{setup}
mounted >"$W/m0"; grep -c binfmt_misc /proc/self/mountinfo >"$W/mc0"; snap >"$W/t0"
q {dry} >"$W/d.out" 2>"$W/d.err"; echo $? >"$W/d.code"
mounted >"$W/m1"; grep -c binfmt_misc /proc/self/mountinfo >"$W/mc1"; snap >"$W/t1"
dump >"$W/e1"
q {real} >"$W/r.out" 2>"$W/r.err"; echo $? >"$W/r.code"
snap >"$W/t2"; dump >"$W/e2"
"#,
        dry = quote(dry),
        real = quote(real),
    );
    in_namespace(&cfg, w, &server.url(), false, &script);
    let r = |n: &str| read(&w.join(n));
    let run = |p: &str| Run {
        code: r(&format!("{p}.code")).trim().to_string(),
        out: r(&format!("{p}.out")),
        err: r(&format!("{p}.err")),
    };
    Trial {
        dry: run("d"),
        real: run("r"),
        mounted: (r("m0"), r("m1")),
        mounts: (r("mc0"), r("mc1")),
        trees: [r("t0"), r("t1"), r("t2")],
        entries: [entries(&r("e1")), entries(&r("e2"))],
    }
}

/// `== name` headers and entry files, as `dump` writes them.
fn entries(dump: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut name = None;
    for l in dump.lines() {
        if let Some(n) = l.strip_prefix("== ") {
            name = Some(n.to_string());
            m.insert(n.to_string(), String::new());
        } else if let Some(n) = &name {
            let body = m.get_mut(n).unwrap();
            body.push_str(l);
            body.push('\n');
        }
    }
    m
}

/// An entry as its register line says it: (magic, mask, interpreter, flags), the bytes in
/// the hex the kernel shows them in.
type Fields = (String, String, String, String);

/// The register lines a dry run printed, by entry name.
fn line_fields(out: &str) -> BTreeMap<String, Fields> {
    out.lines()
        .filter(|l| l.starts_with(':'))
        .map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            assert_eq!(f.len(), 8, "{l}");
            assert_eq!((f[2], f[3]), ("M", ""), "{l}");
            let hex = |s: &str| s.replace("\\x", "");
            (
                f[1].to_string(),
                (hex(f[4]), hex(f[5]), f[6].to_string(), f[7].to_string()),
            )
        })
        .collect()
}

/// The same fields of an entry file read back from binfmt_misc.
fn entry_fields(file: &str) -> Fields {
    let field = |key: &str| {
        file.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(file.lines().next(), Some("enabled"), "{file}");
    assert_eq!(field("offset "), "0", "{file}");
    (
        field("magic "),
        field("mask "),
        field("interpreter "),
        field("flags: "),
    )
}

/// `qus: would <verb> <what>` lines of a dry run: the first word of `what`.
fn would(err: &str, verb: &str) -> BTreeSet<String> {
    let prefix = format!("qus: would {verb} ");
    err.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|rest| rest.split(' ').next().unwrap_or_default().to_string())
        .collect()
}

/// Paths of a `snap` listing with the rest of their line (type, size, mode, mtime).
fn tree(snap: &str) -> BTreeMap<String, String> {
    snap.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(p, rest)| (p.to_string(), rest.to_string()))
        .collect()
}

/// The status JSON at the end of stdout.
fn status(out: &str) -> serde_json::Value {
    let at = out
        .find("{\n")
        .unwrap_or_else(|| panic!("no status JSON in {out}"));
    serde_json::from_str(&out[at..]).unwrap()
}

impl Trial {
    /// Checks that the dry run exited 0, changed nothing, and said exactly what the run then
    /// did: entries written (every field), entries removed, files installed, written and
    /// removed. Returns the entries the run wrote.
    fn agrees(&self) -> BTreeMap<String, Fields> {
        let ctx = format!(
            "--- dry stdout:\n{}--- dry stderr:\n{}--- real stderr:\n{}",
            self.dry.out, self.dry.err, self.real.err
        );
        assert_eq!(self.dry.code, "0", "{ctx}");
        assert_eq!(self.real.code, "0", "{ctx}");
        assert_eq!(
            self.trees[0], self.trees[1],
            "the dry run wrote files: {ctx}"
        );
        assert_eq!(self.mounted.0, self.mounted.1, "the dry run mounted: {ctx}");
        assert_eq!(self.mounts.0, self.mounts.1, "the dry run mounted: {ctx}");

        let [before, after] = &self.entries;
        let written: BTreeMap<String, Fields> = after
            .iter()
            .filter(|(n, f)| before.get(*n) != Some(f))
            .map(|(n, f)| (n.clone(), entry_fields(f)))
            .collect();
        assert_eq!(line_fields(&self.dry.out), written, "{ctx}");
        let removed: BTreeSet<String> = before
            .keys()
            .filter(|n| !after.contains_key(*n))
            .cloned()
            .collect();
        let said = would(&self.dry.err, "remove");
        let (said_entries, said_files): (BTreeSet<String>, BTreeSet<String>) =
            said.into_iter().partition(|w| !w.starts_with('/'));
        assert_eq!(said_entries, removed, "{ctx}");

        let (t1, t2) = (tree(&self.trees[1]), tree(&self.trees[2]));
        let is_ours = |p: &&String| {
            (p.contains("/inst/") || p.contains("/binfmt.d/"))
                && !p.ends_with(".qus-installed")
                && !p.ends_with("/inst")
                && !p.ends_with("/binfmt.d")
        };
        let gone: BTreeSet<String> = t1
            .keys()
            .filter(is_ours)
            .filter(|p| !t2.contains_key(*p))
            .filter(|p| t1[*p].starts_with('f'))
            .cloned()
            .collect();
        assert_eq!(said_files, gone, "files removed: {ctx}");
        let changed = |dir: &str| -> BTreeSet<String> {
            t2.iter()
                .filter(|(p, line)| p.contains(dir) && line.starts_with('f'))
                .filter(|(p, _)| !p.ends_with(".qus-installed"))
                .filter(|(p, line)| t1.get(*p) != Some(line))
                .map(|(p, _)| p.clone())
                .collect()
        };
        assert_eq!(
            would(&self.dry.err, "write"),
            changed("/binfmt.d/"),
            "{ctx}"
        );
        assert_eq!(
            would(&self.dry.err, "install")
                .into_iter()
                .map(|b| b.trim_start_matches("qemu-").to_string())
                .collect::<BTreeSet<_>>(),
            changed("/inst/")
                .iter()
                .map(|p| p.rsplit("/qemu-").next().unwrap().to_string())
                .collect(),
            "{ctx}"
        );
        // Where the run installs, the dry run names the files it installs.
        for p in changed("/inst/") {
            assert!(self.dry.err.contains(&format!(" into {p} ")), "{p}: {ctx}");
        }
        written
    }

    /// binfmt's status: the dry run's is the one the run then prints, bar `dry_run`.
    fn same_status(&self) {
        let (mut d, mut r) = (status(&self.dry.out), status(&self.real.out));
        assert_eq!(d["qus"]["dry_run"], true);
        assert_eq!(r["qus"]["dry_run"], false);
        for s in [&mut d, &mut r] {
            let q = s["qus"].as_object_mut().unwrap();
            q.remove("dry_run");
        }
        assert_eq!(d, r);
    }
}

#[test]
fn dry_run_of_binfmt_install_is_what_the_run_does() {
    let t = trial(
        "",
        &["--dry-run", "--install", "arm64,riscv64"],
        &["--install", "arm64,riscv64"],
    );
    let written = t.agrees();
    assert_eq!(
        written.keys().collect::<Vec<_>>(),
        ["qemu-aarch64", "qemu-riscv64"]
    );
    // Installed by qus, so F, with binfmt's OC.
    assert!(written
        .values()
        .all(|f| f.3 == "OCF" && f.2.contains("/inst/")));
    assert_eq!(t.mounted.1.trim(), "no", "{}", t.dry.err);
    assert!(
        t.dry.err.contains("would mount binfmt_misc at "),
        "{}",
        t.dry.err
    );
    t.same_status();
    let s = status(&t.dry.out);
    assert_eq!(s["qus"]["installs"].as_array().unwrap().len(), 2);
    assert!(s["supported"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("linux/riscv64")));
}

#[test]
fn dry_run_of_dbhi_examples_is_what_the_run_does() {
    for (dry, real) in [
        (
            &["--dry-run", "--", "-p", "aarch64"][..],
            &["--", "-p", "aarch64"][..],
        ),
        // dbhi's own dry-run spelling.
        (
            &["-s", "--", "-t", "-p", "aarch64"],
            &["-s", "--", "-p", "aarch64"],
        ),
    ] {
        let t = trial("", dry, real);
        let written = t.agrees();
        assert_eq!(written.keys().collect::<Vec<_>>(), ["qemu-aarch64"]);
        assert_eq!(written["qemu-aarch64"].3, "F");
    }
}

#[test]
fn dry_run_of_multiarch_reset_is_what_the_run_does() {
    for persist in [false, true] {
        let mut dry = vec!["--reset", "-p", "yes", "--dry-run"];
        let mut real = vec!["--reset", "-p", "yes"];
        if persist {
            dry.push("--persist");
            real.push("--persist");
        }
        let t = trial("", &dry, &real);
        let written = t.agrees();
        // Every emulator of the test package but the host's own, with F.
        assert!(written.len() >= 3, "{written:?}");
        assert!(written.values().all(|f| f.3 == "F"), "{written:?}");
        assert_eq!(
            would(&t.dry.err, "write").len(),
            if persist { written.len() } else { 0 },
            "{}",
            t.dry.err
        );
    }
}

#[test]
fn dry_run_of_uninstall_is_what_the_run_does() {
    let t = trial(
        r#"q --install arm64,riscv64 --persist >"$W/s.out" 2>"$W/s.err" || exit 91"#,
        &["--dry-run", "--uninstall", "qemu-*"],
        &["--uninstall", "qemu-*"],
    );
    t.agrees();
    assert_eq!(t.mounted.1.trim(), "yes");
    let said = would(&t.dry.err, "remove");
    assert!(
        said.contains("qemu-aarch64") && said.contains("qemu-riscv64"),
        "{said:?}"
    );
    // The entries, their conf files and the emulators.
    assert_eq!(said.len(), 6, "{said:?}");
    t.same_status();
}
