//! `mock-openai`: run the mock OpenAI server from the command line.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use mock_openai::{MockConfig, MockServer, Style};

/// Deterministic, scriptable mock of the OpenAI API (loopback only).
#[derive(Debug, Parser)]
#[command(name = "mock-openai", version)]
struct Args {
    /// Address to bind (loopback only).
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port (0: pick a free one).
    #[arg(long, default_value_t = 18080)]
    port: u16,
    /// Latency before each answer, in milliseconds (overrides the rules file).
    #[arg(long)]
    latency_ms: Option<f64>,
    /// JSON file with a config object or an array of rules.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Spread the latency of streamed answers across their events.
    #[arg(long)]
    spread_stream_latency: bool,
    /// Request log capacity (0 disables the log).
    #[arg(long)]
    log_capacity: Option<usize>,
    /// Do not keep request bodies in the log.
    #[arg(long)]
    no_log_bodies: bool,
    /// Reply style for every answer (repeatable; replaces the config file's
    /// `styles`). See the README for the names.
    #[arg(long = "style", value_name = "NAME")]
    styles: Vec<Style>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.host.is_loopback() {
        bail!("mock-openai binds to loopback only");
    }
    let mut config = match &args.rules {
        Some(path) => MockConfig::from_file(path)
            .with_context(|| format!("reading rules from {}", path.display()))?,
        None => MockConfig::default(),
    };
    if let Some(ms) = args.latency_ms {
        if !ms.is_finite() || ms < 0.0 {
            bail!("--latency-ms must be a non-negative number");
        }
        config.latency = Duration::from_secs_f64(ms / 1000.0);
    }
    if args.spread_stream_latency {
        config.spread_stream_latency = true;
    }
    if let Some(capacity) = args.log_capacity {
        config.log_capacity = capacity;
    }
    if args.no_log_bodies {
        config.log_bodies = false;
    }
    if !args.styles.is_empty() {
        config.styles = args.styles;
        config.validate()?;
    }
    let server = MockServer::start_on(SocketAddr::new(args.host, args.port), config).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", server.url())?;
        out.flush()?;
    }
    wait_for_signal().await?;
    let stats = serde_json::to_string(&server.stats())?;
    server.shutdown().await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "stats {stats}")?;
    out.flush()?;
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_signal() -> anyhow::Result<()> {
    tokio::signal::ctrl_c().await?;
    Ok(())
}
