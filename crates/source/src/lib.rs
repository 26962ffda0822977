//! The "source" stage of qus: get the Debian packages (or Fedora rpms) a build needs, prove
//! they are the pinned ones, and take the emulators (and busybox) out of them, all in-process.
//!
//! The data flow is one-directional, and so is this crate:
//!
//! 1. [`fetch`] brings a [`PackageRef`] (pool path + sha256) from a Debian mirror or a local
//!    folder into the [`Cache`], verified before it gets its final name; a download the
//!    mirror breaks off is tried again and resumed, as [`RetryPolicy`] says.
//! 2. [`extract`] streams a package's data archive and writes `qemu-T-static` files into a
//!    work dir (or, through [`Cache::extract_emulators`], into a cached one), refusing
//!    anything that would write outside it, blow up in size, or not run on the host.
//! 3. [`debian_index`] reads a mirror's `Release` and `Packages` files, so that `qus lock`
//!    and `qus check` can find (and pin) the newest version of a package.
//!
//! Package formats sit behind the small [`package::PackageFormat`] trait: [`deb`] and [`rpm`]
//! (Fedora's `qemu-user-static-<group>` packages). [`extract_emulators`] and
//! [`Cache::extract_emulators`] take either, told apart by the file's first bytes.
//!
//! ```no_run
//! # async fn demo() -> Result<(), qus_source::Error> {
//! use qus_source::{Cache, EmulatorRequest, FetchOptions, Fetcher, Limits, Origin, PackageRef};
//!
//! let cache = Cache::open(Cache::default_root()?)?;
//! let fetcher = Fetcher::new(cache.clone(), FetchOptions::default())?;
//! let pkg = PackageRef::new(
//!     "pool/main/q/qemu/qemu-user_10.0.13+ds-0+deb13u1_arm64.deb",
//!     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
//!     None,
//! )?;
//! let origin = Origin::mirror("http://127.0.0.1:8080/debian/")?;
//! let deb = fetcher.fetch(&pkg, &origin, &|p| eprintln!("{p}")).await?;
//! let req = EmulatorRequest::new("arm64").targets(["aarch64", "riscv64"]);
//! let out = cache.extract_emulators(&deb, &req, &Limits::default())?;
//! for emu in &out.emulators {
//!     println!("{} {} {} {}", emu.target, emu.path.display(), emu.size, emu.sha256);
//! }
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod ar;
pub mod cache;
mod compression;
mod dates;
pub mod deb;
mod deb822;
pub mod debian_index;
mod digest;
mod download;
pub mod elf;
mod error;
pub mod extract;
pub mod fetch;
mod formats;
mod http;
mod limits;
mod lock;
pub mod package;
mod pinned;
mod probe;
mod progress;
mod retry;
pub mod rpm;
mod sink;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
mod tree;

pub use cache::{Cache, Extraction, LockWait};
pub use dates::rfc3339;
pub use digest::Sha256;
pub use error::{Error, Result};
pub use extract::{
    extract_emulators, extract_file, Emulator, EmulatorRequest, ExtractedFile, FileRequest,
};
pub use fetch::{Fetcher, Origin};
pub use formats::open_package;
pub use http::{FetchOptions, Http};
pub use limits::Limits;
pub use package::PackageInfo;
pub use pinned::{PackageRef, VerifiedPackage};
pub use probe::Served;
pub use progress::{Progress, Retrying};
pub use retry::RetryPolicy;
