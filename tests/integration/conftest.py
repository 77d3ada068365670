"""The real stack for integration tests.

`make test` brings up ejabberd, PostgreSQL, Redis and the SMTP sink first
(scripts/stack.sh). These fixtures never start or mock a service: a service
that is not reachable is a test failure, never a skip.

The tests run their own component processes (``orgchat run``) on the
component domain ``biz.test.localhost`` with the database ``orgchat_test``,
so they never disturb the demo component of `make up` on ``biz.localhost``.
Accounts and companies get a per-run suffix, so runs never collide.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import sys
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from component.features.notify.push import generate_vapid_key
from tests.integration.clients import AioClient, SlixClient
from tests.integration.mailbox import Mailbox

REPO = Path(__file__).resolve().parents[2]
DOMAIN = "biz.test.localhost"
#: The tests' own ejabberd virtual host (ejabberd-config/dev.yml): its users'
#: own archives live in the tests' database, which the tests' components write.
VHOST = "test.localhost"
API = "http://127.0.0.1:5280/api"
PG_ADMIN_URL = os.environ.get(
    "ORGCHAT_TEST_PG_ADMIN_URL", "postgresql://orgchat:orgchat-dev@127.0.0.1:5432/postgres"
)
TEST_DB = "orgchat_test"
TEST_DB_URL = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + TEST_DB
REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_PREFIX = "orgchat-test"
RUN = secrets.token_hex(3)

SERVICES = {
    "ejabberd c2s": 5222,
    "ejabberd component listener (demo)": 5347,
    "ejabberd component listener (tests)": 5348,
    "ejabberd component listener (bench)": 5349,
    "ejabberd HTTP (/api)": 5280,
    "PostgreSQL": 5432,
    "Redis": 6379,
    "SMTP sink": 2525,
}

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def component_env(**overrides: str) -> dict[str, str]:
    # Nothing of the caller's settings, nor of its supervisor (systemd's socket).
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ORGCHAT_", "NOTIFY_SOCKET", "WATCHDOG_"))
    }
    env.update(
        {
            "ORGCHAT_DEV_MODE": "1",
            "ORGCHAT_COMPONENT_DOMAIN": DOMAIN,
            "ORGCHAT_COMPONENT_PORT": "5348",
            "ORGCHAT_EJABBERD_VHOST": VHOST,
            "ORGCHAT_DATABASE_URL": TEST_DB_URL,
            "ORGCHAT_REDIS_URL": REDIS_URL,
            "ORGCHAT_REDIS_PREFIX": REDIS_PREFIX,
            "ORGCHAT_LOG_LEVEL": "DEBUG",
            "ORGCHAT_COMPONENT_RECONNECT_MAX_DELAY": "2",
            "ORGCHAT_REQUESTS_EXPIRY_INTERVAL": "0.5",
            # Off: a sweep at a random moment would race the tests that
            # prune by hand (test_cli starts its own process to watch one).
            "ORGCHAT_ARCHIVE_RETENTION_INTERVAL": "0",
            # Off for the same reason: the guest tests expire guests by hand
            # (test_cli starts its own process to watch a sweep).
            "ORGCHAT_GUESTS_SWEEP_INTERVAL": "0",
        }
    )
    env.update(overrides)
    return env


@dataclass
class Result:
    code: int
    out: str
    err: str


async def orgchat(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the `orgchat` command as an operator would."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "component",
        *args,
        env=env or component_env(),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return Result(proc.returncode or 0, out.decode(), err.decode())


async def api(command: str, args: dict[str, Any]) -> Any:
    def call() -> Any:
        req = urllib.request.Request(
            f"{API}/{command}",
            data=json.dumps(args).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    return await asyncio.to_thread(call)


class ComponentProcess:
    """One `orgchat run` process on the test domain."""

    def __init__(self, tmp: Path, name: str, **env: str) -> None:
        self.ready_file = tmp / f"{name}.ready"
        self.log_path = tmp / f"{name}.log"
        # Each process its own inbound SMTP port (replies by email) and metrics port.
        self.inbound_port = int(env.pop("ORGCHAT_INBOUND_PORT", 0)) or free_port()
        self.metrics_port = int(env.pop("ORGCHAT_METRICS_PORT", 0)) or free_port()
        self.env = component_env(
            ORGCHAT_COMPONENT_READY_FILE=str(self.ready_file),
            ORGCHAT_INBOUND_PORT=str(self.inbound_port),
            ORGCHAT_METRICS_PORT=str(self.metrics_port),
            **env,
        )
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, wait: bool = True) -> ComponentProcess:
        self.ready_file.unlink(missing_ok=True)
        log = self.log_path.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "component",
            "run",
            env=self.env,
            cwd=REPO,
            stdout=log,
            stderr=log,
        )
        log.close()
        if wait:
            await self.wait_ready()
        return self

    async def wait_ready(self, timeout: float = 20) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.ready_file.exists():
            assert self.proc is not None
            if self.proc.returncode is not None:
                raise AssertionError(f"component exited {self.proc.returncode}:\n{self.log_tail()}")
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"component not ready after {timeout}s:\n{self.log_tail()}")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # presence probes answered, roster jobs picked up

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    async def stop(self) -> int | None:
        if self.proc is None or self.proc.returncode is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), 15)
        except TimeoutError:
            self.proc.kill()
            return await self.proc.wait()

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@pytest.fixture(scope="session")
def services() -> None:
    missing = [
        f"{name} (127.0.0.1:{port})" for name, port in SERVICES.items() if not port_open(port)
    ]
    if missing:
        pytest.fail(
            "integration services not reachable: "
            + ", ".join(missing)
            + ". Run `make test` (it starts them) or `make up`.",
            pytrace=False,
        )


#: Held by a test session for its whole length: two sessions on one machine
#: share the test domain, database and Redis prefix, so they take turns.
SESSION_LOCK = 0x6F72676368617403  # the storage suite holds ...02


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def database(services: None) -> AsyncIterator[str]:
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute("SELECT pg_advisory_lock($1)", SESSION_LOCK)
        await admin.execute(f"DROP DATABASE IF EXISTS {TEST_DB} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {TEST_DB}")
        result = await orgchat("migrate")
        assert result.code == 0, result.err
        yield TEST_DB_URL
    finally:
        await admin.close()  # releases the session lock


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def db(database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database)
    yield conn
    await conn.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def rds(services: None) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(REDIS_URL, decode_responses=True)
    async for key in client.scan_iter(f"{REDIS_PREFIX}:*"):
        await client.delete(key)
    yield client
    await client.aclose()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def mailbox(services: None) -> AsyncIterator[Mailbox]:
    """The SMTP relay of the session's component: a real server in this process."""
    box = await Mailbox().start()
    yield box
    await box.stop()


