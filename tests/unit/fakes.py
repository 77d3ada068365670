"""In-memory stand-ins for the storage protocols, for socket-free routing tests.

Each fake follows its interface in storage/protocols.py as far as it goes,
and tests/contracts runs the same tests against it and against the real
store (PostgreSQL or Redis), so the two cannot drift apart; what a fake
leaves out is said in its contract suite. Besides the interface, fakes have
setup helpers and bookkeeping for the tests (``add``, ``rows``, ``calls``,
a ``switch`` that plays an outage).
"""

from __future__ import annotations

import dataclasses
import itertools
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from component.config import ArchiveSettings, LimitsSettings
from component.directory import Directory
from component.routing.conversation_cache import ConversationCache
from component.routing.hooks import RoutingHooks
from component.routing.outbox import Outbox
from component.routing.router import MessageRouter
from storage.errors import NotFound, Unavailable
from storage.models import (
    Admission,
    Admitted,
    Agent,
    ArchivedBatch,
    ArchivedMessage,
    ArchiveResult,
    BatchExtras,
    BatchRead,
    Company,
    CompanySearch,
    Conversation,
    Delivery,
    DeskRouting,
    DirectorySnapshot,
    KnownValues,
    Limit,
    NewMessage,
    Once,
    Party,
    PresenceChange,
    RequestReply,
    Role,
    SearchCursor,
)

if TYPE_CHECKING:
    from tests.unit.fakes_services import FakeRequestStore


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
        # In PostgreSQL's order: companies (with agents) by slug, agents by
        # company and JID.
        companies = sorted(
            (c for c in self.companies.values() if self.agents.get(c.id)), key=lambda c: c.slug
        )
        agents = sorted(
            (a for lst in self.agents.values() for a in lst), key=lambda a: (a.company_id, a.jid)
        )
        return DirectorySnapshot(tuple(companies), tuple(agents))

    async def get_company(self, slug: str) -> Company | None:
        return self.companies.get(slug)

    async def companies_by_slug(self, slugs: Sequence[str]) -> list[Company]:
        return sorted((self.companies[s] for s in set(slugs) if s in self.companies), key=_slug)

    async def companies_by_id(self, ids: Sequence[int]) -> list[Company]:
        wanted = set(ids)
        return sorted((c for c in self.companies.values() if c.id in wanted), key=_id)

    async def list_agents(self, slug: str) -> list[Agent]:
        if slug not in self.companies:
            raise NotFound(slug)
        return sorted(self.agents.get(self.companies[slug].id, []), key=lambda a: a.jid)


class FakeDirectorySearchStore:
    """The directory's search over companies in memory, by PostgreSQL's rules
    (tests/contracts/test_search.py holds the two to the same results)."""

    def __init__(self, companies: Iterable[Company] | dict[str, Company] = ()) -> None:
        """``companies`` by slug (a FakeDirectoryStore's, shared) or a list of them."""
        self.companies: dict[str, Company] = (
            companies if isinstance(companies, dict) else {c.slug: c for c in companies}
        )

    def _ordered(self, criteria: CompanySearch) -> list[Company]:
        name, text = _blank_to_none(criteria.name), _blank_to_none(criteria.text)
        category, city = _blank_to_none(criteria.category), _blank_to_none(criteria.city)
        found = []
        for c in self.companies.values():
            folded = _fold(c.name)
            if criteria.takes_requests and not c.accepts_requests:
                continue
            if name is not None and not _part_of(_fold(name), folded, words=True):
                continue
            if text is not None and not (
                _part_of(_fold(text), folded, words=True)
                or any(_part_of(_fold(text), v) for v in (c.slug, _fold(c.category or "")))
            ):
                continue
            if category is not None and _fold(c.category or "") != _fold(category):
                continue
            if city is not None and _fold(c.city or "") != _fold(city):
                continue
            found.append(c)
        ranked_by = name if name is not None else text

        def key(c: Company) -> tuple[int, str, str]:
            folded = _fold(c.name)
            rank = 0
            if ranked_by is not None:
                part = _fold(ranked_by)
                rank = 0 if folded.startswith(part) or f" {part}" in folded else 1
            return rank, folded, c.slug

        return sorted(found, key=key)

    async def page(
        self, criteria: CompanySearch, cursor: SearchCursor, limit: int
    ) -> list[Company] | None:
        ordered = self._ordered(criteria)
        slugs = [c.slug for c in ordered]
        anchor = cursor.before if cursor.before is not None else cursor.after
        if anchor is not None and anchor not in slugs:
            return None
        if cursor.before is not None:
            end = slugs.index(cursor.before)
            return ordered[max(0, end - limit) : end]
        if cursor.last:
            return ordered[max(0, len(ordered) - limit) :]
        start = slugs.index(cursor.after) + 1 if cursor.after is not None else cursor.index
        return ordered[start : start + limit]

    async def count(self, criteria: CompanySearch, cap: int) -> int:
        return min(len(self._ordered(criteria)), cap)

    async def position(self, criteria: CompanySearch, slug: str, cap: int) -> int | None:
        slugs = [c.slug for c in self._ordered(criteria)]
        if slug not in slugs or slugs.index(slug) >= cap:
            return None
        return slugs.index(slug)

    async def known_values(self) -> KnownValues:
        def distinct(values: Iterable[str | None]) -> tuple[str, ...]:
            spelled: dict[str, str] = {}
            for value in values:
                if value and value.strip():
                    spelled.setdefault(_fold(value), " ".join(value.split()))
            return tuple(spelled[key] for key in sorted(spelled))

        by_slug = sorted(self.companies.values(), key=lambda c: c.slug)
        return KnownValues(
            categories=distinct(c.category for c in by_slug),
            cities=distinct(c.city for c in by_slug),
        )


