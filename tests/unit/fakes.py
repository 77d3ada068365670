"""In-memory stand-ins for the storage protocols, for socket-free routing tests.

They follow the contracts in storage/protocols.py; the real implementations
are exercised against PostgreSQL and Redis in tests/integration/storage.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

from component.config import ArchiveSettings, LimitsSettings
from component.directory import Directory
from component.routing.conversation_cache import ConversationCache
from component.routing.hooks import RoutingHooks
from component.routing.outbox import Outbox
from component.routing.router import MessageRouter
from storage.errors import NotFound, Unavailable
from storage.models import (
    Agent,
    ArchivedBatch,
    ArchivedMessage,
    ArchiveResult,
    Company,
    Conversation,
    Delivery,
    DirectorySnapshot,
    Limit,
    NewMessage,
    Once,
    PresenceChange,
    Role,
)


def _token(n: int) -> str:
    """A valid conversation token ([a-z2-7]{10}) derived from a counter."""
    letters = "abcdefghij"
    return "".join(letters[int(d)] for d in f"{n:010d}")


class Switch:
    """Makes a fake raise Unavailable while ``down`` is true."""

    def __init__(self) -> None:
        self.down = False

    def check(self) -> None:
        if self.down:
            raise Unavailable("fake outage")


class FakeDirectoryStore:
    def __init__(self) -> None:
        self.companies: dict[str, Company] = {}
        self.agents: dict[int, list[Agent]] = {}
        self._ids = itertools.count(1)

    def add(self, slug: str, name: str, agents: Sequence[str] = ()) -> Company:
        company = Company(next(self._ids), slug, name, None, "UTC", None, None, None)
        self.companies[slug] = company
        self.agents[company.id] = [Agent(company.id, a, Role.AGENT) for a in agents]
        return company

    async def snapshot(self) -> DirectorySnapshot:
        agents = tuple(a for lst in self.agents.values() for a in lst)
        return DirectorySnapshot(tuple(self.companies.values()), agents)

    async def get_company(self, slug: str) -> Company | None:
        return self.companies.get(slug)

    async def list_agents(self, slug: str) -> list[Agent]:
        if slug not in self.companies:
            raise NotFound(slug)
        return list(self.agents.get(self.companies[slug].id, []))


class FakeConversations:
    def __init__(self, tokens: Sequence[str] = ()) -> None:
        self.rows: dict[tuple[int, str], Conversation] = {}
        self.switch = Switch()
        self._ids = itertools.count(1)
        self._tokens = list(tokens)

    async def open_many(self, pairs: Sequence[tuple[int, str, str | None]]) -> list[Conversation]:
        self.switch.check()
        out = []
        for company_id, jid, nick in pairs:
            conv = self.rows.get((company_id, jid))
            if conv is None:
                cid = next(self._ids)
                token = self._tokens.pop(0) if self._tokens else _token(cid)
                conv = Conversation(cid, company_id, jid, token, nick)
            elif nick is not None and nick != conv.customer_nick:
                conv = dataclasses.replace(conv, customer_nick=nick)
            self.rows[(company_id, jid)] = conv
            out.append(conv)
        return out

    async def find(self, company_id: int, customer_jid: str) -> Conversation | None:
        self.switch.check()
        return self.rows.get((company_id, customer_jid))

    async def of_company(self, company_id: int, token: str) -> Conversation | None:
        self.switch.check()
        return next(
            (c for c in self.rows.values() if c.token == token and c.company_id == company_id),
            None,
        )

    async def by_ids(self, ids: Sequence[int]) -> list[Conversation]:
        self.switch.check()
        return [c for c in self.rows.values() if c.id in ids]


class FakeArchive:
    def __init__(self) -> None:
        self.rows: list[tuple[int, NewMessage]] = []
        self.batches: list[int] = []
        self.deliveries: dict[int, list[str]] = {}  #: unconfirmed: id -> stanza ids
        self.switch = Switch()
        self._delivery_ids = itertools.count(1)

    async def append_batch(
        self, messages: Sequence[NewMessage], confirmed: Sequence[int] = ()
    ) -> ArchivedBatch:
        self.switch.check()
        await self.confirm(confirmed)
        self.batches.append(len(messages))
        results = []
        new: list[str] = []
        for m in messages:
            first = next(
                (
                    r
                    for _, r in self.rows
                    if m.client_key is not None
                    and (r.conversation_id, r.sender_jid, r.client_key)
                    == (m.conversation_id, m.sender_jid, m.client_key)
                ),
                None,
            )
            if first is not None:
                results.append(ArchiveResult(first.stanza_id, True))
            else:
                self.rows.append((len(self.rows) + 1, m))
                results.append(ArchiveResult(m.stanza_id, False))
                if not m.pending:
                    new.append(m.stanza_id)
        delivery_id = None
        if new:
            delivery_id = next(self._delivery_ids)
            self.deliveries[delivery_id] = new
        return ArchivedBatch(results, delivery_id)

    def pending(self) -> list[NewMessage]:
        return [m for _, m in self.rows if m.pending]

    async def claim_pending(self, company_ids: Sequence[int], limit: int) -> Delivery | None:
        raise NotImplementedError  # the fake keeps no conversation -> company map

    async def claim_unconfirmed(self, older_than_s: float, limit: int) -> list[Delivery]:
        self.switch.check()
        out = []
        for delivery_id, stanza_ids in self.deliveries.items():
            messages = [
                ArchivedMessage(
                    i,
                    m.conversation_id,
                    m.author,
                    m.sender_jid,
                    m.body,
                    m.stanza_id,
                    m.client_id,
                    m.ts,
                )
                for i, m in self.rows
                if m.stanza_id in stanza_ids
            ]
            out.append(Delivery(delivery_id, messages))
        return out

    async def confirm(self, delivery_ids: Sequence[int]) -> None:
        self.switch.check()
        for delivery_id in delivery_ids:
            self.deliveries.pop(delivery_id, None)

    async def requeue(self, stanza_ids: Sequence[str]) -> None:
        self.rows = [
            (i, dataclasses.replace(m, pending=True) if m.stanza_id in stanza_ids else m)
            for i, m in self.rows
        ]


class FakePresence:
    def __init__(self) -> None:
        self.resources: dict[str, dict[str, str]] = {}
        self.switch = Switch()

    async def update(self, agent_jid: str, resource: str, show: str | None) -> PresenceChange:
        self.switch.check()
        res = self.resources.setdefault(agent_jid, {})
        was = bool(res)
        if show is None:
            res.pop(resource, None)
        else:
            res[resource] = show
        return PresenceChange(was, bool(res))

    async def online_among(self, agent_jids: Sequence[str]) -> set[str]:
        self.switch.check()
        return {j for j in agent_jids if self.resources.get(j)}

    async def clock_ms(self) -> int:
        self.switch.check()
        return 0

    async def prune(self, agent_jids: Sequence[str], before_ms: int) -> list[str]:
        self.switch.check()
        return []

    async def forget(self, agent_jid: str) -> None:
        self.resources.pop(agent_jid, None)


class FakeLimits:
    """Counts like Redis does; ``allow`` caps every limit further (None: no cap)."""

    def __init__(self, allow: int | None = None) -> None:
        self.allow = allow
        self.counts: dict[tuple[Limit, str | int], int] = {}
        self.seen: set[tuple[Once, tuple[str | int, ...]]] = set()
        self.switch = Switch()

    async def hit(
        self, kind: Limit, subjects: Sequence[str | int], limit: int, window_s: int
    ) -> list[bool]:
        self.switch.check()
        out = []
        for s in subjects:
            self.counts[kind, s] = self.counts.get((kind, s), 0) + 1
            out.append(self.counts[kind, s] <= min(limit, self.allow or limit))
        return out

    async def first_seen(
        self, kind: Once, keys: Sequence[Sequence[str | int]], ttl_s: int
    ) -> list[bool]:
        self.switch.check()
        out = []
        for key in keys:
            k = (kind, tuple(key))
            out.append(k not in self.seen)
            self.seen.add(k)
        return out


def message_router(
    directory: Directory,
    outbox: Outbox,
    *,
    domain: str = "biz.localhost",
    conversations: FakeConversations | None = None,
    archive: FakeArchive | None = None,
    presence: FakePresence | None = None,
    limits: FakeLimits | None = None,
    limit_settings: LimitsSettings | None = None,
    hooks: Sequence[RoutingHooks] = (),
) -> MessageRouter:
    """A MessageRouter on in-memory stores, handling each message at once (no linger)."""
    return MessageRouter(
        domain=domain,
        directory=directory,
        cache=ConversationCache(),
        conversations=conversations or FakeConversations(),
        archive=archive or FakeArchive(),
        presence=presence or FakePresence(),
        limits=limits or FakeLimits(),
        limit_settings=limit_settings or LimitsSettings(),
        archive_settings=ArchiveSettings(flush_interval_ms=0),
        outbox=outbox,
        hooks=hooks,
    )
