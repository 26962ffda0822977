//! Where a registry's credentials come from, asked again when they may have changed.
//!
//! Credentials read once at start go stale: a credential helper's token (Google Artifact
//! Registry's gcloud helper, an ACR identity token) lives an hour, a release may build for
//! longer, and `docker login` may run meanwhile. So a client keeps the *source* of each
//! registry's credentials, not only their value, and asks it again when the registry
//! answers 401 to what was sent and before each push phase (`Client::refresh_credentials`).

use std::path::PathBuf;
use std::time::Duration;

use crate::auth::Auth;
use crate::docker_config::DockerConfig;
use crate::error::Result;

/// Something that can say, now, which credentials to use for a registry.
///
/// It may run a process (a credential helper): it is called from a blocking thread.
pub trait CredentialSource: Send + Sync {
    /// The credentials for `registry` (as named in references) at this moment.
    fn resolve(&self, registry: &str) -> Result<Auth>;
}

/// Fixed credentials (`--username` + `--password-stdin`, tests).
impl CredentialSource for Auth {
    fn resolve(&self, _registry: &str) -> Result<Auth> {
        Ok(self.clone())
    }
}

/// The user's Docker config, read again at each resolution so that a new `docker login`
/// or a helper's rotated token is seen.
#[derive(Clone, Debug, Default)]
pub struct DockerConfigSource {
    /// The config file (`None`: no file, anonymous).
    pub path: Option<PathBuf>,
    /// Where helpers are looked up instead of `PATH`.
    pub helper_dir: Option<PathBuf>,
    /// How long a helper may take (default [`crate::docker_config::HELPER_TIMEOUT`]).
    pub helper_timeout: Option<Duration>,
}

impl DockerConfigSource {
    /// The config at `path`.
    pub fn new(path: Option<PathBuf>) -> DockerConfigSource {
        DockerConfigSource {
            path,
            ..DockerConfigSource::default()
        }
    }
}

impl CredentialSource for DockerConfigSource {
    fn resolve(&self, registry: &str) -> Result<Auth> {
        let mut config = match &self.path {
            Some(path) => DockerConfig::load(path)?,
            None => DockerConfig::default(),
        };
        if let Some(dir) = &self.helper_dir {
            config = config.with_helper_dir(dir);
        }
        if let Some(timeout) = self.helper_timeout {
            config = config.with_helper_timeout(timeout);
        }
        config.resolve(registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_docker_config_is_read_again_at_each_resolution() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let source = DockerConfigSource::new(Some(path.clone()));
        assert_eq!(source.resolve("h.test").unwrap(), Auth::Anonymous);
        std::fs::write(
            &path,
            r#"{"auths":{"h.test":{"username":"u","password":"p1"}}}"#,
        )
        .unwrap();
        assert_eq!(source.resolve("h.test").unwrap(), Auth::basic("u", "p1"));
        std::fs::write(
            &path,
            r#"{"auths":{"h.test":{"username":"u","password":"p2"}}}"#,
        )
        .unwrap();
        assert_eq!(source.resolve("h.test").unwrap(), Auth::basic("u", "p2"));
        assert_eq!(
            Auth::basic("x", "y").resolve("any").unwrap(),
            Auth::basic("x", "y")
        );
    }
}
