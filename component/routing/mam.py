"""XEP-0313 Message Archive Management, served from orgchat's archive.

Each conversation's archive is reachable from both sides, as each side saw it:

* a customer queries the company's address (``slug@domain``) and gets their
  own conversation with the company: their messages from their bare JID to the
  company, the agents' replies from the company;
* an agent queries a conversation address (``slug+token@domain``) and gets
  that conversation: the customer's messages from the conversation address,
  the agents' replies from the agent who wrote them.

Paging is XEP-0059 over stanza-ids (``<after/>``, ``<before/>``, ``<max/>``);
the form filters ``start`` and ``end`` are supported, ``with`` only as the
archive's own counterpart. Results are sent as messages from the archive's
JID, then the IQ result with ``<fin/>``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from xml.etree.ElementTree import Element, SubElement

from slixmpp.exceptions import XMPPError
from slixmpp.stanza import Iq
from slixmpp.xmlstream.handler import CoroutineCallback
from slixmpp.xmlstream.matcher import MatchXPath

from component.addressing import company_jid, conversation_jid, split_local
from component.directory import Directory
from component.routing.errors import NotAnAgent, UnknownAddress, xmpp_errors
from component.routing.messages import Outbox, new_id
from component.routing.wire import NS_CLIENT, NS_DELAY, escape_attr, escape_text
from storage.errors import NotFound
from storage.models import ArchivedMessage, ArchivePage, Conversation, Direction
from storage.protocols import ArchiveStore, ConversationStore

NS_MAM = "urn:xmpp:mam:2"
NS_FORWARD = "urn:xmpp:forward:0"
NS_DATA = "jabber:x:data"
NS_RSM = "http://jabber.org/protocol/rsm"

#: Page size without <max/>, and the largest page served.
DEFAULT_PAGE = 50
MAX_PAGE = 250


class MamHandler:
    def __init__(
        self,
        *,
        domain: str,
        directory: Directory,
        conversations: ConversationStore,
        archive: ArchiveStore,
        outbox: Outbox,
    ) -> None:
        self.domain = domain
        self.directory = directory
        self.conversations = conversations
        self.archive = archive
        self.outbox = outbox

    def register(self, xmpp: Any) -> None:
        xmpp.register_handler(
            CoroutineCallback(
                "orgchat mam",
                MatchXPath(f"{{{xmpp.default_ns}}}iq/{{{NS_MAM}}}query"),
                self.handle,
            )
        )

    async def handle(self, iq: Any) -> None:
        if iq["type"] == "get":
            await self.fields(iq)
        elif iq["type"] == "set":
            await self.query(iq)

    @xmpp_errors
    async def fields(self, iq: Iq) -> None:
        """The search form (XEP-0313 §6.1)."""
        reply = iq.reply(clear=True)
        query = Element(f"{{{NS_MAM}}}query")
        form = SubElement(query, f"{{{NS_DATA}}}x", type="form")
        form_type = SubElement(form, f"{{{NS_DATA}}}field", var="FORM_TYPE", type="hidden")
        SubElement(form_type, f"{{{NS_DATA}}}value").text = NS_MAM
        for var, ftype in (
            ("with", "jid-single"),
            ("start", "text-single"),
            ("end", "text-single"),
        ):
            SubElement(form, f"{{{NS_DATA}}}field", var=var, type=ftype)
        reply.append(query)
        reply.send()

    @xmpp_errors
    async def query(self, iq: Iq) -> None:
        query = iq.xml.find(f"{{{NS_MAM}}}query")
        assert query is not None
        queryid = query.get("queryid")
        requester = iq["from"].bare
        conv, archive_jid, counterpart = await self._archive_of(iq, requester)
        start, end, with_ = _form(query)
        if conv is None or (with_ is not None and with_ != counterpart):
            page = ArchivePage([], True, 0)
        else:
            after, before, limit = _rsm(query)
            try:
                page = await self.archive.page(
                    conv.id, start=start, end=end, after=after, before=before, limit=limit
                )
            except NotFound as exc:
                raise XMPPError("item-not-found", str(exc), etype="cancel") from None
        out = (
            [
                self._result(m, conv, iq["from"].full, archive_jid, queryid, requester)
                for m in page.messages
            ]
            if conv is not None
            else []
        )
        if out:
            self.outbox.send(out)
        reply = iq.reply(clear=True)
        fin = Element(f"{{{NS_MAM}}}fin", complete="true" if page.complete else "false")
        rsm = SubElement(fin, f"{{{NS_RSM}}}set")
        if page.messages:
            SubElement(rsm, f"{{{NS_RSM}}}first").text = page.messages[0].stanza_id
            SubElement(rsm, f"{{{NS_RSM}}}last").text = page.messages[-1].stanza_id
        SubElement(rsm, f"{{{NS_RSM}}}count").text = str(page.count)
        reply.append(fin)
        reply.send()

    async def _archive_of(self, iq: Iq, requester: str) -> tuple[Conversation | None, str, str]:
        """(conversation, archive JID, the counterpart a `with` filter may name)."""
        to = iq["to"]
        parts = split_local(to.user) if to.user else None
        company = self.directory.company(parts[0]) if parts else None
        if parts is None or company is None:
            raise UnknownAddress("No archive here")
        slug, token = parts
        if token is None:
            # A customer's own conversation with the company.
            conv = await self.conversations.find(company.id, requester)
            return conv, company_jid(slug, self.domain), requester
        if not self.directory.is_agent(company.id, requester):
            raise NotAnAgent("Only the company's agents may read this conversation")
        conv = await self.conversations.by_token(token)
        if conv is None or conv.company_id != company.id:
            raise UnknownAddress("No such conversation")
        vjid = conversation_jid(slug, token, self.domain)
        return conv, vjid, vjid

    def _result(
        self,
        m: ArchivedMessage,
        conv: Conversation,
        to_full: str,
        archive_jid: str,
        queryid: str | None,
        requester: str,
    ) -> str:
        company_side = "+" not in archive_jid.partition("@")[0]
        if company_side:  # as the customer saw it
            frm, to = (
                (conv.customer_jid, archive_jid)
                if m.direction is Direction.IN
                else (archive_jid, conv.customer_jid)
            )
        else:  # as the agents saw it
            frm, to = (
                (archive_jid, requester)
                if m.direction is Direction.IN
                else (m.sender_jid, archive_jid)
            )
        qid = f' queryid="{escape_attr(queryid)}"' if queryid else ""
        stamp = m.ts.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        inner_id = f' id="{escape_attr(m.client_id)}"' if m.client_id else ""
        extra = f"<thread>{escape_text(m.thread)}</thread>" if m.thread else ""
        extra += m.payload or ""
        return (
            f'<message from="{escape_attr(archive_jid)}" to="{escape_attr(to_full)}" '
            f'id="{new_id()}"><result xmlns="{NS_MAM}"{qid} id="{escape_attr(m.stanza_id)}">'
            f'<forwarded xmlns="{NS_FORWARD}"><delay xmlns="{NS_DELAY}" stamp="{stamp}"/>'
            f'<message xmlns="{NS_CLIENT}" type="chat" from="{escape_attr(frm)}" '
            f'to="{escape_attr(to)}"{inner_id}><body>{escape_text(m.body)}</body>{extra}</message>'
            "</forwarded></result></message>"
        )


def _form(query: Element) -> tuple[dt.datetime | None, dt.datetime | None, str | None]:
    """The `start`, `end` and `with` fields of the query's data form."""
    values: dict[str, str] = {}
    form = query.find(f"{{{NS_DATA}}}x")
    if form is not None:
        for field in form.findall(f"{{{NS_DATA}}}field"):
            value = field.findtext(f"{{{NS_DATA}}}value")
            if field.get("var") and value is not None:
                values[field.get("var", "")] = value.strip()
    unknown = set(values) - {"FORM_TYPE", "start", "end", "with"}
    if unknown:
        raise XMPPError(
            "feature-not-implemented",
            f"Unsupported filter: {', '.join(sorted(unknown))}",
            etype="cancel",
        )
    with_ = values.get("with")
    return (
        _time(values.get("start")),
        _time(values.get("end")),
        with_.split("/")[0] if with_ else None,
    )


def _time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise XMPPError(
            "bad-request", f"Not a XEP-0082 date and time: {value}", etype="modify"
        ) from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def _rsm(query: Element) -> tuple[str | None, str | None, int]:
    """(after, before, limit) of the XEP-0059 request; before "" is the last page."""
    rsm = query.find(f"{{{NS_RSM}}}set")
    if rsm is None:
        return None, None, DEFAULT_PAGE
    limit = DEFAULT_PAGE
    max_text = rsm.findtext(f"{{{NS_RSM}}}max")
    if max_text is not None:
        try:
            limit = max(0, min(int(max_text), MAX_PAGE))
        except ValueError:
            raise XMPPError("bad-request", "Malformed <max/>", etype="modify") from None
    after = rsm.findtext(f"{{{NS_RSM}}}after")
    before_el = rsm.find(f"{{{NS_RSM}}}before")
    before = None if before_el is None else (before_el.text or "")
    return (after or None), before, limit
