-- 0016_conversation_rosters: agents see each customer by name, in their roster.
--
-- An agent chats with a customer through the conversation's address
-- (slug+token@domain). Standard clients name a contact from the roster only
-- (Profanity shows nothing else), so agents saw raw addresses. A
-- conversation now joins the rosters of its company's agents as a contact
-- named with the customer's label (their nickname, or "Customer K3X7"), in a
-- group named after the company, with subscription "to": the agent gets the
-- customer's presence from the conversation's address, and nobody gets the
-- agent's.
--
-- The same durable queue as the companies' items (0001, 0011): a job's
-- company_slug holds the contact's local part, here slug+token, and its
-- company_name is left empty: the worker names the contact when it runs
-- (component/roster_sync.py; the label is written once, in
-- component/addressing.py), so a job never carries a stale name.
--
-- Which conversations: an agent's roster is the company's inbox.
--   * a new conversation joins the rosters of the company's agents; a
--     customer's new nickname renames the contacts; a deleted conversation
--     (orgchat forget) leaves the rosters;
--   * a conversation resolved at the desk leaves them, and comes back when
--     it is reopened (the customer wrote again);
--   * an agent who joins a company gets its newest 200 conversations that
--     are not resolved; an agent who leaves it loses all of them.

CREATE FUNCTION roster_jobs_queue_conversations(op text, conv_ids bigint[])
RETURNS bigint LANGUAGE sql AS $$
    -- The contacts of these conversations in their company's agents' rosters;
    -- unresolved conversations only, for an add.
    SELECT roster_jobs_queue_many(op, array_agg(c.slug || '+' || v.token),
                                  array_agg(''::text), array_agg(a.jid))
      FROM conversations v
      JOIN companies c ON c.id = v.company_id
      JOIN agents a ON a.company_id = v.company_id
     WHERE v.id = ANY (conv_ids)
       AND (op = 'remove' OR NOT EXISTS (
               SELECT 1 FROM desk_conversations d
                WHERE d.conversation_id = v.id AND d.status = 'resolved'));
$$;

CREATE FUNCTION conversations_queue_agent_items() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        -- The row is gone: the contacts are built from OLD.
        PERFORM roster_jobs_queue_many('remove', array_agg(c.slug || '+' || OLD.token),
                                       array_agg(''::text), array_agg(a.jid))
           FROM companies c JOIN agents a ON a.company_id = c.id
          WHERE c.id = OLD.company_id;
    ELSE
        PERFORM roster_jobs_queue_conversations('add', ARRAY[NEW.id]);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER conversations_queue_agent_items
    AFTER INSERT OR DELETE ON conversations
    FOR EACH ROW EXECUTE FUNCTION conversations_queue_agent_items();
CREATE TRIGGER conversations_queue_agent_items_renamed
    AFTER UPDATE OF customer_nick ON conversations
    FOR EACH ROW WHEN (OLD.customer_nick IS DISTINCT FROM NEW.customer_nick)
    EXECUTE FUNCTION conversations_queue_agent_items();

CREATE FUNCTION desk_conversations_queue_agent_items() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM roster_jobs_queue_conversations(
        CASE NEW.status WHEN 'resolved' THEN 'remove' ELSE 'add' END, ARRAY[NEW.conversation_id]);
    RETURN NULL;
END $$;

CREATE TRIGGER desk_conversations_queue_agent_items_insert
    AFTER INSERT ON desk_conversations
    FOR EACH ROW WHEN (NEW.status = 'resolved')
    EXECUTE FUNCTION desk_conversations_queue_agent_items();
CREATE TRIGGER desk_conversations_queue_agent_items_update
    AFTER UPDATE OF status ON desk_conversations
    FOR EACH ROW WHEN (OLD.status <> NEW.status)
    EXECUTE FUNCTION desk_conversations_queue_agent_items();

-- Agents who join: per statement, as 0011's company items (a bulk import of
-- agents for new companies finds no conversations and queues nothing).
CREATE FUNCTION agents_queue_conversation_adds() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM roster_jobs_queue_many('add', array_agg(i.local), array_agg(''::text), array_agg(i.jid))
       FROM (SELECT c.slug || '+' || v.token AS local, a.jid
               FROM new_agents a
               JOIN companies c ON c.id = a.company_id
               CROSS JOIN LATERAL (
                   SELECT v.token FROM conversations v
                    WHERE v.company_id = a.company_id
                      AND NOT EXISTS (SELECT 1 FROM desk_conversations d
                                       WHERE d.conversation_id = v.id AND d.status = 'resolved')
                    ORDER BY v.id DESC
                    LIMIT 200) v) i;
    RETURN NULL;
END $$;

CREATE TRIGGER agents_queue_conversation_adds
    AFTER INSERT ON agents REFERENCING NEW TABLE AS new_agents
    FOR EACH STATEMENT EXECUTE FUNCTION agents_queue_conversation_adds();

-- Agents who leave (a company being deleted removes its agents first, 0001,
-- while its conversations still exist).
CREATE FUNCTION agents_queue_conversation_removes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM roster_jobs_queue_many('remove', array_agg(c.slug || '+' || v.token),
                                   array_agg(''::text), array_agg(OLD.jid))
       FROM conversations v JOIN companies c ON c.id = v.company_id
      WHERE v.company_id = OLD.company_id;
    RETURN NULL;
END $$;

CREATE TRIGGER agents_queue_conversation_removes
    AFTER DELETE ON agents
    FOR EACH ROW EXECUTE FUNCTION agents_queue_conversation_removes();
