-- 0002_deliveries: messages handed to ejabberd but not yet confirmed written.
--
-- XEP-0114 has no acknowledgements: a component process that dies between
-- committing a batch and writing its stanzas would leave archived messages
-- that nobody ever receives. Each archived batch that is about to be
-- delivered gets one row here, in the statement that archives it; the
-- component deletes the row once the stanzas are written. Rows left behind
-- by a process that died become stale and are delivered again by any
-- running process (at least once, with the original ids, so clients can
-- recognise a repeat). One row per batch, not per message, keeps this cheap.

CREATE TABLE deliveries (
    id           bigserial PRIMARY KEY,
    message_ids  bigint[] NOT NULL,
    -- Set when the row is created and again whenever a process takes it
    -- over; a row older than the sweep threshold belongs to nobody.
    since        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deliveries_since ON deliveries (since);