#: The cascade's timers for the tests, in seconds (see docs/config.md).
CASCADE_TIMERS = {
    "ORGCHAT_NOTIFY_COMPANY_OFFLINE_AFTER": "1",
    "ORGCHAT_NOTIFY_COMPANY_REACTION_WINDOW": "3",
    "ORGCHAT_NOTIFY_CUSTOMER_PUSH_AFTER": "1",
    "ORGCHAT_NOTIFY_CUSTOMER_EMAIL_AFTER": "3",
    "ORGCHAT_NOTIFY_QUIET_PERIOD": "4",
    "ORGCHAT_NOTIFY_POLL_INTERVAL": "0.2",
    "ORGCHAT_NOTIFY_RETRY_MIN_DELAY": "0.5",
    "ORGCHAT_NOTIFY_RETRY_MAX_DELAY": "1",
}
#: The session's VAPID key (web push), generated per run.
VAPID_KEY = generate_vapid_key()
#: The web page as the tests open it (their own XMPP host): links in pushes and
#: emails lead there (``notify.page_url``).
PAGE_URL = f"http://127.0.0.1:5280/web/?xmpp={VHOST}"


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def component(
    database: str,
    rds: aioredis.Redis,
    mailbox: Mailbox,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[ComponentProcess]:
    proc = await ComponentProcess(
        tmp_path_factory.mktemp("component"),
        "main",
        ORGCHAT_SMTP_PORT=str(mailbox.port),
        ORGCHAT_PUSH_VAPID_PRIVATE_KEY=VAPID_KEY,
        ORGCHAT_NOTIFY_PAGE_URL=PAGE_URL,
        **CASCADE_TIMERS,
    ).start()
    yield proc
    code = await proc.stop()
    assert code == 0, f"component exited {code}:\n{proc.log_tail()}"


async def presence_shows(rds: aioredis.Redis, jid: str) -> dict[str, str]:
    """An agent's resources in Redis and their show (the stored time left out)."""
    stored = await rds.hgetall(f"{REDIS_PREFIX}:{DOMAIN}:presence:{jid}")
    return {resource: value.split()[0] for resource, value in stored.items()}


@dataclass
class Account:
    jid: str
    password: str

    @property
    def user(self) -> str:
        return self.jid.split("@")[0]


_counter = iter(range(1, 1_000_000))


async def register(name: str) -> Account:
    user = f"t{RUN}-{name}-{next(_counter)}"
    password = secrets.token_hex(8)
    await api("register", {"user": user, "host": VHOST, "password": password})
    return Account(f"{user}@{VHOST}", password)


@dataclass
class TestCompany:
    slug: str
    name: str
    agents: list[Account] = field(default_factory=list)

    @property
    def jid(self) -> str:
        return f"{self.slug}@{DOMAIN}"


async def roster_of(account: Account) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = await api("get_roster", {"user": account.user, "server": VHOST})
    return result


async def wait_in_roster(account: Account, company_jid: str, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if any(item["jid"] == company_jid for item in await roster_of(account)):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{company_jid} not in {account.jid}'s roster after {timeout}s")
        await asyncio.sleep(0.1)


MakeCompany = Callable[..., Awaitable[TestCompany]]


@pytest_asyncio.fixture(loop_scope="session")
async def make_company(component: ComponentProcess) -> MakeCompany:
    """Create a company with the CLI, with fresh agent accounts in its roster."""

    async def make(agents: int = 1, name: str = "Test Company", **opts: str | bool) -> TestCompany:
        slug = f"t{RUN}-c{next(_counter)}"
        args = ["company", "add", slug, "--name", name]
        for key, value in opts.items():
            option = "--" + key.replace("_", "-")
            args += [option] if value is True else [option, str(value)]
        result = await orgchat(*args)
        assert result.code == 0, result.err
        company = TestCompany(slug, name)
        for n in range(agents):
            account = await register(f"agent{n}")
            result = await orgchat("agent", "add", slug, account.jid)
            assert result.code == 0, result.err
            company.agents.append(account)
        for account in company.agents:
            await wait_in_roster(account, company.jid)
        return company

    return make


Client = SlixClient | AioClient


@pytest_asyncio.fixture(loop_scope="session")
async def clients() -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """Log accounts in with a real client library; all are logged out at the end."""
    started: list[Client] = []

    async def login(
        account: Account,
        lib: str = "slixmpp",
        announce: bool = True,
        resource: str = "test",
        port: int = 5222,
    ) -> Any:
        """``port``: the c2s port of the ejabberd node to log in to (node 2: NODE2_C2S)."""
        full = f"{account.jid}/{resource}"
        client: Client = (
            SlixClient(full, account.password, port)
            if lib == "slixmpp"
            else AioClient(full, account.password, port)
        )
        await client.start(announce=announce)
        started.append(client)
        return client

    yield login
    for client in started:
        with contextlib.suppress(Exception):
            await client.stop()
