//! Packages in, files out: fetch each planned package (verified by sha256, and a Fedora rpm
//! by its header signature when its source names a keyring), then extract the emulators and
//! busybox the images need, one package per CPU. A package that cannot be used (not served,
//! not the pinned bytes, not a usable package) is a typed [`PackageFailure`] beside what was
//! extracted, so that a run can go on with everything that does not need it; a failure that
//! is not the package's (a full disk, a locked cache) stops everything.

pub(crate) mod mirror;
pub(crate) mod shortfall;

use crate::arch::Host;
use crate::config::Distro;
use crate::plan::narrow::{narrow, Narrowed};
use crate::plan::{ImagePlan, PackagePlan, Plan, Role};
use crate::ui::progress::Progress;
use anyhow::{anyhow, Context as _};
use qus_source::debian_index::Keyring;
use qus_source::{Cache, EmulatorRequest, FetchOptions, Fetcher, FileRequest, Limits, Origin};
use shortfall::{Cause, PackageFailure, Shortfall};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where packages come from, and where downloads and extracted files are kept.
#[derive(Debug, Clone)]
pub(crate) struct SourceOptions {
    /// `--debs DIR`: files as `apt-get download` leaves them, for every distro.
    pub packages_dir: Option<PathBuf>,
    /// The Debian mirror root (`--mirror`, `QUS_MIRROR`, this machine's apt sources).
    pub debian_mirror: Option<String>,
    /// The Fedora mirror root (`--fedora-mirror`, `QUS_FEDORA_MIRROR`).
    pub fedora_mirror: Option<String>,
    /// The cache folder (`--cache`, `QUS_CACHE`, `~/.cache/qus`).
    pub cache: PathBuf,
    /// How many CPUs work at once: packages extracted, layers computed, assets written,
    /// emulators tested (this machine's, resolved once by `app`).
    pub cpus: usize,
    /// How long connecting and silence may last on a mirror (`--timeout`, `QUS_TIMEOUT`;
    /// a download has no overall deadline: a large package on a slow, live link is fine).
    pub timeouts: qus_registry::Timeouts,
}

impl SourceOptions {
    /// Where the packages of `distro` come from: the folder when one is given, else the
    /// distro's mirror. Asked only when a package must be fetched, so an up-to-date build
    /// needs no mirror at all.
    pub fn origin(&self, distro: Distro) -> anyhow::Result<Origin> {
        if let Some(dir) = &self.packages_dir {
            if !dir.is_dir() {
                return Err(crate::exit::usage(format!(
                    "--debs {}: not a folder",
                    dir.display()
                )));
            }
            return Ok(Origin::local_dir(dir.clone()));
        }
        let url = match distro {
            Distro::Debian => self.debian_mirror()?,
            Distro::Fedora => self.fedora_mirror.as_deref().ok_or_else(|| {
                crate::exit::usage(
                    "no Fedora mirror configured: pass --fedora-mirror URL, set \
                     QUS_FEDORA_MIRROR, or give the packages with --debs DIR",
                )
            })?,
        };
        Ok(Origin::mirror(url)?)
    }

    /// The Debian mirror, or the one error that says every way to name it.
    pub fn debian_mirror(&self) -> anyhow::Result<&str> {
        self.debian_mirror.as_deref().ok_or_else(|| {
            crate::exit::usage(
                "no Debian mirror configured: pass --mirror URL, set QUS_MIRROR, or add a \
                 Debian archive to this machine's apt sources (the mirror root is the folder \
                 that holds dists/ and pool/); builds also take the packages with --debs DIR",
            )
        })
    }
}

/// One extracted file: where it is in the cache, and what the extraction measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct File {
    /// Where it is (do not modify: the cache owns it).
    pub path: PathBuf,
    /// Its size.
    pub size: u64,
    /// Its sha256, lowercase hex.
    pub sha256: String,
}

/// The files extracted for a plan, by package.
#[derive(Debug, Default)]
pub(crate) struct Extracted {
    /// busybox by host.
    pub busybox: BTreeMap<Host, File>,
    /// Emulators by (source, host), then target.
    pub emulators: BTreeMap<(String, Host), BTreeMap<String, File>>,
    /// Guest programs by Debian architecture.
    pub guests: BTreeMap<String, File>,
}

/// What the packages step gives: the files of every package it could use, and a failure
/// for each one it could not.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    /// The files extracted.
    pub extracted: Extracted,
    /// The packages that could not be used, in the order given.
    pub failures: Vec<PackageFailure>,
}

impl Prepared {
    /// The plans of the packages that could not be used.
    pub(crate) fn failed(&self) -> Vec<&PackagePlan> {
        self.failures.iter().map(|f| &f.package).collect()
    }
}

