//! rpm packages as Fedora ships QEMU (`qemu-user-static-<group>`, zstd cpio payload), built
//! here with Debian's `rpmbuild` around the real emulator binaries of Debian's qemu-user
//! packages. The positive cases read those real rpms; the hostile ones take a real rpm and
//! replace its payload (and re-seal its digests, so rpm itself would call it intact), so
//! every refusal comes from the content, not from a broken header.
//!
//! Needs `rpmbuild`, `rpmkeys` and `rpm` (Debian package `rpm`, which `.ci/run` has to
//! install).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

use qus_source::debian_index::Keyring;
use qus_source::rpm::{verify_signature, Rpm, RpmFile};
use qus_source::testkit::{self, TestKey};
use qus_source::{
    extract_emulators, Cache, EmulatorRequest, Error, Limits, Sha256, VerifiedPackage,
};

use crate::support::{sha256_file, tree};

// ---------------------------------------------------------------------------------------
// Fixtures: real binaries, real rpms (built once, kept for later runs).

/// The folder of the built rpms and extracted binaries, under cargo's per-target temp dir
/// and named by a digest of their inputs (the Debian packages, the spec, the rpmbuild
/// version), so later runs reuse them; folders of other inputs are removed.
fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let version = Command::new("rpmbuild")
            .arg("--version")
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run rpmbuild ({e}): install Debian's `rpm` package \
                     (apt-get install rpm)"
                )
            });
        let mut key = String::from_utf8_lossy(&version.stdout).into_owned();
        key.push_str(&spec());
        for arch in ["amd64", "arm64"] {
            let deb = qemu_user_deb(arch);
            let size = std::fs::metadata(&deb).unwrap().len();
            key.push_str(&format!(
                "{}:{size}\n",
                deb.file_name().unwrap().to_string_lossy()
            ));
        }
        let key = &Sha256::of(key.as_bytes()).to_hex()[..16];
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rpm-fixtures");
        for e in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            if e.file_name() != key {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let dir = base.join(key);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// The real `qemu-user_*_<arch>.deb` (trixie, static emulators).
fn qemu_user_deb(arch: &str) -> PathBuf {
    let home = PathBuf::from(std::env::var_os("HOME").expect("HOME is set"));
    let dirs: Vec<PathBuf> = std::env::var_os("QUS_TEST_DEBS")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            home.join(".cache/qus/test-debs"),
            home.join(".cache/qus/debs"),
        ])
        .collect();
    let suffix = format!("_{arch}.deb");
    for d in &dirs {
        let mut found: Vec<PathBuf> = std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy();
                n.starts_with("qemu-user_") && n.ends_with(&suffix)
            })
            .collect();
        found.sort();
        if let Some(p) = found.pop() {
            return p;
        }
    }
    panic!(
        "no qemu-user_*{suffix} in {dirs:?}: run `bash .ci/run` (it fetches the real packages \
         with apt-get download) or point QUS_TEST_DEBS at a folder with them"
    );
}

/// The real `qemu-aarch64` emulator for host `arch`, taken out of Debian's package.
fn binary(arch: &'static str) -> &'static Path {
    static AMD64: OnceLock<PathBuf> = OnceLock::new();
    static ARM64: OnceLock<PathBuf> = OnceLock::new();
    let cell = match arch {
        "amd64" => &AMD64,
        "arm64" => &ARM64,
        _ => unreachable!(),
    };
    cell.get_or_init(|| {
        let dir = fixtures().join(format!("bin-{arch}"));
        let done = dir.join("qemu-aarch64-static");
        if done.exists() {
            return done;
        }
        let req = EmulatorRequest::new(arch).targets(["aarch64"]);
        let emus = extract_emulators(&qemu_user_deb(arch), &dir, &req, &Limits::default()).unwrap();
        emus[0].path.clone()
    })
}

/// The four rpms the tests build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Built {
    /// x86_64, `w19.zstdio` as Fedora builds.
    ZstdX86,
    /// x86_64, `w2.xzdio`.
    XzX86,
    /// x86_64, `w6.gzdio`.
    GzipX86,
    /// aarch64 (`--target aarch64`), zstd at a fast level, around the arm64 binary.
    ZstdAarch64,
}

