"""Message routing: customer -> company -> agents, agent -> conversation -> customer.

Every <message/> for the component domain enters :meth:`MessageRouter.submit`.
What can be decided from memory (unknown company, forbidden sender, body too
long, unsupported payload) is answered at once. Everything else is queued and
handled in batches by one loop, in arrival order:

1. resolve conversations (cache, then PostgreSQL for the misses);
2. one Redis round trip for the rate limits, one for agent presence;
3. one PostgreSQL transaction archiving every message of the batch;
4. render every outgoing stanza and write them to ejabberd in one go.

The batch grows by itself under load (what arrives while a batch is being
processed forms the next one), so the archive commits many messages per
transaction without delaying a lone message. A receipt (XEP-0184) is sent
only after the commit, so a receipt always means "archived". Storage outages
fail the batch with ``wait`` errors: the sender retries, nothing is
acknowledged that was not committed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import random
from collections.abc import Callable, Sequence
from typing import Protocol
from xml.etree.ElementTree import Element

import extensions.request as req
from component.addressing import company_jid, conversation_jid, display_name, split_local
from component.config import ArchiveSettings, LimitsSettings
from component.conversation_cache import ConversationCache
from component.directory import Directory
from component.logs import get_logger
from component.routing.errors import (
    UNAVAILABLE,
    BadRequest,
    BodyTooLong,
    NotAcceptable,
    NotAnAgent,
    NotConnected,
    NotImplementedPayload,
    NotReady,
    RateLimited,
    Refused,
    RoutingError,
    UnknownAddress,
    condition_for,
)
from component.routing.wire import (
    NS_REQUEST,
    Inbound,
    parse_message,
    render_chat,
    render_error,
    render_receipt,
)
from storage.errors import NotFound, Unavailable, raise_if_cancelling
from storage.models import (
    ArchivedMessage,
    Company,
    Conversation,
    Delivery,
    Limit,
    NewMessage,
    Once,
    Party,
    TargetStatus,
)
from storage.protocols import ArchiveStore, ConversationStore, LimitStore, PresenceStore

log = get_logger(__name__)

#: How long an agent's receipt or marker is remembered to forward it only once.
MARKER_DEDUP_TTL_S = 86_400
#: Messages delivered per claim (pending messages, unconfirmed deliveries).
PENDING_CLAIM_LIMIT = 500

HELP_TEXT = (
    "This is {domain}, the business messenger. To write to a company, open a chat "
    "with its address, for example company-name@{domain}. Your service directory "
    "lists the companies (XEP-0030 disco#items on {domain})."
)


# Seeded from the OS once: 96 random bits per id, unique across processes,
# without a system call per id (two ids per routed message).
_random = random.Random(os.urandom(32))


def new_id() -> str:
    """A random stanza id, unique across processes."""
    return f"{_random.getrandbits(96):024x}"


@dataclasses.dataclass(frozen=True, slots=True)
class RequestAnswer:
    """An agent's structured answer to a request (``urn:orgchat:request:0``)."""

    status: TargetStatus  #: ANSWERED (an offer) or DECLINED
    offer: req.Offer | None = None
    reason: str | None = None


@dataclasses.dataclass(slots=True)
class Item:
    """One queued message and what the batch learns about it."""

    msg: Inbound
    author: Party  #: CUSTOMER: to slug@domain; COMPANY: an agent to slug+token@domain
    company: Company
    token: str | None = None
    conv: Conversation | None = None
    error: tuple[str, str, str | None] | None = None
    online: Sequence[str] = ()
    stanza_id: str | None = None
    duplicate: bool = False
    forward: bool = True  #: receipts/markers: False when already forwarded once
    answer: RequestAnswer | None = None
    #: XEP-0201 thread and payload added by the request hooks (agent messages).
    thread: str | None = None
    payload: str | None = None
    #: Resolved once the item has been handled (see MessageRouter.post).
    done: asyncio.Future[None] | None = None


class RoutingHooks(Protocol):
    """What features add to routing: requests to several companies
    (component.requests), the notification cascade (component.notify)."""

    async def before_store(self, batch: Sequence[Item]) -> None:
        """Before archiving (e.g. tag agent messages of an open request)."""

    async def after_store(self, batch: Sequence[Item]) -> list[str]:
        """Once the batch is archived; returns stanzas to send with it."""

    async def after_delivery(self, messages: Sequence[ArchivedMessage]) -> list[str]:
        """Once archived messages were written to agents (pending, fan-out, sweep)."""


