//! The registry goes away mid-way; after a restart the same work completes with the
//! same digests as a clean run.

use qus_registry::testkit::{TestRegistry, TinyImage};
use qus_registry::{Error, IndexEntry, ListKind, Outcome};

use crate::support::{client, platforms, push_images};

#[tokio::test]
async fn stopped_midway_is_unreachable_and_a_restart_converges_on_the_clean_digest() {
    // The clean run, on its own registry.
    let clean_registry = TestRegistry::start().unwrap();
    let clean_client = client();
    let (clean_entries, _) = push_images(&clean_client, &clean_registry, "qus", "d7.2").await;
    let clean = clean_client
        .publish_index(
            &clean_registry.reference("qus:d7.2"),
            &clean_entries,
            ListKind::default(),
        )
        .await
        .unwrap();

    // The faulty run: two images pushed, then the registry dies.
    let mut registry = TestRegistry::start().unwrap();
    let client = client();
    let target = registry.reference("qus:d7.2");
    let mut entries = Vec::new();
    let all = platforms();
    for (host, platform) in &all[..2] {
        let r = registry.reference(&format!("qus:{host}-d7.2"));
        TinyImage::new(platform, &format!("{host} d7.2"))
            .push(&client, &r)
            .await
            .unwrap();
        entries.push(IndexEntry::new(r, platform.clone()));
    }
    registry.stop();

    let (host, platform) = &all[2];
    let third_ref = registry.reference(&format!("qus:{host}-d7.2"));
    let third = TinyImage::new(platform, &format!("{host} d7.2"));
    let err = third.push(&client, &third_ref).await.unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    assert!(err.is_temporary());
    let text = err.to_string();
    assert!(text.contains(&registry.host()), "{text}");
    assert!(text.contains("is the registry running"), "{text}");

    entries.push(IndexEntry::new(third_ref.clone(), platform.clone()));
    let err = client
        .publish_index(&target, &entries, ListKind::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");

    // Same port, same storage: nothing half-written is visible, and re-running completes.
    registry.restart().unwrap();
    assert!(client.manifest_head(&target).await.unwrap().is_none());
    let err = client
        .publish_index(&target, &entries, ListKind::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MissingManifest { .. }), "{err:?}");
    third.push(&client, &third_ref).await.unwrap();
    let outcome = client
        .publish_index(&target, &entries, ListKind::default())
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Outcome::Written {
            digest: clean.digest().clone()
        }
    );
    assert_eq!(registry.stats().unwrap(), clean_registry.stats().unwrap());
}
