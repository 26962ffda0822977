//! qus: container images of QEMU's user-mode emulators with a binfmt_misc entrypoint.
//!
//! The data flow runs one way: [`config`] → [`plan`] (pure) → fetch and extract
//! (`qus_source`) → [`context`] (build-context tar) → [`docker`] (build, push via the Engine
//! API) → manifest lists (`qus_registry`). The CLI in `main.rs` only wires these together.
#![deny(missing_docs)]

pub mod app;
pub mod arch;
pub mod assets;
pub mod cli;
pub mod config;
pub mod context;
pub mod docker;
pub mod entrypoint;
pub mod lockfile;
pub mod maint;
pub mod mirror;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod reference;
pub mod register;
pub mod release;
pub mod table;
pub mod targets;

/// qus's version, as `qus --version` prints it and image inputs record it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Writes `text` to stdout. Unlike `print!`, a closed pipe (`qus plan --json | head`) is an
/// error the caller returns, which `main` treats as a normal end, not a panic.
pub fn out(text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut o = std::io::stdout().lock();
    o.write_all(text.as_bytes())?;
    o.flush()
}

/// [`out`] of pretty JSON and a newline.
pub fn out_json<T: serde::Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    out(&(serde_json::to_string_pretty(value)? + "\n"))?;
    Ok(())
}
