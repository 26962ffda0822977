//! Command-line flags, as data. Parsing only: nothing here touches the disk or the network,
//! so every flag has a parse test beside it.

pub mod docs;
mod register;

use crate::arch::Host;
use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

/// qus builds, pushes and publishes container images of QEMU's user-mode emulators with a
/// binfmt_misc registration entrypoint.
#[derive(Debug, Parser)]
#[command(name = "qus", version = crate::VERSION, about, long_about = None, after_long_help = crate::exit::HELP, max_term_width = 100)]
struct RawCli {
    /// The common flags written before the subcommand (`qus --config x plan`): accepted
    /// where the subcommand takes them, hidden from help, which lists each on the
    /// subcommands it affects.
    #[command(flatten)]
    before: Before,
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// See [`RawCli::before`].
#[derive(Debug, Args, Default)]
struct Before {
    #[arg(long, hide = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[arg(long, short, hide = true)]
    quiet: bool,
    #[arg(long, short, hide = true, conflicts_with = "quiet")]
    verbose: bool,
    #[arg(long, hide = true, value_name = "NAME")]
    context: Option<String>,
    #[arg(long, hide = true, value_enum, value_name = "MODE")]
    progress: Option<ProgressArg>,
}

/// A parsed command line: the subcommand, and the common flags resolved from wherever they
/// were written (before or after the subcommand, or the environment).
#[derive(Debug)]
pub struct Cli {
    /// Matrix file (default: the built-in images/qus.yml).
    pub config: Option<PathBuf>,
    /// Only warnings and errors on stderr.
    pub quiet: bool,
    /// Also the builder's and the push's own output.
    pub verbose: bool,
    /// Docker context of the engine to use.
    pub context: Option<String>,
    /// How progress is shown on stderr.
    pub progress: ProgressArg,
    /// What to do.
    pub command: Command,
    /// Flags whose value came from the environment, with the variable: (`--repo`,
    /// `QUS_REPO`). A message about such a value names the variable.
    pub from_env: Vec<(String, String)>,
}

/// `--config`, on every command that reads the matrix.
#[derive(Debug, Args, Clone, Default)]
pub struct ConfigArg {
    /// Matrix file (default: the built-in images/qus.yml).
    #[arg(long, env = "QUS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// How a long command reports on stderr.
#[derive(Debug, Args, Clone, Default)]
pub struct OutputArgs {
    /// Only warnings and errors on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// How progress is shown on stderr: bars on a terminal and plain lines elsewhere
    /// (auto), plain lines only (plain), or bars even when stderr is no terminal (tty)
    /// [default: auto].
    #[arg(long, env = "QUS_PROGRESS", value_enum, value_name = "MODE")]
    pub progress: Option<ProgressArg>,
}

/// The container engine, on the commands that use one.
#[derive(Debug, Args, Clone, Default)]
pub struct EngineArgs {
    /// Docker context of the engine to use (overrides DOCKER_HOST, DOCKER_CONTEXT and the
    /// docker config's currentContext, as with the docker CLI).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every image and manifest list the matrix implies (no I/O).
    Plan(PlanArgs),
    /// Fetch, verify and extract the packages, and build the images into the local daemon.
    Build(BuildCmdArgs),
    /// Build, push every image and publish the manifest lists.
    Release(ReleaseArgs),
    /// Publish the manifest lists only, over per-host images already in the registry
    /// (the last job of a CI matrix that ran `release --skip-lists` per host).
    Publish(PublishArgs),
    /// Run every emulator of the plan's images in the daemon on a real guest program (exit
    /// 1: one failed).
    Test(TestArgs),
    /// Rebuild from the pins what the registry should hold and compare every tag (exit 1:
    /// a tag differs or is missing).
    Verify(VerifyArgs),
    /// Write the release assets: qemu-T-static_H.tgz per host × target (each host's from
    /// the QEMU its unversioned tags carry), and SHA256SUMS.
    Assets(AssetsArgs),
    /// Pin the newest packages of the configured suites that the mirror serves into the lock
    /// file beside the config.
    Lock(LockArgs),
    /// Compare the pins with the newest files a mirror serves (exit 1: a newer one is
    /// served, or a pinned file is not).
    Check(CheckArgs),
    /// The targets × hosts table of which emulator the pinned packages provide.
    Report(ReportArgs),
    /// Register QEMU interpreters with binfmt_misc on this host (dbhi/qus, multiarch and
    /// tonistiigi/binfmt flags are all accepted; see `qus register -h`).
    #[command(disable_help_flag = true)]
    Register(RegisterArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completion(CompletionArgs),
    /// Print the man page (roff) on stdout: `qus man | man -l -`; one page for qus and
    /// every subcommand.
    Man,
    /// Print docs/commands.md, the command reference, from these definitions.
    #[command(hide = true)]
    Docs(DocsArgs),
}

/// `qus docs` (hidden): what a test compares with the checked-in docs.
#[derive(Debug, Args)]
pub struct DocsArgs {
    /// Which document: commands (docs/commands.md).
    #[arg(value_parser = ["commands"])]
    pub doc: String,
}

/// `--progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressArg {
    /// Bars when stderr is a terminal, else plain lines.
    Auto,
    /// One line per step, no bars.
    Plain,
    /// Bars, even when stderr is not a terminal.
    Tty,
}

/// `qus completion`.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// The completion script of `shell` for every subcommand and flag.
pub fn completion_script(shell: clap_complete::Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command(), "qus", &mut out);
    out
}

/// The man page, from the same definitions as `--help`: qus, then a section per
/// subcommand with its synopsis and flags, then EXIT STATUS.
pub fn man_page() -> std::io::Result<Vec<u8>> {
    let cmd = command();
    let man = clap_mangen::Man::new(cmd.clone());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    for sub in docs::visible_subcommands(&cmd) {
        let name = format!("qus {}", sub.get_name());
        out.extend_from_slice(format!(".SH \"{}\"\n", name.to_uppercase()).as_bytes());
        let page = clap_mangen::Man::new(sub.clone().bin_name(name));
        let mut part = Vec::new();
        page.render_synopsis_section(&mut part)?;
        page.render_description_section(&mut part)?;
        page.render_options_section(&mut part)?;
        // The subcommand's sections are subsections of its own.
        let part = String::from_utf8_lossy(&part).replace(".SH ", ".SS ");
        out.extend_from_slice(part.as_bytes());
    }
    out.extend_from_slice(b".SH \"EXIT STATUS\"\n");
    for line in crate::exit::HELP.lines().skip(1) {
        let line = line.trim_start();
        match line.split_once("  ") {
            Some((code, text)) if code.chars().all(|c| c.is_ascii_digit()) => {
                out.extend_from_slice(format!(".TP\n\\fB{code}\\fR\n{}\n", text.trim()).as_bytes())
            }
            _ => out.extend_from_slice(format!("{line}\n").as_bytes()),
        }
    }
    man.render_version_section(&mut out)?;
    // Each render_* call repeats roff's quote-string preamble before its section; keep one,
    // after the title, so that the page starts with .TH as man(7) expects.
    let text = String::from_utf8_lossy(&out).into_owned();
    let preamble = [".ie \\n(.g .ds Aq \\(aq", ".el .ds Aq '"];
    let mut page = String::new();
    for line in text.lines().filter(|l| !preamble.contains(l)) {
        page.push_str(line);
        page.push('\n');
        if line.starts_with(".TH ") {
            for p in preamble {
                page.push_str(p);
                page.push('\n');
            }
        }
    }
    Ok(page.into_bytes())
}

/// Narrowing the matrix (shared by every command that plans).
#[derive(Debug, Args, Clone, Default)]
pub struct MatrixArgs {
    /// Hosts the images run on, comma-separated, in any spelling of docs/architectures.md
    /// (amd64,arm64v8,armhf,linux/arm/v7,…); --platform as with docker buildx.
    #[arg(long, alias = "platform", value_delimiter = ',', value_parser = parse_host_arg, value_name = "LIST")]
    pub hosts: Option<Vec<Host>>,
    /// Emulators, comma-separated: QEMU targets (aarch64,riscv64,…) or any other spelling
    /// of one (arm64, linux/arm/v7, armhf).
    #[arg(long, value_delimiter = ',', value_parser = parse_target_arg, value_name = "LIST")]
    pub targets: Option<Vec<String>>,
    /// QEMU sources by name, comma-separated (d10.0,d7.2).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub sources: Option<Vec<String>>,
    /// Image repository, overriding the config's `repo`; `release` takes several
    /// (repeated, or comma-separated) and writes the same images to each.
    #[arg(long, env = "QUS_REPO", value_name = "REPO", value_delimiter = ',')]
    pub repo: Vec<String>,
}

fn parse_host_arg(s: &str) -> Result<Host, String> {
    s.parse()
        .map_err(|e: crate::arch::UnknownArch| e.to_string())
}

fn parse_target_arg(s: &str) -> Result<String, String> {
    crate::targets::parse(s).map(str::to_string)
}

impl MatrixArgs {
    /// The hosts asked for, without repeats (`amd64,x86_64` is one host).
    pub fn hosts(&self) -> Option<Vec<Host>> {
        self.hosts.as_ref().map(|hs| {
            let mut out: Vec<Host> = Vec::new();
            for h in hs {
                if !out.contains(h) {
                    out.push(*h);
                }
            }
            out
        })
    }

