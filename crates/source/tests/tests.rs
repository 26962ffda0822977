//! Integration tests of qus-source, one binary with a module per topic.
//!
//! Real Debian packages are read from `$QUS_TEST_DEBS` (default `~/.cache/qus/debs`), which
//! `.ci/run` fills with `apt-get download`; hostile packages are built in the tests, and rpms
//! with Debian's `rpmbuild` (package `rpm`).

mod support;

mod cache;
mod fetch;
mod hostile;
mod index;
mod real;
mod retries;
mod rpm;
mod signature;
