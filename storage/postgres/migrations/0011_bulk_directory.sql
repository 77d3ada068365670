-- 0011_bulk_directory: what a bulk import needs of the triggers: one directory
-- notification per statement, not per row, and roster jobs queued many at a
-- time.
--
-- The row-level triggers of 0001 sent NOTIFY orgchat_directory once per
-- changed company: an import of 100,000 companies made every running
-- component reload 100,000 times, one company at a time. These
-- statement-level triggers read the statement's rows (transition tables)
-- and send the slug when it changed one company (the old slug too, if it
-- was re-slugged), and '*' ("reload everything") when it changed several.
-- PostgreSQL folds identical notifications of one transaction, so a bulk
-- import is one '*' however many companies it holds, and a statement that
-- changed nothing notifies nobody.
--
-- A trigger with transition tables takes one event, hence three per table,
-- sharing their table's function.

DROP TRIGGER companies_notify_directory ON companies;
DROP TRIGGER agents_notify_directory ON agents;
DROP FUNCTION companies_notify_directory();
DROP FUNCTION agents_notify_directory();

-- Two rows tell one company from several (the slug is unique).
CREATE FUNCTION companies_notify_directory() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed text[];
BEGIN
    IF TG_OP = 'DELETE' THEN
        changed := ARRAY(SELECT slug FROM old_companies LIMIT 2);
    ELSE
        changed := ARRAY(SELECT slug FROM new_companies LIMIT 2);
    END IF;
    IF cardinality(changed) > 1 THEN
        PERFORM pg_notify('orgchat_directory', '*');
    ELSIF cardinality(changed) = 1 THEN
        PERFORM pg_notify('orgchat_directory', changed[1]);
        IF TG_OP = 'UPDATE' THEN  -- a new slug is a new address: the old one is gone
            PERFORM pg_notify('orgchat_directory', slug) FROM old_companies;
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER companies_notify_directory_insert
    AFTER INSERT ON companies REFERENCING NEW TABLE AS new_companies
    FOR EACH STATEMENT EXECUTE FUNCTION companies_notify_directory();
CREATE TRIGGER companies_notify_directory_update
    AFTER UPDATE ON companies REFERENCING OLD TABLE AS old_companies NEW TABLE AS new_companies
    FOR EACH STATEMENT EXECUTE FUNCTION companies_notify_directory();
CREATE TRIGGER companies_notify_directory_delete
    AFTER DELETE ON companies REFERENCING OLD TABLE AS old_companies
    FOR EACH STATEMENT EXECUTE FUNCTION companies_notify_directory();

-- One company's agents are many rows: the lowest and highest company id
-- tell one company from several in one pass. Agents deleted by a trigger
-- are those of a company being deleted (companies_delete_agents_first,
-- 0001): the company's own notification covers them, once for a statement
-- deleting many companies.
CREATE FUNCTION agents_notify_directory() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    lowest bigint;
    highest bigint;
BEGIN
    IF TG_OP = 'DELETE' AND pg_trigger_depth() > 1 THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        SELECT min(company_id), max(company_id) INTO lowest, highest FROM new_agents;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT min(company_id), max(company_id) INTO lowest, highest FROM old_agents;
    ELSE  -- an agent moved to another company changes both
        SELECT min(company_id), max(company_id) INTO lowest, highest
          FROM (SELECT company_id FROM old_agents
                UNION ALL SELECT company_id FROM new_agents) moved;
    END IF;
    IF lowest IS NULL THEN
        RETURN NULL;
    ELSIF lowest <> highest THEN
        PERFORM pg_notify('orgchat_directory', '*');
    ELSE
        PERFORM pg_notify('orgchat_directory', slug) FROM companies WHERE id = lowest;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER agents_notify_directory_insert
    AFTER INSERT ON agents REFERENCING NEW TABLE AS new_agents
    FOR EACH STATEMENT EXECUTE FUNCTION agents_notify_directory();
CREATE TRIGGER agents_notify_directory_update
    AFTER UPDATE ON agents REFERENCING OLD TABLE AS old_agents NEW TABLE AS new_agents
    FOR EACH STATEMENT EXECUTE FUNCTION agents_notify_directory();
CREATE TRIGGER agents_notify_directory_delete
    AFTER DELETE ON agents REFERENCING OLD TABLE AS old_agents
    FOR EACH STATEMENT EXECUTE FUNCTION agents_notify_directory();


-- Roster jobs, many at a time ------------------------------------------------
-- roster_jobs_queue (0001) queues one job per call, and the agents' trigger
-- called it once per row: an import of 500,000 agents made 500,000 calls,
-- and its resynchronisation as many again. roster_jobs_queue_many queues a
-- set of distinct roster items at once, with the same rule: only the latest
-- intent per item matters, so older jobs for them that no worker holds are
-- dropped. roster_jobs_queue is now the one-item case of it; the agents'
-- inserts queue theirs per statement.

CREATE FUNCTION roster_jobs_queue_many(op text, slugs text[], names text[], jids text[])
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    queued bigint;
BEGIN
    IF coalesce(cardinality(slugs), 0) = 0 THEN
        RETURN 0;  -- no INSERT, so no wake-up of the roster workers
    END IF;
    DELETE FROM roster_jobs j
     USING unnest(slugs, jids) AS i(slug, jid)
     WHERE j.company_slug = i.slug AND j.agent_jid = i.jid AND j.leased_until IS NULL;
    INSERT INTO roster_jobs (op, company_slug, company_name, agent_jid)
    SELECT op, i.slug, i.name, i.jid FROM unnest(slugs, names, jids) AS i(slug, name, jid);
    GET DIAGNOSTICS queued = ROW_COUNT;
    RETURN queued;
END $$;

CREATE OR REPLACE FUNCTION roster_jobs_queue(op text, slug text, name text, jid text)
RETURNS void LANGUAGE sql AS $$
    SELECT roster_jobs_queue_many(op, ARRAY[slug], ARRAY[name], ARRAY[jid]);
$$;

CREATE OR REPLACE FUNCTION agents_queue_roster_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR (OLD.company_id, OLD.jid) IS DISTINCT FROM (NEW.company_id, NEW.jid) THEN
        PERFORM roster_jobs_queue('remove', c.slug, c.name, OLD.jid)
           FROM companies c WHERE c.id = OLD.company_id;
    END IF;
    IF TG_OP = 'UPDATE' AND (OLD.company_id, OLD.jid) IS DISTINCT FROM (NEW.company_id, NEW.jid) THEN
        PERFORM roster_jobs_queue('add', c.slug, c.name, NEW.jid)
           FROM companies c WHERE c.id = NEW.company_id;
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER agents_queue_roster_jobs ON agents;
CREATE TRIGGER agents_queue_roster_jobs
    AFTER UPDATE OR DELETE ON agents
    FOR EACH ROW EXECUTE FUNCTION agents_queue_roster_jobs();

CREATE FUNCTION agents_queue_roster_adds() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM roster_jobs_queue_many('add', array_agg(c.slug), array_agg(c.name), array_agg(a.jid))
       FROM new_agents a JOIN companies c ON c.id = a.company_id;
    RETURN NULL;
END $$;

CREATE TRIGGER agents_queue_roster_adds
    AFTER INSERT ON agents REFERENCING NEW TABLE AS new_agents
    FOR EACH STATEMENT EXECUTE FUNCTION agents_queue_roster_adds();