class Assignments(Protocol):
    """Which agent a conversation is claimed by (the agent desk, component.desk).

    Asked once per batch (and per delivery of archived messages), never per
    message: a claimed conversation's customer messages go to the claiming
    agent alone while that agent is online, else to every online agent.
    """

    async def claimed(
        self, conversation_ids: Sequence[int], reopen: Sequence[int]
    ) -> dict[int, str]:
        """The claiming agent of each claimed conversation among ``conversation_ids``;
        also reopens the resolved ones among ``reopen`` (their customer wrote)."""


class Outbox:
    """Where rendered stanzas go: the component's XML stream."""

    def __init__(self, write: Callable[[str], None] | None = None) -> None:
        self._write = write

    def attach(self, write: Callable[[str], None]) -> None:
        self._write = write

    def send(self, data: Sequence[str]) -> None:
        """Write stanzas in one socket write; raises NotConnected."""
        if not data:
            return
        if self._write is None:
            raise NotConnected()
        self._write("".join(data))


class MessageRouter:
    def __init__(
        self,
        *,
        domain: str,
        directory: Directory,
        cache: ConversationCache,
        conversations: ConversationStore,
        archive: ArchiveStore,
        presence: PresenceStore,
        limits: LimitStore,
        limit_settings: LimitsSettings,
        archive_settings: ArchiveSettings,
        outbox: Outbox,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        hooks: Sequence[RoutingHooks] = (),
        assignments: Assignments | None = None,
    ) -> None:
        self.domain = domain
        self.directory = directory
        self.cache = cache
        self.conversations = conversations
        self.archive = archive
        self.presence = presence
        self.limits = limits
        self.limit_settings = limit_settings
        self.linger = archive_settings.flush_interval_ms / 1000.0
        self.batch_max = archive_settings.batch_max
        self.outbox = outbox
        self.now = now
        self.hooks = hooks
        self.assignments = assignments
        self._queue: list[Item] = []
        #: Delivery records whose stanzas were written, not yet confirmed.
        self._confirmed: list[int] = []
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    # -- entry point (synchronous: called by the XML stream) -----------------

    def submit(self, xml: Element) -> None:
        """Take one <message/> from ejabberd."""
        msg = parse_message(xml)
        try:
            item = self._classify(msg)
        except RoutingError as exc:
            self._send_now([self._error_for(msg, exc)])
            return
        if item is not None:
            self._enqueue(item)

    async def post(self, msg: Inbound) -> Item:
        """Route a message the component composed on a user's behalf (ad-hoc
        commands) and wait until it is handled; raises its RoutingError."""
        item = self._classify(msg)
        if item is None:
            raise BadRequest("Nothing to send")
        return await self.post_item(item)

    async def post_item(self, item: Item) -> Item:
        """Route an item built by the component itself (a reply by email, whose
        sender is no XMPP user) and wait until it is handled."""
        item.done = asyncio.get_running_loop().create_future()
        self._enqueue(item)
        await item.done
        if item.error is not None:
            raise Refused(*item.error)
        return item

    def _enqueue(self, item: Item) -> None:
        self._queue.append(item)
        self._idle.clear()
        self._wakeup.set()

    def _classify(self, msg: Inbound) -> Item | None:
        if msg.type == "error" or msg.has_error:
            log.info("message.error_received", sender=msg.sender, to=msg.to)
            return None
        if msg.type == "headline":
            return None  # RFC 6121 §5.2.2: never answered, not for us to route
        if msg.type == "groupchat":
            raise BadRequest("Group chat messages are not accepted by this service")
        if msg.body is not None and not msg.body.strip():
            msg.body = None  # an empty body is no message (clients send it with chat states)
        if not msg.to_local:
            if msg.body is not None:
                self._send_now([self._help(msg)])
                return None
            if msg.chat_state or msg.receipt_for or msg.marker:
                return None  # a client's chat window on the service: nothing to answer
            raise NotImplementedPayload("This service only understands chat messages")
        if not self.directory.loaded.is_set():
            raise NotReady("Service starting, retry later")
        parts = split_local(msg.to_local)
        company = self.directory.company(parts[0]) if parts else None
        if parts is None or company is None:
            raise UnknownAddress("No such company")
        token = parts[1]
        if token is not None and not self.directory.is_agent(company.id, msg.sender_bare):
            raise NotAnAgent("Only the company's agents may write to this conversation")
        if msg.encrypted:
            raise NotAcceptable(
                "End-to-end encrypted messages cannot be read here; please send plain text"
            )
        answer = None
        if msg.request_answer is not None and token is not None:
            answer = _request_answer(msg)
        if not msg.understood:
            raise NotImplementedPayload("This message has no content this service understands")
        if msg.body is not None and len(msg.body) > self.limit_settings.max_body_chars:
            raise BodyTooLong(
                f"Message longer than {self.limit_settings.max_body_chars} characters"
            )
        author = Party.CUSTOMER if token is None else Party.COMPANY
        return Item(msg=msg, author=author, company=company, token=token, answer=answer)

    # -- the batch loop -----------------------------------------------------

    async def run(self) -> None:
        """Process queued messages until cancelled."""
        while True:
            raise_if_cancelling()
            await self._wakeup.wait()
            if self.linger and len(self._queue) < self.batch_max:
                await asyncio.sleep(self.linger)
            batch, self._queue = self._queue[: self.batch_max], self._queue[self.batch_max :]
            if not self._queue:
                self._wakeup.clear()
            try:
                await self._process(batch)
            except Exception as exc:
                raise_if_cancelling(exc)
                log.exception("routing.batch_failed", size=len(batch))
                for item in batch:
                    if item.error is None:
                        item.error = condition_for(exc)
            finally:
                for item in batch:
                    if item.done is not None and not item.done.done():
                        item.done.set_result(None)
            if not self._queue:
                # Idle: confirm now what no next batch will carry.
                await self._flush_confirmed()
                self._idle.set()

    async def drain(self) -> None:
        """Wait until every queued message has been handled."""
        await self._idle.wait()

    async def _process(self, batch: list[Item]) -> None:
        delivery_id: int | None = None
        stored = False
        try:
            try:
                delivery_id = await self._archive(batch)
            except NotFound as exc:
                # A conversation was deleted between its lookup and the INSERT
                # (company removed, customer forgotten): look them up afresh,
                # once, rather than fail every message of the batch.
                log.warning("routing.conversation_vanished", error=str(exc))
                for item in batch:
                    if item.conv is not None:
                        await self.cache.evict(item.conv.customer_jid)
                        item.conv = None
                delivery_id = await self._archive(batch)
            stored = True
        except Unavailable as exc:
            log.warning("routing.storage_unavailable", error=str(exc), size=len(batch))
            for item in batch:
                if item.error is None:
                    item.error = UNAVAILABLE
        out: list[str] = []
        for item in batch:
            self._render(item, out)
        if stored:
            # Independent of each other: their round trips overlap.
            results = await asyncio.gather(
                *(hooks.after_store(batch) for hooks in self.hooks), return_exceptions=True
            )
            for hooks, result in zip(self.hooks, results, strict=True):
                if isinstance(result, Unavailable):
                    # The messages are archived and go out; only what the hooks
                    # record (request statuses, cascade steps) lags.
                    log.warning("routing.hook_failed", hook=type(hooks).__name__, error=str(result))
                elif isinstance(result, BaseException):
                    raise result
                else:
                    out.extend(result)
        try:
            self.outbox.send(out)
        except NotConnected:
            # Archived but not written: the delivery record stays unconfirmed
            # and the sweep delivers it once a stream is back.
            log.error("routing.batch_not_sent", size=len(batch))
            return
        if delivery_id is not None:
            # Confirmed by the next batch's statement, or when the queue is idle.
            self._confirmed.append(delivery_id)

    async def _archive(self, batch: list[Item]) -> int | None:
        await self._resolve(batch)
        await self._admit(batch)
        for hooks in self.hooks:
            await hooks.before_store(batch)
        return await self._store(batch)

    async def _flush_confirmed(self) -> None:
        if not self._confirmed:
            return
        confirmed, self._confirmed = self._confirmed, []
        await self._confirm(confirmed)

    async def _confirm(self, delivery_ids: list[int]) -> None:
        try:
            await self.archive.confirm(delivery_ids)
        except Unavailable as exc:
            # Delivered, but the record stays: the sweep will deliver it again
            # (same ids, so clients recognise the repeat). Better twice than never.
            log.warning("routing.confirm_failed", error=str(exc), deliveries=len(delivery_ids))

    async def _resolve(self, batch: list[Item]) -> None:
        """Find (or open) the conversation of every item."""
        to_open: dict[tuple[int, str], str | None] = {}
        for item in batch:
            msg = item.msg
            if item.author is Party.COMPANY:
                assert item.token is not None
                conv = self.cache.of_company(item.company.id, item.token)
                if conv is None:
                    conv = await self.conversations.of_company(item.company.id, item.token)
                    if conv is not None:
                        self.cache.put(conv)
                if conv is None:
                    item.error = condition_for(UnknownAddress("No such conversation"))
                else:
                    item.conv = conv
                continue
            key = (item.company.id, msg.sender_bare)
            conv = self.cache.by_pair(*key)
            nick_changed = (
                msg.nick is not None and conv is not None and conv.customer_nick != msg.nick
            )
            if conv is not None and not nick_changed:
                item.conv = conv
            elif msg.body is not None or nick_changed:
                to_open[key] = msg.nick if msg.nick is not None else to_open.get(key)
            else:
                # A chat state or marker: never opens a conversation.
                conv = await self.conversations.find(*key)
                if conv is not None:
                    self.cache.put(conv)
                    item.conv = conv
        if to_open:
            keys = list(to_open)
            opened = await self.conversations.open_many(
                [(cid, jid, to_open[(cid, jid)]) for cid, jid in keys]
            )
            for conv in opened:
                self.cache.put(conv)
        for item in batch:
            if item.author is Party.CUSTOMER and item.conv is None:
                item.conv = self.cache.by_pair(item.company.id, item.msg.sender_bare)

    async def _admit(self, batch: list[Item]) -> None:
        """Rate limits, agent presence and marker dedup: at most three Redis round trips."""
        live = [i for i in batch if i.error is None and i.conv is not None]
        limited = [i for i in live if i.author is Party.CUSTOMER and i.msg.body is not None]
        if limited:
            allowed = await self.limits.hit(
                Limit.CUSTOMER_MESSAGES,
                [i.msg.sender_bare for i in limited],
                self.limit_settings.customer_rate,
                self.limit_settings.customer_rate_window,
            )
            for item, ok in zip(limited, allowed, strict=True):
                if not ok:
                    item.error = condition_for(RateLimited("Too many messages, slow down"))
        needs_presence = [i for i in live if i.error is None and i.author is Party.CUSTOMER]
        if needs_presence:
            company_ids = {i.company.id for i in needs_presence}
            candidates = sorted({a for cid in company_ids for a in self.directory.agents(cid)})
            online = await self.presence.online_among(candidates) if candidates else set()
            for item in needs_presence:
                item.online = [a for a in self.directory.agents(item.company.id) if a in online]
            if self.assignments is not None:
                claimed = await self.assignments.claimed(
                    sorted({i.conv.id for i in needs_presence if i.conv is not None}),
                    sorted(
                        {i.conv.id for i in needs_presence if i.conv and i.msg.body is not None}
                    ),
                )
                for item in needs_presence:
                    if item.conv is not None:
                        item.online = _for_claimer(item.online, claimed.get(item.conv.id))
        markers = [
            i
            for i in live
            if i.error is None
            and i.author is Party.COMPANY
            and i.msg.body is None
            and (i.msg.receipt_for or i.msg.marker)
        ]
        if markers:
            assert all(i.conv for i in markers)
            firsts = await self.limits.first_seen(
                Once.MARKER_FORWARDED, [_marker_key(i) for i in markers], MARKER_DEDUP_TTL_S
            )
            for item, first in zip(markers, firsts, strict=True):
                item.forward = first

    async def _store(self, batch: list[Item]) -> int | None:
        """Archive every accepted body in one transaction; returns its delivery record."""
        ts = self.now()
        items = [
            i for i in batch if i.error is None and i.conv is not None and i.msg.body is not None
        ]
        if not items:
            return None
        rows = []
        for item in items:
            assert item.conv is not None and item.msg.body is not None
            customer = item.author is Party.CUSTOMER
            rows.append(
                NewMessage(
                    conversation_id=item.conv.id,
                    author=item.author,
                    sender_jid=item.msg.sender_bare,
                    body=item.msg.body,
                    stanza_id=new_id(),
                    client_id=item.msg.id,
                    client_key=item.msg.client_key,
                    pending=customer and not item.online,
                    ts=ts,
                    thread=item.thread,
                    payload=item.payload,
                )
            )
        archived = await self.archive.append_batch(rows, self._confirmed)
        self._confirmed = []
        for item, result in zip(items, archived.results, strict=True):
            item.stanza_id = result.stanza_id
            item.duplicate = result.duplicate
        pending = sum(1 for r in rows if r.pending)
        log.debug("archive.batch", size=len(rows), pending=pending)
        return archived.delivery_id

    # -- rendering ----------------------------------------------------------

    def _render(self, item: Item, out: list[str]) -> None:
        msg = item.msg
        if item.error is not None:
            etype, condition, text = item.error
            out.append(render_error(msg.to, msg.sender, msg.id, etype, condition, text))
            return
        conv = item.conv
        if conv is None:
            return  # a chat state or marker for a conversation that does not exist
        company = item.company
        cjid = company_jid(company.slug, self.domain)
        vjid = conversation_jid(company.slug, conv.token, self.domain)
        if item.author is Party.CUSTOMER:
            if msg.body is not None:
                if not item.duplicate:
                    for agent in item.online:
                        out.append(
                            render_chat(
                                vjid,
                                agent,
                                msg.id or item.stanza_id or new_id(),
                                body=msg.body,
                                source=msg,
                                stanza_id=item.stanza_id,
                                stanza_id_by=vjid,
                                nick=display_name(conv),
                            )
                        )
                if msg.receipt_request and msg.id:
                    out.append(render_receipt(cjid, msg.sender, new_id(), msg.id))
            else:
                for agent in item.online:
                    out.append(render_chat(vjid, agent, new_id(), source=msg))
            return
        # Agent -> customer: the customer only ever sees the company's address.
        if msg.body is not None:
            if not item.duplicate:
                out.append(
                    render_chat(
                        cjid,
                        conv.customer_jid,
                        msg.id or item.stanza_id or new_id(),
                        body=msg.body,
                        source=msg,
                        stanza_id=item.stanza_id,
                        stanza_id_by=cjid,
                        nick=company.name,
                        thread=item.thread,
                        payload=item.payload,
                    )
                )
            if msg.receipt_request and msg.id:
                out.append(render_receipt(vjid, msg.sender, new_id(), msg.id))
        elif item.forward:
            out.append(render_chat(cjid, conv.customer_jid, new_id(), source=msg))

    def _error_for(self, msg: Inbound, exc: RoutingError) -> str:
        etype, condition, text = condition_for(exc)
        log.info("message.refused", sender=msg.sender, to=msg.to, condition=condition)
        return render_error(msg.to or self.domain, msg.sender, msg.id, etype, condition, text)

    def _help(self, msg: Inbound) -> str:
        return render_chat(
            self.domain, msg.sender, new_id(), body=HELP_TEXT.format(domain=self.domain)
        )

    def _send_now(self, data: list[str]) -> None:
        try:
            self.outbox.send(data)
        except NotConnected:
            log.warning("routing.reply_dropped", reason="not connected")

    # -- pending and unconfirmed messages ---------------------------------------

    async def deliver_pending(self, company_ids: Sequence[int]) -> int:
        """Deliver messages that waited for an agent of these companies."""
        delivered = 0
        while True:
            delivery = await self.archive.claim_pending(company_ids, PENDING_CLAIM_LIMIT)
            if delivery is None:
                return delivered
            delivered += await self.deliver(delivery)
            if len(delivery.messages) < PENDING_CLAIM_LIMIT:
                return delivered

    async def sweep(self, older_than_s: float) -> int:
        """Deliver again what a process archived but never confirmed written."""
        delivered = 0
        for delivery in await self.archive.claim_unconfirmed(older_than_s, PENDING_CLAIM_LIMIT):
            delivered += await self.deliver(delivery)
        if delivered:
            log.warning("delivery.redelivered", messages=delivered)
        return delivered

    async def deliver(self, delivery: Delivery) -> int:
        """Deliver archived messages, with their original time (XEP-0203).

        A customer's message goes to the company's available agents (pending
        again if there are none), an agent's message to the customer.
        """
        messages = delivery.messages
        convs = await self._conversations_by_id({m.conversation_id for m in messages})
        company_ids = {c.company_id for c in convs.values()}
        candidates = sorted({a for cid in company_ids for a in self.directory.agents(cid)})
        online = await self.presence.online_among(candidates) if candidates else set()
        claimed: dict[int, str] = {}
        if self.assignments is not None:
            incoming = {m.conversation_id for m in messages if m.author is Party.CUSTOMER}
            if incoming:
                claimed = await self.assignments.claimed(sorted(incoming), ())
        out: list[str] = []
        waiting: list[str] = []
        reached: list[ArchivedMessage] = []  #: customer messages written to an agent
        for m in messages:
            conv = convs.get(m.conversation_id)
            company = self.directory.company_by_id(conv.company_id) if conv else None
            if conv is None or company is None:
                continue  # company removed meanwhile: nobody to deliver to
            vjid = conversation_jid(company.slug, conv.token, self.domain)
            msg_id = m.client_id or m.stanza_id
            if m.author is Party.COMPANY:
                cjid = company_jid(company.slug, self.domain)
                out.append(
                    render_chat(
                        cjid,
                        conv.customer_jid,
                        msg_id,
                        body=m.body,
                        stanza_id=m.stanza_id,
                        stanza_id_by=cjid,
                        nick=company.name,
                        delay=m.ts,
                        delay_from=self.domain,
                        thread=m.thread,
                        payload=m.payload,
                    )
                )
                continue
            agents = [a for a in self.directory.agents(company.id) if a in online]
            agents = _for_claimer(agents, claimed.get(conv.id))
            if not agents:
                waiting.append(m.stanza_id)
            else:
                reached.append(m)
            for agent in agents:
                out.append(
                    render_chat(
                        vjid,
                        agent,
                        msg_id,
                        body=m.body,
                        stanza_id=m.stanza_id,
                        stanza_id_by=vjid,
                        nick=display_name(conv),
                        delay=m.ts,
                        delay_from=self.domain,
                        thread=m.thread,
                        payload=m.payload,
                    )
                )
        if waiting:
            await self.archive.requeue(waiting)
        try:
            self.outbox.send(out)
        except NotConnected:
            return 0  # the record stays unconfirmed: the sweep delivers it later
        await self._confirm([delivery.id])
        delivered = len(messages) - len(waiting)
        log.info("delivery.done", messages=delivered, stanzas=len(out), pending=len(waiting))
        for hooks in self.hooks:
            try:
                self._send_now(await hooks.after_delivery(reached))
            except Unavailable as exc:
                log.warning("routing.hook_failed", hook=type(hooks).__name__, error=str(exc))
        return delivered

    async def _conversations_by_id(self, ids: set[int]) -> dict[int, Conversation]:
        found = {i: c for i in ids if (c := self.cache.by_id(i)) is not None}
        missing = [i for i in ids if i not in found]
        if missing:
            for conv in await self.conversations.by_ids(missing):
                self.cache.put(conv)
                found[conv.id] = conv
        return found


