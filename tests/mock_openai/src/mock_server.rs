//! The public [`MockServer`]: start, inspect, reconfigure, shut down.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{MockConfig, Rule};
use crate::server::{RuleSet, Shared, lock, router};
use crate::stats::{LoggedRequest, Stats};
use crate::{MockError, Result};

const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// A running mock server on a loopback port. Dropping it stops the server
/// (without waiting); [`MockServer::shutdown`] stops it gracefully.
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl MockServer {
    /// Starts a server on `127.0.0.1` with an ephemeral port.
    pub async fn start(config: MockConfig) -> Result<Self> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    /// Starts a server on `addr`, which must be a loopback address.
    pub async fn start_on(addr: SocketAddr, config: MockConfig) -> Result<Self> {
        if !addr.ip().is_loopback() {
            return Err(MockError::NotLoopback(addr));
        }
        config.validate()?;
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(4096)?;
        let addr = listener.local_addr()?;
        let (tx, rx) = watch::channel(false);
        let shared = Arc::new(Shared::new(config, rx.clone()));
        let app = router(Arc::clone(&shared));
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("set_nodelay failed: {e}");
            }
        });
        let mut stop = rx;
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
        });
        Ok(Self {
            addr,
            shared,
            shutdown: tx,
            task: Some(task),
        })
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (no path).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1`, the API base for OpenAI clients.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.shared.snapshot()
    }

    /// The request log (oldest first, at most `log_capacity` entries).
    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.shared.log).iter().cloned().collect()
    }

    /// Zeroes counters (except `in_flight`), rule counters and the log.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Replaces the rules (their counters start from zero).
    pub fn set_rules(&self, rules: Vec<Rule>) -> Result<()> {
        let config = MockConfig {
            rules,
            ..MockConfig::default()
        };
        config.validate()?;
        let set = Arc::new(RuleSet::new(config.rules));
        *self
            .shared
            .rules
            .write()
            .unwrap_or_else(PoisonError::into_inner) = set;
        Ok(())
    }

    /// Stops accepting, releases hung requests, waits for in-flight ones
    /// (at most 10 s, then aborts).
    pub async fn shutdown(mut self) -> Result<()> {
        self.shutdown.send_replace(true);
        let Some(mut task) = self.task.take() else {
            return Ok(());
        };
        match tokio::time::timeout(SHUTDOWN_TIMEOUT, &mut task).await {
            Ok(Ok(result)) => result.map_err(MockError::Io),
            Ok(Err(join)) => Err(MockError::Task(join.to_string())),
            Err(_) => {
                task.abort();
                Err(MockError::ShutdownTimeout(SHUTDOWN_TIMEOUT))
            }
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}
