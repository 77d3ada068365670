"""One component process: the core, every feature, and their lifetimes.

Built in one pass, each part from what was built before it (see
:mod:`component.feature`):

1. the stores and the stream (connection only; nothing is routed yet);
2. the core every feature shares (:class:`~component.feature.Core`);
3. the features, then the message router with their routing hooks;
4. what the features contribute once the router exists (IQ handlers,
   commands, disco#info additions, tasks, servers);
5. the stream's handlers, registered last: messages, presence, the session.

This module names no feature: :data:`component.features.FEATURES` lists them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import io
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from component import metrics
from component.config import Config
from component.directory import Directory
from component.ejabberd_api import EjabberdApi
from component.feature import Contribution, Core, Server, Task
from component.features import FEATURES
from component.logs import get_logger
from component.roster_sync import RosterSync
from component.routing.commands import CommandRegistry
from component.routing.conversation_cache import ConversationCache
from component.routing.delivery import sweep_forever
from component.routing.iq import IqHandlers
from component.routing.outbox import Outbox
from component.routing.presence import PresenceRouter
from component.routing.router import MessageRouter, wait_idle
from component.search import DirectorySearch
from component.systemd import Notifier
from component.xmpp import ComponentStream
from storage import postgres
from storage import redis as redis_store
from storage.errors import raise_if_cancelling

log = get_logger(__name__)

#: Longest wait for queued messages at shutdown.
DRAIN_TIMEOUT_S = 10.0
#: Longest wait for the background tasks to end once cancelled.
TASK_STOP_TIMEOUT_S = 5.0
#: Bounds of the wait before a crashed background task is started again
#: (doubled while it keeps crashing; back to the minimum after a minute of work).
RESTART_MIN_DELAY_S = 1.0
RESTART_MAX_DELAY_S = 60.0
#: Allocations between two collections of the young generation (CPython's default: 700).
YOUNG_GENERATION_THRESHOLD = 10_000


@dataclasses.dataclass
class Parts:
    """Everything one component process runs."""

    core: Core
    messages: MessageRouter
    presence: PresenceRouter
    roster: RosterSync
    #: Background loops by task name: the core's, then every feature's.
    tasks: dict[str, Task]
    servers: list[Server]
    ready_file: Path | None
    systemd: Notifier


async def build(cfg: Config) -> Parts:
    """Open the stores, build the core and every feature around one XMPP stream."""
    domain = cfg.component.domain
    pg = await postgres.connect(
        cfg.database.url,
        min_size=cfg.database.pool_min,
        max_size=cfg.database.pool_max,
        command_timeout=cfg.database.command_timeout,
        search_connections=cfg.database.search_connections,
        company_domain=domain,
    )
    rd = await redis_store.connect(
        cfg.redis.url, prefix=f"{cfg.redis.prefix}:{domain}", timeout=cfg.redis.timeout
    )
    stream = ComponentStream(cfg.component)
    directory = Directory(pg.directory)
    core = Core(
        config=cfg,
        pg=pg,
        rd=rd,
        directory=directory,
        search=DirectorySearch(pg.search, directory),
        stream=stream,
        outbox=Outbox(stream.write, cfg.component.max_stanza_size),
    )
    features = [feature(core) for feature in FEATURES]
    messages = MessageRouter(
        domain=domain,
        own_archives=cfg.ejabberd.vhost if cfg.ejabberd.own_archives else None,
        directory=core.directory,
        cache=ConversationCache(),
        conversations=pg.conversations,
        archive=pg.archive,
        presence=rd.presence,
        admission=rd.admission,
        limit_settings=cfg.limits,
        archive_settings=cfg.archive,
        outbox=core.outbox,
        hooks=[hook for feature in features for hook in feature.hooks],
    )
    presence = PresenceRouter(
        domain=domain,
        directory=core.directory,
        presence=rd.presence,
        messages=messages,
        outbox=core.outbox,
        conversations=pg.conversations,
    )
    roster = RosterSync(
        domain=domain,
        local_host=cfg.ejabberd.vhost,
        jobs=pg.roster_jobs,
        api=EjabberdApi.from_settings(cfg.ejabberd),
        directory=core.directory,
        conversations=pg.conversations,
        on_added=presence.contact_added,
        on_removed=presence.agent_removed,
        connected=stream.connected_event.is_set,
    )
    contributions = [feature.contribute(messages) for feature in features]
    _register(core, contributions)
    ready_file = Path(cfg.component.ready_file) if cfg.component.ready_file else None
    if ready_file is not None:
        # Left by a process that could not shut down (kill -9, OOM, a container
        # restarted): this one is not ready until it is connected.
        ready_file.unlink(missing_ok=True)

    systemd = Notifier()

    async def on_session() -> None:
        if ready_file is not None:
            ready_file.parent.mkdir(parents=True, exist_ok=True)
            ready_file.write_text("connected\n")
        systemd.notify("READY=1", f"STATUS=connected to ejabberd as {domain}")
        await core.directory.loaded.wait()
        await presence.refresh()
        await roster.wakeup()

    def on_disconnected(_reason: object) -> None:
        if ready_file is not None:
            ready_file.unlink(missing_ok=True)
        systemd.notify("STATUS=the stream to ejabberd is lost: reconnecting")

    stream.route(messages.submit, presence.submit, on_session)
    stream.add_event_handler("disconnected", on_disconnected)
    tasks: dict[str, Task] = {
        "messages": messages.run,
        "presence": presence.run,
        "presence-watch": presence.watch_store,
        "directory-watch": lambda: pg.directory.watch(core.directory.reload),
        "conversation-watch": lambda: pg.conversations.watch_deleted(messages.cache.evict),
        "roster-watch": lambda: pg.roster_jobs.watch(roster.wakeup),
        "roster-sync": roster.run,
        "redelivery-sweep": lambda: sweep_forever(
            messages.deliveries, cfg.archive.redeliver_after, stream.connected_event.is_set
        ),
    }
    for contribution in contributions:
        tasks.update(contribution.tasks)
    servers = [server for c in contributions for server in c.servers]
    if cfg.metrics.port:
        servers.append(metrics.MetricsServer(cfg.metrics.host, cfg.metrics.port))
        tasks["pending-gauge"] = lambda: metrics.watch_pending(pg.archive)
    if systemd.watchdog_interval is not None:
        tasks["systemd-watchdog"] = systemd.watchdog
    return Parts(core, messages, presence, roster, tasks, servers, ready_file, systemd)


def _register(core: Core, contributions: list[Contribution]) -> None:
    """The features' IQ handlers, ad-hoc commands and disco#info additions, on the stream."""
    cfg = core.config
    commands = CommandRegistry(
        directory=core.directory,
        secret=cfg.component.secret,
        session_ttl=cfg.commands.session_ttl,
    )
    for contribution in contributions:
        for command in contribution.commands:
            commands.add(command)
    commands.register(core.stream)
    IqHandlers(
        domain=core.domain,
        directory=core.directory,
        search=core.search,
        conversations=core.pg.conversations,
        commands=commands,
        disco_extensions=[d for c in contributions for d in c.disco],
    ).register(core.stream)
    for contribution in contributions:
        for handlers in contribution.iq:
            handlers.register(core.stream)


