//! The `qus` command: parse, run, report. Everything else lives in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match qus::cli::parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version itself and knows their exit code (0).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match qus::app::run(cli) {
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
            eprintln!("qus: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
