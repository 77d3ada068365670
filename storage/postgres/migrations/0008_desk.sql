-- 0008_desk: the agent desk (issue 6): conversation status and assignment,
-- internal notes, canned replies, the audit log of desk events, and two
-- per-company settings.
--
-- `desk_conversations` holds the desk state of a conversation: `open` or
-- `resolved`, and the agent who claimed it (NULL: every online agent gets
-- the customer's messages). A conversation without a row is open and
-- unassigned, so existing and new conversations need no row until an agent
-- (or the CLI) changes something. Changes lock the row (created first if
-- missing), so two agents claiming at once are serialised and the second
-- sees the first's claim.
--
-- Routing reads the assignees of a batch's conversations in one statement,
-- which also reopens the resolved ones a customer wrote to (recorded as a
-- `reopen` event by the customer); see storage/postgres/desk.py.
--
-- `desk_events` is the audit log: every claim, transfer, release (assignment
-- back to every agent), resolve, reopen and note, with who did it:
--   * actor_kind `agent` (actor = the agent's bare JID), `customer` (a
--     customer's message reopened it; the JID is not repeated here),
--     `operator` (the `orgchat desk` CLI) or `system` (an agent removed from
--     the company: their conversations go back to everyone, by the trigger
--     below, whatever path removed them);
--   * from_agent/to_agent: the assignee before and after.
--
-- `desk_notes`: internal notes of the agents, never sent to the customer.
-- `canned_replies`: a company's prepared answers; titles are unique per
-- company (clients refuse forms with two equal option labels).
--
-- companies.away_message (NULL: the standard text) and
-- companies.reaction_window_s (NULL: the service's notify setting) are
-- read with the directory; the existing companies_notify_directory trigger
-- fires on every UPDATE, so a change reaches every component's cache.

ALTER TABLE companies ADD COLUMN away_message text;
ALTER TABLE companies ADD COLUMN reaction_window_s integer
    CONSTRAINT companies_reaction_window_positive
    CHECK (reaction_window_s IS NULL OR reaction_window_s > 0);

CREATE TABLE desk_conversations (
    conversation_id  bigint PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    -- Bare JID of the agent who claimed it; NULL: every online agent.
    assignee         text,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
-- An agent removed from a company: find their conversations.
CREATE INDEX desk_conversations_assignee
    ON desk_conversations (assignee) WHERE assignee IS NOT NULL;

CREATE TABLE desk_notes (
    id               bigserial PRIMARY KEY,
    conversation_id  bigint NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    agent_jid        text NOT NULL,
    body             text NOT NULL CHECK (body <> ''),
    ts               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX desk_notes_conversation ON desk_notes (conversation_id, id);

CREATE TABLE desk_events (
    id               bigserial PRIMARY KEY,
    conversation_id  bigint NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    kind             text NOT NULL
                     CHECK (kind IN ('claim', 'transfer', 'release', 'resolve', 'reopen', 'note')),
    actor_kind       text NOT NULL
                     CHECK (actor_kind IN ('agent', 'customer', 'operator', 'system')),
    actor            text,
    from_agent       text,
    to_agent         text,
    note_id          bigint REFERENCES desk_notes (id) ON DELETE CASCADE,
    ts               timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT desk_events_agent_named CHECK ((actor_kind = 'agent') = (actor IS NOT NULL))
);
CREATE INDEX desk_events_conversation ON desk_events (conversation_id, id);
-- Deleting a note (with its conversation) must not scan the log.
CREATE INDEX desk_events_note ON desk_events (note_id) WHERE note_id IS NOT NULL;

CREATE TABLE canned_replies (
    id          bigserial PRIMARY KEY,
    company_id  bigint NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    title       text NOT NULL CHECK (title <> ''),
    body        text NOT NULL CHECK (body <> ''),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (company_id, title)
);

-- An agent who leaves a company leaves its conversations to everyone.
CREATE FUNCTION agents_release_conversations() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH released AS (
        UPDATE desk_conversations d SET assignee = NULL, updated_at = now()
          FROM conversations c
         WHERE c.id = d.conversation_id AND c.company_id = OLD.company_id
           AND d.assignee = OLD.jid
        RETURNING d.conversation_id
    )
    INSERT INTO desk_events (conversation_id, kind, actor_kind, from_agent)
    SELECT conversation_id, 'release', 'system', OLD.jid FROM released;
    RETURN NULL;
END $$;

CREATE TRIGGER agents_release_conversations
    AFTER DELETE ON agents
    FOR EACH ROW EXECUTE FUNCTION agents_release_conversations();
