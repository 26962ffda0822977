//! One module per subcommand: each takes the options `app` resolved and returns the
//! outcome (an exit status; what it prints goes to stdout, progress to stderr).

pub(crate) mod assets;
pub(crate) mod build;
pub(crate) mod check;
pub(crate) mod lock;
pub(crate) mod plan;
pub(crate) mod publish;
pub(crate) mod register;
pub(crate) mod release;
pub(crate) mod report;
pub(crate) mod test;
pub(crate) mod verify;
