//! One integration-test binary for qus-registry (one link; topics as modules).
//!
//! The main path runs against a real registry (Debian's `docker-registry`, started by
//! `qus_registry::testkit`) and is checked with an independent client (`skopeo`); the
//! stub server is only for what a real registry will not do on demand.

mod support;

mod auth;
mod faults;
mod publish;
mod retries;
mod stub;
mod tls;
mod tokens;
