-- 0001_initial: the directory (companies, agents), the roster job queue, the
-- conversations and the message archive.
--
-- Consistency rules live in triggers, so that every path (component, CLI,
-- import, a psql session) queues the same roster jobs and notifies the same
-- listeners:
--   * an agent added, removed or moved queues roster jobs; so does a company
--     renamed (new item name) or re-slugged (new JID);
--   * deleting a company first deletes its agents itself (BEFORE DELETE), so
--     their "remove" jobs can still read the company's slug and name; with
--     the plain ON DELETE CASCADE the company row would already be gone;
--   * NOTIFY orgchat_roster_jobs (empty payload) when jobs are queued, and
--     NOTIFY orgchat_directory (payload: the slug, at most 64 ASCII characters
--     by the CHECK below, far under the 8000-byte payload limit) when a company
--     or one of its agents changes.

CREATE TABLE companies (
    id          bigserial PRIMARY KEY,
    slug        text NOT NULL UNIQUE
                CONSTRAINT companies_slug_format
                CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$'),
    name        text NOT NULL,
    email       text,
    timezone    text NOT NULL DEFAULT 'UTC',
    hours       text,
    category    text,
    city        text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE agents (
    company_id  bigint NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    jid         text NOT NULL,
    role        text NOT NULL CHECK (role IN ('agent', 'admin')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, jid)
);
-- "Which companies is this agent part of?" (presence, ad-hoc commands).
CREATE INDEX agents_jid ON agents (jid);

-- Denormalised slug and name: a "remove" job must still be doable after the
-- company row is gone.
CREATE TABLE roster_jobs (
    id               bigserial PRIMARY KEY,
    op               text NOT NULL CHECK (op IN ('add', 'remove')),
    company_slug     text NOT NULL,
    company_name     text NOT NULL,
    agent_jid        text NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    leased_until     timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX roster_jobs_due ON roster_jobs (next_attempt_at, id);
-- Per-item order (claim) and superseding (roster_jobs_queue).
CREATE INDEX roster_jobs_item ON roster_jobs (company_slug, agent_jid, id);

CREATE TABLE conversations (
    id             bigserial PRIMARY KEY,
    company_id     bigint NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    customer_jid   text NOT NULL,
    -- Random (Python `secrets`), never derived from the customer's JID.
    token          text NOT NULL UNIQUE CHECK (token ~ '^[a-z2-7]{10}$'),
    customer_nick  text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (company_id, customer_jid)
);

CREATE TABLE messages (
    id               bigserial PRIMARY KEY,
    conversation_id  bigint NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    direction        text NOT NULL CHECK (direction IN ('in', 'out')),
    sender_jid       text NOT NULL,
    body             text NOT NULL,
    stanza_id        text NOT NULL UNIQUE,
    client_id        text,
    client_key       text,
    pending          boolean NOT NULL DEFAULT false,
    ts               timestamptz NOT NULL,
    -- Only customer messages wait for an agent.
    CONSTRAINT messages_pending_is_in CHECK (NOT pending OR direction = 'in')
);
-- Retransmission dedup: one message per (conversation, sender, client key).
CREATE UNIQUE INDEX messages_client_key
    ON messages (conversation_id, sender_jid, client_key) WHERE client_key IS NOT NULL;
-- History, newest first.
CREATE INDEX messages_conversation ON messages (conversation_id, id);
-- Pending messages are few; keep their index small.
CREATE INDEX messages_pending ON messages (conversation_id, id) WHERE pending;


-- Roster jobs ---------------------------------------------------------------

-- Queue one roster edit. Only the latest intent per roster item matters, so
-- older jobs for the same item that no worker holds are dropped: a job that
-- keeps failing cannot block the one that supersedes it, and a re-run import
-- does not pile up duplicates. Jobs that are leased stay; the claim query
-- keeps the item's jobs in order.
CREATE FUNCTION roster_jobs_queue(op text, slug text, name text, jid text)
RETURNS void LANGUAGE sql AS $$
    DELETE FROM roster_jobs
     WHERE company_slug = $2 AND agent_jid = $4 AND leased_until IS NULL;
    INSERT INTO roster_jobs (op, company_slug, company_name, agent_jid)
    VALUES ($1, $2, $3, $4);
$$;

CREATE FUNCTION agents_queue_roster_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE'
            AND (OLD.company_id, OLD.jid) IS DISTINCT FROM (NEW.company_id, NEW.jid)) THEN
        PERFORM roster_jobs_queue('remove', c.slug, c.name, OLD.jid)
           FROM companies c WHERE c.id = OLD.company_id;
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE'
            AND (OLD.company_id, OLD.jid) IS DISTINCT FROM (NEW.company_id, NEW.jid)) THEN
        PERFORM roster_jobs_queue('add', c.slug, c.name, NEW.jid)
           FROM companies c WHERE c.id = NEW.company_id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER agents_queue_roster_jobs
    AFTER INSERT OR UPDATE OR DELETE ON agents
    FOR EACH ROW EXECUTE FUNCTION agents_queue_roster_jobs();

-- A new name must reach the roster items; a new slug is a new JID.
CREATE FUNCTION companies_queue_roster_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.slug <> OLD.slug THEN
        PERFORM roster_jobs_queue('remove', OLD.slug, OLD.name, a.jid)
           FROM agents a WHERE a.company_id = OLD.id;
    END IF;
    PERFORM roster_jobs_queue('add', NEW.slug, NEW.name, a.jid)
       FROM agents a WHERE a.company_id = NEW.id;
    RETURN NULL;
END $$;

CREATE TRIGGER companies_queue_roster_jobs
    AFTER UPDATE OF slug, name ON companies
    FOR EACH ROW WHEN (OLD.slug <> NEW.slug OR OLD.name <> NEW.name)
    EXECUTE FUNCTION companies_queue_roster_jobs();

-- See the header: the agents' triggers must run while the company exists.
CREATE FUNCTION companies_delete_agents_first() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM agents WHERE company_id = OLD.id;
    RETURN OLD;
END $$;

CREATE TRIGGER companies_delete_agents_first
    BEFORE DELETE ON companies
    FOR EACH ROW EXECUTE FUNCTION companies_delete_agents_first();

-- One wake-up per statement is enough: workers claim whatever is due.
CREATE FUNCTION roster_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('orgchat_roster_jobs', '');
    RETURN NULL;
END $$;

CREATE TRIGGER roster_jobs_notify
    AFTER INSERT ON roster_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION roster_jobs_notify();


-- Directory change notifications --------------------------------------------
-- PostgreSQL folds identical notifications of one transaction into one, so
-- notifying per row costs one message per changed company.

CREATE FUNCTION companies_notify_directory() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pg_notify('orgchat_directory', OLD.slug);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM pg_notify('orgchat_directory', NEW.slug);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER companies_notify_directory
    AFTER INSERT OR UPDATE OR DELETE ON companies
    FOR EACH ROW EXECUTE FUNCTION companies_notify_directory();

CREATE FUNCTION agents_notify_directory() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pg_notify('orgchat_directory', c.slug) FROM companies c WHERE c.id = OLD.company_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM pg_notify('orgchat_directory', c.slug) FROM companies c WHERE c.id = NEW.company_id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER agents_notify_directory
    AFTER INSERT OR UPDATE OR DELETE ON agents
    FOR EACH ROW EXECUTE FUNCTION agents_notify_directory();

-- updated_at tracks every update, whoever makes it.
CREATE FUNCTION companies_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END $$;

CREATE TRIGGER companies_touch
    BEFORE UPDATE ON companies
    FOR EACH ROW EXECUTE FUNCTION companies_touch();