fn rpm(kind: Built) -> &'static Path {
    static CELLS: [OnceLock<PathBuf>; 4] = [const { OnceLock::new() }; 4];
    let (i, target, payload, host) = match kind {
        Built::ZstdX86 => (0, "x86_64", "w19.zstdio", "amd64"),
        Built::XzX86 => (1, "x86_64", "w2.xzdio", "amd64"),
        Built::GzipX86 => (2, "x86_64", "w6.gzdio", "amd64"),
        Built::ZstdAarch64 => (3, "aarch64", "w3.zstdio", "arm64"),
    };
    CELLS[i].get_or_init(|| rpmbuild(&format!("{kind:?}"), target, payload, binary(host)))
}

/// Builds one of [`Built`] with the testkit's rpmbuild (once: kept in [`fixtures`]).
fn rpmbuild(name: &str, target: &str, payload: &str, bin: &Path) -> PathBuf {
    let dest = fixtures().join(format!("{name}.rpm"));
    if dest.exists() {
        return dest;
    }
    // Built in a folder of its own, renamed into place when complete.
    let dir = fixtures().join(format!("{name}.build-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bindir = bin.parent().unwrap();
    let built = testkit::rpm::rpmbuild(&spec(), &["aarch64"], target, payload, bindir, &dir);
    std::fs::rename(&built[0], &dest).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    dest
}

/// `qemu-user-static-aarch64` the way Fedora's qemu.spec makes it.
fn spec() -> String {
    testkit::rpm::qemu_spec(&["aarch64"])
}

// ---------------------------------------------------------------------------------------
// Taking real rpms apart and putting them back together (test-side, independent of the
// reader under test).

/// An rpm's four parts as stored.
#[derive(Clone)]
struct Parts {
    lead: Vec<u8>,
    /// The signature header with its padding.
    sig: Vec<u8>,
    header: Vec<u8>,
    payload: Vec<u8>,
}

fn header_len(b: &[u8]) -> usize {
    let il = u32::from_be_bytes(b[8..12].try_into().unwrap()) as usize;
    let dl = u32::from_be_bytes(b[12..16].try_into().unwrap()) as usize;
    16 + 16 * il + dl
}

fn split(bytes: &[u8]) -> Parts {
    let sig_len = header_len(&bytes[96..]);
    let sig_end = 96 + sig_len + (8 - sig_len % 8) % 8;
    let hdr_end = sig_end + header_len(&bytes[sig_end..]);
    Parts {
        lead: bytes[..96].to_vec(),
        sig: bytes[96..sig_end].to_vec(),
        header: bytes[sig_end..hdr_end].to_vec(),
        payload: bytes[hdr_end..].to_vec(),
    }
}

impl Parts {
    fn bytes(&self) -> Vec<u8> {
        [&self.lead[..], &self.sig, &self.header, &self.payload].concat()
    }
    fn header_start(&self) -> usize {
        self.lead.len() + self.sig.len()
    }
    fn payload_start(&self) -> usize {
        self.header_start() + self.header.len()
    }
}

/// Where tag `tag`'s data is in header `h`, and its count.
fn tag_data(h: &[u8], tag: u32) -> Option<(usize, usize)> {
    let il = u32::from_be_bytes(h[8..12].try_into().unwrap()) as usize;
    let data = 16 + 16 * il;
    (0..il).find_map(|i| {
        let e = &h[16 + 16 * i..32 + 16 * i];
        let w = |k: usize| u32::from_be_bytes(e[k..k + 4].try_into().unwrap()) as usize;
        (w(0) == tag as usize).then(|| (data + w(8), w(12)))
    })
}

/// Overwrites tag `tag`'s data in header `h` (same length).
fn patch(h: &mut [u8], tag: u32, value: &[u8]) {
    let (at, _) = tag_data(h, tag).unwrap_or_else(|| panic!("no tag {tag}"));
    h[at..at + value.len()].copy_from_slice(value);
}

/// `sha1sum`/`md5sum` of `data` (coreutils, so the sums do not come from the code under test).
fn coreutils_sum(tool: &str, data: &[u8]) -> String {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), data).unwrap();
    let out = Command::new(tool).arg(f.path()).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()[..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Re-seals `p` after its header or payload changed: the header's payload digest and the
/// signature's header digests, header+payload MD5 and size, as rpmbuild computes them.
/// `payload_digest` overrides the recorded payload sha256 (to test its check).
fn seal(mut p: Parts, payload_digest: Option<&str>) -> Vec<u8> {
    let pd = payload_digest
        .map(str::to_string)
        .unwrap_or_else(|| Sha256::of(&p.payload).to_hex());
    patch(&mut p.header, 5092, pd.as_bytes());
    let sig = &mut p.sig;
    patch(sig, 273, Sha256::of(&p.header).to_hex().as_bytes());
    patch(sig, 269, coreutils_sum("sha1sum", &p.header).as_bytes());
    let both = [&p.header[..], &p.payload].concat();
    patch(sig, 1004, &unhex(&coreutils_sum("md5sum", &both)));
    patch(sig, 1000, &(both.len() as u32).to_be_bytes());
    p.bytes()
}

/// One newc cpio entry.
fn newc(out: &mut Vec<u8>, name: &str, mode: u32, data: &[u8]) {
    out.extend_from_slice(b"070701");
    let fields = [
        1,
        mode,
        0,
        0,
        1,
        0,
        data.len() as u32,
        0,
        1,
        0,
        0,
        name.len() as u32 + 1,
        0,
    ];
    for v in fields {
        out.extend_from_slice(format!("{v:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn trailer(out: &mut Vec<u8>) {
    newc(out, "TRAILER!!!", 0, b"");
}

/// A cpio of `(name, mode, data)` entries, with the trailer.
fn cpio(entries: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, mode, data) in entries {
        newc(&mut out, name, *mode, data);
    }
    trailer(&mut out);
    out
}

/// zstd frames of raw blocks: valid zstd, and quick to make for the 16 MB emulators (the
/// real, compressed payloads are the rpmbuild-made ones).
fn zst(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Uncompressed)
}

/// zstd that compresses (for the bomb).
fn zst_fast(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

/// The real zstd x86_64 rpm with `cpio` as its payload, re-sealed.
fn with_payload(cpio: &[u8]) -> Vec<u8> {
    with_zstd_payload(zst(cpio))
}

fn with_zstd_payload(zstd: Vec<u8>) -> Vec<u8> {
    let mut p = split(&std::fs::read(rpm(Built::ZstdX86)).unwrap());
    p.payload = zstd;
    seal(p, None)
}

const REG: u32 = 0o100755;
const LNK: u32 = 0o120777;

// ---------------------------------------------------------------------------------------
// Cases: a temp folder with `pkg.rpm` and an empty `work/`.

struct Case {
    root: tempfile::TempDir,
    rpm: PathBuf,
    work: PathBuf,
}

impl Case {
    fn new(bytes: &[u8]) -> Case {
        let root = tempfile::tempdir().unwrap();
        let rpm = root.path().join("pkg.rpm");
        std::fs::write(&rpm, bytes).unwrap();
        let work = root.path().join("work");
        std::fs::create_dir(&work).unwrap();
        Case { root, rpm, work }
    }

    fn of(kind: Built) -> Case {
        Case::new(&std::fs::read(rpm(kind)).unwrap())
    }

    fn extract(
        &self,
        arch: &str,
        limits: &Limits,
    ) -> qus_source::Result<Vec<qus_source::Emulator>> {
        let req = EmulatorRequest::new(arch);
        extract_emulators(&self.rpm, &self.work, &req, limits)
    }

    /// Extraction must fail, name the package, and leave nothing behind.
    fn refused(&self, arch: &str, limits: &Limits) -> Error {
        let err = self
            .extract(arch, limits)
            .expect_err("a hostile package must be refused");
        let msg = err.to_string();
        eprintln!("{msg}");
        assert!(
            msg.contains(&self.rpm.display().to_string()),
            "message does not name the package: {msg}"
        );
        assert_eq!(tree(self.root.path()), ["pkg.rpm", "work"], "after: {msg}");
        err
    }
}

fn all() -> Limits {
    Limits::default()
}

/// Checks an extraction: one `qemu-aarch64-static`, identical to what went into the rpm.
fn assert_extracted(emus: &[qus_source::Emulator], work: &Path, bin: &Path) {
    assert_eq!(emus.len(), 1);
    assert_eq!(emus[0].target, "aarch64");
    assert_eq!(emus[0].path, work.join("qemu-aarch64-static"));
    assert_eq!(emus[0].sha256.to_hex(), sha256_file(bin));
    assert_eq!(sha256_file(&emus[0].path), sha256_file(bin));
    assert_eq!(emus[0].size, std::fs::metadata(bin).unwrap().len());
    assert_eq!(tree(work), ["qemu-aarch64-static"]);
}

// ---------------------------------------------------------------------------------------
// Real rpms.

#[test]
fn zstd_rpm_gives_back_the_real_binary() {
    let c = Case::of(Built::ZstdX86);
    let emus = c.extract("amd64", &all()).unwrap();
    assert_extracted(&emus, &c.work, binary("amd64"));
    // With a target list too (reading stops at the emulator; the digest is still checked).
    let work = c.root.path().join("work2");
    let req = EmulatorRequest::new("amd64").targets(["aarch64"]);
    let emus = extract_emulators(&c.rpm, &work, &req, &all()).unwrap();
    assert_extracted(&emus, &work, binary("amd64"));
}

#[test]
fn header_says_what_the_package_is() {
    let path = rpm(Built::ZstdX86);
    let p = qus_source::open_package(path, &all()).unwrap();
    let info = p.info();
    assert_eq!(info.name, "qemu-user-static-aarch64");
    assert_eq!(info.version, "2:10.0.13-1.qus");
    assert_eq!(info.architecture, "amd64");
    assert_eq!(info.source_name(), "qemu");
    assert_eq!(info.source_version(), "2:10.0.13-1.qus");

    let r = Rpm::open(path, &all()).unwrap();
    let h = r.header();
    assert_eq!(
        (h.name.as_str(), h.epoch),
        ("qemu-user-static-aarch64", Some(2))
    );
    assert_eq!(
        (h.version.as_str(), h.release.as_str()),
        ("10.0.13", "1.qus")
    );
    assert_eq!((h.arch.as_str(), h.os.as_str()), ("x86_64", "linux"));
    assert_eq!(h.evr(), "2:10.0.13-1.qus");
    assert_eq!(h.source_rpm.as_deref(), Some("qemu-10.0.13-1.qus.src.rpm"));
    assert_eq!(h.format, 4);
    assert_eq!(h.payload_format, "cpio");
    assert_eq!(h.payload_compressor.as_deref(), Some("zstd"));
    assert_eq!(h.payload_flags.as_deref(), Some("19"));
    let parts = split(&std::fs::read(path).unwrap());
    assert_eq!(
        h.payload_sha256.as_deref(),
        Some(Sha256::of(&parts.payload).to_hex().as_str())
    );
    assert_eq!(
        h.files,
        [RpmFile {
            path: "/usr/bin/qemu-aarch64-static".into(),
            mode: 0o100755,
            size: std::fs::metadata(binary("amd64")).unwrap().len(),
        }]
    );
    // rpm's own reading of the same header, as the oracle.
    let out = Command::new("rpm")
        .args([
            "-qp",
            "--qf",
            "%{NAME} %{EPOCH}:%{VERSION}-%{RELEASE} %{ARCH} %{PAYLOADCOMPRESSOR}",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{} {} {} zstd", h.name, h.evr(), h.arch)
    );
}

#[test]
fn xz_and_gzip_payloads() {
    for (kind, compressor) in [(Built::XzX86, "xz"), (Built::GzipX86, "gzip")] {
        let c = Case::of(kind);
        let r = Rpm::open(&c.rpm, &all()).unwrap();
        assert_eq!(r.header().payload_compressor.as_deref(), Some(compressor));
        let emus = c.extract("amd64", &all()).unwrap();
        assert_extracted(&emus, &c.work, binary("amd64"));
    }
}

#[test]
fn aarch64_rpm_is_for_arm64_hosts_only() {
    let c = Case::of(Built::ZstdAarch64);
    let err = c.refused("amd64", &all());
    match &err {
        Error::ArchMismatch {
            found, expected, ..
        } => {
            assert_eq!(found, "arm64 (rpm arch aarch64)");
            assert_eq!(expected, "amd64");
        }
        _ => panic!("{err}"),
    }
    let emus = c.extract("arm64", &all()).unwrap();
    assert_extracted(&emus, &c.work, binary("arm64"));
    assert_eq!(
        qus_source::open_package(&c.rpm, &all())
            .unwrap()
            .info()
            .architecture,
        "arm64"
    );
}

#[test]
fn cache_extracts_rpms_like_debs() {
    let src = rpm(Built::GzipX86);
    let bytes = std::fs::read(src).unwrap();
    let root = tempfile::tempdir().unwrap();
    let cache = Cache::open(root.path().join("cache")).unwrap();
    // A cached blob has no .rpm name: the format is told by the magic.
    let sha256 = Sha256::of(&bytes);
    let blob = cache.blob_path(&sha256);
    std::fs::write(&blob, &bytes).unwrap();
    let pkg = VerifiedPackage {
        path: blob,
        sha256,
        size: bytes.len() as u64,
        from_cache: true,
    };
    let req = EmulatorRequest::new("amd64").targets(["aarch64"]);
    let first = cache.extract_emulators(&pkg, &req, &all()).unwrap();
    assert!(!first.from_cache);
    assert_eq!(
        first.emulators[0].sha256.to_hex(),
        sha256_file(binary("amd64"))
    );
    let second = cache.extract_emulators(&pkg, &req, &all()).unwrap();
    assert!(second.from_cache);
    assert_eq!(first.emulators, second.emulators);
}

#[test]
fn stripped_cpio_entries_are_read() {
    // rpm ≥ 4.12 (large files) and rpm 6 (v6 packages) write `07070X` entries naming the
    // header's file index; the header's file list of the real rpm describes file 0.
    let bin = std::fs::read(binary("amd64")).unwrap();
    let mut payload = b"07070X00000000".to_vec();
    pad4(&mut payload);
    payload.extend_from_slice(&bin);
    pad4(&mut payload);
    trailer(&mut payload);
    let c = Case::new(&with_payload(&payload));
    assert_rpm_says_intact(&c.rpm);
    let emus = c.extract("amd64", &all()).unwrap();
    assert_extracted(&emus, &c.work, binary("amd64"));
}

/// rpm's own digest check accepts the package (so the re-sealing is right).
fn assert_rpm_says_intact(path: &Path) {
    let out = Command::new("rpmkeys")
        .args(["--checksig", "--nosignature", "-v"])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "Header SHA256 digest: OK",
        "Payload SHA256 digest: OK",
        "MD5 digest: OK",
    ] {
        assert!(text.contains(line), "{text}");
    }
}

// ---------------------------------------------------------------------------------------
// Broken and hostile rpms.

#[test]
fn bad_lead_magic() {
    let mut bytes = std::fs::read(rpm(Built::ZstdX86)).unwrap();
    bytes[1] = 0;
    let err = Case::new(&bytes).refused("amd64", &all());
    assert!(matches!(err, Error::BadRpm { part: "lead", .. }), "{err}");
    assert!(err.to_string().contains("bad magic ed 00 ee db"), "{err}");
}

fn truncated_at(cut: impl Fn(&Parts) -> usize, want: &str) {
    let bytes = std::fs::read(rpm(Built::ZstdX86)).unwrap();
    let at = cut(&split(&bytes));
    let err = Case::new(&bytes[..at]).refused("amd64", &all());
    match &err {
        Error::Truncated { member, .. } => assert_eq!(member, want, "{err}"),
        _ => panic!("{err}"),
    }
}

#[test]
fn truncated_in_lead() {
    truncated_at(|_| 50, "rpm lead");
}

#[test]
fn truncated_in_signature_header() {
    truncated_at(|_| 96 + 40, "rpm signature header");
}

#[test]
fn truncated_in_header() {
    truncated_at(|p| p.header_start() + 300, "rpm header");
}

#[test]
fn truncated_in_payload() {
    truncated_at(|p| p.payload_start() + 100_000, "rpm payload");
}

#[test]
fn header_digest_mismatch() {
    // One byte of the header's SUMMARY changed, nothing re-sealed.
    let mut p = split(&std::fs::read(rpm(Built::ZstdX86)).unwrap());
    let (at, _) = tag_data(&p.header, 1004).unwrap();
    p.header[at] ^= 0x20;
    let err = Case::new(&p.bytes()).refused("amd64", &all());
    assert!(
        matches!(err, Error::RpmDigestMismatch { what: "header", .. }),
        "{err}"
    );
}

#[test]
fn payload_digest_mismatch() {
    // A valid payload whose sha256 is not the recorded one (the header is re-sealed around
    // the wrong digest, so only the payload check can catch it).
    let bin = std::fs::read(binary("amd64")).unwrap();
    let mut p = split(&std::fs::read(rpm(Built::ZstdX86)).unwrap());
    p.payload = zst(&cpio(&[("./usr/bin/qemu-aarch64-static", REG, &bin)]));
    let wrong = Sha256::of(b"something else").to_hex();
    let c = Case::new(&seal(p, Some(&wrong)));
    let err = c.refused("amd64", &all());
    match &err {
        Error::RpmDigestMismatch { what, expected, .. } => {
            assert_eq!((*what, expected.as_str()), ("payload", wrong.as_str()))
        }
        _ => panic!("{err}"),
    }
}

#[test]
fn unknown_payload_compressor() {
    let mut p = split(&std::fs::read(rpm(Built::ZstdX86)).unwrap());
    patch(&mut p.header, 1125, b"lz4\0");
    let err = Case::new(&seal(p, None)).refused("amd64", &all());
    match &err {
        Error::UnknownPayloadCompressor { compressor, .. } => assert_eq!(compressor, "lz4"),
        _ => panic!("{err}"),
    }
}

#[test]
fn corrupt_zstd() {
    // The real payload with its first block's type set to the reserved value 3.
    let mut p = split(&std::fs::read(rpm(Built::ZstdX86)).unwrap());
    let z = &mut p.payload;
    assert_eq!(z[..4], [0x28, 0xb5, 0x2f, 0xfd]);
    let fhd = z[4];
    let single = fhd >> 5 & 1 == 1;
    let fcs = match fhd >> 6 {
        0 => usize::from(single),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let block = 5 + usize::from(!single) + [0, 1, 2, 4][usize::from(fhd & 3)] + fcs;
    z[block] |= 0b110;
    let c = Case::new(&seal(p, None));
    assert_rpm_says_intact(&c.rpm);
    let err = c.refused("amd64", &all());
    match &err {
        Error::Corrupt { member, .. } => assert_eq!(member, "payload (zstd)"),
        _ => panic!("{err}"),
    }
}

#[test]
fn cpio_entry_with_dotdot() {
    let c = Case::new(&with_payload(&cpio(&[(
        "./usr/bin/../../../../tmp/qemu-aarch64-static",
        REG,
        b"\x7fELF",
    )])));
    let err = c.refused("amd64", &all());
    assert!(
        matches!(
            err,
            Error::PathEscape {
                reason: "`..` component",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn cpio_entry_with_absolute_path() {
    let c = Case::new(&with_payload(&cpio(&[(
        "/usr/bin/qemu-aarch64-static",
        REG,
        b"x",
    )])));
    let err = c.refused("amd64", &all());
    assert!(
        matches!(
            err,
            Error::PathEscape {
                reason: "absolute path",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn cpio_symlink_escaping() {
    let bin = std::fs::read(binary("amd64")).unwrap();
    let c = Case::new(&with_payload(&cpio(&[
        ("./usr/bin/qemu-aarch64-static", REG, &bin),
        ("./usr/bin/qemu-arm-static", LNK, b"../../../../etc/passwd"),
    ])));
    let err = c.refused("amd64", &all());
    assert!(matches!(err, Error::SymlinkEscape { .. }), "{err}");
}

#[test]
fn cpio_without_trailer() {
    let bin = std::fs::read(binary("amd64")).unwrap();
    let mut payload = Vec::new();
    newc(&mut payload, "./usr/bin/qemu-aarch64-static", REG, &bin);
    let c = Case::new(&with_payload(&payload));
    assert_rpm_says_intact(&c.rpm);
    let err = c.refused("amd64", &all());
    assert!(matches!(err, Error::CpioTrailerMissing { .. }), "{err}");
}

#[test]
fn decompression_bomb_ratio() {
    // 24 MiB of zeros behind a real ELF header: a few KiB as zstd.
    let mut bomb = std::fs::read(binary("amd64")).unwrap();
    bomb.truncate(4096);
    bomb.resize(24 << 20, 0);
    let bomb = cpio(&[("./usr/bin/qemu-aarch64-static", REG, &bomb)]);
    let c = Case::new(&with_zstd_payload(zst_fast(&bomb)));
    assert!(std::fs::metadata(&c.rpm).unwrap().len() < 1 << 20);
    let err = c.refused("amd64", &all());
    assert!(matches!(err, Error::CompressionRatio { .. }), "{err}");
}

#[test]
fn decompression_total_cap() {
    let c = Case::of(Built::ZstdX86);
    let limits = Limits {
        max_unpacked: 4 << 20,
        ..Limits::default()
    };
    let err = c.refused("amd64", &limits);
    match &err {
        Error::TooLarge { member, limit, .. } => {
            assert_eq!((member.as_str(), *limit), ("payload (zstd)", 4 << 20))
        }
        _ => panic!("{err}"),
    }
}

#[test]
fn x86_64_rpm_with_an_aarch64_binary() {
    let arm = std::fs::read(binary("arm64")).unwrap();
    let c = Case::new(&with_payload(&cpio(&[(
        "./usr/bin/qemu-aarch64-static",
        REG,
        &arm,
    )])));
    let err = c.refused("amd64", &all());
    match &err {
        Error::NotHostElf { entry, .. } => assert_eq!(entry, "usr/bin/qemu-aarch64-static"),
        _ => panic!("{err}"),
    }
}

#[test]
fn source_rpm_is_refused_by_name() {
    let mut bytes = std::fs::read(rpm(Built::GzipX86)).unwrap();
    bytes[7] = 1; // lead type: source
    let err = Case::new(&bytes).refused("amd64", &all());
    assert!(
        matches!(&err, Error::UnsupportedFormat { what, .. } if what == "a source rpm"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// Header signatures: real rpms signed by `rpmsign` with GnuPG keys (an independent
// implementation), checked by qus with rpgp.

/// A copy of the zstd x86_64 rpm in `dir`, signed by `key` (unsigned when `None`).
fn signed_copy(dir: &Path, key: Option<&TestKey>) -> PathBuf {
    let path = dir.join("qemu-user-static-aarch64.rpm");
    std::fs::copy(rpm(Built::ZstdX86), &path).unwrap();
    if let Some(k) = key {
        k.rpmsign(&path);
    }
    path
}

fn keyring(key: &TestKey) -> Keyring {
    Keyring::load(&key.keyring).unwrap()
}

#[test]
fn header_signed_by_the_keyring_is_accepted() {
    // EdDSA keys go to DSAHEADER in rpm 4, RSA keys to RSAHEADER (Fedora's).
    for (algo, tag) in [("ed25519", 267), ("rsa2048", 268)] {
        let key = TestKey::generate_algo("qus rpm <rpm@qus.invalid>", algo, "never", None);
        let dir = tempfile::tempdir().unwrap();
        let path = signed_copy(dir.path(), Some(&key));
        let parts = split(&std::fs::read(&path).unwrap());
        assert!(tag_data(&parts.sig, tag).is_some(), "{algo}: no tag {tag}");
        let signer = verify_signature(&path, &keyring(&key), SystemTime::now())
            .unwrap_or_else(|e| panic!("{algo}: {e}"));
        assert_eq!(signer.fingerprint, key.fingerprint);
        // Signing touched the signature header only: the package still reads.
        let emus = extract_emulators(
            &path,
            &dir.path().join("out"),
            &EmulatorRequest::new("amd64"),
            &all(),
        )
        .unwrap();
        assert_extracted(&emus, &dir.path().join("out"), binary("amd64"));
    }
}

#[test]
fn unsigned_rpm_is_refused_when_a_keyring_is_given() {
    let key = TestKey::generate("qus rpm <rpm@qus.invalid>", "never");
    let dir = tempfile::tempdir().unwrap();
    let path = signed_copy(dir.path(), None);
    let err = verify_signature(&path, &keyring(&key), SystemTime::now()).unwrap_err();
    assert!(matches!(err, Error::RpmUnsigned { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("not signed; Fedora signs its rpms"), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
}

#[test]
fn rpm_signed_by_another_key_is_refused_naming_it() {
    let signer = TestKey::generate("qus rpm <rpm@qus.invalid>", "never");
    let trusted = TestKey::generate("qus trusted <trusted@qus.invalid>", "never");
    let dir = tempfile::tempdir().unwrap();
    let path = signed_copy(dir.path(), Some(&signer));
    let err = verify_signature(&path, &keyring(&trusted), SystemTime::now()).unwrap_err();
    assert!(matches!(err, Error::RpmSignature { .. }), "{err}");
    let msg = err.to_string();
    let key_id = &signer.fingerprint[signer.fingerprint.len() - 16..];
    assert!(msg.contains(key_id), "{msg}");
    assert!(msg.contains("does not hold"), "{msg}");
}

#[test]
fn changed_header_fails_its_signature_not_only_its_digest() {
    let key = TestKey::generate("qus rpm <rpm@qus.invalid>", "never");
    let dir = tempfile::tempdir().unwrap();
    let path = signed_copy(dir.path(), Some(&key));
    let mut parts = split(&std::fs::read(&path).unwrap());
    let summary = b"QEMU user mode emulation";
    let at = parts
        .header
        .windows(summary.len())
        .position(|w| w == summary)
        .expect("the summary in the header");
    parts.header[at] = b'q';
    // Re-sealed, so the header digests agree with the change: only the signature can tell.
    std::fs::write(&path, seal(parts, None)).unwrap();
    assert_rpm_says_intact(&path);
    let err = verify_signature(&path, &keyring(&key), SystemTime::now()).unwrap_err();
    assert!(matches!(err, Error::RpmSignature { .. }), "{err}");
    assert!(err.to_string().contains("does not verify"), "{err}");
}

/// rpm 6 keeps header signatures in `OPENPGP` (tag 278), base64 strings; the same signature
/// moved there from `DSAHEADER` is accepted.
#[test]
fn header_signature_in_rpm6_openpgp_tag() {
    let key = TestKey::generate("qus rpm <rpm@qus.invalid>", "never");
    let dir = tempfile::tempdir().unwrap();
    let path = signed_copy(dir.path(), Some(&key));
    let mut parts = split(&std::fs::read(&path).unwrap());
    let sig = &parts.sig;
    let il = u32::from_be_bytes(sig[8..12].try_into().unwrap()) as usize;
    let dl = u32::from_be_bytes(sig[12..16].try_into().unwrap()) as usize;
    let (at, count) = tag_data(sig, 267).expect("a DSAHEADER signature");
    let packet = sig[at..at + count].to_vec();
    let mut index = sig[16..16 + 16 * il].to_vec();
    let mut data = sig[16 + 16 * il..16 + 16 * il + dl].to_vec();
    let entry = (0..il)
        .find(|i| index[16 * i..16 * i + 4] == 267u32.to_be_bytes())
        .unwrap();
    for (k, w) in [278u32, 8, data.len() as u32, 1].into_iter().enumerate() {
        index[16 * entry + 4 * k..16 * entry + 4 * k + 4].copy_from_slice(&w.to_be_bytes());
    }
    data.extend(base64_encode(&packet).as_bytes());
    data.push(0);
    let mut new = sig[..8].to_vec();
    new.extend((il as u32).to_be_bytes());
    new.extend((data.len() as u32).to_be_bytes());
    new.extend(index);
    new.extend(data);
    new.resize(new.len().div_ceil(8) * 8, 0);
    parts.sig = new;
    std::fs::write(&path, parts.bytes()).unwrap();
    assert!(tag_data(&split(&std::fs::read(&path).unwrap()).sig, 267).is_none());
    let signer = verify_signature(&path, &keyring(&key), SystemTime::now()).unwrap();
    assert_eq!(signer.fingerprint, key.fingerprint);
}

/// Standard base64 (test-side, independent of the reader under test).
fn base64_encode(b: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &x)| n | u32::from(x) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= c.len() {
                A[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}
