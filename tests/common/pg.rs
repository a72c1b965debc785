//! The test PostgreSQL server (`SMSGW_TEST_PG_URL`, started by
//! `scripts/pg.sh`): a fresh database per caller.

/// A new, empty database on the test server and its URL. `None` (the
/// caller skips) when no server is configured, unless `SMSGW_REQUIRE_PG` is
/// set (CI sets it), in which case a missing server fails the test.
pub async fn fresh_database() -> Option<String> {
    let Ok(base) = std::env::var("SMSGW_TEST_PG_URL") else {
        assert!(
            std::env::var_os("SMSGW_REQUIRE_PG").is_none(),
            "SMSGW_REQUIRE_PG is set but SMSGW_TEST_PG_URL is not (run scripts/pg.sh)"
        );
        eprintln!("SMSGW_TEST_PG_URL not set: skipped");
        return None;
    };
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "smsgw_t{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (head, _) = base.rsplit_once('/').unwrap();
    Some(format!("{head}/{name}"))
}
