//! PostgreSQL-only: versioned migrations (once, also when several
//! processes start at once; a newer schema refused), and an address that
//! does not answer reported without its password.

use super::*;

/// A raw connection to run SQL the store does not offer.
async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
}

#[tokio::test]
async fn postgres_migrates_once_and_refuses_a_newer_schema() {
    let Some(url) = e2e::postgres::database() else {
        return;
    };
    // Eight stores connecting at once: one migration, no error.
    let opening: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PostgresStore::connect(&url).await })
        })
        .collect();
    for o in opening {
        let store = o.await.expect("task").expect("connect");
        assert_eq!(
            store.schema_version().await.expect("version"),
            PG_SCHEMA_VERSION
        );
    }
    let client = raw(&url).await;
    let rows: i64 = client
        .query_one("SELECT COUNT(*) FROM schema_version", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(
        rows as u64, PG_SCHEMA_VERSION,
        "each migration applied once"
    );
    client
        .execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (999, 0)",
            &[],
        )
        .await
        .expect("bump");
    let err = PostgresStore::connect(&url)
        .await
        .expect_err("a newer schema");
    assert!(
        matches!(
            &err,
            StoreError::Schema {
                found: 999,
                supported: PG_SCHEMA_VERSION,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn postgres_errors_name_the_database_without_its_password() {
    // Port 1 on loopback: nothing listens there.
    let url = "postgres://app:pw-not-shown@127.0.0.1:1/runs";
    let err = PostgresStore::connect(url).await.expect_err("no server");
    let message = err.to_string();
    assert!(
        message.contains("cannot open the run database postgres://app@127.0.0.1:1/runs"),
        "{message}"
    );
    assert!(!message.contains("pw-not-shown"), "{message}");
    assert!(is_postgres_url(url) && is_postgres_url("postgresql://h/db"));
    assert!(!is_postgres_url("runs.db") && !is_postgres_url("sqlite:///x"));
}
