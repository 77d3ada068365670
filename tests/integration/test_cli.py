"""The `orgchat` command as an operator uses it, against the real stack.

Each command runs as a real `python -m component` process with the test
environment. Successful commands are checked in PostgreSQL and, where they
change what the running component does, with real XMPP clients; every bad
argument must give exactly one `orgchat: error:` line, exit status 2, and
leave the directory exactly as it was.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from tests.integration.clients import chat, child, is_error, is_message, new_id
from tests.integration.conftest import (
    DOMAIN,
    REDIS_PREFIX,
    RUN,
    TEST_DB_URL,
    VHOST,
    Account,
    ComponentProcess,
    MakeCompany,
    Result,
    api,
    component_env,
    free_port,
    orgchat,
    register,
    roster_of,
    wait_in_roster,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


DISCO_INFO = "http://jabber.org/protocol/disco#info"
_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def _component_running(component: ComponentProcess) -> None:
    """The session's `orgchat run`: roster edits and live effects need it."""


def unique_slug(tag: str = "cli") -> str:
    return f"t{RUN}-{tag}{next(_numbers)}"


async def ok(*args: str) -> Result:
    result = await orgchat(*args)
    assert result.code == 0, f"orgchat {' '.join(args)} failed: {result.err}"
    assert result.err == ""
    return result


async def directory_rows(db: asyncpg.Connection) -> list[tuple[Any, ...]]:
    """Every company and agent row, as they are: the "nothing changed" reference."""
    companies = await db.fetch("SELECT * FROM companies ORDER BY id")
    agents = await db.fetch("SELECT * FROM agents ORDER BY company_id, jid")
    return [("company", *r.values()) for r in companies] + [("agent", *r.values()) for r in agents]


async def refused(db: asyncpg.Connection, *args: str, **env: str) -> str:
    """Run a command that must be refused as bad input; return its one error line."""
    before = await directory_rows(db)
    result = await orgchat(*args, env=component_env(**env) if env else None)
    lines = result.err.splitlines()
    assert len(lines) == 1, f"orgchat {' '.join(args)}: expected one line, got {result.err!r}"
    assert lines[0].startswith("orgchat: error: "), lines[0]
    assert result.code == 2, f"orgchat {' '.join(args)} exited {result.code}: {result.err}"
    assert result.out == ""
    assert await directory_rows(db) == before, f"orgchat {' '.join(args)} changed the directory"
    return lines[0]


async def company_row(db: asyncpg.Connection, slug: str) -> asyncpg.Record | None:
    return await db.fetchrow("SELECT * FROM companies WHERE slug = $1", slug)


async def agents_of(db: asyncpg.Connection, slug: str) -> dict[str, str]:
    rows = await db.fetch(
        "SELECT a.jid, a.role FROM agents a JOIN companies c ON c.id = a.company_id "
        "WHERE c.slug = $1",
        slug,
    )
    return {r["jid"]: r["role"] for r in rows}


