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

/// A loopback mirror's root holding every file `cfg` pins, each at the pool path the config
/// names, and listing them all in a `Packages` index (made by apt-ftparchive); the files in
/// `missing` are then taken out of the pool: listed, not served (a 404), as a mirror
/// mid-sync or a lagging backports pool does.
pub fn pool_of(cfg: &super::TestConfig, missing: &[&Path]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(&cfg.debs).unwrap() {
        place(root.path(), &e.unwrap().path());
    }
    let index = ftparchive(root.path(), &["packages", "pool"]);
    let dir = root.path().join("dists/test/main/binary-all");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Packages"), index).unwrap();
    for m in missing {
        let name = m.file_name().unwrap();
        let gone = std::fs::read_dir(&cfg.debs)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name() == Some(name))
            .expect("a pinned file");
        std::fs::remove_file(root.path().join(super::pool_path(&gone))).unwrap();
    }
    root
}

/// A loopback mirror of a test config's files that lists arm64's qemu-user but answers
/// 404 for it (see [`pool_of`]).
pub struct Partial {
    /// The mirror's root.
    pub root: tempfile::TempDir,
    /// The server in front of it.
    pub server: qus_source::testkit::Server,
    /// The file it does not serve.
    pub missing: PathBuf,
}

impl Partial {
    /// The mirror of `cfg` without arm64's qemu-user.
    pub fn new(cfg: &super::TestConfig) -> Partial {
        let missing = super::deb("qemu-user", "arm64");
        let root = pool_of(cfg, &[&missing]);
        let server = qus_source::testkit::Server::start(root.path()).unwrap();
        Partial {
            root,
            server,
            missing,
        }
    }

    /// Serves the missing file (`true`) or stops serving it (`false`).
    pub fn serve(&self, on: bool) {
        if on {
            place(self.root.path(), &self.missing);
        } else {
            std::fs::remove_file(self.root.path().join(super::pool_path(&self.missing))).unwrap();
        }
    }

    /// The name of the missing file, as error lines give it.
    pub fn name(&self) -> String {
        pool_name(&self.missing)
    }
}

/// Puts `file` into the pool of the mirror at `root`, at the path the test configs pin.
pub fn place(root: &Path, file: &Path) {
    let dest = root.join(super::pool_path(file));
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    if std::fs::hard_link(file, &dest).is_err() {
        std::fs::copy(file, &dest).unwrap();
    }
}

/// Files below `dir` a writer leaves behind when interrupted or failing: temporary files
/// (`.tmp*`, `*.tmp`, `*.part`) and extraction folders without their completion marker.
pub fn half_written(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let temp = name.starts_with(".tmp") || name.ends_with(".tmp") || name.ends_with(".part");
        if p.is_dir() {
            let extraction = p.parent().and_then(|d| d.file_name()) == Some("extract".as_ref());
            if extraction && !p.join(".qus-complete.json").is_file() {
                out.push(p.clone());
            }
            out.extend(half_written(&p));
        } else if temp {
            out.push(p);
        }
    }
    out
}