    /// The targets asked for, without repeats (`arm64,aarch64` is one target).
    pub fn targets(&self) -> Option<Vec<String>> {
        self.targets.as_ref().map(|ts| {
            let mut out: Vec<String> = Vec::new();
            for t in ts {
                if !out.contains(t) {
                    out.push(t.clone());
                }
            }
            out
        })
    }
}

/// `qus plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub matrix: MatrixArgs,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the table's lists on one line each, however long (by default they wrap to fit
    /// 100 columns).
    #[arg(long)]
    pub wide: bool,
}

/// Where packages come from.
#[derive(Debug, Args, Clone, Default)]
pub struct SourceArgs {
    /// Read packages from this folder (as `apt-get download` leaves them, and Fedora rpms)
    /// instead of a mirror.
    #[arg(long, alias = "packages", value_name = "DIR")]
    pub debs: Option<PathBuf>,
    #[command(flatten)]
    pub mirror: MirrorArgs,
    /// Fedora mirror root, for Fedora sources.
    #[arg(long, env = "QUS_FEDORA_MIRROR", value_name = "URL")]
    pub fedora_mirror: Option<String>,
    /// Cache folder for downloads and extracted emulators (default: ~/.cache/qus).
    #[arg(long, env = "QUS_CACHE", value_name = "DIR")]
    pub cache: Option<PathBuf>,
}

