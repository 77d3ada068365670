"""Resilience with real clients: the component restarted, killed and scaled out, and
PostgreSQL, Redis or ejabberd's listener taken away underneath it.

ejabberd spreads a domain's stanzas over every component connected for it, so
these tests run their own ``orgchat run`` processes only while the session
component is off the test domain (the module fixture ``exclusive`` stops it
and starts it again afterwards). Outages are played by a loopback TCP proxy
(:mod:`tests.integration.proxy`) between a component and PostgreSQL, Redis or
ejabberd's component listener; the servers themselves are never touched.

Every test checks what real clients receive, the rows in PostgreSQL and the
keys in Redis. Waits are bounded and wait for a behaviour, never a duration.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

import asyncpg
import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from tests.integration.clients import (
    Inbox,
    chat,
    child,
    error_type,
    is_message,
    local,
    new_id,
    text_of,
)
from tests.integration.conftest import (
    DOMAIN,
    REDIS_PREFIX,
    REDIS_URL,
    RUN,
    TEST_DB_URL,
    ComponentProcess,
    orgchat,
    presence_shows,
    register,
    wait_in_roster,
)
from tests.integration.conftest import TestCompany as Company
from tests.integration.proxy import TcpProxy

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

RECEIPTS = "urn:xmpp:receipts"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
REQUEST = f'<request xmlns="{RECEIPTS}"/>'
PG_PORT = urlsplit(TEST_DB_URL).port or 5432
REDIS_PORT = urlsplit(REDIS_URL).port or 6379
COMPONENT_PORT = 5348
#: What ejabberd 23.01 answers for the test domain while no component is
#: attached: with ``s2s_access: none`` it falls back to s2s and refuses.
NO_COMPONENT = ("auth", "forbidden")

_seq = itertools.count(1)


# -- small helpers -------------------------------------------------------------


def bare(jid: str | None) -> str:
    return (jid or "").split("/", 1)[0]


def receipt_for(el: ET.Element) -> str | None:
    received = child(el, "received", RECEIPTS)
    return None if received is None else received.get("id")


def is_receipt(mid: str) -> Callable[[ET.Element], bool]:
    return lambda el: local(el.tag) == "message" and receipt_for(el) == mid


def is_reply_to(mid: str) -> Callable[[ET.Element], bool]:
    """The error bounce (from ejabberd or the component) of the stanza ``mid``."""
    return lambda el: el.get("type") == "error" and el.get("id") == mid


def condition(el: ET.Element) -> tuple[str | None, str | None]:
    """(error type, defined condition) of an error stanza."""
    err = child(el, "error")
    if err is None:
        return None, None
    names = [
        local(c.tag) for c in err if c.tag.startswith("{" + STANZAS) and local(c.tag) != "text"
    ]
    return error_type(el), names[0] if names else None


def bodies(items: list[ET.Element]) -> Counter[str]:
    """How many non-error messages carried each body."""
    found: Counter[str] = Counter()
    for el in items:
        if local(el.tag) == "message" and el.get("type") != "error":
            body = child(el, "body")
            if body is not None and body.text is not None:
                found[body.text] += 1
    return found


def has_bodies(inbox: Inbox, wanted: set[str]) -> Callable[[], bool]:
    return lambda: set(bodies(inbox.items)) >= wanted


def receipts(items: list[ET.Element]) -> Counter[str]:
    return Counter(r for el in items if (r := receipt_for(el)) is not None)


def presence_key(jid: str) -> str:
    return f"{REDIS_PREFIX}:{DOMAIN}:presence:{jid}"


def db_url_via(proxy: TcpProxy) -> str:
    parts = urlsplit(TEST_DB_URL)
    return parts._replace(netloc=f"{parts.netloc.rsplit(':', 1)[0]}:{proxy.port}").geturl()


def redis_url_via(proxy: TcpProxy) -> str:
    return urlsplit(REDIS_URL)._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()


async def eventually(
    check: Callable[[], Any], what: str | Callable[[], str], timeout: float = 15.0
) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(
                f"not within {timeout}s: {what if isinstance(what, str) else what()}"
            )
        await asyncio.sleep(0.05)


def log_events(proc: ComponentProcess, event: str) -> list[str]:
    """The component's log lines for one event (logfmt: ``event=<name>``)."""
    if not proc.log_path.exists():
        return []
    pattern = re.compile(rf"\bevent={re.escape(event)}(\s|$)")
    return [
        line
        for line in proc.log_path.read_text(errors="replace").splitlines()
        if pattern.search(line)
    ]


