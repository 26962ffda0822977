//! `qus publish`: the lists alone (`qus release` writes them after its images).

use super::release::{connect_registry, finish};
use crate::attest::attach;
use crate::attest::sign::Key;
use crate::image::MediaTypes;
use crate::options::RegistryOptions;
use crate::outcome::{collect, Summary};
use crate::plan::Plan;
use crate::sink::registry::{put_lists, HEADS_IN_FLIGHT, LISTS_IN_FLIGHT};
use crate::ui::progress::Progress;
use anyhow::{anyhow, Context as _};
use futures::StreamExt;
use qus_registry::IndexEntry;
use std::process::ExitCode;

/// `qus publish`: the lists over per-host images already in the registry (the last job of
/// a CI matrix). Each entry is checked present and of its platform by the registry client.
pub(crate) async fn publish_cmd(
    plan: &Plan,
    registry: &RegistryOptions,
    media: MediaTypes,
    sign_key: Option<&Key>,
    json: bool,
    progress: &Progress,
) -> anyhow::Result<ExitCode> {
    let reg = connect_registry(plan, registry, progress).await?;
    let tags: Vec<String> = plan.images.iter().map(|i| i.tag.clone()).collect();
    let heads = reg.heads(&tags, HEADS_IN_FLIGHT).await?;
    let mut summary = Summary::default();
    // Every entry verified present and of its platform, each list on its own: a list with an
    // entry missing is an error, the others are published.
    let prepared: Vec<anyhow::Result<(&crate::plan::ManifestPlan, qus_registry::Index)>> =
        futures::stream::iter(&plan.manifests)
            .map(|m| {
                let (reg, heads) = (&reg, &heads);
                async move {
                    let target = reg.tag(&m.tag)?;
                    let mut entries = Vec::new();
                    for e in &m.entries {
                        let d = heads.get(&e.tag).ok_or_else(|| {
                            anyhow!(
                                "{}: its entry {} is not in the registry; push it first",
                                m.reference,
                                e.tag
                            )
                        })?;
                        entries.push(IndexEntry::new(d.digest.clone(), e.platform.clone()));
                    }
                    let index = reg
                        .client
                        .prepare_index(&target, &entries, media.list())
                        .await
                        .with_context(|| format!("publishing {}", m.reference))?
                        .index;
                    Ok((m, index))
                }
            })
            .buffered(LISTS_IN_FLIGHT)
            .collect()
            .await;
    let mut lists = Vec::new();
    let mut result = collect(prepared, &mut lists);
    let put = put_lists(&reg, plan, &lists, &mut summary, progress).await;
    result = result.and(put);
    if let (Ok(()), Some(key)) = (&result, sign_key) {
        let targets: anyhow::Result<Vec<(String, qus_registry::Digest)>> = summary
            .lists
            .iter()
            .map(|l| Ok((l.reference.clone(), qus_registry::Digest::parse(&l.digest)?)))
            .collect();
        result = match targets {
            Ok(t) => attach::sign_all(&reg, key, &t, &mut summary.supply, progress).await,
            Err(e) => Err(e),
        };
    }
    let result = result.and_then(|()| summary.shortfall.error("images").map_or(Ok(()), Err));
    finish(summary, result, json, progress)
}
