"""Guest accounts: who is a guest, who is abandoned, and a pass and a sweep
against a scripted ejabberd API (no server)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from component.config import GuestSettings
from component.ejabberd_api import ApiError, EjabberdApi, LastActivity
from component.features.guests import expiry as expiry_mod
from component.features.guests.expiry import GuestExpiry, sweep_forever
from component.features.guests.rules import GUEST_NAME, guests_among, is_abandoned, is_guest
from storage.errors import Unavailable
from storage.models import Forgotten

VHOST = "localhost"
NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
DAYS_30 = dt.timedelta(days=30)


@pytest.mark.parametrize(
    ("jid", "guest"),
    [
        ("guest-0b5909b7@localhost", True),
        ("guest-00000000@localhost", True),
        ("guest-0b5909b7@example.org", False),  # another host
        ("guest-0B5909B7@localhost", False),  # the page writes lower case
        ("guest-0b5909b@localhost", False),
        ("guest-0b5909b77@localhost", False),
        ("guest-anna1234@localhost", False),
        ("guest0b5909b7@localhost", False),
        ("xguest-0b5909b7@localhost", False),
        ("guest-0b5909b7", False),
        ("anna@localhost", False),
    ],
)
def test_a_guest_is_the_page_s_name_on_the_service_s_host(jid: str, guest: bool) -> None:
    assert is_guest(jid, VHOST) is guest


def test_guests_among_the_accounts_of_the_host() -> None:
    users = ["anna", "guest-0b5909b7", "guest-zz", "guest-d07dc55a", "mario"]
    assert guests_among(users, VHOST) == ["guest-0b5909b7@localhost", "guest-d07dc55a@localhost"]


def test_the_page_creates_names_of_the_pattern() -> None:
    """web/xmpp.js (newGuest) and GUEST_NAME must agree, or guests never expire."""
    source = (Path(__file__).parents[2] / "web" / "xmpp.js").read_text()
    made = re.search(r"`guest-\$\{randomToken\((\d+)\)\}@\$\{host\}`", source)
    assert made, "newGuest in web/xmpp.js no longer builds guest-${randomToken(N)}@${host}"
    assert "b.toString(16).padStart(2, '0')" in source  # randomToken: 2 lower-case hex a byte
    digits = 2 * int(made.group(1))
    assert GUEST_NAME.fullmatch("guest-" + "0f" * (digits // 2))
    assert not GUEST_NAME.fullmatch("guest-" + "0" * (digits - 1))
    assert not GUEST_NAME.fullmatch("guest-" + "0" * (digits + 1))


def last(days_ago: float, status: str = "Disconnected") -> LastActivity:
    return LastActivity(NOW - dt.timedelta(days=days_ago), status)


@pytest.mark.parametrize(
    ("seen", "abandoned"),
    [
        (last(31), True),
        (last(30), True),
        (last(29.9), False),
        (last(1), False),
        (last(400, "Registered but didn't login"), True),
        (last(31, "ONLINE"), False),  # online: never, whatever the time says
        (last(31, "NOT FOUND"), False),  # ejabberd does not know: never
    ],
)
def test_abandoned_after_the_time_offline(seen: LastActivity, abandoned: bool) -> None:
    assert is_abandoned(seen, NOW, DAYS_30) is abandoned


class ScriptedApi(EjabberdApi):
    """ejabberd's HTTP API answering from a dict of accounts: user -> get_last."""

    def __init__(self, accounts: dict[str, dict[str, str]]) -> None:
        super().__init__("http://ejabberd.invalid/api")
        self.accounts = accounts
        self.calls: list[str] = []
        self.down = False

    async def call(self, command: str, args: dict[str, Any]) -> Any:
        self.calls.append(f"{command} {args.get('user', args.get('host'))}")
        if self.down:
            raise ApiError(f"{command}: connection refused")
        if command == "registered_users":
            return sorted(self.accounts)
        if command == "get_last":
            return self.accounts[args["user"]]
        if command == "unregister":
            self.accounts.pop(args["user"], None)
            return ""
        raise AssertionError(command)


def ago(days: float) -> dict[str, str]:
    ts = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    return {"timestamp": ts.isoformat().replace("+00:00", "Z"), "status": "Disconnected"}


@pytest.mark.asyncio
async def test_last_activity_reads_both_timestamp_forms() -> None:
    api = ScriptedApi(
        {
            "a": {"timestamp": "2001-09-09T01:46:40Z", "status": "gone"},
            "b": {"timestamp": "2026-12-06T13:41:13.062302Z", "status": "ONLINE"},
        }
    )
    assert await api.last_activity("a@localhost") == LastActivity(
        dt.datetime(2001, 9, 9, 1, 46, 40, tzinfo=dt.UTC), "gone"
    )
    b = await api.last_activity("b@localhost")
    assert b.online and b.at.tzinfo is not None


def stores(forget_fails: bool = False) -> tuple[Any, Any, list[str]]:
    """PostgreSQL and Redis stand-ins that record what was forgotten."""
    forgotten: list[str] = []

    async def forget(jid: str) -> Forgotten:
        if forget_fails:
            raise Unavailable("PostgreSQL unavailable")
        forgotten.append(jid)
        return Forgotten(1, 2, 0, 0, 0, 0, 0, 0)

    async def snapshot() -> Any:
        return SimpleNamespace(agents=[])

    async def redis_forget(jid: str) -> int:
        return 0

    pg = SimpleNamespace(
        customers=SimpleNamespace(forget=forget), directory=SimpleNamespace(snapshot=snapshot)
    )
    rd = SimpleNamespace(
        limits=SimpleNamespace(forget=redis_forget), presence=SimpleNamespace(forget=redis_forget)
    )
    return pg, rd, forgotten


