//! An OpenPGP signing key for tests, made and used by GnuPG (an independent
//! implementation: qus verifies with rpgp): a throw-away GNUPGHOME, an Ed25519 key, its
//! public keyring file, the two ways a Debian suite is signed (clearsigned InRelease,
//! detached Release.gpg), and Fedora's way of signing an rpm (`rpmsign`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A test key in its own GNUPGHOME; removed on drop.
pub struct TestKey {
    home: tempfile::TempDir,
    /// The binary keyring (`gpg --export`) holding its public key.
    pub keyring: PathBuf,
    /// Its fingerprint, uppercase hex.
    pub fingerprint: String,
}

impl TestKey {
    /// A new signing key (`uid`), valid for `expire` (gpg's syntax: `never`, `1y`, `seconds=N`).
    pub fn generate(uid: &str, expire: &str) -> TestKey {
        TestKey::generate_at(uid, expire, None)
    }

    /// A key made as if the clock said `faked_time` (seconds since the epoch), so that a
    /// test can have one that has already expired.
    pub fn generate_at(uid: &str, expire: &str, faked_time: Option<u64>) -> TestKey {
        TestKey::generate_algo(uid, "ed25519", expire, faked_time)
    }

    /// A key of gpg's algorithm `algo` (`ed25519`, `rsa2048` …).
    pub fn generate_algo(uid: &str, algo: &str, expire: &str, faked_time: Option<u64>) -> TestKey {
        let home = tempfile::tempdir().expect("temp GNUPGHOME");
        let mut c = gpg(home.path());
        if let Some(t) = faked_time {
            c.arg(format!("--faked-system-time={t}!"));
        }
        c.args([
            "--passphrase",
            "",
            "--quick-gen-key",
            uid,
            algo,
            "sign",
            expire,
        ]);
        run(c, "gpg --quick-gen-key");
        let mut c = gpg(home.path());
        c.args(["--with-colons", "--list-keys", uid]);
        let listing = run(c, "gpg --list-keys");
        let fingerprint = String::from_utf8_lossy(&listing)
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .expect("a fingerprint")
            .to_string();
        let keyring = home.path().join("public.gpg");
        let mut c = gpg(home.path());
        c.arg("--export").arg(&fingerprint);
        std::fs::write(&keyring, run(c, "gpg --export")).expect("writing the keyring");
        TestKey {
            home,
            keyring,
            fingerprint,
        }
    }

    /// `dists/<suite>/InRelease`: `release` clearsigned (time faked when given).
    pub fn clearsign(&self, release: &[u8], faked_time: Option<u64>) -> Vec<u8> {
        self.sign(&["--clearsign"], release, faked_time)
    }

    /// `dists/<suite>/Release.gpg`: an armored detached signature of `release`.
    pub fn detach_sign(&self, release: &[u8]) -> Vec<u8> {
        self.sign(&["--armor", "--detach-sign"], release, None)
    }

    /// Writes `InRelease` and `Release.gpg` beside `dists_suite/Release`.
    pub fn sign_suite(&self, dists_suite: &Path) {
        let release = std::fs::read(dists_suite.join("Release")).expect("Release");
        std::fs::write(
            dists_suite.join("InRelease"),
            self.clearsign(&release, None),
        )
        .unwrap();
        std::fs::write(dists_suite.join("Release.gpg"), self.detach_sign(&release)).unwrap();
    }

    /// Signs the rpm at `rpm` in place with `rpmsign --addsign` (Debian's `rpm` package),
    /// as Fedora signs its packages.
    pub fn rpmsign(&self, rpm: &Path) {
        let mut c = Command::new("rpmsign");
        c.arg("--addsign")
            .arg("--define")
            .arg(format!("_gpg_name {}", self.fingerprint))
            .arg("--define")
            .arg(format!("_gpg_path {}", self.home.path().display()))
            // rpm's default is gpg2, which Debian does not have under that name, and rpm
            // runs it without a PATH search.
            .arg("--define")
            .arg(format!("__gpg {}", on_path("gpg").display()))
            .args([
                "--define",
                "_gpg_sign_cmd_extra_args --batch --pinentry-mode loopback --passphrase ''",
            ])
            .arg(rpm)
            .stdin(Stdio::null());
        run(c, "rpmsign --addsign");
    }

    fn sign(&self, how: &[&str], data: &[u8], faked_time: Option<u64>) -> Vec<u8> {
        let input = self.home.path().join("input");
        std::fs::write(&input, data).unwrap();
        let mut c = gpg(self.home.path());
        if let Some(t) = faked_time {
            c.arg(format!("--faked-system-time={t}!"));
        }
        c.args(["--local-user", &self.fingerprint])
            .args(how)
            .arg("--output")
            .arg("-")
            .arg(&input);
        run(c, "gpg sign")
    }
}

/// Where `program` is on PATH.
fn on_path(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no {program} on PATH (is gnupg installed?)"))
}

fn gpg(home: &Path) -> Command {
    let mut c = Command::new("gpg");
    c.env("GNUPGHOME", home)
        .args([
            "--batch",
            "--quiet",
            "--no-tty",
            "--pinentry-mode",
            "loopback",
        ])
        .stdin(Stdio::null());
    c
}

fn run(mut c: Command, what: &str) -> Vec<u8> {
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e} (is gnupg installed?)"));
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

impl Drop for TestKey {
    fn drop(&mut self) {
        // The agent gpg started for this home would outlive the test otherwise.
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The primary fingerprints gpgv (Debian's verifier, the tests' oracle) reports as good
/// signers of `file` with `keyring`.
pub fn gpgv_signers(file: &Path, keyring: &Path) -> Vec<String> {
    let out = Command::new("gpgv")
        .args(["--status-fd", "1", "--keyring"])
        .arg(keyring)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("gpgv: {e} (is gpgv installed?)"));
    assert!(
        out.status.success(),
        "gpgv: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("[GNUPG:] VALIDSIG "))
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .collect();
    v.sort();
    v.dedup();
    v
}
