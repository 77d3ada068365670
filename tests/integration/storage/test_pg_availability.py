"""PostgreSQL outages: Unavailable while down, recovery without a restart.

"Down" is either a closed port or a TCP proxy in front of the real server
that resets every connection and refuses new ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import asyncpg
import pytest

from storage import postgres
from storage.errors import Unavailable
from storage.models import (
    ArchiveQuery,
    Channel,
    CompanyDraft,
    NewMessage,
    NewRequest,
    NotifyJob,
    Party,
    RequestState,
    Role,
    TargetStatus,
    TargetUpdate,
)

if TYPE_CHECKING:
    from tests.conftest import TcpProxy

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

Sql = asyncpg.Connection  # the plain connection of the `sql` fixture

CLOSED_PORT_DSN = "postgresql://orgchat:orgchat-dev@127.0.0.1:1/orgchat"


def every_call(stores: postgres.PostgresStores) -> list[Callable[[], Awaitable[object]]]:
    """One call of each store method that talks to PostgreSQL."""
    message = NewMessage(
        conversation_id=1,
        author=Party.CUSTOMER,
        sender_jid="c@localhost",
        body="hi",
        stanza_id="s",
        client_id=None,
        client_key=None,
        pending=False,
        ts=dt.datetime.now(dt.UTC),
    )
    request = NewRequest(
        public_id="raaaaaaaaaaaaaaaaaaaa",
        customer_jid="c@localhost",
        customer_nick=None,
        subject="s",
        body="b",
        form=None,
        dedup_key="k",
        created_at=dt.datetime.now(dt.UTC),
        expires_at=dt.datetime.now(dt.UTC),
        company_ids=(1,),
        stanza_ids=("s",),
        message_body="b",
        message_payload="<request/>",
    )
    job = NotifyJob(
        id=1,
        conversation_id=1,
        party=Party.COMPANY,
        channel=Channel.EMAIL,
        due_at=dt.datetime.now(dt.UTC),
        attempts=0,
    )
    return [
        lambda: stores.directory.add_company(CompanyDraft(slug="x", name="X")),
        lambda: stores.directory.remove_company("x"),
        lambda: stores.directory.get_company("x"),
        stores.directory.list_companies,
        lambda: stores.directory.add_agent("x", "a@localhost", Role.AGENT),
        lambda: stores.directory.remove_agent("x", "a@localhost"),
        lambda: stores.directory.list_agents("x"),
        lambda: stores.directory.import_companies([]),
        stores.directory.snapshot,
        lambda: stores.roster_jobs.claim(10),
        lambda: stores.roster_jobs.done(1),
        lambda: stores.roster_jobs.retry_later(1, 1.0, "e"),
        lambda: stores.conversations.open_many([(1, "c@localhost", None)]),
        lambda: stores.conversations.find(1, "c@localhost"),
        lambda: stores.conversations.of_company(1, "aaaaaaaaaa"),
        lambda: stores.conversations.by_ids([1]),
        lambda: stores.archive.append_batch([message]),
        lambda: stores.archive.claim_pending([1], 10),
        lambda: stores.archive.requeue(["s"]),
        lambda: stores.archive.claim_unconfirmed(10, 10),
        lambda: stores.archive.confirm([1]),
        lambda: stores.archive.page(ArchiveQuery(company_id=1, conversation_id=1, limit=10)),
        lambda: stores.requests.create(request, 60.0),
        lambda: stores.requests.get("r"),
        lambda: stores.requests.list_for(
            "c@localhost", state=RequestState.OPEN, after=None, before=None, limit=10
        ),
        lambda: stores.requests.open_in([1]),
        lambda: stores.requests.advance([TargetUpdate(1, TargetStatus.SEEN)]),
        lambda: stores.requests.close("r", "c@localhost", None, []),
        lambda: stores.requests.expire_due(dt.datetime.now(dt.UTC), 10),
        lambda: stores.notify.schedule(
            [(1, Party.COMPANY, Channel.EMAIL, dt.datetime.now(dt.UTC))], 60.0
        ),
        lambda: stores.notify.claim(dt.datetime.now(dt.UTC), 10, 60.0),
        lambda: stores.notify.unseen(job),
        lambda: stores.notify.sent(1, 1),
        lambda: stores.notify.cancel(1, "r"),
        lambda: stores.notify.retry(1, 1.0, "e"),
        lambda: stores.notify.fail(1, "e"),
        lambda: stores.notify.postpone(1, dt.datetime.now(dt.UTC)),
        lambda: stores.notify.mark_seen([(1, Party.CUSTOMER)]),
        lambda: stores.contacts.get("c@localhost"),
        lambda: stores.contacts.request_email("c@localhost", "c@example.org", "h"),
        lambda: stores.contacts.confirm_email("c@localhost", "h"),
        lambda: stores.contacts.set_opt_out("c@localhost", Channel.PUSH, True),
        lambda: stores.contacts.set_quiet_hours("c@localhost", "22:00-07:00", "UTC"),
        lambda: stores.contacts.add_push("c@localhost", "https://push.example.org/x", "k", "a"),
        lambda: stores.contacts.push_subscriptions("c@localhost"),
        lambda: stores.contacts.remove_push(1),
    ]


async def test_closed_port_connects_then_every_call_is_unavailable() -> None:
    stores = await postgres.connect(CLOSED_PORT_DSN, min_size=2, max_size=4, command_timeout=2.0)
    try:
        for call in every_call(stores):
            with pytest.raises(Unavailable):
                await call()
    finally:
        await stores.close()


async def test_migrate_and_schema_version_raise_unavailable() -> None:
    with pytest.raises(Unavailable):
        await postgres.migrate(CLOSED_PORT_DSN)
    with pytest.raises(Unavailable):
        await postgres.schema_version(CLOSED_PORT_DSN)


async def test_watch_keeps_retrying_while_down() -> None:
    stores = await postgres.connect(CLOSED_PORT_DSN, min_size=1, max_size=1, command_timeout=2.0)
    calls: list[str | None] = []

    async def listener(changed: str | None) -> None:
        calls.append(changed)

    task = asyncio.create_task(stores.directory.watch(listener))
    await asyncio.sleep(1.2)  # a few reconnection attempts
    assert not task.done()
    assert calls == []
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await stores.close()


async def test_start_while_down_then_recover_then_fail_then_recover(
    pg_proxy: TcpProxy, pg_proxy_dsn: str
) -> None:
    await pg_proxy.stop()
    stores = await postgres.connect(pg_proxy_dsn, min_size=2, max_size=4, command_timeout=5.0)
    try:
        with pytest.raises(Unavailable):
            await stores.directory.list_companies()

        await pg_proxy.start()
        await stores.directory.list_companies()  # the pool opens now
        await stores.archive.page(ArchiveQuery(company_id=1, conversation_id=1, limit=10))

        await pg_proxy.stop()  # every pooled connection is reset
        for call in every_call(stores)[:4]:
            with pytest.raises(Unavailable):
                await call()

        await pg_proxy.start()
        for call in (stores.directory.list_companies, stores.directory.snapshot):
            await call()  # same process, same stores: back by itself
    finally:
        await stores.close()


async def test_server_side_disconnects_are_survived(pg_dsn: str, sql: Sql) -> None:
    """A PostgreSQL restart terminates every backend (57P01 admin shutdown)."""
    stores = await postgres.connect(pg_dsn, min_size=3, max_size=3, command_timeout=5.0)
    try:
        await asyncio.gather(*(stores.directory.list_companies() for _ in range(3)))
        killed = await sql.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'orgchat' AND datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
        assert killed >= 3
        await asyncio.sleep(0.2)

        results = await asyncio.gather(*(stores.directory.list_companies() for _ in range(3)))
        assert all(isinstance(r, list) for r in results)
    finally:
        await stores.close()


async def test_a_query_that_times_out_is_unavailable(pg_dsn: str, sql: Sql) -> None:
    stores = await postgres.connect(pg_dsn, min_size=1, max_size=2, command_timeout=0.5)
    try:
        await stores.directory.list_companies()
        async with sql.transaction():
            await sql.execute("LOCK TABLE companies IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(Unavailable):
                await stores.directory.list_companies()
        await stores.directory.list_companies()
    finally:
        await stores.close()


async def test_closed_stores_are_unavailable(pg_dsn: str) -> None:
    stores = await postgres.connect(pg_dsn, min_size=1, max_size=1, command_timeout=5.0)
    await stores.close()
    with pytest.raises(Unavailable):
        await stores.directory.list_companies()
