"""The fault suite (``make faults``): load from many customers while each fault is
injected in turn, and an account of every message.

Against the development stack that ``make up`` runs (ejabberd, PostgreSQL,
Redis, the SMTP sink, two supervised component processes on
``biz.localhost``): ``--customers`` customers (default 40) each write to one
company at ``--rate`` messages per second (default 0.4: the default
per-customer rate limit stays on), every message asking for a receipt; the
company's two agents are online. After ``--duration`` seconds of load the
generator waits until every message is accounted for (or ``--settle``
seconds pass) and counts, per fault:

* **sent**: written on a customer's live connection (a customer whose
  connection is down sends nothing);
* **receipted**: acknowledged (XEP-0184): archived;
* **delivered**: reached at least one agent; **duplicated**: reached the same
  agent more than once;
* **bounced**: answered with an error (the sender knows, and may retry);
* **lost**: sent, never delivered and never answered with an error: lost
  silently, what must never happen (but for what is in flight on a
  connection killed with ``kill -9``); **lost_in_flight**: those of them sent
  within a second of the fault's start (in flight at a ``kill -9``, never
  receipted); **receipted_lost**: receipted (archived) and still never
  delivered: what no fault may cause;
* **stranded**: archived as pending (waiting for an agent) while both agents
  were online;
* **recovery**: seconds from the moment the fault is lifted until the first
  message sent after it is receipted.

Faults (``--only`` picks some): ``none``, ``kill9`` (one component process,
restarted by its supervisor), ``rolling`` (SIGTERM to each process in turn),
``postgres`` (restart), ``redis`` (restart, data lost), ``ejabberd``
(restart: every client reconnects), ``smtp`` (the relay down for 8 s),
``hostile`` (one customer sends deep IQs, huge nicknames, searches and
chat-state floods for 10 s), ``agent-stalls`` (one agent stops reading its
socket for a while), ``push-stalls`` (a push service that never answers,
pushed to for offline customers; ``control_push_s``: how long after an
answer a customer whose push service works is pushed to, which should stay
``notify.customer_push_after`` plus a poll). ``p50_ms``/``p99_ms``: from send to receipt, for the
messages of everybody (the attacker's included).

Prints one table and writes ``bench/results/faults.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bench.run import exit_on_signals

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / ".run"
RESULTS = REPO / "bench" / "results"
STACK = REPO / "scripts" / "stack.sh"
API = "http://127.0.0.1:5280/api"
VHOST = "localhost"
DOMAIN = "biz.localhost"
DB_URL = "postgresql://orgchat:orgchat-dev@127.0.0.1:5432/orgchat"
REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_PREFIX = "orgchat"  #: redis.prefix of config/dev.toml (its default)
PASSWORD = "faults-dev-password"
COMPANY = "faults-co"
AGENTS = ("faults-agent-1", "faults-agent-2")
#: Customers of the push-stalls fault (offline, with push subscriptions).
PUSH_CUSTOMERS = tuple(f"faults-push-{n}" for n in range(6))
NS_NOTIFY = "urn:orgchat:notify:0"
COMPONENTS = int(os.environ.get("ORGCHAT_DEV_COMPONENTS", "2"))

_MESSAGE = re.compile(rb"<message\b[^>]*?(?:/>|>.*?</message>)", re.S)
_IQ = re.compile(rb"<iq\b[^>]*?(?:/>|>.*?</iq>)", re.S)
_PROBE = re.compile(rb"<body>push-probe (\d+)</body>")
_ATTR = {
    name: re.compile(rb"\b" + name + rb"=['\"]([^'\"]*)['\"]") for name in (b"id", b"type", b"from")
}
_RECEIVED = re.compile(rb"<received\b[^>]*?id=['\"]([^'\"]+)['\"]")
_BODY = re.compile(rb"<body>f(\d+):(\d+):")
_CONDITION = re.compile(rb"<([a-z-]+) xmlns=['\"]urn:ietf:params:xml:ns:xmpp-stanzas['\"]")


@dataclasses.dataclass
class Ledger:
    """Every message of one run, by id ``<run>-<seq>``."""

    sent: dict[str, float] = dataclasses.field(default_factory=dict)
    receipted: dict[str, float] = dataclasses.field(default_factory=dict)
    bounced: dict[str, str] = dataclasses.field(default_factory=dict)
    delivered: Counter[tuple[str, str]] = dataclasses.field(default_factory=Counter)

    def delivered_ids(self) -> set[str]:
        return {mid for _, mid in self.delivered}

    def settled(self) -> bool:
        answered = self.receipted.keys() | self.bounced.keys()
        done = self.delivered_ids() | self.bounced.keys()
        return all(mid in answered and mid in done for mid in self.sent)


class Client:
    """One account on a raw c2s socket that logs in again whenever it is dropped."""

    def __init__(self, user: str, ledger: Ledger, run: int) -> None:
        self.user = user
        self.jid = f"{user}@{VHOST}"
        self.ledger = ledger
        self.run = run
        self.writer: asyncio.StreamWriter | None = None
        self.up = asyncio.Event()
        self.reading = asyncio.Event()
        self.reading.set()
        #: IQ answers by id: "result" or "error".
        self.answers: dict[str, str] = {}
        #: The conversation address a ``push-probe N`` message came from.
        self.probes: dict[int, str] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._connected_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.writer is not None:
            self.writer.close()

    def send(self, data: bytes) -> bool:
        """Write on the live connection; False (nothing sent) while it is down."""
        if not self.up.is_set() or self.writer is None:
            return False
        self.writer.write(data)
        return True

    async def _connected_forever(self) -> None:
        while True:
            try:
                reader, writer = await self._login()
            except (OSError, asyncio.IncompleteReadError, LoginFailed):
                await asyncio.sleep(0.5)
                continue
            self.writer = writer
            self.up.set()
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                await self._read(reader)
            self.up.clear()
            writer.close()
            await asyncio.sleep(0.2)

    async def _login(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", 5222), 5)
        buf = b""

        async def until(marker: bytes) -> bytes:
            nonlocal buf
            while marker not in buf:
                chunk = await asyncio.wait_for(reader.read(65536), 10)
                if not chunk:
                    raise LoginFailed("closed")
                buf += chunk
                if b"<failure" in buf:
                    raise LoginFailed(buf.decode(errors="replace"))
            head, _, buf = buf.partition(marker)
            return head

        def stream() -> None:
            writer.write(
                f"<?xml version='1.0'?><stream:stream to='{VHOST}' version='1.0' "
                "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>".encode()
            )

        stream()
        await until(b"</stream:features>")
        creds = base64.b64encode(f"\0{self.user}\0{PASSWORD}".encode()).decode()
        sasl = "urn:ietf:params:xml:ns:xmpp-sasl"
        writer.write(f"<auth xmlns='{sasl}' mechanism='PLAIN'>{creds}</auth>".encode())
        await until(b"<success")
        stream()
        await until(b"</stream:features>")
        writer.write(
            b"<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
            b"<resource>faults</resource></bind></iq>"
        )
        await until(b"</iq>")
        writer.write(b"<presence/>")
        return reader, writer

    async def _read(self, reader: asyncio.StreamReader) -> None:
        buf = b""
        while True:
            await self.reading.wait()
            chunk = await reader.read(65536)
            if not chunk:
                return
            buf += chunk
            end = 0
            for match in _MESSAGE.finditer(buf):
                self._account(match.group(0))
                end = match.end()
            for match in _IQ.finditer(buf, 0, end or len(buf)):
                iq_id, iq_type = _attr(match.group(0), b"id"), _attr(match.group(0), b"type")
                if iq_id and iq_type in ("result", "error"):
                    self.answers[iq_id] = iq_type
                end = max(end, match.end())
            buf = buf[end:]

    def _account(self, stanza: bytes) -> None:
        now = time.monotonic()
        mtype = _attr(stanza, b"type")
        if mtype == "error":
            mid = _attr(stanza, b"id")
            if mid and mid in self.ledger.sent:
                cond = _CONDITION.search(stanza)
                self.ledger.bounced.setdefault(mid, cond.group(1).decode() if cond else "?")
            return
        for received in _RECEIVED.finditer(stanza):
            mid = received.group(1).decode()
            if mid in self.ledger.sent:
                self.ledger.receipted.setdefault(mid, now)
        probe = _PROBE.search(stanza)
        sender = _attr(stanza, b"from")
        if probe and sender:
            self.probes[int(probe.group(1))] = sender.split("/")[0]
        body = _BODY.search(stanza)
        if body and int(body.group(1)) == self.run:
            self.ledger.delivered[(self.user, f"{self.run}-{int(body.group(2))}")] += 1


class LoginFailed(Exception):
    pass


def _attr(stanza: bytes, name: bytes) -> str | None:
    head = stanza[: stanza.find(b">") + 1]
    found = _ATTR[name].search(head)
    return found.group(1).decode() if found else None


# -- the stack ------------------------------------------------------------------------


def api(command: str, **args: str) -> object:
    request = urllib.request.Request(
        f"{API}/{command}", json.dumps(args).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def orgchat(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "component", "--config", "config/dev.toml", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=check,
    )


def stack_fault(name: str) -> None:
    subprocess.run([str(STACK), "fault", name], cwd=REPO, check=True, capture_output=True)


def child_pid(n: int) -> int:
    return int((RUN / f"component-{n}.child").read_text())


async def wait_until(check: Callable[[], bool], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)


def _in_roster(user: str) -> bool:
    roster = api("get_roster", user=user, server=VHOST)
    items = roster if isinstance(roster, list) else []
    return any(isinstance(i, dict) and i.get("jid") == f"{COMPANY}@{DOMAIN}" for i in items)


async def wait_until_async(
    check: Callable[[], Awaitable[bool]], within_s: float, what: str
) -> None:
    deadline = time.monotonic() + within_s
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.1)


async def _all_online(redis: aioredis.Redis) -> bool:
    keys = [f"{REDIS_PREFIX}:{DOMAIN}:presence:{agent}@{VHOST}" for agent in AGENTS]
    return bool(await redis.exists(*keys) == len(keys))


def prepare(customers: int) -> list[str]:
    """Accounts and the company (idempotent); returns the customers' user names."""
    users = [f"faults-c{n:03d}" for n in range(customers)]
    for user in [*users, *AGENTS, *PUSH_CUSTOMERS]:
        try:
            api("register", user=user, host=VHOST, password=PASSWORD)
        except urllib.error.HTTPError:  # it exists: make sure of its password
            api("change_password", user=user, host=VHOST, newpass=PASSWORD)
    if orgchat("company", "show", COMPANY, check=False).returncode != 0:
        orgchat("company", "add", COMPANY, "--name", "Faults Co")
    listed = orgchat("agent", "list", COMPANY).stdout
    for agent in AGENTS:
        if f"{agent}@{VHOST}" not in listed:
            orgchat("agent", "add", COMPANY, f"{agent}@{VHOST}")
    # Adding an agent puts the company into their roster (a job the component
    # runs): log in only once it is there, so their presence reaches it. An
    # ejabberd that is new to an existing directory lacks them: sync again.
    if not all(_in_roster(agent) for agent in AGENTS):
        orgchat("roster", "sync", COMPANY)
    deadline = time.monotonic() + 30
    for agent in AGENTS:
        while not _in_roster(agent):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{COMPANY}@{DOMAIN} never entered {agent}'s roster")
            time.sleep(0.1)
    return users


