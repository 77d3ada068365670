-- 0015_request_rosters: a company asked through a request joins the
-- customer's roster when it answers, not when it is asked.
--
-- 0005 puts the company into the customer's roster with the first message
-- of their conversation, so that the notification cascade learns the
-- customer's presence. A request to ten tyre shops opens ten conversations
-- at once, and every shop asked became a contact, most of which never
-- answer. A conversation opened by a request is now marked (by_request) and
-- queues no roster job; the company joins the roster when its target first
-- moves to 'answered', which is also when the cascade first needs the
-- customer's presence for it. A conversation the customer opened by writing
-- to the company keeps 0005's behaviour.

ALTER TABLE conversations ADD COLUMN by_request boolean NOT NULL DEFAULT false;

CREATE OR REPLACE FUNCTION conversations_queue_roster_job() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.by_request THEN
        RETURN NULL;
    END IF;
    PERFORM roster_jobs_queue('add', c.slug, c.name, NEW.customer_jid)
       FROM companies c WHERE c.id = NEW.company_id;
    RETURN NULL;
END $$;

CREATE FUNCTION request_targets_queue_roster_job() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM roster_jobs_queue('add', c.slug, c.name, v.customer_jid)
       FROM conversations v JOIN companies c ON c.id = v.company_id
      WHERE v.id = NEW.conversation_id;
    RETURN NULL;
END $$;

CREATE TRIGGER request_targets_queue_roster_job
    AFTER UPDATE OF status ON request_targets
    FOR EACH ROW WHEN (NEW.status = 'answered' AND OLD.status <> 'answered')
    EXECUTE FUNCTION request_targets_queue_roster_job();

-- A renamed company renames the items of the customers who have it: those
-- who wrote to it, and those it answered through a request.
CREATE OR REPLACE FUNCTION companies_queue_roster_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.slug <> OLD.slug THEN
        PERFORM roster_jobs_queue('remove', OLD.slug, OLD.name, u.jid)
           FROM (SELECT a.jid FROM agents a WHERE a.company_id = OLD.id
                 UNION SELECT v.customer_jid FROM conversations v WHERE v.company_id = OLD.id) u;
    END IF;
    PERFORM roster_jobs_queue('add', NEW.slug, NEW.name, u.jid)
       FROM (SELECT a.jid FROM agents a WHERE a.company_id = NEW.id
             UNION SELECT v.customer_jid FROM conversations v
                    WHERE v.company_id = NEW.id
                      AND (NOT v.by_request
                           OR EXISTS (SELECT 1 FROM request_targets t
                                       WHERE t.conversation_id = v.id
                                         AND t.status = 'answered'))) u;
    RETURN NULL;
END $$;
