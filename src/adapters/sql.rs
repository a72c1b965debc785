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
//!   [`SqlStore::enqueue`], `$N` → `?`, and the JSON row source below.
//! * Batch statements (the hot path: accept, bind, settle, park) take the
//!   whole batch as ONE bound parameter, a JSON array of arrays read as rows
//!   by `json_each` (SQLite) / `jsonb_array_elements` (PostgreSQL), so their
//!   SQL text never depends on the batch size (prepared once per connection,
//!   then cached), the statement count per call is constant, and sqlx-sqlite
//!   resolves one parameter name instead of hundreds.
//! * Hot-path statements (accept, claim, bind, settle) return ONE row: their
//!   result rows as one JSON text (`json_group_array` / `json_agg`, see
//!   [`agg`]) parsed by serde_json, since sqlx moves and converts every
//!   result row separately (~10 µs a row on SQLite). PostgreSQL wraps
//!   `.. RETURNING` in a CTE; SQLite, which takes no DML in a CTE, first
//!   SELECTs what the DML will return, then runs the DML on those rows, in
//!   one `BEGIN IMMEDIATE` transaction.
//! * Times are `BIGINT` Unix milliseconds; flags are `SMALLINT`.
//! * Every state change writes the message row and its `events` row in one
//!   transaction; [`MessageStore::accept`] takes a whole batch per transaction.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
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
            if d.message().contains("locked")
                || d.message().contains("busy")
                || d.code().is_some_and(|c| transient_sqlstate(&c)) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

/// SQLSTATEs that say "try again later", not "this statement is wrong":
/// connection exceptions (class 08), the server shutting down or starting
/// up (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect
/// now), too many connections (53300), and a transaction that lost a race
/// (40001 serialization failure, 40P01 deadlock; every write smsgw retries
/// is idempotent).
fn transient_sqlstate(code: &str) -> bool {
    code.starts_with("08")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01"
        )
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
    /// Reads that need no write lock (the outbox relays, `stats`, history).
    /// On a SQLite file: read-only connections of their own, so in WAL mode
    /// they run beside the one writer connection (on another core) instead
    /// of queueing behind its transactions. Otherwise `pool` itself.
    read: AnyPool,
    backend: Backend,
    /// SQLite: how many reports are parked (counted at open, then kept by
    /// this store's own park / take / unpark), so the recorder skips
    /// looking for parked reports, a write statement, when there are none.
    /// A SQLite file has one serving process. `None` on PostgreSQL, where
    /// other nodes park reports too: there it always looks.
    parked: Option<Arc<AtomicI64>>,
    gate: Arc<WriterGate>,
}

