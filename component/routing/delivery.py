"""Delivering archived messages: pending ones, a request's fan-out, and redelivery.

A message archived by the batch loop (:mod:`component.routing.router`) is
delivered at once. These are the other ways out of the archive, each a
:class:`~storage.models.Delivery` claimed from PostgreSQL and written with
its original time (XEP-0203):

* pending customer messages, when an agent of the company comes online
  (``FOR UPDATE SKIP LOCKED``: two processes never deliver the same one);
* messages a feature archived in its own transaction (a request's fan-out,
  its closing notices);
* deliveries a process recorded but never confirmed written (it died, or its
  stream did, between the commit and the write): swept by every process
  after ``archive.redeliver_after`` seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from component.addressing import company_jid, conversation_jid, display_name
from component.directory import Directory
from component.errors import NotConnected
from component.logs import get_logger
from component.routing.conversation_cache import ConversationCache
from component.routing.hooks import RoutingHooks
from component.routing.outbox import Outbox
from component.routing.wire import render_chat
from storage.errors import Unavailable, raise_if_cancelling
from storage.models import ArchivedMessage, Conversation, Delivery, Party
from storage.protocols import ArchiveStore, ConversationStore, PresenceStore

log = get_logger(__name__)

#: Messages delivered per claim (pending messages, unconfirmed deliveries).
PENDING_CLAIM_LIMIT = 500


class Deliveries:
    def __init__(
        self,
        *,
        domain: str,
        directory: Directory,
        cache: ConversationCache,
        conversations: ConversationStore,
        archive: ArchiveStore,
        presence: PresenceStore,
        outbox: Outbox,
        hooks: Sequence[RoutingHooks],
    ) -> None:
        self.domain = domain
        self.directory = directory
        self.cache = cache
        self.conversations = conversations
        self.archive = archive
        self.presence = presence
        self.outbox = outbox
        self.hooks = hooks

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
        await self.directory.load_ids(company_ids)
        candidates = sorted({a for cid in company_ids for a in self.directory.agents(cid)})
        online = await self.presence.online_among(candidates) if candidates else set()
        agents: dict[int, list[str]] = {}
        for m in messages:
            conv = convs.get(m.conversation_id)
            if m.author is Party.CUSTOMER and conv is not None and conv.id not in agents:
                agents[conv.id] = [a for a in self.directory.agents(conv.company_id) if a in online]
        if agents:
            for hooks in self.hooks:
                await hooks.recipients(agents, (), None)
        out: list[str] = []
        waiting: list[str] = []
        reached: list[ArchivedMessage] = []  #: customer messages written to an agent
        for m in messages:
            conv = convs.get(m.conversation_id)
            company = self.directory.company_by_id(conv.company_id) if conv else None
            if conv is None or company is None:
                continue  # company removed meanwhile: nobody to deliver to
            conversation_address = conversation_jid(company.slug, conv.token, self.domain)
            msg_id = m.client_id or m.stanza_id
            if m.author is Party.COMPANY:
                company_address = company_jid(company.slug, self.domain)
                out.append(
                    render_chat(
                        company_address,
                        conv.customer_jid,
                        msg_id,
                        body=m.body,
                        stanza_id=m.stanza_id,
                        stanza_id_by=company_address,
                        nick=company.name,
                        delay=m.ts,
                        delay_from=self.domain,
                        thread=m.thread,
                        payload=m.payload,
                    )
                )
                continue
            recipients = agents.get(conv.id, [])
            if not recipients:
                waiting.append(m.stanza_id)
            else:
                reached.append(m)
            for agent in recipients:
                out.append(
                    render_chat(
                        conversation_address,
                        agent,
                        msg_id,
                        body=m.body,
                        stanza_id=m.stanza_id,
                        stanza_id_by=conversation_address,
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
        await self.confirm([delivery.id])
        delivered = len(messages) - len(waiting)
        log.info("delivery.done", messages=delivered, stanzas=len(out), pending=len(waiting))
        for hooks in self.hooks:
            try:
                self.outbox.send_or_drop(await hooks.after_delivery(reached))
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

    async def confirm(self, delivery_ids: list[int]) -> None:
        """The deliveries' stanzas were written: drop their records."""
        try:
            await self.archive.confirm(delivery_ids)
        except Unavailable as exc:
            # Delivered, but the record stays: the sweep will deliver it again
            # (same ids, so clients recognise the repeat). Better twice than never.
            log.warning("routing.confirm_failed", error=str(exc), deliveries=len(delivery_ids))


async def sweep_forever(
    deliveries: Deliveries, redeliver_after: float, connected: Callable[[], bool]
) -> None:
    """Every third of ``redeliver_after``, deliver what nobody confirmed in time."""
    while True:
        raise_if_cancelling()
        await asyncio.sleep(redeliver_after / 3)
        if not connected():
            continue
        try:
            await deliveries.sweep(redeliver_after)
        except Unavailable as exc:
            log.warning("delivery.sweep_failed", error=str(exc))
