//! Command-line parsing and the commands themselves.

mod approvals;
mod config;
mod dev;
mod durable;
mod error;
mod go_state;
mod outbox;
mod plugins;
mod replay;
mod run;
mod serve;
mod sinks;
mod spec;
mod worker;

use error::CliError;

use clap::{Parser, Subcommand};
use host::telemetry::{OtlpConfig, Telemetry, TelemetryError};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code: the operation failed (a run failed).
pub(crate) const EXIT_FAILED: u8 = 1;
/// Exit code: bad input (spec, plugins or usage).
pub(crate) const EXIT_BAD_INPUT: u8 = 2;
/// Exit code: the run paused, waiting for a human's approval.
pub(crate) const EXIT_WAITING: u8 = 3;
/// Exit code: Ctrl-C (SIGINT) cancelled the run (128 + SIGINT, as shells do).
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, Parser)]
#[command(
    name = "host",
    version,
    about = "Run declarative multi-agent LLM workflows with sandboxed WebAssembly plugins"
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Args)]
pub(crate) struct GlobalArgs {
    /// Directory for compiled plugin artifacts [default: the user cache dir]
    #[arg(long, global = true, env = "HOST_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// The secret key that authenticates compile cache entries (created
    /// 0600 on first use; outside the cache directory) [default:
    /// compile-cache.key in the user data dir]
    #[arg(long, global = true, env = "HOST_CACHE_KEY", value_name = "FILE")]
    pub cache_key: Option<PathBuf>,
    /// Compile plugins on every start instead of caching them
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// Log filter (tracing syntax, e.g. `info,plugin=debug`); RUST_LOG also works
    #[arg(long, global = true, value_name = "FILTER")]
    pub log: Option<String>,
    /// The run database: a SQLite file, or a PostgreSQL server's URL
    /// (`postgres://user@host/db`, shared by a fleet: docs/SCALING.md)
    /// [default: host.db in the user data dir]
    #[arg(long, global = true, env = "HOST_DB", value_name = "FILE|URL")]
    pub db: Option<PathBuf>,
    /// Export the trace to this OTLP/HTTP endpoint, e.g. `http://localhost:4318`
    /// (default: $OTEL_EXPORTER_OTLP_ENDPOINT; "" turns export off)
    #[arg(long, global = true, value_name = "URL")]
    pub otlp: Option<String>,
    /// The operator's host configuration (TOML): credentials paired with
    /// base URLs, egress allowances, limits. See docs/SECURITY.md
    #[arg(long, global = true, env = "HOST_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Pair an API key's environment variable with the one base URL its
    /// value may be sent to, besides the host config's pairs (repeatable;
    /// space-separated in $HOST_CREDENTIALS)
    #[arg(
        long = "credential",
        global = true,
        env = "HOST_CREDENTIALS",
        value_name = "VAR=URL",
        value_delimiter = ' '
    )]
    pub credentials: Vec<host::plan::CredentialPair>,
    /// Allow a private or loopback destination for provider base URLs and
    /// event callbacks: an address, a range or address:port (repeatable,
    /// comma-separated in $HOST_ALLOW_EGRESS), added to the host config's
    /// `[egress] allow`
    #[arg(
        long = "allow-egress",
        global = true,
        env = "HOST_ALLOW_EGRESS",
        value_name = "ADDR",
        value_delimiter = ','
    )]
    pub allow_egress: Vec<host::egress::Allowed>,
    /// The file named by `config`, read once in `main` before any command.
    #[arg(skip)]
    pub host_config: config::HostConfig,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a workflow: final output on stdout, a readable trace on stderr
    Run(Box<run::RunArgs>),
    /// Inspect and validate plugins
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),
    /// Check a spec: shape, references, plugins, schemas; every problem at once
    Validate(spec::ValidateArgs),
    /// Print the JSON Schema of the spec
    Schema(spec::SchemaArgs),
    /// Continue interrupted runs from their journals (nothing done is redone)
    Resume(durable::ResumeArgs),
    /// Re-execute a recorded run with the current plugins, models and tools
    /// served from its journal (zero model calls until its input changes);
    /// show what changed
    Replay(replay::ReplayArgs),
    /// List, inspect and cancel runs
    #[command(subcommand)]
    Runs(durable::RunsCommand),
    /// Tool calls waiting for a human's approval
    #[command(subcommand)]
    Approvals(approvals::ApprovalsCommand),
    /// Approve a waiting tool call
    Approve(approvals::ApproveArgs),
    /// Reject a waiting tool call; the model gets the reason as the tool's result
    Reject(approvals::RejectArgs),
    /// Events waiting for HTTP delivery: list them, deliver them
    #[command(subcommand)]
    Outbox(outbox::OutboxCommand),
    /// Run as a service: an HTTP API with live events, many concurrent
    /// runs, plugins and workflows swapped live (docs/API.md)
    Serve(Box<serve::ServeArgs>),
    /// Execute runs from a shared PostgreSQL database without the HTTP
    /// API: a fleet member next to `host serve` (docs/SCALING.md)
    Worker(Box<worker::WorkerArgs>),
    /// Plugin development: rebuild a plugin when its sources change and
    /// replay a recorded run with it (zero model calls)
    Dev(dev::DevArgs),
}