@pytest.mark.asyncio
async def test_a_pass_removes_the_abandoned_guests_only_up_to_the_limit() -> None:
    api = ScriptedApi(
        {
            "anna": ago(90),  # not a guest
            "guest-0000000a": ago(31),
            "guest-0000000b": ago(2),
            "guest-0000000c": {**ago(90), "status": "ONLINE"},
            "guest-0000000d": ago(45),
            "guest-0000000e": ago(60),
        }
    )
    pg, rd, forgotten = stores()
    expiry = GuestExpiry(api=api, pg=pg, rd=rd, vhost=VHOST)

    dry = [g.jid async for g in expiry.run(DAYS_30, dry_run=True)]
    assert dry == [
        "guest-0000000a@localhost",
        "guest-0000000d@localhost",
        "guest-0000000e@localhost",
    ]
    assert forgotten == [] and not any(c.startswith("unregister") for c in api.calls)

    done = [g async for g in expiry.run(DAYS_30, limit=2)]
    assert [g.jid for g in done] == ["guest-0000000a@localhost", "guest-0000000d@localhost"]
    assert all(g.report is not None and g.report.stored.messages == 2 for g in done)
    assert forgotten == ["guest-0000000a@localhost", "guest-0000000d@localhost"]
    assert sorted(api.accounts) == ["anna", "guest-0000000b", "guest-0000000c", "guest-0000000e"]


@pytest.mark.asyncio
async def test_data_is_forgotten_before_the_account_goes() -> None:
    """PostgreSQL down: the account stays, so the next pass finds the guest again."""
    api = ScriptedApi({"guest-0000000a": ago(31)})
    pg, rd, _ = stores(forget_fails=True)
    with pytest.raises(Unavailable):
        _ = [g async for g in GuestExpiry(api=api, pg=pg, rd=rd, vhost=VHOST).run(DAYS_30)]
    assert "guest-0000000a" in api.accounts

    pg, rd, forgotten = stores()
    assert [g.jid async for g in GuestExpiry(api=api, pg=pg, rd=rd, vhost=VHOST).run(DAYS_30)] == [
        "guest-0000000a@localhost"
    ]
    assert forgotten == ["guest-0000000a@localhost"] and not api.accounts


@pytest.mark.asyncio
async def test_the_sweep_runs_under_the_lease_and_survives_failures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Passes only with the lease; ejabberd or PostgreSQL down: logged, next pass."""
    monkeypatch.setattr(expiry_mod.random, "uniform", lambda a, b: 0.0)
    api = ScriptedApi({"guest-0000000a": ago(31), "guest-0000000b": ago(31)})
    pg, rd, forgotten = stores()
    grants = iter([False, True, True, True])
    leases: list[tuple[str, float]] = []
    api_calls_at_take: list[int] = []

    async def take(name: str, seconds: float) -> bool:
        leases.append((name, seconds))
        api_calls_at_take.append(len(api.calls))
        if len(leases) == 2:
            api.down = True  # the first pass with the lease fails
        elif len(leases) == 3:
            api.down = False
        return next(grants)

    pg.leases = SimpleNamespace(take=take)
    settings = GuestSettings(expire_after_days=30, sweep_interval=0.01, sweep_batch=1)
    task = asyncio.create_task(
        sweep_forever(GuestExpiry(api=api, pg=pg, rd=rd, vhost=VHOST), settings)
    )
    for _ in range(500):
        if len(leases) >= 4 and not api.accounts:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert leases[0] == ("guest-sweep", 0.01)
    assert api_calls_at_take[:2] == [0, 0], "a pass without the lease asked ejabberd"
    # Pass 1: no lease. Pass 2: the API is down. Passes 3 and 4: one guest each (batch 1).
    assert forgotten == ["guest-0000000a@localhost", "guest-0000000b@localhost"]
    assert not api.accounts


@pytest.mark.asyncio
async def test_no_sweep_when_switched_off() -> None:
    api = ScriptedApi({"guest-0000000a": ago(31)})
    pg, rd, _ = stores()
    settings = GuestSettings(sweep_interval=0)
    await asyncio.wait_for(
        sweep_forever(GuestExpiry(api=api, pg=pg, rd=rd, vhost=VHOST), settings), 1
    )
    assert api.calls == []


def test_production_allows_every_api_command_the_component_calls() -> None:
    """production.yml lists the /api commands it allows; a missing one is a 403 in production."""
    root = Path(__file__).parents[2]
    called = set(
        re.findall(r'self\.call\(\s*"(\w+)"', (root / "component" / "ejabberd_api.py").read_text())
    )
    assert {"registered_users", "get_last", "unregister", "add_rosteritem"} <= called
    config = (root / "ejabberd-config" / "production.yml").read_text()
    what = config.split('"orgchat component":', 1)[1].split("\n\n", 1)[0]
    allowed = set(re.findall(r"^\s+- (\w+)\s*$", what, re.M))
    assert called <= allowed, f"not allowed in production.yml: {sorted(called - allowed)}"
