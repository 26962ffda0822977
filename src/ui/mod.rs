//! What the user sees: progress on stderr, results on stdout, tables for both.

pub(crate) mod output;
pub(crate) mod progress;
pub(crate) mod table;
