"""Message routing: customer -> company -> agents, agent -> conversation -> customer.

Every <message/> for the component domain enters :meth:`MessageRouter.submit`.
What can be decided from memory (unknown company, forbidden sender, body too
long, unsupported payload) is answered at once. Everything else is queued and
handled in batches by one loop, in arrival order:

1. resolve conversations (cache, then PostgreSQL for the misses);
2. one Redis round trip for the rate limits, agent presence and markers seen;
3. one PostgreSQL statement archiving every message of the batch, with what
   the features record, read and move about it (read marks, notification
   steps, the desk's assignees, the threads and statuses of requests: one
   round trip in all, see hooks.py);
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
import collections
import contextlib
import datetime as dt
import itertools
from collections.abc import Callable, Sequence
from xml.etree.ElementTree import Element

from component import metrics
from component.addressing import company_jid, conversation_jid, display_name, split_local
from component.config import ArchiveSettings, LimitsSettings
from component.directory import Directory
from component.errors import (
    UNAVAILABLE,
    BadRequest,
    BodyTooLong,
    NotAcceptable,
    NotAllowed,
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
from component.i18n import _, translate
from component.logs import get_logger
from component.routing.conversation_cache import ConversationCache
from component.routing.delivery import Deliveries
from component.routing.hooks import RoutingHooks
from component.routing.items import Item
from component.routing.outbox import Outbox, new_id
from component.routing.views import colleague_text, own_copies
from component.routing.wire import (
    Inbound,
    compose,
    parse_message,
    render_chat,
    render_error,
    render_receipt,
)
from storage.errors import NotFound, Unavailable, raise_if_cancelling
from storage.models import (
    Admission,
    ArchivedBatch,
    ArchiveResult,
    BatchExtras,
    BatchRead,
    Hits,
    Limit,
    Marks,
    NewMessage,
    Once,
    OwnCopy,
    Party,
)
from storage.protocols import AdmissionStore, ArchiveStore, ConversationStore, PresenceStore

log = get_logger(__name__)

#: The online agents of each conversation (to narrow), the conversations a
#: customer wrote in now, and the customers' items.
Recipients = tuple[dict[int, list[str]], list[int], list[Item]]

#: How long an agent's receipt or marker is remembered to forward it only once.
MARKER_DEDUP_TTL_S = 86_400
#: Messages that may wait for their company (or, at start, for the directory)
#: to be read; beyond, a message is answered "retry later" at once.
ARRIVALS_MAX = 10_000
#: How long messages that arrive before the directory is read wait for it
#: (the stream is up a moment before the directory, at start), before they
#: are answered "retry later".
STARTUP_WAIT_S = 2.0


class MessageRouter:
    def __init__(
        self,
        *,
        domain: str,
        own_archives: str | None,
        directory: Directory,
        cache: ConversationCache,
        conversations: ConversationStore,
        archive: ArchiveStore,
        presence: PresenceStore,
        admission: AdmissionStore,
        limit_settings: LimitsSettings,
        archive_settings: ArchiveSettings,
        outbox: Outbox,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        hooks: Sequence[RoutingHooks] = (),
    ) -> None:
        self.domain = domain
        #: The ejabberd host whose users' own archives get copies (None: no copies).
        self.own_archives = own_archives
        self.directory = directory
        self.cache = cache
        self.conversations = conversations
        self.archive = archive
        self.presence = presence
        self.admission = admission
        self.limit_settings = limit_settings
        self.linger = archive_settings.flush_interval_ms / 1000.0
        self.batch_max = archive_settings.batch_max
        self.outbox = outbox
        self.now = now
        self.hooks = hooks
        #: The features that do something after the commit (the others would
        #: only cost a task per batch).
        self._after_store = [
            h for h in hooks if type(h).after_store is not RoutingHooks.after_store
        ]
        #: Payload namespaces some feature understands (see RoutingHooks.namespaces).
        self.namespaces = frozenset().union(*(h.namespaces for h in hooks))
        self._queue: list[Item] = []
        #: Messages waiting for their company to be read from PostgreSQL, and
        #: every message that arrived after them (arrival order is kept).
        self._arrivals: collections.deque[Inbound] = collections.deque()
        self._arrived = asyncio.Event()
        #: Delivery records whose stanzas were written, not yet confirmed.
        self._confirmed: list[int] = []
        #: Archived messages delivered later (pending, fan-out, redelivery).
        self.deliveries = Deliveries(
            domain=domain,
            directory=directory,
            cache=cache,
            conversations=conversations,
            archive=archive,
            presence=presence,
            outbox=outbox,
            hooks=hooks,
        )
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    # -- entry point (synchronous: called by the XML stream) -----------------

    def submit(self, xml: Element) -> None:
        """Take one <message/> from ejabberd."""
        msg = parse_message(xml, self.namespaces)
        slug = _slug(msg)
        if (
            self._arrivals
            or not self.directory.loaded.is_set()
            or (slug is not None and not self.directory.knows(slug))
        ):
            # Its company is not in memory (or, at start, the directory is
            # not read yet): read it (with those of the messages arriving
            # meanwhile, which wait behind it).
            if len(self._arrivals) >= ARRIVALS_MAX:
                self.outbox.send_or_drop([self._error_for(msg, NotReady(_("Busy, retry later")))])
                return
            self._arrivals.append(msg)
            self._idle.clear()
            self._arrived.set()
            return
        self._take(msg)

    def _take(self, msg: Inbound) -> None:
        try:
            item = self._classify(msg)
        except RoutingError as exc:
            self.outbox.send_or_drop([self._error_for(msg, exc)])
            return
        if item is not None:
            self._enqueue(item)

    async def _admit_arrivals(self) -> None:
        """Read the companies that waiting messages are for, then take the
        messages in arrival order; runs until cancelled."""
        while True:
            raise_if_cancelling()
            await self._arrived.wait()
            self._arrived.clear()
            if not self.directory.loaded.is_set():
                # Not given up on: past the wait, each message is answered
                # "retry later" (NotReady) as it is taken.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.directory.loaded.wait(), STARTUP_WAIT_S)
            while self._arrivals:
                waiting = list(itertools.islice(self._arrivals, self.batch_max))
                try:
                    await self.directory.load(s for msg in waiting if (s := _slug(msg)))
                except Exception as exc:
                    raise_if_cancelling(exc)
                    # An outage (or a bug): every waiting sender is answered.
                    if isinstance(exc, Unavailable):
                        log.warning("routing.storage_unavailable", error=str(exc))
                    else:
                        log.exception("routing.directory_load_failed", size=len(waiting))
                    refusal = Refused(*condition_for(exc))
                    for _ in waiting:
                        msg = self._arrivals.popleft()
                        self.outbox.send_or_drop([self._error_for(msg, refusal)])
                    continue
                for _ in waiting:
                    self._take(self._arrivals.popleft())
            if not self._queue and not self._arrivals:
                self._idle.set()

    async def post_as(
        self,
        sender: str,
        to: str,
        *,
        body: str | None,
        origin_id: str | None = None,
        payloads: Sequence[Element] = (),
        verified: bool = False,
    ) -> Item:
        """Route a message the component writes on someone's behalf and wait until
        it is handled; raises its RoutingError. The one way into the router other
        than the XML stream.

        ``sender`` writes to ``to`` as if from their client: a customer to a
        company's address, an agent to a conversation address (an ad-hoc
        command: its session id is the ``origin_id``, so a replayed stage is
        not sent twice). ``verified``: the sender was authenticated otherwise
        and is not checked against the company's agents (a reply by email,
        whose signed token names the conversation).
        """
        msg = compose(sender, to, body=body, origin_id=origin_id, payloads=payloads)
        if (slug := _slug(msg)) is not None:
            await self.directory.load([slug])
        item = self._classify(msg, verified=verified)
        if item is None:
            raise BadRequest(_("Nothing to send"))
        item.done = asyncio.get_running_loop().create_future()
        item.echo = True
        self._enqueue(item)
        await item.done
        if item.error is not None:
            raise Refused(*item.error)
        return item

    def _enqueue(self, item: Item) -> None:
        self._queue.append(item)
        self._idle.clear()
        self._wakeup.set()

    def _classify(self, msg: Inbound, *, verified: bool = False) -> Item | None:
        if msg.type == "error" or msg.has_error:
            log.info("message.error_received", sender=msg.sender, to=msg.to)
            return None
        if msg.type == "headline":
            return None  # RFC 6121 §5.2.2: never answered, not for us to route
        if msg.type == "groupchat":
            raise BadRequest(_("Group chat messages are not accepted by this service"))
        if msg.body is not None and not msg.body.strip():
            msg.body = None  # an empty body is no message (clients send it with chat states)
        if not msg.to_local:
            if msg.body is not None:
                self.outbox.send_or_drop([self._help(msg)])
                return None
            if msg.chat_state or msg.receipt_for or msg.marker:
                return None  # a client's chat window on the service: nothing to answer
            raise NotImplementedPayload(_("This service only understands chat messages"))
        if not self.directory.loaded.is_set():
            raise NotReady(_("Service starting, retry later"))
        parts = split_local(msg.to_local)
        company = self.directory.company(parts[0]) if parts else None
        if parts is None or company is None:
            raise UnknownAddress(_("No such company"))
        token = parts[1]
        if (
            token is not None
            and not verified
            and not self.directory.is_agent(company.id, msg.sender_bare)
        ):
            raise NotAnAgent(_("Only the company's agents may write to this conversation"))
        if (
            token is None
            and msg.body is not None
            and self.directory.is_agent(company.id, msg.sender_bare)
        ):
            # The company in an agent's roster is there for its presence: an
            # agent writing to it would become its own customer.
            raise NotAllowed(
                _(
                    "You answer for {company}: write to a customer's conversation "
                    "address instead (the company's commands list them)",
                    company=company.name,
                )
            )
        if msg.encrypted:
            raise NotAcceptable(
                _("End-to-end encrypted messages cannot be read here; please send plain text")
            )
        author = Party.CUSTOMER if token is None else Party.COMPANY
        if author is Party.COMPANY and msg.chat_state == "gone":
            # XEP-0085 "gone" says the user left the conversation: one agent
            # closing his window (or logging out) is not the company leaving.
            msg.chat_state = None
            if not msg.understood:
                return None
        item = Item(msg=msg, author=author, company=company, token=token)
        for hooks in self.hooks:
            hooks.check(item)
        if not msg.understood:
            raise NotImplementedPayload(_("This message has no content this service understands"))
        if msg.body is not None and len(msg.body) > self.limit_settings.max_body_chars:
            raise BodyTooLong(
                _(
                    "Message longer than {limit} characters",
                    limit=self.limit_settings.max_body_chars,
                )
            )
        return item

    # -- the batch loop -----------------------------------------------------

    async def run(self) -> None:
        """Process arriving and queued messages until cancelled (if one of the
        two loops ever fails, both stop, and the supervisor starts them again)."""
        async with asyncio.TaskGroup() as loops:
            loops.create_task(self._admit_arrivals())
            loops.create_task(self._batches())

    async def _batches(self) -> None:
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
                # A bug, not an outage (those are answered inside): every
                # sender still gets an answer, and the loop goes on.
                log.exception("routing.batch_failed", size=len(batch))
                for item in batch:
                    if item.error is None:
                        item.error = condition_for(exc)
                self.outbox.send_or_drop(
                    [self._error_for(i.msg, Refused(*i.error)) for i in batch if i.error]
                )
            finally:
                for item in batch:
                    if item.done is not None and not item.done.done():
                        item.done.set_result(None)
            if not self._queue:
                # Idle: confirm now what no next batch will carry (later, a
                # process killed meanwhile would have it delivered twice).
                try:
                    await self._flush_confirmed()
                except Exception as exc:
                    raise_if_cancelling(exc)
                    log.exception("routing.confirm_crashed")
                if not self._queue and not self._arrivals:
                    self._idle.set()

    async def drain(self) -> None:
        """Wait until every queued message has been handled."""
        await self._idle.wait()

    async def _process(self, batch: list[Item]) -> None:
        delivery_ids: list[int] = []
        read = BatchRead()
        stored = False
        try:
            try:
                delivery_ids, read = await self._archive(batch)
            except NotFound as exc:
                # A conversation was deleted between its lookup and the INSERT
                # (company removed, customer forgotten): look them up afresh,
                # once, rather than fail every message of the batch.
                log.warning("routing.conversation_vanished", error=str(exc))
                for item in batch:
                    if item.conv is not None:
                        await self.cache.evict(item.conv.customer_jid)
                        item.conv = None
                delivery_ids, read = await self._archive(batch)
            stored = True
        except Unavailable as exc:
            log.warning("routing.storage_unavailable", error=str(exc), size=len(batch))
            for item in batch:
                if item.error is None:
                    item.error = UNAVAILABLE
        out: list[str] = []
        for item in batch:
            self._render(item, out)
        _count(batch)
        if stored and self._after_store:
            # Independent of each other: their round trips overlap.
            results = await asyncio.gather(
                *(hooks.after_store(batch, read) for hooks in self._after_store),
                return_exceptions=True,
            )
            for hooks, result in zip(self._after_store, results, strict=True):
                # A failing hook never fails the batch: the messages are
                # archived and go out; only what the hook records (request
                # statuses, cascade steps) lags.
                if isinstance(result, Unavailable):
                    log.warning("routing.hook_failed", hook=type(hooks).__name__, error=str(result))
                elif isinstance(result, BaseException):
                    raise_if_cancelling(result)
                    log.error("routing.hook_crashed", hook=type(hooks).__name__, error=repr(result))
                else:
                    out.extend(result)
        try:
            self.outbox.send(out)
        except NotConnected:
            # Archived but not written: the delivery record stays unconfirmed
            # and the sweep delivers it once a stream is back.
            log.error("routing.batch_not_sent", size=len(batch))
            return
        # Confirmed by the next batch's statement, or when the queue is idle.
        self._confirmed.extend(delivery_ids)

    async def _archive(self, batch: list[Item]) -> tuple[list[int], BatchRead]:
        """Archive the batch; returns its delivery records and what its statement read."""
        await self._resolve(batch)
        recipients = await self._admit(batch)
        items = [
            i for i in batch if i.error is None and i.conv is not None and i.msg.body is not None
        ]
        for item in items:
            item.stanza_id = new_id()  # the original's, once archived, for a duplicate
        # What the features record, read and move with the batch rides on its
        # archive statement: one round trip to PostgreSQL per batch. A customer's
        # message is pending when no agent is online, whoever the features'
        # rules then pick among the online ones.
        extras = BatchExtras()
        routed, written = (sorted(recipients[0]), recipients[1]) if recipients else ([], [])
        for hooks in self.hooks:
            hooks.alongside(batch, routed, written, extras)
        stored, read = await self._store(items, extras)
        await self._narrow(recipients, read)
        return stored, read

    async def _narrow(self, recipients: Recipients | None, read: BatchRead) -> None:
        """Apply the features' ``recipients`` rules to the online agents of each item,
        from what the archive statement read for them."""
        if recipients is None:
            return
        agents, written, items = recipients
        for hooks in self.hooks:
            await hooks.recipients(agents, written, read)
        for item in items:
            assert item.conv is not None
            item.online = agents[item.conv.id]

    async def _flush_confirmed(self) -> None:
        if not self._confirmed:
            return
        confirmed, self._confirmed = self._confirmed, []
        await self.deliveries.confirm(confirmed)

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
                    item.error = condition_for(UnknownAddress(_("No such conversation")))
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

    async def _admit(self, batch: list[Item]) -> Recipients | None:
        """Rate limits, agent presence and marker dedup: one Redis round trip.
        Returns the online agents of the customers' conversations, for the
        features' rules to narrow (:meth:`_narrow`)."""
        live = [i for i in batch if i.error is None and i.conv is not None]
        customers = [i for i in live if i.author is Party.CUSTOMER]
        limited = [i for i in customers if i.msg.body is not None]
        signals = [i for i in customers if i.msg.body is None]
        # A customer's message goes to the online agents; an agent's answer
        # to those of his colleagues (views.py), whom the same rules pick.
        # Asked before the limits are known, in the same round trip: the
        # agents of a message refused for its rate are asked about too.
        needs_presence = [i for i in live if i.author is Party.CUSTOMER or i.msg.body is not None]
        markers = [
            i
            for i in live
            if i.author is Party.COMPANY
            and i.msg.body is None
            and (i.msg.receipt_for or i.msg.marker)
        ]
        settings = self.limit_settings
        window = settings.customer_rate_window
        company_ids = {i.company.id for i in needs_presence}
        admitted = await self.admission.admit(
            Admission(
                hits=(
                    Hits(
                        Limit.CUSTOMER_MESSAGES,
                        [i.msg.sender_bare for i in limited],
                        settings.customer_rate,
                        window,
                    ),
                    Hits(
                        Limit.CUSTOMER_SIGNALS,
                        [i.msg.sender_bare for i in signals],
                        settings.customer_signal_rate,
                        window,
                    ),
                ),
                agents=sorted({a for cid in company_ids for a in self.directory.agents(cid)}),
                marks=Marks(
                    Once.MARKER_FORWARDED, [_marker_key(i) for i in markers], MARKER_DEDUP_TTL_S
                ),
            )
        )
        allowed, signalled = admitted.allowed
        for item, ok in zip(limited, allowed, strict=True):
            if not ok:
                item.error = condition_for(RateLimited(_("Too many messages, slow down")))
        for item, ok in zip(signals, signalled, strict=True):
            item.forward = ok  # a chat state or marker over the limit is dropped
        for item, first in zip(markers, admitted.first, strict=True):
            item.forward = first
        needs_presence = [i for i in needs_presence if i.error is None]
        if not needs_presence:
            return None
        agents: dict[int, list[str]] = {}
        for item in needs_presence:
            assert item.conv is not None
            agents[item.conv.id] = [
                a for a in self.directory.agents(item.company.id) if a in admitted.online
            ]
        written = sorted(
            {
                i.conv.id
                for i in needs_presence
                if i.conv and i.msg.body and i.author is Party.CUSTOMER
            }
        )
        for item in needs_presence:
            assert item.conv is not None
            item.online = list(agents[item.conv.id])
        return agents, written, needs_presence

    async def _store(self, items: list[Item], extras: BatchExtras) -> tuple[list[int], BatchRead]:
        """Archive ``items`` and record ``extras`` in one transaction; returns its
        delivery records and what the extras read and moved.

        If the statement fails for another reason than an outage (a value
        PostgreSQL refuses), each message is archived alone, so that only the
        bad one is refused and its neighbours go through.
        """
        ts = self.now()
        rows = []
        for item in items:
            conv, body, stanza_id = item.conv, item.msg.body, item.stanza_id
            assert conv is not None and body is not None and stanza_id is not None
            customer = item.author is Party.CUSTOMER
            rows.append(
                NewMessage(
                    conversation_id=conv.id,
                    author=item.author,
                    sender_jid=item.msg.sender_bare,
                    body=body,
                    stanza_id=stanza_id,
                    client_id=item.msg.id,
                    client_key=item.msg.client_key,
                    pending=customer and not item.online,
                    ts=ts,
                    copies=self._copies(item, stanza_id),
                )
            )
        if not rows and not extras:
            return [], BatchRead()
        try:
            with metrics.COMMIT_SECONDS.time():
                archived = await self.archive.append_batch(rows, self._confirmed, extras)
        except (Unavailable, NotFound):
            raise
        except Exception as exc:
            raise_if_cancelling(exc)
            if len(rows) <= 1:
                raise
            log.warning("routing.batch_split", size=len(rows), error=repr(exc))
            return await self._store_alone(items, rows, extras)
        self._confirmed = []
        for item, result in zip(items, archived.results, strict=True):
            _archived_as(item, result, archived)
        pending = sum(1 for r in rows if r.pending)
        log.debug("archive.batch", size=len(rows), pending=pending)
        delivery_ids = [] if archived.delivery_id is None else [archived.delivery_id]
        return delivery_ids, archived.read

    def _copies(self, item: Item, stanza_id: str) -> tuple[OwnCopy, ...]:
        """The message's rows in users' own archives (see views.py)."""
        conv, body = item.conv, item.msg.body
        if self.own_archives is None or conv is None or body is None:
            return ()
        return own_copies(
            author=item.author,
            sender=item.msg.sender_bare,
            echo=item.echo,
            body=body,
            message_id=item.msg.id or stanza_id,
            stanza_id=stanza_id,
            customer=conv.customer_jid,
            company_address=company_jid(item.company.slug, self.domain),
            conversation_address=conversation_jid(item.company.slug, conv.token, self.domain),
            agents=self.directory.agents(item.company.id),
            host=self.own_archives,
        )

    async def _store_alone(
        self, items: list[Item], rows: list[NewMessage], extras: BatchExtras
    ) -> tuple[list[int], BatchRead]:
        """Archive each message in its own statement; a refused one gets an error.

        What of the extras goes with a message (its thread) goes with it; the
        rest follows in a statement of its own, without what depends on a
        message that was refused or a duplicate; if even that fails, what
        they record lags (logged) and the messages still go out.
        """
        delivery_ids = []
        fresh: set[str] = set()
        for item, row in zip(items, rows, strict=True):
            try:
                archived = await self.archive.append_batch(
                    [row], self._confirmed, extras.of_message(row.stanza_id)
                )
            except (Unavailable, NotFound):
                raise
            except Exception as exc:
                raise_if_cancelling(exc)
                log.warning("routing.message_refused", sender=item.msg.sender, error=repr(exc))
                item.error = condition_for(BadRequest(_("This message cannot be stored")))
                continue
            self._confirmed = []
            [result] = archived.results
            _archived_as(item, result, archived)
            if not item.duplicate:
                fresh.add(row.stanza_id)
            if archived.delivery_id is not None:
                delivery_ids.append(archived.delivery_id)
        try:
            archived = await self.archive.append_batch([], (), extras.settled(fresh))
        except (Unavailable, NotFound):
            raise
        except Exception as exc:
            raise_if_cancelling(exc)
            log.error("routing.extras_refused", error=repr(exc))
            return delivery_ids, BatchRead()
        return delivery_ids, archived.read

    # -- rendering ----------------------------------------------------------

    def _render(self, item: Item, out: list[str]) -> None:
        msg = item.msg
        if item.error is not None:
            etype, condition, text = item.error
            metrics.ERRORS.labels(condition).inc()
            out.append(render_error(msg.to, msg.sender, msg.id, etype, condition, text, msg.lang))
            return
        conv = item.conv
        if conv is None:
            return  # a chat state or marker for a conversation that does not exist
        company = item.company
        company_address = company_jid(company.slug, self.domain)
        conversation_address = conversation_jid(company.slug, conv.token, self.domain)
        if item.author is Party.CUSTOMER:
            if msg.body is not None:
                if not item.duplicate:
                    for agent in item.online:
                        out.append(
                            render_chat(
                                conversation_address,
                                agent,
                                msg.id or item.stanza_id or new_id(),
                                body=msg.body,
                                source=msg,
                                stanza_id=item.stanza_id,
                                stanza_id_by=conversation_address,
                                nick=display_name(conv),
                            )
                        )
                if msg.receipt_request and msg.id:
                    metrics.RECEIPTS.inc()
                    out.append(render_receipt(company_address, msg.sender, new_id(), msg.id))
            elif item.forward:
                for agent in item.online:
                    out.append(render_chat(conversation_address, agent, new_id(), source=msg))
            return
        # Agent -> customer: the customer only ever sees the company's address.
        if msg.body is not None:
            if not item.duplicate:
                out.append(
                    render_chat(
                        company_address,
                        conv.customer_jid,
                        msg.id or item.stanza_id or new_id(),
                        body=msg.body,
                        source=msg,
                        stanza_id=item.stanza_id,
                        stanza_id_by=company_address,
                        nick=company.name,
                        thread=item.thread,
                        payload=item.payload,
                    )
                )
                # The shared inbox: the colleagues (and the sender, when the
                # component wrote it for him) see the answer in their chat.
                assert item.stanza_id is not None
                text = colleague_text(msg.sender_bare, msg.body)
                for agent in item.online:
                    if agent != msg.sender_bare or item.echo:
                        out.append(
                            render_chat(conversation_address, agent, item.stanza_id, body=text)
                        )
            if msg.receipt_request and msg.id:
                metrics.RECEIPTS.inc()
                out.append(render_receipt(conversation_address, msg.sender, new_id(), msg.id))
        elif item.forward:
            out.append(render_chat(company_address, conv.customer_jid, new_id(), source=msg))

    def _error_for(self, msg: Inbound, exc: RoutingError) -> str:
        etype, condition, text = condition_for(exc)
        metrics.ERRORS.labels(condition).inc()
        log.info("message.refused", sender=msg.sender, to=msg.to, condition=condition)
        return render_error(
            msg.to or self.domain, msg.sender, msg.id, etype, condition, text, msg.lang
        )

    def _help(self, msg: Inbound) -> str:
        text = _(
            "This is {domain}, the business messenger. To write to a company, open a chat "
            "with its address, for example company-name@{domain}. To find one, use your "
            "app's search for services on {domain}: it lists the companies, by name, "
            "category and city.",
            domain=self.domain,
        )
        return render_chat(self.domain, msg.sender, new_id(), body=translate(text, msg.lang))


def _archived_as(item: Item, result: ArchiveResult, archived: ArchivedBatch) -> None:
    """What the archive statement made of ``item``'s message (``result``, one of
    ``archived``'s): its stanza-id (the original's, for a duplicate), and the
    thread and payload it was archived with, if a feature asked for them."""
    item.stanza_id, item.duplicate = result.stanza_id, result.duplicate
    if not result.duplicate and result.stanza_id in archived.threads:
        item.thread, item.payload = archived.threads[result.stanza_id]


def _count(batch: Sequence[Item]) -> None:
    """The batch in the metrics: its size, its messages by kind."""
    metrics.BATCH_SIZE.observe(len(batch))
    kinds = collections.Counter(
        "signal"
        if item.msg.body is None
        else "customer"
        if item.author is Party.CUSTOMER
        else "company"
        for item in batch
    )
    for kind, n in kinds.items():
        metrics.MESSAGES.labels(kind).inc(n)


def _slug(msg: Inbound) -> str | None:
    """The company a message is addressed to (its slug), if any."""
    parts = split_local(msg.to_local) if msg.to_local else None
    return parts[0] if parts else None


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
