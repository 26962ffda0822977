//! publish_index against a real distribution 2.8, checked with skopeo.

use bytes::Bytes;
use qus_registry::testkit::{TestRegistry, TinyImage};
use qus_registry::{media, Digest, Error, Index, IndexEntry, ListKind, Outcome, Platform};

use crate::support::{client, platforms, push_images, skopeo_raw};

#[tokio::test]
async fn publishes_three_platforms_then_leaves_an_unchanged_list_alone() {
    let registry = TestRegistry::start().unwrap();
    let client = client();
    let (entries, pushed) = push_images(&client, &registry, "qus", "d7.2").await;
    let target = registry.reference("qus:d7.2");

    let outcome = client
        .publish_index(&target, &entries, ListKind::default())
        .await
        .unwrap();
    let Outcome::Written { digest } = outcome.clone() else {
        panic!("first publish must write: {outcome:?}");
    };

    // The oracle: skopeo reads back exactly the list we computed.
    let raw = skopeo_raw(&target, None);
    assert_eq!(Digest::sha256(&raw), digest);
    let list: Index = serde_json::from_slice(&raw).unwrap();
    assert_eq!(list.media_type, media::DOCKER_MANIFEST_LIST);
    assert_eq!(list.schema_version, 2);
    let mut seen: Vec<(String, Digest)> = list
        .manifests
        .iter()
        .map(|d| {
            assert_eq!(d.media_type, media::DOCKER_MANIFEST);
            (d.platform.as_ref().unwrap().to_string(), d.digest.clone())
        })
        .collect();
    seen.sort();
    let mut expected: Vec<(String, Digest)> = platforms()
        .into_iter()
        .zip(&pushed)
        .map(|((_, p), d)| (p.to_string(), d.digest.clone()))
        .collect();
    expected.sort();
    assert_eq!(seen, expected);
    assert_eq!(
        seen.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
        ["linux/amd64", "linux/arm/v7", "linux/arm64/v8"]
    );

    // Our own reader agrees, byte for byte.
    let got = client.manifest_get(&target).await.unwrap();
    assert_eq!(got.bytes, Bytes::from(raw));
    assert_eq!(got.media_type, media::DOCKER_MANIFEST_LIST);

    // Same entries, even in another order: no PUT at all.
    let puts_before = registry.puts();
    let mut reversed = entries.clone();
    reversed.reverse();
    for e in [&entries, &reversed] {
        let again = client
            .publish_index(&target, e, ListKind::default())
            .await
            .unwrap();
        assert_eq!(
            again,
            Outcome::Unchanged {
                digest: digest.clone()
            }
        );
    }
    assert_eq!(
        registry.puts(),
        puts_before,
        "an unchanged list must not be rewritten"
    );
}

#[tokio::test]
async fn oci_index_is_accepted_and_served_with_its_media_type() {
    let registry = TestRegistry::start().unwrap();
    let client = client();
    let (entries, _) = push_images(&client, &registry, "qus", "oci").await;
    let target = registry.reference("qus:oci");
    let outcome = client
        .publish_index(&target, &entries, ListKind::OciIndex)
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Written { .. }));
    let head = client.manifest_head(&target).await.unwrap().unwrap();
    assert_eq!(head.media_type, media::OCI_INDEX);
    assert_eq!(&head.digest, outcome.digest());
    let raw = skopeo_raw(&target, None);
    let list: Index = serde_json::from_slice(&raw).unwrap();
    assert_eq!(list.media_type, media::OCI_INDEX);
    assert_eq!(list.manifests.len(), 3);
    // The other kind under the same tag is a different document: it is rewritten.
    let docker = client
        .publish_index(&target, &entries, ListKind::DockerManifestList)
        .await
        .unwrap();
    assert!(matches!(docker, Outcome::Written { .. }));
    assert_ne!(docker.digest(), outcome.digest());
}

#[tokio::test]
async fn a_missing_entry_writes_nothing_and_keeps_the_previous_list() {
    let registry = TestRegistry::start().unwrap();
    let client = client();
    let (entries, _) = push_images(&client, &registry, "qus", "v1").await;
    let target = registry.reference("qus:latest");
    let first = client
        .publish_index(&target, &entries[..2], ListKind::default())
        .await
        .unwrap();
    let puts_before = registry.puts();

    // Never pushed: by digest, and by tag.
    let ghost = TinyImage::new(&Platform::parse("linux/s390x").unwrap(), "ghost");
    let by_digest = IndexEntry::new(ghost.digest(), ghost.platform.clone());
    let by_tag = IndexEntry::new(registry.reference("qus:s390x-v1"), ghost.platform.clone());
    for (missing, name) in [
        (by_digest, ghost.digest().to_string()),
        (by_tag, registry.reference("qus:s390x-v1").to_string()),
    ] {
        let mut wanted = entries.clone();
        wanted.push(missing);
        let err = client
            .publish_index(&target, &wanted, ListKind::default())
            .await
            .unwrap_err();
        match &err {
            Error::MissingManifest { target: t, entry } => {
                assert_eq!(t, &target.to_string());
                assert_eq!(entry, &name);
            }
            other => panic!("expected MissingManifest, got {other:?}"),
        }
        assert!(err.to_string().contains(&name), "{err}");
    }
    assert_eq!(registry.puts(), puts_before, "nothing may be written");
    let still = client.manifest_head(&target).await.unwrap().unwrap();
    assert_eq!(&still.digest, first.digest());
}

