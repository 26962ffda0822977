//! One emulator, one run: the command line (direct or chained under this machine's
//! emulator), a time limit, and the check of what came out.

use super::{Row, Status, Subject, Tools, TOKEN};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// Longest a run may take: a chained busybox takes well under a second; a hung emulator
/// must not hang the release.
const TIME_LIMIT: Duration = Duration::from_secs(120);

/// Runs `subject` and says how it went.
pub(super) async fn one(subject: &Subject, tools: &Tools) -> Row {
    let via = if tools.machine.runs(subject.host) {
        None
    } else {
        let t = subject.host.target();
        match tools.machine_emulators.get(t) {
            Some(f) => Some((t, f.path.as_path())),
            None => {
                return row(
                    subject,
                    format!("under qemu-{t}"),
                    Status::Failed {
                        reason: format!(
                            "this machine ({}) has no qemu-{t} to run {} programs with",
                            tools.machine, subject.host
                        ),
                    },
                )
            }
        }
    };
    let how = via.map_or_else(|| "direct".to_string(), |(t, _)| format!("under qemu-{t}"));
    let guest = crate::targets::guest_arch(&subject.target).and_then(|a| tools.guests.get(a));
    let mut argv: Vec<&std::ffi::OsStr> = Vec::new();
    if let Some((_, p)) = via {
        argv.push(p.as_os_str());
    }
    argv.push(subject.path.as_os_str());
    let script = format!("echo {TOKEN}; uname -m");
    match guest {
        Some(g) => {
            argv.push(g.path.as_os_str());
            argv.extend(["sh", "-c", script.as_str()].map(std::ffi::OsStr::new));
        }
        None => argv.push(std::ffi::OsStr::new("--version")),
    }
    let status = match execute(&argv).await {
        Err(reason) => Status::Failed { reason },
        Ok(out) => judge(&out, guest.is_some(), &subject.target),
    };
    row(subject, how, status)
}

fn row(subject: &Subject, how: String, status: Status) -> Row {
    Row {
        host: subject.host,
        source: subject.source.clone(),
        qemu_version: subject.qemu_version.clone(),
        target: subject.target.clone(),
        how,
        status,
        images: subject.images.clone(),
    }
}

/// Pure: what the output of a run says.
fn judge(stdout: &str, with_guest: bool, target: &str) -> Status {
    let mut lines = stdout.lines();
    if with_guest {
        match (lines.next(), lines.next()) {
            (Some(TOKEN), Some(machine)) if !machine.trim().is_empty() => Status::Ran {
                machine: machine.trim().to_string(),
            },
            _ => Status::Failed {
                reason: format!("the guest program printed {:?}", first_chars(stdout)),
            },
        }
    } else {
        match lines.next() {
            Some(l) if l.contains("version") && l.contains(&format!("qemu-{target}")) => {
                Status::VersionOnly {
                    version: l.trim().to_string(),
                }
            }
            _ => Status::Failed {
                reason: format!("--version printed {:?}", first_chars(stdout)),
            },
        }
    }
}

fn first_chars(s: &str) -> String {
    s.chars().take(200).collect()
}

/// Runs `argv` with an empty environment (no QEMU_* variable changes what runs), within
/// the time limit; stdout on success, else why not.
async fn execute(argv: &[&std::ffi::OsStr]) -> Result<String, String> {
    let (prog, args) = argv.split_first().ok_or("nothing to run")?;
    let child = tokio::process::Command::new(prog)
        .args(args)
        .env_clear()
        .current_dir(Path::new("/"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", Path::new(prog).display()))?;
    let out = tokio::time::timeout(TIME_LIMIT, child.wait_with_output())
        .await
        .map_err(|_| format!("no answer within {} s", TIME_LIMIT.as_secs()))?
        .map_err(|e| format!("waiting for it: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "{} ({})",
            out.status,
            first_chars(stderr.trim()).replace('\n', " | ")
        ));
    }
    Ok(stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_judged() {
        assert_eq!(
            judge("qus-test-ok\naarch64\n", true, "aarch64"),
            Status::Ran {
                machine: "aarch64".into()
            }
        );
        assert!(matches!(
            judge("something else\n", true, "aarch64"),
            Status::Failed { .. }
        ));
        assert!(matches!(
            judge(
                "qemu-alpha version 11.1.2 (Debian 1:11.1.2+ds-3)\n",
                false,
                "alpha"
            ),
            Status::VersionOnly { .. }
        ));
        assert!(matches!(
            judge("qemu-sh4 version 11.1.2\n", false, "alpha"),
            Status::Failed { .. }
        ));
    }
}