/// SQLite: who goes first to the one writer connection. Storing outcomes
/// is what frees the in-flight window (dispatch waits for it), so the
/// recorder's transactions, and otp accepts, go ahead of bulk ones: claims
/// (the lanes hold a few hundred messages of slack) and accepts without
/// otp. A bulk transaction waits while such a write waits or runs, at most
/// [`BULK_MAX_WAIT`], so claims and intake never stop.
#[derive(Debug, Default)]
struct WriterGate {
    /// Priority writes waiting for or holding the connection.
    busy: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

/// See [`WriterGate`].
const BULK_MAX_WAIT: Duration = Duration::from_millis(10);

/// A priority write, counted in [`WriterGate::busy`] until dropped with its
/// [`Tx`] (committed, failed or cancelled).
struct FirstTurn(Arc<WriterGate>);

impl FirstTurn {
    fn new(g: &Arc<WriterGate>) -> Self {
        g.busy.fetch_add(1, Ordering::SeqCst);
        FirstTurn(g.clone())
    }
}

impl Drop for FirstTurn {
    fn drop(&mut self) {
        if self.0.busy.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl WriterGate {
    /// A bulk write's turn: once no priority write waits or runs, or after
    /// [`BULK_MAX_WAIT`].
    async fn bulk_turn(&self) {
        let _ = tokio::time::timeout(BULK_MAX_WAIT, async {
            loop {
                let idle = self.idle.notified();
                tokio::pin!(idle);
                idle.as_mut().enable();
                if self.busy.load(Ordering::SeqCst) == 0 {
                    return;
                }
                idle.await;
            }
        })
        .await;
    }
}

/// See [`SqlStore::try_relay_lease`]. Dropping it gives the lease up.
#[derive(Debug)]
pub struct RelayLease {
    /// PostgreSQL: the session holding the advisory lock.
    conn: Option<sqlx::pool::PoolConnection<sqlx::Any>>,
}

/// The advisory lock key of the relay lease ("smsgw_rl").
const RELAY_LOCK_KEY: i64 = 0x736d_7367_775f_726c;

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
                // One connection: SQLite has one write lock anyway, and with
                // several connections the losers wait in SQLite's busy
                // handler, which sleeps in millisecond steps; sqlx queues
                // `acquire` fairly and wakes the next caller at once
                // (benches/store.rs, 4 concurrent callers: ~85 ms per 1,000
                // messages with 1 connection vs ~110-145 ms with 4). The busy
                // timeout stays for other processes on the same file.
                // No ping before each acquire: an in-process SQLite
                // connection does not go stale, and the ping is one more
                // round trip to the worker thread per transaction.
                AnyPoolOptions::new()
                    .max_connections(1)
                    .test_before_acquire(false)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            use sqlx::Executor;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            // new files only (an existing file keeps its
                            // page size): benches/store.rs 27.1 ms against
                            // 28.1-28.4 ms per 1,000 with 4 KiB pages
                            conn.execute("PRAGMA page_size = 8192").await?;
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = NORMAL").await?;
                            Ok(())
                        })
                    })
                    .connect(&sqlite_url(url))
                    .await
            }
            // A call fails after 5 s of the server being unreachable (sqlx's
            // default waits 30 s): the tasks log it, hold their work, retry.
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect(url)
                    .await
            }
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
        let read = match backend {
            // an in-memory database exists once per connection
            Backend::Sqlite if !url.contains(":memory:") && !url.contains("mode=memory") => {
                AnyPoolOptions::new()
                    .max_connections(1)
                    .test_before_acquire(false)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            use sqlx::Executor;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            conn.execute("PRAGMA query_only = ON").await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await
                    .db()?
            }
            _ => pool.clone(),
        };
        let parked = match backend {
            Backend::Sqlite => {
                let r = sqlx::query("SELECT COUNT(*) AS n FROM reports WHERE status = 'parked'")
                    .fetch_one(&pool)
                    .await
                    .db()?;
                Some(Arc::new(AtomicI64::new(get_i64(&r, "n")?)))
            }
            Backend::Postgres => None,
        };
        Ok(SqlStore {
            pool,
            read,
            backend,
            parked,
            gate: Arc::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether parked reports may exist (see `parked`).
    fn may_have_parked(&self) -> bool {
        self.parked
            .as_ref()
            .is_none_or(|n| n.load(Ordering::Relaxed) > 0)
    }

    /// `delta` reports were parked (> 0) or left the parked set (< 0).
    fn count_parked(&self, delta: i64) {
        if let Some(n) = &self.parked {
            n.fetch_add(delta, Ordering::Relaxed);
        }
    }

    pub async fn close(&self) {
        self.read.close().await;
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
        .fetch_all(&self.read)
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
        .fetch_all(&self.read)
        .await
        .db()?;
        rows.iter().map(report_of).collect()
    }

    // ------------------------------------------------------------ outbox

    /// The right to run the outbox relays. On PostgreSQL several gateway
    /// nodes share one store, and each would otherwise publish every status
    /// event: the lease is a session advisory lock on a connection of its
    /// own, so one node publishes and the others stand by, and if that node
    /// dies (or its connection does) the lock goes with its session and
    /// another node takes over. `None`: another node holds it. A SQLite file
    /// has one serving process: the lease is always granted.
    pub async fn try_relay_lease(&self) -> StoreResult<Option<RelayLease>> {
        if self.backend == Backend::Sqlite {
            return Ok(Some(RelayLease { conn: None }));
        }
        let mut conn = self.pool.acquire().await.db()?;
        // the lock lives as long as the session: never hand this connection
        // back to the pool, close it when the lease goes
        conn.close_on_drop();
        let row = sqlx::query("SELECT pg_try_advisory_lock($1) AS got")
            .bind(RELAY_LOCK_KEY)
            .fetch_one(&mut *conn)
            .await
            .db()?;
        let got: bool = row.try_get("got").db()?;
        Ok(got.then_some(RelayLease { conn: Some(conn) }))
    }

    /// Whether `lease` still holds: its connection answers (a lost session
    /// has lost the lock too).
    pub async fn check_relay_lease(&self, lease: &mut RelayLease) -> StoreResult<()> {
        if let Some(conn) = lease.conn.as_mut() {
            sqlx::query("SELECT 1").execute(&mut **conn).await.db()?;
        }
        Ok(())
    }

    /// Where relay `name` stands (0 before its first publish).
    pub async fn relay_cursor(&self, name: &str) -> StoreResult<i64> {
        let row = sqlx::query("SELECT position FROM relay_cursors WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .db()?;
        row.map_or(Ok(0), |r| get_i64(&r, "position"))
    }

    /// Records that relay `name` has published everything up to `position`,
    /// through the lease's connection (so a lost lease fails the write).
    pub async fn set_relay_cursor(
        &self,
        lease: &mut RelayLease,
        name: &str,
        position: i64,
    ) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO relay_cursors (name, position) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET position = $2",
        )
        .bind(name)
        .bind(position);
        match lease.conn.as_mut() {
            Some(conn) => q.execute(&mut **conn).await,
            None => q.execute(&self.pool).await,
        }
        .db()?;
        Ok(())
    }

    /// Status events (history rows) after row `after`, oldest first, with
    /// their row ids. One result row (JSON, see [`agg`]): the relay reads
    /// thousands of events per call.
    pub async fn events_after(
        &self,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<(i64, StatusEvent)>> {
        type Row = (
            i64,
            String,
            String,
            String,
            Option<String>,
            i64,
            Option<String>,
            i64,
            i64,
        );
        let row = sqlx::query(stmts(self.backend).events_after.as_str())
            .bind(after)
            .bind(limit as i64)
            .fetch_one(&self.read)
            .await
            .db()?;
        let mut rows = json_result::<Row>(&row)?;
        rows.sort_unstable_by_key(|r| r.0); // an aggregate's input order is not promised
        rows.into_iter()
            .map(|(id, up, to, state, code, segments, link, at, dup)| {
                Ok((
                    id,
                    StatusEvent {
                        id: up,
                        to,
                        state: parse(&state, "state")?,
                        code,
                        segments: segments as u16,
                        link,
                        at: Timestamp(at).to_rfc3339(),
                        possible_duplicate: dup != 0,
                    },
                ))
            })
            .collect()
    }

    /// Dead letters after row `after`, oldest first, with their row ids.
    pub async fn dead_letters_after(
        &self,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<(i64, DeadLetter)>> {
        type Row = (i64, String, Option<String>, String, String, i64);
        let row = sqlx::query(stmts(self.backend).dead_letters_after.as_str())
            .bind(after)
            .bind(limit as i64)
            .fetch_one(&self.read)
            .await
            .db()?;
        let mut rows = json_result::<Row>(&row)?;
        rows.sort_unstable_by_key(|r| r.0);
        Ok(rows
            .into_iter()
            .map(|(id, origin, upstream_id, payload, reason, at)| {
                (
                    id,
                    DeadLetter {
                        origin,
                        upstream_id,
                        payload,
                        reason,
                        at: Timestamp(at),
                    },
                )
            })
            .collect())
    }

    // ------------------------------------------------------------ helpers

    /// Changes a message's state unless it is final; writes the event.
    /// Returns the event when the row changed and the state is published.
    async fn transition(
        &self,
        tx: &mut Tx,
        id: MessageId,
        to: MessageState,
        code: Option<&str>,
        link: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<Option<StatusEvent>> {
        tx.run(None).await?;
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
        .fetch_optional(tx.conn())
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

    /// [`ReportStore::bind_many`] inside `tx`: the `submitted` changes, in
    /// order (their events not inserted yet).
    async fn bind_tx(
        &self,
        tx: &mut Tx,
        binds: &[Bind],
        now: Timestamp,
    ) -> StoreResult<Vec<(MessageId, StatusEvent)>> {
        if binds.is_empty() {
            return Ok(Vec::new());
        }
        let st = stmts(self.backend);
        for chunk in binds.chunks(JSON_CHUNK) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|b| {
                    (
                        b.provider_id.as_str(),
                        b.seg.message.0,
                        i64::from(b.seg.part),
                        b.link.as_str(),
                    )
                })
                .collect();
            let rows = json(&rows)?;
            tx.defer(
                st.bind_submits.as_str(),
                vec![Arg::Text(rows.clone()), Arg::Int(now.0)],
                None,
            )
            .await?;
            tx.defer(
                st.bind_segments.as_str(),
                vec![Arg::Text(rows), Arg::Int(now.0)],
                None,
            )
            .await?;
        }
        // messages whose every part is now bound go accepted → submitted,
        // on the link of their last bound part
        let mut last_link: Vec<(i64, &str)> = Vec::new();
        let mut pos: std::collections::HashMap<MessageId, usize> = std::collections::HashMap::new();
        for b in binds {
            match pos.get(&b.seg.message) {
                Some(&i) => last_link[i].1 = &b.link,
                None => {
                    pos.insert(b.seg.message, last_link.len());
                    last_link.push((b.seg.message.0, &b.link));
                }
            }
        }
        let mut changed: Vec<(MessageId, StatusEvent)> = Vec::new();
        for chunk in last_link.chunks(JSON_CHUNK) {
            let rows: Vec<Changed> = self
                .dml_returning(
                    tx,
                    "bind_many",
                    st.bind_messages_pre.as_str(),
                    st.bind_messages.as_str(),
                    json(&chunk)?,
                    Some(now.0),
                    |rows: &[Changed]| {
                        let apply: Vec<(i64, Option<&str>)> =
                            rows.iter().map(|r| (r.0, r.5.as_deref())).collect();
                        json(&apply)
                    },
                )
                .await?;
            changed.extend(
                rows.into_iter()
                    .map(|r| changed_of(r, MessageState::Submitted, now)),
            );
        }
        changed.sort_by_key(|(id, _)| pos[id]);
        Ok(changed)
    }

    /// [`ReportStore::settle_many`] inside `tx`: one [`Settle`] per report
    /// (events not attached yet) and the state changes, in report order
    /// (not inserted yet).
    async fn settle_tx(
        &self,
        tx: &mut Tx,
        reports: &[Report],
    ) -> StoreResult<(Vec<Settle>, Vec<SettleEvent>)> {
        if reports.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let st = stmts(self.backend);
        // provider id → latest submit
        let mut subs: std::collections::HashMap<String, (SegmentRef, i64)> =
            std::collections::HashMap::with_capacity(reports.len());
        // segments no report has reached yet
        let mut unreported: std::collections::HashSet<(i64, i64)> = Default::default();
        let pids: Vec<(&str,)> = reports.iter().map(|r| (r.provider_id.as_str(),)).collect();
        for chunk in pids.chunks(JSON_CHUNK) {
            let rows: Vec<(String, i64, i64, i64, Option<i64>)> = json_result(
                &tx.fetch_one(st.settle_submits.as_str(), vec![Arg::Text(json(&chunk)?)])
                    .await?,
            )?;
            for (pid, message, part, at, open) in rows {
                if open == Some(1) {
                    unreported.insert((message, part));
                }
                let seg = SegmentRef {
                    message: MessageId(message),
                    part: part as u16,
                };
                let e = subs.entry(pid).or_insert((seg, at));
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
        for chunk in cands.chunks(JSON_CHUNK) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|(seg, i)| {
                    let r = &reports[*i];
                    (
                        seg.message.0,
                        i64::from(seg.part),
                        r.stat.as_str(),
                        i64::from(r.delivered),
                        r.received_at.0,
                    )
                })
                .collect();
            let done: Vec<(i64, i64)> = match self.backend {
                Backend::Postgres => {
                    self.dml_returning(
                        tx,
                        "settle_many segments",
                        "", // PostgreSQL runs no `*_pre` SELECT
                        st.settle_segments.as_str(),
                        json(&rows)?,
                        None,
                        |_: &[(i64, i64)]| unreachable!("PostgreSQL returns from the UPDATE"),
                    )
                    .await?
                }
                // the reports that can apply are those to segments
                // `settle_submits` found unreported (same transaction,
                // nothing reported them since): no `*_pre` SELECT needed
                Backend::Sqlite => {
                    let apply: Vec<_> = rows
                        .iter()
                        .filter(|r| unreported.contains(&(r.0, r.1)))
                        .collect();
                    if !apply.is_empty() {
                        tx.defer(
                            st.settle_segments.as_str(),
                            vec![Arg::Text(json(&apply)?)],
                            Some((apply.len() as u64, "settle_many segments")),
                        )
                        .await?;
                    }
                    apply.iter().map(|r| (r.0, r.1)).collect()
                }
            };
            applied.extend(done.into_iter().map(|(message, part)| SegmentRef {
                message: MessageId(message),
                part: part as u16,
            }));
        }
        // state changes, set-based: a failing report fails its message (the
        // first one per message names code and link), then messages whose
        // every part is delivered go delivered (the last delivering report
        // of a message names code and time); a failed message stays failed
        let mut failing: std::collections::BTreeMap<i64, usize> = Default::default();
        let mut delivering: std::collections::BTreeMap<i64, usize> = Default::default();
        for (seg, i) in &cands {
            if !applied.contains(seg) {
                continue;
            }
            if reports[*i].delivered {
                let e = delivering.entry(seg.message.0).or_insert(*i);
                *e = (*e).max(*i);
            } else {
                let e = failing.entry(seg.message.0).or_insert(*i);
                *e = (*e).min(*i);
            }
        }
        let mut evs: Vec<(usize, MessageId, StatusEvent, Timestamp)> = Vec::new();
        let failing: Vec<(i64, usize)> = failing.into_iter().collect();
        for chunk in failing.chunks(JSON_CHUNK) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|(id, i)| {
                    let r = &reports[*i];
                    (*id, r.stat.as_str(), r.link.as_deref(), r.received_at.0)
                })
                .collect();
            let idx: std::collections::HashMap<i64, usize> = chunk.iter().copied().collect();
            let changed = self
                .changed_rows(tx, &st.settle_failed_pre, &st.settle_failed, &rows, |r| r.0)
                .await?;
            for c in changed {
                let i = idx[&c.0];
                let at = reports[i].received_at;
                let (id, ev) = changed_of(c, MessageState::Failed, at);
                evs.push((i, id, ev, at));
            }
        }
        let delivering: Vec<(i64, usize)> = delivering.into_iter().collect();
        for chunk in delivering.chunks(JSON_CHUNK) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|(id, i)| {
                    let r = &reports[*i];
                    (*id, r.stat.as_str(), r.received_at.0)
                })
                .collect();
            let idx: std::collections::HashMap<i64, usize> = chunk.iter().copied().collect();
            let changed = self
                .changed_rows(
                    tx,
                    &st.settle_delivered_pre,
                    &st.settle_delivered,
                    &rows,
                    |r| r.0,
                )
                .await?;
            for c in changed {
                let i = idx[&c.0];
                let at = reports[i].received_at;
                let (id, ev) = changed_of(c, MessageState::Delivered, at);
                evs.push((i, id, ev, at));
            }
        }
        evs.sort_by_key(|(i, ..)| *i);
        Ok((out, evs))
    }

    /// Runs a DML statement made by [`returning`] over the JSON batch
    /// `param` (plus `$2 = extra` when given) and returns the rows it
    /// changed. PostgreSQL: one statement, the changed rows aggregated by
    /// its CTE. SQLite (no DML in a CTE): `pre` computes the rows the DML
    /// will change, then the DML runs on the batch `apply` builds from them
    /// and must change exactly that many rows.
    #[allow(clippy::too_many_arguments)]
    async fn dml_returning<T: serde::de::DeserializeOwned>(
        &self,
        tx: &mut Tx,
        what: &'static str,
        pre: &'static str,
        dml: &'static str,
        param: String,
        extra: Option<i64>,
        apply: impl FnOnce(&[T]) -> StoreResult<String>,
    ) -> StoreResult<Vec<T>> {
        match self.backend {
            Backend::Postgres => {
                let mut args = vec![Arg::Text(param)];
                args.extend(extra.map(Arg::Int));
                json_result(&tx.fetch_one(dml, args).await?)
            }
            Backend::Sqlite => {
                let changed: Vec<T> =
                    json_result(&tx.fetch_one(pre, vec![Arg::Text(param)]).await?)?;
                if !changed.is_empty() {
                    let mut args = vec![Arg::Text(apply(&changed)?)];
                    args.extend(extra.map(Arg::Int));
                    tx.defer(dml, args, Some((changed.len() as u64, what)))
                        .await?;
                }
                Ok(changed)
            }
        }
    }

    /// [`SqlStore::dml_returning`] for a `messages` UPDATE whose only
    /// parameter is the batch `rows` (message id `id_of(row)`, one row per
    /// message): SQLite applies it to the rows of the changed messages.
    async fn changed_rows<R: serde::Serialize>(
        &self,
        tx: &mut Tx,
        pre: &'static str,
        dml: &'static str,
        rows: &[R],
        id_of: impl Fn(&R) -> i64,
    ) -> StoreResult<Vec<Changed>> {
        self.dml_returning(
            tx,
            "update messages",
            pre,
            dml,
            json(&rows)?,
            None,
            |changed: &[Changed]| {
                let hit: std::collections::HashSet<i64> = changed.iter().map(|c| c.0).collect();
                let apply: Vec<&R> = rows.iter().filter(|r| hit.contains(&id_of(r))).collect();
                json(&apply)
            },
        )
        .await
    }

    /// On SQLite the write lock is taken up front (`BEGIN IMMEDIATE`): a
    /// deferred transaction that reads first fails with SQLITE_BUSY_SNAPSHOT
    /// instead of waiting when another connection wrote in between.
    async fn begin_tx(&self) -> StoreResult<Tx> {
        self.begin_tx_as(false).await
    }

    /// A write transaction; `bulk` for one that lets priority writes go
    /// first (see [`WriterGate`]).
    async fn begin_tx_as(&self, bulk: bool) -> StoreResult<Tx> {
        match self.backend {
            Backend::Postgres => Ok(Tx {
                inner: TxConn::Postgres(Some(self.begin().await?)),
                backend: self.backend,
                queued: Vec::new(),
                affected: Vec::new(),
                _turn: None,
            }),
            Backend::Sqlite => Ok(Tx {
                _turn: if bulk {
                    self.gate.bulk_turn().await;
                    None
                } else {
                    Some(FirstTurn::new(&self.gate))
                },
                inner: TxConn::Sqlite {
                    conn: self.pool.acquire().await.db()?,
                    open: true,
                },
                backend: self.backend,
                queued: vec![Queued {
                    sql: SQLITE_BEGIN,
                    args: Vec::new(),
                    expect: None,
                }],
                affected: Vec::new(),
            }),
        }
    }

    async fn begin(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Any>> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await.db(),
            Backend::Postgres => self.pool.begin().await.db(),
        }
    }
}

