//! Writing results to stdout. Unlike `print!`, a closed pipe (`qus plan --json | head`) is an
//! error the caller returns, which `main` treats as a normal end, not a panic.

/// Writes `text` to stdout.
pub(crate) fn out(text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut o = std::io::stdout().lock();
    o.write_all(text.as_bytes())?;
    o.flush()
}

/// [`out`] of pretty JSON and a newline.
pub(crate) fn out_json<T: serde::Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    out(&(serde_json::to_string_pretty(value)? + "\n"))?;
    Ok(())
}
