//! Packages in, files out: fetch each planned package (verified by sha256, and a Fedora rpm
//! by its header signature when its source names a keyring), then extract the emulators and
//! busybox the images need, one package per CPU. Any failure stops everything before the
//! first image is made.

use crate::arch::Host;
use crate::config::Distro;
use crate::files::File;
use crate::options::SourceOptions;
use crate::plan::{PackagePlan, Role};
use crate::progress::Progress;
use anyhow::{anyhow, Context as _};
use qus_source::debian_index::Keyring;
use qus_source::{Cache, EmulatorRequest, FetchOptions, Fetcher, FileRequest, Limits, Origin};
use std::collections::BTreeMap;

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

/// Fetches, verifies and extracts `packages`; any failure stops everything before a build.
pub(crate) async fn prepare(
    packages: &[&PackagePlan],
    src: &SourceOptions,
    progress: &Progress,
) -> anyhow::Result<Extracted> {
    let mut origins: BTreeMap<Distro, Origin> = BTreeMap::new();
    for p in packages {
        if let std::collections::btree_map::Entry::Vacant(e) = origins.entry(p.distro) {
            e.insert(src.origin(p.distro)?);
        }
    }
    let cache = open_cache(src, progress)?;
    let fetcher = Fetcher::new(cache.clone(), FetchOptions::default())?;
    let mut keyrings: BTreeMap<&std::path::Path, Keyring> = BTreeMap::new();
    let mut verified = Vec::new();
    for p in packages {
        let pkg = qus_source::PackageRef::new(&p.file, &p.sha256, p.size)
            .with_context(|| format!("{} for {}", p.package, p.host))?;
        let bar = progress.bytes(pkg.file_name(), p.size);
        let v = fetcher
            .fetch(&pkg, &origins[&p.distro], &|x| bar.set(x.done))
            .await
            .with_context(|| format!("{} {} for {}", p.package, p.version, p.host))?;
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
                let signer = qus_source::rpm::verify_signature(
                    &v.path,
                    keyring,
                    std::time::SystemTime::now(),
                )
                .with_context(|| format!("{} {} for {}", p.package, p.version, p.host))?;
                format!(
                    ", signed by {}",
                    signer.user_id.unwrap_or(signer.fingerprint)
                )
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
    // Extraction is CPU-bound decompression (and each xz decoder holds its own buffers):
    // one blocking task per package, as many at once as there are CPUs.
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(cpus));
    let mut tasks = Vec::new();
    for (p, v) in verified {
        let cache = cache.clone();
        let slot = slots.clone().acquire_owned().await?;
        tasks.push(tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let limits = Limits::default();
            let what = format!("{} for {} ({})", p.file, p.host, p.host.debian());
            let busybox = |arch: &str| {
                // trixie's busybox-static has usr/bin/busybox, bookworm's bin/busybox.
                let req = FileRequest::busybox(arch);
                let found = match cache.extract_file(&v, &req, &limits) {
                    Err(qus_source::Error::FileMissing { .. }) => cache.extract_file(
                        &v,
                        &FileRequest {
                            member: "bin/busybox".into(),
                            ..req
                        },
                        &limits,
                    ),
                    other => other,
                };
                found.map(|f| {
                    let file = File {
                        path: f.path,
                        size: f.size,
                        sha256: f.sha256.to_hex(),
                    };
                    (p.clone(), vec![("busybox".to_string(), file)])
                })
            };
            match &p.role {
                Role::Busybox => busybox(p.host.debian()).with_context(|| what.clone()),
                Role::Guest { arch } => {
                    busybox(arch).with_context(|| format!("{} (guest program for {arch})", p.file))
                }
                Role::Qemu { .. } => {
                    let req = EmulatorRequest::new(p.host.debian()).targets(p.targets.clone());
                    cache
                        .extract_emulators(&v, &req, &limits)
                        .map(|x| {
                            (
                                p.clone(),
                                x.emulators
                                    .into_iter()
                                    .map(|e| {
                                        let file = File {
                                            path: e.path,
                                            size: e.size,
                                            sha256: e.sha256.to_hex(),
                                        };
                                        (e.target, file)
                                    })
                                    .collect(),
                            )
                        })
                        .with_context(|| what.clone())
                }
            }
        }));
    }
    let mut out = Extracted::default();
    let mut first_err = None;
    for t in tasks {
        match t.await.context("extraction task panicked")? {
            Ok((p, files)) => match &p.role {
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
                    for t in &p.targets {
                        if !m.contains_key(t) {
                            return Err(anyhow!(
                                "{} for {}: qemu-{t} was requested but not extracted",
                                p.file,
                                p.host
                            ));
                        }
                    }
                    // Fedora: several rpms fill one host's emulators.
                    out.emulators
                        .entry((source.clone(), p.host))
                        .or_default()
                        .extend(m);
                }
            },
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    progress.step(format!(
        "extracted {} emulators, {} busybox and {} guest programs",
        out.emulators.values().map(|m| m.len()).sum::<usize>(),
        out.busybox.len(),
        out.guests.len()
    ));
    Ok(out)
}