/// The Debian mirror (shared by every command that reads one).
#[derive(Debug, Args, Clone, Default)]
pub struct MirrorArgs {
    /// Debian mirror root, the folder that holds dists/ and pool/ (default: this machine's
    /// apt sources).
    #[arg(long, env = "QUS_MIRROR", value_name = "URL")]
    pub mirror: Option<String>,
}

/// `--builder`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BuilderArg {
    /// qus writes every layer, config and manifest itself.
    Qus,
    /// Dockerfile.template through the daemon's classic builder.
    Dockerfile,
}

/// `--test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TestArg {
    /// The emulators built for this machine's host.
    Native,
    /// Every host's.
    All,
    /// None.
    None,
}

/// `--media-types`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MediaTypesArg {
    /// OCI image manifests, configs, layers and indexes.
    Oci,
    /// Docker v2 schema 2 manifests and manifest lists.
    Docker,
}

/// Which media types images and lists carry.
#[derive(Debug, Args, Clone)]
pub struct MediaArgs {
    /// Media types of manifests and lists: OCI (zot and OCI-only registries need it) or
    /// Docker v2 schema 2 (registries and clients that predate OCI).
    #[arg(long, value_enum, default_value_t = MediaTypesArg::Oci, value_name = "TYPES")]
    pub media_types: MediaTypesArg,
}

/// `qus build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Also show the builder's and the push's own output.
    #[arg(long, short, conflicts_with = "quiet")]
    pub verbose: bool,
    #[command(flatten)]
    pub matrix: MatrixArgs,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Who makes the images: qus itself (reproducible digests), or the daemon's classic
    /// builder from Dockerfile.template.
    #[arg(long, value_enum, default_value_t = BuilderArg::Qus)]
    pub builder: BuilderArg,
    #[command(flatten)]
    pub media: MediaArgs,
    /// Also write every image and list into this OCI image layout folder.
    #[arg(long, value_name = "DIR")]
    pub oci_layout: Option<PathBuf>,
    /// Do not use the daemon's build cache (--builder dockerfile).
    #[arg(long)]
    pub no_cache: bool,
    /// Rebuild images even when the daemon has them with the same inputs.
    #[arg(long)]
    pub force: bool,
    /// Builds in flight at once, and hosts pushed side by side (default: one per available
    /// CPU).
    #[arg(long, short, value_name = "N")]
    pub jobs: Option<usize>,
    /// Print what was built as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `qus build`: the build flags, and which images go into the daemon.
#[derive(Debug, Args)]
pub struct BuildCmdArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// Which images to load into the daemon: every one (all), those this machine runs
    /// without an emulator (native: its own host, and i386 on amd64), or none (with
    /// --oci-layout: the layout only).
    #[arg(long, value_enum, default_value_t = LoadArg::All, value_name = "WHICH")]
    pub load: LoadArg,
}

/// `--load`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoadArg {
    /// Every image of the plan.
    All,
    /// The images of the hosts this machine runs without an emulator.
    Native,
    /// None (the OCI layout only).
    None,
}

/// `qus release`.
#[derive(Debug, Args)]
pub struct ReleaseArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Push the images but do not publish the manifest lists (one job of a CI matrix).
    #[arg(long)]
    pub skip_lists: bool,
    /// Whose emulators run a guest program before the push: this machine's host's
    /// (native), every host's (all, foreign ones under this machine's emulators), or none.
    #[arg(long, value_enum, default_value_t = TestArg::Native)]
    pub test: TestArg,
    #[command(flatten)]
    pub sign: SignArgs,
    /// The builder identity (a URI) the provenance records: CI sets it to the workflow
    /// run's (default: urn:qus:builder:local).
    #[arg(long, env = "QUS_BUILDER_ID", value_name = "URI")]
    pub builder_id: Option<String>,
}

