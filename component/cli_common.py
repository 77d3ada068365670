"""What every module of the ``orgchat`` command shares (cli, desk_cli, archive_admin).

A verb parses its arguments first (a bad one is a one-line error, exit 2,
nothing touched) and returns a :data:`Handler`, which the command runs with
the PostgreSQL stores.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from storage import postgres
from storage.errors import NotFound
from storage.models import Company

#: Runs a parsed verb against PostgreSQL; returns the exit status.
Handler = Callable[[postgres.PostgresStores], Awaitable[int]]


async def known_company(pg: postgres.PostgresStores, slug: str) -> Company:
    """The company, or NotFound with a one-line message."""
    company = await pg.directory.get_company(slug)
    if company is None:
        raise NotFound(f"unknown company {slug!r}")
    return company
