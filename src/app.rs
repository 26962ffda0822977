//! The edge: flags and the environment resolved once into options, then a `cmd` function
//! per subcommand; `main` calls [`run`].

use crate::attest::sign::{Key, PublicKey};
use crate::attest::{BuildContext, NamedDigest, DEFAULT_BUILDER_ID};
use crate::cli::{
    AssetsArgs, BuildArgs, BuildCmdArgs, BuilderArg, Cli, Command, LoadArg, MatrixArgs, MediaArgs,
    MediaTypesArg, MirrorArgs, ProgressArg, RegisterArgs, RegistryArgs, ReleaseArgs, SignArgs,
    SourceArgs, TestArg, VerifyArgs,
};
use crate::cmd::release::{ReleaseFlags, TestScope};
use crate::config::Config;
use crate::engine::{Engine, EngineEnv};
use crate::image::entrypoint;
use crate::image::media::MediaTypes;
use crate::options::{BuildOptions, Builder, LoadScope, RegistryOptions, SupplyOptions};
use crate::packages::SourceOptions;
use crate::plan::{self, Plan, Recipe, Selection};
use crate::ui::progress::Progress;
use anyhow::Context as _;
use qus_registry::Timeouts;
use std::path::Path;
use std::process::ExitCode;

/// Runs a parsed command line.
pub(crate) fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let progress = Progress::with_mode(
        cli.quiet,
        cli.verbose,
        match cli.progress {
            ProgressArg::Auto => crate::ui::progress::Mode::Auto,
            ProgressArg::Plain => crate::ui::progress::Mode::Plain,
            ProgressArg::Tty => crate::ui::progress::Mode::Tty,
        },
    );
    let config = cli.config.as_deref();
    let context = cli.context.as_deref();
    let names = Names(cli.from_env.clone());
    match cli.command {
        Command::Plan(a) => {
            let plan = make_plan(&Config::load(config)?, &a.matrix, &names)?;
            crate::cmd::plan::plan_cmd(&plan, a.json, a.wide)
        }
        Command::Build(BuildCmdArgs { build: a, load }) => {
            let plan = make_plan(&Config::load(config)?, &a.matrix, &names)?;
            let (src, mut opts) = (
                source_options(&a.source, Timeouts::default())?,
                build_options(&a, context),
            );
            opts.load = load_scope(load, a.oci_layout.is_some())?;
            runtime()?.block_on(crate::cmd::build::build_cmd(
                &plan, &src, &opts, a.json, &progress,
            ))
        }
        Command::Release(a) => release(&a, config, context, &names, &progress),
        Command::Publish(a) => {
            let plan = make_plan(&Config::load(config)?, &a.matrix, &names)?;
            let reg = registry_options(&a.registry, timeouts(&a.registry))?;
            let key = sign_key(&a.sign, &names)?;
            runtime()?.block_on(crate::cmd::publish::publish_cmd(
                &plan,
                &reg,
                media_types(&a.media),
                key.as_ref(),
                a.json,
                &progress,
            ))
        }
        Command::Test(a) => {
            let cfg = Config::load(config)?;
            let plan = make_plan(&cfg, &a.matrix, &names)?;
            let src = source_options(&a.source, Timeouts::default())?;
            runtime()?.block_on(crate::cmd::test::test_cmd(
                &plan,
                &cfg,
                &src,
                &engine(context),
                machine(),
                a.jobs.unwrap_or(src.cpus),
                a.json,
                &progress,
            ))
        }
        Command::Verify(a) => verify(&a, config, &names, &progress),
        Command::Assets(a) => assets(&a, config, &names, &progress),
        Command::Lock(a) => {
            let mirror = debian_mirror(&a.mirror);
            let expiry = expiry(&a.valid_until);
            runtime()?.block_on(crate::cmd::lock::lock_cmd(
                config, mirror, expiry, a.json, &progress,
            ))
        }
        Command::Check(a) => {
            let mirror = debian_mirror(&a.mirror);
            let cfg = Config::load(config)?;
            let expiry = expiry(&a.valid_until);
            runtime()?.block_on(crate::cmd::check::check_cmd(
                &cfg, mirror, expiry, a.json, &progress,
            ))
        }
        Command::Report(a) => {
            let plan = make_plan(&Config::load(config)?, &a.matrix, &names)?;
            crate::cmd::report::report_cmd(&plan, a.json)
        }
        Command::Register(a) => register(&a, config, &progress),
        Command::Completion(a) => {
            write_stdout(&crate::cli::completion_script(a.shell))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            write_stdout(&crate::cli::man_page().context("rendering the man page")?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Docs(_) => {
            write_stdout(crate::cli::docs::commands().as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `qus release`: the plans of every selected source, built, tested, pushed and listed.
fn release(
    a: &ReleaseArgs,
    config: Option<&Path>,
    context: Option<&str>,
    names: &Names,
    progress: &Progress,
) -> anyhow::Result<ExitCode> {
    let cfg = Config::load(config)?;
    let plans = make_plans(&cfg, &a.build.matrix, names)?;
    let timeouts = timeouts(&a.registry);
    let (src, opts) = (
        source_options(&a.build.source, timeouts)?,
        build_options(&a.build, context),
    );
    let reg = registry_options(&a.registry, timeouts)?;
    let supply = SupplyOptions {
        sign_key: sign_key(&a.sign, names)?,
        context: build_context(&cfg, a.builder_id.as_deref(), &a.build.media),
    };
    runtime()?.block_on(crate::cmd::release::release_cmd(
        &plans,
        &cfg,
        &src,
        &opts,
        &reg,
        ReleaseFlags {
            skip_lists: a.skip_lists,
            oci_layout: a.build.oci_layout.clone(),
            layout_only: a.build.oci_layout.is_some()
                && a.build.matrix.repo.is_empty()
                && !names_a_registry(&cfg.repo),
            json: a.build.json,
            test: match a.test {
                TestArg::Native => TestScope::Native,
                TestArg::All => TestScope::All,
                TestArg::None => TestScope::None,
            },
            machine: machine(),
            test_jobs: src.cpus,
            supply,
            released: Vec::new(),
        },
        progress,
    ))
}

/// `qus verify`: every image rebuilt here and compared with what the registry holds.
fn verify(
    a: &VerifyArgs,
    config: Option<&Path>,
    names: &Names,
    progress: &Progress,
) -> anyhow::Result<ExitCode> {
    let plan = make_plan(&Config::load(config)?, &a.matrix, names)?;
    let timeouts = timeouts(&a.registry);
    let src = source_options(&a.source, timeouts)?;
    let reg = registry_options(&a.registry, timeouts)?;
    let key = match &a.key {
        None => None,
        Some(p) => {
            let text = read_text(p, "--key")?;
            Some(
                PublicKey::from_pem(&text, &p.display().to_string())
                    .map_err(|e| crate::exit::usage(format!("--key: {e:#}")))?,
            )
        }
    };
    runtime()?.block_on(crate::cmd::verify::verify_cmd(
        &plan,
        &src,
        &reg,
        media_types(&a.media),
        key.as_ref(),
        a.json,
        progress,
    ))
}

/// `qus assets`: each host's emulators from the source of its unversioned tags.
fn assets(
    a: &AssetsArgs,
    config: Option<&Path>,
    names: &Names,
    progress: &Progress,
) -> anyhow::Result<ExitCode> {
    let cfg = Config::load(config)?;
    let plan = make_plan(&cfg, &a.matrix, names)?;
    // Each host's assets from the source of its unversioned tags, among those selected.
    let sources = plan::newest_among(&cfg, a.matrix.sources.as_deref());
    let src = source_options(&a.source, Timeouts::default())?;
    let opts = crate::cmd::assets::AssetsOptions {
        out: a.out.clone(),
        public_key: sign_key(&a.sign, names)?.map(|k| k.public_pem()),
        qus_binaries: a.qus_binary.clone(),
        json: a.json,
    };
    runtime()?.block_on(crate::cmd::assets::assets_cmd(
        &plan, &sources, &src, &opts, progress,
    ))
}

/// `qus register`, on a host without an engine.
fn register(
    a: &RegisterArgs,
    config: Option<&Path>,
    progress: &Progress,
) -> anyhow::Result<ExitCode> {
    let opts = crate::cmd::register::RegisterOptions {
        install_dir: a
            .install_dir
            .clone()
            .unwrap_or_else(|| crate::cmd::register::DEFAULT_INSTALL_DIR.into()),
        persist: a.persist,
        persist_dir: a
            .persist_dir
            .clone()
            .unwrap_or_else(|| crate::cmd::register::DEFAULT_PERSIST_DIR.into()),
        config: a.config.clone().or_else(|| config.map(Path::to_path_buf)),
        packages_dir: a.source.debs.clone(),
        debian_mirror: debian_mirror(&a.source.mirror),
        fedora_mirror: a.source.fedora_mirror.clone(),
        cache: a.source.cache.clone(),
    };
    crate::cmd::register::register_cmd(&a.args, &opts, progress)
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|_| out.flush())
        .context("writing to stdout")
}

/// This machine's host, from the architecture qus was built for.
fn machine() -> Option<crate::arch::Host> {
    crate::arch::Host::of_rust_arch(std::env::consts::ARCH)
}

/// The CPUs this machine gives qus: the one parallelism setting (`SourceOptions::cpus`).
fn cpus() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// The Debian mirror: the flag (or QUS_MIRROR, which clap reads for it), else the first
/// Debian archive of this machine's apt sources.
fn debian_mirror(m: &MirrorArgs) -> Option<String> {
    crate::packages::mirror::resolve(m.mirror.as_deref(), Path::new("/"))
}

/// How messages name a flag: by the variable its value came from, if it did.
struct Names(Vec<(String, String)>);

impl Names {
    fn of(&self, flag: &str) -> String {
        self.0
            .iter()
            .find(|(f, _)| f == flag)
            .map_or_else(|| flag.to_string(), |(_, var)| var.clone())
    }
}

/// The signing key of `--sign-key` (or QUS_SIGN_KEY), read and parsed here, at the edge.
fn sign_key(a: &SignArgs, names: &Names) -> anyhow::Result<Option<Key>> {
    // An empty QUS_SIGN_KEY (a workflow passes "" for a missing secret) means no key.
    let Some(path) = a.sign_key.as_ref().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(None);
    };
    let flag = names.of("--sign-key");
    let text = read_text(path, &flag)?;
    let key = Key::from_pem(&text, &path.display().to_string())
        .map_err(|e| crate::exit::usage(format!("{flag}: {e:#}")))?;
    Ok(Some(key))
}

fn read_text(path: &Path, flag: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| crate::exit::usage(format!("{flag} {}: {e}", path.display())))
}

/// What the provenance records about this run besides the plan.
fn build_context(cfg: &Config, builder_id: Option<&str>, media: &MediaArgs) -> BuildContext {
    let name = |p: &str| {
        Path::new(p)
            .file_name()
            .map_or_else(|| p.to_string(), |n| n.to_string_lossy().into_owned())
    };
    let (config_sha, lock_sha) = cfg.digests.clone().unwrap_or_default();
    BuildContext {
        builder_id: builder_id
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .unwrap_or(DEFAULT_BUILDER_ID)
            .to_string(),
        qus_version: crate::VERSION.to_string(),
        config: NamedDigest {
            name: name(&cfg.origin),
            sha256: config_sha,
        },
        lock: match (&cfg.lock, lock_sha) {
            (Some(l), Some(sha256)) => Some(NamedDigest {
                name: name(l),
                sha256,
            }),
            _ => None,
        },
        media_types: media_types(media).name().to_string(),
    }
}

fn expiry(a: &crate::cli::ValidUntilArgs) -> qus_source::debian_index::Expiry {
    if a.ignore_valid_until {
        qus_source::debian_index::Expiry::Accept
    } else {
        qus_source::debian_index::Expiry::Refuse
    }
}

fn source_options(a: &SourceArgs, timeouts: Timeouts) -> anyhow::Result<SourceOptions> {
    Ok(SourceOptions {
        packages_dir: a.debs.clone(),
        debian_mirror: debian_mirror(&a.mirror),
        fedora_mirror: a
            .fedora_mirror
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_string),
        cache: match &a.cache {
            Some(c) => c.clone(),
            None => qus_source::Cache::default_root()?,
        },
        cpus: cpus(),
        timeouts,
    })
}

fn build_options(a: &BuildArgs, context: Option<&str>) -> BuildOptions {
    BuildOptions {
        engine: engine(context),
        builder: match a.builder {
            BuilderArg::Qus => Builder::Qus,
            BuilderArg::Dockerfile => Builder::Dockerfile,
        },
        media: media_types(&a.media),
        oci_layout: a.oci_layout.clone(),
        no_cache: a.no_cache,
        force: a.force,
        jobs: a.jobs.unwrap_or_else(cpus).max(1),
        load: LoadScope::All,
    }
}

/// `--load`, resolved against this machine.
fn load_scope(load: LoadArg, layout: bool) -> anyhow::Result<LoadScope> {
    Ok(match load {
        LoadArg::All => LoadScope::All,
        LoadArg::None if !layout => {
            return Err(crate::exit::usage(
                "--load none writes nothing without --oci-layout DIR",
            ))
        }
        LoadArg::None => LoadScope::Hosts(Vec::new()),
        LoadArg::Native => {
            let m = machine().ok_or_else(|| {
                crate::exit::usage(format!(
                    "--load native: this machine ({}) is none of qus's hosts; use --load all \
                     or --load none",
                    std::env::consts::ARCH
                ))
            })?;
            LoadScope::Hosts(crate::arch::Host::all().filter(|h| m.runs(*h)).collect())
        }
    })
}

/// The engine `--context` and the docker CLI's variables and config select; an error is
/// kept until a stage needs the engine, so that a broken context does not stop a command
/// that uses none.
fn engine(context: Option<&str>) -> Engine {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let home = || std::env::var_os("HOME").map(std::path::PathBuf::from);
    let env = EngineEnv {
        context_flag: context.map(str::to_string),
        docker_host: var("DOCKER_HOST"),
        docker_context: var("DOCKER_CONTEXT"),
        tls_verify: var("DOCKER_TLS_VERIFY").is_some(),
        cert_path: var("DOCKER_CERT_PATH").map(std::path::PathBuf::from),
        config_dir: var("DOCKER_CONFIG")
            .map(std::path::PathBuf::from)
            .or_else(|| home().map(|h| h.join(".docker")))
            .unwrap_or_else(|| "/root/.docker".into()),
    };
    crate::engine::resolve(&env, &Disk)
}

/// The docker config folder, read from the disk for `engine::resolve`.
struct Disk;

impl crate::engine::Files for Disk {
    fn read(&self, path: &Path) -> std::io::Result<Option<String>> {
        match std::fs::read_to_string(path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }
}

fn media_types(a: &MediaArgs) -> MediaTypes {
    match a.media_types {
        MediaTypesArg::Oci => MediaTypes::Oci,
        MediaTypesArg::Docker => MediaTypes::Docker,
    }
}

/// Reads the password from stdin here, at the edge, when `--password-stdin` asks for it.
fn registry_options(a: &RegistryArgs, timeouts: Timeouts) -> anyhow::Result<RegistryOptions> {
    let credentials = match &a.username {
        Some(user) if a.password_stdin => Some((user.clone(), read_password()?)),
        _ => None,
    };
    Ok(RegistryOptions {
        credentials,
        docker_config: qus_registry::default_config_path(),
        certs_dir: Some(certs_dir()),
        insecure: a.insecure_registry.clone(),
        timeouts,
    })
}

/// `--timeout` (`QUS_TIMEOUT`) as the limits of every registry and mirror request.
fn timeouts(a: &RegistryArgs) -> Timeouts {
    a.timeout
        .map(|s| Timeouts::with_idle(std::time::Duration::from_secs(s)))
        .unwrap_or_default()
}

/// Where the Docker daemon's per-registry certificates are: `QUS_DOCKER_CERTS_D` (tests, or
/// a daemon configured elsewhere), else `/etc/docker/certs.d`.
fn certs_dir() -> std::path::PathBuf {
    std::env::var_os("QUS_DOCKER_CERTS_D")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| qus_registry::DOCKER_CERTS_D.into())
}

fn read_password() -> anyhow::Result<String> {
    use std::io::Read as _;
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("reading the password from stdin")?;
    let p = s.trim_end_matches(['\n', '\r']).to_string();
    if p.is_empty() {
        return Err(crate::exit::usage("--password-stdin: stdin was empty"));
    }
    Ok(p)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The facts about this qus build that every image's inputs digest includes.
fn recipe() -> Recipe {
    Recipe {
        qus_version: crate::VERSION.to_string(),
        template_sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            crate::engine::build_context::TEMPLATE.as_bytes(),
        )),
        entrypoint_sha256: entrypoint::digest(),
        epoch: source_date_epoch(),
    }
}