def _slug(company: Company) -> str:
    return company.slug


def _id(company: Company) -> int:
    return company.id


def _fold(text: str) -> str:
    return " ".join(text.split()).lower()


def _part_of(part: str, value: str, *, words: bool = False) -> bool:
    """PostgreSQL's rule: a part of three letters or more anywhere; a shorter one
    at the start of ``value`` (or, with ``words``, of one of its words)."""
    if len(part) >= 3:
        return part in value
    return value.startswith(part) or (words and f" {part}" in value)


def _blank_to_none(value: str | None) -> str | None:
    return value if value is not None and value.strip() else None


class FakeConversations:
    def __init__(self, tokens: Sequence[str] = ()) -> None:
        self.rows: dict[tuple[int, str], Conversation] = {}
        self.switch = Switch()
        self._ids = itertools.count(1)
        self._tokens = list(tokens)

    def company_of(self, conversation_id: int) -> int | None:
        """The company of a conversation (None: no such conversation)."""
        return next((c.company_id for c in self.rows.values() if c.id == conversation_id), None)

    async def open_many(
        self, pairs: Sequence[tuple[int, str, str | None]], *, by_request: bool = False
    ) -> list[Conversation]:
        self.switch.check()
        # A pair repeated in the call is one conversation; its last non-None nick wins.
        nicks: dict[tuple[int, str], str | None] = {}
        for company_id, jid, nick in pairs:
            if nick is not None or (company_id, jid) not in nicks:
                nicks[company_id, jid] = nick
        for (company_id, jid), nick in nicks.items():
            conv = self.rows.get((company_id, jid))
            if conv is None:
                cid = next(self._ids)
                token = self._tokens.pop(0) if self._tokens else _token(cid)
                conv = Conversation(cid, company_id, jid, token, nick)
            elif nick is not None and nick != conv.customer_nick:
                conv = dataclasses.replace(conv, customer_nick=nick)
            self.rows[(company_id, jid)] = conv
        return [self.rows[company_id, jid] for company_id, jid, _ in pairs]

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


def _archived(row_id: int, m: NewMessage) -> ArchivedMessage:
    return ArchivedMessage(
        row_id,
        m.conversation_id,
        m.author,
        m.sender_jid,
        m.body,
        m.stanza_id,
        m.client_id,
        m.ts,
        m.thread,
        m.payload,
    )


