"""orgchat benchmark: archived messaging through orgchat vs ejabberd alone.

Four paths, same message size, same number of senders and receivers, same
load generator (bench/loadgen.py), same machine, same run:

  A  customer -> customer through ejabberd, archived by ejabberd's mod_mam in
     PostgreSQL (virtual host bench-mam.localhost): the anchor;
  B  customer -> customer through ejabberd, no archive (vhost localhost): the
     ceiling of anything that goes through ejabberd;
  R  customer -> company@biz-bench.localhost -> agent through a raw relay
     component (bench/relay.py) with exactly C's routings and receipts, and
     nothing else: what ejabberd and one Python process allow;
  C  customer -> company@biz-bench.localhost -> agent through orgchat, archived
     in PostgreSQL, every message asking for a XEP-0184 receipt (a receipt
     means "committed"); the component runs with the development config, its
     rate limit raised for the bench accounts.

For each path the offered load steps up until messages are lost or the p99
latency passes the limit; the highest passing step is the path's maximum
sustained rate. Every measurement is repeated (median and spread reported).
On C, messages that reach their receiver after a later one of the same sender
are counted (``reordered``): several component processes may take one
conversation's messages in parallel.

    python -m bench.run [--quick] [--runs N] [--senders N] [--paths ABRC] [--out FILE]
                        [--no-own-archives] [--layout node1|cluster|bare-source]
                        [--components N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import itertools
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg

from bench.loadgen import Counters, LoginError, RawClient, render
from bench.procstat import CpuMeter, cpu_ms, ejabberd_pids, postgres_pids, redis_pids

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / ".run"
RESULTS = REPO / "bench" / "results"
API = "http://127.0.0.1:5280/api"
PASSWORD = "bench-password"
VHOST_PLAIN = "localhost"
VHOST_MAM = "bench-mam.localhost"
DOMAIN = "biz-bench.localhost"
COMPONENT_PORT = 5349
NODE1, NODE2 = "orgchat@localhost", "orgchat2@localhost"
#: ejabberd-config/cluster.yml: node 2's domain whose stanzas are spread over
#: BARE_SOURCE_SLOTS processes by the sender's bare JID (domain_balancing).
ORDERED_DOMAIN = "biz-ordered.localhost"
BARE_SOURCE_SLOTS = 2
PG_ADMIN = "postgresql://orgchat:orgchat-dev@127.0.0.1:5432/postgres"
BENCH_DB = "orgchat_bench"
#: ejabberd's SQL database, for mod_mam on bench-mam.localhost (scripts/stack.sh).
EJABBERD_DB = "ejabberd_bench"
#: PostgreSQL advisory lock held by a benchmark for its whole run.
BENCH_LOCK = 0x6F72676368617404  # the test suites hold ...02 and ...03
#: In the environment of every process a benchmark starts (Component.start),
#: with the benchmark's pid: how a later one finds those that outlived theirs.
STARTED_BY = "BENCH_STARTED_BY"
LATENCY_LIMIT_MS = 200.0
#: A step is sustained when the delivered rate keeps up with the offered one.
SUSTAIN = 0.9
#: Distinct per step, so that a late message of an earlier step is never counted.
RUN_IDS = itertools.count(int(time.time() * 1000) % 10**9)


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where path C's users log in and its component processes attach (ports of
    the development stack and of `make cluster`'s node 2)."""

    senders_port: int
    receivers_port: int
    listeners: tuple[int, ...]  #: the processes attach to these in turn
    processes: int  #: how many, unless --components says
    domain: str
    nodes: tuple[str, ...]  #: ejabberd nodes whose CPU is measured
    description: str


