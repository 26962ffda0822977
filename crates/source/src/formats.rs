//! Which format a package file is: the one place that knows every [`PackageFormat`], so the
//! formats themselves only know the trait.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::deb::Deb;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::package::PackageFormat;
use crate::rpm::{self, Rpm};

/// Opens a package, choosing the format from the file's first bytes.
pub fn open_package(path: &Path, limits: &Limits) -> Result<Box<dyn PackageFormat>> {
    let mut magic = [0u8; 8];
    let n = File::open(path)
        .and_then(|mut f| {
            let mut n = 0;
            while n < magic.len() {
                match f.read(&mut magic[n..])? {
                    0 => break,
                    k => n += k,
                }
            }
            Ok(n)
        })
        .map_err(|e| Error::io("cannot read", path, e))?;
    // An rpm by its magic, or a file named .rpm that is not an ar archive (so a broken lead
    // is reported as such, not as "not a Debian package").
    let named_rpm = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("rpm"));
    let is_ar = n == magic.len() && magic == *b"!<arch>\n";
    if rpm::is_rpm_magic(&magic[..n]) || (named_rpm && !is_ar) {
        return Ok(Box::new(Rpm::open(path, limits)?));
    }
    Ok(Box::new(Deb::open(path, limits)?))
}
