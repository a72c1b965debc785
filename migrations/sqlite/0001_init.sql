-- smsgw store schema v1. Portable column types: BIGINT times (Unix ms),
-- SMALLINT/INTEGER flags (no BOOLEAN), TEXT strings. Only the identity
-- column differs between backends: AUTOINCREMENT here, an identity column in PostgreSQL.

CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    upstream_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    body TEXT NOT NULL,
    priority SMALLINT NOT NULL,          -- 0 otp, 1 notify, 2 marketing
    biz TEXT,
    channel TEXT NOT NULL,
    carrier TEXT,
    segments INTEGER NOT NULL,
    state TEXT NOT NULL,                 -- accepted|submitted|delivered|failed|expired|retryable
    code TEXT,
    link TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    possible_duplicate SMALLINT NOT NULL DEFAULT 0,
    last_reason TEXT,
    due_at BIGINT NOT NULL,              -- next attempt, or claim lease end
    expire_at BIGINT NOT NULL,
    accepted_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT messages_upstream UNIQUE (upstream_id, recipient)
);
CREATE INDEX messages_due ON messages (state, priority, due_at);
CREATE INDEX messages_expire ON messages (state, expire_at);

-- one row per SMS part; a part takes one report
CREATE TABLE segments (
    message_id BIGINT NOT NULL,
    part INTEGER NOT NULL,
    submitted_at BIGINT,
    stat TEXT,
    delivered SMALLINT,
    reported_at BIGINT,
    PRIMARY KEY (message_id, part)
);

-- every provider id a part was accepted under (resends add rows)
CREATE TABLE submits (
    provider_id TEXT NOT NULL,
    message_id BIGINT NOT NULL,
    part INTEGER NOT NULL,
    link TEXT NOT NULL,
    submitted_at BIGINT NOT NULL
);
CREATE INDEX submits_provider ON submits (provider_id);

-- status history, one row per published change
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id BIGINT NOT NULL,
    upstream_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    state TEXT NOT NULL,
    code TEXT,
    segments INTEGER NOT NULL,
    link TEXT,
    at BIGINT NOT NULL,
    possible_duplicate SMALLINT NOT NULL DEFAULT 0
);
CREATE INDEX events_upstream ON events (upstream_id, id);

-- reports that matched nothing yet (parked) or ever (unmatched)
CREATE TABLE reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    provider_id TEXT NOT NULL,
    stat TEXT NOT NULL,
    delivered SMALLINT NOT NULL,
    link TEXT,
    received_at BIGINT NOT NULL,
    park_until BIGINT NOT NULL,
    status TEXT NOT NULL                 -- parked|unmatched
);
CREATE INDEX reports_provider ON reports (provider_id, status);

CREATE TABLE dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    origin TEXT NOT NULL,
    upstream_id TEXT,
    payload TEXT NOT NULL,
    reason TEXT NOT NULL,
    at BIGINT NOT NULL
);

-- the embedded input queue (when no Kafka), fed by `smsgw send`
CREATE TABLE queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    payload TEXT NOT NULL,
    enqueued_at BIGINT NOT NULL
);

CREATE TABLE links (
    name TEXT NOT NULL PRIMARY KEY,
    protocol TEXT NOT NULL,
    addr TEXT NOT NULL,
    account TEXT NOT NULL,
    secret TEXT NOT NULL,
    connections INTEGER NOT NULL,
    window_size INTEGER NOT NULL,
    tps INTEGER,
    weight INTEGER NOT NULL,
    created_at BIGINT NOT NULL
);
