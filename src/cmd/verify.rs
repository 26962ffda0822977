//! `qus verify`: rebuild from the pins what a registry should hold and compare every tag,
//! digest by digest. Reproducible images make this a check anyone can run: the same pins
//! give the same bytes on any machine, so a tag whose digest differs was not made from
//! them (or by another qus, or with other media types).

use crate::attest::sign::PublicKey;
use crate::attest::verify::SupplyCheck;
use crate::image::{self, Image, MediaTypes, Store};
use crate::options::RegistryOptions;
use crate::packages::SourceOptions;
use crate::plan::Plan;
use crate::sink::registry::Registry;
use crate::ui::progress::Progress;
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
    /// With `--key`: the signature, SBOM and provenance checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    supply: Option<SupplyCheck>,
}

impl Row {
    /// Whether the tag is as it should be (and, with `--key`, signed and attested).
    fn good(&self) -> bool {
        self.status == "identical" && self.supply.as_ref().is_none_or(SupplyCheck::ok)
    }

    /// What is wrong, for the table and the warnings.
    fn problem(&self) -> Option<String> {
        self.first_difference
            .clone()
            .or_else(|| self.supply.as_ref().and_then(SupplyCheck::problem))
    }
}

/// `qus verify`.
pub(crate) async fn verify_cmd(
    plan: &Plan,
    src: &SourceOptions,
    registry: &RegistryOptions,
    media: MediaTypes,
    key: Option<&PublicKey>,
    json: bool,
    progress: &Progress,
) -> anyhow::Result<ExitCode> {
    let reg = crate::cmd::release::connect_registry(plan, registry, progress).await?;
    let store = Store::open(&src.cache)?;
    let all: Vec<_> = plan.images.iter().collect();
    let inputs = crate::packages::prepare(&plan.packages_for(&all), src, progress).await?;
    let images = image::write(plan, &all, &inputs, &store, media, src.cpus, progress).await?;
    let lists = crate::image::lists::lists(
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
    let mut rows: Vec<Row> = rows.into_iter().collect::<anyhow::Result<_>>()?;
    if let Some(key) = key {
        let checks: Vec<anyhow::Result<Option<SupplyCheck>>> = futures::stream::iter(&expected)
            .map(|(tag, _, want)| {
                let (reg, heads) = (&reg, &heads);
                async move {
                    let Some(head) = heads.get(tag) else {
                        return Ok(None);
                    };
                    let image = match want {
                        Expected::Image(_) => plan.image(tag).map(|i| (plan, i)),
                        Expected::List(_) => None,
                    };
                    Ok(Some(
                        crate::attest::verify::check(reg, key, &head.digest, image).await?,
                    ))
                }
            })
            .buffered(8)
            .collect()
            .await;
        for (row, check) in rows.iter_mut().zip(checks) {
            row.supply = check?;
        }
    }
    let bad = rows.iter().filter(|r| !r.good()).count();
    if json {
        crate::ui::output::out_json(&serde_json::json!({ "tags": rows }))?;
    } else {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let mut row = vec![r.reference.clone(), r.status.to_string()];
                if let Some(s) = &r.supply {
                    row.push(if s.ok() { "ok" } else { "FAILED" }.to_string());
                }
                row.push(r.problem().unwrap_or_default());
                row
            })
            .collect();
        let header: &[&str] = if key.is_some() {
            &["TAG", "STATUS", "SIGNED+ATTESTED", "FIRST PROBLEM"]
        } else {
            &["TAG", "STATUS", "FIRST DIFFERENCE"]
        };
        crate::ui::output::out(&crate::ui::table::render(header, &table))?;
    }
    if bad == 0 {
        progress.step(format!(
            "all {} tags are identical to what the pins give{}",
            rows.len(),
            if key.is_some() {
                ", signed by the key, and every image has its SBOM and provenance"
            } else {
                ""
            }
        ));
        Ok(ExitCode::SUCCESS)
    } else {
        for r in rows.iter().filter(|r| !r.good()) {
            progress.warn(format!(
                "{}: {}{}",
                r.reference,
                r.status,
                r.problem().map(|d| format!(" ({d})")).unwrap_or_default()
            ));
        }
        progress.step(format!(
            "{bad} of {} tags differ{}",
            rows.len(),
            if key.is_some() {
                " or fail the --key checks"
            } else {
                ""
            }
        ));
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
        supply: None,
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
