//! Advisory file locks, so that qus processes sharing a cache take turns per entry.
//!
//! `flock(2)` is released by the kernel when the process dies, so a crashed run never leaves
//! a stale lock behind. Lock files are never deleted: removing one while another process
//! waits on it would let a third process lock a new file of the same name at the same time.
//! Waiting polls a non-blocking lock so it can give up after a timeout with a clear error.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{flock, FlockOperation};

use crate::error::{Error, Result};

/// An exclusive lock, held until dropped.
#[derive(Debug)]
pub(crate) struct FileLock {
    _file: File,
}

const POLL: Duration = Duration::from_millis(100);

fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::io("cannot open lock file", path, e))
}

fn try_lock(file: &File, path: &Path) -> Result<bool> {
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(false),
        Err(e) => Err(Error::io("cannot lock", path, e.into())),
    }
}

impl FileLock {
    /// Takes the lock, calling `on_wait` once if another process holds it, and failing
    /// after `timeout`.
    pub(crate) fn acquire(
        path: &Path,
        timeout: Duration,
        on_wait: &dyn Fn(&Path),
    ) -> Result<FileLock> {
        let file = open(path)?;
        let start = Instant::now();
        let mut told = false;
        loop {
            if try_lock(&file, path)? {
                return Ok(FileLock { _file: file });
            }
            if !told {
                on_wait(path);
                told = true;
            }
            if start.elapsed() >= timeout {
                return Err(timeout_error(path, timeout));
            }
            std::thread::sleep(POLL);
        }
    }

    /// As [`FileLock::acquire`], without blocking the async runtime while waiting.
    pub(crate) async fn acquire_async(
        path: &Path,
        timeout: Duration,
        on_wait: &(dyn Fn(&Path) + Send + Sync),
    ) -> Result<FileLock> {
        let file = open(path)?;
        let start = Instant::now();
        let mut told = false;
        loop {
            if try_lock(&file, path)? {
                return Ok(FileLock { _file: file });
            }
            if !told {
                on_wait(path);
                told = true;
            }
            if start.elapsed() >= timeout {
                return Err(timeout_error(path, timeout));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

fn timeout_error(path: &Path, waited: Duration) -> Error {
    Error::LockTimeout {
        path: PathBuf::from(path),
        waited,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn second_holder_waits_then_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.lock");
        let held = FileLock::acquire(&p, Duration::from_secs(1), &|_| {}).unwrap();
        let waits = AtomicUsize::new(0);
        let err = FileLock::acquire(&p, Duration::from_millis(300), &|_| {
            waits.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap_err();
        assert!(matches!(err, Error::LockTimeout { .. }), "{err}");
        assert_eq!(waits.load(Ordering::SeqCst), 1);
        drop(held);
        FileLock::acquire(&p, Duration::from_millis(300), &|_| {}).unwrap();
    }
}
