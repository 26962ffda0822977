//! binfmt_misc registration of QEMU user-mode emulators.
//!
//! What `docker run --privileged <repo>/qus` and `qus register` do: make the
//! kernel hand foreign-architecture ELF files to `qemu-<T>-static`. One table
//! ([`table`]) of every target of QEMU's `qemu-binfmt-conf.sh`; three command
//! lines ([`dialect`]: dbhi/qus, multiarch/qemu-user-static,
//! tonistiigi/binfmt, one module each) parsed into one [`Request`] (its own
//! module, [`request`], shared by the three); pure line rendering
//! ([`mod@line`]); the byte rules every argument and environment value passes
//! ([`rules`]); what the host is, as emulation cannot fake it ([`host`]); the
//! kernel side ([`apply`]); the entries as one run sees them, which a dry
//! run decides from as the run does ([`view`]); persistence files
//! ([`export`]); and the in-image sh entrypoint's data ([`sh`]), so that the
//! image and `qus register` behave the same without a second copy of the
//! table or of the rules.
//!
//! Entry points:
//! - [`run()`]: a whole invocation, for `qus register ARGS…`;
//! - [`execute_request`]: the same for a parsed request, with the entries
//!   it left (or, dry, would leave);
//! - [`Binfmt`]: register / remove / list on a mount point;
//! - [`entrypoint_files`] and [`ENTRYPOINT`]: the register layer of images.
#![deny(missing_docs)]

pub mod apply;
pub mod dialect;
pub mod error;
pub mod export;
pub mod glob;
pub mod host;
pub mod judge;
pub mod line;
pub mod pages;
pub mod request;
pub mod rules;
pub mod run;
pub mod sh;
pub mod table;
pub mod view;

pub use apply::{Binfmt, EntryInfo, Registered, Status};
pub use dialect::{parse, Dialect, Env, Request, Selection};
pub use error::{Errno, Error};
pub use line::Flags;
pub use request::Installed;
pub use run::{
    execute_request, planned, run, run_request, Outcome, Planned, EXIT_FAILED, EXIT_OK, EXIT_USAGE,
};
pub use sh::{entrypoint_files, entrypoint_files_with_version, sh_data, ENTRYPOINT, QUS_BIN_LINK};
pub use table::{Target, TARGETS};
