//! Shared support for the end-to-end tests in `tests/it/`.
//!
//! The tests are one integration-test binary of the `host` package (see
//! `host/Cargo.toml`), so Cargo builds the real `host` binary for them and
//! they find it through `CARGO_BIN_EXE_host`. That variable exists only while
//! Cargo compiles `host`'s integration tests, not this crate: [`host!`] and
//! [`test_context!`] read it in the caller, or a caller hands the path to
//! [`HostCmd::new`] / [`TestContext::new`] itself.
//!
//! This crate holds what the test modules share: where things are, a builder
//! for running the binary in a known environment ([`HostCmd`]), a per-test
//! context ([`TestContext`]: a fresh database, the compile cache, a scratch
//! folder, a mock OpenAI server), and named timeouts ([`within`]).

use mock_openai::{MockConfig, MockServer};
use serde_json::Value;
use std::ffi::{OsStr, OsString};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The test guests, built from `tests/guests/` by `test-guests`' build script.
pub use test_guests as guests;

pub mod postgres;

/// How long one `host` process may take before the test fails: generous, as
/// the first run of a test session compiles the JavaScript and Python
/// plugins.
pub const HOST_TIMEOUT_SECS: u64 = 120;

/// The variable behind `host --allow-egress`; [`HostCmd::new`] allows
/// `127.0.0.1` with it (remove it to see the host refuse loopback).
pub const ALLOW_EGRESS_ENV: &str = "HOST_ALLOW_EGRESS";

/// The API key the specs' mock providers read (`api_key_env: MOCK_API_KEY`);
/// tests check it never leaks.
pub const MOCK_API_KEY: &str = "sk-test-not-a-real-key";

/// A [`HostCmd`] for the `host` binary of the calling integration test.
#[macro_export]
macro_rules! host {
    () => {
        $crate::HostCmd::new(env!("CARGO_BIN_EXE_host"))
    };
}

/// A [`TestContext`] for the `host` binary of the calling integration test;
/// with a mock config, the context starts a mock OpenAI server (await it).
#[macro_export]
macro_rules! test_context {
    () => {
        $crate::TestContext::new(env!("CARGO_BIN_EXE_host"))
    };
    ($config:expr) => {
        $crate::TestContext::with_mock(env!("CARGO_BIN_EXE_host"), $config)
    };
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The `target` directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
}

/// `plugins/`, where `plugins/build.sh` puts the example plugins.
pub fn plugins_dir() -> PathBuf {
    repo_root().join("plugins")
}

/// The folder with every built test guest (and `not_wasm.wasm`), nothing
/// else.
pub fn guests_dir() -> PathBuf {
    PathBuf::from(guests::DIR)
}

/// A compile cache shared by test runs, so the JS and Python components are
/// compiled once per checkout rather than once per test process.
pub fn test_cache_dir() -> PathBuf {
    target_dir().join("test-plugin-cache")
}

/// The key that authenticates the test compile cache's entries: outside
/// the cache, as the host requires.
pub fn test_cache_key() -> PathBuf {
    target_dir().join("test-plugin-cache.key")
}

/// Path of a built example plugin; panics with the command to run if missing.
pub fn plugin(name: &str) -> PathBuf {
    let path = plugins_dir().join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: build it with `plugins/build.sh` (the README's test command, .ci/test, does this)",
        path.display()
    );
    path
}

/// Path of a built test guest (or `not_wasm`); panics on an unknown name.
pub fn guest(name: &str) -> PathBuf {
    if name == "not_wasm" {
        return PathBuf::from(guests::NOT_WASM);
    }
    guests::GUESTS
        .iter()
        .find(|(guest, _)| *guest == name)
        .map(|(_, path)| PathBuf::from(path))
        .unwrap_or_else(|| panic!("no test guest `{name}` in tests/guests/"))
}

/// A temporary plugins folder holding, for each `(name, built)`, the built
/// example plugin or test guest `built` as `<name>.wasm`; panics with the
/// command to run when one is not built.
pub fn plugin_folder(pairs: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, built) in pairs {
        let file = format!("{built}.wasm");
        let from = [plugins_dir().join(&file), guests_dir().join(&file)]
            .into_iter()
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{file} is not built (run .ci/test)"));
        std::fs::copy(&from, dir.path().join(format!("{name}.wasm"))).expect("copy plugin");
    }
    dir
}

/// [`plugin_folder`] with each plugin or guest under its own name.
pub fn plugin_dir(names: &[&str]) -> tempfile::TempDir {
    let pairs: Vec<(&str, &str)> = names.iter().map(|n| (*n, *n)).collect();
    plugin_folder(&pairs)
}