/// Rows per batch statement. Each batch goes in as one bound JSON text, so
/// the bind count is constant; this only bounds the size of that parameter.
const JSON_CHUNK: usize = 10_000;

/// The row source of the batch statements: the elements of the JSON array
/// of arrays bound as `$1`, each as `j.value`, its columns read with
/// `CAST(j.value ->> N AS type)` (JSON null → SQL NULL on both backends).
/// This `FROM` item is the only dialect difference of those statements.
fn json_rows(backend: Backend) -> &'static str {
    match backend {
        // `jsonb_each` (SQLite >= 3.45; the bundled one is 3.54) gives each
        // row array as JSONB, which `->>` reads in place; `json_each` gave
        // it as text that every `->>` row had to render and parse again:
        // benches/store.rs lifecycle 30-31 ms against 39-40 ms per 1,000.
        Backend::Sqlite => "jsonb_each($1) AS j",
        Backend::Postgres => "jsonb_array_elements(CAST($1 AS jsonb)) AS j(value)",
    }
}

/// A batch as the one JSON parameter of a batch statement: an array of
/// arrays (tuples serialize as arrays, `None` as null).
fn json<T: serde::Serialize>(rows: &T) -> StoreResult<String> {
    serde_json::to_string(rows).map_err(|e| StoreError::Backend(format!("batch to json: {e}")))
}

