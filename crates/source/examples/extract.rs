//! Extracts emulators from a package and prints them with the time taken:
//!
//! ```text
//! cargo run --release -p qus-source --example extract -- PKG.deb ARCH OUT_DIR [TARGET...]
//! cargo run --release -p qus-source --example extract -- --cache PKG.deb ARCH CACHE_DIR [TARGET...]
//! ```
//!
//! With `--cache`, the package is imported into a cache at CACHE_DIR and extracted through
//! it (fsync'ed files, marker), as the build pipeline does; a second run is a cache hit.

use std::time::Instant;

use qus_source::{
    extract_emulators, Cache, EmulatorRequest, FetchOptions, Fetcher, Limits, Origin, PackageRef,
    Sha256,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let cached = args.first().is_some_and(|a| a == "--cache");
    if cached {
        args.remove(0);
    }
    let [deb, arch, out, targets @ ..] = &args[..] else {
        return Err("usage: extract [--cache] PKG.deb DEBIAN_ARCH OUT_DIR [TARGET...]".into());
    };
    let mut req = EmulatorRequest::new(arch.as_str());
    if !targets.is_empty() {
        req = req.targets(targets.iter().cloned());
    }
    let start = Instant::now();
    let emus = if cached {
        let deb = std::path::Path::new(deb);
        let sum = Sha256::of(&std::fs::read(deb)?);
        let name = deb.file_name().ok_or("no file name")?.to_string_lossy();
        let pkg = PackageRef::new(&format!("pool/{name}"), &sum.to_hex(), None)?;
        let cache = Cache::open(out)?;
        let fetcher = Fetcher::new(cache.clone(), FetchOptions::default())?;
        let dir = deb.parent().ok_or("no folder")?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let verified = rt.block_on(fetcher.fetch(&pkg, &Origin::local_dir(dir), &|_| {}))?;
        eprintln!("imported in {:.2?}", start.elapsed());
        let x = cache.extract_emulators(&verified, &req, &Limits::default())?;
        eprintln!("from cache: {}", x.from_cache);
        x.emulators
    } else {
        extract_emulators(deb.as_ref(), out.as_ref(), &req, &Limits::default())?
    };
    let took = start.elapsed();
    let total: u64 = emus.iter().map(|e| e.size).sum();
    for e in &emus {
        println!("{} {} {} {}", e.sha256, e.size, e.target, e.path.display());
    }
    println!(
        "{} emulators, {:.1} MB, in {:.2?}",
        emus.len(),
        total as f64 / 1e6,
        took
    );
    Ok(())
}
