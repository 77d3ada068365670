-- 0019_inbox_resync: `orgchat roster sync` puts conversations back too.
--
-- 0016 gives an agent who joins a company its newest 200 unresolved
-- conversations as contacts. The same rule, as a function of (company, agent)
-- pairs, now serves both that trigger and the resynchronisation of rosters
-- (storage/postgres/tables/roster_jobs.py, queue_adds), so that an ejabberd
-- restored from an old backup gets its agents' inboxes back as well.

CREATE FUNCTION roster_jobs_queue_inbox(company_ids bigint[], jids text[])
RETURNS bigint LANGUAGE sql AS $$
    SELECT roster_jobs_queue_many('add', array_agg(i.local), array_agg(''::text), array_agg(i.jid))
      FROM (SELECT c.slug || '+' || v.token AS local, a.jid
              FROM unnest(company_ids, jids) AS a(company_id, jid)
              JOIN companies c ON c.id = a.company_id
              CROSS JOIN LATERAL (
                  SELECT v.token FROM conversations v
                   WHERE v.company_id = a.company_id
                     AND NOT EXISTS (SELECT 1 FROM desk_conversations d
                                      WHERE d.conversation_id = v.id AND d.status = 'resolved')
                   ORDER BY v.id DESC
                   LIMIT 200) v) i;
$$;

CREATE OR REPLACE FUNCTION agents_queue_conversation_adds() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM roster_jobs_queue_inbox(array_agg(a.company_id), array_agg(a.jid)) FROM new_agents a;
    RETURN NULL;
END $$;