async def until(check: Any, what: str, timeout: float = 10.0) -> Any:
    """Poll an async check until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.05)


async def iq_error(client: Any, to: str, payload: str) -> str | None:
    """Send an IQ get; the defined condition of its error, or None for a result."""
    iid = new_id()
    client.send_xml(f'<iq type="get" to="{to}" id="{iid}">{payload}</iq>')
    reply = await client.inbox.expect(lambda el: el.get("id") == iid)
    if reply.get("type") == "result":
        return None
    err = child(reply, "error")
    assert err is not None and len(err), reply
    return err[0].tag.rsplit("}", 1)[-1]


# -- companies ----------------------------------------------------------------


async def test_company_add_show_list_remove(db: asyncpg.Connection) -> None:
    slug = unique_slug()
    added = await ok(
        "company",
        "add",
        slug,
        "--name",
        "Trattoria Uno",
        "--email",
        "info@trattoria.example",
        "--timezone",
        "Europe/Rome",
        "--hours",
        "Mo-Fr 09:00-18:00; Sa 10:00-14:00",
        "--category",
        "restaurant",
        "--city",
        "Rome",
        "--phone",
        "+39 06 1234 5678",
        "--url",
        "https://trattoria.example/",
        "--address",
        "Via Roma 1",
    )
    assert f"{slug}@{DOMAIN}" in added.out
    row = await company_row(db, slug)
    assert row is not None
    assert dict(row) | {"id": None, "created_at": None, "updated_at": None} == {
        "id": None,
        "slug": slug,
        "name": "Trattoria Uno",
        "email": "info@trattoria.example",
        "timezone": "Europe/Rome",
        "hours": "Mo-Fr 09:00-18:00; Sa 10:00-14:00",
        "category": "restaurant",
        "city": "Rome",
        "accepts_requests": True,
        "away_message": None,
        "reaction_window_s": None,
        "retention_days": None,
        "phone": "+39 06 1234 5678",
        "url": "https://trattoria.example/",
        "address": "Via Roma 1",
        "created_at": None,
        "updated_at": None,
        # What the directory search compares (generated by PostgreSQL).
        "name_folded": "trattoria uno",
        "category_folded": "restaurant",
        "city_folded": "rome",
    }

    boss, clerk = await register("boss"), await register("clerk")
    await ok("agent", "add", slug, boss.jid, "--admin")
    await ok("agent", "add", slug, clerk.jid)

    shown = (await ok("company", "show", slug)).out
    fields = {
        key.strip(): value.strip()
        for key, _, value in (line.partition(":") for line in shown.splitlines())
        if not key.startswith(" ") and value.strip()
    }
    assert fields == {
        "slug": slug,
        "address": f"{slug}@{DOMAIN}",
        "name": "Trattoria Uno",
        "email": "info@trattoria.example",
        "timezone": "Europe/Rome",
        "hours": "Mo-Fr 09:00-18:00; Sa 10:00-14:00",
        "category": "restaurant",
        "city": "Rome",
        "street": "Via Roma 1",
        "phone": "+39 06 1234 5678",
        "web": "https://trattoria.example/",
        "requests": "yes",
        "messages": "kept forever",
    }
    assert f"  {boss.jid} (admin)" in shown.splitlines()
    assert f"  {clerk.jid} (agent)" in shown.splitlines()

    listed = (await ok("company", "list")).out.splitlines()
    assert f"{slug}\tTrattoria Uno\tRome\trestaurant\trequests" in listed
    assert len(listed) == await db.fetchval("SELECT count(*) FROM companies")

    # Defaults: UTC and no optional fields.
    plain = unique_slug()
    await ok("company", "add", plain, "--name", "Plain Shop")
    plain_shown = (await ok("company", "show", plain)).out.splitlines()
    assert "timezone: UTC" in plain_shown
    assert "agents: none" in plain_shown
    assert f"{plain}\tPlain Shop\t-\t-\trequests" in (await ok("company", "list")).out.splitlines()

    removed = await ok("company", "remove", slug)
    assert slug in removed.out
    assert await company_row(db, slug) is None
    assert await agents_of(db, slug) == {}
    listed = (await ok("company", "list")).out.splitlines()
    assert slug not in [line.split("\t")[0] for line in listed]
    await ok("company", "remove", plain)


async def test_a_company_can_stay_out_of_requests(db: asyncpg.Connection, tmp_path: Path) -> None:
    slug = unique_slug()
    added = await ok("company", "add", slug, "--name", "Quiet Shop", "--no-requests")
    assert "no requests to several companies" in added.out
    row = await company_row(db, slug)
    assert row is not None and row["accepts_requests"] is False
    assert "requests: no" in (await ok("company", "show", slug)).out.splitlines()
    listed = (await ok("company", "list")).out.splitlines()
    assert f"{slug}\tQuiet Shop\t-\t-\tno-requests" in listed

    # An import sets the flag; without it the company takes requests (the
    # file describes the whole company, as for every other field).
    path = tmp_path / "flags.json"
    for flag, expected in ((True, True), (False, False), (None, True)):
        company: dict[str, Any] = {"slug": slug, "name": "Quiet Shop"}
        if flag is not None:
            company["accepts_requests"] = flag
        path.write_text(json.dumps([company]))
        assert "0 added, 1 updated" in (await ok("import", str(path))).out
        row = await company_row(db, slug)
        assert row is not None and row["accepts_requests"] is expected
    assert "0 added, 0 updated" in (await ok("import", str(path))).out

    path.write_text(json.dumps([{"slug": slug, "name": "Quiet Shop", "accepts_requests": "no"}]))
    line = await refused(db, "import", str(path))
    assert "company #1: accepts_requests: must be true or false" in line, line
    line = await refused(db, "company", "add", unique_slug(), "--name", "X", "--no-requests=1")
    assert "--no-requests" in line, line
    await ok("company", "remove", slug)


async def test_agent_add_list_remove(db: asyncpg.Connection) -> None:
    slug = unique_slug()
    await ok("company", "add", slug, "--name", "Agents Inc")
    assert (await ok("agent", "list", slug)).out == ""
    admin, agent = await register("admin"), await register("agent")
    await ok("agent", "add", slug, admin.jid, "--admin")
    await ok("agent", "add", slug, agent.jid)
    assert await agents_of(db, slug) == {admin.jid: "admin", agent.jid: "agent"}
    listed = sorted((await ok("agent", "list", slug)).out.splitlines())
    assert listed == sorted([f"{admin.jid}\tadmin", f"{agent.jid}\tagent"])
    # Both got the company in their ejabberd roster.
    await wait_in_roster(admin, f"{slug}@{DOMAIN}")
    await wait_in_roster(agent, f"{slug}@{DOMAIN}")

    await ok("agent", "remove", slug, admin.jid)
    assert await agents_of(db, slug) == {agent.jid: "agent"}
    assert (await ok("agent", "list", slug)).out.splitlines() == [f"{agent.jid}\tagent"]
    await ok("company", "remove", slug)


async def test_roster_sync_puts_companies_back_into_rosters(db: asyncpg.Connection) -> None:
    slug = unique_slug()
    await ok("company", "add", slug, "--name", "Lost Rosters")
    agent = await register("agent")
    await ok("agent", "add", slug, agent.jid)
    await wait_in_roster(agent, f"{slug}@{DOMAIN}")
    # ejabberd loses the roster item (restored from an old backup, replaced...).
    await api(
        "delete_rosteritem",
        {"localuser": agent.user, "localhost": VHOST, "user": slug, "host": DOMAIN},
    )
    assert not [i for i in await roster_of(agent) if i["jid"] == f"{slug}@{DOMAIN}"]
    assert (await ok("roster", "sync", slug)).out.strip() == "1 roster updates queued"
    await wait_in_roster(agent, f"{slug}@{DOMAIN}")
    assert "unknown company" in await refused(db, "roster", "sync", "no-such-company-x")
    await ok("company", "remove", slug)


async def test_migrate_is_idempotent(db: asyncpg.Connection) -> None:
    applied = await db.fetch("SELECT * FROM schema_migrations ORDER BY version")
    assert applied, "the session's database was migrated"
    directory = await directory_rows(db)
    for _ in range(2):
        result = await ok("migrate")
        assert result.out.strip() == "database is up to date"
    assert await db.fetch("SELECT * FROM schema_migrations ORDER BY version") == applied
    assert await directory_rows(db) == directory


# -- import ---------------------------------------------------------------------


async def test_import_json_then_reimport_updates(db: asyncpg.Connection, tmp_path: Path) -> None:
    one, two = unique_slug("imp"), unique_slug("imp")
    a1, a2, a3 = await register("imp"), await register("imp"), await register("imp")
    data = {
        "companies": [
            {
                "slug": one,
                "name": "Import One",
                "email": "one@import.example",
                "timezone": "Europe/Oslo",
                "hours": "24/7",
                "category": "shop",
                "city": "Oslo",
                "agents": [a1.jid, {"jid": a2.jid, "role": "admin"}],
            },
            {"slug": two, "name": "Import Two"},
        ]
    }
    path = tmp_path / "companies.json"
    path.write_text(json.dumps(data))
    result = await ok("import", str(path))
    assert "2 added, 0 updated, 2 agents added" in result.out
    row = await company_row(db, one)
    assert row is not None
    assert (row["name"], row["email"], row["timezone"], row["hours"], row["category"]) == (
        "Import One",
        "one@import.example",
        "Europe/Oslo",
        "24/7",
        "shop",
    )
    assert row["city"] == "Oslo"
    assert await agents_of(db, one) == {a1.jid: "agent", a2.jid: "admin"}
    assert await company_row(db, two) is not None
    first_id = row["id"]

    # The same file again changes nothing.
    result = await ok("import", str(path))
    assert "0 added, 0 updated, 0 agents added" in result.out

    # A new city and web site, a promoted agent, a new agent: updated in place,
    # never duplicated.
    data["companies"][0]["city"] = "Bergen"
    data["companies"][0]["url"] = "https://one.import.example/"
    data["companies"][0]["agents"] = [{"jid": a1.jid, "role": "admin"}, a2.jid, a3.jid]
    path.write_text(json.dumps(data))
    result = await ok("import", str(path))
    assert "0 added, 1 updated, 1 agents added" in result.out
    assert await db.fetchval("SELECT count(*) FROM companies WHERE slug = $1", one) == 1
    row = await company_row(db, one)
    assert row is not None and row["id"] == first_id and row["city"] == "Bergen"
    assert (row["url"], row["phone"], row["address"]) == ("https://one.import.example/", None, None)
    assert await agents_of(db, one) == {a1.jid: "admin", a2.jid: "agent", a3.jid: "agent"}
    await wait_in_roster(a3, f"{one}@{DOMAIN}")
    for slug in (one, two):
        await ok("company", "remove", slug)


async def test_import_csv_with_agents_and_roles(db: asyncpg.Connection, tmp_path: Path) -> None:
    one, two = unique_slug("csv"), unique_slug("csv")
    b1, b2 = await register("csv"), await register("csv")
    path = tmp_path / "companies.csv"
    path.write_text(
        "slug,name,city,category,timezone,agents\n"
        f"{one},CSV One,Bergen,bakery,Europe/Oslo,{b1.jid} {b2.jid}:admin\n"
        f'{two},"CSV Two, Ltd",,,,\n'
    )
    result = await ok("import", str(path))
    assert "2 added, 0 updated, 2 agents added" in result.out
    row = await company_row(db, one)
    assert row is not None
    assert (row["name"], row["city"], row["category"], row["timezone"]) == (
        "CSV One",
        "Bergen",
        "bakery",
        "Europe/Oslo",
    )
    assert await agents_of(db, one) == {b1.jid: "agent", b2.jid: "admin"}
    row_two = await company_row(db, two)
    assert row_two is not None and row_two["name"] == "CSV Two, Ltd" and row_two["city"] is None
    assert await agents_of(db, two) == {}

    path.write_text(
        "slug,name,city,agents\n"
        f"{one},CSV One,Tromso,{b1.jid}:admin {b2.jid}:admin\n"
        f'{two},"CSV Two, Ltd",,\n'
    )
    result = await ok("import", str(path))
    assert "0 added, 1 updated, 0 agents added" in result.out
    assert (
        await db.fetchval("SELECT count(*) FROM companies WHERE slug = ANY($1::text[])", [one, two])
        == 2
    )
    row = await company_row(db, one)
    assert row is not None and row["city"] == "Tromso"
    assert await agents_of(db, one) == {b1.jid: "admin", b2.jid: "admin"}
    for slug in (one, two):
        await ok("company", "remove", slug)


# -- bad input: one line, exit 2, nothing changed ---------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def existing(db: asyncpg.Connection) -> AsyncIterator[tuple[str, Account]]:
    """A company with one agent, for the refusals to bump into."""
    slug = unique_slug("bad")
    agent = await register("agent")
    await ok("company", "add", slug, "--name", "Original Name")
    await ok("agent", "add", slug, agent.jid)
    yield slug, agent
    await ok("company", "remove", slug)


async def test_unknown_company_is_refused(
    db: asyncpg.Connection, existing: tuple[str, Account]
) -> None:
    missing = unique_slug("missing")
    _, agent = existing
    for args in (
        ("company", "show", missing),
        ("company", "remove", missing),
        ("agent", "add", missing, agent.jid),
        ("agent", "list", missing),
        ("agent", "remove", missing, agent.jid),
    ):
        line = await refused(db, *args)
        assert missing in line and "unknown company" in line, line


async def test_bad_company_arguments_are_refused(
    db: asyncpg.Connection, existing: tuple[str, Account]
) -> None:
    slug, _ = existing
    fresh = unique_slug()
    line = await refused(db, "company", "add", slug, "--name", "Impostor")
    assert "already exists" in line
    row = await company_row(db, slug)
    assert row is not None and row["name"] == "Original Name"

    for bad in ("Bad_Slug", "Upper", "trailing-", "with space", "x" * 65, "dot.ted", "a+b"):
        line = await refused(db, "company", "add", bad, "--name", "X")
        assert "invalid slug" in line, line
    assert "invalid slug" in await refused(db, "company", "show", "Bad_Slug")

    cases = {
        "unknown time zone": ["--timezone", "Mars/Olympus_Mons"],
        "invalid opening hours": ["--hours", "whenever we like"],
        "invalid email": ["--email", "not-an-address"],
        "invalid phone number": ["--phone", "call us"],
        "invalid web site": ["--url", "trattoria.example"],
    }
    for expected, opts in cases.items():
        line = await refused(db, "company", "add", fresh, "--name", "Fresh", *opts)
        assert expected in line, line
    assert "empty" in await refused(db, "company", "add", fresh, "--name", "  ")
    line = await refused(db, "company", "add", fresh)
    assert "--name" in line, line
    assert await company_row(db, fresh) is None


async def test_bad_agent_arguments_are_refused(
    db: asyncpg.Connection, existing: tuple[str, Account]
) -> None:
    slug, agent = existing
    for jid in ("mario", f"mario@{VHOST}/desk", f"@{VHOST}", ""):
        line = await refused(db, "agent", "add", slug, jid)
        assert "invalid JID" in line, line
        line = await refused(db, "agent", "remove", slug, jid)
        assert "invalid JID" in line, line
    line = await refused(db, "agent", "add", slug, agent.jid)
    assert "already an agent" in line
    line = await refused(db, "agent", "add", slug, agent.jid, "--admin")
    assert "already an agent" in line
    assert await agents_of(db, slug) == {agent.jid: "agent"}
    stranger = f"t{RUN}-stranger@{VHOST}"
    line = await refused(db, "agent", "remove", slug, stranger)
    assert "not an agent" in line


async def test_bad_import_file_imports_nothing(
    db: asyncpg.Connection, existing: tuple[str, Account], tmp_path: Path
) -> None:
    slug, _ = existing
    good1, good2 = unique_slug("good"), unique_slug("good")
    bad_csv = tmp_path / "one-bad-row.csv"
    bad_csv.write_text(
        "slug,name,city,agents\n"
        f"{good1},Good One,Oslo,good1@{VHOST}\n"
        f"{good2},Good Two,Oslo,mario\n"  # a JID without a domain
        f"{slug},Renamed By Import,Oslo,\n"
    )
    line = await refused(db, "import", str(bad_csv))
    assert f"{bad_csv}:3" in line and "invalid JID" in line, line

    bad_json = tmp_path / "one-bad-company.json"
    bad_json.write_text(
        json.dumps(
            [
                {"slug": good1, "name": "Good One", "agents": [f"good1@{VHOST}"]},
                {"slug": slug, "name": "Renamed By Import"},
                {"slug": good2, "name": "Good Two", "timezone": "Nowhere/Never"},
            ]
        )
    )
    line = await refused(db, "import", str(bad_json))
    assert "company #3" in line and "time zone" in line, line

    bad_role = tmp_path / "bad-role.json"
    bad_role.write_text(
        json.dumps([{"slug": good1, "name": "G", "agents": [{"jid": "x@y.z", "role": "boss"}]}])
    )
    assert "role" in await refused(db, "import", str(bad_role))

    missing = tmp_path / "does-not-exist.json"
    assert "cannot read" in await refused(db, "import", str(missing))

    for slug_ in (good1, good2):
        assert await company_row(db, slug_) is None
    row = await company_row(db, slug)
    assert row is not None and row["name"] == "Original Name"


async def test_usage_and_configuration_errors_are_one_line(db: asyncpg.Connection) -> None:
    assert "invalid choice" in await refused(db, "frobnicate")
    assert "invalid choice" in await refused(db, "company", "frobnicate")
    assert "invalid choice" in await refused(db, "agent", "promote", "x", "y@z")
    assert "--name" in await refused(db, "company", "add", unique_slug())
    line = await refused(db, "company", "list", ORGCHAT_COMPONENT_PORT="abc")
    assert "ORGCHAT_COMPONENT_PORT" in line
    line = await refused(db, "migrate", ORGCHAT_LIMITS_CUSTOMER_RATE="0")
    assert "customer_rate" in line
    line = await refused(db, "company", "list", ORGCHAT_DATABASE_URL="not-a-dsn")
    assert "database.url" in line and "invalid DSN" in line
    missing_db = TEST_DB_URL.rsplit("/", 1)[0] + f"/orgchat_missing_{RUN}"
    for args in (("migrate",), ("company", "list"), ("run",)):
        # INFO: at DEBUG, `run` may log asyncio's own start-up line before failing.
        line = await refused(db, *args, ORGCHAT_DATABASE_URL=missing_db, ORGCHAT_LOG_LEVEL="INFO")
        assert "database.url" in line and "does not exist" in line, line


# -- `orgchat run` refuses example secrets outside dev mode -----------------------


async def test_run_refuses_the_example_secret_outside_dev_mode(tmp_path: Path) -> None:
    """Pointed at a listener of our own: with dev mode the process connects to it
    (so the check can fail); without, it exits at once with one line and never connects."""
    connections: list[bytes] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(await reader.read(200))
        writer.close()

    async def connected() -> bool:
        return bool(connections)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = str(server.sockets[0].getsockname()[1])
    # PostgreSQL on a dead port: the control process must not touch the test
    # database (it would take roster jobs of the session's component).
    isolated = {
        "ORGCHAT_COMPONENT_PORT": port,
        "ORGCHAT_DATABASE_URL": "postgresql://orgchat:elsewhere@127.0.0.1:9/none",
        "ORGCHAT_REDIS_PREFIX": f"orgchat-test-cli-{RUN}",
    }
    try:
        control = ComponentProcess(tmp_path, "dev-mode", **isolated)
        await control.start(wait=False)
        try:
            await until(connected, "dev-mode connection")
        finally:
            await control.kill()
        assert b"jabber:component:accept" in connections[0]
        connections.clear()

        env = component_env(**isolated, ORGCHAT_COMPONENT_READY_FILE=str(tmp_path / "ready"))
        del env["ORGCHAT_DEV_MODE"]
        assert env.get("ORGCHAT_COMPONENT_SECRET") is None  # the example secret, by default
        result = await orgchat("run", env=env)
        [line] = result.err.splitlines()
        assert line.startswith("orgchat: error: ") and "secret" in line, line
        assert result.code == 2
        await asyncio.sleep(0.2)  # a connection attempt would have been accepted by now
        assert connections == []
        assert not (tmp_path / "ready").exists()
    finally:
        server.close()
        await server.wait_closed()


# -- changes reach the running component without a restart ------------------------


async def test_company_added_with_the_cli_answers_at_once(
    db: asyncpg.Connection, clients: Any
) -> None:
    slug = unique_slug("live")
    company_jid = f"{slug}@{DOMAIN}"
    customer = await clients(await register("customer"))
    agent_account = await register("agent")
    await ok("company", "add", slug, "--name", "Live Added")
    await ok("agent", "add", slug, agent_account.jid)
    await wait_in_roster(agent_account, company_jid)
    agent = await clients(agent_account)

    customer.send_xml(chat(company_jid, "are you open?"))
    got = await agent.inbox.expect(is_message("are you open?"))
    assert (got.get("from") or "").startswith(slug + "+")
    count = await db.fetchval(
        "SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id "
        "JOIN companies co ON co.id = c.company_id WHERE co.slug = $1",
        slug,
    )
    assert count == 1
    await ok("company", "remove", slug)


async def test_agent_remove_takes_effect_at_once(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection
) -> None:
    company = await make_company(agents=2)
    staying_account, leaving_account = company.agents
    staying = await clients(staying_account)
    leaving = await clients(leaving_account)
    customer = await clients(await register("customer"))
    customer.send_xml(chat(company.jid, "before"))
    got = await leaving.inbox.expect(is_message("before"))
    await staying.inbox.expect(is_message("before"))
    conv_jid = (got.get("from") or "").split("/")[0]

    await ok("agent", "remove", company.slug, leaving_account.jid)
    assert leaving_account.jid not in await agents_of(db, company.slug)

    async def out_of_roster() -> bool:
        return all(item["jid"] != company.jid for item in await roster_of(leaving_account))

    await until(out_of_roster, "company removed from the agent's roster")
    # The component has reloaded the company: a query answers forbidden now.
    await until(
        lambda: _is(iq_error(leaving, conv_jid, f'<query xmlns="{DISCO_INFO}"/>'), "forbidden"),
        "conversation closed to the removed agent",
    )
    assert any(item["jid"] == company.jid for item in await roster_of(staying_account))

    mid = new_id()
    leaving.send_xml(chat(conv_jid, "I still work here", mid))
    err = await leaving.inbox.expect(is_error("forbidden", frm=conv_jid))
    assert err.get("id") == mid
    customer.send_xml(chat(company.jid, "after"))
    await staying.inbox.expect(is_message("after"))
    await leaving.inbox.absent(is_message("after"), wait=1.0)
    await customer.inbox.absent(is_message("I still work here"), wait=0.1)
    assert await db.fetchval("SELECT count(*) FROM messages WHERE client_id = $1", mid) == 0


async def test_company_remove_takes_effect_at_once(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection
) -> None:
    company = await make_company(agents=1)
    agent = await clients(company.agents[0])
    customer = await clients(await register("customer"))
    customer.send_xml(chat(company.jid, "hello"))
    await agent.inbox.expect(is_message("hello"))
    assert await iq_error(customer, company.jid, f'<query xmlns="{DISCO_INFO}"/>') is None

    await ok("company", "remove", company.slug)
    assert await company_row(db, company.slug) is None
    await until(
        lambda: _is(
            iq_error(customer, company.jid, f'<query xmlns="{DISCO_INFO}"/>'), "item-not-found"
        ),
        "company gone from the running component",
    )
    mid = new_id()
    customer.send_xml(chat(company.jid, "anyone?", mid))
    err = await customer.inbox.expect(is_error("item-not-found", frm=company.jid))
    assert err.get("id") == mid
    await agent.inbox.absent(is_message("anyone?"), wait=0.5)

    async def out_of_roster() -> bool:
        return all(item["jid"] != company.jid for item in await roster_of(company.agents[0]))

    await until(out_of_roster, "company removed from the agent's roster")


async def _is(condition: Any, expected: str) -> bool:
    return bool(await condition == expected)


# -- the agent desk ---------------------------------------------------------------


async def desk_rows(db: asyncpg.Connection) -> list[tuple[Any, ...]]:
    """Every desk row: with directory_rows, the "nothing changed" reference."""
    rows: list[tuple[Any, ...]] = []
    for table in ("desk_conversations", "desk_events", "desk_notes", "canned_replies"):
        rows += [(table, *r.values()) for r in await db.fetch(f"SELECT * FROM {table}")]
    return rows


async def desk_refused(db: asyncpg.Connection, *args: str) -> str:
    before = await desk_rows(db)
    line = await refused(db, *args)
    assert await desk_rows(db) == before, f"orgchat {' '.join(args)} changed the desk"
    return line


async def test_desk_and_canned_replies(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection
) -> None:
    company = await make_company(agents=2, name="CLI Desk")
    mario, luigi = (a.jid for a in company.agents)
    agent = await clients(company.agents[0])
    customer = await clients(await register("customer"))
    customer.send_xml(chat(company.jid, "hello desk"))
    got = await agent.inbox.expect(is_message("hello desk"))
    conv = (got.get("from") or "").split("/")[0]
    local = conv.split("@", 1)[0]

    [line] = (await ok("desk", "list", company.slug)).out.splitlines()
    assert line.split("\t")[:3] == [conv, "open", "-"] and line.endswith("hello desk")

    assert "claimed by " + mario in (await ok("desk", "claim", conv, mario)).out
    assert "from " + mario + " to " + luigi in (await ok("desk", "transfer", local, luigi)).out
    assert "resolved" in (await ok("desk", "resolve", conv)).out
    assert (await ok("desk", "list", company.slug)).out == ""
    assert (await ok("desk", "list", company.slug, "--all")).out.split("\t")[1:3] == [
        "resolved",
        luigi,
    ]
    assert "reopen it" in await desk_refused(db, "desk", "claim", conv, mario)
    assert "open now" in (await ok("desk", "reopen", conv)).out
    assert "open already" in await desk_refused(db, "desk", "reopen", conv)
    stranger = f"t{RUN}-stranger@{VHOST}"
    assert "not an agent" in await desk_refused(db, "desk", "transfer", conv, stranger)
    assert "every online agent" in (await ok("desk", "release", conv)).out
    assert "invalid conversation" in await desk_refused(db, "desk", "resolve", company.slug)
    assert "invalid conversation" in await desk_refused(db, "desk", "resolve", "x+y@z")
    missing = f"{company.slug}+zzzzzzzzzz@{DOMAIN}"
    assert "no conversation" in await desk_refused(db, "desk", "resolve", missing)
    assert "invalid JID" in await desk_refused(db, "desk", "claim", conv, "mario")

    assert "note" in (await ok("desk", "note", conv, "Called back, all fine", "--agent", mario)).out
    assert "--agent" in await desk_refused(db, "desk", "note", conv, "no agent")
    assert "not an agent" in await desk_refused(db, "desk", "note", conv, "x", "--agent", stranger)
    assert "empty" in await desk_refused(db, "desk", "note", conv, "  ", "--agent", mario)
    await customer.inbox.absent(is_message("Called back, all fine"), wait=0.5)
    log = (await ok("desk", "log", conv)).out.splitlines()
    assert log[0] == "status: open; claimed by: -"
    kinds = [row.split("\t")[1:3] for row in log[1:]]
    assert kinds == [
        ["claim", "operator"],
        ["transfer", "operator"],
        ["resolve", "operator"],
        ["reopen", "operator"],
        ["release", "operator"],
        ["note", "operator"],
    ]
    assert log[-1].endswith(f"{mario}: Called back, all fine")

    added = (await ok("canned", "add", company.slug, "Hours", "Open 9 to 18")).out
    reply_id = added.split()[3]
    assert (await ok("canned", "list", company.slug)).out == f"{reply_id}\tHours\tOpen 9 to 18\n"
    assert "already" in await desk_refused(db, "canned", "add", company.slug, "Hours", "again")
    assert "title and a text" in await desk_refused(db, "canned", "add", company.slug, "T", " ")
    assert "unknown company" in await desk_refused(db, "canned", "list", unique_slug("none"))
    assert "invalid int" in await desk_refused(db, "canned", "remove", company.slug, "abc")
    await ok("canned", "remove", company.slug, reply_id)
    assert "no canned reply" in await desk_refused(db, "canned", "remove", company.slug, reply_id)
    assert (await ok("canned", "list", company.slug)).out == ""


async def test_desk_without_postgresql_exits_1(db: asyncpg.Connection) -> None:
    down = TEST_DB_URL.replace(":5432/", f":{free_port()}/")
    for args in (("desk", "list", "some-shop"), ("canned", "list", "some-shop")):
        result = await orgchat(*args, env=component_env(ORGCHAT_DATABASE_URL=down))
        assert result.code == 1, result
        assert result.err.startswith("orgchat: error: database unavailable"), result.err
        assert len(result.err.splitlines()) == 1


# -- the archive: retention, export, forget (issue 6) -----------------------------


async def archive_rows(db: asyncpg.Connection) -> list[tuple[Any, ...]]:
    """Conversations, messages and contacts: what export, prune and forget touch."""
    counts = await db.fetchrow(
        "SELECT (SELECT count(*) FROM conversations) AS c, (SELECT count(*) FROM messages) AS m,"
        " (SELECT count(*) FROM contacts) AS k, (SELECT count(*) FROM requests) AS r"
    )
    return [tuple(counts.values())] if counts else []


async def archive_refused(db: asyncpg.Connection, *args: str) -> str:
    """As refused(), and the archive is untouched too."""
    before = await archive_rows(db)
    line = await refused(db, *args)
    assert await archive_rows(db) == before, f"orgchat {' '.join(args)} changed the archive"
    return line


async def write(company: Any, agent: Any, customer: Any, *lines: str) -> str:
    """The customer writes each line to the company; returns the conversation address."""
    conv = ""
    for line in lines:
        customer.send_xml(chat(company.jid, line))
        got = await agent.inbox.expect(is_message(line))
        conv = got.get("from", "").split("/")[0]
    return conv


async def history(db: asyncpg.Connection, customer: str) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT m.id, m.ts, m.direction, m.sender_jid, m.body, m.stanza_id, m.thread"
        " FROM messages m JOIN conversations c ON c.id = m.conversation_id"
        " WHERE c.customer_jid = $1 ORDER BY m.id",
        customer,
    )


async def test_retention_export_prune_and_forget(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection, rds: Any
) -> None:
    company = await make_company(agents=1, name="Kept Shop", retention_days=30)
    assert "messages: kept 30 days" in (await ok("company", "show", company.slug)).out
    row = await company_row(db, company.slug)
    assert row is not None and row["retention_days"] == 30
    agent = await clients(company.agents[0])
    account = await register("customer")
    customer = await clients(account)
    conv = await write(company, agent, customer, "first", "second", "third")
    agent.send_xml(chat(conv, "answer"))
    await customer.inbox.expect(is_message("answer"))
    rows = await history(db, account.jid)

    # Export: the same document whichever way the conversation is named.
    exported = json.loads((await ok("export", conv)).out)
    by_parties = await ok("export", "--customer", account.jid, "--company", company.slug)
    assert json.loads(by_parties.out) == exported
    assert exported["conversation"] == conv
    assert exported["company"] == {
        "slug": company.slug,
        "name": "Kept Shop",
        "address": company.jid,
    }
    assert exported["customer"]["jid"] == account.jid
    assert [
        (m["direction"], m["sender"], m["body"], m["stanza_id"], m["thread"])
        for m in exported["messages"]
    ] == [(r["direction"], r["sender_jid"], r["body"], r["stanza_id"], r["thread"]) for r in rows]
    assert [dt.datetime.fromisoformat(m["ts"]) for m in exported["messages"]] == [
        r["ts"] for r in rows
    ]

    # Prune by hand: what is older than 30 days goes, the rest stays.
    await db.execute(
        "UPDATE messages SET ts = ts - interval '31 days' WHERE id = ANY($1::bigint[])",
        [r["id"] for r in rows[:2]],
    )
    pruned = await ok("archive", "prune")
    assert f"{company.slug}: 2 messages older than 30 days deleted" in pruned.out
    assert [r["body"] for r in await history(db, account.jid)] == ["third", "answer"]
    assert f"{company.slug}: 0 messages" in (await ok("archive", "prune")).out

    # Forget: asks for --yes first, then deletes everything about the customer.
    counter = f"{REDIS_PREFIX}:{DOMAIN}:limit:60:customer:{account.jid}"
    assert await rds.exists(counter)
    assert "--yes" in await archive_refused(db, "forget", account.jid)
    forgot = await ok("forget", account.jid, "--yes")
    assert "conversations:      1" in forgot.out and "messages:           2" in forgot.out
    assert "1 rate-limit counters and the presence entry deleted" in forgot.out
    assert await history(db, account.jid) == []
    assert (
        await db.fetchval("SELECT count(*) FROM conversations WHERE customer_jid = $1", account.jid)
        == 0
    )
    assert not await rds.exists(counter)
    assert "no conversation" in await archive_refused(db, "export", conv)
    # Writing again starts a new conversation, under a new address.
    assert await write(company, agent, customer, "again") != conv


async def test_the_component_sweeps_expired_messages(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection, tmp_path: Path
) -> None:
    company = await make_company(agents=1, name="Swept Shop", retention_days=1)
    agent = await clients(company.agents[0])
    account = await register("customer")
    await write(company, agent, await clients(account), "old news", "fresh news")
    rows = await history(db, account.jid)
    await db.execute("UPDATE messages SET ts = ts - interval '2 days' WHERE id = $1", rows[0]["id"])
    sweeper = ComponentProcess(tmp_path, "sweeper", ORGCHAT_ARCHIVE_RETENTION_INTERVAL="0.3")
    await sweeper.start()
    try:

        async def swept() -> bool:
            return [r["body"] for r in await history(db, account.jid)] == ["fresh news"]

        await until(swept, "the expired message deleted by the component's sweep")
    finally:
        assert await sweeper.stop() == 0, sweeper.log_tail()
    assert "archive.pruned" in sweeper.log_path.read_text()


async def test_bad_archive_arguments_are_refused(
    db: asyncpg.Connection, existing: tuple[str, Account]
) -> None:
    slug, agent = existing
    fresh = unique_slug()
    for days in ("0", "-3", "abc", "36501", "1.5"):
        line = await refused(db, "company", "add", fresh, "--name", "F", "--retention-days", days)
        assert "--retention-days" in line, line
    assert await company_row(db, fresh) is None
    nowhere = f"{slug}+aaaaaaaaaa@{DOMAIN}"
    cases: dict[tuple[str, ...], str] = {
        ("export",): "conversation address",
        ("export", f"{slug}@{DOMAIN}"): "not a conversation address",
        ("export", f"{slug}+aaaaaaaaaa@elsewhere.example"): "not a conversation address",
        ("export", nowhere, "--customer", agent.jid): "not both",
        ("export", "--customer", agent.jid): "--company",
        ("export", "--company", slug): "--customer",
        ("export", nowhere): "no conversation",
        ("export", "--customer", f"nobody@{VHOST}", "--company", slug): "no conversation",
        ("export", "--customer", "not a jid", "--company", slug): "invalid JID",
        ("export", "--customer", agent.jid, "--company", "Bad_Slug"): "invalid slug",
        ("export", "--customer", agent.jid, "--company", unique_slug("none")): "unknown company",
        ("forget",): "JID",
        ("forget", "not a jid", "--yes"): "invalid JID",
        ("forget", f"someone@{VHOST}"): "--yes",
        ("forget", f"{slug}@{DOMAIN}", "--yes"): "not a customer",
        ("archive",): "archive",
        ("archive", "prune", "extra"): "unrecognized",
    }
    for args, expected in cases.items():
        line = await archive_refused(db, *args)
        assert expected in line, (args, line)


async def test_company_emails_back_on_after_an_unsubscribe(db: asyncpg.Connection) -> None:
    slug = f"t{RUN}-mails"
    await ok("company", "add", slug, "--name", "Mails", "--email", "orders@mails.example")
    address = f"{slug}@{DOMAIN}"
    off = await ok("company", "emails", slug, "off")  # what an unsubscribe link does
    assert "notification emails off (orders@mails.example)" in off.out
    assert await db.fetchval("SELECT email_opt_out FROM contacts WHERE address = $1", address)
    on = await ok("company", "emails", slug, "on")
    assert "notification emails on" in on.out
    assert not await db.fetchval("SELECT email_opt_out FROM contacts WHERE address = $1", address)
    assert "unknown company" in await refused(db, "company", "emails", f"t{RUN}-nope", "on")


# -- abandoned guest accounts expire (issue 14) -----------------------------------

#: Older than guests.expire_after_days (30 by default).
LONG_AGO = dt.timedelta(days=40)


async def register_guest() -> Account:
    """A guest account as the web page names it (web/xmpp.js, newGuest)."""
    account = Account(f"guest-{secrets.token_hex(4)}@{VHOST}", secrets.token_hex(8))
    await api("register", {"user": account.user, "host": VHOST, "password": account.password})
    return account


async def exists(account: Account) -> bool:
    """ejabberd's check_account: 0 if the account exists, 1 if not."""
    return await api("check_account", {"user": account.user, "host": VHOST}) == 0


