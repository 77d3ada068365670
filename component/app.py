"""Wiring: stores, caches, routers and the XMPP stream, and their lifetime."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from component.config import Config
from component.conversation_cache import ConversationCache
from component.desk import DeskAssignments
from component.directory import Directory
from component.ejabberd_api import EjabberdApi
from component.logs import get_logger
from component.notify.away import AwayReplies
from component.notify.cascade import Cascade
from component.notify.email import SmtpSender
from component.notify.inbound import InboundServer
from component.notify.preferences import Preferences
from component.notify.push import PushSender
from component.notify.tokens import Tokens
from component.requests import RequestService
from component.response_times import ResponseTimes
from component.retention import prune_forever
from component.roster_sync import RosterSync
from component.routing.commands import CommandRegistry
from component.routing.desk_commands import DeskParts, desk_commands
from component.routing.directory_iq import DirectoryIqHandlers
from component.routing.iq import IqHandlers
from component.routing.mam import MamHandler
from component.routing.messages import MessageRouter, Outbox, sweep_forever, wait_idle
from component.routing.notify_settings import NotifyIqHandlers, notify_commands
from component.routing.presence import PresenceRouter
from component.routing.request_commands import request_commands
from component.routing.requests import RequestIqHandlers
from component.xmpp import ComponentStream
from storage import postgres
from storage import redis as redis_store

log = get_logger(__name__)

#: Longest wait for queued messages at shutdown.
DRAIN_TIMEOUT_S = 10.0
#: Longest wait for the background tasks to end once cancelled.
TASK_STOP_TIMEOUT_S = 5.0


@dataclasses.dataclass
class Parts:
    """Everything one component process runs."""

    pg: postgres.PostgresStores
    rd: redis_store.RedisStores
    directory: Directory
    messages: MessageRouter
    presence: PresenceRouter
    requests: RequestService
    roster: RosterSync
    stream: ComponentStream
    ready_file: Path | None
    #: XEP-0050 ad-hoc commands: features add theirs before the stream starts.
    commands: CommandRegistry
    cascade: Cascade
    inbound: InboundServer | None


async def wire(cfg: Config) -> Parts:
    """Open the stores and build the routers around one XMPP stream."""
    domain = cfg.component.domain
    pg = await postgres.connect(
        cfg.database.url,
        min_size=cfg.database.pool_min,
        max_size=cfg.database.pool_max,
        command_timeout=cfg.database.command_timeout,
        company_domain=domain,
    )
    rd = await redis_store.connect(
        cfg.redis.url, prefix=f"{cfg.redis.prefix}:{domain}", timeout=cfg.redis.timeout
    )
    directory = Directory(pg.directory)
    outbox = Outbox()
    messages = MessageRouter(
        domain=domain,
        directory=directory,
        cache=ConversationCache(),
        conversations=pg.conversations,
        archive=pg.archive,
        presence=rd.presence,
        limits=rd.limits,
        limit_settings=cfg.limits,
        archive_settings=cfg.archive,
        outbox=outbox,
        assignments=DeskAssignments(pg.desk),
    )
    presence = PresenceRouter(
        domain=domain,
        directory=directory,
        presence=rd.presence,
        messages=messages,
        outbox=outbox,
        conversations=pg.conversations,
    )
    requests = RequestService(
        domain=domain,
        directory=directory,
        store=pg.requests,
        limits=rd.limits,
        router=messages,
        outbox=outbox,
        settings=cfg.requests,
        max_body_chars=cfg.limits.max_body_chars,
    )
    smtp = SmtpSender(cfg.smtp)
    push = PushSender(cfg.push)
    tokens = Tokens(cfg.inbound.secret, cfg.inbound.token_ttl)
    cascade = Cascade(
        domain=domain,
        directory=directory,
        notify=pg.notify,
        contacts=pg.contacts,
        conversations=pg.conversations,
        presence=rd.presence,
        router=messages,
        settings=cfg.notify,
        smtp=smtp,
        sender=cfg.smtp.sender,
        push=push,
        tokens=tokens,
        reply_domain=cfg.inbound.reply_domain,
        max_body_chars=cfg.limits.max_body_chars,
    )
    preferences = Preferences(
        contacts=pg.contacts,
        limits=rd.limits,
        smtp=smtp,
        sender=cfg.smtp.sender,
        service_name=domain,
        allow_http_push=cfg.dev_mode,
    )
    inbound = (
        InboundServer(
            cfg.inbound,
            tokens,
            expected_sender=cascade.expected_sender,
            on_reply=cascade.on_reply,
            on_unsubscribe=cascade.on_unsubscribe,
        )
        if cfg.notify.enabled and cfg.inbound.enabled
        else None
    )
    roster = RosterSync(
        domain=domain,
        local_host=cfg.ejabberd.vhost,
        jobs=pg.roster_jobs,
        api=EjabberdApi(cfg.ejabberd.api_url, cfg.ejabberd.api_token, cfg.ejabberd.api_timeout),
        on_added=lambda slug, jid: presence.refresh([(slug, jid)]),
        on_removed=presence.agent_removed,
    )
    ready_file = Path(cfg.component.ready_file) if cfg.component.ready_file else None

    async def on_session() -> None:
        if ready_file is not None:
            ready_file.parent.mkdir(parents=True, exist_ok=True)
            ready_file.write_text("connected\n")
        await directory.loaded.wait()
        await presence.refresh()
        await roster.wakeup()

    stream = ComponentStream(cfg.component, messages.submit, presence.submit, on_session)
    outbox.attach(stream.write)
    away = AwayReplies(
        domain=domain, limits=rd.limits, outbox=outbox, entity_time=stream.entity_time
    )
    messages.hooks = [requests, cascade, away] if cfg.notify.enabled else [requests]
    if ready_file is not None:
        stream.add_event_handler("disconnected", lambda _: ready_file.unlink(missing_ok=True))
    commands = CommandRegistry(
        directory=directory, secret=cfg.component.secret, session_ttl=cfg.commands.session_ttl
    )
    for command in [
        *request_commands(requests, messages, pg.conversations),
        *notify_commands(preferences),
        *desk_commands(
            DeskParts(
                domain=domain,
                directory=directory,
                desk=pg.desk,
                conversations=pg.conversations,
                directory_store=pg.directory,
                router=messages,
                max_body_chars=cfg.limits.max_body_chars,
                default_reaction_window_s=cfg.notify.company_reaction_window,
            )
        ),
    ]:
        commands.add(command)
    commands.register(stream)
    directory_iq = DirectoryIqHandlers(
        domain=domain, directory=directory, response_times=ResponseTimes(pg.response_times)
    )
    directory_iq.register(stream)
    IqHandlers(
        domain=domain,
        directory=directory,
        conversations=pg.conversations,
        commands=commands,
        disco_extensions=[directory_iq],
    ).register(stream)
    MamHandler(
        domain=domain,
        directory=directory,
        conversations=pg.conversations,
        archive=pg.archive,
        outbox=outbox,
    ).register(stream)
    RequestIqHandlers(requests).register(stream)
    NotifyIqHandlers(preferences, push.public_key() if push.enabled else None).register(stream)
    return Parts(
        pg,
        rd,
        directory,
        messages,
        presence,
        requests,
        roster,
        stream,
        ready_file,
        commands,
        cascade,
        inbound,
    )


class App:
    def __init__(self, config: Config) -> None:
        self.config = config
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()

    async def run(self) -> None:
        cfg = self.config
        p = await wire(cfg)
        self._spawn(p.messages.run(), "messages")
        self._spawn(p.presence.run(), "presence")
        self._spawn(p.pg.directory.watch(p.directory.reload), "directory-watch")
        self._spawn(p.pg.conversations.watch_deleted(p.messages.cache.evict), "conversation-watch")
        self._spawn(p.pg.roster_jobs.watch(p.roster.wakeup), "roster-watch")
        self._spawn(p.roster.run(), "roster-sync")
        self._spawn(p.requests.expire_forever(), "request-expiry")
        if cfg.notify.enabled:
            self._spawn(p.cascade.run(), "notify-cascade")
        if p.inbound is not None:
            await p.inbound.start()
        self._spawn(
            sweep_forever(p.messages, cfg.archive.redeliver_after, p.stream.connected_event.is_set),
            "redelivery-sweep",
        )
        self._spawn(
            prune_forever(
                p.pg.archive, cfg.archive.retention_interval, cfg.archive.retention_batch
            ),
            "retention-sweep",
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        log.info(
            "component.starting",
            domain=cfg.component.domain,
            server=f"{cfg.component.host}:{cfg.component.port}",
        )
        p.stream.start()
        try:
            await self._stop.wait()
        finally:
            await self._shutdown(p)

    async def _shutdown(self, p: Parts) -> None:
        log.info("component.stopping")
        if p.inbound is not None:
            await p.inbound.stop()
        if not await wait_idle(p.messages, DRAIN_TIMEOUT_S):
            log.error("component.drain_timeout")
        await p.stream.stop()
        log.info("component.disconnected_for_shutdown")
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
        await p.pg.close()
        await p.rd.close()
        log.info("component.stopped")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("component.task_crashed", task=task.get_name(), error=repr(exc))
            self._stop.set()