/// Opens the cache the options name, saying so when another qus holds it.
pub(crate) fn open_cache(src: &SourceOptions, progress: &Progress) -> anyhow::Result<Cache> {
    let p = progress.clone();
    Ok(Cache::open(&src.cache)?.on_lock_wait(move |lock| {
        p.step(format!(
            "waiting for another qus using the cache ({})",
            lock.display()
        ))
    }))
}

/// Fetches, verifies and extracts `packages`; a package that cannot be used is an error
/// naming it (and any others), for the commands that need every one of them.
pub(crate) async fn prepare(
    packages: &[&PackagePlan],
    src: &SourceOptions,
    progress: &Progress,
) -> anyhow::Result<Extracted> {
    let prepared = prepare_partial(packages, src, progress).await?;
    if prepared.failures.is_empty() {
        return Ok(prepared.extracted);
    }
    let lines: Vec<String> = prepared
        .failures
        .iter()
        .map(|f| format!("{}: {}; {}", f.what(), f.reason, f.hint))
        .collect();
    Err(anyhow!("{}", lines.join("; ")))
}

/// Fetches, verifies and extracts `packages`: what could be extracted, and a failure for
/// each package that could not be used. Only an error that is not a package's (the cache's
/// disk, its lock, the config's keyring) is an `Err`.
pub(crate) async fn prepare_partial(
    packages: &[&PackagePlan],
    src: &SourceOptions,
    progress: &Progress,
) -> anyhow::Result<Prepared> {
    let mut origins: BTreeMap<Distro, Origin> = BTreeMap::new();
    for p in packages {
        if let std::collections::btree_map::Entry::Vacant(e) = origins.entry(p.distro) {
            e.insert(src.origin(p.distro)?);
        }
    }
    let cache = open_cache(src, progress)?;
    let fetcher = Fetcher::new(
        cache.clone(),
        FetchOptions {
            connect_timeout: src.timeouts.connect,
            read_timeout: src.timeouts.idle,
            ..FetchOptions::default()
        },
    )?;
    let mut keyrings: BTreeMap<&std::path::Path, Keyring> = BTreeMap::new();
    let mut verified = Vec::new();
    let mut failures = Vec::new();
    for p in packages {
        let pkg = qus_source::PackageRef::new(&p.file, &p.sha256, p.size)
            .with_context(|| format!("{} for {}", p.package, p.host))?;
        let bar = progress.bytes(pkg.file_name(), p.size);
        let told = |x: &qus_source::Progress| {
            if x.retry.is_some() {
                progress.step(x.to_string());
            }
            bar.set(x.done);
        };
        let fetched = fetcher.fetch(&pkg, &origins[&p.distro], &told).await;
        drop(bar);
        let v = match fetched {
            Ok(v) => v,
            Err(e) => {
                failures.push(not_used(failure_of(p, e)?, progress));
                continue;
            }
        };
        // Checked on every run, cached or not: the keyring may have changed since the
        // package was first fetched, and reading the headers costs next to nothing.
        let signed = match &p.keyring {
            None => String::new(),
            Some(path) => {
                let keyring = match keyrings.entry(path) {
                    std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::btree_map::Entry::Vacant(e) => e.insert(
                        Keyring::load(path)
                            .with_context(|| format!("the keyring of {}", p.package))?,
                    ),
                };
                match qus_source::rpm::verify_signature(
                    &v.path,
                    keyring,
                    std::time::SystemTime::now(),
                ) {
                    Ok(signer) => format!(
                        ", signed by {}",
                        signer.user_id.unwrap_or(signer.fingerprint)
                    ),
                    Err(e) => {
                        failures.push(not_used(failure_of(p, e)?, progress));
                        continue;
                    }
                }
            }
        };
        progress.step(format!(
            "{} {} ({:.1} MB, sha256 verified{}{signed})",
            if v.from_cache { "cached" } else { "fetched" },
            pkg.file_name(),
            v.size as f64 / 1e6,
            if v.from_cache { ", from cache" } else { "" }
        ));
        verified.push(((*p).clone(), v));
    }
    let (extracted, more) = extract_all(&cache, verified, src.cpus).await?;
    failures.extend(more.into_iter().map(|f| not_used(f, progress)));
    // In the order the packages were given, whichever step failed.
    failures.sort_by_key(|f| packages.iter().position(|p| **p == f.package));
    progress.step(format!(
        "extracted {} emulators, {} busybox and {} guest programs",
        extracted.emulators.values().map(|m| m.len()).sum::<usize>(),
        extracted.busybox.len(),
        extracted.guests.len()
    ));
    Ok(Prepared {
        extracted,
        failures,
    })
}