async def last_seen(account: Account) -> dict[str, str]:
    result: dict[str, str] = await api("get_last", {"user": account.user, "host": VHOST})
    return result


async def set_long_ago(account: Account, *, logged_out: bool) -> None:
    """Make the account look abandoned: last activity 40 days ago (ejabberd's set_last).

    A client that logged out is recorded by ejabberd when its session ends:
    wait for that first, or the record would overwrite ours.
    """

    async def offline() -> bool:
        return (await last_seen(account))["status"] != "ONLINE"

    if logged_out:
        await until(offline, f"{account.jid} offline in ejabberd's last activity")
    when = int((dt.datetime.now(dt.UTC) - LONG_AGO).timestamp())
    args = {"user": account.user, "host": VHOST, "timestamp": when, "status": "gone"}
    assert await api("set_last", args) == 0


async def conversations_of(db: asyncpg.Connection, jid: str) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM conversations WHERE customer_jid = $1", jid
    )
    return count


async def abandoned_guests(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection
) -> tuple[Account, Account, Account]:
    """(abandoned guest, online guest, customer of another name): each with a
    conversation, all three last seen 40 days ago (the online one is online)."""
    company = await make_company(agents=1, name="Tyre Shop")
    agent = await clients(company.agents[0])
    gone, online, customer = await register_guest(), await register_guest(), await register("old")
    for account in (gone, online, customer):
        client = await clients(account)
        conv = await write(company, agent, client, f"is my tyre ready? ({account.user})")
        agent.send_xml(chat(conv, f"tomorrow, {account.user}"))
        await client.inbox.expect(is_message(f"tomorrow, {account.user}"))
        if account is not online:
            await client.stop()
        await set_long_ago(account, logged_out=account is not online)
        assert await conversations_of(db, account.jid) == 1
    assert (await last_seen(online))["status"] == "ONLINE"
    return gone, online, customer


