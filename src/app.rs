//! One function per subcommand; `main` calls [`run`].

use crate::cli::{Cli, Command, MatrixArgs, PlanArgs};
use crate::config::Config;
use crate::plan::{self, Plan, Recipe, Selection};
use crate::progress::Progress;
use crate::{entrypoint, table};
use anyhow::Context as _;
use std::path::Path;
use std::process::ExitCode;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let progress = Progress::new(cli.quiet, cli.verbose);
    match cli.command {
        Command::Plan(a) => plan_cmd(cli.config.as_deref(), &a),
        Command::Build(a) => {
            let plan = make_plan(cli.config.as_deref(), &a.matrix)?;
            runtime()?.block_on(crate::pipeline::build_cmd(&plan, &a, &progress))
        }
        Command::Release(a) => {
            let plan = make_plan(cli.config.as_deref(), &a.build.matrix)?;
            runtime()?.block_on(crate::release::release_cmd(&plan, &a, &progress))
        }
        Command::Publish(a) => {
            let plan = make_plan(cli.config.as_deref(), &a.matrix)?;
            runtime()?.block_on(crate::release::publish_cmd(&plan, &a, &progress))
        }
        Command::Assets(a) => {
            let mut m = a.matrix.clone();
            if m.sources.is_none() {
                m.sources = Some(vec![Config::load(cli.config.as_deref())?.default]);
            }
            let plan = make_plan(cli.config.as_deref(), &m)?;
            runtime()?.block_on(crate::pipeline::assets_cmd(&plan, &a, &progress))
        }
        Command::Lock(a) => {
            runtime()?.block_on(crate::maint::lock_cmd(cli.config.as_deref(), &a, &progress))
        }
        Command::Check(a) => runtime()?.block_on(crate::maint::check_cmd(
            cli.config.as_deref(),
            &a,
            &progress,
        )),
        Command::Report(a) => {
            let plan = make_plan(cli.config.as_deref(), &a.matrix)?;
            crate::maint::report_cmd(&plan, &a)
        }
        Command::Register(a) => Ok(crate::register::register_cmd(&a.args)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The facts about this qus build that every image's inputs digest includes.
pub fn recipe() -> Recipe {
    Recipe {
        qus_version: crate::VERSION.to_string(),
        template_sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            crate::context::TEMPLATE.as_bytes(),
        )),
        entrypoint_sha256: entrypoint::digest(),
        epoch: source_date_epoch(),
    }
}

/// SOURCE_DATE_EPOCH when set to a number, else 0: the mtime of every file in every layer.
pub fn source_date_epoch() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Loads the config and plans the selection.
pub fn make_plan(config: Option<&Path>, m: &MatrixArgs) -> anyhow::Result<Plan> {
    let mut cfg = Config::load(config)?;
    if let Some(repo) = &m.repo {
        crate::validate::validate_repo(repo).map_err(|e| anyhow::anyhow!("--repo: {e}"))?;
        cfg.repo = repo.clone();
    }
    let sel = Selection {
        hosts: m.hosts(),
        targets: m.targets.clone(),
        sources: m.sources.clone(),
    };
    Ok(plan::plan(&cfg, &sel, &recipe())?)
}

fn plan_cmd(config: Option<&Path>, a: &PlanArgs) -> anyhow::Result<ExitCode> {
    let plan = make_plan(config, &a.matrix)?;
    if a.json {
        crate::output::out_json(&plan)?;
        return Ok(ExitCode::SUCCESS);
    }
    crate::output::out(&plan_table(&plan))?;
    Ok(ExitCode::SUCCESS)
}

/// The human-readable plan.
pub fn plan_table(plan: &Plan) -> String {
    let rows: Vec<Vec<String>> = plan
        .images
        .iter()
        .map(|i| {
            vec![
                i.reference.clone(),
                i.platform.to_string(),
                plan::kind_name(i.kind).to_string(),
                if i.targets.is_empty() {
                    "-".into()
                } else {
                    i.targets.join(",")
                },
            ]
        })
        .collect();
    let mut out = table::render(&["IMAGE", "PLATFORM", "KIND", "TARGETS"], &rows);
    out.push('\n');
    let rows: Vec<Vec<String>> = plan
        .manifests
        .iter()
        .map(|m| {
            vec![
                m.reference.clone(),
                m.entries
                    .iter()
                    .map(|e| e.platform.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect();
    out.push_str(&table::render(&["MANIFEST LIST", "PLATFORMS"], &rows));
    for s in &plan.skipped {
        out.push_str(&format!("skipped: {s}\n"));
    }
    out.push_str(&format!(
        "{} images, {} manifest lists\n",
        plan.images.len(),
        plan.manifests.len()
    ));
    out
}
