"""The ``company_imports`` table: an import's companies on their way in.

A temporary table, created in the import's transaction and dropped at its
end. The companies are copied into it with COPY as they are read, then
merged into ``companies`` and ``agents`` (:func:`.companies.merge_imported`,
:func:`.agents.merge_imported`) by a few set-based statements.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from storage.models import ImportedCompany
from storage.postgres.pool import Conn

TABLE = "company_imports"
#: Bound of each statement of an import, instead of the command timeout: a
#: million companies take about a minute (docs/performance.md).
BULK_TIMEOUT = 3600.0

_COLUMNS = (
    "ord",
    "slug",
    "name",
    "email",
    "timezone",
    "hours",
    "category",
    "city",
    "accepts_requests",
    "phone",
    "url",
    "address",
    "agent_jids",
    "agent_roles",
)

#: One row as COPY sends it, in the order of _COLUMNS.
_Record = tuple[
    int, str, str, str | None, str, str | None, str | None, str | None, bool,
    str | None, str | None, str | None, list[str], list[str],
]  # fmt: skip


async def create(conn: Conn) -> None:
    """Create the empty table, dropped when the transaction ends."""
    await conn.execute(
        f"""
        CREATE TEMPORARY TABLE {TABLE} (
            ord               bigint NOT NULL,  -- the place in the import: a later slug wins
            slug              text NOT NULL,
            name              text NOT NULL,
            email             text,
            timezone          text NOT NULL,
            hours             text,
            category          text,
            city              text,
            accepts_requests  boolean NOT NULL,
            phone             text,
            url               text,
            address           text,
            agent_jids        text[] NOT NULL,
            agent_roles       text[] NOT NULL  -- agent_jids[n]'s role
        ) ON COMMIT DROP
        """
    )


async def copy(conn: Conn, items: Iterable[ImportedCompany]) -> int:
    """Copy the companies in as ``items`` yields them; return how many there were.

    An exception raised by ``items`` aborts the COPY and propagates.
    """
    status = await conn.copy_records_to_table(
        TABLE, records=_records(items), columns=_COLUMNS, timeout=BULK_TIMEOUT
    )
    return int(status.rpartition(" ")[2])  # "COPY <count>"


def _records(items: Iterable[ImportedCompany]) -> Iterator[_Record]:
    for n, item in enumerate(items):
        c = item.company
        yield (
            n,
            c.slug,
            c.name,
            c.email,
            c.timezone,
            c.hours,
            c.category,
            c.city,
            c.accepts_requests,
            c.phone,
            c.url,
            c.address,
            [jid for jid, _ in item.agents],
            [role.value for _, role in item.agents],
        )