async def test_guests_expire_removes_abandoned_guests_with_their_data(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection, rds: Any
) -> None:
    gone, online, customer = await abandoned_guests(make_company, clients, db)
    counter = f"{REDIS_PREFIX}:{DOMAIN}:limit:60:customer:{gone.jid}"
    assert await rds.exists(counter)

    # --dry-run: listed, nothing touched.
    dry = await ok("guests", "expire", "--dry-run")
    assert f"would remove {gone.jid} (last online " in dry.out
    assert online.jid not in dry.out and customer.jid not in dry.out
    assert re.search(
        r"^\d+ guest accounts? not online for 30 days would be removed$", dry.out, re.M
    )
    assert await exists(gone) and await conversations_of(db, gone.jid) == 1

    # Not yet abandoned under a longer period.
    assert gone.jid not in (await ok("guests", "expire", "--older-than", "41")).out
    assert await exists(gone)

    done = await ok("guests", "expire")
    assert f"removed {gone.jid} (last online " in done.out
    assert f"{gone.jid} " in done.out and "): 1 conversations, 2 messages forgotten" in done.out
    assert re.search(r"^\d+ guest accounts? not online for 30 days removed$", done.out, re.M)
    assert not await exists(gone)
    user_names = await api("registered_users", {"host": VHOST})
    assert gone.user not in user_names
    assert await conversations_of(db, gone.jid) == 0
    assert await db.fetchval("SELECT count(*) FROM messages WHERE sender_jid = $1", gone.jid) == 0
    assert not await rds.exists(counter)
    # The online guest and the customer of another name stay, with their data.
    for kept in (online, customer):
        assert kept.user in user_names and await exists(kept)
        assert await conversations_of(db, kept.jid) == 1
    # Nothing left to do for this guest the next time.
    assert gone.jid not in (await ok("guests", "expire")).out


async def test_the_component_sweeps_abandoned_guests(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection, tmp_path: Path
) -> None:
    gone, online, customer = await abandoned_guests(make_company, clients, db)
    sweepers = [
        ComponentProcess(tmp_path, f"guest-sweeper{n}", ORGCHAT_GUESTS_SWEEP_INTERVAL="1")
        for n in (1, 2)
    ]
    for sweeper in sweepers:
        await sweeper.start()
    try:

        async def swept() -> bool:
            return not await exists(gone) and await conversations_of(db, gone.jid) == 0

        await until(swept, "the abandoned guest removed by the component's sweep", timeout=15)
        await asyncio.sleep(2)  # a few more sweeps, which find nothing more to do
    finally:
        for sweeper in sweepers:
            assert await sweeper.stop() == 0, sweeper.log_tail()
    logs = "".join(sweeper.log_path.read_text() for sweeper in sweepers)
    assert logs.count(f"jid={gone.jid}") == 1, "expired once, by one process"
    assert "event=guests.swept" in logs
    for kept in (online, customer):
        assert await exists(kept) and await conversations_of(db, kept.jid) == 1
