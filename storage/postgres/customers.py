"""Everything orgchat's PostgreSQL holds about one customer, across tables (GDPR).

A customer is known by their bare JID in ``conversations.customer_jid``,
``requests.customer_jid``, ``contacts.address``, ``push_subscriptions.address``
and ``roster_jobs.agent_jid`` (the jobs that put companies into customers'
rosters). Deleting their conversations takes, by the foreign keys' cascades,
their messages, the request targets, the notification jobs and marks and
the agent desk's rows of those conversations; requests take their
remaining targets.

The same JID may also be an agent: :func:`forget` leaves everything the
person holds as an agent (agent rows, the roster jobs of their companies,
messages they wrote as an agent in other customers' conversations).
"""

from __future__ import annotations

from storage.models import Forgotten
from storage.postgres.pool import Conn, Database

# One statement, so one snapshot: the counts are what was deleted. The
# messages are counted before the conversations' cascade deletes them.
_FORGET = """
    WITH counted AS (
        SELECT count(*) AS n FROM messages m
          JOIN conversations c ON c.id = m.conversation_id
         WHERE c.customer_jid = $1
    ), jobs AS (
        SELECT count(*) AS n FROM notify_jobs j
          JOIN conversations c ON c.id = j.conversation_id
         WHERE c.customer_jid = $1
    ), conversations_gone AS (
        DELETE FROM conversations WHERE customer_jid = $1 RETURNING id
    ), requests_gone AS (
        DELETE FROM requests WHERE customer_jid = $1 RETURNING id
    ), contacts_gone AS (
        DELETE FROM contacts WHERE address = $1 RETURNING address
    ), push_gone AS (
        DELETE FROM push_subscriptions WHERE address = $1 RETURNING id
    ), roster_gone AS (
        DELETE FROM roster_jobs r
         WHERE r.agent_jid = $1
           AND NOT EXISTS (SELECT 1 FROM agents a JOIN companies co ON co.id = a.company_id
                            WHERE a.jid = r.agent_jid AND co.slug = r.company_slug)
        RETURNING r.id
    )
    SELECT (SELECT count(*) FROM conversations_gone) AS conversations,
           (SELECT n FROM counted) AS messages,
           (SELECT count(*) FROM requests_gone) AS requests,
           (SELECT n FROM jobs) AS notify_jobs,
           (SELECT count(*) FROM contacts_gone) AS contacts,
           (SELECT count(*) FROM push_gone) AS push_subscriptions,
           (SELECT count(*) FROM roster_gone) AS roster_jobs
"""


async def forget(conn: Conn, customer_jid: str) -> Forgotten:
    row = await conn.fetchrow(_FORGET, customer_jid)
    assert row is not None
    return Forgotten(**{key: int(value) for key, value in row.items()})


class PgCustomerStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def forget(self, customer_jid: str) -> Forgotten:
        """See CustomerStore."""
        async with self._db.transaction() as conn:
            return await forget(conn, customer_jid)