class FakeArchive:
    """The archive of the conversations of ``conversations`` (others raise NotFound).

    Every unconfirmed delivery counts as stale whatever ``older_than_s`` (the
    fake has no clock): unit tests sweep at once. A batch's extras read the
    desk's routing through ``route`` and the requests of ``requests`` (a
    FakeRequestStore sets itself there), as PostgreSQL's batch statement reads
    their tables.
    """

    def __init__(
        self,
        conversations: FakeConversations,
        route: Callable[[Sequence[int], Sequence[int]], Awaitable[DeskRouting]] | None = None,
    ) -> None:
        self.conversations = conversations
        #: What reads the desk's routing for a batch's extras (a desk store's route).
        self.route = route
        #: The requests a batch's replies join and its updates move.
        self.requests: FakeRequestStore | None = None
        self.rows: list[tuple[int, NewMessage]] = []
        self.batches: list[int] = []
        #: Each batch's extras, as recorded: what depended on a duplicate left out.
        self.extras: list[BatchExtras] = []
        self.deliveries: dict[int, list[str]] = {}  #: unconfirmed: id -> stanza ids
        self.switch = Switch()
        self._delivery_ids = itertools.count(1)

    def _first_copy(self, m: NewMessage) -> NewMessage | None:
        """The archived message ``m`` repeats: same client key, or same stanza-id."""
        return next(
            (
                r
                for _, r in self.rows
                if r.stanza_id == m.stanza_id
                or (
                    m.client_key is not None
                    and (r.conversation_id, r.sender_jid, r.client_key)
                    == (m.conversation_id, m.sender_jid, m.client_key)
                )
            ),
            None,
        )

    def _new_delivery(self, stanza_ids: list[str]) -> int:
        delivery_id = next(self._delivery_ids)
        self.deliveries[delivery_id] = stanza_ids
        return delivery_id

    def _delivery(self, delivery_id: int) -> Delivery:
        stanza_ids = self.deliveries[delivery_id]
        messages = [_archived(i, m) for i, m in self.rows if m.stanza_id in stanza_ids]
        return Delivery(delivery_id, messages)

    async def append_batch(
        self,
        messages: Sequence[NewMessage],
        confirmed: Sequence[int] = (),
        extras: BatchExtras | None = None,
    ) -> ArchivedBatch:
        self.switch.check()
        for m in messages:
            if self.conversations.company_of(m.conversation_id) is None:
                raise NotFound(f"conversation does not exist: {m.conversation_id}")
        await self.confirm(confirmed)
        self.batches.append(len(messages))
        extras = extras or BatchExtras()
        threads = self._threads(extras.replies)
        results = []
        new: list[str] = []
        for m in messages:
            first = self._first_copy(m)
            if first is not None:
                results.append(ArchiveResult(first.stanza_id, True))
            else:
                thread, payload = threads.get(m.stanza_id, (m.thread, m.payload))
                archived = dataclasses.replace(m, thread=thread, payload=payload)
                self.rows.append((len(self.rows) + 1, archived))
                results.append(ArchiveResult(m.stanza_id, False))
                if not m.pending:
                    new.append(m.stanza_id)
        fresh = {r.stanza_id for r in results if not r.duplicate}
        settled = extras.settled(fresh)
        if extras:
            self.extras.append(settled)
        routing = DeskRouting({}, [])
        if self.route is not None and (extras.routed or extras.reopen):
            routing = await self.route(extras.routed, extras.reopen)
        changes = []
        if self.requests is not None and settled.updates:
            changes = self.requests.move(settled.updates)
        return ArchivedBatch(
            results,
            self._new_delivery(new) if new else None,
            {s: given for s, given in threads.items() if s in fresh},
            BatchRead(routing, changes),
        )

    def _threads(self, replies: Sequence[RequestReply]) -> dict[str, tuple[str, str]]:
        """The thread and payload of each reply in a conversation with an open request."""
        found = {}
        for reply in replies:
            request = self.requests.newest_open(reply.conversation_id) if self.requests else None
            if request is not None:
                pid = request.public_id
                found[reply.stanza_id] = (pid, reply.head + pid + reply.tail)
        return found

    def insert_delivered(self, messages: Sequence[NewMessage]) -> Delivery:
        """Archive new messages under one delivery, as the request store does."""
        for m in messages:
            self.rows.append((len(self.rows) + 1, m))
        return self._delivery(self._new_delivery([m.stanza_id for m in messages]))

    def pending(self) -> list[NewMessage]:
        return [m for _, m in self.rows if m.pending]

    async def claim_pending(self, company_ids: Sequence[int], limit: int) -> Delivery | None:
        self.switch.check()
        taken = [
            (i, m)
            for i, m in self.rows
            if m.pending and self.conversations.company_of(m.conversation_id) in company_ids
        ][:limit]
        if not taken:
            return None
        claimed = {i for i, _ in taken}
        self.rows = [
            (i, dataclasses.replace(m, pending=False) if i in claimed else m) for i, m in self.rows
        ]
        return self._delivery(self._new_delivery([m.stanza_id for _, m in taken]))

    async def count_pending(self) -> int:
        self.switch.check()
        return sum(1 for _, m in self.rows if m.pending)

    async def claim_unconfirmed(self, older_than_s: float, limit: int) -> list[Delivery]:
        self.switch.check()
        return [self._delivery(delivery_id) for delivery_id in list(self.deliveries)[:limit]]

    async def confirm(self, delivery_ids: Sequence[int]) -> None:
        self.switch.check()
        for delivery_id in delivery_ids:
            self.deliveries.pop(delivery_id, None)

    async def requeue(self, stanza_ids: Sequence[str]) -> None:
        self.switch.check()
        self.rows = [
            (i, dataclasses.replace(m, pending=True))
            if m.stanza_id in stanza_ids and m.author is Party.CUSTOMER
            else (i, m)
            for i, m in self.rows
        ]


def _clock_ms() -> int:
    return time.time_ns() // 1_000_000


