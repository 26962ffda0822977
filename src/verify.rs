//! `qus verify`: rebuild from the pins what a registry should hold and compare every tag,
//! digest by digest. Reproducible images make this a check anyone can run: the same pins
//! give the same bytes on any machine, so a tag whose digest differs was not made from
//! them (or by another qus, or with other media types).

use crate::image::{self, Image, MediaTypes, Store};
use crate::options::{RegistryOptions, SourceOptions};
use crate::plan::Plan;
use crate::progress::Progress;
use crate::sink::registry::Registry;
use futures::StreamExt;
use qus_registry::{Descriptor, Digest, ImageManifest, Index};
use serde::Serialize;
use std::collections::HashMap;
use std::process::ExitCode;

/// Exit status when a tag differs (as `qus check` uses 1 for "something to do").
const DIFFERENT: u8 = 1;

/// One tag compared.
#[derive(Debug, Serialize)]
struct Row {
    reference: String,
    /// `identical`, `different` or `missing`.
    status: &'static str,
    expected: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    found: Option<String>,
    /// For a difference: the first blob or entry that differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    first_difference: Option<String>,
}

/// `qus verify`.
pub(crate) async fn verify_cmd(
    plan: &Plan,
    src: &SourceOptions,
    registry: &RegistryOptions,
    media: MediaTypes,
    json: bool,
    progress: &Progress,
) -> anyhow::Result<ExitCode> {
    let reg = crate::release::connect_registry(plan, registry).await?;
    let store = Store::open(&src.cache)?;
    let all: Vec<_> = plan.images.iter().collect();
    let inputs = crate::packages::prepare(&plan.packages_for(&all), src, progress).await?;
    let images = image::write(plan, &all, &inputs, &store, media, progress).await?;
    let lists = crate::lists::lists(
        plan,
        &images
            .iter()
            .map(|i| (i.tag.clone(), i.descriptor.clone()))
            .collect(),
        media,
    )?;
    let mut expected: Vec<(String, String, Expected)> = images
        .iter()
        .map(|i| (i.tag.clone(), i.reference.clone(), Expected::Image(i)))
        .collect();
    for (m, index) in &lists {
        expected.push((m.tag.clone(), m.reference.clone(), Expected::List(index)));
    }
    let tags: Vec<String> = expected.iter().map(|(t, _, _)| t.clone()).collect();
    let heads = reg.heads(&tags, 16).await?;
    let rows: Vec<anyhow::Result<Row>> = futures::stream::iter(&expected)
        .map(|(tag, reference, want)| compare(&reg, tag, reference, want, heads.get(tag)))
        .buffered(8)
        .collect()
        .await;
    let rows: Vec<Row> = rows.into_iter().collect::<anyhow::Result<_>>()?;
    let bad = rows.iter().filter(|r| r.status != "identical").count();
    if json {
        crate::output::out_json(&serde_json::json!({ "tags": rows }))?;
    } else {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.reference.clone(),
                    r.status.to_string(),
                    r.first_difference.clone().unwrap_or_default(),
                ]
            })
            .collect();
        crate::output::out(&crate::table::render(
            &["TAG", "STATUS", "FIRST DIFFERENCE"],
            &table,
        ))?;
    }
    if bad == 0 {
        progress.step(format!(
            "all {} tags are identical to what the pins give",
            rows.len()
        ));
        Ok(ExitCode::SUCCESS)
    } else {
        for r in rows.iter().filter(|r| r.status != "identical") {
            progress.warn(format!(
                "{}: {}{}",
                r.reference,
                r.status,
                r.first_difference
                    .as_ref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ));
        }
        progress.step(format!("{bad} of {} tags differ", rows.len()));
        Ok(ExitCode::from(DIFFERENT))
    }
}

enum Expected<'a> {
    Image(&'a Image),
    List(&'a Index),
}

impl Expected<'_> {
    fn digest(&self) -> Digest {
        match self {
            Expected::Image(i) => i.descriptor.digest.clone(),
            Expected::List(l) => l.digest(),
        }
    }
}

async fn compare(
    reg: &Registry,
    tag: &str,
    reference: &str,
    want: &Expected<'_>,
    head: Option<&Descriptor>,
) -> anyhow::Result<Row> {
    let expected = want.digest();
    let mut row = Row {
        reference: reference.to_string(),
        status: "identical",
        expected: expected.to_string(),
        found: head.map(|h| h.digest.to_string()),
        first_difference: None,
    };
    let Some(head) = head else {
        row.status = "missing";
        return Ok(row);
    };
    if head.digest == expected {
        return Ok(row);
    }
    row.status = "different";
    let raw = reg.client.manifest_get(&reg.tag(tag)?).await?;
    row.first_difference = Some(match want {
        Expected::Image(img) => match serde_json::from_slice::<ImageManifest>(&raw.bytes) {
            Err(_) => format!("the tag holds a {}, not an image manifest", raw.media_type),
            Ok(found) => first_blob_difference(img, &found),
        },
        Expected::List(index) => match serde_json::from_slice::<Index>(&raw.bytes) {
            Err(_) => format!("the tag holds a {}, not a list", raw.media_type),
            Ok(found) => first_entry_difference(index, &found),
        },
    });
    Ok(row)
}

/// The first blob of `found` that is not what `want` has, config first, then layers.
fn first_blob_difference(want: &Image, found: &ImageManifest) -> String {
    if found.media_type != want.descriptor.media_type {
        return format!(
            "manifest media type {} instead of {}",
            found.media_type, want.descriptor.media_type
        );
    }
    if found.config.digest != want.config_digest {
        return format!(
            "config {} instead of {}",
            found.config.digest, want.config_digest
        );
    }
    for (i, l) in want.layers.iter().enumerate() {
        match found.layers.get(i) {
            None => return format!("layer {} ({}) is missing", i + 1, l.what),
            Some(d) if d.digest != l.memo.digest => {
                return format!(
                    "layer {} ({}) is {} instead of {}",
                    i + 1,
                    l.what,
                    d.digest,
                    l.memo.digest
                )
            }
            Some(_) => {}
        }
    }
    if found.layers.len() > want.layers.len() {
        return format!("{} extra layers", found.layers.len() - want.layers.len());
    }
    "the manifest's bytes differ (same config and layers)".into()
}

/// The first platform whose entry differs between two lists.
fn first_entry_difference(want: &Index, found: &Index) -> String {
    let by_platform = |i: &Index| -> HashMap<String, Digest> {
        i.manifests
            .iter()
            .map(|d| {
                (
                    d.platform.as_ref().map_or("?".into(), |p| p.to_string()),
                    d.digest.clone(),
                )
            })
            .collect()
    };
    let (w, f) = (by_platform(want), by_platform(found));
    let mut platforms: Vec<&String> = w.keys().chain(f.keys()).collect();
    platforms.sort();
    platforms.dedup();
    for p in platforms {
        match (w.get(p), f.get(p)) {
            (Some(a), Some(b)) if a != b => return format!("{p}: {b} instead of {a}"),
            (Some(_), None) => return format!("{p} is missing"),
            (None, Some(_)) => return format!("{p} should not be there"),
            _ => {}
        }
    }
    format!(
        "the list's bytes differ ({} instead of {})",
        found.media_type, want.media_type
    )
}
