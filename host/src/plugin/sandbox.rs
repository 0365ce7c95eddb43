//! Per-call store state: the sandbox a plugin instance runs in.
//!
//! A call must cost microseconds, so nothing is built that the guest does not
//! use: the WASI context is created lazily on the guest's first WASI call
//! (most hooks never make one), and guest stdout/stderr go to small capped
//! buffers that are flushed to `tracing` after the call.

use super::bindings::{self, wit};
use super::http::NetHooks;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::component::{Linker, ResourceTable, WasmStr};
use wasmtime::{ResourceLimiter, StoreContextMut};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Bytes of guest stdout (and, separately, stderr) kept per call; the rest is
/// counted and dropped. A chatty plugin cannot make the host buffer more.
pub const MAX_CAPTURED_OUTPUT: usize = 16 << 10;
/// Lines of guest stdout (and, separately, stderr) logged per call; the
/// rest is counted in one summary line.
pub const MAX_OUTPUT_LINES: usize = 64;
/// Longest line of guest stdout/stderr logged, in bytes.
pub(super) const MAX_OUTPUT_LINE: usize = 1 << 10;
/// `host.log` records accepted per call; later ones are counted and dropped.
pub const MAX_LOG_RECORDS: u32 = 256;
/// Bytes of `host.log` text (message + fields, after clipping) logged per
/// call; records past it are counted and dropped.
pub const MAX_LOG_BYTES: usize = 64 << 10;
/// Longest `host.log` message or fields text kept, in bytes.
pub(super) const MAX_LOG_TEXT: usize = 4 << 10;
/// Table elements a plugin may grow to (CPython's function table is large).
pub(super) const MAX_TABLE_ELEMENTS: usize = 100_000;
/// Host bytes one table element costs (a pointer), counted in the call's
/// memory cap.
const TABLE_ELEMENT_BYTES: u64 = std::mem::size_of::<usize>() as u64;
/// WASI resources (streams, pollables, ...) a call may hold at once.
pub(super) const MAX_RESOURCES: usize = 4096;

/// What makes a call's environment: time, randomness and identity.
pub(crate) struct CallSetup {
    pub plugin: Arc<str>,
    pub deadline: Instant,
    pub memory_limit: u64,
    /// For hooks: seed of the deterministic random source and clocks.
    pub determinism: Option<Determinism>,
    /// What `host.idempotency-key` answers (a tool call of a run).
    pub idempotency_key: Option<String>,
    /// What the call may send over `wasi:http` (nothing unless a tool
    /// call of a granted plugin).
    pub net: NetHooks,
}

#[derive(Clone, Copy)]
pub(crate) struct Determinism {
    pub seed: u128,
    pub wall_start: Duration,
}

pub(crate) struct CallState {
    pub setup: CallSetup,
    wasi: Option<WasiCtx>,
    http: WasiHttpCtx,
    table: ResourceTable,
    pub stdout: Capture,
    pub stderr: Capture,
    logs: u32,
    log_bytes: usize,
    dropped_logs: u32,
    /// Bytes of every memory and table of this call's store, summed.
    used_bytes: u64,
    pub timed_out: bool,
    /// Set when the limiter refused a memory growth: (limit, requested).
    pub memory_refused: Option<(u64, u64)>,
}

impl CallState {
    pub(crate) fn new(setup: CallSetup) -> Self {
        CallState {
            setup,
            wasi: None,
            http: WasiHttpCtx::new(),
            table: {
                let mut table = ResourceTable::new();
                table.set_max_capacity(MAX_RESOURCES);
                table
            },
            stdout: Capture::default(),
            stderr: Capture::default(),
            logs: 0,
            log_bytes: 0,
            dropped_logs: 0,
            used_bytes: 0,
            timed_out: false,
            memory_refused: None,
        }
    }