class FakePresence:
    def __init__(self) -> None:
        self.resources: dict[str, dict[str, str]] = {}  #: agent -> resource -> show
        self.switch = Switch()
        self._seen: dict[tuple[str, str], int] = {}  #: (agent, resource) -> clock_ms
        self._generation = uuid.uuid4().hex

    async def update(self, agent_jid: str, resource: str, show: str | None) -> PresenceChange:
        self.switch.check()
        res = self.resources.setdefault(agent_jid, {})
        was = bool(res)
        if show is None:
            res.pop(resource, None)
        else:
            res[resource] = show
            self._seen[agent_jid, resource] = _clock_ms()
        return PresenceChange(was, bool(res))

    async def online_among(self, agent_jids: Sequence[str]) -> set[str]:
        self.switch.check()
        return {j for j in agent_jids if self.resources.get(j)}

    async def clock_ms(self) -> int:
        self.switch.check()
        return _clock_ms()

    async def prune(self, agent_jids: Sequence[str], before_ms: int) -> list[str]:
        self.switch.check()
        offline = []
        for jid in agent_jids:
            res = self.resources.get(jid)
            if not res:
                continue
            for resource in list(res):
                if self._seen.get((jid, resource), 0) < before_ms:
                    del res[resource]
            if not res:
                offline.append(jid)
        return offline

    async def forget(self, agent_jid: str) -> None:
        self.switch.check()
        self.resources.pop(agent_jid, None)

    async def generation(self) -> str:
        self.switch.check()
        return self._generation

    def lose_everything(self) -> None:
        """What a Redis restart without persistence does."""
        self.resources.clear()
        self._seen.clear()
        self._generation = uuid.uuid4().hex


class FakeLimits:
    """Counts like Redis does; ``allow`` caps every limit further (None: no cap)."""

    def __init__(self, allow: int | None = None) -> None:
        self.allow = allow
        #: (kind, window, subject) -> (count, when the window ends, monotonic s)
        self.counts: dict[tuple[Limit, int, str], tuple[int, float]] = {}
        self.seen: dict[str, float] = {}  #: key -> when it expires (monotonic s)
        self.switch = Switch()

    async def hit(
        self, kind: Limit, subjects: Sequence[str | int], limit: int, window_s: int
    ) -> list[bool]:
        self.switch.check()
        now = time.monotonic()
        out = []
        for s in subjects:
            key = (kind, window_s, str(s))  # Redis keys are strings: 7 and "7" are one subject
            count, ends = self.counts.get(key, (0, now + window_s))
            if ends <= now:  # the window is over: a new one starts with this event
                count, ends = 0, now + window_s
            self.counts[key] = (count + 1, ends)
            out.append(count + 1 <= min(limit, self.allow or limit))
        return out

    async def first_seen(
        self, kind: Once, keys: Sequence[Sequence[str | int]], ttl_s: int
    ) -> list[bool]:
        self.switch.check()
        now = time.monotonic()
        out = []
        for key in keys:
            name = ":".join(str(part) for part in (kind, *key))  # as Redis names it
            first = self.seen.get(name, 0.0) <= now
            if first:
                self.seen[name] = now + ttl_s
            out.append(first)
        return out


class FakeAdmission:
    """A batch's questions, answered by the fakes of the two stores they concern."""

    def __init__(self, limits: FakeLimits, presence: FakePresence) -> None:
        self.limits = limits
        self.presence = presence
        self.calls = 0  #: admissions asked (one round trip each, in Redis)

    async def admit(self, admission: Admission) -> Admitted:
        if not admission:
            return Admitted(allowed=tuple([] for _ in admission.hits))
        self.calls += 1
        allowed = []
        for h in admission.hits:
            allowed.append(await self.limits.hit(h.kind, h.subjects, h.limit, h.window_s))
        agents = admission.agents
        online = await self.presence.online_among(agents) if agents else set()
        marks = admission.marks
        first = await self.limits.first_seen(marks.kind, marks.keys, marks.ttl_s) if marks else []
        return Admitted(allowed=tuple(allowed), online=frozenset(online), first=first)


def message_router(
    directory: Directory,
    outbox: Outbox,
    *,
    domain: str = "biz.localhost",
    own_archives: str | None = "localhost",
    conversations: FakeConversations | None = None,
    archive: FakeArchive | None = None,
    presence: FakePresence | None = None,
    limits: FakeLimits | None = None,
    limit_settings: LimitsSettings | None = None,
    hooks: Sequence[RoutingHooks] = (),
) -> MessageRouter:
    """A MessageRouter on in-memory stores, handling each message at once (no linger)."""
    conversations = conversations or FakeConversations()
    presence = presence or FakePresence()
    return MessageRouter(
        domain=domain,
        own_archives=own_archives,
        directory=directory,
        cache=ConversationCache(),
        conversations=conversations,
        archive=archive or FakeArchive(conversations),
        presence=presence,
        admission=FakeAdmission(limits or FakeLimits(), presence),
        limit_settings=limit_settings or LimitsSettings(),
        archive_settings=ArchiveSettings(flush_interval_ms=0),
        outbox=outbox,
        hooks=hooks,
    )