/// Signing (shared by `release`, `publish` and `assets`).
#[derive(Debug, Args, Clone, Default)]
pub struct SignArgs {
    /// Sign every image and list with this ECDSA P-256 private key (PEM, PKCS#8 or SEC1)
    /// in cosign's format; `assets` writes its public key as cosign.pub.
    #[arg(long, env = "QUS_SIGN_KEY", value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
}

/// Registry access (shared by `release` and `publish`).
#[derive(Debug, Args, Clone, Default)]
pub struct RegistryArgs {
    /// Registry user (default: the Docker config's credentials for the registry).
    #[arg(long, value_name = "USER", requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the registry password from stdin (with --username).
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Registries to reach over plain HTTP besides loopback ones, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "HOSTS")]
    pub insecure_registry: Vec<String>,
    /// Seconds a registry (or mirror) request may go without receiving a byte before it is
    /// tried again, then given up [default: 60]; connecting gets as long (at most 30 s),
    /// and each request a deadline scaled to its size.
    #[arg(long, env = "QUS_TIMEOUT", value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: Option<u64>,
}

/// `qus publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub matrix: MatrixArgs,
    #[command(flatten)]
    pub media: MediaArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub sign: SignArgs,
    /// Print the lists as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `qus test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub matrix: MatrixArgs,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Emulators run at once (default: one per CPU).
    #[arg(long, short, value_name = "N")]
    pub jobs: Option<usize>,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `qus verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub matrix: MatrixArgs,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub media: MediaArgs,
    /// Also check that every tag is signed by this public key (PEM) and that every
    /// per-host image has its SBOM and provenance, naming the pinned packages.
    #[arg(long, value_name = "PUB")]
    pub key: Option<PathBuf>,
    /// Print the comparison as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `qus assets`.
#[derive(Debug, Args)]
pub struct AssetsArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub matrix: MatrixArgs,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Folder to write the assets to.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Also ship this statically linked qus as qus_<host> (its architecture read from the
    /// file), listed in SHA256SUMS; repeat for several hosts.
    #[arg(long, value_name = "FILE")]
    pub qus_binary: Vec<PathBuf>,
    #[command(flatten)]
    pub sign: SignArgs,
    /// Print the assets as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `qus lock`.
#[derive(Debug, Args)]
pub struct LockArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub mirror: MirrorArgs,
    #[command(flatten)]
    pub valid_until: ValidUntilArgs,
    /// Print the pins as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `--ignore-valid-until`.
#[derive(Debug, Clone, Args)]
pub struct ValidUntilArgs {
    /// Read a suite whose Release is past its Valid-Until (a mirror that stopped
    /// syncing), with a warning; its signature is still checked.
    #[arg(long)]
    pub ignore_valid_until: bool,
}

/// `qus check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub mirror: MirrorArgs,
    #[command(flatten)]
    pub valid_until: ValidUntilArgs,
    /// Print the comparison as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `qus report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub matrix: MatrixArgs,
    /// Print the table as JSON instead of markdown.
    #[arg(long)]
    pub json: bool,
}

/// `qus register`: its own options, then everything else goes to the binfmt front end
/// untouched.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// Where emulators missing on this host are installed, as
    /// DIR/<QEMU version>/qemu-<target> (default: /usr/local/lib/qus).
    #[arg(long, value_name = "DIR")]
    pub install_dir: Option<PathBuf>,
    /// Also write a systemd binfmt.d file per registered target (qus-<target>.conf), so
    /// that a reboot registers it again.
    #[arg(long)]
    pub persist: bool,
    /// Where --persist writes and uninstalling cleans (default: /etc/binfmt.d).
    #[arg(long, value_name = "DIR")]
    pub persist_dir: Option<PathBuf>,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Set when `--config` came among the dialect's arguments.
    #[arg(skip)]
    pub config: Option<PathBuf>,
    /// Arguments in any of the three dialects.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<OsString>,
}

