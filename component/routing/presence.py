"""Presence: agents' and customers' availability (RFC 6121 §4), the companies' own presence.

Each agent, and each customer of the service's own ejabberd host once they
have written to a company (or it answered their request), has the company
JID in their roster with a mutual subscription (put there through ejabberd's
HTTP API, see :mod:`component.roster_sync`), so ejabberd sends their
presence to the company, including the ``unavailable`` when a connection
drops, and probes the company when they log in. Availability per resource is kept in Redis,
shared by every component process: agents' decides who gets a customer's
message, customers' whether the notification cascade must reach them off
XMPP (an unknown customer counts as offline).

Presence for one agent may reach different component processes in any
order, so a wrong state is possible for a moment; both directions are safe:
a message for an agent wrongly believed online is stored by ejabberd's
offline storage, and a message wrongly kept pending is delivered at the
agent's next presence (every available presence looks for pending
messages).

ejabberd 23.01 answers a probe only for an online user (never with
``unavailable``), so a probe alone cannot correct a stale "online". On every
(re)connection the component probes every agent (presence may have been
missed meanwhile: ejabberd drops stanzas for a component domain with no
component attached), and a few seconds later drops from Redis the resources
that did not answer. Every answer refreshes its resource's time, so agents
that are really online never look offline in between.

Agents see each conversation as a contact of their roster (subscription
``to``, see :mod:`component.roster_sync`), online while its customer is:
the component answers an agent's probe of a conversation's address with the
customer's availability, and tells the company's agents whenever a
customer's presence reaches the company (available while any of the
customer's resources is).

Redis may also lose everything (a restart without persistence): nothing
fails, presence is simply gone, and agents who are online would look
offline (their customers' messages pending, "nobody online" emails) until
they reconnect. :meth:`PresenceRouter.watch_store` notices a new
generation of the store within seconds and probes everyone again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from xml.etree.ElementTree import Element

from component.addressing import COMPANY_RESOURCE, company_jid, conversation_jid, split_local
from component.directory import Directory
from component.errors import NotConnected
from component.logs import get_logger
from component.routing.outbox import Outbox
from component.routing.router import MessageRouter
from component.routing.wire import NS_CLIENT, NS_COMPONENT, render_presence
from storage.errors import Unavailable, raise_if_cancelling
from storage.models import Company, Conversation
from storage.protocols import ConversationStore, PresenceStore

log = get_logger(__name__)

_SHOW = frozenset({f"{{{NS_COMPONENT}}}show", f"{{{NS_CLIENT}}}show"})
SHOWS = frozenset({"away", "chat", "dnd", "xa"})
#: Bounds (seconds) of the wait before re-probing every agent after a storage
#: failure lost a presence update or a pending-message claim; doubled while
#: failures go on, back to the minimum once an agent's presence goes through.
RESYNC_MIN_DELAY_S = 1.0
RESYNC_MAX_DELAY_S = 60.0
#: How long agents have to answer a probe before their silent resources are dropped.
PROBE_GRACE_S = 5.0
#: How often the presence store is checked for lost data (a new generation).
STORE_CHECK_S = 2.0
#: Customers probed on (re)connection: those who wrote or were written to lately.
ACTIVE_CUSTOMERS_WINDOW = dt.timedelta(days=7)
ACTIVE_CUSTOMERS_MAX = 10_000


class PresenceRouter:
    def __init__(
        self,
        *,
        domain: str,
        directory: Directory,
        presence: PresenceStore,
        messages: MessageRouter,
        outbox: Outbox,
        conversations: ConversationStore | None = None,
    ) -> None:
        self.domain = domain
        self.directory = directory
        self.presence = presence
        #: Where recently active customers are found (None: customers are not probed).
        self.conversations = conversations
        self.messages = messages
        self.outbox = outbox
        # One queue keeps the order of presence stanzas within this process.
        self._queue: asyncio.Queue[Element] = asyncio.Queue()
        self._resync: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._resync_delay = RESYNC_MIN_DELAY_S

    def submit(self, xml: Element) -> None:
        self._queue.put_nowait(xml)

    async def run(self) -> None:
        try:
            while True:
                raise_if_cancelling()
                xml = await self._queue.get()
                try:
                    await self._handle(xml)
                except Unavailable as exc:
                    log.warning("presence.storage_unavailable", error=str(exc))
                    self._resync_later()
                except Exception as exc:
                    raise_if_cancelling(exc)
                    log.exception("presence.failed")
        finally:
            if self._resync is not None:
                self._resync.cancel()

    async def watch_store(self) -> None:
        """Probe everyone again whenever the presence store lost its data; runs until
        cancelled."""
        known: str | None = None
        while True:
            raise_if_cancelling()
            try:
                generation = await self.presence.generation()
            except Unavailable as exc:
                log.debug("presence.store_unavailable", error=str(exc))
            else:
                if known is not None and generation != known:
                    log.warning("presence.store_reset", action="probing every agent again")
                    self._resync_later()
                known = generation
            await asyncio.sleep(STORE_CHECK_S)

    def _resync_later(self) -> None:
        """Re-probe every agent once storage is back.

        The failed stanza is gone (an agent's presence not written to Redis,
        or its pending messages not claimed from PostgreSQL) and ejabberd
        sends it only once: without this, the agent stays offline, or its
        pending messages wait, until its next presence change.
        """
        if self._resync is None or self._resync.done():
            self._resync = asyncio.create_task(self._resync_when_back())

    async def _resync_when_back(self) -> None:
        while True:
            delay = self._resync_delay
            self._resync_delay = min(delay * 2, RESYNC_MAX_DELAY_S)
            await asyncio.sleep(delay)
            try:
                await self.refresh()
                return
            except Unavailable as exc:
                log.warning("presence.resync_failed", error=str(exc))

    async def _handle(self, xml: Element) -> None:
        sender = xml.get("from") or ""
        to = (xml.get("to") or "").split("/", 1)[0]
        ptype = xml.get("type")
        bare, _, resource = sender.partition("/")
        log.debug("presence.received", sender=sender, to=to, type=ptype)
        local = to.partition("@")[0] if "@" in to else ""
        parts = split_local(local) if local else None
        company = await self.directory.find(parts[0]) if parts else None
        if ptype == "error":
            log.info("presence.error_received", sender=sender, to=to)
            return
        if ptype == "probe":
            if (
                company is not None
                and parts is not None
                and parts[1] is not None
                and self.directory.is_agent(company.id, bare)
            ):
                await self._show_conversation(company, parts[1], bare)
                return
            self._answer_probe(
                to, bare, company is not None and parts is not None and parts[1] is None
            )
            return
        if ptype == "subscribe":
            # A conversation address is the company's agents' business only.
            allowed = company is not None and (
                parts is None or parts[1] is None or self.directory.is_agent(company.id, bare)
            )
            self._answer_subscribe(to, bare, allowed)
            return
        if ptype in ("subscribed", "unsubscribe", "unsubscribed"):
            if ptype == "unsubscribe":
                self._send([render_presence(to, bare, "unsubscribed")])
            if self.directory.companies_of(bare):
                log.warning(
                    "presence.agent_subscription_changed", agent=bare, company=to, type=ptype
                )
            return
        if not self.directory.companies_of(bare):
            if company is not None and parts is not None and parts[1] is None:
                await self._customer(company, bare, resource, ptype, xml)
            return
        if ptype is None:
            show = next((c.text for c in xml if c.tag in _SHOW), None)
            change = await self.presence.update(
                bare, resource, show if show in SHOWS else "available"
            )
            log.debug("presence.agent", agent=bare, resource=resource, online=True)
            if change.is_online:
                await self.messages.deliveries.deliver_pending(
                    sorted(self.directory.companies_of(bare))
                )
            self._resync_delay = RESYNC_MIN_DELAY_S  # storage serves again
        elif ptype == "unavailable":
            change = await self.presence.update(bare, resource, None)
            if change.was_online and not change.is_online:
                log.info("presence.agent_offline", agent=bare)

    async def _customer(
        self, company: Company, bare: str, resource: str, ptype: str | None, xml: Element
    ) -> None:
        """A customer's presence to a company: only whether they are online matters,
        to the cascade and to the company's agents (their contact of the conversation)."""
        if ptype is None:
            show = next((c.text for c in xml if c.tag in _SHOW), None)
            change = await self.presence.update(
                bare, resource, show if show in SHOWS else "available"
            )
        elif ptype == "unavailable":
            change = await self.presence.update(bare, resource, None)
        else:
            return
        conv = await self._conversation_with(company.id, bare)
        if conv is not None:
            agents = sorted(self.directory.agents(company.id))
            self._send(self._conversation_presence(company, conv, agents, change.is_online))

    async def contact_added(self, local: str, user: str) -> None:
        """A contact joined a user's roster (roster_sync): a company, whose presence
        is exchanged; or a conversation, whose customer's availability the agent gets."""
        parts = split_local(local)
        if parts is None:
            return
        slug, token = parts
        if token is None:
            await self.refresh([(slug, user)])
            return
        company = self.directory.company(slug)
        if company is not None:
            await self._show_conversation(company, token, user)

    async def _show_conversation(self, company: Company, token: str, agent: str) -> None:
        """Tell an agent whether the conversation's customer is online."""
        conv = await self._conversation_at(company.id, token)
        if conv is None:
            self._send(
                [
                    render_presence(
                        conversation_jid(company.slug, token, self.domain), agent, "unsubscribed"
                    )
                ]
            )
            return
        online = conv.customer_jid in await self.presence.online_among([conv.customer_jid])
        self._send(self._conversation_presence(company, conv, [agent], online))

    def _conversation_presence(
        self, company: Company, conv: Conversation, agents: Sequence[str], online: bool
    ) -> list[str]:
        frm = f"{conversation_jid(company.slug, conv.token, self.domain)}/{COMPANY_RESOURCE}"
        return [render_presence(frm, agent, None if online else "unavailable") for agent in agents]

    async def _conversation_with(self, company_id: int, customer: str) -> Conversation | None:
        """The company's conversation with a customer: the router's cache, else storage."""
        conv = self.messages.cache.by_pair(company_id, customer)
        if conv is None and self.conversations is not None:
            conv = await self.conversations.find(company_id, customer)
            if conv is not None:
                self.messages.cache.put(conv)
        return conv

    async def _conversation_at(self, company_id: int, token: str) -> Conversation | None:
        """The company's conversation of a token: the router's cache, else storage."""
        conv = self.messages.cache.of_company(company_id, token)
        if conv is None and self.conversations is not None:
            conv = await self.conversations.of_company(company_id, token)
            if conv is not None:
                self.messages.cache.put(conv)
        return conv

    def _answer_probe(self, to: str, prober: str, is_company: bool) -> None:
        if is_company:
            self._send([self._company_presence(to, prober)])
        elif to == self.domain:
            self._send([render_presence(self.domain, prober)])
        else:
            self._send([render_presence(to, prober, "unsubscribed")])

    def _answer_subscribe(self, to: str, who: str, allowed: bool) -> None:
        if not allowed:
            self._send([render_presence(to, who, "unsubscribed")])
            return
        out = [render_presence(to, who, "subscribed")]
        if "+" not in to.partition("@")[0]:
            out.append(self._company_presence(to, who))
        self._send(out)

    def _company_presence(self, frm: str, to: str) -> str:
        """The company is available, from a full JID (RFC 6121 §4.6.1: an
        available presence comes from a resource): clients that address IQs to
        the resource they saw (mcabber) otherwise send them to ``bare/``."""
        slug = frm.partition("@")[0]
        company = self.directory.company(slug)
        return render_presence(
            f"{frm}/{COMPANY_RESOURCE}", to, status=company.name if company else None
        )

    def _send(self, data: list[str]) -> None:
        try:
            self.outbox.send(data)
        except NotConnected:
            log.warning("presence.reply_dropped", reason="not connected")

    # -- probing -------------------------------------------------------------

    async def refresh(self, agents: Sequence[tuple[str, str]] | None = None) -> None:
        """Probe agents' presence (by default all of them, and the customers active
        lately) and show companies online.

        Resources that do not answer within PROBE_GRACE_S are dropped from
        Redis afterwards (ejabberd answers probes for online users only);
        the ones that answer, on this process or another, are kept all along,
        so nothing is held back meanwhile.
        """
        if agents is None:
            agents = [
                *((c.slug, jid) for c, jid in self.directory.all_agents()),
                *await self._active_customers(),
            ]
        if not agents:
            return
        started = await self.presence.clock_ms()
        out: list[str] = []
        for slug, jid in agents:
            company_address = company_jid(slug, self.domain)
            out.append(render_presence(company_address, jid, "probe"))
            out.append(self._company_presence(company_address, jid))
        self._send(out)
        jids = sorted({jid for _, jid in agents})
        log.info("presence.probed", agents=len(jids))
        task = asyncio.create_task(self._prune_later(jids, started))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _active_customers(self) -> list[tuple[str, str]]:
        """Customers to probe after a (re)connection: their presence may be stale too."""
        if self.conversations is None:
            return []
        since = dt.datetime.now(dt.UTC) - ACTIVE_CUSTOMERS_WINDOW
        found = await self.conversations.active_customers(since, ACTIVE_CUSTOMERS_MAX)
        await self.directory.load_ids(company_id for company_id, _ in found)
        return [
            (company.slug, jid)
            for company_id, jid in found
            if (company := self.directory.company_by_id(company_id)) is not None
        ]

    async def _prune_later(self, jids: list[str], started_ms: int) -> None:
        await asyncio.sleep(PROBE_GRACE_S)
        try:
            offline = await self.presence.prune(jids, started_ms)
        except Unavailable as exc:
            log.warning("presence.prune_failed", error=str(exc))
            self._resync_later()
            return
        if offline:
            log.info("presence.pruned", agents=len(offline))

    async def agent_removed(self, jid: str) -> None:
        """An agent left a company: forget their presence if they serve no other."""
        if not self.directory.companies_of(jid):
            await self.presence.forget(jid)
