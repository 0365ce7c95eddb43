//! A throwaway PostgreSQL cluster for tests: `initdb` in a temporary
//! folder, a server on a free loopback port, started once per test process,
//! and a fresh database per caller ([`database`]).
//!
//! The server stops, and its folder goes, when the test process ends: a
//! small shell watchdog started with it checks every half second whether
//! the test process is still there (a `Drop` would not run for a static,
//! nor on `kill -9`).
//!
//! `initdb` is refused to root, so as root (CI containers) the cluster runs
//! as the `postgres` user (`runuser -u postgres`), which Debian's package
//! creates. Without `initdb` (on `PATH` or in Debian's
//! `/usr/lib/postgresql/*/bin`) [`database`] returns `None` and the caller
//! skips — unless `CI` is set: then it panics, so CI never skips these tests.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The user the cluster runs as when the tests run as root.
const OS_USER: &str = "postgres";
/// The cluster's superuser (trust authentication, loopback only).
const DB_USER: &str = "host";

struct Cluster {
    port: u16,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// The folder holding `initdb` and `postgres`, if PostgreSQL is installed.
pub fn bin_dir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    debian.sort();
    debian.reverse();
    on_path
        .into_iter()
        .chain(debian)
        .find(|d| d.join("initdb").is_file() && d.join("postgres").is_file())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `program args…`, as the cluster's OS user.
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", OS_USER, "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn start() -> Result<Cluster, String> {
    let bin = bin_dir().ok_or("initdb not found")?;
    let dir = tempfile::Builder::new()
        .prefix("host-pg-")
        .tempdir()
        .map_err(|e| format!("temporary folder: {e}"))?
        .keep();
    if is_root() {
        let status = Command::new("chown")
            .arg(format!("{OS_USER}:"))
            .arg(&dir)
            .status()
            .map_err(|e| format!("chown: {e}"))?;
        if !status.success() {
            return Err(format!("chown {OS_USER} {} failed", dir.display()));
        }
    }
    let data = dir.join("data");
    let out = as_owner(&bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args(["-U", DB_USER, "--auth=trust", "-E", "UTF8", "--no-sync"])
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let port = free_port()?;
    // The watchdog: the server, stopped (fast shutdown) and its folder
    // removed once this process is gone.
    let script = r#"
        "$1/postgres" -D "$2/data" -p "$3" -k "$2" -c listen_addresses=127.0.0.1 \
            -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
            -c max_connections=300 >"$2/log" 2>&1 &
        pg=$!
        while [ -d "/proc/$4" ] && kill -0 "$pg" 2>/dev/null; do sleep 0.5; done
        kill -INT "$pg" 2>/dev/null; wait "$pg"; rm -rf "$2"
    "#;
    as_owner(Path::new("/bin/sh"))
        .args(["-c", script, "watchdog"])
        .arg(&bin)
        .arg(&dir)
        .arg(port.to_string())
        .arg(std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting postgres: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match psql(port, "postgres", "SELECT 1") {
            Ok(()) => return Ok(Cluster { port }),
            Err(e) if Instant::now() > deadline => {
                let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
                return Err(format!("postgres did not start: {e}\n{log}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Runs `sql` in database `db` (on a thread of its own, so callers may be
/// inside an async runtime or not).
fn psql(port: u16, db: &str, sql: &str) -> Result<(), String> {
    let url = format!("postgres://{DB_USER}@127.0.0.1:{port}/{db}");
    let sql = sql.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async move {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .map_err(|e| e.to_string())?;
            let driver = tokio::spawn(conn);
            let result = client.batch_execute(&sql).await.map_err(|e| e.to_string());
            drop(client);
            let _ = driver.await;
            result
        })
    })
    .join()
    .map_err(|_| "the SQL thread panicked".to_owned())?
}

/// The URL of a new, empty database on the test cluster (started on first
/// use), or `None` when PostgreSQL is not installed and `CI` is unset.
///
/// # Panics
/// When the cluster cannot start, or PostgreSQL is missing under `CI`.
pub fn database() -> Option<String> {
    if bin_dir().is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but PostgreSQL's initdb is not installed (.ci/setup installs it)"
        );
        eprintln!("skipping the PostgreSQL part: initdb not found (install postgresql)");
        return None;
    }
    let cluster = match CLUSTER.get_or_init(start) {
        Ok(c) => c,
        Err(e) => panic!("cannot start the test PostgreSQL cluster: {e}"),
    };
    let name = format!("t{}", NEXT_DB.fetch_add(1, Ordering::SeqCst));
    if let Err(e) = psql(cluster.port, "postgres", &format!("CREATE DATABASE {name}")) {
        panic!("cannot create test database {name}: {e}");
    }
    Some(format!(
        "postgres://{DB_USER}@127.0.0.1:{}/{name}",
        cluster.port
    ))
}