impl RegisterArgs {
    /// Takes qus's own options out of the dialect's arguments. clap stops at the first
    /// argument it does not know, and users append options where they like
    /// (`--install arm64 --persist`); none of the dialects has an option of these names.
    fn take_own_options(&mut self) -> Result<(), String> {
        let mut rest = Vec::new();
        let mut it = std::mem::take(&mut self.args).into_iter();
        while let Some(a) = it.next() {
            let Some(s) = a.to_str() else {
                rest.push(a);
                continue;
            };
            if s == "--persist" {
                self.persist = true;
                continue;
            }
            // For register, a platform names what to register: binfmt's `--install`.
            if s == "--platform" {
                rest.push("--install".into());
                continue;
            }
            if let Some(v) = s.strip_prefix("--platform=") {
                rest.push(format!("--install={v}").into());
                continue;
            }
            let (name, inline) = match s.split_once('=') {
                Some((n, v)) => (n, Some(OsString::from(v))),
                None => (s, None),
            };
            const VALUED: &[&str] = &[
                "--install-dir",
                "--persist-dir",
                "--mirror",
                "--fedora-mirror",
                "--debs",
                "--packages",
                "--cache",
                "--config",
            ];
            if !VALUED.contains(&name) {
                rest.push(a);
                continue;
            }
            let name = name.to_string();
            let v = match inline.or_else(|| it.next()) {
                Some(v) if !v.is_empty() => v,
                _ => return Err(format!("{name} needs a value")),
            };
            match name.as_str() {
                "--install-dir" => self.install_dir = Some(v.into()),
                "--persist-dir" => self.persist_dir = Some(v.into()),
                "--mirror" => self.source.mirror.mirror = Some(v.to_string_lossy().into()),
                "--fedora-mirror" => self.source.fedora_mirror = Some(v.to_string_lossy().into()),
                "--cache" => self.source.cache = Some(v.into()),
                "--config" => self.config = Some(v.into()),
                _ => self.source.debs = Some(v.into()),
            }
        }
        self.args = rest;
        Ok(())
    }
}

/// Puts back a `--` that clap took as its own end of options: to dbhi/qus's register it
/// is an argument (`qus register -- -p aarch64`). The trailing arguments are a suffix of the
/// command line, so the separator is the argument just before them.
fn keep_separator(argv: &[OsString], trailing: &mut Vec<OsString>) {
    let Some(before) = argv.len().checked_sub(trailing.len() + 1) else {
        return;
    };
    if argv[before] == "--" && argv[before + 1..] == trailing[..] {
        trailing.insert(0, OsString::from("--"));
    }
}

impl Command {
    /// The common flags this subcommand takes (those written before it must be among them).
    fn common(&self) -> Common<'_> {
        let none = Common::default();
        let full = |config, output, engine, verbose| Common {
            config: Some(config),
            output: Some(output),
            engine,
            verbose,
            register: false,
        };
        match self {
            Command::Plan(a) => Common {
                config: Some(&a.config),
                ..none
            },
            Command::Report(a) => Common {
                config: Some(&a.config),
                ..none
            },
            Command::Build(BuildCmdArgs { build: b, .. })
            | Command::Release(ReleaseArgs { build: b, .. }) => {
                full(&b.config, &b.output, Some(&b.engine), Some(b.verbose))
            }
            Command::Test(a) => full(&a.config, &a.output, Some(&a.engine), None),
            Command::Publish(a) => full(&a.config, &a.output, None, None),
            Command::Verify(a) => full(&a.config, &a.output, None, None),
            Command::Assets(a) => full(&a.config, &a.output, None, None),
            Command::Lock(a) => full(&a.config, &a.output, None, None),
            Command::Check(a) => full(&a.config, &a.output, None, None),
            // Its flags share the command line with the dialects': `--config` is taken out
            // of them; the output flags are written before `register`.
            Command::Register(_) => Common {
                register: true,
                ..none
            },
            Command::Completion(_) | Command::Man | Command::Docs(_) => none,
        }
    }
}

/// See [`Command::common`].
#[derive(Default)]
struct Common<'a> {
    config: Option<&'a ConfigArg>,
    output: Option<&'a OutputArgs>,
    engine: Option<&'a EngineArgs>,
    verbose: Option<bool>,
    register: bool,
}

/// A usage error in clap's form (exit 2, printed with qus's prefix by [`error_text`]).
fn usage(cmd: &mut clap::Command, kind: ErrorKind, msg: impl std::fmt::Display) -> clap::Error {
    cmd.error(kind, msg)
}

/// The common flags, from before the subcommand or after it (after wins), else from the
/// environment or the default.
fn resolve(raw: RawCli, sub: &clap::ArgMatches, name: &str) -> Result<Cli, String> {
    let b = raw.before;
    let c = raw.command.common();
    let after = |id: &str| {
        sub.ids().any(|i| i.as_str() == id)
            && sub.value_source(id) == Some(ValueSource::CommandLine)
    };
    let takes = |flag: &str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{flag} does not apply to `qus {name}` (its flags: `qus {name} -h`)"
            ))
        }
    };
    if b.config.is_some() {
        takes("--config", c.config.is_some() || c.register)?;
    }
    if b.quiet {
        takes("--quiet", c.output.is_some() || c.register)?;
    }
    if b.progress.is_some() {
        takes("--progress", c.output.is_some() || c.register)?;
    }
    if b.context.is_some() {
        takes("--context", c.engine.is_some())?;
    }
    if b.verbose {
        takes("--verbose", c.verbose.is_some())?;
    }
    fn pick<T: Clone>(after: bool, sub: Option<&T>, before: Option<T>) -> Option<T> {
        if after {
            sub.cloned()
        } else {
            before.or_else(|| sub.cloned())
        }
    }
    let config = pick(
        after("config"),
        c.config.and_then(|a| a.config.as_ref()),
        b.config,
    );
    let progress = pick(
        after("progress"),
        c.output.and_then(|a| a.progress.as_ref()),
        b.progress,
    );
    let context = pick(
        after("context"),
        c.engine.and_then(|a| a.context.as_ref()),
        b.context,
    );
    let quiet = b.quiet || c.output.is_some_and(|o| o.quiet);
    let verbose = b.verbose || c.verbose == Some(true);
    if quiet && verbose {
        return Err("--quiet and --verbose cannot be used together".into());
    }
    Ok(Cli {
        config,
        quiet,
        verbose,
        context,
        progress: progress.unwrap_or(ProgressArg::Auto),
        command: raw.command,
        from_env: Vec::new(),
    })
}

