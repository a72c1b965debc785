//! SQL store: the engine's [`MessageStore`], [`ReportStore`] and
//! [`LinkRegistry`] plus the embedded input queue, on sqlx's `Any` driver.
//!
//! * SQLite is the embedded default (`sqlite://smsgw.db`, created if
//!   missing; WAL, `synchronous=NORMAL`, busy timeout) and PostgreSQL the
//!   production option. Migrations live in `migrations/{sqlite,postgres}/`
//!   and are embedded in the binary.
//! * Queries are runtime `query()` calls (no `DATABASE_URL` at build) in
//!   portable SQL with `$N` placeholders (SQLite and PostgreSQL both take
//!   them). The dialect points a MySQL backend would need to change are
//!   `ON CONFLICT .. DO NOTHING` and `RETURNING` in [`SqlStore::accept`] and
//!   [`SqlStore::enqueue`], and `$N` → `?`.
//! * Times are `BIGINT` Unix milliseconds; flags are `SMALLINT`.
//! * Every state change writes the message row and its `events` row in one
//!   transaction; [`MessageStore::accept`] takes a whole batch per transaction.

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use crate::engine::ports::*;
use crate::engine::types::*;

/// Which backend a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

/// Adds `mode=rwc` to a file SQLite URL so the file is created when missing.
pub fn sqlite_url(url: &str) -> String {
    if url.contains(":memory:") || url.contains("mode=") {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}mode=rwc")
}

fn backend_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::Database(d)
            if d.message().contains("locked") || d.message().contains("busy") =>
        {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

trait Ctx<T> {
    fn db(self) -> StoreResult<T>;
}

impl<T> Ctx<T> for Result<T, sqlx::Error> {
    fn db(self) -> StoreResult<T> {
        self.map_err(backend_err)
    }
}

fn get_i64(row: &AnyRow, col: &str) -> StoreResult<i64> {
    row.try_get::<i64, _>(col).db()
}

fn get_str(row: &AnyRow, col: &str) -> StoreResult<String> {
    row.try_get::<String, _>(col).db()
}

fn get_opt_str(row: &AnyRow, col: &str) -> StoreResult<Option<String>> {
    row.try_get::<Option<String>, _>(col).db()
}

fn parse<T: std::str::FromStr>(s: &str, what: &'static str) -> StoreResult<T> {
    s.parse()
        .map_err(|_| StoreError::Backend(format!("bad {what} {s:?} in store")))
}

fn priority_of(i: i64) -> Priority {
    match i {
        0 => Priority::Otp,
        2 => Priority::Marketing,
        _ => Priority::Notify,
    }
}

/// The SQL store. Cheap to clone (a pool handle).
#[derive(Clone, Debug)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
}

const MESSAGE_COLS: &str =
    "id, upstream_id, recipient, body, priority, channel, carrier, segments, \
     attempts, expire_at, possible_duplicate, last_reason, accepted_at";

/// `last_reason` while a claimed attempt has no recorded outcome. Finding it
/// at the next claim means the previous attempt's fate is unknown (crash,
/// lost event): the resend is marked as a possible duplicate.
const IN_FLIGHT: &str = "in_flight";