async def stranded(since: float) -> int:
    """Messages of this run still pending (agents were online all along)."""
    conn = await asyncpg.connect(DB_URL)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM messages m JOIN companies c ON c.id = m.company_id"
                " WHERE c.slug = $1 AND m.pending AND m.ts >= to_timestamp($2)",
                COMPANY,
                since,
            )
        )
    finally:
        await conn.close()


# -- faults ------------------------------------------------------------------------------


async def no_fault(ctx: Scenario) -> None:
    return None


async def kill9(ctx: Scenario) -> None:
    os.kill(child_pid(1), signal.SIGKILL)


async def rolling(ctx: Scenario) -> None:
    for n in range(1, COMPONENTS + 1):
        old = child_pid(n)
        ready = RUN / f"component-{n}.ready"
        os.kill(old, signal.SIGTERM)
        await wait_until(_gone(ready), 20, f"component {n} to stop")
        await wait_until(ready.exists, 30, f"component {n} to come back")


def _gone(path: Path) -> Callable[[], bool]:
    return lambda: not path.exists()


async def postgres(ctx: Scenario) -> None:
    await asyncio.to_thread(stack_fault, "postgres-restart")


async def redis(ctx: Scenario) -> None:
    await asyncio.to_thread(stack_fault, "redis-restart-empty")


