//! For tests (feature `testkit`), this crate's and the pipeline's: the real Debian packages
//! `.ci/run` downloads, a loopback mirror to serve them from, header-only ELF files and
//! Fedora-style rpms. Never needed at run time.

mod debs;
mod elf;
mod pgp;
pub mod rpm;
mod server;

pub use debs::{ftparchive, pool_name, real_deb, test_debs};
pub use elf::{elf, elf_header};
pub use pgp::{gpgv_signers, TestKey};
pub use server::{Fault, Mode, Server};