LAYOUTS = {
    "node1": Layout(
        senders_port=5222,
        receivers_port=5222,
        listeners=(COMPONENT_PORT,),
        processes=1,
        domain=DOMAIN,
        nodes=(NODE1,),
        description="one ejabberd node (make up)",
    ),
    "cluster": Layout(
        senders_port=5222,
        receivers_port=5322,
        listeners=(COMPONENT_PORT, 5449),
        processes=2,
        domain=DOMAIN,
        nodes=(NODE1, NODE2),
        description="senders on node 1, receivers on node 2, processes attached to each node "
        "in turn",
    ),
    "bare-source": Layout(
        senders_port=5322,
        receivers_port=5222,
        listeners=(5450,),
        processes=BARE_SOURCE_SLOTS,
        domain=ORDERED_DOMAIN,
        nodes=(NODE1, NODE2),
        description=f"senders on node 2, where {ORDERED_DOMAIN} is balanced by the sender's "
        f"bare JID over {BARE_SOURCE_SLOTS} processes; receivers on node 1",
    ),
}
NODE1_LAYOUT = LAYOUTS["node1"]

PATHS = {
    "A": "ejabberd + mod_mam (PostgreSQL)",
    "B": "ejabberd, no archive",
    "R": "raw relay component (C's routings and receipts, nothing stored)",
    "C": "orgchat (archive + receipts)",
}


@dataclasses.dataclass
class Settings:
    runs: int
    senders: int
    step_s: float
    drain_s: float
    first_rate: float
    max_steps: int
    refine: int


DEFAULT = Settings(
    runs=3, senders=4, step_s=2.0, drain_s=3.0, first_rate=500, max_steps=8, refine=2
)
QUICK = Settings(runs=1, senders=2, step_s=0.8, drain_s=2.0, first_rate=200, max_steps=2, refine=0)


@dataclasses.dataclass
class Step:
    offered: float
    sent: int
    delivered: int
    receipts: int
    errors: int
    rate: float  #: delivered messages per second, first send to last delivery
    p50_ms: float
    p95_ms: float
    p99_ms: float
    commit_p99_ms: float | None
    cpu_ms: dict[str, float]
    reordered: int  #: received after a later message of the same sender

    @property
    def ok(self) -> bool:
        complete = self.delivered == self.sent and self.errors == 0
        receipts_ok = self.commit_p99_ms is None or self.receipts == self.sent
        sustained = self.rate >= SUSTAIN * self.offered
        return complete and receipts_ok and sustained and self.p99_ms <= LATENCY_LIMIT_MS

    def cpu_per_msg(self) -> dict[str, float]:
        return {k: round(v / max(self.delivered, 1), 4) for k, v in self.cpu_ms.items()}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- setup ----------------------------------------------------------------------


