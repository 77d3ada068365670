"""PostgreSQL storage: the directory, roster jobs, conversations, the archive,
requests to several companies, the notification cascade (its jobs and
marks, contacts and push subscriptions), the agent desk and the leases of
periodic jobs.

    stores = await connect(dsn, min_size=2, max_size=10, command_timeout=10.0)
    company = await stores.directory.get_company("pizza-napoli")
    ...
    await stores.close()

:func:`migrate` brings the schema up to date (start-up and CLI). :mod:`.pool`
maps driver failures to :class:`storage.errors.Unavailable`; :mod:`.listen`
keeps the LISTEN connections of the ``watch`` methods alive.

The layout: two kinds of modules.

* A **table module** per table, ``tables/<table>.py``: the table's explicit
  column list, ``from_row`` and module-level async functions that take a
  connection (``Conn``) and run ``$n``-parametrised SQL, no ORM. They open
  no transaction and acquire no connection. A statement that spans tables
  lives with the table it writes (or, read-only, the one whose rows it
  returns); ``messages`` keeps its XEP-0313 reads in ``message_pages.py``.
* A **store module** per interface of :mod:`storage.protocols`, here:
  ``directory.py`` (DirectoryStore), ``roster_jobs.py``,
  ``conversations.py``, ``archive.py``, ``requests.py``, ``notify.py``,
  ``contacts.py``, ``customers.py``, ``response_times.py``, ``desk.py``,
  ``leases.py``.
  Its ``Pg...Store`` class borrows connections, owns the transactions,
  maps "no row" to NotFound and composes table modules; it holds no SQL.

Adding a table: one table module ``tables/<table>.py``, one migration
``migrations/NNNN_<name>.sql`` (never edit an applied one), the store
methods that use it (and the interface in :mod:`storage.protocols`), and
tests: the store's integration tests in ``tests/integration/storage/`` and,
if unit tests fake the store, its contract suite in ``tests/contracts/``,
which runs the same tests against this store and the fake.

``company_domain`` (the component's domain) tells the contacts store which
addresses are companies' JIDs (``slug@domain``), whose email falls back to the
directory's; see :mod:`.contacts`.
"""

from __future__ import annotations

import asyncio

import asyncpg

from storage.postgres import migrations
from storage.postgres.archive import PgArchiveStore
from storage.postgres.contacts import PgContactStore
from storage.postgres.conversations import PgConversationStore
from storage.postgres.customers import PgCustomerStore
from storage.postgres.desk import PgDeskStore
from storage.postgres.directory import PgDirectoryStore
from storage.postgres.leases import PgLeaseStore
from storage.postgres.notify import PgNotifyStore
from storage.postgres.pool import Database, unavailable_on_driver_errors
from storage.postgres.requests import PgRequestStore
from storage.postgres.response_times import PgResponseTimeStore
from storage.postgres.roster_jobs import PgRosterJobStore
from storage.postgres.search import SETTINGS as SEARCH_SETTINGS
from storage.postgres.search import PgDirectorySearchStore
from storage.protocols import (
    ArchiveStore,
    ContactStore,
    ConversationStore,
    CustomerStore,
    DeskStore,
    DirectorySearchStore,
    DirectoryStore,
    LeaseStore,
    NotifyStore,
    RequestStore,
    ResponseTimeStore,
    RosterJobStore,
)

__all__ = ["PostgresStores", "connect", "migrate", "schema_version"]

#: Bounds connecting for migrate() and schema_version(), which run at start-up.
_CONNECT_TIMEOUT = 10.0


class PostgresStores:
    """The PostgreSQL stores, sharing one pool."""

    def __init__(
        self, db: Database, *, searches: Database, company_domain: str | None = None
    ) -> None:
        self._db = db
        self._searches = searches
        self.directory: DirectoryStore = PgDirectoryStore(db)
        self.search: DirectorySearchStore = PgDirectorySearchStore(searches)
        self.roster_jobs: RosterJobStore = PgRosterJobStore(db)
        self.conversations: ConversationStore = PgConversationStore(db)
        self.archive: ArchiveStore = PgArchiveStore(db)
        self.requests: RequestStore = PgRequestStore(db)
        self.notify: NotifyStore = PgNotifyStore(db)
        self.contacts: ContactStore = PgContactStore(db, company_domain)
        self.customers: CustomerStore = PgCustomerStore(db)
        self.response_times: ResponseTimeStore = PgResponseTimeStore(db)
        self.desk: DeskStore = PgDeskStore(db)
        self.leases: LeaseStore = PgLeaseStore(db)

    async def close(self) -> None:
        """Close the pools; the caller cancels its running ``watch`` tasks."""
        await asyncio.gather(self._db.close(), self._searches.close())


async def connect(
    dsn: str,
    *,
    min_size: int,
    max_size: int,
    command_timeout: float,
    search_connections: int | None = None,
    company_domain: str | None = None,
) -> PostgresStores:
    """Open the stores. Does not fail if PostgreSQL is down: calls raise
    Unavailable until it is back. Configuration errors (bad password, unknown
    database) are raised here. ``search_connections``: how many connections
    of their own directory searches hold at most (by default half of
    ``max_size``), beside the pool of ``max_size``.
    ``company_domain``: the component's domain (see the module's docstring);
    the component passes it.
    """
    db = Database(dsn, min_size=min_size, max_size=max_size, command_timeout=command_timeout)
    await db.open()
    budget = max(1, max_size // 2) if search_connections is None else search_connections
    searches = Database(
        dsn, min_size=1, max_size=budget, command_timeout=command_timeout, settings=SEARCH_SETTINGS
    )
    await searches.open()
    return PostgresStores(db, searches=searches, company_domain=company_domain)


async def migrate(dsn: str) -> list[str]:
    """Apply pending migrations; return their names ("0001_initial", ...).

    Safe to run from several processes at once. Raises Unavailable if
    PostgreSQL cannot be reached.
    """
    with unavailable_on_driver_errors():
        conn = await asyncpg.connect(dsn, timeout=_CONNECT_TIMEOUT)
        try:
            return await migrations.apply_pending(conn)
        finally:
            await conn.close()


async def schema_version(dsn: str) -> int:
    """The highest applied migration number (0 for an empty database)."""
    with unavailable_on_driver_errors():
        conn = await asyncpg.connect(dsn, timeout=_CONNECT_TIMEOUT)
        try:
            return await migrations.current_version(conn)
        finally:
            await conn.close()