/// A new, unique run-database path under `target/test-db/` (the file does
/// not exist yet), so concurrent tests never share a database.
pub fn fresh_db() -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = target_dir().join("test-db");
    let _ = std::fs::create_dir_all(&dir);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    dir.join(format!(
        "{}-{}-{nanos}.db",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Runs `bin` with `args` from the repository root (on a fresh run
/// database) and returns its output.
pub fn run(bin: &str, args: &[&str]) -> Output {
    HostCmd::new(bin)
        .args(args)
        .in_repo_root()
        .output_blocking()
}

/// Bytes (a process's output) as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Stdout of a command as text.
pub fn stdout(out: &Output) -> String {
    text(&out.stdout)
}

/// Stderr of a command as text.
pub fn stderr(out: &Output) -> String {
    text(&out.stderr)
}

/// Asserts that the process succeeded (showing both streams if not) and
/// returns its stdout.
#[track_caller]
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "host failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

/// Awaits `fut` or fails the test with `what` after `secs` seconds.
pub async fn within<T>(secs: u64, what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {secs} s: {what}"))
}

/// A mock OpenAI server on loopback, configured from JSON.
pub async fn mock(config: Value) -> MockServer {
    let config: MockConfig = serde_json::from_value(config).expect("mock config");
    let server = MockServer::start(config).await.expect("mock server");
    MOCK_URLS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(server.base_url());
    server
}

/// The base URLs of the mock servers [`mock`] started in this test process.
static MOCK_URLS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// The operator's pairing of [`MOCK_API_KEY`] with every mock server this
/// process started (`MOCK_API_KEY=URL …`, the form of `--credential` and
/// `$HOST_CREDENTIALS`): a spec may send the key only to a base URL the
/// operator paired it with, and the tests are the operator.
pub fn mock_credentials() -> Option<String> {
    let urls = MOCK_URLS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    (!urls.is_empty()).then(|| {
        urls.iter()
            .map(|u| format!("MOCK_API_KEY={u}"))
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// Writes `spec` as pretty JSON to `dir/spec.json` and returns the path.
pub fn write_spec(dir: &Path, spec: &Value) -> PathBuf {
    let path = dir.join("spec.json");
    std::fs::write(&path, serde_json::to_vec_pretty(spec).expect("spec json")).expect("write spec");
    path
}

/// One invocation of the `host` binary, in the environment every test wants:
/// a fresh run database, the shared compile cache, no colours, the mock
/// provider's key paired with the mock servers ([`mock_credentials`]), and
/// no real OpenAI key or URL from the developer's shell.
/// Set [`HostCmd::db`] to share a database between invocations.
#[derive(Debug, Clone)]
pub struct HostCmd {
    bin: PathBuf,
    args: Vec<OsString>,
    /// In order; `None` removes the variable.
    env: Vec<(OsString, Option<OsString>)>,
    dir: Option<PathBuf>,
}

impl HostCmd {
    /// `bin` is the `host` binary (`env!("CARGO_BIN_EXE_host")` in the
    /// calling test, or use [`host!`]).
    pub fn new(bin: impl Into<PathBuf>) -> Self {
        HostCmd {
            bin: bin.into(),
            args: Vec::new(),
            env: Vec::new(),
            dir: None,
        }
        .db(fresh_db())
        .env("HOST_CACHE_DIR", test_cache_dir())
        .env("HOST_CACHE_KEY", test_cache_key())
        .env("NO_COLOR", "1")
        .env("MOCK_API_KEY", MOCK_API_KEY)
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        // The mock servers and callback receivers listen on loopback, which
        // the host refuses unless the operator allows it.
        .env(ALLOW_EGRESS_ENV, "127.0.0.1")
        .mock_credentials()
    }

    /// Pairs [`MOCK_API_KEY`] with the mock servers started so far
    /// (`$HOST_CREDENTIALS`), or with none.
    fn mock_credentials(self) -> Self {
        match mock_credentials() {
            Some(pairs) => self.env("HOST_CREDENTIALS", pairs),
            None => self.env_remove("HOST_CREDENTIALS"),
        }
    }

    /// The `host` binary this command runs.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// The run database (`HOST_DB`).
    pub fn db(self, path: impl AsRef<OsStr>) -> Self {
        self.env("HOST_DB", path)
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    pub fn envs<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (k, v) in vars {
            self = self.env(k, v);
        }
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Runs from the repository root, so relative paths such as `plugins`
    /// or `examples/…` resolve.
    pub fn in_repo_root(self) -> Self {
        self.current_dir(repo_root())
    }

    /// The variables this command sets (`Some`) or removes (`None`), in
    /// order; for running the binary under another program.
    pub fn env_vars(&self) -> &[(OsString, Option<OsString>)] {
        &self.env
    }

    /// A blocking [`Command`], stdin closed.
    pub fn std(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(&self.args).stdin(Stdio::null());
        for (key, value) in &self.env {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        cmd
    }

    /// An async [`tokio::process::Command`], stdin closed, killed when
    /// dropped (a failing test leaves no process behind).
    pub fn tokio(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::from(self.std());
        cmd.kill_on_drop(true);
        cmd
    }

    /// Runs to the end, blocking; panics if the binary cannot start.
    pub fn output_blocking(&self) -> Output {
        self.std()
            .output()
            .unwrap_or_else(|e| panic!("failed to start {}: {e}", self.bin.display()))
    }

    /// Runs to the end, within [`HOST_TIMEOUT_SECS`].
    pub async fn output(&self) -> Output {
        within(HOST_TIMEOUT_SECS, "host", self.tokio().output())
            .await
            .unwrap_or_else(|e| panic!("failed to start {}: {e}", self.bin.display()))
    }

    /// Runs to the end, within [`HOST_TIMEOUT_SECS`], and keeps the time it
    /// took with the output.
    pub async fn ran(&self) -> Ran {
        let started = Instant::now();
        let out = self.output().await;
        Ran::new(out, started.elapsed())
    }
}

/// A finished `host` process: its output as text and how long it took.
#[derive(Debug)]
pub struct Ran {
    pub out: Output,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Ran {
    pub fn new(out: Output, elapsed: Duration) -> Self {
        Ran {
            stdout: stdout(&out),
            stderr: stderr(&out),
            out,
            elapsed,
        }
    }

    /// Asserts success, showing both streams if not.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert!(
            self.out.status.success(),
            "host run failed ({:?})\nstdout:\n{}\nstderr:\n{}",
            self.out.status.code(),
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn code(&self) -> Option<i32> {
        self.out.status.code()
    }

    /// Stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    /// The run id from the trace's first line (`run <id> · workflow …`).
    #[track_caller]
    pub fn run_id(&self) -> String {
        self.stderr
            .lines()
            .find_map(|l| l.strip_prefix("run "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("no run line on stderr:\n{}", self.stderr))
            .to_string()
    }

    /// Input and output tokens from the `✓ completed … · I input / O output
    /// tokens` line.
    #[track_caller]
    pub fn tokens(&self) -> (i64, i64) {
        let line = self
            .stderr
            .lines()
            .find(|l| l.contains(" input / "))
            .unwrap_or_else(|| panic!("no usage line on stderr:\n{}", self.stderr));
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = |word: &str| -> i64 {
            let i = words
                .iter()
                .position(|w| *w == word)
                .unwrap_or_else(|| panic!("no `{word}` in {line:?}"));
            words[i - 1].parse().expect("a token count")
        };
        (at("input"), at("output"))
    }
}

/// One test's world: a fresh run database, the shared compile cache, a
/// scratch folder (removed with the context) and, if asked for, a mock
/// OpenAI server. [`TestContext::host`] runs the binary in it.
#[derive(Debug)]
pub struct TestContext {
    bin: PathBuf,
    db: PathBuf,
    dir: tempfile::TempDir,
    mock: Option<MockServer>,
}

impl TestContext {
    /// Without a mock server; `bin` is the `host` binary (or use
    /// [`test_context!`]).
    pub fn new(bin: impl Into<PathBuf>) -> Self {
        TestContext {
            bin: bin.into(),
            db: fresh_db(),
            dir: tempfile::tempdir().expect("tempdir"),
            mock: None,
        }
    }

    /// With a mock OpenAI server configured from `config`.
    pub async fn with_mock(bin: impl Into<PathBuf>, config: Value) -> Self {
        let mut cx = Self::new(bin);
        cx.mock = Some(mock(config).await);
        cx
    }

    /// `host` on this context's database.
    pub fn host(&self) -> HostCmd {
        HostCmd::new(&self.bin).db(&self.db)
    }

    /// The run database (it may not exist yet).
    pub fn db(&self) -> &Path {
        &self.db
    }

    /// The scratch folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The compile cache `host` uses.
    pub fn cache_dir(&self) -> PathBuf {
        test_cache_dir()
    }

    /// The mock server; panics if the context was made without one.
    #[track_caller]
    pub fn mock(&self) -> &MockServer {
        self.mock
            .as_ref()
            .expect("a TestContext made with a mock config")
    }

    /// Writes `spec` to `spec.json` in the scratch folder.
    pub fn write_spec(&self, spec: &Value) -> PathBuf {
        write_spec(self.dir(), spec)
    }
}