def api(command: str, args: dict[str, Any]) -> Any:
    req = urllib.request.Request(
        f"{API}/{command}",
        data=json.dumps(args).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.read().decode()


def ensure_account(user: str, host: str) -> None:
    if api("check_account", {"user": user, "host": host}) != 0:
        api("register", {"user": user, "host": host, "password": PASSWORD})
    api("change_password", {"user": user, "host": host, "newpass": PASSWORD})


def database_url(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def component_env(
    own_archives: bool = True,
    domain: str = DOMAIN,
    port: int = COMPONENT_PORT,
    index: int = 1,
    database: str = BENCH_DB,
) -> dict[str, str]:
    """The environment of path C's component process number ``index``
    (``own_archives``: write the copies of each message to the users' own
    archives, as in production), and of the ``orgchat`` commands that prepare
    its ``database``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORGCHAT_")}
    ready = RUN / f"bench-component-{index}.ready"
    env.update(
        {
            "ORGCHAT_CONFIG": str(REPO / "config" / "dev.toml"),
            "ORGCHAT_COMPONENT_DOMAIN": domain,
            "ORGCHAT_COMPONENT_PORT": str(port),
            "ORGCHAT_COMPONENT_READY_FILE": str(ready),
            "ORGCHAT_DATABASE_URL": database_url(database),
            "ORGCHAT_LIMITS_CUSTOMER_RATE": str(10**9),
            # The cascade runs as in production; only the inbound SMTP port
            # (replies by email) is the demo component's.
            "ORGCHAT_INBOUND_ENABLED": "0",
            "ORGCHAT_LOG_LEVEL": "INFO",
            "ORGCHAT_EJABBERD_OWN_ARCHIVES": "1" if own_archives else "0",
        }
    )
    return env


async def empty_ejabberd_archive() -> None:
    """Path A starts from an empty mod_mam archive too, so that runs compare."""
    db = await asyncpg.connect(database_url(EJABBERD_DB))
    try:
        await db.execute("TRUNCATE archive")
    finally:
        await db.close()


async def prepare_database(database: str = BENCH_DB) -> None:
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
            await admin.execute(f"CREATE DATABASE {database}")
    finally:
        await admin.close()
    orgchat("migrate", database=database)
    db = await asyncpg.connect(database_url(database))
    try:
        # Every bench starts from an empty archive, users' own archives (two
        # rows per message) and delivery records (which churn: one row per
        # batch; requests point at messages), so runs compare even where
        # autovacuum is off, as on the development machines.
        await db.execute("TRUNCATE messages, archive, deliveries, requests, request_targets")
    finally:
        await db.close()


def orgchat(*args: str, database: str = BENCH_DB) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "component", *args],
        env=component_env(database=database),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"bench: orgchat {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


class Component:
    """A component process under test on the bench domain: orgchat (path C), or
    the raw relay (path R). Whoever starts one stops it in a ``finally``
    (stop_all()): a process that outlives its benchmark stays attached to the
    domain and takes half of the next run's stanzas."""

    def __init__(
        self, name: str, command: list[str], ready: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.command = command
        self.env = env or component_env()
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready = ready
        self.metrics_port = int(self.env.get("ORGCHAT_METRICS_PORT", "0"))

    @classmethod
    def orgchat(
        cls,
        own_archives: bool,
        layout: Layout = NODE1_LAYOUT,
        index: int = 1,
        database: str = BENCH_DB,
        settings: dict[str, str] | None = None,
    ) -> Component:
        """``settings``: configuration settings (``archive.flush_interval_ms``) and
        their values, over the development configuration's."""
        port = layout.listeners[(index - 1) % len(layout.listeners)]
        env = component_env(own_archives, layout.domain, port, index, database)
        for name, value in (settings or {}).items():
            env["ORGCHAT_" + name.replace(".", "_").upper()] = value
        env["ORGCHAT_METRICS_PORT"] = str(free_port())
        ready = Path(env["ORGCHAT_COMPONENT_READY_FILE"])
        command = [sys.executable, "-m", "component", "run"]
        return cls(f"component-{index}", command, ready, env)

    @classmethod
    def relay(cls) -> Component:
        ready = RUN / "bench-relay.ready"
        secret = tomllib.loads((REPO / "config" / "dev.toml").read_text())["component"]["secret"]
        command = [sys.executable, "-m", "bench.relay", "--domain", DOMAIN]
        command += ["--port", str(COMPONENT_PORT), "--secret", secret, "--vhost", VHOST_PLAIN]
        return cls("relay", [*command, "--ready", str(ready)], ready)

    def start(self) -> None:
        """Start the process and wait until it is attached. It runs in a session
        of its own, out of reach of the signals meant for the benchmark (Ctrl-C
        in its terminal): the benchmark's ``finally`` stops it, however the
        benchmark ends."""
        self.ready.unlink(missing_ok=True)
        log_path = RUN / "log" / f"bench-{self.name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command,
                env=self.env | {STARTED_BY: str(os.getpid())},
                cwd=REPO,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while not self.ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bench: the {self.name} did not start; see {log_path}")
            time.sleep(0.05)

    def terminate(self) -> None:
        """Ask the process to stop (SIGTERM), if it runs; stop() waits for it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def stop(self) -> None:
        """terminate(), then wait until it has stopped (after 20 s, a stack
        dump and SIGKILL)."""
        self.terminate()
        if self.proc is None:
            return
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            spy = subprocess.run(
                [sys.executable.replace("python", "py-spy"), "dump", "--pid", str(self.proc.pid)],
                capture_output=True,
                text=True,
                check=False,
            )
            print(f"bench: the component did not stop within 20 s:\n{spy.stdout}", file=sys.stderr)
            self.proc.kill()
            self.proc.wait()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def customer_messages(self) -> int:
        """Customers' messages this process has routed since it started (its metrics)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode()
        found = re.search(r'^orgchat_messages_total\{kind="customer"\} (\S+)$', text, re.M)
        return int(float(found.group(1))) if found else 0


def stop_all(processes: list[Component]) -> None:
    """Every process asked first, then waited for: a second signal that cuts the
    waiting short (an impatient Ctrl-C) leaves none of them attached."""
    for process in processes:
        process.terminate()
    for process in processes:
        process.stop()


def leftovers() -> dict[int, str]:
    """Processes that a benchmark started and that outlived it (pid -> command
    line), found by the STARTED_BY in their environment. A benchmark's own
    processes carry it too: only meaningful holding BENCH_LOCK, before starting
    any (every benchmark that starts processes holds it)."""
    mark = f"{STARTED_BY}=".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # gone meanwhile, or another user's
            continue
        if any(variable.startswith(mark) for variable in environ):
            found[int(entry.name)] = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
    return found


@contextlib.asynccontextmanager
async def one_benchmark_at_a_time() -> AsyncIterator[None]:
    """Hold BENCH_LOCK for a whole benchmark: those of several checkouts on one
    machine share the bench accounts (one session replaces the other's),
    domains and database, so a second one waits. Then refuse to run beside a
    process that an earlier benchmark left (killed with SIGKILL, say): it would
    take half of this run's stanzas."""
    lock = await asyncpg.connect(PG_ADMIN)
    try:
        if not await lock.fetchval("SELECT pg_try_advisory_lock($1)", BENCH_LOCK):
            print("bench: waiting for the other benchmark on this machine", flush=True)
            await lock.execute("SELECT pg_advisory_lock($1)", BENCH_LOCK)
        if found := leftovers():
            listed = "".join(f"\n  pid {pid}: {command}" for pid, command in found.items())
            raise SystemExit(
                f"bench: processes an earlier benchmark started are still running:{listed}\n"
                "attached to the bench domain, they would take half of this run's stanzas; "
                f"stop them (kill {' '.join(map(str, found))}) and run again"
            )
        yield
    finally:
        await lock.close()  # releases the lock


def exit_on_signals() -> None:
    """SIGTERM and SIGHUP raise SystemExit, as Ctrl-C raises KeyboardInterrupt
    (asyncio.run cancels the main task): either way the ``finally`` blocks stop
    the processes the benchmark started. Left at their defaults, either would
    end the benchmark at once and leave its processes running (in sessions of
    their own, Component.start, they get no hangup of their own either)."""

    def leave(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, leave)


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_rosters(agents: list[str], companies: list[str]) -> None:
    deadline = time.monotonic() + 30
    for agent, company in zip(agents, companies, strict=True):
        user, host = agent.split("@")
        while not any(
            i["jid"] == company for i in api("get_roster", {"user": user, "server": host})
        ):
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: {company} never reached {agent}'s roster")
            time.sleep(0.1)


@dataclasses.dataclass
class Topology:
    senders: list[RawClient]
    receivers: list[RawClient]
    targets: list[str]  #: the address each sender writes to
    receipts: bool


async def connect(path: str, n: int, layout: Layout = NODE1_LAYOUT) -> Topology:
    """Sender i writes to receiver i (on R and C through company i)."""
    host = VHOST_MAM if path == "A" else VHOST_PLAIN
    if path != "C":
        layout = NODE1_LAYOUT
    senders = [
        RawClient(f"bench-s{i}@{host}", PASSWORD, port=layout.senders_port) for i in range(n)
    ]
    receivers = [
        RawClient(f"bench-r{i}@{host}", PASSWORD, port=layout.receivers_port) for i in range(n)
    ]
    for c in senders + receivers:
        await c.login()
    if path in "RC":
        targets = [f"bench-c{i}@{layout.domain if path == 'C' else DOMAIN}" for i in range(n)]
    else:
        targets = [r.jid for r in receivers]
    await asyncio.sleep(0.5)  # presence reaches the component (C) or the sessions settle
    return Topology(senders, receivers, targets, receipts=path in "RC")


# -- measuring ----------------------------------------------------------------------


def reordered(arrivals: list[int], senders: int) -> int:
    """Messages received after a later one of the same sender. ``arrivals``: the
    sequence numbers in the order they were received; sender i sends the numbers
    i, i + senders, ... in increasing order (step()), each to its own receiver."""
    latest: dict[int, int] = {}
    late = 0
    for seq in arrivals:
        sender = seq % senders
        if seq < latest.get(sender, -1):
            late += 1
        else:
            latest[sender] = seq
    return late


async def step(topo: Topology, meter: CpuMeter, rate: float, s: Settings, run_id: int) -> Step:
    counters = Counters()
    for client in topo.senders + topo.receivers:
        client.start_reading(counters, run_id)
    total = max(1, int(rate * s.step_s))
    sent_at: dict[int, int] = {}
    n = len(topo.senders)
    loop = asyncio.get_running_loop()
    meter.start()
    t0 = loop.time()
    t0_ns = time.time_ns()
    seq = 0
    while seq < total:
        due = min(total, int((loop.time() - t0) * rate) + 1)
        batches: list[list[bytes]] = [[] for _ in range(n)]
        while seq < due:
            i = seq % n
            batches[i].append(render(topo.targets[i], run_id, seq, topo.receipts))
            sent_at[seq] = time.time_ns()
            seq += 1
        for client, batch in zip(topo.senders, batches, strict=True):
            if batch:
                client.write(b"".join(batch))
        await asyncio.sleep(0.005)
    # Drain: wait for everything, or until nothing new arrives for drain_s.
    last_progress, last_count = loop.time(), -1
    while loop.time() - last_progress < s.drain_s:
        count = len(counters.received) + len(counters.receipts)
        if count != last_count:
            last_count, last_progress = count, loop.time()
        if len(counters.received) >= total and (
            not topo.receipts or len(counters.receipts) >= total
        ):
            break
        await asyncio.sleep(0.02)
    cpu = meter.stop()
    for client in topo.senders + topo.receivers:
        if client._reading is not None:
            client._reading.cancel()
    latencies = [ns / 1e6 for ns in counters.received.values()]
    last_delivery = max((sent_at[q] + lat for q, lat in counters.received.items()), default=t0_ns)
    elapsed_s = max((last_delivery - t0_ns) / 1e9, 1e-3)
    commit = [(t - sent_at[q]) / 1e6 for q, t in counters.receipts.items() if q in sent_at]
    return Step(
        offered=rate,
        sent=total,
        delivered=len(counters.received),
        receipts=len(counters.receipts),
        errors=counters.errors,
        rate=round(len(counters.received) / elapsed_s, 1),
        p50_ms=round(percentile(latencies, 0.50), 2),
        p95_ms=round(percentile(latencies, 0.95), 2),
        p99_ms=round(percentile(latencies, 0.99), 2),
        commit_p99_ms=round(percentile(commit, 0.99), 2) if topo.receipts else None,
        cpu_ms=cpu,
        # The received dict keeps arrival order (each receiver hears one sender).
        reordered=reordered(list(counters.received), n),
    )


async def search(
    topo: Topology, meter: CpuMeter, s: Settings, start: float, label: str, tried: list[Step]
) -> Step:
    """Step the offered load up until a step fails, then refine between the last two.
    Every step measured is appended to ``tried``."""
    best: Step | None = None
    rate = start
    failed: float | None = None
    for _ in range(s.max_steps):
        result = await step(topo, meter, rate, s, next(RUN_IDS))
        tried.append(result)
        _report(label, result)
        await asyncio.sleep(0.3)
        if not result.ok:
            failed = rate
            break
        best = result
        rate *= 2
    lo = best.offered if best else 0.0
    for _ in range(s.refine if failed else 0):
        mid = (lo + failed) / 2 if failed else lo
        result = await step(topo, meter, mid, s, next(RUN_IDS))
        tried.append(result)
        _report(label, result)
        await asyncio.sleep(0.3)
        if result.ok:
            lo = mid
            if best is None or result.rate > best.rate:
                best = result
        else:
            failed = mid
    if best is None:
        raise SystemExit(f"bench: path {label} lost messages even at {start:.0f} msg/s")
    return best


def _report(label: str, r: Step) -> None:
    verdict = "ok  " if r.ok else "FAIL"
    extra = (
        f" commit p99 {r.commit_p99_ms} ms, receipts {r.receipts}"
        if r.commit_p99_ms is not None
        else ""
    )
    print(
        f"  {label} {verdict} offered {r.offered:8.0f}/s  delivered {r.delivered}/{r.sent}"
        f"  rate {r.rate:8.1f}/s  p99 {r.p99_ms:8.2f} ms{extra}  errors {r.errors}"
        f"  reordered {r.reordered}",
        flush=True,
    )


def summarize(steps: list[Step], tried: list[Step]) -> dict[str, Any]:
    """``steps``: the best step of each run; ``tried``: every step measured."""
    rates = [x.rate for x in steps]
    med = statistics.median(rates)
    middle = min(steps, key=lambda x: abs(x.rate - med))
    procs = steps[0].cpu_ms.keys()
    return {
        "max_rate": round(med, 1),
        "p50_ms": middle.p50_ms,
        "p95_ms": middle.p95_ms,
        "p99_ms": middle.p99_ms,
        # At the reported rate (the middle run), and over every step, failed ones included.
        "reordered": middle.reordered,
        "reordered_all_steps": sum(x.reordered for x in tried),
        "messages_all_steps": sum(x.delivered for x in tried),
        "cpu_ms_per_msg": {
            p: round(statistics.median(x.cpu_per_msg()[p] for x in steps), 4) for p in procs
        },
        "runs": [
            {
                "max_rate": x.rate,
                "offered": x.offered,
                "sent": x.sent,
                "delivered": x.delivered,
                "receipts": x.receipts,
                "errors": x.errors,
                "p50_ms": x.p50_ms,
                "p95_ms": x.p95_ms,
                "p99_ms": x.p99_ms,
                "commit_p99_ms": x.commit_p99_ms,
                "reordered": x.reordered,
                "cpu_ms_per_msg": x.cpu_per_msg(),
            }
            for x in steps
        ],
        "spread": {
            "min": min(rates),
            "max": max(rates),
            "relative": round((max(rates) - min(rates)) / med, 3) if med else None,
        },
    }


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "hostname": platform.node(),
    }


async def prepare(
    paths: list[str], n: int, layout: Layout = NODE1_LAYOUT, database: str = BENCH_DB
) -> None:
    """Accounts, an empty ejabberd archive (A), the orgchat database and companies (C)."""
    print(f"bench: preparing {n} senders and {n} receivers per path", flush=True)
    for i in range(n):
        for host in (VHOST_PLAIN, VHOST_MAM):
            ensure_account(f"bench-s{i}", host)
            ensure_account(f"bench-r{i}", host)
    if "A" in paths:
        await empty_ejabberd_archive()
    if "C" in paths:
        await prepare_database(database)
        companies = [
            {
                "slug": f"bench-c{i}",
                "name": f"Bench company {i}",
                "agents": [f"bench-r{i}@{VHOST_PLAIN}"],
            }
            for i in range(n)
        ]
        spec = RUN / "bench-companies.json"
        spec.parent.mkdir(parents=True, exist_ok=True)
        spec.write_text(json.dumps(companies))
        orgchat("import", str(spec), database=database)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    async with one_benchmark_at_a_time():
        return await measure(args)


async def _runs(
    topo: Topology, meter: CpuMeter, s: Settings, path: str, rate: float | None, tried: list[Step]
) -> list[Step]:
    """The ``s.runs`` runs of a path: each run's best step (every step measured
    goes to ``tried``). With a ``rate``, each run is one step at that load:
    CPU per message compared at equal batching, between versions or settings."""
    steps: list[Step] = []
    start = s.first_rate
    for run in range(s.runs):
        if rate:
            best = await step(topo, meter, rate, s, next(RUN_IDS))
            _report(f"{path}#{run + 1}", best)
            tried.append(best)
        else:
            best = await search(topo, meter, s, start, f"{path}#{run + 1}", tried)
        steps.append(best)
        start = max(s.first_rate, best.offered * 0.5)
    return steps


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    s = QUICK if args.quick else DEFAULT
    if args.runs:
        s = dataclasses.replace(s, runs=args.runs)
    if args.senders:
        s = dataclasses.replace(s, senders=args.senders)
    paths = [p for p in args.paths.upper() if p in PATHS]
    n = s.senders
    layout = LAYOUTS[args.layout]
    await prepare(paths, n, layout)
    processes = args.components or layout.processes
    components = [
        Component.orgchat(not args.no_own_archives, layout, i, settings=dict(args.set))
        for i in range(1, processes + 1)
    ]
    relay = Component.relay()
    try:
        results: dict[str, Any] = {"paths": {}}
        half_max_p99: float | None = None
        for path in paths:
            nodes = layout.nodes if path == "C" else (NODE1,)
            groups = {
                "ejabberd": lambda nodes=nodes: [p for node in nodes for p in ejabberd_pids(node)],  # type: ignore[misc]
                "postgres": postgres_pids,
                "redis": redis_pids,
                "loadgen": lambda: [os.getpid()],
            }
            # R and C attach to the same domain, one at a time.
            under_test = {"R": [relay], "C": components}.get(path, [])
            for process in under_test:
                process.start()
            if under_test:
                groups["component"] = lambda ps=under_test: [p.pid for p in ps]  # type: ignore[misc]
            if path == "C":
                wait_for_rosters(
                    [f"bench-r{i}@{VHOST_PLAIN}" for i in range(n)],
                    [f"bench-c{i}@{layout.domain}" for i in range(n)],
                )
            meter = CpuMeter(groups)
            topo = await connect(path, n, layout)
            print(f"bench: path {path}: {PATHS[path]}", flush=True)
            # Warm-up, not measured: connection pools, caches, JIT-less but cold paths.
            await step(topo, meter, s.first_rate / 2, s, next(RUN_IDS))
            tried: list[Step] = []
            steps = await _runs(topo, meter, s, path, args.rate, tried)
            results["paths"][path] = summarize(steps, tried) | {"description": PATHS[path]}
            if path == "C":
                results["paths"][path] |= {
                    "layout": args.layout,
                    "layout_description": layout.description,
                    "processes": processes,
                    # How the customers' messages were shared (warm-up included).
                    "messages_per_process": [p.customer_messages() for p in components],
                }
            if path == "C" and not args.rate:
                half = results["paths"]["C"]["max_rate"] / 2
                r = await step(topo, meter, half, s, next(RUN_IDS))
                _report("C@half", r)
                half_max_p99 = r.p99_ms
            for c in topo.senders + topo.receivers:
                await c.close()
            if path == "R":
                relay.stop()
        p = results["paths"]
        results.update(
            {
                "ratio_c_over_a": round(p["C"]["max_rate"] / p["A"]["max_rate"], 2)
                if {"A", "C"} <= p.keys()
                else None,
                "ratio_c_over_b": round(p["C"]["max_rate"] / p["B"]["max_rate"], 2)
                if {"B", "C"} <= p.keys()
                else None,
                "ratio_c_over_r": round(p["C"]["max_rate"] / p["R"]["max_rate"], 2)
                if {"R", "C"} <= p.keys()
                else None,
                "p99_ms_c_at_half_max": half_max_p99,
                "component_cpu_ms_per_msg": p["C"]["cpu_ms_per_msg"].get("component")
                if "C" in p
                else None,
                "machine": machine(),
                "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "settings": dataclasses.asdict(s)
                | {
                    "latency_limit_ms": LATENCY_LIMIT_MS,
                    "quick": args.quick,
                    "own_archives": not args.no_own_archives,
                    "fixed_rate": args.rate,
                    "component_settings": dict(args.set),
                },
                "loadgen_cpu_ms": cpu_ms(os.getpid()),
            }
        )
        return results
    finally:
        stop_all([relay, *components])


def print_table(results: dict[str, Any]) -> None:
    print()
    rate = "msg/s" if results["settings"]["fixed_rate"] else "max msg/s"
    print(
        f"{'path':<4} {rate:>10} {'spread':>8} "
        f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'reordered':>10}  cpu ms/msg"
    )
    for name, p in results["paths"].items():
        cpu = " ".join(f"{k}={v}" for k, v in p["cpu_ms_per_msg"].items())
        spread = p["spread"]["relative"]
        print(
            f"{name:<4} {p['max_rate']:>10.1f} {spread if spread is not None else '-':>8} "
            f"{p['p50_ms']:>8} {p['p95_ms']:>8} {p['p99_ms']:>8} {p['reordered']:>10}  {cpu}"
        )
    print()
    for key in (
        "ratio_c_over_a",
        "ratio_c_over_b",
        "ratio_c_over_r",
        "p99_ms_c_at_half_max",
        "component_cpu_ms_per_msg",
    ):
        print(f"{key}: {results.get(key)}")
    if "C" in results["paths"]:
        c = results["paths"]["C"]
        print(f"C layout: {c['layout']} ({c['layout_description']})")
        print(
            f"C processes: {c['processes']}, customers' messages each: {c['messages_per_process']}"
        )
        print(
            f"C reordered over every step: {c['reordered_all_steps']} of {c['messages_all_steps']}"
        )


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or "." not in name:
        raise argparse.ArgumentTypeError(f"not section.key=value: {text!r}")
    return name, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short run per path (< 30 s)")
    parser.add_argument("--runs", type=int, help="repetitions per path")
    parser.add_argument("--senders", type=int, help="senders (= receivers) per path")
    parser.add_argument("--paths", default="ABRC", help="which paths to measure (default ABRC)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        type=_setting,
        metavar="NAME=VALUE",
        help="a configuration setting of path C's processes (archive.flush_interval_ms=5); "
        "repeatable",
    )
    parser.add_argument(
        "--rate",
        type=float,
        help="instead of searching for each path's maximum, measure one step per run at this "
        "offered rate (msg/s): CPU per message at equal load, to compare versions or settings",
    )
    parser.add_argument(
        "--no-own-archives",
        action="store_true",
        help="path C without the copies in users' own archives (to measure their cost)",
    )
    parser.add_argument(
        "--layout",
        choices=sorted(LAYOUTS),
        default="node1",
        help="where path C's users and processes are: node1 (default), cluster (make cluster: "
        "senders on node 1, receivers on node 2), bare-source (make cluster: senders on node 2, "
        f"{BARE_SOURCE_SLOTS} processes balanced by sender)",
    )
    parser.add_argument(
        "--components",
        type=int,
        help="path C's component processes (default: one per listener of the layout)",
    )
    args = parser.parse_args(argv)
    if args.layout == "bare-source" and args.components not in (None, BARE_SOURCE_SLOTS):
        parser.error(
            f"--layout bare-source needs exactly {BARE_SOURCE_SLOTS} processes: ejabberd drops "
            "the stanzas of an empty slot"
        )
    layout = LAYOUTS[args.layout]
    if "C" in args.paths.upper() and NODE2 in layout.nodes and not port_open(layout.listeners[-1]):
        parser.error(f"--layout {args.layout} needs ejabberd node 2: run make cluster")
    if args.components is not None and args.components < 1:
        parser.error("--components must be at least 1")
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be positive")
    if (args.runs is not None and args.runs < 1) or (args.senders is not None and args.senders < 1):
        parser.error("--runs and --senders must be at least 1")
    exit_on_signals()
    try:
        results = asyncio.run(main_async(args))
    except LoginError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    print_table(results)
    text = json.dumps(results, indent=2)
    if not args.rate:  # latest.json holds the maxima
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "latest.json").write_text(text)
        print(f"\nresults: {RESULTS / 'latest.json'}")
    if args.out:
        args.out.write_text(text)
        print(f"\nresults: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