    fn build_wasi(&self) -> WasiCtx {
        // Deny by default: no preopens, no env, no args, stdin closed, no
        // network (the builder's socket check denies every address and name
        // lookup is off). Output goes to the capped capture buffers.
        let mut b = WasiCtx::builder();
        b.stdout(self.stdout.clone()).stderr(self.stderr.clone());
        b.allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false);
        if let Some(d) = self.setup.determinism {
            let clock = LogicalClock::new(d.wall_start);
            b.wall_clock(clock.clone()).monotonic_clock(clock);
            b.secure_random(SplitMix::new(d.seed as u64 ^ (d.seed >> 64) as u64));
            b.insecure_random(SplitMix::new((d.seed >> 64) as u64 ^ 0x9e37_79b9_7f4a_7c15));
            b.insecure_random_seed(d.seed);
        }
        b.build()
    }

    /// Emits captured stdout/stderr and dropped-record counts to `tracing`.
    pub(crate) fn flush_output(&self) {
        let plugin = &*self.setup.plugin;
        for (stream, cap) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let (text, dropped) = cap.take();
            let text = self.setup.net.mask(text);
            let mut lines = text.lines().filter(|l| !l.trim().is_empty());
            for line in lines.by_ref().take(MAX_OUTPUT_LINES) {
                let line = truncate(line, MAX_OUTPUT_LINE);
                tracing::info!(target: "plugin", plugin, stream, "{line}");
            }
            let dropped_lines = lines.count();
            if dropped > 0 || dropped_lines > 0 {
                tracing::warn!(target: "plugin", plugin, stream, dropped_bytes = dropped, dropped_lines, "plugin output over the per-call limit was dropped");
            }
        }
        if self.dropped_logs > 0 {
            tracing::warn!(target: "plugin", plugin, dropped = self.dropped_logs, "plugin log records over the per-call limit were dropped");
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        if self.wasi.is_none() {
            self.wasi = Some(self.build_wasi());
        }
        let ctx = match self.wasi.as_mut() {
            Some(ctx) => ctx,
            None => unreachable!("initialised just above"),
        };
        WasiCtxView {
            ctx,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.setup.net,
        }
    }
}

impl CallState {
    /// Whether one more `host.log` record is accepted; counts it dropped
    /// otherwise. Checked before the guest's strings are even read.
    fn log_accepted(&mut self) -> bool {
        if self.logs >= MAX_LOG_RECORDS || self.log_bytes >= MAX_LOG_BYTES {
            self.dropped_logs = self.dropped_logs.saturating_add(1);
            return false;
        }
        true
    }

    /// `host.log`: one record, its texts already clipped to [`MAX_LOG_TEXT`].
    fn log(&mut self, level: wit::Level, message: &str, fields: &str) {
        self.logs += 1;
        self.log_bytes += message.len() + fields.len();
        let plugin = &*self.setup.plugin;
        let message = self.setup.net.mask(message.to_owned());
        let fields = self.setup.net.mask(fields.to_owned());
        // One record, one line: a newline in the text cannot forge another.
        let message = message.escape_debug();
        let fields = fields.escape_debug();
        match level {
            wit::Level::Trace => tracing::trace!(target: "plugin", plugin, %fields, "{message}"),
            wit::Level::Debug => tracing::debug!(target: "plugin", plugin, %fields, "{message}"),
            wit::Level::Info => tracing::info!(target: "plugin", plugin, %fields, "{message}"),
            wit::Level::Warn => tracing::warn!(target: "plugin", plugin, %fields, "{message}"),
            wit::Level::Error => tracing::error!(target: "plugin", plugin, %fields, "{message}"),
        }
    }
}

/// Adds `workflow:plugin/host` to `linker` by hand rather than through
/// bindgen: bindgen would copy `message` and `fields` whole (up to the
/// memory cap each) before the host could clip them. Here they stay in the
/// guest's memory until the record is accepted, and only the clipped part
/// is copied.
pub(super) fn add_host_imports(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    let name = format!(
        "{}/host@{}",
        bindings::PACKAGE,
        bindings::SUPPORTED_VERSIONS[0]
    );
    let mut host = linker.instance(&name)?;
    host.func_wrap(
        "log",
        |mut store: StoreContextMut<'_, CallState>,
         (level, message, fields): (wit::Level, WasmStr, WasmStr)| {
            if !store.data_mut().log_accepted() {
                return Ok(());
            }
            let clipped = |s: &WasmStr, store: &StoreContextMut<'_, CallState>| {
                s.to_str(store)
                    .map(|text| truncate(&text, MAX_LOG_TEXT).to_owned())
                    .unwrap_or_else(|e| format!("<invalid string: {e}>"))
            };
            let message = clipped(&message, &store);
            let fields = clipped(&fields, &store);
            store.data_mut().log(level, &message, &fields);
            Ok(())
        },
    )?;
    host.func_wrap(
        "idempotency-key",
        |store: StoreContextMut<'_, CallState>, (): ()| {
            Ok((store.data().setup.idempotency_key.clone(),))
        },
    )
}