def archived_by(proc: ComponentProcess) -> int:
    """Messages this process archived, from its ``archive.batch`` debug lines."""
    return sum(
        int(m.group(1))
        for line in log_events(proc, "archive.batch")
        if (m := re.search(r"\bsize=(\d+)", line))
    )


async def new_companies(tmp: Path, *agent_counts: int) -> list[Company]:
    """Companies with fresh agent accounts, created in one ``orgchat import``.

    Their roster jobs are queued in PostgreSQL and done by whichever
    component runs next: call :func:`rosters_ready` once one does.
    """
    companies = []
    for n in agent_counts:
        company = Company(f"t{RUN}-r{next(_seq)}", f"Resilience {next(_seq)}")
        company.agents = [await register(f"ragent{i}") for i in range(n)]
        companies.append(company)
    path = tmp / f"companies-{next(_seq)}.json"
    path.write_text(
        json.dumps(
            [
                {"slug": c.slug, "name": c.name, "agents": [a.jid for a in c.agents]}
                for c in companies
            ]
        )
    )
    result = await orgchat("import", str(path))
    assert result.code == 0, result.err
    return companies


async def rosters_ready(*companies: Company) -> None:
    for company in companies:
        for agent in company.agents:
            await wait_in_roster(agent, company.jid, timeout=20)


async def online(rds: aioredis.Redis, jid: str) -> None:
    """Wait until Redis holds the agent's (single, resource "test") presence."""
    await eventually(lambda: _shows_are(rds, jid, {"test": "available"}), f"{jid} online")


async def _shows_are(rds: aioredis.Redis, jid: str, expected: dict[str, str]) -> bool:
    return await presence_shows(rds, jid) == expected


async def rows(db: asyncpg.Connection, slug: str) -> list[asyncpg.Record]:
    return await db.fetch(
        """SELECT m.direction, m.sender_jid, m.body, m.client_id, m.pending,
                  c.customer_jid, c.token
             FROM messages m JOIN conversations c ON c.id = m.conversation_id
             JOIN companies co ON co.id = c.company_id
            WHERE co.slug = $1 ORDER BY m.id""",
        slug,
    )


# -- fixtures -------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def exclusive(component: ComponentProcess) -> AsyncIterator[None]:
    """Take the session component off the test domain while this module runs.

    Otherwise ejabberd would hand stanzas at random to it or to the test's own
    processes. It is started again afterwards, for the other test files.
    """
    code = await component.stop()
    try:
        assert code == 0, f"session component exited {code}:\n{component.log_tail()}"
        yield
    finally:
        await component.start()