async def ejabberd(ctx: Scenario) -> None:
    await asyncio.to_thread(stack_fault, "ejabberd-restart")


async def smtp(ctx: Scenario) -> None:
    """The SMTP relay down for a while: the message path does not depend on it."""
    await asyncio.to_thread(stack_fault, "smtp-stop")
    try:
        await asyncio.sleep(8)
    finally:  # even when the run is interrupted: never leave the stack without it
        await asyncio.to_thread(stack_fault, "smtp-start")


async def hostile(ctx: Scenario) -> None:
    """One customer sends what a hostile user would, for 10 s, while the others chat:
    deep IQs, huge nicknames, chat-state floods, directory searches."""
    attacker = ctx.customers[0]
    deep = "<foo xmlns='urn:x:unknown'>" + "<a>" * 2000 + "</a>" * 2000 + "</foo>"
    nick = f"<nick xmlns='http://jabber.org/protocol/nick'>{'>' * 70_000}</nick>"
    search = (
        "<query xmlns='jabber:iq:search'><x xmlns='jabber:x:data' type='submit'>"
        "<field var='name'><value>a</value></field></x></query>"
    )
    composing = "<composing xmlns='http://jabber.org/protocol/chatstates'/>"
    end = time.monotonic() + 10
    n = 0
    while time.monotonic() < end:
        n += 1
        attacker.send(f"<iq type='get' to='{DOMAIN}' id='deep{n}'>{deep}</iq>".encode())
        attacker.send(f"<iq type='set' to='{DOMAIN}' id='search{n}'>{search}</iq>".encode())
        attacker.send(
            f"<message to='{COMPANY}@{DOMAIN}' type='chat' id='nick{n}'>{nick}</message>".encode()
        )
        for _ in range(20):
            attacker.send(
                f"<message to='{COMPANY}@{DOMAIN}' type='chat'>{composing}</message>".encode()
            )
        await asyncio.sleep(0.1)


