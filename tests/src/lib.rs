//! Shared support for the end-to-end tests in `tests/`.
//!
//! The test files themselves are integration tests of the `host` package
//! (see `host/Cargo.toml`), so Cargo builds the real `host` binary for them
//! and they find it through `CARGO_BIN_EXE_host`. This crate holds what they
//! share: where things are, and a clear failure when something the test
//! setup builds is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

/// Where `tests/guests/build.sh` puts the test guests.
pub fn guests_dir() -> PathBuf {
    target_dir().join("test-guests")
}

/// A compile cache shared by test runs, so the JS and Python components are
/// compiled once per checkout rather than once per test process.
pub fn test_cache_dir() -> PathBuf {
    target_dir().join("test-plugin-cache")
}

/// Path of a built example plugin; panics with the command to run if missing.
pub fn plugin(name: &str) -> PathBuf {
    require(
        plugins_dir().join(format!("{name}.wasm")),
        "plugins/build.sh",
    )
}

/// Path of a built test guest; panics with the command to run if missing.
pub fn guest(name: &str) -> PathBuf {
    require(
        guests_dir().join(format!("{name}.wasm")),
        "tests/guests/build.sh",
    )
}

fn require(path: PathBuf, build: &str) -> PathBuf {
    assert!(
        path.is_file(),
        "{} is missing: build it with `{build}` (the README's test command, .ci/test, does this)",
        path.display()
    );
    path
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
    Command::new(bin)
        .args(args)
        .current_dir(repo_root())
        .env("HOST_DB", fresh_db())
        .env("HOST_CACHE_DIR", test_cache_dir())
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("failed to start {bin}: {e}"))
}

/// Stdout of a command as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr of a command as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
