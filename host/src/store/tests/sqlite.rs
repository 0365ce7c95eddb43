//! SQLite only: group commit and its barriers, threads and processes
//! sharing one database, the WAL, and files (reopening, migration,
//! corruption, newer schemas, locking).

use std::time::{Duration, Instant};

use futures::FutureExt;

use super::*;

/// Callers on many threads race for the connection: every call is run
/// (none waits forever for a runner that has already left) and each run's
/// seqs stay gapless.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_calls_from_many_threads_all_complete() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().expect("open"));
    for run in 0..4 {
        store
            .create_run(new_run(&format!("m{run}"), None))
            .await
            .expect("create");
    }
    let append = |store: Arc<dyn Store>, t: u64| async move {
        for i in 0..1000_u64 {
            let run = format!("m{}", (t + i) % 4);
            let e = entry(JournalKind::ToolResult, &format!("t{t}/{i}"), i);
            if i % 2 == 0 {
                store.append(&run, e).await?;
            } else {
                store.clone().append_queued(run, e, None).await?;
            }
        }
        Ok::<_, StoreError>(())
    };
    let mut tasks = Vec::new();
    for t in 0..6 {
        tasks.push(tokio::spawn(append(store.clone(), t)));
    }
    // And two plain threads outside the runtime.
    let threads: Vec<_> = (6..8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || futures::executor::block_on(append(store, t)))
        })
        .collect();
    let all = async {
        for task in tasks {
            task.await.expect("task").expect("appends");
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("every call completes");
    for thread in threads {
        thread.join().expect("thread").expect("appends");
    }
    let mut total = 0;
    for run in 0..4 {
        let journal = store
            .journal(ALL, &format!("m{run}"))
            .await
            .expect("journal");
        let seqs: Vec<u64> = journal.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, (1..=journal.len() as u64).collect::<Vec<_>>());
        total += journal.len();
    }
    assert_eq!(total, 8000);
}

#[tokio::test]
async fn sqlite_queued_append_survives_dropping_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("queued.db");
    {
        let store = Arc::new(SqliteStore::open(&path).expect("open"));
        store.create_run(new_run("q", None)).await.expect("create");
        drop(store.clone().append_queued(
            "q".to_owned(),
            entry(JournalKind::ModelResponse, "s/0/t1/model", 1),
            None,
        ));
    }
    let store = SqliteStore::open(&path).expect("reopen");
    assert_eq!(store.journal(ALL, "q").await.expect("journal").len(), 1);
}

/// A lone run's barrier commits on its first poll: no added latency.
#[tokio::test]
async fn sqlite_lone_barrier_commits_at_once() {
    let store = Arc::new(SqliteStore::open_in_memory().expect("open"));
    store
        .create_run(new_run("lone", None))
        .await
        .expect("create");
    let before = store.commits();
    let write = store.clone().append_queued(
        "lone".to_owned(),
        entry(JournalKind::ModelResponse, "s/0/t1/model", 1),
        None,
    );
    assert_eq!(write.now_or_never().map(|r| r.is_ok()), Some(true));
    assert_eq!(store.commits(), before + 1);
}

/// The time on the connection grows with every batch and only then.
#[tokio::test]
async fn sqlite_busy_time_counts_batches() {
    let store = SqliteStore::open_in_memory().expect("open");
    let opened = store.busy();
    store
        .create_run(new_run("timed", None))
        .await
        .expect("create");
    let created = store.busy();
    assert!(created > opened, "{created:?} after {opened:?}");
    assert_eq!(store.busy(), created, "nothing ran meanwhile");
    store.get_run(ALL, "timed").await.expect("read");
    assert!(store.busy() > created, "reads count too");
}