class Rig:
    """The test's own component processes and proxies, all stopped at the end."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[ComponentProcess] = []
        self.proxies: list[TcpProxy] = []

    def component(self, name: str, **env: str) -> ComponentProcess:
        proc = ComponentProcess(self.tmp, name, **env)
        self.procs.append(proc)
        return proc

    async def proxy(self, target_port: int, *, cut: bool = False) -> TcpProxy:
        proxy = await TcpProxy.start(target_port, cut=cut)
        self.proxies.append(proxy)
        return proxy

    async def companies(self, *agent_counts: int) -> list[Company]:
        return await new_companies(self.tmp, *agent_counts)

    async def close(self) -> None:
        # Components first: a graceful stop may still need its proxied stores.
        for proxy in self.proxies:
            await proxy.restore()
        codes = [await proc.stop() for proc in self.procs]
        for proxy in self.proxies:
            await proxy.close()
        for proc, code in zip(self.procs, codes, strict=True):
            assert code in (None, 0, -9), f"{proc.log_path.name} exited {code}:\n{proc.log_tail()}"


@pytest_asyncio.fixture(loop_scope="session")
async def rig(exclusive: None, tmp_path: Path) -> AsyncIterator[Rig]:
    rig = Rig(tmp_path)
    try:
        yield rig
    finally:
        await rig.close()


Login = Callable[..., Awaitable[Any]]


# -- 1. restart -------------------------------------------------------------------


async def test_restart_keeps_the_conversation_and_delivers_pending_messages(
    rig: Rig, clients: Login, db: asyncpg.Connection, rds: aioredis.Redis
) -> None:
    company, quiet = await rig.companies(1, 1)
    proc = await rig.component("restart").start()
    await rosters_ready(company, quiet)
    agent = await clients(company.agents[0])
    await online(rds, company.agents[0].jid)
    customer_account = await register("customer")
    customer = await clients(customer_account)

    mid = new_id()
    customer.send_xml(chat(company.jid, "before the restart", mid, REQUEST))
    got = await agent.inbox.expect(is_message("before the restart"))
    conv_jid = bare(got.get("from"))
    await customer.inbox.expect(is_receipt(mid))
    agent.send_xml(chat(conv_jid, "answer before the restart", new_id()))
    await customer.inbox.expect(is_message("answer before the restart", frm=company.jid))

    # No agent of `quiet` is online: the message waits in PostgreSQL.
    waiting = new_id()
    customer.send_xml(chat(quiet.jid, "waiting through the restart", waiting, REQUEST))
    await customer.inbox.expect(is_receipt(waiting))
    assert await db.fetchval("SELECT pending FROM messages WHERE client_id = $1", waiting)

    assert await proc.stop() == 0
    assert not proc.ready_file.exists()

    # Nobody attached to the domain: ejabberd bounces at once, queues nothing.
    down = new_id()
    customer.send_xml(chat(company.jid, "while the component is down", down, REQUEST))
    bounce = await customer.inbox.expect(is_reply_to(down))
    print(f"\nejabberd, no component attached: {ET.tostring(bounce, encoding='unicode')}")
    assert condition(bounce) == NO_COMPONENT
    assert bare(bounce.get("from")) == company.jid
    agent_down = new_id()
    agent.send_xml(chat(conv_jid, "agent while down", agent_down))
    assert condition(await agent.inbox.expect(is_reply_to(agent_down))) == NO_COMPONENT

    await proc.start()
    after = new_id()
    customer.send_xml(chat(company.jid, "after the restart", after, REQUEST))
    got = await agent.inbox.expect(is_message("after the restart"))
    assert bare(got.get("from")) == conv_jid  # the same conversation address
    await customer.inbox.expect(is_receipt(after))
    agent.send_xml(chat(conv_jid, "answer after the restart", new_id()))
    await customer.inbox.expect(is_message("answer after the restart", frm=company.jid))

    quiet_agent = await clients(quiet.agents[0])
    late = await quiet_agent.inbox.expect(is_message("waiting through the restart"))
    assert child(late, "delay", "urn:xmpp:delay") is not None

    assert [(r["direction"], r["body"]) for r in await rows(db, company.slug)] == [
        ("in", "before the restart"),
        ("out", "answer before the restart"),
        ("in", "after the restart"),
        ("out", "answer after the restart"),
    ]
    assert len({r["token"] for r in await rows(db, company.slug)}) == 1
    assert (
        await db.fetchval(
            "SELECT count(*) FROM messages WHERE client_id = ANY($1)", [down, agent_down]
        )
        == 0
    )
    assert await db.fetchval("SELECT pending FROM messages WHERE client_id = $1", waiting) is False
    assert receipts(customer.inbox.items)[down] == 0
    assert bodies(agent.inbox.items)["while the component is down"] == 0
    assert bodies(customer.inbox.items)["agent while down"] == 0


# -- 2. SIGKILL under load ---------------------------------------------------------

#: Messages sent in all; the first BURST with a sliding window of unacknowledged
#: messages (as a careful client would), the kill landing when KILL_AT of them
#: were acknowledged; then what is left until DOWN_END while no component is
#: attached; the rest after the restart.
TOTAL, BURST, KILL_AT, WINDOW, DOWN_END = 200, 120, 60, 30, 160


async def test_sigkill_under_load_never_acknowledges_an_unarchived_message(
    rig: Rig, clients: Login, db: asyncpg.Connection, rds: aioredis.Redis
) -> None:
    (company,) = await rig.companies(1)
    # A short redelivery threshold, so that the sweep runs within the test.
    proc = rig.component(
        "kill", ORGCHAT_LIMITS_CUSTOMER_RATE="100000", ORGCHAT_ARCHIVE_REDELIVER_AFTER="1"
    )
    await proc.start()
    await rosters_ready(company)
    agent = await clients(company.agents[0])
    await online(rds, company.agents[0].jid)
    customer = await clients(await register("customer"))
    ids = [f"k{n:03d}-{new_id()}" for n in range(TOTAL)]

    def send(chunk: list[str]) -> None:
        for mid in chunk:
            customer.send_xml(chat(company.jid, f"load {mid}", mid, REQUEST))

    def state() -> str:
        got = receipts(customer.inbox.items)
        errors = Counter(condition(el) for el in customer.inbox.items if el.get("type") == "error")
        return f"{sum(1 for m in ids if got[m])} receipts, errors {dict(errors)}"

    sent = 0
    deadline = asyncio.get_running_loop().time() + 15
    while sum(1 for m in ids[:sent] if receipts(customer.inbox.items)[m]) < KILL_AT:
        in_flight = sent - sum(1 for m in ids[:sent] if receipts(customer.inbox.items)[m])
        while sent < BURST and in_flight < WINDOW:
            send([ids[sent]])
            sent += 1
            in_flight += 1
        assert asyncio.get_running_loop().time() < deadline, state()
        await asyncio.sleep(0.001)  # let receipts in
    await proc.kill()
    burst, down, after = ids[:sent], ids[sent:DOWN_END], ids[DOWN_END:]
    send(down)
    # c2s routes one session's stanzas in order: once the last one bounced,
    # every earlier one was routed (bounced, or lost on the dead connection).
    await eventually(
        lambda: any(is_reply_to(down[-1])(el) for el in customer.inbox.items),
        lambda: f"bounce of the last message sent while down; {state()}",
    )
    await proc.start()
    send(after)
    await eventually(
        lambda: all(receipts(customer.inbox.items)[m] for m in after),
        lambda: f"receipts after the restart; {state()}",
    )

    got = receipts(customer.inbox.items)
    bounced = {
        el.get("id"): condition(el) for el in customer.inbox.items if el.get("type") == "error"
    }
    counts = await archived_counts(db, ids)
    acked = [m for m in burst if got[m]]
    unacked_rows = [m for m in burst if not got[m] and counts.get(m)]
    lost = [m for m in burst if not got[m] and not counts.get(m) and m not in bounced]
    print(
        f"\nSIGKILL: {len(burst)} sent before the kill (window {WINDOW}): {len(acked)} "
        f"acknowledged, {len(unacked_rows)} archived without a receipt, {len(lost)} lost "
        f"in flight; {len(down)} sent while down: "
        f"{sum(1 for m in down if m in bounced)} bounced by ejabberd, "
        f"{sum(1 for m in down if m not in bounced)} lost; {len(after)} after the restart"
    )
    # No receipt without exactly one row; nothing archived twice.
    assert all(counts.get(m) == 1 for m in acked + after), counts
    assert all(n == 1 for n in counts.values()), counts
    assert all(got[m] <= 1 for m in ids)
    assert not any(counts.get(m) or got[m] for m in down)
    assert all(bounced[m] == NO_COMPONENT for m in down if m in bounced)
    assert not any(m in bounced for m in burst + after)
    # Every archived message reaches the agent: what the killed process committed
    # but never wrote (or wrote without confirming) is delivered again by the
    # restarted one. At least once, with the original id, so a client can tell.
    archived = acked + unacked_rows + after
    await eventually(
        lambda: all(bodies(agent.inbox.items)[f"load {m}"] for m in archived),
        "the agent got every archived message",
    )
    delivered = bodies(agent.inbox.items)
    assert all(delivered[f"load {m}"] == 1 for m in after)
    repeats = [m for m in burst if delivered[f"load {m}"] > 1]
    print(f"delivered twice (committed but unconfirmed at the kill): {len(repeats)}")

    # A client resends what was never acknowledged: archived once, acknowledged now.
    retry = [m for m in burst if not got[m]]
    send(retry)
    await eventually(
        lambda: all(receipts(customer.inbox.items)[m] for m in retry),
        lambda: f"receipts of the resent messages; {state()}",
    )
    counts = await archived_counts(db, burst)
    assert all(counts.get(m) == 1 for m in burst), counts
    await eventually(
        lambda: all(bodies(agent.inbox.items)[f"load {m}"] for m in burst),
        "the agent got every message of the burst",
    )


async def archived_counts(db: asyncpg.Connection, ids: list[str]) -> dict[str, int]:
    found = await db.fetch(
        "SELECT client_id, count(*) AS n FROM messages WHERE client_id = ANY($1) GROUP BY 1", ids
    )
    return {row["client_id"]: row["n"] for row in found}


# -- 3. PostgreSQL outage ----------------------------------------------------------

WAIT = ("wait", "internal-server-error")


async def test_postgres_outage_answers_wait_and_recovers_without_restart(
    rig: Rig, clients: Login, db: asyncpg.Connection, rds: aioredis.Redis
) -> None:
    pg = await rig.proxy(PG_PORT)
    company, quiet = await rig.companies(1, 1)
    proc = await rig.component("pg", ORGCHAT_DATABASE_URL=db_url_via(pg)).start()
    await rosters_ready(company, quiet)
    agent = await clients(company.agents[0])
    await online(rds, company.agents[0].jid)
    customer = await clients(await register("customer"))

    before = new_id()
    customer.send_xml(chat(company.jid, "before the outage", before, REQUEST))
    got = await agent.inbox.expect(is_message("before the outage"))
    conv_jid = bare(got.get("from"))
    await customer.inbox.expect(is_receipt(before))
    waiting = new_id()  # `quiet` has no agent online: this one waits in PostgreSQL
    customer.send_xml(chat(quiet.jid, "waiting through the outage", waiting, REQUEST))
    await customer.inbox.expect(is_receipt(waiting))

    pg.cut()
    during = new_id()
    customer.send_xml(chat(company.jid, "during the outage", during, REQUEST))
    err = await customer.inbox.expect(is_reply_to(during))
    assert condition(err) == WAIT
    assert bare(err.get("from")) == company.jid
    agent_during = new_id()
    agent.send_xml(chat(conv_jid, "agent during the outage", agent_during, REQUEST))
    err = await agent.inbox.expect(is_reply_to(agent_during))
    assert condition(err) == WAIT
    assert bare(err.get("from")) == conv_jid
    # quiet's agent logs in now: Redis takes its presence, PostgreSQL cannot
    # hand over the waiting message yet.
    quiet_agent = await clients(quiet.agents[0])
    await online(rds, quiet.agents[0].jid)
    await eventually(
        lambda: log_events(proc, "presence.storage_unavailable"), "pending claim failed"
    )

    await pg.restore()
    after = new_id()
    customer.send_xml(chat(company.jid, "after the outage", after, REQUEST))
    await agent.inbox.expect(is_message("after the outage"))
    await customer.inbox.expect(is_receipt(after))
    agent.send_xml(chat(conv_jid, "answer after the outage", new_id()))
    await customer.inbox.expect(is_message("answer after the outage", frm=company.jid))
    # ... and the message that waited reaches the agent who came online meanwhile.
    late = await quiet_agent.inbox.expect(is_message("waiting through the outage"))
    assert child(late, "delay", "urn:xmpp:delay") is not None

    assert [(r["direction"], r["body"]) for r in await rows(db, company.slug)] == [
        ("in", "before the outage"),
        ("in", "after the outage"),
        ("out", "answer after the outage"),
    ]
    assert receipts(customer.inbox.items)[during] == 0
    assert receipts(agent.inbox.items)[agent_during] == 0
    assert bodies(agent.inbox.items)["during the outage"] == 0
    assert bodies(customer.inbox.items)["agent during the outage"] == 0
    assert len(log_events(proc, "component.connected")) == 1  # never restarted nor reconnected
    assert proc.proc is not None and proc.proc.returncode is None


async def test_component_starts_while_postgres_is_down_and_serves_once_it_returns(
    rig: Rig, clients: Login, db: asyncpg.Connection, rds: aioredis.Redis
) -> None:
    pg = await rig.proxy(PG_PORT, cut=True)
    (company,) = await rig.companies(1)
    proc = await rig.component("pg-late", ORGCHAT_DATABASE_URL=db_url_via(pg)).start()
    # Connected to ejabberd (the ready file) without PostgreSQL: it answers.
    customer = await clients(await register("customer"))
    early = new_id()
    customer.send_xml(chat(company.jid, "before PostgreSQL is up", early, REQUEST))
    err = await customer.inbox.expect(is_reply_to(early))
    assert condition(err) == WAIT
    assert bare(err.get("from")) == company.jid

    await pg.restore()
    # Nothing restarts it: the directory loads and the roster jobs run by themselves.
    await rosters_ready(company)
    await eventually(lambda: log_events(proc, "directory.loaded"), "directory loaded")
    agent = await clients(company.agents[0])
    await online(rds, company.agents[0].jid)
    mid = new_id()
    customer.send_xml(chat(company.jid, "once PostgreSQL is up", mid, REQUEST))
    got = await agent.inbox.expect(is_message("once PostgreSQL is up"))
    await customer.inbox.expect(is_receipt(mid))
    agent.send_xml(chat(bare(got.get("from")), "we are open", new_id()))
    await customer.inbox.expect(is_message("we are open", frm=company.jid))

    assert [r["body"] for r in await rows(db, company.slug)] == [
        "once PostgreSQL is up",
        "we are open",
    ]
    assert receipts(customer.inbox.items)[early] == 0
    assert len(log_events(proc, "component.connected")) == 1


# -- 4. Redis outage ---------------------------------------------------------------


async def test_redis_outage_answers_wait_and_recovers_without_restart(
    rig: Rig, clients: Login, db: asyncpg.Connection, rds: aioredis.Redis
) -> None:
    rp = await rig.proxy(REDIS_PORT)
    (company,) = await rig.companies(2)
    first_account, second_account = company.agents
    proc = await rig.component("redis", ORGCHAT_REDIS_URL=redis_url_via(rp)).start()
    await rosters_ready(company)
    first = await clients(first_account)
    await online(rds, first_account.jid)
    customer = await clients(await register("customer"))

    before = new_id()
    customer.send_xml(chat(company.jid, "before the outage", before, REQUEST))
    got = await first.inbox.expect(is_message("before the outage"))
    conv_jid = bare(got.get("from"))
    await customer.inbox.expect(is_receipt(before))

    rp.cut()
    during = new_id()
    customer.send_xml(chat(company.jid, "during the outage", during, REQUEST))
    err = await customer.inbox.expect(is_reply_to(during))
    assert condition(err) == WAIT
    assert bare(err.get("from")) == company.jid
    # The second agent logs in while its presence cannot be written.
    second = await clients(second_account)
    await eventually(
        lambda: log_events(proc, "presence.storage_unavailable"), "presence not written"
    )
    assert not await rds.exists(presence_key(second_account.jid))

    await rp.restore()
    after = new_id()
    customer.send_xml(chat(company.jid, "after the outage", after, REQUEST))
    await first.inbox.expect(is_message("after the outage"))
    await customer.inbox.expect(is_receipt(after))
    # The presence missed during the outage is in Redis once it is back ...
    await online(rds, second_account.jid)
    assert await presence_shows(rds, first_account.jid) == {"test": "available"}
    # ... so both agents get the next message, and the conversation goes on.
    customer.send_xml(chat(company.jid, "for both of you", new_id()))
    await first.inbox.expect(is_message("for both of you", frm=conv_jid))
    await second.inbox.expect(is_message("for both of you", frm=conv_jid))
    second.send_xml(chat(conv_jid, "answer after the outage", new_id()))
    await customer.inbox.expect(is_message("answer after the outage", frm=company.jid))

    assert [r["body"] for r in await rows(db, company.slug)] == [
        "before the outage",
        "after the outage",
        "for both of you",
        "answer after the outage",
    ]
    assert receipts(customer.inbox.items)[during] == 0
    assert bodies(first.inbox.items)["during the outage"] == 0
    assert len(log_events(proc, "component.connected")) == 1


# -- 5. two processes on one domain ------------------------------------------------

CUSTOMERS, PER_CUSTOMER = 4, 25


async def test_two_processes_share_the_domain_and_each_message_arrives_once(
    rig: Rig, clients: Login, db: asyncpg.Connection, rds: aioredis.Redis
) -> None:
    (company,) = await rig.companies(2)
    env = {"ORGCHAT_LIMITS_CUSTOMER_RATE": "100000"}
    one = await rig.component("one", **env).start()
    await rosters_ready(company)
    agents = [await clients(a) for a in company.agents]
    for account in company.agents:
        await online(rds, account.jid)
    two = await rig.component("two", **env).start()
    # Each process forgets and re-probes presence when it connects: wait for
    # the second one's probes to be answered before counting deliveries.
    await eventually(lambda: log_events(two, "presence.probed"), "second process probed")
    for account in company.agents:
        await online(rds, account.jid)
    accounts = [await register(f"customer{n}") for n in range(CUSTOMERS)]
    customers = [
        await clients(a, "aioxmpp" if n % 2 else "slixmpp") for n, a in enumerate(accounts)
    ]

    questions = {f"question {n}-{i}": n for n in range(CUSTOMERS) for i in range(PER_CUSTOMER)}
    for body, n in questions.items():
        customers[n].send_xml(chat(company.jid, body, new_id()))
    for agent in agents:
        await eventually(has_bodies(agent.inbox, set(questions)), "every question at each agent")
    # The conversation address of each customer, as the agents see it.
    conv_of: dict[int, set[str]] = {}
    for agent in agents:
        for el in agent.inbox.items:
            text = text_of(el, "body")
            if text in questions:
                conv_of.setdefault(questions[text], set()).add(bare(el.get("from")))
    assert all(len(jids) == 1 for jids in conv_of.values()), conv_of
    assert len({next(iter(jids)) for jids in conv_of.values()}) == CUSTOMERS

    answers = {f"answer {n}-{i}": n for n in range(CUSTOMERS) for i in range(PER_CUSTOMER)}
    for k, (body, n) in enumerate(answers.items()):
        agents[k % 2].send_xml(chat(next(iter(conv_of[n])), body, new_id()))
    for n, customer in enumerate(customers):
        mine = {b for b, c in answers.items() if c == n}
        await eventually(has_bodies(customer.inbox, mine), f"answers at customer {n}")

    archived = Counter(r["body"] for r in await rows(db, company.slug))
    assert archived == Counter(list(questions) + list(answers))
    # Both processes took their share (ejabberd picks one per stanza).
    share = (archived_by(one), archived_by(two))
    print(f"\nscale-out: messages archived by each process: {share}")
    assert min(share) > 0 and sum(share) == len(questions) + len(answers)
    for account in company.agents:
        assert await presence_shows(rds, account.jid) == {"test": "available"}
    for account in accounts:
        # Customers are tracked too once the company is in their roster (the
        # cascade reads it), whichever process got their presence.
        await eventually(
            lambda jid=account.jid: presence_shows(rds, jid), f"{account.jid} known online"
        )

    # One process leaves: the other serves everything.
    assert await one.stop() == 0
    stopped_share = archived_by(one)
    for n, customer in enumerate(customers):
        customer.send_xml(chat(company.jid, f"still there? {n}", new_id()))
    for agent in agents:
        for n in range(CUSTOMERS):
            await agent.inbox.expect(is_message(f"still there? {n}", frm=next(iter(conv_of[n]))))
    for n, customer in enumerate(customers):
        agents[n % 2].send_xml(chat(next(iter(conv_of[n])), f"yes {n}", new_id()))
        await customer.inbox.expect(is_message(f"yes {n}", frm=company.jid))
    assert archived_by(one) == stopped_share
    assert archived_by(two) == share[1] + 2 * CUSTOMERS
    for account in company.agents:
        assert await presence_shows(rds, account.jid) == {"test": "available"}

    # Exactly once. No settling delay needed: the first process flushed its
    # output before it exited, and what the second one sent before reached each
    # client before the round trips above, which it served later.
    for agent in agents:
        got = bodies(agent.inbox.items)
        assert {b: got[b] for b in questions if got[b] != 1} == {}
    for n, customer in enumerate(customers):
        got = bodies(customer.inbox.items)
        assert {b: got[b] for b, c in answers.items() if c == n and got[b] != 1} == {}
        assert not set(got) & (set(answers) - {b for b, c in answers.items() if c == n})


# -- 6. ejabberd's listener away -----------------------------------------------------


async def test_component_connects_by_itself_when_the_listener_comes_back(
    rig: Rig, clients: Login, db: asyncpg.Connection, rds: aioredis.Redis
) -> None:
    gate = await rig.proxy(COMPONENT_PORT, cut=True)
    (company,) = await rig.companies(1)
    proc = rig.component("gate", ORGCHAT_COMPONENT_PORT=str(gate.port))
    await proc.start(wait=False)
    # Refused, and retried with backoff (two failed attempts at least).
    await eventually(
        lambda: len(log_events(proc, "component.connection_failed")) >= 2,
        lambda: f"retries of the refused connection:\n{proc.log_tail()}",
    )
    assert not proc.ready_file.exists()

    await gate.restore()
    await proc.wait_ready()  # it connected by itself
    await rosters_ready(company)
    agent = await clients(company.agents[0])
    await online(rds, company.agents[0].jid)
    customer = await clients(await register("customer"))
    customer.send_xml(chat(company.jid, "through the gate", new_id()))
    got = await agent.inbox.expect(is_message("through the gate"))
    conv_jid = bare(got.get("from"))

    # The connection drops under a running component: it reconnects by itself.
    proc.ready_file.unlink()
    gate.cut()
    await eventually(lambda: log_events(proc, "component.disconnected"), "disconnect noticed")
    gone = new_id()
    customer.send_xml(chat(company.jid, "while the gate is shut", gone))
    assert condition(await customer.inbox.expect(is_reply_to(gone))) == NO_COMPONENT
    await gate.restore()
    await proc.wait_ready()
    customer.send_xml(chat(company.jid, "through the gate again", new_id()))
    await agent.inbox.expect(is_message("through the gate again", frm=conv_jid))
    agent.send_xml(chat(conv_jid, "welcome back", new_id()))
    await customer.inbox.expect(is_message("welcome back", frm=company.jid))

    assert gate.accepted == 2
    assert len(log_events(proc, "component.connected")) == 2
    assert [r["body"] for r in await rows(db, company.slug)] == [
        "through the gate",
        "through the gate again",
        "welcome back",
    ]
