-- 0004_notify: the notification cascade (issue 5): durable jobs, read and
-- notified marks, contacts (email addresses, opt-outs) and web push
-- subscriptions.
--
-- A message that stays unseen on XMPP is followed by a web push and then by
-- one debounced email, for the customer (about the company's messages) and
-- for the company (about the customer's). Each step is one `notify_jobs` row
-- per (conversation, party, channel), due at a time:
--
--   * At most one job per triple is *pending* (the partial unique index):
--     scheduling again while one waits does nothing, so what arrives
--     meanwhile is batched into it. Jobs are claimed with a lease (FOR UPDATE
--     SKIP LOCKED, like roster_jobs); a process that dies lets its lease run
--     out and the job comes back.
--   * A job that is in flight (leased) when more messages are scheduled
--     remembers it (`rerun_due_at`, the earliest requested time, and
--     `quiet_s`): when it finishes, whatever its outcome, a follow-up job is
--     queued in the same statement, so a message archived while the email
--     was being written is never left without a job.
--   * Finished jobs stay (done, cancelled, failed) with `finished_at` and
--     `last_error`, as a history of what was sent and why not; they leave
--     the pending indexes.
--
-- Marks, in two tables because the protocol's marks have two keys:
--   * `notify_seen` (conversation, party): everything of the conversation up
--     to `seen_message_id` was read on XMPP by that party.
--   * `notify_sent` (conversation, party, channel): everything up to
--     `notified_id` was sent by that channel, last at `sent_at` (the start of
--     the quiet period). A row per channel instead of a column pair per
--     channel keeps every statement channel-agnostic.
-- Marks only move forward (greatest()); they are message ids, not foreign
-- keys: messages are only ever deleted with their conversation.
--
-- `contacts` holds how an address is reached off XMPP: a customer's bare JID
-- or a company's JID (slug@domain). A company without a confirmed address of
-- its own falls back to `companies.email` (read by the store, not copied).
-- `push_subscriptions`: Web Push (RFC 8030) endpoints of customers; the
-- endpoint URL is unique, a browser that re-subscribes under another address
-- moves to it.

CREATE TABLE notify_jobs (
    id               bigserial PRIMARY KEY,
    conversation_id  bigint NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    party            text NOT NULL CHECK (party IN ('company', 'customer')),
    channel          text NOT NULL CHECK (channel IN ('email', 'push')),
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'done', 'cancelled', 'failed')),
    due_at           timestamptz NOT NULL,
    -- Failed attempts so far (retry and fail count one each).
    attempts         integer NOT NULL DEFAULT 0,
    leased_until     timestamptz,
    last_error       text,
    -- Set by schedule() while the job is leased: queue a follow-up when it
    -- finishes, due no earlier than this and than the quiet period allows.
    rerun_due_at     timestamptz,
    -- The quiet period (seconds) of the last schedule() that touched the job.
    quiet_s          double precision NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    CONSTRAINT notify_jobs_finished CHECK ((state = 'pending') = (finished_at IS NULL))
);
-- At most one pending job per (conversation, party, channel): the batching.
-- schedule() names it as its ON CONFLICT arbiter.
CREATE UNIQUE INDEX notify_jobs_pending
    ON notify_jobs (conversation_id, party, channel) WHERE state = 'pending';
-- Claiming due jobs, oldest due first.
CREATE INDEX notify_jobs_due ON notify_jobs (due_at) WHERE state = 'pending';
-- Deleting a conversation (a company removed) cascades here; finished jobs
-- accumulate, so without this index every deleted conversation would scan
-- the whole table.
CREATE INDEX notify_jobs_conversation ON notify_jobs (conversation_id);

CREATE TABLE notify_seen (
    conversation_id  bigint NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    party            text NOT NULL CHECK (party IN ('company', 'customer')),
    seen_message_id  bigint NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, party)
);

CREATE TABLE notify_sent (
    conversation_id  bigint NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    party            text NOT NULL CHECK (party IN ('company', 'customer')),
    channel          text NOT NULL CHECK (channel IN ('email', 'push')),
    notified_id      bigint NOT NULL,
    sent_at          timestamptz NOT NULL,
    PRIMARY KEY (conversation_id, party, channel)
);

CREATE TABLE contacts (
    -- A customer's bare JID, or a company's JID (slug@domain).
    address            text PRIMARY KEY,
    -- Confirmed address.
    email              text,
    -- Awaiting confirmation: the address and the hash of the code sent to it.
    pending_email      text,
    pending_code_hash  text,
    pending_since      timestamptz,
    email_opt_out      boolean NOT NULL DEFAULT false,
    push_opt_out       boolean NOT NULL DEFAULT false,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT contacts_pending_complete CHECK (
        (pending_email IS NULL) = (pending_code_hash IS NULL)
        AND (pending_email IS NULL) = (pending_since IS NULL))
);

CREATE TABLE push_subscriptions (
    id          bigserial PRIMARY KEY,
    -- The customer's bare JID.
    address     text NOT NULL,
    endpoint    text NOT NULL UNIQUE,
    -- The user agent's P-256 public key and authentication secret (RFC 8291),
    -- base64url.
    p256dh      text NOT NULL,
    auth        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX push_subscriptions_address ON push_subscriptions (address);