impl SqlStore {
    /// Connects and runs the migrations.
    pub async fn open(url: &str) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of(url).ok_or_else(|| {
            StoreError::Backend(format!(
                "unsupported store url {url:?}: use sqlite:// or postgres://"
            ))
        })?;
        let pool = match backend {
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(1)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            use sqlx::Executor;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = NORMAL").await?;
                            Ok(())
                        })
                    })
                    .connect(&sqlite_url(url))
                    .await
            }
            Backend::Postgres => AnyPoolOptions::new().max_connections(8).connect(url).await,
        }
        .db()?;
        let migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migrations: {e}")))?;
        Ok(SqlStore { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ------------------------------------------------------------ queue

    /// Appends a raw record to the embedded queue; returns its position.
    pub async fn enqueue(&self, payload: &str, now: Timestamp) -> StoreResult<i64> {
        let row =
            sqlx::query("INSERT INTO queue (payload, enqueued_at) VALUES ($1, $2) RETURNING id")
                .bind(payload)
                .bind(now.0)
                .fetch_one(&self.pool)
                .await
                .db()?;
        get_i64(&row, "id")
    }

    /// Records after `after`, oldest first.
    pub async fn queue_peek(&self, after: i64, limit: usize) -> StoreResult<Vec<(i64, String)>> {
        let rows = sqlx::query("SELECT id, payload FROM queue WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .db()?;
        rows.iter()
            .map(|r| Ok((get_i64(r, "id")?, get_str(r, "payload")?)))
            .collect()
    }

    /// Drops queue records up to and including `upto` (they are accepted).
    pub async fn queue_commit(&self, upto: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM queue WHERE id <= $1")
            .bind(upto)
            .execute(&self.pool)
            .await
            .db()?;
        Ok(())
    }

    /// Dead letters, newest first.
    pub async fn dead_letters(&self, limit: usize) -> StoreResult<Vec<DeadLetter>> {
        let rows = sqlx::query(
            "SELECT origin, upstream_id, payload, reason, at FROM dead_letters ORDER BY id DESC LIMIT $1",
        )
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter()
            .map(|r| {
                Ok(DeadLetter {
                    origin: get_str(r, "origin")?,
                    upstream_id: get_opt_str(r, "upstream_id")?,
                    payload: get_str(r, "payload")?,
                    reason: get_str(r, "reason")?,
                    at: Timestamp(get_i64(r, "at")?),
                })
            })
            .collect()
    }

    /// Reports kept as unmatched, newest first.
    pub async fn unmatched_reports(&self, limit: usize) -> StoreResult<Vec<Report>> {
        let rows = sqlx::query(
            "SELECT provider_id, stat, delivered, link, received_at FROM reports \
             WHERE status = 'unmatched' ORDER BY id DESC LIMIT $1",
        )
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter().map(report_of).collect()
    }

    // ------------------------------------------------------------ outbox

    /// Where relay `name` stands (0 before its first publish).
    pub async fn relay_cursor(&self, name: &str) -> StoreResult<i64> {
        let row = sqlx::query("SELECT position FROM relay_cursors WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .db()?;
        row.map_or(Ok(0), |r| get_i64(&r, "position"))
    }

    /// Records that relay `name` has published everything up to `position`.
    pub async fn set_relay_cursor(&self, name: &str, position: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO relay_cursors (name, position) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET position = $2",
        )
        .bind(name)
        .bind(position)
        .execute(&self.pool)
        .await
        .db()?;
        Ok(())
    }

    /// Status events (history rows) after row `after`, oldest first, with their row ids.
    pub async fn events_after(
        &self,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<(i64, StatusEvent)>> {
        let rows = sqlx::query(
            "SELECT id, upstream_id, recipient, state, code, segments, link, at, possible_duplicate \
             FROM events WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter()
            .map(|r| Ok((get_i64(r, "id")?, event_of(r)?)))
            .collect()
    }

    /// Dead letters after row `after`, oldest first, with their row ids.
    pub async fn dead_letters_after(
        &self,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<(i64, DeadLetter)>> {
        let rows = sqlx::query(
            "SELECT id, origin, upstream_id, payload, reason, at FROM dead_letters \
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter()
            .map(|r| {
                Ok((
                    get_i64(r, "id")?,
                    DeadLetter {
                        origin: get_str(r, "origin")?,
                        upstream_id: get_opt_str(r, "upstream_id")?,
                        payload: get_str(r, "payload")?,
                        reason: get_str(r, "reason")?,
                        at: Timestamp(get_i64(r, "at")?),
                    },
                ))
            })
            .collect()
    }

    // ------------------------------------------------------------ helpers

    /// Changes a message's state unless it is final; writes the event.
    /// Returns the event when the row changed and the state is published.
    async fn transition(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        id: MessageId,
        to: MessageState,
        code: Option<&str>,
        link: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<Option<StatusEvent>> {
        let row = sqlx::query(
            "UPDATE messages SET state = $1, code = COALESCE($2, code), link = COALESCE($3, link), \
             updated_at = $4 WHERE id = $5 AND state NOT IN ('delivered', 'failed', 'expired') AND state <> $1 \
             RETURNING upstream_id, recipient, segments, code, link, possible_duplicate",
        )
        .bind(to.as_str())
        .bind(code)
        .bind(link)
        .bind(now.0)
        .bind(id.0)
        .fetch_optional(&mut **tx)
        .await
        .db()?;
        let Some(row) = row else {
            return Ok(None);
        };
        if !to.is_published() {
            return Ok(None);
        }
        let ev = changed_event(&row, to, now)?;
        insert_events(tx, &[(id, &ev, now)]).await?;
        Ok(Some(ev))
    }

    /// On SQLite the write lock is taken up front (`BEGIN IMMEDIATE`): a
    /// deferred transaction that reads first fails with SQLITE_BUSY_SNAPSHOT
    /// instead of waiting when another connection wrote in between.
    async fn begin(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Any>> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await.db(),
            Backend::Postgres => self.pool.begin().await.db(),
        }
    }
}

/// `$a, $b, ...` groups: `rows` tuples of `cols` placeholders from `$first`.
fn placeholders(rows: usize, cols: usize, first: usize) -> String {
    placeholders_with(rows, cols, first, |_| String::new())
}

/// Like [`placeholders`], with `tail(base)` appended inside each tuple, where
/// `$base + 1` is the row's first placeholder (constants, repeated binds).
fn placeholders_with(
    rows: usize,
    cols: usize,
    first: usize,
    tail: impl Fn(usize) -> String,
) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        let base = first - 1 + r * cols;
        for c in 1..=cols {
            if c > 1 {
                out.push_str(", ");
            }
            let _ = write!(out, "${}", base + c);
        }
        out.push_str(&tail(base));
        out.push(')');
    }
    out
}

/// `$first, $first+1, ...` for an `IN (...)` list of `n`.
fn in_list(n: usize, first: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `VALUES` groups for [`MessageStore::accept`]: ten binds per row, then
/// `'accepted'`, `due_at` and `updated_at` from the row's `accepted_at`.
fn placeholders_accept(rows: usize) -> String {
    placeholders_with(rows, 10, 1, |b| {
        format!(", 'accepted', ${}, ${}", b + 9, b + 9)
    })
}

/// `VALUES` groups for parked reports: six binds per row, then `'parked'`.
fn placeholders_parked(rows: usize) -> String {
    placeholders_with(rows, 6, 1, |_| ", 'parked'".to_owned())
}

#[cfg(test)]
mod placeholder_tests {
    #[test]
    fn groups_with_tails() {
        assert_eq!(super::placeholders(2, 2, 3), "($3, $4), ($5, $6)");
        assert_eq!(
            super::placeholders_parked(2),
            "($1, $2, $3, $4, $5, $6, 'parked'), ($7, $8, $9, $10, $11, $12, 'parked')"
        );
        assert_eq!(
            super::placeholders_accept(2),
            "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'accepted', $9, $9), \
             ($11, $12, $13, $14, $15, $16, $17, $18, $19, $20, 'accepted', $19, $19)"
        );
    }
}

/// Rows per multi-row statement (keeps bind counts far below both backends'
/// limits; sqlx-sqlite looks each `$N` up by name, quadratic in the count).
const CHUNK: usize = 64;

/// The event of a state change from an `UPDATE .. RETURNING` row.
fn changed_event(row: &AnyRow, to: MessageState, now: Timestamp) -> StoreResult<StatusEvent> {
    Ok(StatusEvent {
        id: get_str(row, "upstream_id")?,
        to: get_str(row, "recipient")?,
        state: to,
        code: get_opt_str(row, "code")?,
        segments: get_i64(row, "segments")? as u16,
        link: get_opt_str(row, "link")?,
        at: now.to_rfc3339(),
        possible_duplicate: get_i64(row, "possible_duplicate")? != 0,
    })
}

/// History rows, multi-row INSERTs.
async fn insert_events(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    evs: &[(MessageId, &StatusEvent, Timestamp)],
) -> StoreResult<()> {
    for chunk in evs.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO events (message_id, upstream_id, recipient, state, code, segments, link, at, possible_duplicate) \
             VALUES {}",
            placeholders(chunk.len(), 9, 1)
        );
        // Audited: only generated placeholders are interpolated.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, ev, now) in chunk {
            q = q
                .bind(id.0)
                .bind(ev.id.clone())
                .bind(ev.to.clone())
                .bind(ev.state.as_str())
                .bind(ev.code.clone())
                .bind(i64::from(ev.segments))
                .bind(ev.link.clone())
                .bind(now.0)
                .bind(i64::from(ev.possible_duplicate));
        }
        q.execute(&mut **tx).await.db()?;
    }
    Ok(())
}

fn event_of(r: &AnyRow) -> StoreResult<StatusEvent> {
    Ok(StatusEvent {
        id: get_str(r, "upstream_id")?,
        to: get_str(r, "recipient")?,
        state: parse(&get_str(r, "state")?, "state")?,
        code: get_opt_str(r, "code")?,
        segments: get_i64(r, "segments")? as u16,
        link: get_opt_str(r, "link")?,
        at: Timestamp(get_i64(r, "at")?).to_rfc3339(),
        possible_duplicate: get_i64(r, "possible_duplicate")? != 0,
    })
}

fn report_of(r: &AnyRow) -> StoreResult<Report> {
    Ok(Report {
        provider_id: ProviderMsgId::new(&get_str(r, "provider_id")?),
        stat: get_str(r, "stat")?,
        delivered: get_i64(r, "delivered")? != 0,
        link: get_opt_str(r, "link")?,
        received_at: Timestamp(get_i64(r, "received_at")?),
    })
}

fn dispatchable_of(r: &AnyRow) -> StoreResult<Dispatchable> {
    Ok(Dispatchable {
        id: MessageId(get_i64(r, "id")?),
        upstream_id: get_str(r, "upstream_id")?,
        to: get_str(r, "recipient")?,
        text: get_str(r, "body")?,
        priority: priority_of(get_i64(r, "priority")?),
        channel: parse(&get_str(r, "channel")?, "channel")?,
        carrier: get_opt_str(r, "carrier")?
            .map(|c| parse(&c, "carrier"))
            .transpose()?,
        segments: get_i64(r, "segments")? as u16,
        attempts: get_i64(r, "attempts")? as u32,
        expire_at: Timestamp(get_i64(r, "expire_at")?),
        possible_duplicate: get_i64(r, "possible_duplicate")? != 0,
        accepted_at: Timestamp(get_i64(r, "accepted_at")?),
    })
}

impl MessageStore for SqlStore {
    async fn accept(&self, msgs: &[NewMessage], dead: &[DeadLetter]) -> StoreResult<AcceptResult> {
        let mut out = AcceptResult::default();
        let mut tx = self.begin().await?;
        for chunk in msgs.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO messages (upstream_id, recipient, body, priority, biz, channel, carrier, segments, \
                 accepted_at, expire_at, state, due_at, updated_at) VALUES {} \
                 ON CONFLICT (upstream_id, recipient) DO NOTHING RETURNING id, upstream_id, recipient",
                placeholders_accept(chunk.len())
            );
            // Audited: only generated placeholders are interpolated.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for m in chunk {
                q = q
                    .bind(m.upstream_id.clone())
                    .bind(m.to.clone())
                    .bind(m.text.clone())
                    .bind(m.priority.index() as i64)
                    .bind(m.biz.clone())
                    .bind(m.channel.as_str())
                    .bind(m.carrier.map(Carrier::as_str))
                    .bind(i64::from(m.segments))
                    .bind(m.accepted_at.0)
                    .bind(m.expire_at.0);
            }
            let rows = q.fetch_all(&mut *tx).await.db()?;
            let mut ids: std::collections::HashMap<(String, String), MessageId> =
                std::collections::HashMap::with_capacity(rows.len());
            for r in &rows {
                ids.insert(
                    (get_str(r, "upstream_id")?, get_str(r, "recipient")?),
                    MessageId(get_i64(r, "id")?),
                );
            }
            let mut new = Vec::with_capacity(rows.len());
            for m in chunk {
                // a repeat within the batch finds its key already taken
                match ids.remove(&(m.upstream_id.clone(), m.to.clone())) {
                    Some(id) => new.push((id, m)),
                    None => out.duplicates += 1,
                }
            }
            let segs: Vec<(i64, i64)> = new
                .iter()
                .flat_map(|(id, m)| (1..=i64::from(m.segments.max(1))).map(move |p| (id.0, p)))
                .collect();
            for sc in segs.chunks(CHUNK) {
                let sql = format!(
                    "INSERT INTO segments (message_id, part) VALUES {}",
                    placeholders(sc.len(), 2, 1)
                );
                // Audited: only generated placeholders are interpolated.
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (id, p) in sc {
                    q = q.bind(*id).bind(*p);
                }
                q.execute(&mut *tx).await.db()?;
            }
            let evs: Vec<(MessageId, StatusEvent, Timestamp)> = new
                .iter()
                .map(|(id, m)| {
                    (
                        *id,
                        StatusEvent {
                            id: m.upstream_id.clone(),
                            to: m.to.clone(),
                            state: MessageState::Accepted,
                            code: None,
                            segments: m.segments,
                            link: None,
                            at: m.accepted_at.to_rfc3339(),
                            possible_duplicate: false,
                        },
                        m.accepted_at,
                    )
                })
                .collect();
            let refs: Vec<(MessageId, &StatusEvent, Timestamp)> =
                evs.iter().map(|(i, e, t)| (*i, e, *t)).collect();
            insert_events(&mut tx, &refs).await?;
            out.accepted
                .extend(evs.into_iter().map(|(id, ev, _)| (id, ev)));
        }
        for d in dead {
            sqlx::query(
                "INSERT INTO dead_letters (origin, upstream_id, payload, reason, at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&d.origin)
            .bind(d.upstream_id.as_deref())
            .bind(&d.payload)
            .bind(&d.reason)
            .bind(d.at.0)
            .execute(&mut *tx)
            .await
            .db()?;
        }
        tx.commit().await.db()?;
        Ok(out)
    }

    async fn claim_due(
        &self,
        now: Timestamp,
        limit: usize,
        lease: Duration,
    ) -> StoreResult<Vec<Dispatchable>> {
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        // One set-based statement: the claimed rows come back as updated
        // (attempts counted, possible_duplicate set when the previous
        // attempt's fate is unknown, i.e. `last_reason` was still in flight).
        let sql = format!(
            "UPDATE messages SET due_at = $1, attempts = attempts + 1, updated_at = $2, last_reason = $3, \
             possible_duplicate = CASE WHEN last_reason = $3 THEN 1 ELSE possible_duplicate END \
             WHERE id IN (SELECT id FROM messages WHERE state = 'accepted' AND due_at <= $2 \
             ORDER BY priority, due_at LIMIT $4{lock}) AND state = 'accepted' AND due_at <= $2 \
             RETURNING {MESSAGE_COLS}"
        );
        // Audited: only compile-time constants are interpolated.
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now.plus(lease).0)
            .bind(now.0)
            .bind(IN_FLIGHT)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .db()?;
        let mut out = rows
            .iter()
            .map(dispatchable_of)
            .collect::<StoreResult<Vec<_>>>()?;
        out.sort_by_key(|d| (d.priority.index(), d.id.0));
        Ok(out)
    }

    async fn schedule_retry(
        &self,
        id: MessageId,
        at: Timestamp,
        reason: &str,
        possible_duplicate: bool,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE messages SET state = 'accepted', due_at = $1, last_reason = $2, \
             possible_duplicate = CASE WHEN $3 = 1 THEN 1 ELSE possible_duplicate END, updated_at = $1 \
             WHERE id = $4 AND state IN ('accepted', 'submitted', 'retryable')",
        )
        .bind(at.0)
        .bind(reason)
        .bind(i64::from(possible_duplicate))
        .bind(id.0)
        .execute(&self.pool)
        .await
        .db()?;
        Ok(())
    }

    async fn give_back(&self, id: MessageId, at: Timestamp, reason: &str) -> StoreResult<()> {
        // Undoes the claim's `attempts + 1`; `last_reason` leaves "in flight",
        // so the next claim does not take it for a lost send.
        sqlx::query(
            "UPDATE messages SET due_at = $1, last_reason = $2, \
             attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, updated_at = $1 \
             WHERE id = $3 AND state = 'accepted'",
        )
        .bind(at.0)
        .bind(reason)
        .bind(id.0)
        .execute(&self.pool)
        .await
        .db()?;
        Ok(())
    }

    async fn park_retryable(
        &self,
        id: MessageId,
        reason: &str,
        possible_duplicate: bool,
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE messages SET last_reason = $1, \
             possible_duplicate = CASE WHEN $2 = 1 THEN 1 ELSE possible_duplicate END WHERE id = $3",
        )
        .bind(reason)
        .bind(i64::from(possible_duplicate))
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .db()?;
        self.transition(&mut tx, id, MessageState::Retryable, None, None, now)
            .await?;
        tx.commit().await.db()?;
        Ok(())
    }

    async fn fail(
        &self,
        id: MessageId,
        code: &str,
        link: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<Option<StatusEvent>> {
        let mut tx = self.begin().await?;
        let ev = self
            .transition(&mut tx, id, MessageState::Failed, Some(code), link, now)
            .await?;
        tx.commit().await.db()?;
        Ok(ev)
    }

    async fn expire(&self, id: MessageId, now: Timestamp) -> StoreResult<Option<StatusEvent>> {
        let mut tx = self.begin().await?;
        let ev = self
            .transition(&mut tx, id, MessageState::Expired, None, None, now)
            .await?;
        tx.commit().await.db()?;
        Ok(ev)
    }

    async fn retryable(&self, limit: usize) -> StoreResult<Vec<RetryableMessage>> {
        let rows = sqlx::query(
            "SELECT id, expire_at, attempts FROM messages WHERE state = 'retryable' ORDER BY updated_at, id LIMIT $1",
        )
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter()
            .map(|r| {
                Ok(RetryableMessage {
                    id: MessageId(get_i64(r, "id")?),
                    expire_at: Timestamp(get_i64(r, "expire_at")?),
                    attempts: get_i64(r, "attempts")? as u32,
                })
            })
            .collect()
    }

    async fn requeue(&self, id: MessageId, now: Timestamp) -> StoreResult<()> {
        sqlx::query(
            "UPDATE messages SET state = 'accepted', attempts = 0, due_at = $1, updated_at = $1 \
             WHERE id = $2 AND state = 'retryable'",
        )
        .bind(now.0)
        .bind(id.0)
        .execute(&self.pool)
        .await
        .db()?;
        Ok(())
    }

    async fn overdue(
        &self,
        now: Timestamp,
        submitted_grace: Duration,
        limit: usize,
    ) -> StoreResult<Vec<MessageId>> {
        let grace = submitted_grace.as_millis().min(i64::MAX as u128) as i64;
        let rows = sqlx::query(
            "SELECT id FROM messages WHERE (state = 'accepted' AND expire_at <= $1) \
             OR (state = 'submitted' AND expire_at <= $2) ORDER BY expire_at LIMIT $3",
        )
        .bind(now.0)
        .bind(now.0.saturating_sub(grace))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter()
            .map(|r| Ok(MessageId(get_i64(r, "id")?)))
            .collect()
    }

    async fn history(&self, upstream_id: &str) -> StoreResult<Vec<StatusEvent>> {
        let rows = sqlx::query(
            "SELECT upstream_id, recipient, state, code, segments, link, at, possible_duplicate \
             FROM events WHERE upstream_id = $1 ORDER BY id",
        )
        .bind(upstream_id)
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter().map(event_of).collect()
    }

    async fn stats(&self) -> StoreResult<Stats> {
        let mut s = Stats::default();
        let rows = sqlx::query(
            "SELECT COALESCE(link, '') AS link, COALESCE(biz, '') AS biz, state, COUNT(*) AS n, \
             CAST(SUM(segments) AS BIGINT) AS segs FROM messages GROUP BY link, biz, state",
        )
        .fetch_all(&self.pool)
        .await
        .db()?;
        for r in &rows {
            let (link, biz, state) = (
                get_str(r, "link")?,
                get_str(r, "biz")?,
                get_str(r, "state")?,
            );
            let (n, segs) = (get_i64(r, "n")? as u64, get_i64(r, "segs")? as u64);
            *s.by_state.entry(state.clone()).or_default() += n;
            s.messages += n;
            s.segments += segs;
            for g in [
                s.by_link.entry(link).or_default(),
                s.by_biz.entry(biz).or_default(),
            ] {
                g.messages += n;
                g.segments += segs;
                *g.by_state.entry(state.clone()).or_default() += n;
            }
        }
        for st in MessageState::ALL {
            s.by_state.entry(st.as_str().to_owned()).or_default();
        }
        let count = |sql: &'static str| {
            let pool = self.pool.clone();
            async move {
                let r = sqlx::query(sql).fetch_one(&pool).await.db()?;
                Ok::<u64, StoreError>(get_i64(&r, "n")? as u64)
            }
        };
        s.dead_letters = count("SELECT COUNT(*) AS n FROM dead_letters").await?;
        s.queued = count("SELECT COUNT(*) AS n FROM queue").await?;
        s.reports_unmatched =
            count("SELECT COUNT(*) AS n FROM reports WHERE status = 'unmatched'").await?;
        s.possible_duplicates =
            count("SELECT COUNT(*) AS n FROM messages WHERE possible_duplicate <> 0").await?;
        Ok(s)
    }
}

