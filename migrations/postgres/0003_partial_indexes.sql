-- Fewer index writes per message: the claim and expiry indexes hold only
-- the rows their queries look for (partial indexes; the queries spell the
-- state out as a literal so the planner can use them), and history is found
-- through the message ids (UNIQUE (upstream_id, recipient) on messages finds
-- those) instead of a second text index on events.
DROP INDEX messages_due;
CREATE INDEX messages_due ON messages (priority, due_at) WHERE state = 'accepted';
DROP INDEX messages_expire;
CREATE INDEX messages_expire ON messages (expire_at) WHERE state IN ('accepted', 'submitted');
CREATE INDEX messages_retryable ON messages (updated_at, id) WHERE state = 'retryable';
DROP INDEX events_upstream;
CREATE INDEX events_message ON events (message_id);