fn truncate(s: &str, max: usize) -> &str {
    &s[..s.floor_char_boundary(max)]
}

impl CallState {
    /// Accounts `current → desired` bytes of one memory or table against the
    /// call's cap, which covers every memory and table of the store
    /// together: a component with many memories gets no more than one with
    /// a single memory.
    fn grow(&mut self, current: u64, desired: u64) -> wasmtime::Result<bool> {
        let limit = self.setup.memory_limit;
        let total = self
            .used_bytes
            .saturating_sub(current)
            .saturating_add(desired);
        if total > limit {
            self.memory_refused = Some((limit, total));
            return Err(wasmtime::format_err!(
                "memory limit of {} MiB exceeded (all memories and tables of the call would take {} MiB)",
                limit >> 20,
                total >> 20
            ));
        }
        self.used_bytes = total;
        Ok(true)
    }
}

/// Enforces the per-call memory cap and records why growth was refused,
/// so the error can say "memory limit" instead of a bare trap.
impl ResourceLimiter for CallState {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow(current as u64, desired as u64)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            return Ok(false);
        }
        self.grow(
            current as u64 * TABLE_ELEMENT_BYTES,
            desired as u64 * TABLE_ELEMENT_BYTES,
        )
    }
}

/// A capped, shared byte buffer standing in for a guest's stdout or stderr.
#[derive(Clone, Default)]
pub(crate) struct Capture(Arc<Mutex<CaptureBuf>>);

#[derive(Default)]
struct CaptureBuf {
    bytes: Vec<u8>,
    dropped: usize,
}

impl Capture {
    fn push(&self, data: &[u8]) {
        let Ok(mut buf) = self.0.lock() else { return };
        let room = MAX_CAPTURED_OUTPUT.saturating_sub(buf.bytes.len());
        let keep = room.min(data.len());
        buf.bytes.extend_from_slice(&data[..keep]);
        buf.dropped += data.len() - keep;
    }

    /// The captured text (lossy UTF-8) and the number of dropped bytes.
    pub(crate) fn take(&self) -> (String, usize) {
        let Ok(mut buf) = self.0.lock() else {
            return (String::new(), 0);
        };
        let text = String::from_utf8_lossy(&buf.bytes).into_owned();
        let dropped = buf.dropped;
        buf.bytes.clear();
        buf.dropped = 0;
        (text, dropped)
    }

    /// The last non-empty lines, for error messages (e.g. a Rust panic).
    pub(crate) fn tail(&self, max_bytes: usize) -> Option<String> {
        let buf = self.0.lock().ok()?;
        let text = String::from_utf8_lossy(&buf.bytes);
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let start = text.ceil_char_boundary(text.len().saturating_sub(max_bytes));
        Some(text[start..].replace('\n', " | "))
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(CaptureWriter(self.clone()))
    }

    // A direct stream: the default adapter would spawn a task per call.
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl OutputStream for Capture {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 << 10)
    }
}

struct CaptureWriter(Capture);

impl tokio::io::AsyncWrite for CaptureWriter {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.0.push(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// The clock hooks see: starts at the run's logical start time and advances
/// one microsecond per reading, so the same call always reads the same times.
#[derive(Clone)]
struct LogicalClock {
    start: Duration,
    ticks: Arc<std::sync::atomic::AtomicU64>,
}

impl LogicalClock {
    fn new(start: Duration) -> Self {
        LogicalClock {
            start,
            ticks: Arc::default(),
        }
    }

    fn tick(&self) -> u64 {
        self.ticks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

impl HostWallClock for LogicalClock {
    fn resolution(&self) -> Duration {
        Duration::from_micros(1)
    }

    fn now(&self) -> Duration {
        self.start + Duration::from_micros(self.tick())
    }
}

impl HostMonotonicClock for LogicalClock {
    fn resolution(&self) -> u64 {
        1_000
    }

    fn now(&self) -> u64 {
        self.tick() * 1_000
    }
}

/// SplitMix64: tiny, fast and fully determined by its seed. Not for secrets;
/// hooks have no secrets, and determinism is the point.
struct SplitMix(u64);

impl SplitMix {
    fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl rand_core::TryRng for SplitMix {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok((self.next() >> 32) as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.next())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}