/// SOURCE_DATE_EPOCH when set to a number, else 0: the mtime of every file in every layer.
fn source_date_epoch() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Whether a repository names its registry (`ghcr.io/me/qus`, `127.0.0.1:5000/qus`,
/// `localhost/qus`) rather than being a bare name (`qus`) that Docker would send to
/// docker.io: Docker's rule, a first component with a dot or a port, or `localhost`.
fn names_a_registry(repo: &str) -> bool {
    match repo.split_once('/') {
        Some((first, _)) => first.contains(['.', ':']) || first == "localhost",
        None => false,
    }
}

/// Plans the selection over a loaded config, for one repository.
fn make_plan(cfg: &Config, m: &MatrixArgs, names: &Names) -> anyhow::Result<Plan> {
    match m.repo.as_slice() {
        [] => plan_for(cfg, m, names, None),
        [repo] => plan_for(cfg, m, names, Some(repo)),
        _ => Err(crate::exit::usage(format!(
            "{}: only `qus release` writes to several repositories; give one",
            names.of("--repo")
        ))),
    }
}

/// One plan per `--repo` (once each, in the order given), or the config's.
fn make_plans(cfg: &Config, m: &MatrixArgs, names: &Names) -> anyhow::Result<Vec<Plan>> {
    let mut repos: Vec<&String> = Vec::new();
    for r in &m.repo {
        if !repos.contains(&r) {
            repos.push(r);
        }
    }
    if repos.len() < 2 {
        return Ok(vec![plan_for(
            cfg,
            m,
            names,
            repos.first().map(|r| r.as_str()),
        )?]);
    }
    repos
        .into_iter()
        .map(|r| plan_for(cfg, m, names, Some(r)))
        .collect()
}

/// Plans the selection over a loaded config with `repo` instead of the config's.
fn plan_for(
    cfg: &Config,
    m: &MatrixArgs,
    names: &Names,
    repo: Option<&str>,
) -> anyhow::Result<Plan> {
    if let Some(repo) = repo {
        crate::config::validate::validate_repo(repo)
            .map_err(|e| crate::exit::usage(format!("{}: {e}", names.of("--repo"))))?;
    }
    let sel = Selection {
        repo: repo.map(str::to_string),
        hosts: m.hosts(),
        targets: m.targets(),
        sources: m.sources.clone(),
    };
    Ok(plan::plan(cfg, &sel, &recipe())?)
}
