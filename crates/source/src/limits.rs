//! Caps on what unpacking a package may cost, and the reader that enforces them.
//!
//! A package is input from the network: a few KiB of xz can expand to terabytes. The caps are
//! checked on the decompressed stream itself (not on sizes the archive claims), so they hold
//! whatever the headers say. A hit is recorded in a shared cell besides being returned as an
//! `io::Error`, because the tar and decompressor layers above may wrap or replace the error.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

/// Caps applied while unpacking one package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes one member (control or data archive) may decompress to.
    /// The largest real input, trixie qemu-user for amd64, is about 480 MB.
    pub max_unpacked: u64,
    /// Most times the decompressed stream may be larger than the compressed bytes read so
    /// far. Real qemu packages are below 10x; xz of zeros is several thousand.
    pub max_ratio: u64,
    /// Decompressed bytes allowed before the ratio is checked, so tiny members with
    /// legitimately high ratios (a tar of empty folders) pass.
    pub ratio_grace: u64,
    /// Most entries one archive may have (bounds the memory kept per entry).
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_unpacked: 2 << 30,
            max_ratio: 50,
            ratio_grace: 8 << 20,
            max_entries: 100_000,
        }
    }
}

/// Which cap was hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitHit {
    Total { limit: u64 },
    Ratio { ratio: u64, limit: u64 },
}

/// Counts the compressed bytes a decoder pulls.
pub(crate) struct CountIn<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R> CountIn<R> {
    pub(crate) fn new(inner: R) -> (Self, Rc<Cell<u64>>) {
        let count = Rc::new(Cell::new(0));
        (
            CountIn {
                inner,
                count: count.clone(),
            },
            count,
        )
    }
}

impl<R: Read> Read for CountIn<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Wraps a decoder's output and fails once a cap is exceeded.
pub(crate) struct Capped<R> {
    inner: R,
    packed: Rc<Cell<u64>>,
    out: u64,
    limits: Limits,
    hit: Rc<Cell<Option<LimitHit>>>,
}

impl<R: Read> Capped<R> {
    pub(crate) fn new(
        inner: R,
        packed: Rc<Cell<u64>>,
        limits: &Limits,
    ) -> (Self, Rc<Cell<Option<LimitHit>>>) {
        let hit = Rc::new(Cell::new(None));
        (
            Capped {
                inner,
                packed,
                out: 0,
                limits: limits.clone(),
                hit: hit.clone(),
            },
            hit,
        )
    }

    fn check(&self) -> Option<LimitHit> {
        if self.out > self.limits.max_unpacked {
            return Some(LimitHit::Total {
                limit: self.limits.max_unpacked,
            });
        }
        if self.out > self.limits.ratio_grace {
            let packed = self.packed.get().max(1);
            let ratio = self.out / packed;
            if ratio > self.limits.max_ratio {
                return Some(LimitHit::Ratio {
                    ratio,
                    limit: self.limits.max_ratio,
                });
            }
        }
        None
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(hit) = self.hit.get() {
            return Err(limit_error(hit));
        }
        let n = self.inner.read(buf)?;
        self.out += n as u64;
        if let Some(hit) = self.check() {
            self.hit.set(Some(hit));
            return Err(limit_error(hit));
        }
        Ok(n)
    }
}

fn limit_error(hit: LimitHit) -> io::Error {
    io::Error::other(format!("unpack limit exceeded: {hit:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(data_len: usize, packed: u64, limits: Limits) -> Option<LimitHit> {
        let data = vec![0u8; data_len];
        let counter = Rc::new(Cell::new(packed));
        let (mut r, hit) = Capped::new(&data[..], counter, &limits);
        let _ = io::copy(&mut r, &mut io::sink());
        hit.get()
    }

    #[test]
    fn total_cap() {
        let l = Limits {
            max_unpacked: 1000,
            ..Limits::default()
        };
        assert_eq!(run(1000, 1000, l.clone()), None);
        assert_eq!(run(1001, 1001, l), Some(LimitHit::Total { limit: 1000 }));
    }

    #[test]
    fn ratio_cap_after_grace() {
        let l = Limits {
            max_ratio: 10,
            ratio_grace: 100,
            ..Limits::default()
        };
        assert_eq!(run(100, 1, l.clone()), None, "within grace");
        assert!(matches!(
            run(1000, 10, l.clone()),
            Some(LimitHit::Ratio { .. })
        ));
        assert_eq!(run(1000, 100, l), None);
    }
}
