//! One integration-test binary for the pipeline (one link; modules by topic). These tests
//! use the machine's real Docker daemon, real registries and real Debian packages (fetched
//! by ci/fetch-test-debs).

mod support;

mod assets;
mod bad_inputs;
mod build;
mod cli;
mod depcheck;
mod emulators;
mod engines;
mod faults;
mod fedora;
mod host_install;
mod maint;
mod register;
mod registries;
mod release;
mod snapshots;
mod stalls;
mod supply;