impl ReportStore for SqlStore {
    async fn bind(
        &self,
        seg: SegmentRef,
        link: &str,
        provider_id: &ProviderMsgId,
        now: Timestamp,
    ) -> StoreResult<Option<StatusEvent>> {
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO submits (provider_id, message_id, part, link, submitted_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(provider_id.as_str())
            .bind(seg.message.0)
            .bind(i64::from(seg.part))
            .bind(link)
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .db()?;
        sqlx::query("UPDATE segments SET submitted_at = $1 WHERE message_id = $2 AND part = $3")
            .bind(now.0)
            .bind(seg.message.0)
            .bind(i64::from(seg.part))
            .execute(&mut *tx)
            .await
            .db()?;
        let r = sqlx::query(
            "SELECT COUNT(*) AS n FROM segments WHERE message_id = $1 AND submitted_at IS NULL",
        )
        .bind(seg.message.0)
        .fetch_one(&mut *tx)
        .await
        .db()?;
        let mut ev = None;
        if get_i64(&r, "n")? == 0 {
            // only from accepted: a report may already have finished the message
            let st = sqlx::query("SELECT state FROM messages WHERE id = $1")
                .bind(seg.message.0)
                .fetch_optional(&mut *tx)
                .await
                .db()?;
            if let Some(st) = st {
                if get_str(&st, "state")? == "accepted" {
                    ev = self
                        .transition(
                            &mut tx,
                            seg.message,
                            MessageState::Submitted,
                            None,
                            Some(link),
                            now,
                        )
                        .await?;
                }
            }
        }
        tx.commit().await.db()?;
        Ok(ev)
    }

    async fn settle(&self, report: &Report) -> StoreResult<Settle> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "SELECT message_id, part, submitted_at FROM submits WHERE provider_id = $1 \
             ORDER BY submitted_at DESC LIMIT 1",
        )
        .bind(report.provider_id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .db()?;
        let Some(row) = row else {
            return Ok(Settle::Unknown);
        };
        let segment = SegmentRef {
            message: MessageId(get_i64(&row, "message_id")?),
            part: get_i64(&row, "part")? as u16,
        };
        let submitted_at = Some(Timestamp(get_i64(&row, "submitted_at")?));
        let res = sqlx::query(
            "UPDATE segments SET stat = $1, delivered = $2, reported_at = $3 \
             WHERE message_id = $4 AND part = $5 AND reported_at IS NULL",
        )
        .bind(&report.stat)
        .bind(i64::from(report.delivered))
        .bind(report.received_at.0)
        .bind(segment.message.0)
        .bind(i64::from(segment.part))
        .execute(&mut *tx)
        .await
        .db()?;
        let mut event = None;
        if res.rows_affected() == 1 {
            let link = report.link.as_deref();
            if !report.delivered {
                event = self
                    .transition(
                        &mut tx,
                        segment.message,
                        MessageState::Failed,
                        Some(&report.stat),
                        link,
                        report.received_at,
                    )
                    .await?;
            } else {
                let r = sqlx::query(
                    "SELECT COUNT(*) AS n FROM segments WHERE message_id = $1 AND (delivered IS NULL OR delivered = 0)",
                )
                .bind(segment.message.0)
                .fetch_one(&mut *tx)
                .await
                .db()?;
                if get_i64(&r, "n")? == 0 {
                    event = self
                        .transition(
                            &mut tx,
                            segment.message,
                            MessageState::Delivered,
                            Some(&report.stat),
                            None,
                            report.received_at,
                        )
                        .await?;
                }
            }
        }
        tx.commit().await.db()?;
        Ok(Settle::Settled {
            segment,
            event,
            submitted_at,
        })
    }

