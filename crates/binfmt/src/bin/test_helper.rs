//! Runs [`qus_binfmt::run()`] as a process, so tests can run the Rust path in a
//! private user+mount namespace the same way they run the sh entrypoint.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let env = qus_binfmt::Env::from_process();
    let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
    let (mut out, mut err) = (stdout.lock(), stderr.lock());
    let code = qus_binfmt::run(&args, &env, &mut out, &mut err);
    let _ = out.flush();
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
