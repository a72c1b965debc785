-- How far the status / dead-letter relays have published the `events` and
-- `dead_letters` tables to Kafka (outbox cursors, one row per relay).
CREATE TABLE relay_cursors (
    name TEXT NOT NULL PRIMARY KEY,
    position BIGINT NOT NULL
);