class PushService:
    """A loopback push service: ``hang`` accepts requests and never answers;
    otherwise every request is answered 201 and its arrival time kept."""

    def __init__(self, hang: bool) -> None:
        self.hang = hang
        self.arrivals: list[float] = []
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._held: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> PushService:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        for writer in self._held:
            writer.close()
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length:\s*(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
            if self.hang:
                self._held.append(writer)  # read, never answered
                return
            self.arrivals.append(time.monotonic())
            writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        writer.close()


def _subscription(endpoint: str) -> str:
    """A ``<subscribe/>`` payload as a browser's PushManager would make it."""
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    point = key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    p256dh = base64.urlsafe_b64encode(point).rstrip(b"=").decode()
    auth = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
    return f"<subscribe xmlns='{NS_NOTIFY}' endpoint='{endpoint}' p256dh='{p256dh}' auth='{auth}'/>"


async def _forget_push_subscriptions() -> None:
    conn = await asyncpg.connect(DB_URL)
    try:
        await conn.execute(
            "DELETE FROM push_subscriptions WHERE address = ANY($1::text[])",
            [f"{user}@{VHOST}" for user in PUSH_CUSTOMERS],
        )
    finally:
        await conn.close()


async def push_stalls(ctx: Scenario) -> None:
    """A push service that never answers, while the load goes on: customers who
    went offline have their devices registered there, the agents answer them,
    and the cascade pushes. One more customer's device is on a push service
    that works, and is answered a second later: its push must come
    ``notify.customer_push_after`` seconds after the answer, as if the stalled
    service did not exist (``control_push_s``)."""
    await _forget_push_subscriptions()
    async with PushService(hang=True) as stalled, PushService(hang=False) as working:
        stalled_users, control = PUSH_CUSTOMERS[:-1], PUSH_CUSTOMERS[-1]
        clients = [Client(user, ctx.ledger, ctx.run) for user in PUSH_CUSTOMERS]
        for client in clients:
            client.start()
        await wait_until(lambda: all(c.up.is_set() for c in clients), 30, "push customers")
        for n, client in enumerate(clients):
            service = working if client.user == control else stalled
            endpoint = f"http://127.0.0.1:{service.port}/wpush/{ctx.run}-{n}"
            client.send(
                f"<iq type='set' to='{DOMAIN}' id='sub{n}'>{_subscription(endpoint)}</iq>".encode()
            )
            client.send(
                f"<message to='{COMPANY}@{DOMAIN}' type='chat'>"
                f"<body>push-probe {n}</body></message>".encode()
            )
        agent = ctx.agents[0]
        await wait_until(
            lambda: (
                len(agent.probes) == len(clients)
                and all(c.answers.get(f"sub{n}") == "result" for n, c in enumerate(clients))
            ),
            30,
            "the push customers' subscriptions and first messages",
        )
        for client in clients:  # offline: from now on the cascade pushes
            await client.stop()
        await asyncio.sleep(1)
        for n, user in enumerate(PUSH_CUSTOMERS):
            if user in stalled_users:
                agent.send(_answer(agent.probes[n], n))
        await asyncio.sleep(1)
        answered = time.monotonic()
        agent.send(_answer(agent.probes[len(clients) - 1], len(clients) - 1))
        await wait_until(lambda: bool(working.arrivals), 60, "the push to the working service")
        ctx.extra["control_push_s"] = round(working.arrivals[0] - answered, 2)
        ctx.extra["stalled_push_tries"] = stalled.connections
    await _forget_push_subscriptions()


def _answer(conversation: str, n: int) -> bytes:
    return (
        f"<message to='{conversation}' type='chat'><body>push-answer {n}</body></message>".encode()
    )


async def agent_stalls(ctx: Scenario) -> None:
    stalled = ctx.agents[1]
    stalled.reading.clear()
    await asyncio.sleep(8)
    stalled.reading.set()


FAULTS: dict[str, Callable[[Scenario], Awaitable[None]]] = {
    "none": no_fault,
    "kill9": kill9,
    "rolling": rolling,
    "postgres": postgres,
    "redis": redis,
    "ejabberd": ejabberd,
    "smtp": smtp,
    "hostile": hostile,
    "agent-stalls": agent_stalls,
    "push-stalls": push_stalls,
}


@dataclasses.dataclass
class Scenario:
    name: str
    run: int
    customers: list[Client]
    agents: list[Client]
    ledger: Ledger
    lifted: float = 0.0
    #: Figures of one fault beyond the table's columns.
    extra: dict[str, object] = dataclasses.field(default_factory=dict)


async def run_scenario(name: str, users: list[str], args: argparse.Namespace) -> dict[str, object]:
    run = random.randrange(10**6, 10**7)
    ledger = Ledger()
    customers = [Client(u, ledger, run) for u in users]
    agents = [Client(a, ledger, run) for a in AGENTS]
    ctx = Scenario(name, run, customers, agents, ledger)
    for client in [*agents, *customers]:
        client.start()
    await wait_until(
        lambda: all(c.up.is_set() for c in [*agents, *customers]), 60, "every client to log in"
    )
    # The component knows both agents online (their presence in Redis).
    redis = aioredis.from_url(REDIS_URL)
    try:
        await wait_until_async(
            lambda: _all_online(redis), 30, "the component to see both agents online"
        )
    finally:
        await redis.aclose()
    started = time.time()
    stop = asyncio.Event()
    seq = iter(range(10**9))

    async def customer(client: Client) -> None:
        await asyncio.sleep(random.uniform(0, 1 / args.rate))
        while not stop.is_set():
            n = next(seq)
            mid = f"{run}-{n}"
            body = f"f{run}:{n}:" + "x" * 80
            stanza = (
                f"<message to='{COMPANY}@{DOMAIN}' id='{mid}' type='chat'><body>{body}</body>"
                f"<request xmlns='urn:xmpp:receipts'/>"
                f"<origin-id xmlns='urn:xmpp:sid:0' id='{mid}'/></message>"
            ).encode()
            if client.send(stanza):
                ledger.sent[mid] = time.monotonic()
            await asyncio.sleep(1 / args.rate)

    senders = [asyncio.create_task(customer(c)) for c in customers]
    await asyncio.sleep(args.duration / 3)
    fault_started = time.monotonic()
    await FAULTS[name](ctx)
    ctx.lifted = time.monotonic()
    await asyncio.sleep(max(0.0, args.duration * 2 / 3 - (ctx.lifted - fault_started)))
    stop.set()
    await asyncio.gather(*senders)
    with contextlib.suppress(TimeoutError):
        await wait_until(ledger.settled, args.settle, "every message to be accounted for")
    for client in [*agents, *customers]:
        await client.stop()
    delivered = ledger.delivered_ids()
    sent = set(ledger.sent)
    lost = sent - delivered - ledger.bounced.keys()
    # Send to receipt (archived and acknowledged), for every receipted message.
    latencies = sorted((ledger.receipted[m] - ledger.sent[m]) * 1000 for m in ledger.receipted)
    after = sorted(ledger.sent[m] for m in ledger.receipted if ledger.sent[m] >= ctx.lifted)
    return {
        "fault": name,
        "sent": len(sent),
        "receipted": len(ledger.receipted),
        "delivered": len(delivered & sent),
        "bounced": len(ledger.bounced),
        "bounced_by": dict(Counter(ledger.bounced.values())),
        "lost": len(lost),
        "lost_in_flight": sum(
            1 for m in lost if abs(ledger.sent[m] - fault_started) <= IN_FLIGHT_S
        ),
        "receipted_lost": len(ledger.receipted.keys() - delivered - ledger.bounced.keys()),
        "unanswered": len(sent - ledger.receipted.keys() - ledger.bounced.keys()),
        "duplicated": sum(1 for count in ledger.delivered.values() if count > 1),
        "stranded": await stranded(started),
        "recovery_s": round(after[0] - ctx.lifted, 2) if after else None,
        "p50_ms": _percentile(latencies, 50),
        "p99_ms": _percentile(latencies, 99),
        "fault_s": round(ctx.lifted - fault_started, 2),
        **ctx.extra,
    }


COLUMNS = (
    "fault", "sent", "receipted", "delivered", "bounced", "lost", "lost_in_flight",
    "receipted_lost", "unanswered", "duplicated", "stranded", "recovery_s", "fault_s",
    "p50_ms", "p99_ms",
)  # fmt: skip

#: Seconds either side of the fault's start within which a lost message counts
#: as in flight: on the stream of a process killed with ``kill -9`` (written by
#: ejabberd before it saw the stream close, never read), which XEP-0114 cannot
#: give back; its sender got no receipt.
IN_FLIGHT_S = 1.0


def _percentile(values: list[float], pct: int) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, len(values) * pct // 100)], 1)


def table(rows: list[dict[str, object]]) -> str:
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in COLUMNS]
    lines = ["  ".join(c.rjust(w) for c, w in zip(COLUMNS, widths, strict=True))]
    for row in rows:
        lines.append("  ".join(str(row[c]).rjust(w) for c, w in zip(COLUMNS, widths, strict=True)))
    return "\n".join(lines)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__)
    parser.add_argument("--only", default=",".join(FAULTS), help="faults to run, comma-separated")
    parser.add_argument("--customers", type=int, default=40)
    parser.add_argument("--rate", type=float, default=0.4, help="messages per second per customer")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load per fault")
    parser.add_argument("--settle", type=float, default=40.0, help="longest wait for stragglers")
    parser.add_argument("--out", type=Path, default=RESULTS / "faults.json")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n]
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        parser.error(f"unknown fault(s) {', '.join(unknown)}; known: {', '.join(FAULTS)}")
    users = await asyncio.to_thread(prepare, args.customers)
    rows = []
    for name in names:
        print(f"faults: {name} ...", flush=True)
        rows.append(await run_scenario(name, users, args))
        print(f"  {rows[-1]}", flush=True)
    print()
    print(table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"when": time.time(), "faults": rows}, indent=2) + "\n")
    print(f"\nresults: {args.out}")
    return 0


if __name__ == "__main__":
    exit_on_signals()
    sys.exit(asyncio.run(main()))