/// Declares [`Stmts`]: SQL texts with `{rows}` for [`json_rows`] and
/// `{lock}` for the claim's row lock, built once per backend, so each text
/// is the same on every call (prepared once per connection, then cached).
macro_rules! stmts {
    ($b:ident; $($(#[$doc:meta])* $name:ident = $sql:expr;)*) => {
        struct Stmts {
            $($(#[$doc])* $name: String,)*
        }

        impl Stmts {
            fn new($b: Backend) -> Stmts {
                let lock = match $b {
                    Backend::Postgres => " FOR UPDATE SKIP LOCKED",
                    Backend::Sqlite => "",
                };
                let fill = |sql: &str| {
                    sql.replace("{rows}", json_rows($b))
                        .replace("{lock}", lock)
                        .replace("{cols}", MESSAGE_COLS)
                };
                Stmts { $($name: fill(&$sql),)* }
            }
        }
    };
}

/// One row of one TEXT column: the `cols` of every row of `from` (a `FROM`
/// item, possibly with `WHERE ..`) as a JSON array of arrays, `[]` for no
/// rows. Hot-path statements return their result this way: sqlx hands each
/// result row from the SQLite worker thread to the caller separately and
/// converts it to an `AnyRow` (~10 µs a row); one JSON text is one row.
fn agg(b: Backend, cols: &str, from: &str) -> String {
    match b {
        Backend::Sqlite => format!("SELECT json_group_array(json_array({cols})) FROM {from}"),
        // json_agg of no rows is NULL; json → TEXT for the Any driver
        Backend::Postgres => format!(
            "SELECT CAST(COALESCE(json_agg(json_build_array({cols})), '[]') AS TEXT) FROM {from}"
        ),
    }
}

/// `dml .. RETURNING ret` with its rows aggregated by [`agg`] (`cols`: the
/// names of `ret`'s columns) on PostgreSQL, one statement; on SQLite, which
/// takes no DML in a CTE, `dml` alone: there a `*_pre` SELECT computes the
/// rows the DML will change, with the values `RETURNING` would give, and
/// the DML then runs on just those rows (see [`SqlStore::begin`]).
fn returning(b: Backend, dml: &str, ret: &str, cols: &str) -> String {
    match b {
        Backend::Sqlite => dml.to_owned(),
        Backend::Postgres => format!("WITH u AS ({dml} RETURNING {ret}) {}", agg(b, cols, "u")),
    }
}

/// `sql` on SQLite only (the `*_pre` and apply statements); empty on
/// PostgreSQL, which never runs it.
fn sqlite_only(b: Backend, sql: impl Into<String>) -> String {
    match b {
        Backend::Sqlite => sql.into(),
        Backend::Postgres => String::new(),
    }
}

const ACCEPT_INSERT: &str = "INSERT INTO messages (upstream_id, recipient, body, priority, biz, channel, carrier, \
    segments, accepted_at, expire_at, due_at, attempts, last_reason, state, updated_at) \
    SELECT CAST(j.value ->> 0 AS TEXT), CAST(j.value ->> 1 AS TEXT), CAST(j.value ->> 2 AS TEXT), \
    CAST(j.value ->> 3 AS SMALLINT), CAST(j.value ->> 4 AS TEXT), CAST(j.value ->> 5 AS TEXT), \
    CAST(j.value ->> 6 AS TEXT), CAST(j.value ->> 7 AS INTEGER), CAST(j.value ->> 8 AS BIGINT), \
    CAST(j.value ->> 9 AS BIGINT), CAST(j.value ->> 10 AS BIGINT), CAST(j.value ->> 11 AS INTEGER), \
    CAST(j.value ->> 12 AS TEXT), 'accepted', CAST(j.value ->> 8 AS BIGINT) \
    FROM {rows} WHERE true \
    ON CONFLICT (upstream_id, recipient) DO NOTHING";

/// The columns `UPDATE messages .. RETURNING` gives for a state change's
/// event ([`Changed`]).
const CHANGED_RET: &str = "messages.id AS id, messages.upstream_id AS upstream_id, \
    messages.recipient AS recipient, messages.segments AS segments, messages.code AS code, \
    messages.link AS link, messages.possible_duplicate AS possible_duplicate";
const CHANGED_COLS: &str = "id, upstream_id, recipient, segments, code, link, possible_duplicate";

const BIND_MESSAGES: &str = "UPDATE messages SET state = 'submitted', link = v.link, updated_at = $2 \
    FROM (SELECT CAST(j.value ->> 0 AS BIGINT) AS id, CAST(j.value ->> 1 AS TEXT) AS link FROM {rows}) AS v \
    WHERE messages.id = v.id AND messages.state = 'accepted' AND NOT EXISTS \
    (SELECT 1 FROM segments s WHERE s.message_id = messages.id AND s.submitted_at IS NULL)";

const SETTLE_SEGMENTS_V: &str = "(SELECT CAST(j.value ->> 0 AS BIGINT) AS message_id, \
    CAST(j.value ->> 1 AS INTEGER) AS part, CAST(j.value ->> 2 AS TEXT) AS stat, \
    CAST(j.value ->> 3 AS SMALLINT) AS delivered, CAST(j.value ->> 4 AS BIGINT) AS reported_at \
    FROM {rows}) AS v";
const SETTLE_FAILED_V: &str =
    "(SELECT CAST(j.value ->> 0 AS BIGINT) AS id, CAST(j.value ->> 1 AS TEXT) AS code, \
    CAST(j.value ->> 2 AS TEXT) AS link, CAST(j.value ->> 3 AS BIGINT) AS at FROM {rows}) AS v";
const SETTLE_DELIVERED_V: &str =
    "(SELECT CAST(j.value ->> 0 AS BIGINT) AS id, CAST(j.value ->> 1 AS TEXT) AS code, \
    CAST(j.value ->> 2 AS BIGINT) AS at FROM {rows}) AS v";
/// Messages a delivering report can finish: not final, every part delivered.
const ALL_DELIVERED: &str = "messages.state NOT IN ('delivered', 'failed', 'expired') \
    AND NOT EXISTS (SELECT 1 FROM segments s WHERE s.message_id = messages.id \
    AND (s.delivered IS NULL OR s.delivered = 0))";

// `WHERE true` before `ON CONFLICT`: SQLite would otherwise parse the
// `ON` as a join constraint of the `FROM`.
//
// Statements whose rows the caller reads return ONE row (see [`agg`]).
stmts! {
    b;
    /// `[upstream_id, to, text, priority, biz, channel, carrier, segments,
    /// accepted_at, expire_at, due_at, attempts, last_reason]` per row.
    /// PostgreSQL: the inserted `[id, upstream_id, recipient]`s; SQLite:
    /// nothing (see `accepted_since`).
    accept_messages = returning(b, ACCEPT_INSERT, "id, upstream_id, recipient", "id, upstream_id, recipient");
    /// SQLite: the largest message id before an accept's insert.
    max_message_id = sqlite_only(b, "SELECT COALESCE(MAX(id), 0) AS n FROM messages");
    /// SQLite: `[id, upstream_id, recipient]` of the messages with an id
    /// above `$1` (those `accept_messages` just inserted).
    accepted_since = sqlite_only(b, agg(b, "id, upstream_id, recipient", "messages WHERE id > $1"));
    /// `[message_id, part]` per row.
    insert_segments = "INSERT INTO segments (message_id, part) \
        SELECT CAST(j.value ->> 0 AS BIGINT), CAST(j.value ->> 1 AS INTEGER) FROM {rows}";
    /// `[message_id, upstream_id, to, state, code, segments, link, at,
    /// possible_duplicate]` per row.
    insert_events = "INSERT INTO events (message_id, upstream_id, recipient, state, code, segments, link, \
        at, possible_duplicate) \
        SELECT CAST(j.value ->> 0 AS BIGINT), CAST(j.value ->> 1 AS TEXT), CAST(j.value ->> 2 AS TEXT), \
        CAST(j.value ->> 3 AS TEXT), CAST(j.value ->> 4 AS TEXT), CAST(j.value ->> 5 AS INTEGER), \
        CAST(j.value ->> 6 AS TEXT), CAST(j.value ->> 7 AS BIGINT), CAST(j.value ->> 8 AS SMALLINT) \
        FROM {rows}";
    /// `[origin, upstream_id, payload, reason, at]` per row.
    insert_dead = "INSERT INTO dead_letters (origin, upstream_id, payload, reason, at) \
        SELECT CAST(j.value ->> 0 AS TEXT), CAST(j.value ->> 1 AS TEXT), CAST(j.value ->> 2 AS TEXT), \
        CAST(j.value ->> 3 AS TEXT), CAST(j.value ->> 4 AS BIGINT) FROM {rows}";
    /// `$1` lease end, `$2` now, `$3` [`IN_FLIGHT`], `$4` limit; the
    /// claimed rows ({cols}) as updated (attempts counted, possible_duplicate
    /// set when the previous attempt's fate is unknown, i.e. `last_reason`
    /// was still in flight). `state = 'accepted'` is literal so the partial
    /// index `messages_due` applies.
    ///
    /// PostgreSQL: one set-based statement. The pick is a MATERIALIZED
    /// CTE, evaluated once: as an `IN (subquery)` PostgreSQL may plan a
    /// nested-loop semi join that re-runs the `LIMIT .. FOR UPDATE SKIP
    /// LOCKED` subquery per row, which then skips the rows this very
    /// statement just updated and picks more (over the limit).
    ///
    /// SQLite: the pick with the values the update gives ($1 unused);
    /// `claim_apply` then updates those ids.
    claim_due = match b {
        Backend::Postgres => format!(
            "WITH pick AS MATERIALIZED (SELECT id FROM messages WHERE state = 'accepted' AND due_at <= $2 \
            ORDER BY priority, due_at LIMIT $4{{lock}}), \
            u AS (UPDATE messages SET due_at = $1, attempts = attempts + 1, updated_at = $2, last_reason = $3, \
            possible_duplicate = CASE WHEN last_reason = $3 THEN 1 ELSE possible_duplicate END \
            WHERE id IN (SELECT id FROM pick) AND state = 'accepted' AND due_at <= $2 \
            RETURNING {{cols}}) {}",
            agg(b, MESSAGE_COLS, "u")
        ),
        Backend::Sqlite => agg(
            b,
            "id, upstream_id, recipient, body, priority, channel, carrier, segments, attempts + 1, \
            expire_at, CASE WHEN last_reason = $3 THEN 1 ELSE possible_duplicate END, $3, accepted_at",
            "(SELECT * FROM messages WHERE state = 'accepted' AND due_at <= $2 \
            ORDER BY priority, due_at LIMIT $4) AS t",
        ),
    };
    /// SQLite: `[id]` per row (what `claim_due` picked), `$2` lease end,
    /// `$3` now, `$4` [`IN_FLIGHT`]: the claim's update.
    claim_apply = sqlite_only(b, "UPDATE messages SET due_at = $2, attempts = attempts + 1, updated_at = $3, \
        last_reason = $4, possible_duplicate = CASE WHEN last_reason = $4 THEN 1 ELSE possible_duplicate END \
        WHERE id IN (SELECT CAST(j.value ->> 0 AS BIGINT) FROM {rows}) AND state = 'accepted' AND due_at <= $3");
    /// `[provider_id, message_id, part, link]` per row, `$2` now.
    bind_submits = "INSERT INTO submits (provider_id, message_id, part, link, submitted_at) \
        SELECT CAST(j.value ->> 0 AS TEXT), CAST(j.value ->> 1 AS BIGINT), CAST(j.value ->> 2 AS INTEGER), \
        CAST(j.value ->> 3 AS TEXT), $2 FROM {rows}";
    /// The same rows as `bind_submits`, `$2` now.
    bind_segments = "UPDATE segments SET submitted_at = $2 \
        FROM (SELECT CAST(j.value ->> 1 AS BIGINT) AS message_id, CAST(j.value ->> 2 AS INTEGER) AS part \
        FROM {rows}) AS v \
        WHERE segments.message_id = v.message_id AND segments.part = v.part";
    /// `[message_id, link]` per row, `$2` now: accepted → submitted once
    /// every part is bound. PostgreSQL: the changed rows as [`Changed`].
    bind_messages = returning(b, BIND_MESSAGES, CHANGED_RET, CHANGED_COLS);
    /// SQLite: `[message_id, link]` per row: the [`Changed`] rows
    /// `bind_messages` will change.
    bind_messages_pre = sqlite_only(b, agg(
        b,
        "messages.id, messages.upstream_id, messages.recipient, messages.segments, messages.code, \
        v.link, messages.possible_duplicate",
        "messages JOIN (SELECT CAST(j.value ->> 0 AS BIGINT) AS id, CAST(j.value ->> 1 AS TEXT) AS link \
        FROM {rows}) AS v ON messages.id = v.id WHERE messages.state = 'accepted' AND NOT EXISTS \
        (SELECT 1 FROM segments s WHERE s.message_id = messages.id AND s.submitted_at IS NULL)",
    ));
    /// `[provider_id]` per row: `[provider_id, message_id, part,
    /// submitted_at]` per submit.
    settle_submits = agg(
        b,
        "provider_id, message_id, part, submitted_at, \
        (SELECT CASE WHEN s.reported_at IS NULL THEN 1 ELSE 0 END FROM segments s \
        WHERE s.message_id = submits.message_id AND s.part = submits.part)",
        "submits WHERE provider_id IN (SELECT CAST(j.value ->> 0 AS TEXT) FROM {rows})",
    );
    /// `[message_id, part, stat, delivered, reported_at]` per row.
    /// PostgreSQL: `[message_id, part]` of the segments it reported.
    settle_segments = returning(
        b,
        &format!("UPDATE segments SET stat = v.stat, delivered = v.delivered, reported_at = v.reported_at \
            FROM {SETTLE_SEGMENTS_V} WHERE segments.message_id = v.message_id AND segments.part = v.part \
            AND segments.reported_at IS NULL"),
        "segments.message_id AS message_id, segments.part AS part",
        "message_id, part",
    );
    /// `[message_id, code, link, at]` per row (one per message).
    /// PostgreSQL: the changed rows as [`Changed`].
    settle_failed = returning(
        b,
        &format!("UPDATE messages SET state = 'failed', code = COALESCE(v.code, messages.code), \
            link = COALESCE(v.link, messages.link), updated_at = v.at \
            FROM {SETTLE_FAILED_V} \
            WHERE messages.id = v.id AND messages.state NOT IN ('delivered', 'failed', 'expired')"),
        CHANGED_RET,
        CHANGED_COLS,
    );
    /// SQLite: the [`Changed`] rows `settle_failed` will change.
    settle_failed_pre = sqlite_only(b, agg(
        b,
        "messages.id, messages.upstream_id, messages.recipient, messages.segments, \
        COALESCE(v.code, messages.code), COALESCE(v.link, messages.link), messages.possible_duplicate",
        &format!("messages JOIN {SETTLE_FAILED_V} ON messages.id = v.id \
            WHERE messages.state NOT IN ('delivered', 'failed', 'expired')"),
    ));
    /// `[message_id, code, at]` per row (one per message): delivered once
    /// every part is. PostgreSQL: the changed rows as [`Changed`].
    settle_delivered = returning(
        b,
        &format!("UPDATE messages SET state = 'delivered', code = v.code, updated_at = v.at \
            FROM {SETTLE_DELIVERED_V} WHERE messages.id = v.id AND {ALL_DELIVERED}"),
        CHANGED_RET,
        CHANGED_COLS,
    );
    /// SQLite: the [`Changed`] rows `settle_delivered` will change.
    settle_delivered_pre = sqlite_only(b, agg(
        b,
        "messages.id, messages.upstream_id, messages.recipient, messages.segments, v.code, \
        messages.link, messages.possible_duplicate",
        &format!("messages JOIN {SETTLE_DELIVERED_V} ON messages.id = v.id WHERE {ALL_DELIVERED}"),
    ));
    /// `[provider_id, stat, delivered, link, received_at, park_until]` per row.
    park_reports = "INSERT INTO reports (provider_id, stat, delivered, link, received_at, park_until, status) \
        SELECT CAST(j.value ->> 0 AS TEXT), CAST(j.value ->> 1 AS TEXT), CAST(j.value ->> 2 AS SMALLINT), \
        CAST(j.value ->> 3 AS TEXT), CAST(j.value ->> 4 AS BIGINT), CAST(j.value ->> 5 AS BIGINT), 'parked' \
        FROM {rows}";
    /// `$1` after, `$2` limit: `[id, upstream_id, recipient, state, code,
    /// segments, link, at, possible_duplicate]` per event, oldest first.
    events_after = agg(
        b,
        "id, upstream_id, recipient, state, code, segments, link, at, possible_duplicate",
        "(SELECT * FROM events WHERE id > $1 ORDER BY id LIMIT $2) AS e",
    );
    /// `$1` after, `$2` limit: `[id, origin, upstream_id, payload, reason,
    /// at]` per dead letter, oldest first.
    dead_letters_after = agg(
        b,
        "id, origin, upstream_id, payload, reason, at",
        "(SELECT * FROM dead_letters WHERE id > $1 ORDER BY id LIMIT $2) AS d",
    );
    /// `[provider_id]` per row.
    take_parked = "DELETE FROM reports WHERE status = 'parked' AND provider_id IN \
        (SELECT CAST(j.value ->> 0 AS TEXT) FROM {rows}) \
        RETURNING id, provider_id, stat, delivered, link, received_at";
}

/// The statements of `backend`, built on first use.
fn stmts(backend: Backend) -> &'static Stmts {
    static SQLITE: std::sync::OnceLock<Stmts> = std::sync::OnceLock::new();
    static POSTGRES: std::sync::OnceLock<Stmts> = std::sync::OnceLock::new();
    match backend {
        Backend::Sqlite => SQLITE.get_or_init(|| Stmts::new(backend)),
        Backend::Postgres => POSTGRES.get_or_init(|| Stmts::new(backend)),
    }
}

#[cfg(test)]
mod stmt_tests {
    use super::*;

    async fn sqlite_store() -> (tempfile::TempDir, SqlStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let s = SqlStore::open(&url).await.unwrap();
        (dir, s)
    }

    async fn queued(s: &SqlStore) -> i64 {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM queue")
            .fetch_one(&s.pool)
            .await
            .unwrap();
        get_i64(&r, "n").unwrap()
    }

    static INSERT: &str = "INSERT INTO queue (payload, enqueued_at) VALUES ($1, $2)";
    static BAD: &str = "INSERT INTO no_such_table VALUES ($1)";

    fn row(p: &str) -> Vec<Arg> {
        vec![Arg::Text(p.to_owned()), Arg::Int(1)]
    }

    /// A bulk write waits while a priority write waits or runs, and goes
    /// once it is done, or after BULK_MAX_WAIT if it takes longer.
    #[tokio::test(start_paused = true)]
    async fn bulk_writes_go_after_priority_ones() {
        let gate = Arc::new(WriterGate::default());
        let turn = FirstTurn::new(&gate);
        let g = gate.clone();
        let bulk = tokio::spawn(async move {
            let t0 = tokio::time::Instant::now();
            g.bulk_turn().await;
            t0.elapsed()
        });
        tokio::time::sleep(Duration::from_millis(3)).await;
        drop(turn);
        assert_eq!(bulk.await.unwrap(), Duration::from_millis(3));

        let _turn = FirstTurn::new(&gate);
        let t0 = tokio::time::Instant::now();
        gate.bulk_turn().await;
        assert_eq!(t0.elapsed(), BULK_MAX_WAIT, "never stalled for good");

        drop(_turn);
        let t0 = tokio::time::Instant::now();
        gate.bulk_turn().await;
        assert_eq!(t0.elapsed(), Duration::ZERO);
    }

    /// A Tx's queued statements commit together; one that fails (here at
    /// prepare time, in the query that also carries `COMMIT`) rolls back
    /// the earlier ones, and the store works on afterwards.
    #[tokio::test]
    async fn sqlite_tx_is_all_or_nothing() {
        let (_dir, s) = sqlite_store().await;
        let mut tx = s.begin_tx().await.unwrap();
        tx.defer(INSERT, row("a"), Some((1, "insert a")))
            .await
            .unwrap();
        tx.defer(INSERT, row("b"), None).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(queued(&s).await, 2);

        let mut tx = s.begin_tx().await.unwrap();
        tx.defer(INSERT, row("c"), None).await.unwrap();
        tx.defer(BAD, vec![Arg::Int(1)], None).await.unwrap();
        assert!(tx.commit().await.is_err());
        assert_eq!(queued(&s).await, 2, "c rolled back");

        // a row count that does not match fails the Tx too
        let mut tx = s.begin_tx().await.unwrap();
        tx.defer(INSERT, row("d"), Some((2, "insert d")))
            .await
            .unwrap();
        let e = tx.commit().await.unwrap_err();
        assert!(
            e.to_string()
                .contains("insert d: changed 1 rows, expected 2"),
            "{e}"
        );
        assert_eq!(queued(&s).await, 2, "d rolled back");

        let mut tx = s.begin_tx().await.unwrap();
        tx.defer(INSERT, row("e"), None).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(queued(&s).await, 3);
    }

    /// A Tx dropped after its `BEGIN IMMEDIATE` ran (an error between
    /// queries, a cancelled future) leaves nothing behind: its connection
    /// is closed, which rolls back, and the next Tx gets a fresh one.
    #[tokio::test]
    async fn sqlite_tx_dropped_midway_rolls_back() {
        let (_dir, s) = sqlite_store().await;
        let mut tx = s.begin_tx().await.unwrap();
        tx.defer(INSERT, row("a"), None).await.unwrap();
        let rows = tx
            .fetch("SELECT COUNT(*) AS n FROM queue", vec![])
            .await
            .unwrap();
        assert_eq!(get_i64(&rows[0], "n").unwrap(), 1, "inside the Tx");
        drop(tx);
        assert_eq!(queued(&s).await, 0);
        let mut tx = s.begin_tx().await.unwrap();
        tx.defer(INSERT, row("b"), None).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(queued(&s).await, 1);
    }

    #[test]
    fn retryable_sqlstates() {
        for c in [
            "08006", "08001", "57P01", "57P03", "53300", "40001", "40P01",
        ] {
            assert!(transient_sqlstate(c), "{c}");
        }
        for c in ["23505", "42P01", "22P02", "57014"] {
            assert!(!transient_sqlstate(c), "{c}");
        }
    }

    #[test]
    fn combined_statements_number_values_after_the_parts_before() {
        assert_eq!(
            renumber(
                "UPDATE t SET a = $2 WHERE b IN (SELECT j.value FROM json_each($1))",
                3
            ),
            (
                "UPDATE t SET a = $5 WHERE b IN (SELECT j.value FROM json_each($4))".to_owned(),
                2
            )
        );
        assert_eq!(renumber("SELECT 1", 7), ("SELECT 1".to_owned(), 0));
        assert_eq!(renumber("x = $10 AND y = $1", 2).0, "x = $12 AND y = $3");
        static A: &str = "INSERT INTO t SELECT $1, $2";
        static B: &str = "SELECT $1";
        let (sql, counts) = combined(&[A, B, A]);
        assert_eq!(
            sql,
            "INSERT INTO t SELECT $1, $2;\nSELECT $3;\nINSERT INTO t SELECT $4, $5;\n"
        );
        assert_eq!(counts, vec![2, 1, 2]);
        // one statement: its own text, which sqlx has prepared already
        assert!(std::ptr::eq(combined(&[B]).0, B));
    }

    #[test]
    fn statements_fill_the_row_source() {
        for b in [Backend::Sqlite, Backend::Postgres] {
            let s = stmts(b);
            for sql in [&s.accept_messages, &s.settle_segments, &s.claim_due] {
                assert!(!sql.contains('{'), "{sql}");
            }
            assert!(s.insert_events.contains(json_rows(b)));
            // one text per backend: the same allocation every call
            assert!(std::ptr::eq(s, stmts(b)));
        }
        assert!(stmts(Backend::Postgres).claim_due.contains("SKIP LOCKED"));
        assert!(!stmts(Backend::Sqlite).claim_due.contains("SKIP LOCKED"));
    }

    #[test]
    fn batches_are_arrays_of_arrays() {
        let rows = vec![(1i64, "a\"b\\c 😀 长", None::<&str>), (2, "x", Some("y"))];
        assert_eq!(
            json(&rows).unwrap(),
            r#"[[1,"a\"b\\c 😀 长",null],[2,"x","y"]]"#
        );
        assert_eq!(json(&vec![("p",)]).unwrap(), r#"[["p"]]"#);
    }
}

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

/// The rows of an [`agg`] statement, from its one row's JSON text (read
/// as a borrowed `&str`: no copy out of the row).
fn json_result<T: serde::de::DeserializeOwned>(row: &AnyRow) -> StoreResult<Vec<T>> {
    let text = row.try_get::<&str, _>(0).db()?;
    serde_json::from_str(text).map_err(|e| StoreError::Backend(format!("result json: {e}")))
}

/// `[id, upstream_id, recipient, segments, code, link, possible_duplicate]`
/// of a message whose state changed: [`CHANGED_COLS`] after the change.
type Changed = (
    i64,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    i64,
);

/// A state change a report made: `(report index, message, event, time)`.
type SettleEvent = (usize, MessageId, StatusEvent, Timestamp);

/// Puts each report's state change into its [`Settle`].
fn attach_events(settled: &mut [Settle], evs: Vec<SettleEvent>) {
    for (i, _, ev, _) in evs {
        if let Settle::Settled { event, .. } = &mut settled[i] {
            *event = Some(ev);
        }
    }
}

/// The event of a state change from a [`Changed`] row.
fn changed_of(c: Changed, to: MessageState, now: Timestamp) -> (MessageId, StatusEvent) {
    let (id, upstream_id, recipient, segments, code, link, possible_duplicate) = c;
    (
        MessageId(id),
        StatusEvent {
            id: upstream_id,
            to: recipient,
            state: to,
            code,
            segments: segments as u16,
            link,
            at: now.to_rfc3339(),
            possible_duplicate: possible_duplicate != 0,
        },
    )
}

/// A claimed row: [`MESSAGE_COLS`] after the claim.
type Claimed = (
    i64,
    String,
    String,
    String,
    i64,
    String,
    Option<String>,
    i64,
    i64,
    i64,
    i64,
    Option<String>,
    i64,
);

fn dispatchable_of_claimed(c: Claimed) -> StoreResult<Dispatchable> {
    let (
        id,
        upstream_id,
        to,
        text,
        priority,
        channel,
        carrier,
        segments,
        attempts,
        expire_at,
        possible_duplicate,
        _last_reason,
        accepted_at,
    ) = c;
    Ok(Dispatchable {
        id: MessageId(id),
        upstream_id,
        to,
        text,
        priority: priority_of(priority),
        channel: parse(&channel, "channel")?,
        carrier: carrier.map(|c| parse(&c, "carrier")).transpose()?,
        segments: segments as u16,
        attempts: attempts as u32,
        expire_at: Timestamp(expire_at),
        possible_duplicate: possible_duplicate != 0,
        accepted_at: Timestamp(accepted_at),
    })
}

/// History rows: one statement per [`JSON_CHUNK`] rows (queued in `tx`).
async fn insert_events(
    tx: &mut Tx,
    evs: &[(MessageId, &StatusEvent, Timestamp)],
) -> StoreResult<()> {
    let st = stmts(tx.backend);
    for chunk in evs.chunks(JSON_CHUNK) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|(id, ev, now)| {
                (
                    id.0,
                    ev.id.as_str(),
                    ev.to.as_str(),
                    ev.state.as_str(),
                    ev.code.as_deref(),
                    i64::from(ev.segments),
                    ev.link.as_deref(),
                    now.0,
                    i64::from(ev.possible_duplicate),
                )
            })
            .collect();
        // an INSERT of every JSON row: a row that cannot go in is an error
        tx.defer(
            st.insert_events.as_str(),
            vec![Arg::Text(json(&rows)?)],
            None,
        )
        .await?;
    }
    Ok(())
}

/// One bound value of a [`Tx`] statement.
enum Arg {
    Text(String),
    Int(i64),
}

/// A statement queued in a [`Tx`]: its SQL, its values (`$1`.. in order)
/// and, when the caller knows it, how many rows it must change.
struct Queued {
    sql: &'static str,
    args: Vec<Arg>,
    expect: Option<(u64, &'static str)>,
}

/// A write transaction of the hot path.
///
/// On SQLite, statements whose result nobody reads at once are queued
/// ([`Tx::defer`]) and sent together with the next statement whose rows are
/// needed ([`Tx::fetch`]), or at [`Tx::commit`], as ONE multi-statement
/// query. sqlx runs SQLite on a worker thread and every query is a round
/// trip to it; with the recorder, claimer and ingest sharing the one writer
/// connection, those round trips (cross-thread wake-ups on a busy 2-core
/// machine) measured as the connection standing idle about half the time
/// it was held (`sqlx::query` debug log: statement time ~50% of wall time).
/// A queued statement that must change a known number of rows is checked
/// when it ran; a mismatch fails the call and the transaction rolls back
/// (never in the same query as the `COMMIT`: see [`Tx::commit`]).
///
/// sqlx 0.9 marks multi-statement queries (`fetch_many`) deprecated in
/// favour of `raw_sql`, which takes no bind values; sqlx-sqlite still runs
/// them statement by statement, binding `$N` by number across statements,
/// which is what [`combined`] relies on (Cargo.lock pins sqlx).
///
/// On PostgreSQL every statement runs at once (it prepares one statement
/// per query); the pipelining there is the server's job.
struct Tx {
    inner: TxConn,
    backend: Backend,
    queued: Vec<Queued>,
    /// Rows changed by each statement of the last query sent.
    affected: Vec<u64>,
    /// SQLite: a priority write holds the [`WriterGate`] until dropped.
    _turn: Option<FirstTurn>,
}

/// The connection of a [`Tx`].
enum TxConn {
    /// PostgreSQL: sqlx's transaction (taken by the commit).
    Postgres(Option<sqlx::Transaction<'static, sqlx::Any>>),
    /// SQLite: the transaction is spelled out in the queued statements
    /// (`BEGIN IMMEDIATE` goes with the first query, `COMMIT` with the
    /// last), saving the two round trips sqlx's own begin and commit take.
    /// `open` until the `COMMIT` ran; a `Tx` dropped open (an error, or its
    /// future cancelled) closes the connection, and closing rolls back.
    Sqlite {
        conn: sqlx::pool::PoolConnection<sqlx::Any>,
        open: bool,
    },
}

static SQLITE_BEGIN: &str = "BEGIN IMMEDIATE";
static SQLITE_COMMIT: &str = "COMMIT";

impl Drop for Tx {
    fn drop(&mut self) {
        if let TxConn::Sqlite { conn, open: true } = &mut self.inner {
            conn.close_on_drop();
        }
    }
}

impl Tx {
    /// The connection, for a statement run directly (after [`Tx::run`]).
    fn conn(&mut self) -> &mut sqlx::AnyConnection {
        match &mut self.inner {
            TxConn::Postgres(t) => t.as_mut().expect("transaction in use after commit"),
            TxConn::Sqlite { conn, .. } => &mut *conn,
        }
    }

    /// Runs `sql` now or (SQLite) with the next fetch or the commit.
    async fn defer(
        &mut self,
        sql: &'static str,
        args: Vec<Arg>,
        expect: Option<(u64, &'static str)>,
    ) -> StoreResult<()> {
        self.queued.push(Queued { sql, args, expect });
        if self.backend == Backend::Postgres {
            self.run(None).await?;
        }
        Ok(())
    }

    /// Runs the queued statements, then `sql`; returns `sql`'s rows.
    async fn fetch(&mut self, sql: &'static str, args: Vec<Arg>) -> StoreResult<Vec<AnyRow>> {
        self.queued.push(Queued {
            sql,
            args,
            expect: None,
        });
        self.run(Some(())).await
    }

    /// [`Tx::fetch`] of a statement that returns exactly one row.
    async fn fetch_one(&mut self, sql: &'static str, args: Vec<Arg>) -> StoreResult<AnyRow> {
        let mut rows = self.fetch(sql, args).await?;
        match rows.len() {
            1 => Ok(rows.pop().expect("one row")),
            n => Err(StoreError::Backend(format!("expected one row, got {n}"))),
        }
    }

    /// Runs what is queued, then commits.
    async fn commit(mut self) -> StoreResult<()> {
        if self.backend == Backend::Postgres {
            self.run(None).await?; // nothing is queued there; for symmetry
        }
        match &mut self.inner {
            TxConn::Sqlite { .. } => {
                // The worker thread runs a query's statements without
                // waiting for us to read their results, so a row count is
                // checked only after the whole query ran: with a COMMIT in
                // it, too late to roll back. Queued statements with a count
                // to check run first; COMMIT then goes on its own.
                if self.queued.iter().any(|q| q.expect.is_some()) {
                    self.run(None).await?;
                }
                self.queued.push(Queued {
                    sql: SQLITE_COMMIT,
                    args: Vec::new(),
                    expect: None,
                });
                self.run(None).await?;
                if let TxConn::Sqlite { open, .. } = &mut self.inner {
                    *open = false;
                }
                Ok(())
            }
            TxConn::Postgres(t) => {
                let t = t.take().expect("transaction in use after commit");
                t.commit().await.db()
            }
        }
    }

    /// Sends the queued statements as one query; checks their row counts;
    /// returns the rows of the last one when `rows_of_last`.
    async fn run(&mut self, rows_of_last: Option<()>) -> StoreResult<Vec<AnyRow>> {
        use futures::TryStreamExt;
        if self.queued.is_empty() {
            return Ok(Vec::new());
        }
        let queued = std::mem::take(&mut self.queued);
        let (sql, counts) = combined(&queued.iter().map(|q| q.sql).collect::<Vec<_>>());
        if let Some((q, n)) = queued
            .iter()
            .zip(&counts)
            .find(|(q, n)| q.args.len() != **n)
        {
            return Err(StoreError::Backend(format!(
                "statement takes {n} values, given {}: {}",
                q.args.len(),
                q.sql
            )));
        }
        let mut q = sqlx::query(sql);
        for a in queued.iter().flat_map(|q| &q.args) {
            q = match a {
                Arg::Text(s) => q.bind(s.as_str()),
                Arg::Int(i) => q.bind(*i),
            };
        }
        let mut affected = std::mem::take(&mut self.affected);
        affected.clear();
        // one `Left` (rows affected) per statement, after that statement's rows
        #[allow(deprecated)] // multi-statement query: see the type's docs
        let mut results = q.fetch_many(self.conn());
        let mut done = 0;
        let mut rows = Vec::new();
        while let Some(item) = results.try_next().await.db()? {
            match item {
                sqlx::Either::Right(row) => {
                    if done + 1 == queued.len() && rows_of_last.is_some() {
                        rows.push(row);
                    }
                }
                sqlx::Either::Left(res) => {
                    affected.push(res.rows_affected());
                    if let Some((n, what)) = queued.get(done).and_then(|q| q.expect) {
                        if res.rows_affected() != n {
                            return Err(StoreError::Backend(format!(
                                "{what}: changed {} rows, expected {n}",
                                res.rows_affected()
                            )));
                        }
                    }
                    done += 1;
                }
            }
        }
        drop(results);
        self.affected = affected;
        if done != queued.len() {
            return Err(StoreError::Backend(format!(
                "a batch of {} statements ran {done}",
                queued.len()
            )));
        }
        Ok(rows)
    }
}

/// The statements `parts` as one query text: each part's `$N` renumbered
/// after the values of the parts before it. Built once per combination
/// (the hot path uses a handful) and kept, so sqlx prepares each
/// combination once and then reuses it.
/// Also how many values each part takes (its largest `$N`).
fn combined(parts: &[&'static str]) -> (&'static str, Vec<usize>) {
    use std::collections::HashMap;
    use std::sync::Mutex;
    type Cache = Mutex<HashMap<Vec<usize>, (&'static str, Vec<usize>)>>;
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    let key: Vec<usize> = parts.iter().map(|p| p.as_ptr() as usize).collect();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .expect("poisoned");
    if let Some(c) = cache.get(&key) {
        return c.clone();
    }
    let mut out = String::new();
    let mut base = 0;
    let mut counts = Vec::with_capacity(parts.len());
    for p in parts {
        let (text, n) = renumber(p, base);
        out.push_str(&text);
        out.push_str(";\n");
        base += n;
        counts.push(n);
    }
    let sql: &'static str = if let [one] = parts {
        one
    } else {
        Box::leak(out.into_boxed_str())
    };
    cache.insert(key, (sql, counts.clone()));
    (sql, counts)
}

/// `sql` with every `$N` made `$(N + base)`; also the largest `N` (how many
/// values the statement takes). The hot path's SQL has no `$` in literals.
fn renumber(sql: &str, base: usize) -> (String, usize) {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut max = 0;
    let mut rest = sql;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            let n: usize = rest[..digits].parse().expect("digits");
            max = max.max(n);
            out.push_str(&(n + base).to_string());
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    (out, max)
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
        ack: None,
    })
}

impl MessageStore for SqlStore {
    async fn accept(&self, msgs: &[NewMessage], dead: &[DeadLetter]) -> StoreResult<AcceptResult> {
        let st = stmts(self.backend);
        let mut out = AcceptResult::default();
        let bulk = !msgs.iter().any(|m| m.priority == Priority::Otp);
        let mut tx = self.begin_tx_as(bulk).await?;
        for chunk in msgs.chunks(JSON_CHUNK) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|m| {
                    // pre-claimed: stored as `claim_due` leaves a claimed row
                    let (due_at, attempts, last_reason) = match m.claimed_until {
                        Some(until) => (until.0, 1i64, Some(IN_FLIGHT)),
                        None => (m.accepted_at.0, 0, None),
                    };
                    (
                        m.upstream_id.as_str(),
                        m.to.as_str(),
                        m.text.as_str(),
                        m.priority.index() as i64,
                        m.biz.as_deref(),
                        m.channel.as_str(),
                        m.carrier.map(Carrier::as_str),
                        i64::from(m.segments),
                        m.accepted_at.0,
                        m.expire_at.0,
                        due_at,
                        attempts,
                        last_reason,
                    )
                })
                .collect();
            let returned: Vec<(i64, String, String)> = match self.backend {
                Backend::Postgres => json_result(
                    &tx.fetch_one(st.accept_messages.as_str(), vec![Arg::Text(json(&rows)?)])
                        .await?,
                )?,
                // The inserted rows are exactly those with an id above the
                // largest before the INSERT: `messages.id` is INTEGER
                // PRIMARY KEY AUTOINCREMENT, whose new rowids are "at least
                // one larger than the largest ROWID that has ever before
                // existed in that same table" (sqlite.org/autoinc.html), so
                // every inserted id is > `before`; this store never inserts
                // explicit ids; and no other row can appear in between: the
                // transaction took the write lock at BEGIN IMMEDIATE, and
                // the pool's one connection runs only this transaction.
                // (No assumption that the ids are consecutive or in batch order.)
                Backend::Sqlite => {
                    let before = tx.fetch_one(st.max_message_id.as_str(), vec![]).await?;
                    let before = get_i64(&before, "n")?;
                    tx.defer(
                        st.accept_messages.as_str(),
                        vec![Arg::Text(json(&rows)?)],
                        None,
                    )
                    .await?;
                    // one query: the INSERT, then the rows it inserted
                    let got: Vec<(i64, String, String)> = json_result(
                        &tx.fetch_one(st.accepted_since.as_str(), vec![Arg::Int(before)])
                            .await?,
                    )?;
                    let inserted = tx.affected.first().copied().unwrap_or(0);
                    if got.len() as u64 != inserted {
                        return Err(StoreError::Backend(format!(
                            "accept: inserted {inserted} rows, found {}",
                            got.len()
                        )));
                    }
                    got
                }
            };
            // RETURNING order is unspecified: match rows by key. A repeat
            // within the batch finds its key already taken by the first.
            let mut first: std::collections::HashMap<(&str, &str), usize> =
                std::collections::HashMap::with_capacity(chunk.len());
            for (i, m) in chunk.iter().enumerate() {
                first
                    .entry((m.upstream_id.as_str(), m.to.as_str()))
                    .or_insert(i);
            }
            let mut ids: Vec<Option<MessageId>> = vec![None; chunk.len()];
            for (id, up, to) in &returned {
                let i = *first.get(&(up.as_str(), to.as_str())).ok_or_else(|| {
                    StoreError::Backend(format!("accept returned an unknown row {up:?}"))
                })?;
                ids[i] = Some(MessageId(*id));
            }
            let mut new = Vec::with_capacity(returned.len());
            for (m, id) in chunk.iter().zip(ids) {
                match id {
                    Some(id) => new.push((id, m)),
                    None => out.duplicates += 1,
                }
            }
            if new.is_empty() {
                continue;
            }
            let segs: Vec<(i64, i64)> = new
                .iter()
                .flat_map(|(id, m)| (1..=i64::from(m.segments.max(1))).map(move |p| (id.0, p)))
                .collect();
            for sc in segs.chunks(JSON_CHUNK) {
                tx.defer(
                    st.insert_segments.as_str(),
                    vec![Arg::Text(json(&sc)?)],
                    None,
                )
                .await?;
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
        for chunk in dead.chunks(JSON_CHUNK) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|d| {
                    (
                        d.origin.as_str(),
                        d.upstream_id.as_deref(),
                        d.payload.as_str(),
                        d.reason.as_str(),
                        d.at.0,
                    )
                })
                .collect();
            tx.defer(st.insert_dead.as_str(), vec![Arg::Text(json(&rows)?)], None)
                .await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn claim_due(
        &self,
        now: Timestamp,
        limit: usize,
        lease: Duration,
    ) -> StoreResult<Vec<Dispatchable>> {
        let st = stmts(self.backend);
        let until = now.plus(lease).0;
        let rows: Vec<Claimed> = match self.backend {
            Backend::Postgres => json_result(
                &sqlx::query(st.claim_due.as_str())
                    .bind(until)
                    .bind(now.0)
                    .bind(IN_FLIGHT)
                    .bind(limit as i64)
                    .fetch_one(&self.pool)
                    .await
                    .db()?,
            )?,
            // pick (with the values the update gives), then update those ids
            Backend::Sqlite => {
                let mut tx = self.begin_tx_as(true).await?;
                let rows: Vec<Claimed> = json_result(
                    &tx.fetch_one(
                        st.claim_due.as_str(),
                        vec![
                            Arg::Int(until),
                            Arg::Int(now.0),
                            Arg::Text(IN_FLIGHT.to_owned()),
                            Arg::Int(limit as i64),
                        ],
                    )
                    .await?,
                )?;
                if !rows.is_empty() {
                    let ids: Vec<(i64,)> = rows.iter().map(|r| (r.0,)).collect();
                    tx.defer(
                        st.claim_apply.as_str(),
                        vec![
                            Arg::Text(json(&ids)?),
                            Arg::Int(until),
                            Arg::Int(now.0),
                            Arg::Text(IN_FLIGHT.to_owned()),
                        ],
                        Some((rows.len() as u64, "claim_due")),
                    )
                    .await?;
                }
                tx.commit().await?;
                rows
            }
        };
        let mut out = rows
            .into_iter()
            .map(dispatchable_of_claimed)
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
        let mut tx = self.begin_tx().await?;
        sqlx::query(
            "UPDATE messages SET last_reason = $1, \
             possible_duplicate = CASE WHEN $2 = 1 THEN 1 ELSE possible_duplicate END WHERE id = $3",
        )
        .bind(reason)
        .bind(i64::from(possible_duplicate))
        .bind(id.0)
        .execute(tx.conn())
        .await
        .db()?;
        self.transition(&mut tx, id, MessageState::Retryable, None, None, now)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn fail(
        &self,
        id: MessageId,
        code: &str,
        link: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<Option<StatusEvent>> {
        let mut tx = self.begin_tx().await?;
        let ev = self
            .transition(&mut tx, id, MessageState::Failed, Some(code), link, now)
            .await?;
        tx.commit().await?;
        Ok(ev)
    }

    async fn expire(&self, id: MessageId, now: Timestamp) -> StoreResult<Option<StatusEvent>> {
        let mut tx = self.begin_tx().await?;
        let ev = self
            .transition(&mut tx, id, MessageState::Expired, None, None, now)
            .await?;
        tx.commit().await?;
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
        // `state IN (..)` and `expire_at <= $1` ($2 <= $1) are implied by
        // the rest: spelled out so the partial index `messages_expire` applies
        let rows = sqlx::query(
            "SELECT id FROM messages WHERE state IN ('accepted', 'submitted') AND expire_at <= $1 \
             AND ((state = 'accepted' AND expire_at <= $1) OR (state = 'submitted' AND expire_at <= $2)) \
             ORDER BY expire_at LIMIT $3",
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
             FROM events WHERE message_id IN (SELECT id FROM messages WHERE upstream_id = $1) \
             ORDER BY id",
        )
        .bind(upstream_id)
        .fetch_all(&self.read)
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
        .fetch_all(&self.read)
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
            let pool = self.read.clone();
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
        let mut tx = self.begin_tx().await?;
        sqlx::query("INSERT INTO submits (provider_id, message_id, part, link, submitted_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(provider_id.as_str())
            .bind(seg.message.0)
            .bind(i64::from(seg.part))
            .bind(link)
            .bind(now.0)
            .execute(tx.conn())
            .await
            .db()?;
        sqlx::query("UPDATE segments SET submitted_at = $1 WHERE message_id = $2 AND part = $3")
            .bind(now.0)
            .bind(seg.message.0)
            .bind(i64::from(seg.part))
            .execute(tx.conn())
            .await
            .db()?;
        let r = sqlx::query(
            "SELECT COUNT(*) AS n FROM segments WHERE message_id = $1 AND submitted_at IS NULL",
        )
        .bind(seg.message.0)
        .fetch_one(tx.conn())
        .await
        .db()?;
        let mut ev = None;
        if get_i64(&r, "n")? == 0 {
            // only from accepted: a report may already have finished the message
            let st = sqlx::query("SELECT state FROM messages WHERE id = $1")
                .bind(seg.message.0)
                .fetch_optional(tx.conn())
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
        tx.commit().await?;
        Ok(ev)
    }

    async fn settle(&self, report: &Report) -> StoreResult<Settle> {
        let mut tx = self.begin_tx().await?;
        let row = sqlx::query(
            "SELECT message_id, part, submitted_at FROM submits WHERE provider_id = $1 \
             ORDER BY submitted_at DESC LIMIT 1",
        )
        .bind(report.provider_id.as_str())
        .fetch_optional(tx.conn())
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
        .execute(tx.conn())
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
                .fetch_one(tx.conn())
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
        tx.commit().await?;
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
        let mut tx = self.begin_tx().await?;
        let changed = self.bind_tx(&mut tx, binds, now).await?;
        let refs: Vec<(MessageId, &StatusEvent, Timestamp)> =
            changed.iter().map(|(id, e)| (*id, e, now)).collect();
        insert_events(&mut tx, &refs).await?;
        tx.commit().await?;
        Ok(changed.into_iter().map(|(_, e)| e).collect())
    }

    async fn record(
        &self,
        binds: &[Bind],
        reports: &[Report],
        now: Timestamp,
    ) -> StoreResult<(Vec<StatusEvent>, Vec<Settle>)> {
        if binds.is_empty() && reports.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let mut tx = self.begin_tx().await?;
        let changed = self.bind_tx(&mut tx, binds, now).await?;
        let (mut settled, evs) = self.settle_tx(&mut tx, reports).await?;
        let refs: Vec<(MessageId, &StatusEvent, Timestamp)> = changed
            .iter()
            .map(|(id, e)| (*id, e, now))
            .chain(evs.iter().map(|(_, id, e, t)| (*id, e, *t)))
            .collect();
        insert_events(&mut tx, &refs).await?;
        tx.commit().await?;
        attach_events(&mut settled, evs);
        Ok((changed.into_iter().map(|(_, e)| e).collect(), settled))
    }

    async fn settle_many(&self, reports: &[Report]) -> StoreResult<Vec<Settle>> {
        if reports.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_tx().await?;
        let (mut settled, evs) = self.settle_tx(&mut tx, reports).await?;
        let refs: Vec<(MessageId, &StatusEvent, Timestamp)> =
            evs.iter().map(|(_, id, e, t)| (*id, e, *t)).collect();
        insert_events(&mut tx, &refs).await?;
        tx.commit().await?;
        attach_events(&mut settled, evs);
        Ok(settled)
    }

    async fn park_many(&self, reports: &[(Report, Timestamp)]) -> StoreResult<()> {
        for chunk in reports.chunks(JSON_CHUNK) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|(r, until)| {
                    (
                        r.provider_id.as_str(),
                        r.stat.as_str(),
                        i64::from(r.delivered),
                        r.link.as_deref(),
                        r.received_at.0,
                        until.0,
                    )
                })
                .collect();
            let res = sqlx::query(stmts(self.backend).park_reports.as_str())
                .bind(json(&rows)?)
                .execute(&self.pool)
                .await
                .db()?;
            self.count_parked(res.rows_affected() as i64);
        }
        Ok(())
    }

    async fn take_parked_many(&self, provider_ids: &[ProviderMsgId]) -> StoreResult<Vec<Report>> {
        if !self.may_have_parked() {
            return Ok(Vec::new());
        }
        let mut rows = Vec::new();
        for chunk in provider_ids.chunks(JSON_CHUNK) {
            let pids: Vec<(&str,)> = chunk.iter().map(|p| (p.as_str(),)).collect();
            for r in sqlx::query(stmts(self.backend).take_parked.as_str())
                .bind(json(&pids)?)
                .fetch_all(&self.pool)
                .await
                .db()?
            {
                rows.push((get_i64(&r, "id")?, report_of(&r)?));
            }
        }
        rows.sort_by_key(|(id, _)| *id);
        self.count_parked(-(rows.len() as i64));
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
        self.count_parked(1);
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
        self.count_parked(-(out.len() as i64));
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
        let res = q.bind(key).execute(&self.pool).await.db()?;
        self.count_parked(-(res.rows_affected() as i64));
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