    async fn bind_many(&self, binds: &[Bind], now: Timestamp) -> StoreResult<Vec<StatusEvent>> {
        if binds.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        for chunk in binds.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO submits (provider_id, message_id, part, link, submitted_at) VALUES {}",
                placeholders(chunk.len(), 5, 1)
            );
            // Audited: only generated placeholders are interpolated.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for b in chunk {
                q = q
                    .bind(b.provider_id.as_str().to_owned())
                    .bind(b.seg.message.0)
                    .bind(i64::from(b.seg.part))
                    .bind(b.link.clone())
                    .bind(now.0);
            }
            q.execute(&mut *tx).await.db()?;
        }
        for chunk in binds.chunks(CHUNK) {
            let cond = (0..chunk.len())
                .map(|i| format!("(message_id = ${} AND part = ${})", 2 + 2 * i, 3 + 2 * i))
                .collect::<Vec<_>>()
                .join(" OR ");
            let sql = format!("UPDATE segments SET submitted_at = $1 WHERE {cond}");
            // Audited: only generated placeholders are interpolated.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now.0);
            for b in chunk {
                q = q.bind(b.seg.message.0).bind(i64::from(b.seg.part));
            }
            q.execute(&mut *tx).await.db()?;
        }
        // messages whose every part is now bound go accepted → submitted,
        // on the link of their last bound part
        let mut last_link: Vec<(MessageId, &str)> = Vec::new();
        let mut pos: std::collections::HashMap<MessageId, usize> = std::collections::HashMap::new();
        for b in binds {
            match pos.get(&b.seg.message) {
                Some(&i) => last_link[i].1 = &b.link,
                None => {
                    pos.insert(b.seg.message, last_link.len());
                    last_link.push((b.seg.message, &b.link));
                }
            }
        }
        let mut by_link: std::collections::BTreeMap<&str, Vec<i64>> = Default::default();
        for (id, link) in &last_link {
            by_link.entry(link).or_default().push(id.0);
        }
        let mut changed: Vec<(MessageId, StatusEvent)> = Vec::new();
        for (link, ids) in by_link {
            for chunk in ids.chunks(CHUNK) {
                let sql = format!(
                    "UPDATE messages SET state = 'submitted', link = $1, updated_at = $2 \
                     WHERE id IN ({}) AND state = 'accepted' AND NOT EXISTS \
                     (SELECT 1 FROM segments s WHERE s.message_id = messages.id AND s.submitted_at IS NULL) \
                     RETURNING id, upstream_id, recipient, segments, code, link, possible_duplicate",
                    in_list(chunk.len(), 3)
                );
                // Audited: only generated placeholders are interpolated.
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(link.to_owned())
                    .bind(now.0);
                for id in chunk {
                    q = q.bind(*id);
                }
                for r in q.fetch_all(&mut *tx).await.db()? {
                    changed.push((
                        MessageId(get_i64(&r, "id")?),
                        changed_event(&r, MessageState::Submitted, now)?,
                    ));
                }
            }
        }
        changed.sort_by_key(|(id, _)| pos[id]);
        let refs: Vec<(MessageId, &StatusEvent, Timestamp)> =
            changed.iter().map(|(id, e)| (*id, e, now)).collect();
        insert_events(&mut tx, &refs).await?;
        tx.commit().await.db()?;
        Ok(changed.into_iter().map(|(_, e)| e).collect())
    }

    async fn settle_many(&self, reports: &[Report]) -> StoreResult<Vec<Settle>> {
        if reports.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        // provider id → latest submit
        let mut subs: std::collections::HashMap<String, (SegmentRef, i64)> =
            std::collections::HashMap::with_capacity(reports.len());
        let pids: Vec<&str> = reports.iter().map(|r| r.provider_id.as_str()).collect();
        for chunk in pids.chunks(CHUNK) {
            let sql = format!(
                "SELECT provider_id, message_id, part, submitted_at FROM submits WHERE provider_id IN ({})",
                in_list(chunk.len(), 1)
            );
            // Audited: only generated placeholders are interpolated.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for p in chunk {
                q = q.bind(p.to_string());
            }
            for r in q.fetch_all(&mut *tx).await.db()? {
                let at = get_i64(&r, "submitted_at")?;
                let seg = SegmentRef {
                    message: MessageId(get_i64(&r, "message_id")?),
                    part: get_i64(&r, "part")? as u16,
                };
                let e = subs.entry(get_str(&r, "provider_id")?).or_insert((seg, at));
                if at > e.1 {
                    *e = (seg, at);
                }
            }
        }
        // the first report per segment in this batch is the one that can
        // apply (a segment takes one report); one set-based UPDATE says which did
        let mut first: std::collections::HashMap<SegmentRef, usize> =
            std::collections::HashMap::with_capacity(reports.len());
        let mut out = Vec::with_capacity(reports.len());
        for (i, report) in reports.iter().enumerate() {
            match subs.get(report.provider_id.as_str()) {
                None => out.push(Settle::Unknown),
                Some(&(segment, at)) => {
                    first.entry(segment).or_insert(i);
                    out.push(Settle::Settled {
                        segment,
                        event: None,
                        submitted_at: Some(Timestamp(at)),
                    });
                }
            }
        }
        let mut cands: Vec<(SegmentRef, usize)> = first.into_iter().collect();
        cands.sort_by_key(|(_, i)| *i);
        let mut applied: std::collections::HashSet<SegmentRef> = Default::default();
        for chunk in cands.chunks(CHUNK) {
            let sql = format!(
                "UPDATE segments SET stat = v.column3, delivered = v.column4, reported_at = v.column5 \
                 FROM (VALUES {}) AS v WHERE segments.message_id = v.column1 AND segments.part = v.column2 \
                 AND segments.reported_at IS NULL RETURNING segments.message_id, segments.part",
                placeholders(chunk.len(), 5, 1)
            );
            // Audited: only generated placeholders are interpolated.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (seg, i) in chunk {
                let r = &reports[*i];
                q = q
                    .bind(seg.message.0)
                    .bind(i64::from(seg.part))
                    .bind(r.stat.clone())
                    .bind(i64::from(r.delivered))
                    .bind(r.received_at.0);
            }
            for row in q.fetch_all(&mut *tx).await.db()? {
                applied.insert(SegmentRef {
                    message: MessageId(get_i64(&row, "message_id")?),
                    part: get_i64(&row, "part")? as u16,
                });
            }
        }
        // state changes: failures one by one (rare), deliveries set-based
        // (the last delivering report of a message names code and time)
        let mut evs: Vec<(usize, MessageId, StatusEvent, Timestamp)> = Vec::new();
        let mut delivering: std::collections::BTreeMap<i64, usize> = Default::default();
        for (seg, i) in &cands {
            if !applied.contains(seg) {
                continue;
            }
            let report = &reports[*i];
            if report.delivered {
                let e = delivering.entry(seg.message.0).or_insert(*i);
                *e = (*e).max(*i);
                continue;
            }
            let row = sqlx::query(
                "UPDATE messages SET state = 'failed', code = COALESCE($1, code), link = COALESCE($2, link), \
                 updated_at = $3 WHERE id = $4 AND state NOT IN ('delivered', 'failed', 'expired') \
                 RETURNING upstream_id, recipient, segments, code, link, possible_duplicate",
            )
            .bind(report.stat.as_str())
            .bind(report.link.as_deref())
            .bind(report.received_at.0)
            .bind(seg.message.0)
            .fetch_optional(&mut *tx)
            .await
            .db()?;
            if let Some(row) = row {
                let ev = changed_event(&row, MessageState::Failed, report.received_at)?;
                evs.push((*i, seg.message, ev, report.received_at));
            }
        }
        let delivering: Vec<(i64, usize)> = delivering.into_iter().collect();
        for chunk in delivering.chunks(CHUNK) {
            let sql = format!(
                "UPDATE messages SET state = 'delivered', code = v.column2, updated_at = v.column3 \
                 FROM (VALUES {}) AS v WHERE messages.id = v.column1 \
                 AND messages.state NOT IN ('delivered', 'failed', 'expired') \
                 AND NOT EXISTS (SELECT 1 FROM segments s WHERE s.message_id = messages.id \
                 AND (s.delivered IS NULL OR s.delivered = 0)) \
                 RETURNING messages.id AS id, messages.upstream_id AS upstream_id, \
                 messages.recipient AS recipient, messages.segments AS segments, messages.code AS code, \
                 messages.link AS link, messages.possible_duplicate AS possible_duplicate",
                placeholders(chunk.len(), 3, 1)
            );
            // Audited: only generated placeholders are interpolated.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (id, i) in chunk {
                q = q
                    .bind(*id)
                    .bind(reports[*i].stat.clone())
                    .bind(reports[*i].received_at.0);
            }
            let idx: std::collections::HashMap<i64, usize> = chunk.iter().copied().collect();
            for row in q.fetch_all(&mut *tx).await.db()? {
                let id = get_i64(&row, "id")?;
                let i = idx[&id];
                let at = reports[i].received_at;
                let ev = changed_event(&row, MessageState::Delivered, at)?;
                evs.push((i, MessageId(id), ev, at));
            }
        }
        evs.sort_by_key(|(i, ..)| *i);
        let refs: Vec<(MessageId, &StatusEvent, Timestamp)> =
            evs.iter().map(|(_, id, e, t)| (*id, e, *t)).collect();
        insert_events(&mut tx, &refs).await?;
        tx.commit().await.db()?;
        for (i, _, ev, _) in evs {
            if let Settle::Settled { event, .. } = &mut out[i] {
                *event = Some(ev);
            }
        }
        Ok(out)
    }

    async fn park_many(&self, reports: &[(Report, Timestamp)]) -> StoreResult<()> {
        for chunk in reports.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO reports (provider_id, stat, delivered, link, received_at, park_until, status) \
                 VALUES {}",
                placeholders_parked(chunk.len())
            );
            // Audited: only generated placeholders are interpolated.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (r, until) in chunk {
                q = q
                    .bind(r.provider_id.as_str().to_owned())
                    .bind(r.stat.clone())
                    .bind(i64::from(r.delivered))
                    .bind(r.link.clone())
                    .bind(r.received_at.0)
                    .bind(until.0);
            }
            q.execute(&self.pool).await.db()?;
        }
        Ok(())
    }

    async fn take_parked_many(&self, provider_ids: &[ProviderMsgId]) -> StoreResult<Vec<Report>> {
        let mut rows = Vec::new();
        for chunk in provider_ids.chunks(CHUNK) {
            let sql = format!(
                "DELETE FROM reports WHERE status = 'parked' AND provider_id IN ({}) \
                 RETURNING id, provider_id, stat, delivered, link, received_at",
                in_list(chunk.len(), 1)
            );
            // Audited: only generated placeholders are interpolated.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for p in chunk {
                q = q.bind(p.as_str().to_owned());
            }
            for r in q.fetch_all(&self.pool).await.db()? {
                rows.push((get_i64(&r, "id")?, report_of(&r)?));
            }
        }
        rows.sort_by_key(|(id, _)| *id);
        Ok(rows.into_iter().map(|(_, r)| r).collect())
    }

    async fn park(&self, report: &Report, until: Timestamp) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO reports (provider_id, stat, delivered, link, received_at, park_until, status) \
             VALUES ($1, $2, $3, $4, $5, $6, 'parked')",
        )
        .bind(report.provider_id.as_str())
        .bind(&report.stat)
        .bind(i64::from(report.delivered))
        .bind(report.link.as_deref())
        .bind(report.received_at.0)
        .bind(until.0)
        .execute(&self.pool)
        .await
        .db()?;
        Ok(())
    }

    async fn take_parked(&self, provider_id: &ProviderMsgId) -> StoreResult<Vec<Report>> {
        let mut tx = self.begin().await?;
        let rows = sqlx::query(
            "SELECT id, provider_id, stat, delivered, link, received_at FROM reports \
             WHERE provider_id = $1 AND status = 'parked' ORDER BY id",
        )
        .bind(provider_id.as_str())
        .fetch_all(&mut *tx)
        .await
        .db()?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            sqlx::query("DELETE FROM reports WHERE id = $1")
                .bind(get_i64(r, "id")?)
                .execute(&mut *tx)
                .await
                .db()?;
            out.push(report_of(r)?);
        }
        tx.commit().await.db()?;
        Ok(out)
    }

    async fn parked(&self, limit: usize) -> StoreResult<Vec<ParkedReport>> {
        let rows = sqlx::query(
            "SELECT id, provider_id, stat, delivered, link, received_at, park_until FROM reports \
             WHERE status = 'parked' ORDER BY id LIMIT $1",
        )
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter()
            .map(|r| {
                Ok(ParkedReport {
                    key: get_i64(r, "id")?,
                    report: report_of(r)?,
                    until: Timestamp(get_i64(r, "park_until")?),
                })
            })
            .collect()
    }

    async fn unpark(&self, key: i64, unmatched: bool) -> StoreResult<()> {
        let q = if unmatched {
            sqlx::query("UPDATE reports SET status = 'unmatched' WHERE id = $1")
        } else {
            sqlx::query("DELETE FROM reports WHERE id = $1")
        };
        q.bind(key).execute(&self.pool).await.db()?;
        Ok(())
    }
}

