"""What a feature is: one package that declares everything it adds to the component.

A feature (``component/features/<name>/``) owns its protocol, its rules and
its handlers. Its package exports one :class:`Feature` subclass, listed in
:data:`component.features.FEATURES`; :mod:`component.app` builds every
feature the same way and never names one:

1. ``Feature(core)``: the feature gets what every process shares
   (:class:`Core`: configuration, stores, the in-memory directory, the stream).
2. :attr:`Feature.hooks`: its part in routing (:mod:`component.routing.hooks`),
   read once to build the message router.
3. :meth:`Feature.contribute`, given the router: its IQ handlers, ad-hoc
   commands, disco#info additions, background tasks and servers
   (:class:`Contribution`).

Its operator's verbs (``orgchat <verb> ...``) are :attr:`Feature.cli`
(:class:`~component.cli_common.CliVerbs`, its ``cli`` module's ``CLI``); the
command line needs no running component.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, ClassVar, Protocol

from component.cli_common import CliVerbs
from component.config import Config
from component.directory import Directory
from component.routing.commands import Command
from component.routing.hooks import RoutingHooks
from component.routing.iq import DiscoExtension
from component.routing.outbox import Outbox
from component.routing.router import MessageRouter
from component.search import DirectorySearch
from component.xmpp import ComponentStream
from storage import postgres
from storage import redis as redis_store


@dataclasses.dataclass(frozen=True, slots=True)
class Core:
    """What every feature of one component process shares."""

    config: Config
    pg: postgres.PostgresStores
    rd: redis_store.RedisStores
    directory: Directory
    search: DirectorySearch
    stream: ComponentStream
    outbox: Outbox

    @property
    def domain(self) -> str:
        return self.config.component.domain


class IqHandlers(Protocol):
    """IQ handlers a feature registers on the stream (slixmpp handlers)."""

    def register(self, xmpp: Any) -> None: ...


class Server(Protocol):
    """Something listening besides the XMPP stream (the inbound SMTP server)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


#: A background loop: runs until cancelled.
Task = Callable[[], Coroutine[Any, Any, None]]


@dataclasses.dataclass(frozen=True, slots=True)
class Contribution:
    """Everything a feature adds once the router exists."""

    iq: Sequence[IqHandlers] = ()
    commands: Sequence[Command] = ()
    disco: Sequence[DiscoExtension] = ()
    #: Background loops by name (the name is the asyncio task's, in logs).
    tasks: Mapping[str, Task] = dataclasses.field(default_factory=dict)
    servers: Sequence[Server] = ()


class Feature(abc.ABC):
    """One feature of the component; see the module docstring."""

    #: Short name, in logs.
    name: ClassVar[str]
    #: Its verbs of the ``orgchat`` command, if it has any.
    cli: ClassVar[CliVerbs | None] = None

    def __init__(self, core: Core) -> None:
        self.core = core

    @property
    def hooks(self) -> Sequence[RoutingHooks]:
        """Its part in routing (none by default)."""
        return ()

    @abc.abstractmethod
    def contribute(self, router: MessageRouter) -> Contribution:
        """Its handlers, commands, disco additions, tasks and servers."""
