-- 0005_customer_rosters: customers get the company into their roster too.
--
-- The notification cascade must know whether a customer is online ("online:
-- the live message is enough"). ejabberd tells a component about a user's
-- presence, drops included, only when the component's JID is in the user's
-- roster with a subscription. So the first message of a conversation queues
-- a roster job (the same durable queue as the agents', whose agent_jid
-- column now holds any user's JID), which puts the company into the
-- customer's roster with a mutual subscription. The component only runs
-- jobs for users of its own ejabberd virtual host (ejabberd.vhost).
--
-- A renamed company renames its items; a deleted company leaves its
-- customers' rosters (queued before the cascade deletes the conversations).

CREATE FUNCTION conversations_queue_roster_job() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM roster_jobs_queue('add', c.slug, c.name, NEW.customer_jid)
       FROM companies c WHERE c.id = NEW.company_id;
    RETURN NULL;
END $$;

CREATE TRIGGER conversations_queue_roster_job
    AFTER INSERT ON conversations
    FOR EACH ROW EXECUTE FUNCTION conversations_queue_roster_job();

CREATE OR REPLACE FUNCTION companies_queue_roster_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.slug <> OLD.slug THEN
        PERFORM roster_jobs_queue('remove', OLD.slug, OLD.name, u.jid)
           FROM (SELECT a.jid FROM agents a WHERE a.company_id = OLD.id
                 UNION SELECT v.customer_jid FROM conversations v WHERE v.company_id = OLD.id) u;
    END IF;
    PERFORM roster_jobs_queue('add', NEW.slug, NEW.name, u.jid)
       FROM (SELECT a.jid FROM agents a WHERE a.company_id = NEW.id
             UNION SELECT v.customer_jid FROM conversations v WHERE v.company_id = NEW.id) u;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION companies_delete_agents_first() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM agents WHERE company_id = OLD.id;
    PERFORM roster_jobs_queue('remove', OLD.slug, OLD.name, v.customer_jid)
       FROM conversations v WHERE v.company_id = OLD.id;
    RETURN OLD;
END $$;

-- "Customers active lately" (probed when the component reconnects): a BRIN
-- index on the archive's time is tiny and serves retention sweeps as well.
CREATE INDEX messages_ts_brin ON messages USING brin (ts);
