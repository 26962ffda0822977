//! Media types, and which kind of list qus publishes.
//!
//! The registry decides what a manifest *is* from its media type, and distribution 2.8
//! answers `404 MANIFEST_UNKNOWN` ("OCI index found, but accept header does not support
//! OCI indexes") to a client that does not list the OCI types in `Accept`. So every
//! manifest request sends [`MANIFEST_ACCEPT`], and every manifest we write carries an
//! explicit `mediaType` (never inferred from the body, unlike some clients' fallbacks).

/// Docker image manifest, schema 2: what the Docker daemon pushes.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list: the default list type (its children are Docker schema 2).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI gzip layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The OCI empty descriptor (`{}`): the config of artifact manifests.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// `Accept` for manifest HEAD/GET: every type we can read, so the registry neither
/// hides OCI content nor down-converts a Docker list to schema 1.
pub const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.oci.image.manifest.v1+json";

/// Whether `media_type` names a multi-platform list (Docker list or OCI index).
pub fn is_list(media_type: &str) -> bool {
    matches!(media_type, DOCKER_MANIFEST_LIST | OCI_INDEX)
}

/// Whether `media_type` names a single-platform image manifest.
pub fn is_image_manifest(media_type: &str) -> bool {
    matches!(media_type, DOCKER_MANIFEST | OCI_MANIFEST)
}

/// Drops parameters (`; charset=utf-8`) and whitespace from a `Content-Type` value.
pub fn essence(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// Which list format `publish_index` writes: the caller chooses (qus writes an OCI index
/// unless `--media-types docker`), and a list's children are of its family.
///
/// The type's default is the Docker manifest list, the family a daemon's push gives and
/// what every client of the Docker 20.10 era expects. distribution 2.8 stores both
/// formats; an OCI index is only served to clients whose `Accept` lists it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ListKind {
    /// `application/vnd.docker.distribution.manifest.list.v2+json`.
    #[default]
    DockerManifestList,
    /// `application/vnd.oci.image.index.v1+json`.
    OciIndex,
}

impl ListKind {
    /// The media type written in the list's `mediaType` field and `Content-Type`.
    pub fn media_type(self) -> &'static str {
        match self {
            ListKind::DockerManifestList => DOCKER_MANIFEST_LIST,
            ListKind::OciIndex => OCI_INDEX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn essence_strips_parameters() {
        assert_eq!(
            essence("application/json; charset=utf-8"),
            "application/json"
        );
        assert_eq!(
            essence(" application/vnd.oci.image.index.v1+json "),
            OCI_INDEX
        );
    }

    #[test]
    fn accept_lists_every_manifest_type() {
        for t in [
            DOCKER_MANIFEST,
            DOCKER_MANIFEST_LIST,
            OCI_MANIFEST,
            OCI_INDEX,
        ] {
            assert!(MANIFEST_ACCEPT.split(", ").any(|a| a == t), "{t}");
        }
    }

    #[test]
    fn kinds() {
        assert!(is_list(ListKind::default().media_type()));
        assert!(is_list(ListKind::OciIndex.media_type()));
        assert!(is_image_manifest(DOCKER_MANIFEST));
        assert!(!is_image_manifest(OCI_INDEX));
    }
}
