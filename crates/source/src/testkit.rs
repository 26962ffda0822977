//! For tests (feature `testkit`), this crate's and the pipeline's: the real Debian packages
//! `.ci/run` downloads, and a loopback mirror to serve them from. Never needed at run time.

mod debs;
mod server;

pub use debs::{ftparchive, pool_name, real_deb, test_debs};
pub use server::{Mode, Server};