/// While other runs have writes queued, a barrier lets the runtime turn
/// before committing, so a run that reaches its barrier meanwhile shares
/// the commit.
#[tokio::test]
async fn sqlite_barriers_of_concurrent_runs_share_a_commit() {
    let store = Arc::new(SqliteStore::open_in_memory().expect("open"));
    for run in ["a", "b", "c"] {
        store.create_run(new_run(run, None)).await.expect("create");
    }
    let before = store.commits();
    // Run c has a write-behind entry queued (its barrier comes later).
    let c = store.clone().append_queued(
        "c".to_owned(),
        entry(JournalKind::PluginOutput, "s/0/map_input", 1),
        None,
    );
    // Run a reaches its barrier; run b reaches its own a moment later.
    let a = store.clone().append_queued(
        "a".to_owned(),
        entry(JournalKind::ModelResponse, "s/0/t1/model", 1),
        None,
    );
    let b = async {
        tokio::task::yield_now().await;
        store
            .clone()
            .append_queued(
                "b".to_owned(),
                entry(JournalKind::ModelResponse, "s/0/t1/model", 1),
                None,
            )
            .await
    };
    let (a, b) = tokio::join!(a, b);
    a.expect("a");
    b.expect("b");
    c.await.expect("c");
    assert_eq!(store.commits(), before + 1, "one commit for all three runs");
    for run in ["a", "b", "c"] {
        assert_eq!(store.journal(ALL, run).await.expect("journal").len(), 1);
    }
}

/// The store remembers each run's next seq instead of reading it. When
/// another process (`host approve`, say) appended to the run meanwhile,
/// the remembered seq is taken: the append reads the seq again and gets
/// the next one, not an error.
#[tokio::test]
async fn sqlite_append_after_another_process_appended_takes_the_next_seq() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("seq.db");
    let ours = SqliteStore::open(&path).expect("open");
    let theirs = SqliteStore::open(&path).expect("second store");
    ours.create_run(new_run("r", None)).await.expect("create");
    async fn append(store: &SqliteStore, n: u64) -> u64 {
        let key = format!("s/{n}");
        let appended = store
            .append("r", entry(JournalKind::ToolResult, &key, n))
            .await;
        appended.expect("append")
    }
    assert_eq!(append(&ours, 1).await, 1);
    assert_eq!(append(&ours, 2).await, 2);
    assert_eq!(append(&theirs, 3).await, 3);
    assert_eq!(append(&ours, 4).await, 4);
    assert_eq!(append(&theirs, 5).await, 5);
    let seqs: Vec<u64> = ours
        .journal(ALL, "r")
        .await
        .expect("journal")
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
}

/// An append whose run update fails is rolled back whole, and the seq it
/// took is given to the next append: no gap.
#[tokio::test]
async fn sqlite_rolled_back_append_leaves_no_seq_gap() {
    let store = Arc::new(SqliteStore::open_in_memory().expect("open"));
    store.create_run(new_run("r", None)).await.expect("create");
    let first = store
        .append("r", entry(JournalKind::RunStarted, "run", 0))
        .await;
    assert_eq!(first.expect("first"), 1);
    store
        .update_run("r", RunUpdate::status(RunStatus::Completed))
        .await
        .expect("complete");
    // A completed run cannot become running: the update fails, and the
    // entry appended with it is rolled back.
    let refused = store
        .clone()
        .append_queued(
            "r".to_owned(),
            entry(JournalKind::ModelResponse, "s/0/t1/model", 1),
            Some(RunUpdate::status(RunStatus::Running)),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    let next = store
        .append("r", entry(JournalKind::ToolResult, "s/0/t1/tool/x", 2))
        .await;
    assert_eq!(next.expect("next"), 2);
    assert_eq!(store.journal(ALL, "r").await.expect("journal").len(), 2);
}

/// Checkpoints run on the store's own thread, never in a commit. Under
/// writes that never pause, a passive checkpoint never copies the whole
/// WAL, and the WAL would only grow; past `restart_frames` the thread
/// briefly holds the writes so that the WAL starts over. Without that, the
/// WAL here would reach about 50 times `restart_frames`.
#[tokio::test]
async fn sqlite_wal_starts_over_under_writes_that_never_pause() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("wal.db");
    let restart_frames = 200;
    let store = SqliteStore::open_with(
        &path,
        SqliteOptions {
            checkpoint_frames: 50,
            restart_frames,
            ..SqliteOptions::default()
        },
    )
    .expect("open");
    store.create_run(new_run("w", None)).await.expect("create");
    let wal = dir.path().join("wal.db-wal");
    let frame = 4096 + 24;
    let mut frames_written = 0;
    let mut n = 0;
    while frames_written < 50 * restart_frames {
        n += 1;
        // About 1.5 KiB per entry: a commit writes two or three pages.
        let data = json!({ "n": n, "pad": "x".repeat(1500) });
        store
            .append(
                "w",
                JournalEntry::new(JournalKind::ToolResult, format!("k{n}"), data),
            )
            .await
            .expect("append");
        frames_written += 2;
    }
    let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    // Half of what the WAL reaches without the restart: on a machine busy
    // with the rest of the suite the checkpoint thread runs late and the
    // WAL is larger than on an idle one (10 times was seen to fail there).
    assert!(
        size < 25 * u64::from(restart_frames) * frame,
        "the WAL grew to {} frames",
        size / frame
    );
    // Everything is there, through a second connection.
    let reader = SqliteStore::open(&path).expect("reader");
    assert_eq!(
        reader.journal(ALL, "w").await.expect("journal").len(),
        n as usize
    );
}

