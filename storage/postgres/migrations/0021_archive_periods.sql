-- 0021_archive_periods: XEP-0313 queries by period (start, end) on a large
-- archive (issue 12).
--
-- A period's page is ordered by id but selected by ts. Walking the scope's
-- id index (messages_conversation, messages_company) and filtering by time
-- reads every message of the scope before the period; the BRIN index on ts
-- (0005) gives the period's pages of the whole table, and the planner ANDs
-- that bitmap with a bitmap of the scope's index, which reads every entry
-- of the scope. On an archive of 1,000,000 messages a day of the middle of
-- a conversation of 100,000 took 20-50 ms, "since a day ago" 130 ms, a day
-- of a company's archive 90 ms, growing with the archive
-- (docs/performance.md, "The archive at 10 million messages").
--
-- (scope, ts) reads the period's rows and nothing else, and INCLUDE (id)
-- gives their ids without visiting the table: a period's page sorts the
-- ids of the period and reads its 50 messages
-- (storage/postgres/tables/message_pages.py). Each index costs a write on
-- every archived message (measured in docs/performance.md).
--
-- Building them reads the whole archive and blocks archiving meanwhile: on
-- a large existing archive, apply this migration in a quiet hour
-- (docs/operations.md).

CREATE INDEX messages_conversation_ts ON messages (conversation_id, ts) INCLUDE (id);
CREATE INDEX messages_company_ts ON messages (company_id, ts) INCLUDE (id);