impl LinkRegistry for SqlStore {
    async fn add_link(&self, l: &LinkSpec) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let exists = sqlx::query("SELECT name FROM links WHERE name = $1")
            .bind(&l.name)
            .fetch_optional(&mut *tx)
            .await
            .db()?;
        if exists.is_some() {
            return Err(StoreError::Conflict {
                what: "link",
                key: l.name.clone(),
            });
        }
        sqlx::query(
            "INSERT INTO links (name, protocol, addr, account, secret, connections, window_size, tps, weight, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&l.name)
        .bind(l.protocol.as_str())
        .bind(&l.addr)
        .bind(&l.account)
        .bind(&l.secret)
        .bind(i64::from(l.connections))
        .bind(i64::from(l.window))
        .bind(l.tps.map(i64::from))
        .bind(i64::from(l.weight))
        .bind(Timestamp::now().0)
        .execute(&mut *tx)
        .await
        .db()?;
        tx.commit().await.db()?;
        Ok(())
    }

    async fn links(&self) -> StoreResult<Vec<LinkSpec>> {
        let rows = sqlx::query(
            "SELECT name, protocol, addr, account, secret, connections, window_size, tps, weight FROM links ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter()
            .map(|r| {
                Ok(LinkSpec {
                    name: get_str(r, "name")?,
                    protocol: parse(&get_str(r, "protocol")?, "protocol")?,
                    addr: get_str(r, "addr")?,
                    account: get_str(r, "account")?,
                    secret: get_str(r, "secret")?,
                    connections: get_i64(r, "connections")? as u32,
                    window: get_i64(r, "window_size")? as u32,
                    tps: r.try_get::<Option<i64>, _>("tps").db()?.map(|t| t as u32),
                    weight: get_i64(r, "weight")? as u32,
                })
            })
            .collect()
    }

    async fn remove_link(&self, name: &str) -> StoreResult<bool> {
        let res = sqlx::query("DELETE FROM links WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await
            .db()?;
        Ok(res.rows_affected() > 0)
    }
}

/// The embedded queue as a [`MessageSource`]: single consumer per store.
/// Records are deleted on commit, i.e. once accepted.
#[derive(Debug, Clone)]
pub struct QueueSource {
    store: SqlStore,
    last_seen: i64,
}

impl QueueSource {
    pub fn new(store: SqlStore) -> Self {
        QueueSource {
            store,
            last_seen: 0,
        }
    }
}

impl MessageSource for QueueSource {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<SourceRecord>, SourceError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let rows = self
                .store
                .queue_peek(self.last_seen, max)
                .await
                .map_err(|e| SourceError {
                    message: e.to_string(),
                    retry: true,
                })?;
            if !rows.is_empty() || tokio::time::Instant::now() >= deadline {
                if let Some((id, _)) = rows.last() {
                    self.last_seen = *id;
                }
                return Ok(rows
                    .into_iter()
                    .map(|(id, payload)| SourceRecord {
                        payload: payload.into_bytes(),
                        origin: format!("queue:{id}"),
                        position: SourcePosition {
                            partition: 0,
                            offset: id,
                        },
                    })
                    .collect());
            }
            tokio::time::sleep(Duration::from_millis(50).min(wait)).await;
        }
    }

    async fn commit(&mut self, records: &[SourceRecord]) -> Result<(), SourceError> {
        if let Some(max) = records.iter().map(|r| r.position.offset).max() {
            self.store
                .queue_commit(max)
                .await
                .map_err(|e| SourceError {
                    message: e.to_string(),
                    retry: true,
                })?;
        }
        Ok(())
    }
}
