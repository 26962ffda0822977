//! The places images are written to: the daemon (`docker load`), a registry (qus's own
//! client) and an OCI image layout directory. Each takes computed [`crate::image::Image`]s
//! and never decides what an image is.

pub(crate) mod daemon;
pub(crate) mod layout;
pub(crate) mod registry;