// ---------------------------------------------------------------------------
// SQLite files

#[tokio::test]
async fn sqlite_file_reopens_with_data_and_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/dir/host.db");
    {
        let store = SqliteStore::open(&path).expect("open");
        assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
        store.create_run(new_run("r", None)).await.expect("create");
        store
            .append("r", entry(JournalKind::RunStarted, "run", 0))
            .await
            .expect("append");
        store
            .append_session(
                &SessionScope::new("a", "u", "s"),
                "r",
                vec![json!("x")],
                None,
            )
            .await
            .expect("session");
        store
            .outbox_enqueue(vec![outbox_entry("r", "http://a.test/", 1)])
            .await
            .expect("outbox");
    }
    assert!(path.exists());
    let store = SqliteStore::open(&path).expect("reopen");
    assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
    assert!(store.get_run(ALL, "r").await.expect("get").is_some());
    assert_eq!(store.journal(ALL, "r").await.expect("journal").len(), 1);
    assert_eq!(
        store
            .session_history(&SessionScope::new("a", "u", "s"), None)
            .await
            .expect("history")
            .len(),
        1
    );
    assert_eq!(
        store
            .outbox_summary(ALL, "r")
            .await
            .expect("outbox")
            .pending,
        1,
        "undelivered events survive a restart"
    );
    let mode: String = rusqlite::Connection::open(&path)
        .and_then(|c| c.query_row("PRAGMA journal_mode", [], |r| r.get(0)))
        .expect("journal mode");
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn sqlite_version_1_database_migrates_with_its_journal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v1.db");
    // What a version-1 host wrote: its schema, a run and two journal entries.
    {
        let c = rusqlite::Connection::open(&path).expect("create");
        c.execute_batch(
            "CREATE TABLE schema_version (
                 version    INTEGER PRIMARY KEY NOT NULL,
                 applied_at INTEGER NOT NULL
             );
             INSERT INTO schema_version (version, applied_at) VALUES (1, 0);",
        )
        .expect("version table");
        c.execute_batch(crate::store::sqlite::MIGRATIONS[0])
            .expect("v1 schema");
        c.execute_batch(
            r#"INSERT INTO runs (run_id, status, workflow_key, spec_digest, account_id, user_id,
                                 input, created_at, updated_at)
               VALUES ('old', 'running', 'wf', 'd', '', '', '"hi"', 1, 1);
               INSERT INTO journal (run_id, seq, at, kind, key, plugin_digest, data)
               VALUES ('old', 1, 1, 'run_started', 'run/started', NULL, '{"input":"hi"}'),
                      ('old', 2, 2, 'model_response', 's/0/t1/model', NULL, '{"n":2}');"#,
        )
        .expect("v1 rows");
    }
    let store = SqliteStore::open(&path).expect("migrate");
    assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
    assert!(store.get_run(ALL, "old").await.expect("get").is_some());
    let journal = store.journal(ALL, "old").await.expect("journal");
    let keys: Vec<_> = journal
        .iter()
        .map(|r| (r.seq, r.entry.key.as_str(), r.entry.data.clone()))
        .collect();
    assert_eq!(
        keys,
        [
            (1, "run/started", json!({"input": "hi"})),
            (2, "s/0/t1/model", json!({"n": 2})),
        ]
    );
    // The run goes on after the migration: seq continues, lookups work.
    let seq = store
        .append("old", entry(JournalKind::ToolResult, "s/0/t1/tool/c", 3))
        .await
        .expect("append after migration");
    assert_eq!(seq, 3);
    let by_key = store
        .journal_by_key("old", "s/0/t1/model")
        .await
        .expect("by key");
    assert_eq!(by_key.len(), 1);
    assert_eq!(by_key[0].seq, 2);
    store
        .outbox_enqueue(vec![outbox_entry("old", "http://a.test/", 1)])
        .await
        .expect("outbox after migration");
}

