-- 0006_archive_search: archive access (issue 6): a company's whole archive,
-- full-text search, and retention per company.
--
-- messages.company_id: the company of the message's conversation, copied
-- into the row by the INSERT that archives it (conversations never change
-- company, so the copy cannot go stale). An agent reads the history of every
-- conversation of the company from the company's address, in archive order;
-- `messages_company (company_id, id)` serves those pages the way
-- `messages_conversation` serves one conversation's: a page of 50 reads 51
-- index entries however large the company's archive is, where a join through
-- `conversations` would have to collect and sort every message of the
-- company first. The same index finds the retention sweep's boundary (see
-- storage/postgres/messages.py). No foreign key of its own: the
-- conversation's already ties the row to its company (and deletes it with
-- the company), another would only add a check to every insert.
--
-- messages_body_search: XEP-0431 full-text search over bodies, a GIN index
-- of to_tsvector('simple', body). 'simple' lower-cases words and does
-- nothing else: no stemming, no stop words, no language. A conversation
-- mixes languages (a customer writes in Russian, the agent answers in
-- English; the directory serves every city), and a language's configuration
-- applied to another language stems words wrongly and drops words it takes
-- for stop words ('a', 'in', 'die' are words elsewhere). Queries match each
-- word as a prefix ('deliver' finds 'delivery'), which gives back most of
-- what stemming would, in every language alike.
--
-- companies.retention_days: messages older than this many days are deleted
-- by the retention sweep (every component process, in small batches);
-- NULL keeps them forever. companies_notify_directory fires on every UPDATE
-- already, so a changed retention reaches the component caches.
--
-- Building the two indexes and filling company_id rewrites and scans the
-- archive inside this migration's transaction, which blocks archiving
-- meanwhile: on a large existing archive, apply it in a quiet hour
-- (docs/operations.md).

ALTER TABLE companies ADD COLUMN retention_days integer
    CONSTRAINT companies_retention_days_positive
    CHECK (retention_days IS NULL OR retention_days > 0);

ALTER TABLE messages ADD COLUMN company_id bigint;
UPDATE messages m SET company_id = c.company_id
  FROM conversations c WHERE c.id = m.conversation_id;
ALTER TABLE messages ALTER COLUMN company_id SET NOT NULL;

CREATE INDEX messages_company ON messages (company_id, id);
CREATE INDEX messages_body_search ON messages USING gin (to_tsvector('simple', body));

-- A deleted conversation (a customer forgotten, a company removed) must
-- leave the component processes' conversation caches, or the customer's
-- next message would be archived under a conversation that no longer
-- exists. NOTIFY orgchat_conversations, payload the customer's bare JID (at
-- most 3071 bytes, under the 8000-byte payload limit); the notifications of
-- one transaction about one customer fold into one.
CREATE FUNCTION conversations_notify_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('orgchat_conversations', OLD.customer_jid);
    RETURN NULL;
END $$;

CREATE TRIGGER conversations_notify_deleted
    AFTER DELETE ON conversations
    FOR EACH ROW EXECUTE FUNCTION conversations_notify_deleted();