/// The flags of subcommand `name` whose value came from the environment.
fn env_origins(cmd: &clap::Command, name: &str, sub: &clap::ArgMatches) -> Vec<(String, String)> {
    let Some(sc) = cmd.find_subcommand(name) else {
        return Vec::new();
    };
    sc.get_arguments()
        .filter_map(|a| {
            let var = a.get_env()?.to_string_lossy().into_owned();
            let long = a.get_long()?;
            (sub.value_source(a.get_id().as_str()) == Some(ValueSource::EnvVariable))
                .then(|| (format!("--{long}"), var))
        })
        .collect()
}

/// `qus help X …` is `qus X … -h`, so that both print the same text (for `register`, its
/// dialects' usage).
fn help_as_flag(mut args: Vec<OsString>) -> Vec<OsString> {
    if args.get(1).is_some_and(|a| a == "help") {
        args.remove(1);
        args.push("-h".into());
    }
    args
}

/// Parses `args` (including the program name).
pub fn parse<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args = help_as_flag(args.into_iter().map(Into::into).collect());
    let mut cmd = RawCli::command();
    let matches = cmd.try_get_matches_from_mut(args.clone())?;
    let Some((name, sub)) = matches.subcommand() else {
        return Err(usage(
            &mut cmd,
            ErrorKind::MissingSubcommand,
            "no subcommand",
        ));
    };
    // `--debs` and a mirror flag contradict each other; a mirror from the environment
    // (QUS_MIRROR) does not, or exporting it would break every `--debs` build.
    let from_flag = |id: &str| {
        sub.try_get_raw(id).ok().flatten().is_some()
            && sub.value_source(id) == Some(ValueSource::CommandLine)
    };
    if from_flag("debs") {
        if let Some(other) = ["mirror", "fedora_mirror"]
            .into_iter()
            .find(|id| from_flag(id))
        {
            return Err(usage(
                &mut cmd,
                ErrorKind::ArgumentConflict,
                format!(
                    "--debs cannot be used with --{}: packages come from one place",
                    other.replace('_', "-")
                ),
            ));
        }
    }
    let raw = RawCli::from_arg_matches(&matches)?;
    let from_env = env_origins(&cmd, name, sub);
    // The subcommand's usage under its errors, not qus's.
    let mut subcmd = cmd.find_subcommand(name).cloned().unwrap_or(cmd);
    let mut cli =
        resolve(raw, sub, name).map_err(|m| usage(&mut subcmd, ErrorKind::ArgumentConflict, m))?;
    cli.from_env = from_env;
    if let Command::Register(r) = &mut cli.command {
        keep_separator(&args, &mut r.args);
        r.take_own_options()
            .and_then(|()| register::check(&r.args))
            .map_err(|m| usage(&mut subcmd, ErrorKind::InvalidValue, m))?;
    }
    Ok(cli)
}

/// The text of a clap error as qus prints it: one prefix (`qus: error:`) for every error,
/// and a bad value that came from the environment named by its variable.
pub fn error_text(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let Some(rest) = text.strip_prefix("error: ") else {
        return text;
    };
    let mut rest = rest.to_string();
    if e.kind() == ErrorKind::InvalidValue {
        if let (Some(arg), Some(value)) = (
            e.get(clap::error::ContextKind::InvalidArg),
            e.get(clap::error::ContextKind::InvalidValue),
        ) {
            let (arg, value) = (arg.to_string(), value.to_string());
            if let Some(var) = env_var_holding(&arg, &value) {
                rest = rest.replacen(
                    &format!("'{arg}'"),
                    &format!("{var} (the environment's {arg})"),
                    1,
                );
            }
        }
    }
    format!("qus: error: {rest}")
}

