//! `qus register`: the Rust implementation of the images' entrypoint, for hosts without a
//! container engine. Arguments go to `qus_binfmt` untouched, in any of its three dialects.

use std::ffi::OsString;
use std::process::ExitCode;

/// Runs the binfmt front end with the process environment; its exit status is ours.
pub fn register_cmd(args: &[OsString]) -> ExitCode {
    let env = qus_binfmt::Env::from_process();
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    let code = qus_binfmt::run(args, &env, &mut out, &mut err);
    ExitCode::from(u8::try_from(code).unwrap_or(2))
}