/// Many openers of one brand-new file at the same moment (several `host`
/// processes started together on a fresh database) all succeed.
#[test]
fn sqlite_new_file_opened_by_many_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    for round in 0..10 {
        let path = dir.path().join(format!("new-{round}.db"));
        let start = Arc::new(std::sync::Barrier::new(8));
        let openers: Vec<_> = (0..8)
            .map(|_| {
                let (path, start) = (path.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    SqliteStore::open(&path).map(|s| s.schema_version())
                })
            })
            .collect();
        for opener in openers {
            let version = opener
                .join()
                .expect("thread")
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert_eq!(version.expect("version"), SCHEMA_VERSION);
        }
    }
}

#[test]
fn sqlite_garbage_file_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("garbage.db");
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(&path, garbage).expect("write");
    let err = SqliteStore::open(&path).expect_err("garbage must be refused");
    assert!(
        matches!(err, StoreError::Corrupt { .. }),
        "unexpected error: {err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("corrupt or not a SQLite database"), "{msg}");
}

#[test]
fn sqlite_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("future.db");
    drop(SqliteStore::open(&path).expect("create"));
    rusqlite::Connection::open(&path)
        .and_then(|c| {
            c.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (999, 0)",
                [],
            )
        })
        .expect("bump version");
    let err = SqliteStore::open(&path).expect_err("newer schema must be refused");
    assert!(
        matches!(
            err,
            StoreError::Schema {
                found: 999,
                supported: SCHEMA_VERSION,
                ..
            }
        ),
        "unexpected error: {err:?}"
    );
    assert!(err.to_string().contains("999"), "{err}");
}

#[tokio::test]
async fn sqlite_locked_database_gives_locked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("locked.db");
    let store = SqliteStore::open_with(
        &path,
        SqliteOptions {
            busy_timeout: Duration::from_millis(200),
            ..SqliteOptions::default()
        },
    )
    .expect("open");
    let other = rusqlite::Connection::open(&path).expect("second connection");
    other
        .execute_batch("BEGIN EXCLUSIVE")
        .expect("exclusive lock");

    let started = Instant::now();
    let err = store
        .create_run(new_run("r", None))
        .await
        .expect_err("write must fail while locked");
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()));
    assert!(started.elapsed() < Duration::from_secs(3));

    // Once the lock is released, the store works again.
    other.execute_batch("ROLLBACK").expect("release");
    store.create_run(new_run("r", None)).await.expect("create");
}

#[test]
fn default_db_path_honours_env() {
    // Only the default branch: setting $HOST_DB would race other tests.
    if std::env::var_os("HOST_DB").is_none()
        && let Some(path) = default_db_path()
    {
        assert!(path.ends_with("host.db"), "{}", path.display());
    }
}