/// The packages `compute` needs, and the plan narrowed to the images they can make.
pub(crate) async fn prepare_narrowed(
    plan: &Plan,
    compute: &[&ImagePlan],
    src: &SourceOptions,
    progress: &Progress,
) -> anyhow::Result<(Extracted, Narrowed, Shortfall)> {
    let prepared = prepare_partial(&plan.packages_for(compute), src, progress).await?;
    let narrowed = narrow(plan, compute, &prepared.failed());
    let shortfall = Shortfall::of(prepared.failures, &narrowed);
    Ok((prepared.extracted, narrowed, shortfall))
}

/// Says that `f` happened, when it happens: the summary repeats it with what to do.
fn not_used(f: PackageFailure, progress: &Progress) -> PackageFailure {
    progress.step(format!(
        "could not use {} ({})",
        f.package.file.rsplit('/').next().unwrap_or(&f.package.file),
        f.cause
    ));
    f
}

/// The failure of `package` for `e`, or `e` itself when it is not the package's fault.
fn failure_of(package: &PackagePlan, e: qus_source::Error) -> anyhow::Result<PackageFailure> {
    match Cause::of(&e) {
        Some(cause) => Ok(PackageFailure::new(package, cause, e.to_string())),
        None => Err(anyhow::Error::new(e).context(format!(
            "{} {} for {}",
            package.package, package.version, package.host
        ))),
    }
}

/// The files of one package, by target (`busybox` for busybox and guest programs).
type Files = Vec<(String, File)>;

/// Extracts every verified package, one blocking task per package and `cpus` at once:
/// extraction is CPU-bound decompression (and each xz decoder holds its own buffers).
async fn extract_all(
    cache: &qus_source::Cache,
    verified: Vec<(PackagePlan, qus_source::VerifiedPackage)>,
    cpus: usize,
) -> anyhow::Result<(Extracted, Vec<PackageFailure>)> {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(cpus));
    let mut tasks = Vec::new();
    for (p, v) in verified {
        let cache = cache.clone();
        let slot = slots.clone().acquire_owned().await?;
        tasks.push(tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let files = extract_one(&cache, &p, &v);
            (p, files)
        }));
    }
    let mut out = Extracted::default();
    let mut failures = Vec::new();
    let mut first_err = None;
    for t in tasks {
        let (p, files) = t.await.context("extraction task panicked")?;
        let files = match files {
            Ok(f) => f,
            Err(e) => {
                match failure_of(&p, e) {
                    Ok(f) => failures.push(f),
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
                continue;
            }
        };
        match &p.role {
            Role::Busybox => {
                if let Some((_, file)) = files.into_iter().next() {
                    out.busybox.insert(p.host, file);
                }
            }
            Role::Guest { arch } => {
                if let Some((_, file)) = files.into_iter().next() {
                    out.guests.insert(arch.clone(), file);
                }
            }
            Role::Qemu { source } => {
                let m: BTreeMap<String, File> = files.into_iter().collect();
                let missing: Vec<&String> =
                    p.targets.iter().filter(|t| !m.contains_key(*t)).collect();
                if !missing.is_empty() {
                    let reason = format!(
                        "qemu-{} requested but not extracted",
                        missing
                            .iter()
                            .map(|t| t.as_str())
                            .collect::<Vec<_>>()
                            .join(", qemu-")
                    );
                    failures.push(PackageFailure::new(&p, Cause::Unusable, reason));
                    continue;
                }
                // Fedora: several rpms fill one host's emulators.
                out.emulators
                    .entry((source.clone(), p.host))
                    .or_default()
                    .extend(m);
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok((out, failures)),
    }
}

/// The files `p` gives: its emulators, or its busybox.
fn extract_one(
    cache: &qus_source::Cache,
    p: &PackagePlan,
    v: &qus_source::VerifiedPackage,
) -> qus_source::Result<Files> {
    let limits = Limits::default();
    let file = |path, size, sha256: qus_source::Sha256| File {
        path,
        size,
        sha256: sha256.to_hex(),
    };
    let busybox = |arch: &str| {
        // trixie's busybox-static has usr/bin/busybox, bookworm's bin/busybox.
        let req = FileRequest::busybox(arch);
        let found = match cache.extract_file(v, &req, &limits) {
            Err(qus_source::Error::FileMissing { .. }) => cache.extract_file(
                v,
                &FileRequest {
                    member: "bin/busybox".into(),
                    ..req
                },
                &limits,
            ),
            other => other,
        };
        found.map(|f| vec![("busybox".to_string(), file(f.path, f.size, f.sha256))])
    };
    match &p.role {
        Role::Busybox => busybox(p.host.debian()),
        Role::Guest { arch } => busybox(arch),
        Role::Qemu { .. } => {
            let req = EmulatorRequest::new(p.host.debian()).targets(p.targets.clone());
            let x = cache.extract_emulators(v, &req, &limits)?;
            Ok(x.emulators
                .into_iter()
                .map(|e| (e.target, file(e.path, e.size, e.sha256)))
                .collect())
        }
    }
}