#[tokio::test]
async fn a_platform_that_disagrees_with_the_image_config_is_refused() {
    let registry = TestRegistry::start().unwrap();
    let client = client();
    let (mut entries, _) = push_images(&client, &registry, "qus", "x").await;
    // An arm/v6 image declared as arm/v7 (the arm32v7 entry replaced).
    let v6 = TinyImage::new(&Platform::parse("linux/arm/v6").unwrap(), "v6");
    let liar = registry.reference("qus:arm32v6-x");
    v6.push(&client, &liar).await.unwrap();
    entries[2] = IndexEntry::new(liar.clone(), Platform::parse("linux/arm/v7").unwrap());
    let target = registry.reference("qus:x");
    let puts_before = registry.puts();
    let err = client
        .publish_index(&target, &entries, ListKind::default())
        .await
        .unwrap_err();
    match &err {
        Error::PlatformMismatch {
            target: t,
            entry,
            declared,
            config,
        } => {
            assert_eq!(t, &target.to_string());
            assert_eq!(entry, &liar.to_string());
            assert_eq!(declared, "linux/arm/v7");
            assert_eq!(config, "linux/arm/v6");
        }
        other => panic!("expected PlatformMismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("qus:x"), "{err}");
    // Again with the same client: the platform it remembers for that manifest is the one
    // its config names, not the one declared.
    let again = client
        .publish_index(&target, &entries, ListKind::default())
        .await
        .unwrap_err();
    assert!(
        matches!(again, Error::PlatformMismatch { ref config, .. } if config == "linux/arm/v6"),
        "{again:?}"
    );
    assert_eq!(registry.puts(), puts_before);
    assert!(client.manifest_head(&target).await.unwrap().is_none());
}

#[tokio::test]
async fn entries_from_elsewhere_duplicates_and_nested_lists_are_refused() {
    let registry = TestRegistry::start().unwrap();
    let client = client();
    let (entries, _) = push_images(&client, &registry, "qus", "y").await;
    let target = registry.reference("qus:y");
    let (_, platform) = platforms().remove(0);

    let other_repo = registry.reference("other:amd64-y");
    let err = client
        .publish_index(
            &target,
            &[IndexEntry::new(other_repo, platform.clone())],
            ListKind::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidEntry { .. }), "{err:?}");

    let mut dup = entries.clone();
    dup.push(entries[0].clone());
    let err = client
        .publish_index(&target, &dup, ListKind::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("same platform"), "{err}");

    client
        .publish_index(&target, &entries, ListKind::default())
        .await
        .unwrap();
    let err = client
        .publish_index(
            &registry.reference("qus:nested"),
            &[IndexEntry::new(target.clone(), platform.clone())],
            ListKind::default(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a single-platform"), "{err}");

    let err = client
        .publish_index(&target, &[], ListKind::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidEntry { .. }), "{err:?}");
}

#[tokio::test]
async fn heads_gets_and_uploads_are_verified_and_idempotent() {
    let registry = TestRegistry::start().unwrap();
    let client = client();
    let image = TinyImage::new(&Platform::parse("linux/amd64").unwrap(), "ops");
    let tag = registry.reference("ops:t");

    assert!(client.manifest_head(&tag).await.unwrap().is_none());
    assert!(!client
        .blob_exists(&tag, &Digest::sha256(&image.layer))
        .await
        .unwrap());
    match client.manifest_get(&tag).await.unwrap_err() {
        Error::NotFound { code, .. } => assert!(
            matches!(code.as_deref(), Some("MANIFEST_UNKNOWN" | "NAME_UNKNOWN")),
            "{code:?}"
        ),
        e => panic!("{e:?}"),
    }

    let pushed = image.push(&client, &tag).await.unwrap();
    assert!(client
        .blob_exists(&tag, &Digest::sha256(&image.layer))
        .await
        .unwrap());
    let head = client.manifest_head(&tag).await.unwrap().unwrap();
    assert_eq!(head, pushed);
    assert_eq!(head.size, image.manifest.len() as u64);
    let by_digest = client
        .manifest_get(&tag.with_digest(pushed.digest.clone()))
        .await
        .unwrap();
    assert_eq!(by_digest.bytes, image.manifest);
    assert_eq!(by_digest.media_type, media::DOCKER_MANIFEST);
    assert_eq!(
        client
            .blob_get(&tag, &Digest::sha256(&image.config))
            .await
            .unwrap(),
        image.config
    );

    // Second push of the same image: both blobs skipped, no blob upload PUT.
    let stats = registry.stats().unwrap();
    assert_eq!(stats.blobs, 3, "config + layer + manifest");
    let puts = registry.puts();
    let again = client
        .upload_blob(&tag, media::DOCKER_LAYER_GZIP, image.layer.clone())
        .await
        .unwrap();
    assert!(again.skipped);
    assert_eq!(registry.puts(), puts);
    assert_eq!(registry.stats().unwrap(), stats);
}