/// The variable of flag `arg` (`--progress <MODE>`) when it holds `value` and the flag was
/// not on the command line.
fn env_var_holding(arg: &str, value: &str) -> Option<String> {
    let long = arg.strip_prefix("--")?.split([' ', '=']).next()?;
    let argv: Vec<String> = std::env::args().collect();
    if argv
        .iter()
        .any(|a| a == &format!("--{long}") || a.starts_with(&format!("--{long}=")))
    {
        return None;
    }
    let cmd = RawCli::command();
    let var = std::iter::once(&cmd)
        .chain(cmd.get_subcommands())
        .flat_map(|c| c.get_arguments())
        .filter(|a| a.get_long() == Some(long))
        .find_map(|a| a.get_env())?
        .to_string_lossy()
        .into_owned();
    (std::env::var(&var).ok()? == value).then_some(var)
}

/// The clap definition of the whole command line (completion, man pages, docs).
pub fn command() -> clap::Command {
    RawCli::command()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &str) -> Result<Cli, clap::Error> {
        parse(std::iter::once("qus").chain(args.split_whitespace()))
    }

    #[test]
    fn plan_with_matrix_and_json() {
        let c = p("plan --hosts amd64,aarch64,armhf --targets aarch64,riscv64 --json").unwrap();
        let Command::Plan(a) = c.command else {
            panic!()
        };
        assert!(a.json);
        assert_eq!(
            a.matrix.hosts.unwrap(),
            [Host::Amd64, Host::Arm64v8, Host::Arm32v7]
        );
        assert_eq!(a.matrix.targets.unwrap(), ["aarch64", "riscv64"]);
    }

    #[test]
    fn lock_and_check_may_read_a_stale_release() {
        let Command::Lock(a) = p("lock --ignore-valid-until --json").unwrap().command else {
            panic!()
        };
        assert!(a.valid_until.ignore_valid_until && a.json);
        let Command::Check(a) = p("check").unwrap().command else {
            panic!()
        };
        assert!(!a.valid_until.ignore_valid_until);
        let Command::Check(a) = p("check --ignore-valid-until").unwrap().command else {
            panic!()
        };
        assert!(a.valid_until.ignore_valid_until);
    }

    #[test]
    fn unknown_host_is_a_parse_error_naming_valid_ones() {
        let e = p("plan --hosts vax").unwrap_err().to_string();
        assert!(e.contains("'vax'") && e.contains("arm64v8"), "{e}");
    }

    #[test]
    fn build_sources() {
        let c = p("build --debs ./debs --no-cache").unwrap();
        let Command::Build(BuildCmdArgs { build: a, load }) = c.command else {
            panic!()
        };
        assert_eq!(a.source.debs.unwrap(), PathBuf::from("./debs"));
        assert!(a.no_cache);
        assert_eq!(load, LoadArg::All);
        let Command::Build(b) = p("build --load native --oci-layout o").unwrap().command else {
            panic!()
        };
        assert_eq!(b.load, LoadArg::Native);
        assert!(p("build --load some").is_err());
        assert!(p("release --load native").is_err(), "release loads nothing");
        assert!(
            p("build --debs d --mirror http://127.0.0.1:1/debian").is_err(),
            "conflict"
        );
    }

    #[test]
    fn release_credentials_go_together() {
        assert!(p("release --repo 127.0.0.1:5000/qus --username u").is_err());
        assert!(p("release --repo 127.0.0.1:5000/qus --password-stdin").is_err());
        let c =
            p("release --repo 127.0.0.1:5000/qus --username u --password-stdin --json").unwrap();
        let Command::Release(a) = c.command else {
            panic!()
        };
        assert_eq!(a.registry.username.as_deref(), Some("u"));
        assert_eq!(a.build.matrix.repo, ["127.0.0.1:5000/qus"]);
        assert!(a.build.json);
    }

    #[test]
    fn signing_flags() {
        let c = p("release --repo r --sign-key k.pem --builder-id https://ci.example/run").unwrap();
        let Command::Release(a) = c.command else {
            panic!()
        };
        assert_eq!(a.sign.sign_key, Some(PathBuf::from("k.pem")));
        assert_eq!(a.builder_id.as_deref(), Some("https://ci.example/run"));
        let c = p("verify --repo r --key pub.pem").unwrap();
        let Command::Verify(a) = c.command else {
            panic!()
        };
        assert_eq!(a.key, Some(PathBuf::from("pub.pem")));
        let c = p("assets --out d --sign-key k.pem").unwrap();
        let Command::Assets(a) = c.command else {
            panic!()
        };
        assert_eq!(a.sign.sign_key, Some(PathBuf::from("k.pem")));
        assert!(p("publish --sign-key k.pem").is_ok());
    }

    #[test]
    fn context_is_global() {
        let c = p("build --context podman").unwrap();
        assert_eq!(c.context.as_deref(), Some("podman"));
        let c = p("--context pm test").unwrap();
        assert_eq!(c.context.as_deref(), Some("pm"));
        assert_eq!(p("plan").unwrap().context, None);
    }

    #[test]
    fn progress_modes() {
        assert_eq!(p("plan").unwrap().progress, ProgressArg::Auto);
        assert_eq!(
            p("build --progress plain").unwrap().progress,
            ProgressArg::Plain
        );
        assert_eq!(
            p("--progress=tty release").unwrap().progress,
            ProgressArg::Tty
        );
        assert!(p("build --progress bars").is_err());
    }

    #[test]
    fn completion_and_man() {
        let c = p("completion fish").unwrap();
        assert!(matches!(
            c.command,
            Command::Completion(CompletionArgs {
                shell: clap_complete::Shell::Fish
            })
        ));
        assert!(p("completion tcsh").is_err());
        let man = String::from_utf8(man_page().unwrap()).unwrap();
        assert!(man.starts_with(".TH"), "{man}");
        assert!(
            man.contains("EXIT STATUS") && man.contains("register"),
            "{man}"
        );
        // A section per subcommand, with its flags; no page it does not write.
        assert!(
            man.contains(".SH \"QUS PLAN\"") && man.contains("\\-\\-wide"),
            "{man}"
        );
        assert!(
            !man.contains("qus\\-plan(1)") && !man.contains("qus-plan(1)"),
            "{man}"
        );
    }

    #[test]
    fn quiet_and_verbose_conflict() {
        assert!(p("-q -v build").is_err());
        assert!(p("-q build -v").is_err());
    }

    #[test]
    fn common_flags_only_where_they_apply() {
        let e = p("--context x plan").unwrap_err().to_string();
        assert!(e.contains("--context does not apply to `qus plan`"), "{e}");
        assert!(p("plan --verbose").is_err());
        assert!(p("--verbose test").is_err(), "test builds nothing");
        assert!(p("completion bash --config x").is_err());
        // Before or after the subcommand; after wins.
        let c = p("--config a.yml build --config b.yml -q").unwrap();
        assert_eq!(c.config, Some(PathBuf::from("b.yml")));
        assert!(c.quiet);
        let c = p("--config a.yml plan").unwrap();
        assert_eq!(c.config, Some(PathBuf::from("a.yml")));
        assert!(p("--config a.yml -q register --install arm64").is_ok());
    }

    #[test]
    fn every_spelling_of_hosts_and_targets() {
        let c =
            p("plan --platform linux/arm64,linux/arm/v7 --targets arm64,aarch64,armhf").unwrap();
        let Command::Plan(a) = c.command else {
            panic!()
        };
        assert_eq!(a.matrix.hosts(), Some(vec![Host::Arm64v8, Host::Arm32v7]));
        assert_eq!(
            a.matrix.targets(),
            Some(vec!["aarch64".into(), "arm".into()])
        );
        let e = p("plan --targets arm46").unwrap_err().to_string();
        assert!(e.contains("did you mean aarch64 (arm64)"), "{e}");
    }

    #[test]
    fn help_subcommand_is_the_dash_h_flag() {
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            help_as_flag(args(&["qus", "help", "register"])),
            args(&["qus", "register", "-h"])
        );
        assert_eq!(help_as_flag(args(&["qus", "help"])), args(&["qus", "-h"]));
        assert_eq!(help_as_flag(args(&["qus", "plan"])), args(&["qus", "plan"]));
    }

    #[test]
    fn register_refuses_what_it_would_read_otherwise() {
        assert!(p("register --install arm46").is_err());
        assert!(p("register -t aarch64").is_err());
        assert!(p("register --install aarch64 --reset -p yes").is_err());
        let Command::Register(r) = p("register --platform linux/arm64").unwrap().command else {
            panic!()
        };
        assert_eq!(r.args, ["--install", "linux/arm64"]);
    }

    #[test]
    fn register_passes_every_dialect_through() {
        for args in [
            "-s -- -p aarch64",
            "--reset -p yes",
            "--install arm64,riscv64",
            "-h",
            "-- -p",
        ] {
            let c = p(&format!("register {args}")).unwrap();
            let Command::Register(r) = c.command else {
                panic!()
            };
            let got: Vec<String> = r.args.iter().map(|a| a.to_string_lossy().into()).collect();
            assert_eq!(got.join(" "), args);
        }
    }

    #[test]
    fn register_host_options_anywhere() {
        let c = p("register --install-dir /opt/q --install arm64 --persist --persist-dir=/x --mirror http://127.0.0.1:1/debian").unwrap();
        let Command::Register(r) = c.command else {
            panic!()
        };
        assert_eq!(r.install_dir, Some(PathBuf::from("/opt/q")));
        assert_eq!(r.persist_dir, Some(PathBuf::from("/x")));
        assert!(r.persist);
        assert_eq!(
            r.source.mirror.mirror.as_deref(),
            Some("http://127.0.0.1:1/debian")
        );
        let got: Vec<String> = r.args.iter().map(|a| a.to_string_lossy().into()).collect();
        assert_eq!(got, ["--install", "arm64"]);
        assert!(p("register --reset -p yes --install-dir").is_err());
    }
}