class App:
    def __init__(self, config: Config) -> None:
        self.config = config
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()

    async def run(self) -> None:
        cfg = self.config
        p = await build(cfg)
        settle_heap()
        for name, task in p.tasks.items():
            self._spawn(self._supervised(name, task), name)
        for server in p.servers:
            await server.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        log.info(
            "component.starting",
            domain=cfg.component.domain,
            server=f"{cfg.component.host}:{cfg.component.port}",
            event_loop=type(loop).__module__.partition(".")[0],  # uvloop, or asyncio
        )
        p.core.stream.start()
        try:
            await self._stop.wait()
        finally:
            await self._shutdown(p)

    async def _shutdown(self, p: Parts) -> None:
        """Stop taking work, finish what was taken, then let go.

        Servers (inbound mail) stop accepting first; the queued messages are
        committed and answered; then the stream is closed, after which
        ejabberd routes the domain's stanzas to the other processes. What
        arrived while the stream was closing is committed too (archived, no
        longer answerable here): the other processes' redelivery sweep
        delivers it (``archive.redeliver_after``).
        """
        log.info("component.stopping")
        p.systemd.notify("STOPPING=1")
        for server in p.servers:
            await server.stop()
        if not await wait_idle(p.messages, DRAIN_TIMEOUT_S):
            log.error("component.drain_timeout")
        await p.core.stream.stop()
        log.info("component.disconnected_for_shutdown")
        if not await wait_idle(p.messages, DRAIN_TIMEOUT_S):
            log.error("component.drain_timeout")
        if p.ready_file is not None:
            p.ready_file.unlink(missing_ok=True)
        for task in self._tasks:
            task.cancel()
        _, stuck = await asyncio.wait(self._tasks, timeout=TASK_STOP_TIMEOUT_S)
        for task in stuck:
            stack = io.StringIO()
            task.print_stack(file=stack)
            log.error("component.task_stuck", task=task.get_name(), stack=stack.getvalue())
        log.info("component.tasks_stopped")
        await p.core.pg.close()
        await p.core.rd.close()
        log.info("component.stopped")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    @staticmethod
    async def _supervised(name: str, task: Task) -> None:
        """Run a background loop; if it crashes, log it and start it again.

        No crash of one loop takes the process down: the others (the stream,
        the routers) keep serving while it waits to come back. A loop that
        returns (one that is switched off) is not restarted.
        """
        loop = asyncio.get_running_loop()
        delay = RESTART_MIN_DELAY_S
        while True:
            started = loop.time()
            try:
                await task()
                return
            except Exception as exc:
                raise_if_cancelling(exc)
                log.exception("component.task_crashed", task=name, restart_in_s=delay)
            if loop.time() - started > RESTART_MAX_DELAY_S:
                delay = RESTART_MIN_DELAY_S
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_MAX_DELAY_S)


def settle_heap() -> None:
    """Keep the cyclic garbage collector off what start-up built, and run it
    less often on what the traffic allocates.

    The collector walks every container object of the generations it
    collects, inside the event loop. A full collection walked the 76,000
    objects start-up leaves (modules, configuration, caches) for 27-54 ms,
    a pause every message in flight waited through, and the young
    generation was collected every 700 allocations while each batch holds
    a few thousand objects alive (12 % of the component's busy time at
    4,000 messages a second, docs/performance.md). ``gc.freeze()`` moves
    what exists now to a generation the collector never walks: those
    objects are still freed by reference counting, only a cycle of them
    would stay, and they live as long as the process anyway. A higher young
    threshold makes each walk of the batch in flight count for more
    allocations.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)
