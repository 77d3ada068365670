"""Everything orgchat's PostgreSQL holds about one customer, across tables (GDPR).

A customer is known by their bare JID in ``conversations.customer_jid``,
``requests.customer_jid``, ``contacts.address``, ``push_subscriptions.address``
and ``roster_jobs.agent_jid`` (the jobs that put companies into customers'
rosters). Deleting their conversations takes, by the foreign keys' cascades,
their messages, the request targets, the notification jobs and marks and
the agent desk's rows of those conversations; requests take their
remaining targets.

The SQL is :func:`storage.postgres.tables.conversations.forget_customer`: one
statement, so the counts it returns are what was deleted.

The same JID may also be an agent: :meth:`PgCustomerStore.forget` leaves
everything the person holds as an agent (agent rows, the roster jobs of
their companies, messages they wrote as an agent in other customers'
conversations).
"""

from __future__ import annotations

from storage.models import Forgotten
from storage.postgres.pool import Database
from storage.postgres.tables import conversations


class PgCustomerStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def forget(self, customer_jid: str) -> Forgotten:
        """See CustomerStore."""
        async with self._db.transaction() as conn:
            return await conversations.forget_customer(conn, customer_jid)
