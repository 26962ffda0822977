//! The `qus` command: parse, run, report.
//!
//! The data flows one way: `config` (qus.yml and its lock) → `plan` (every image, tag, list
//! and package; pure) → `packages` (fetched, verified and extracted through `qus_source`) →
//! `image` (layers, configs and manifests, computed as data) → a `sink`: the daemon, a
//! registry (`qus_registry`) or an OCI layout, the lists last; `attest` signs what a
//! release wrote and attaches its SBOMs and provenances. `app` turns flags and environment
//! into options once and calls `cmd`, a module per subcommand; nothing below it reads
//! `std::env` or the clap types. `--builder dockerfile` takes the `classic` path instead:
//! a build context per image, built and pushed by the daemon (`engine`).

mod app;
mod arch;
mod attest;
mod classic;
mod cli;
mod cmd;
mod config;
mod emutest;
mod engine;
mod exit;
mod image;
mod maint;
mod names;
mod options;
mod outcome;
mod packages;
mod plan;
mod sink;
mod targets;
mod ui;

use std::process::ExitCode;

/// qus's version, as `qus --version` prints it and image inputs record it.
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn main() -> ExitCode {
    let cli = match cli::parse(std::env::args_os()) {
        Ok(cli) => cli,
        // Help and version go to stdout (exit 0); errors to stderr with qus's prefix.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::from(exit::OK);
        }
        Err(e) => {
            eprint!("{}", cli::error_text(&e));
            return ExitCode::from(exit::USAGE);
        }
    };
    match app::run(cli) {
        Ok(code) => code,
        // The reader went away (`qus plan --json | head`): nothing left to say.
        Err(err)
            if err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(err) => {
            // A reference typed with `user:pass@` must not come back in the message.
            let text = exit::message(&err);
            eprintln!("qus: error: {}", qus_registry::redact_userinfo(&text));
            exit::status_of(&err)
        }
    }
}
