//! A Debian mirror on 127.0.0.1 for `qus lock`/`qus check`/`qus build --mirror` tests:
//! `pool/` holds the real downloaded packages, `dists/<suite>/` holds `Packages`,
//! `Packages.xz` and `Release` made by Debian's own `apt-ftparchive` (apt-utils) over them.
//!
//! The server is the source crate's test mirror, `qus_source::testkit::Server`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use qus_source::testkit::{ftparchive, pool_name, TestKey};

/// The Debian version in an `apt-get download` name (`1:10.0.13+ds-0+deb13u1`).
pub fn deb_version(deb: &Path) -> String {
    let name = deb.file_name().unwrap().to_string_lossy().to_string();
    let v = name.split('_').nth(1).unwrap();
    v.replace("%3a", ":")
}

struct Suite {
    name: String,
    packages: Vec<String>,
    arches: Vec<String>,
    versions: Option<Vec<String>>,
}

/// A mirror root on disk, its suites signed by a key of its own.
pub struct Archive {
    pub root: tempfile::TempDir,
    /// Per suite: the package names its index lists, for which arches, and, when given,
    /// only these versions of them.
    suites: Vec<Suite>,
    /// The key every suite's InRelease and Release.gpg are signed with.
    pub key: TestKey,
}

impl Archive {
    pub fn new() -> Archive {
        Archive {
            root: tempfile::tempdir().unwrap(),
            suites: Vec::new(),
            key: TestKey::generate("qus test archive <archive@qus.invalid>", "never"),
        }
    }

    /// The keyring that holds the archive's key.
    pub fn keyring(&self) -> &Path {
        &self.key.keyring
    }

    /// Puts `deb` into the pool (as a Debian mirror would name it) and returns its pool path.
    pub fn add(&self, deb: &Path, source: &str) -> String {
        let rel = format!("pool/main/{}/{source}/{}", &source[..1], pool_name(deb));
        let dest = self.root.path().join(&rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        if std::fs::hard_link(deb, &dest).is_err() {
            std::fs::copy(deb, &dest).unwrap();
        }
        rel
    }

    /// Declares a suite: which packages its indexes list, for which Debian arches.
    pub fn suite(&mut self, suite: &str, packages: &[&str], arches: &[&str]) {
        self.suites.push(Suite {
            name: suite.into(),
            packages: packages.iter().map(|p| p.to_string()).collect(),
            arches: arches.iter().map(|a| a.to_string()).collect(),
            versions: None,
        });
    }

    /// Declares a suite whose indexes list only these versions of its packages (one suite
    /// with a newer build than another, from the one pool).
    pub fn suite_of_versions(
        &mut self,
        suite: &str,
        packages: &[&str],
        arches: &[&str],
        versions: &[&str],
    ) {
        self.suite(suite, packages, arches);
        if let Some(s) = self.suites.last_mut() {
            s.versions = Some(versions.iter().map(|v| v.to_string()).collect());
        }
    }

    /// (Re)writes every suite's `Packages`, `Packages.xz` and `Release` with apt-ftparchive.
    pub fn index(&self) {
        for Suite {
            name: suite,
            packages,
            arches,
            versions,
        } in &self.suites
        {
            let dists = self.root.path().join("dists").join(suite);
            for arch in arches {
                let all = ftparchive(self.root.path(), &["--arch", arch, "packages", "pool"]);
                // One pool serves every suite; each suite's index lists its own packages.
                let text = String::from_utf8(all).unwrap();
                let mine: Vec<&str> = text
                    .split("\n\n")
                    .filter(|s| {
                        s.lines().any(|l| {
                            l.strip_prefix("Package: ")
                                .is_some_and(|p| packages.iter().any(|x| x == p))
                        })
                    })
                    .filter(|s| {
                        versions.as_ref().is_none_or(|vs| {
                            s.lines().any(|l| {
                                l.strip_prefix("Version: ")
                                    .is_some_and(|v| vs.iter().any(|x| x == v))
                            })
                        })
                    })
                    .collect();
                let mut body = mine.join("\n\n");
                body.push_str("\n\n");
                self.write_packages(suite, arch, &body);
            }
            let release = ftparchive(
                self.root.path(),
                &[
                    "-o",
                    &format!("APT::FTPArchive::Release::Codename={suite}"),
                    "-o",
                    &format!("APT::FTPArchive::Release::Suite={suite}"),
                    "release",
                    &format!("dists/{suite}"),
                ],
            );
            std::fs::write(dists.join("Release"), release).unwrap();
            self.key.sign_suite(&dists);
        }
    }

    /// Writes `Packages` and `Packages.xz` of one suite and arch (the Release is not
    /// touched: call [`Archive::release`] to re-sum).
    pub fn write_packages(&self, suite: &str, arch: &str, text: &str) {
        let dir = self
            .root
            .path()
            .join(format!("dists/{suite}/main/binary-{arch}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("Packages"), text).unwrap();
        let xz = Command::new("xz")
            .args(["-9", "-c", "-k"])
            .arg(dir.join("Packages"))
            .output()
            .expect("xz");
        assert!(xz.status.success());
        std::fs::write(dir.join("Packages.xz"), xz.stdout).unwrap();
    }

    /// The path of a file below the root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }
}

/// Re-packs `deb` with another `Version:` using dpkg-deb (a real, newer package).
pub fn repack_with_version(deb: &Path, version: &str, out_dir: &Path) -> PathBuf {
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    let st = Command::new("dpkg-deb")
        .arg("-R")
        .arg(deb)
        .arg(&tree)
        .status()
        .unwrap();
    assert!(st.success(), "dpkg-deb -R");
    let control = tree.join("DEBIAN/control");
    let text = std::fs::read_to_string(&control).unwrap();
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("Version: ") {
                format!("Version: {version}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&control, text).unwrap();
    let name = deb.file_name().unwrap().to_string_lossy().to_string();
    let mut parts: Vec<&str> = name.split('_').collect();
    let v = version.replace(':', "%3a");
    parts[1] = &v;
    let out = out_dir.join(parts.join("_"));
    let st = Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Zxz", "-b"])
        .arg(&tree)
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "dpkg-deb -b");
    out
}
