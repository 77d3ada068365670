-- An internal note added by an ad-hoc command carries the command's session id:
-- a stage replayed (a client retrying, a forged replay within the session's
-- lifetime) finds the note already there instead of storing it twice.
ALTER TABLE desk_notes ADD COLUMN idempotency_key text;
CREATE UNIQUE INDEX desk_notes_idempotency
    ON desk_notes (conversation_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