def _request_answer(msg: Inbound) -> RequestAnswer:
    """An agent's <offer/> or <decline/>; writes the body a standard client shows."""
    element = msg.request_answer
    assert element is not None
    try:
        if element.tag == f"{{{NS_REQUEST}}}offer":
            offer = req.parse_offer(element)
            if msg.body is None:
                msg.body = req.offer_text(offer)
            return RequestAnswer(TargetStatus.ANSWERED, offer=offer)
        reason = req.parse_decline(element)
        if msg.body is None:
            msg.body = req.decline_text(reason)
        return RequestAnswer(TargetStatus.DECLINED, reason=reason)
    except req.PayloadError as exc:
        raise BadRequest(str(exc)) from None


def _for_claimer(online: Sequence[str], claimer: str | None) -> list[str]:
    """The claiming agent alone while online; else every online agent."""
    return [claimer] if claimer is not None and claimer in online else list(online)


def _marker_key(item: Item) -> tuple[int, str, str]:
    assert item.conv is not None
    msg = item.msg
    kind = "received" if msg.receipt_for else msg.marker
    return item.conv.id, kind or "", msg.receipt_for or msg.marker_for or ""


async def wait_idle(router: MessageRouter, limit_s: float) -> bool:
    """Wait for the router to drain; False if it took longer than ``limit_s``."""
    try:
        await asyncio.wait_for(router.drain(), limit_s)
    except TimeoutError:
        return False
    return True


async def sweep_forever(
    router: MessageRouter, redeliver_after: float, connected: Callable[[], bool]
) -> None:
    """Every third of ``redeliver_after``, deliver what nobody confirmed in time."""
    while True:
        raise_if_cancelling()
        await asyncio.sleep(redeliver_after / 3)
        if not connected():
            continue
        try:
            await router.sweep(redeliver_after)
        except Unavailable as exc:
            log.warning("delivery.sweep_failed", error=str(exc))