pub(crate) fn main() -> ExitCode {
    let mut cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_BAD_INPUT } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    cli.global.host_config = match config::HostConfig::load(&cli.global) {
        Ok(config) => config,
        Err(e) => return e.report(),
    };
    // --allow-egress adds to the file's allowances.
    let allowed = cli.global.allow_egress.clone();
    cli.global.host_config.egress.allow.extend(allowed);
    // `--quiet` is "errors only": warnings (a model call retried, say) too.
    let quiet = match &cli.command {
        Command::Run(args) => args.quiet,
        Command::Resume(args) => args.quiet,
        _ => false,
    };
    // A service logs what it does (loads, reloads, resumes, prunes).
    let serving = matches!(cli.command, Command::Serve(_) | Command::Worker(_));
    let telemetry = match init_tracing(&cli.global, quiet, serving) {
        Ok(telemetry) => telemetry,
        Err(e) => return CliError::bad_input(e.to_string()).report(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return CliError::failed(format!("failed to start the async runtime: {e}")).report();
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(&cli.global, *args).await,
            Command::Plugins(cmd) => plugins::run(&cli.global, cmd).await,
            Command::Validate(args) => spec::validate(&cli.global, args).await,
            Command::Schema(args) => spec::schema(args),
            Command::Resume(args) => durable::resume(&cli.global, args).await,
            Command::Replay(args) => replay::replay(&cli.global, args).await,
            Command::Runs(cmd) => durable::runs(&cli.global, cmd).await,
            Command::Approvals(cmd) => approvals::approvals(&cli.global, cmd).await,
            Command::Approve(args) => approvals::approve(&cli.global, args).await,
            Command::Reject(args) => approvals::reject(&cli.global, args).await,
            Command::Outbox(cmd) => outbox::run(&cli.global, cmd).await,
            Command::Serve(args) => serve::serve(&cli.global, *args).await,
            Command::Worker(args) => worker::worker(&cli.global, *args).await,
            Command::Dev(args) => dev::dev(&cli.global, args).await,
        }
    });
    // Dropping the runtime ends whatever is still running, and with it the
    // last spans; then the exporter sends them, also when the run failed.
    drop(runtime);
    let code = result.unwrap_or_else(|e| e.report());
    if let Some(telemetry) = telemetry
        && let Err(e) = telemetry.shutdown()
    {
        eprintln!("warning: {e}");
    }
    code
}

