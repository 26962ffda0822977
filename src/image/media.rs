//! Which media types qus writes: a choice made once per run (`--media-types`) and kept
//! for every manifest, config, layer and list of it, so a tag never mixes the families.

use qus_registry::media;
use qus_registry::ListKind;

/// Which media types manifests, configs, layers and lists carry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum MediaTypes {
    /// OCI image spec types: what zot and other OCI-only registries require, and what OCI
    /// 1.1 referrers (SBOMs, provenance) attach to; Docker ≥ 17.07 and every current
    /// registry read them.
    #[default]
    Oci,
    /// Docker v2 schema 2: for the registries and clients that predate OCI.
    Docker,
}

impl MediaTypes {
    /// The image manifest type.
    pub(crate) fn manifest(self) -> &'static str {
        match self {
            MediaTypes::Oci => media::OCI_MANIFEST,
            MediaTypes::Docker => media::DOCKER_MANIFEST,
        }
    }

    /// The image config type.
    pub(crate) fn config(self) -> &'static str {
        match self {
            MediaTypes::Oci => media::OCI_CONFIG,
            MediaTypes::Docker => media::DOCKER_CONFIG,
        }
    }

    /// The gzip layer type.
    pub(crate) fn layer(self) -> &'static str {
        match self {
            MediaTypes::Oci => media::OCI_LAYER_GZIP,
            MediaTypes::Docker => media::DOCKER_LAYER_GZIP,
        }
    }

    /// The list type.
    pub(crate) fn list(self) -> ListKind {
        match self {
            MediaTypes::Oci => ListKind::OciIndex,
            MediaTypes::Docker => ListKind::DockerManifestList,
        }
    }

    /// `oci` or `docker`, as the flag spells it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            MediaTypes::Oci => "oci",
            MediaTypes::Docker => "docker",
        }
    }
}
