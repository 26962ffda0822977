//! `qus lock` (the lookups are `maint::index`'s, the decisions `maint::lock`'s).

use crate::config::lockfile::LockFile;
use crate::config::Config;
use crate::maint::{index, lock, need_mirror, wanted};
use crate::ui::progress::Progress;
use anyhow::{anyhow, Context as _};
use qus_source::debian_index::Expiry;
use std::path::Path;
use std::process::ExitCode;

/// `qus lock`: pin the newest served packages of the configured suites into the lock file.
pub(crate) async fn lock_cmd(
    config: Option<&Path>,
    mirror: Option<String>,
    expiry: Expiry,
    json: bool,
    progress: &Progress,
) -> anyhow::Result<ExitCode> {
    let input = Config::load_for_lock(config)?;
    if let Some(why) = &input.ignored_lock {
        progress.warn(format!("ignoring the current lock, it is rewritten: {why}"));
    }
    let lock_path = &input.lock_path;
    if config.is_none() && !Path::new(crate::config::DEFAULT_CONFIG_NAME).is_file() {
        return Err(anyhow!(
            "the built-in config's lock goes to {} in a qus checkout, and there is no {} \
             here: run `qus lock` in the checkout, or pass --config FILE",
            lock_path.display(),
            crate::config::DEFAULT_CONFIG_NAME
        ));
    }
    let wanted = wanted(&input.config);
    let mirror = need_mirror(mirror)?;
    let looked = index::lookup(&mirror, &wanted, expiry, progress).await?;
    let choices = looked.choices(&wanted);
    let mut new = lock::lock_file(&wanted, &choices)
        .map_err(|e| anyhow!("{e}; nothing was written to {}", lock_path.display()))?;
    new.suites = looked.suites;
    // The new lock must make the config whole before it replaces the old one.
    Config::load_with_lock(config, &new, lock_path).with_context(|| {
        format!(
            "the packages {mirror} offers leave the config incomplete; nothing was written to {}",
            lock_path.display()
        )
    })?;
    // What is written must read back: a mirror's index is input like any other.
    // The header names the config by file name only: the lock is committed, and an
    // absolute path would be one maintainer's checkout.
    let config_name = match config {
        Some(p) => p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| input.config.origin.clone()),
        None => crate::config::DEFAULT_CONFIG_NAME.to_string(),
    };
    let rendered = new.render(&config_name);
    LockFile::parse(&rendered, &lock_path.display().to_string())
        .context("the mirror's index gave a value qus cannot pin")?;
    let changes = lock::changes(&input.config, &new, &wanted, &choices);
    for w in wanted
        .iter()
        .filter(|w| new.is_unavailable(&w.role, w.host))
    {
        progress.step(format!(
            "note: {} {} no {} for {} ({}): {} {} is skipped",
            w.suites.join(", "),
            if w.suites.len() == 1 { "has" } else { "have" },
            w.package,
            w.host,
            w.host.debian(),
            w.role,
            w.host
        ));
    }
    let old_text = std::fs::read_to_string(lock_path).ok();
    let written = old_text.as_deref() != Some(rendered.as_str());
    if written {
        new.write(lock_path, &config_name)?;
        progress.step(format!(
            "wrote {} ({} pins, {} changed)",
            lock_path.display(),
            new.packages.len(),
            changes
                .iter()
                .filter(|c| c.status != lock::Status::Unchanged)
                .count()
        ));
    } else {
        progress.step(format!("{} is up to date", lock_path.display()));
    }
    if json {
        let doc = lock::json(&lock_path.display().to_string(), written, &changes, &new);
        crate::ui::output::out_json(&doc)?;
    } else {
        crate::ui::output::out(&lock::table(&changes))?;
    }
    Ok(ExitCode::SUCCESS)
}