/// Logs go to stderr; data goes to stdout; warnings and errors unless
/// `quiet` (errors only) or `--log`/`RUST_LOG` say otherwise. Colour only on
/// a terminal and never with `NO_COLOR` set. With an OTLP endpoint (`--otlp` or the `OTEL_*`
/// variables) spans are also exported, filtered on their own so that the log
/// filter does not decide what a trace contains.
fn init_tracing(
    global: &GlobalArgs,
    quiet: bool,
    serving: bool,
) -> Result<Option<Telemetry>, TelemetryError> {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::prelude::*;
    let default = match (quiet, serving) {
        (true, _) => "error",
        (false, true) => "warn,host=info",
        (false, false) => "warn",
    };
    let filter = match global.log.as_deref() {
        Some(f) => EnvFilter::new(f),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)),
    };
    let telemetry = OtlpConfig::resolve(global.otlp.as_deref(), |var| std::env::var(var).ok())?
        .map(|config| Telemetry::start(&config))
        .transpose()?;
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(use_color())
        .with_filter(filter);
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(telemetry.as_ref().map(Telemetry::layer))
        .try_init();
    Ok(telemetry)
}

pub(crate) fn use_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// The run database from `--db` / `HOST_DB`, else the default path: a
/// PostgreSQL URL (`postgres://…`, connected and migrated here, so a bad
/// address fails at once) or a SQLite file. Any other URL is refused
/// rather than taken for a file path.
fn open_store(global: &GlobalArgs) -> Result<std::sync::Arc<dyn host::store::Store>, CliError> {
    let path = match &global.db {
        Some(p) => p.clone(),
        None => host::store::default_db_path().ok_or_else(|| {
            CliError::failed(
                "no home directory for the run database: give --db FILE or set HOST_DB",
            )
        })?,
    };
    if let Some(url) = path.to_str().filter(|p| host::store::is_postgres_url(p)) {
        // The CLI's runtime is multi-threaded: this worker may block.
        let store = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(host::store::PostgresStore::connect(url))
        })?;
        return Ok(std::sync::Arc::new(store));
    }
    if let Some(scheme) = url_scheme(&path) {
        return Err(CliError::bad_input(format!(
            "--db: `{scheme}://…` is a URL, but the run database can only be a SQLite file \
             or a PostgreSQL server (`postgres://…`)"
        ))
        .with_hint(Some("give --db a file path, e.g. --db runs.db")));
    }
    Ok(std::sync::Arc::new(host::store::SqliteStore::open(&path)?))
}

/// The scheme of a `--db` value that looks like a URL (`SCHEME://…`).
fn url_scheme(path: &std::path::Path) -> Option<&str> {
    let (scheme, _) = path.to_str()?.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

/// Which environment keys may go to which base URLs: the host config's
/// pairs, then the command line's.
pub(crate) fn credential_policy(global: &GlobalArgs) -> host::plan::CredentialPolicy {
    global
        .host_config
        .credentials
        .clone()
        .with_pairs(global.credentials.iter().cloned())
}

/// The plugin runtime with the cache settings from the command line.
pub(crate) fn plugin_runtime(
    global: &GlobalArgs,
) -> anyhow::Result<std::sync::Arc<host::plugin::Runtime>> {
    let mut options = host::plugin::RuntimeOptions {
        cache_key_file: global.cache_key.clone(),
        policy: global.host_config.plugins.clone(),
        ..Default::default()
    };
    if global.no_cache {
        options.cache_dir = None;
    } else if let Some(dir) = &global.cache_dir {
        options.cache_dir = Some(dir.clone());
    }
    Ok(host::plugin::Runtime::new(options)?)
}

#[cfg(test)]
mod tests {
    use super::url_scheme;
    use std::path::Path;

    #[test]
    fn urls_are_told_from_paths() {
        fn scheme(s: &str) -> Option<&str> {
            url_scheme(Path::new(s))
        }
        assert_eq!(scheme("postgres://u:p@localhost/db"), Some("postgres"));
        assert_eq!(scheme("postgresql://localhost"), Some("postgresql"));
        assert_eq!(scheme("sqlite:///tmp/x.db"), Some("sqlite"));
        assert_eq!(scheme("runs.db"), None);
        assert_eq!(scheme("/var/lib/host/runs.db"), None);
        assert_eq!(scheme("C:\\runs.db"), None);
        assert_eq!(scheme("./odd://name"), None);
    }
}
