"""XEP-0313 Message Archive Management, served from orgchat's archive.

Three archives, each shown as its reader saw the conversations:

* a customer queries a company's address (``slug@domain``) and gets their own
  conversation with the company: their messages from their bare JID to the
  company, the agents' replies from the company. A customer who never wrote
  to the company gets an empty archive, not an error: the archive they may
  read there is their conversation with the company, which just has no
  messages yet (as for a customer whose history expired);
* an agent queries a company's address and gets every conversation of the
  company, in archive order, as agents see them: the customers' messages
  from the conversation's address (to the querying agent), the agents'
  replies from the agent who wrote them to the conversation's address. No
  customer's JID ever appears;
* an agent queries a conversation address (``slug+token@domain``) and gets
  that conversation, the same way. Anybody else is ``forbidden`` there
  (XEP-0313, "Data privacy"), agents of other companies included.

Filters (the query's XEP-0004 form, ``urn:xmpp:mam:2``): ``start`` and
``end``; ``with`` (an agent on the company's address may name a conversation
address to read only that conversation; elsewhere it only matches the
archive's own counterpart: anything else is an empty result); the
``urn:xmpp:mam:2#extended`` fields ``after-id``, ``before-id`` and ``ids``,
with ``<flip-page/>`` and the ``<metadata/>`` query the same feature
requires; and XEP-0431 full-text search, ``{urn:xmpp:fulltext:0}fulltext``
(every word, as a word prefix, case-insensitively: see
storage/postgres/migrations/0006_archive_search.sql). Paging is XEP-0059
over the XEP-0359 stanza-ids the archive stored (``<after/>``, ``<before/>``,
``<max/>``). Results are messages from the archive's JID, then the IQ result
with ``<fin/>``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import Any
from xml.etree.ElementTree import Element, SubElement

from slixmpp.exceptions import XMPPError
from slixmpp.stanza import Iq
from slixmpp.xmlstream.handler import CoroutineCallback
from slixmpp.xmlstream.matcher import MatchXPath

from component.addressing import company_jid, conversation_jid, parse_address
from component.directory import Directory
from component.errors import NotAnAgent, UnknownAddress, xmpp_errors
from component.i18n import _
from component.routing.outbox import Outbox, new_id
from component.routing.wire import NS_CLIENT, NS_DELAY
from extensions.xml import escape_attr, escape_text
from storage.errors import NotFound
from storage.models import (
    ArchivedMessage,
    ArchivePage,
    ArchiveQuery,
    Company,
    Conversation,
    Party,
)
from storage.protocols import ArchiveStore, ConversationStore

NS_MAM = "urn:xmpp:mam:2"
#: XEP-0313 "Determining support": before-id, after-id, ids, flipped pages and
#: the metadata query.
NS_MAM_EXTENDED = "urn:xmpp:mam:2#extended"
#: XEP-0431 full-text search in MAM.
NS_FULLTEXT = "urn:xmpp:fulltext:0"
FULLTEXT_FIELD = f"{{{NS_FULLTEXT}}}fulltext"
NS_FORWARD = "urn:xmpp:forward:0"
NS_DATA = "jabber:x:data"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_VALIDATE = "http://jabber.org/protocol/xdata-validate"

#: Page size without <max/>, and the largest page served.
DEFAULT_PAGE = 50
MAX_PAGE = 250
#: Most stanza-ids one ``ids`` field may name.
MAX_IDS = MAX_PAGE

#: The query form's fields (XEP-0313 "Retrieving form fields"), in the form's order.
FIELDS = (
    ("with", "jid-single"),
    ("start", "text-single"),
    ("end", "text-single"),
    ("before-id", "text-single"),
    ("after-id", "text-single"),
    ("ids", "list-multi"),
    (FULLTEXT_FIELD, "text-single"),
)


class Reader(enum.Enum):
    CUSTOMER = "customer"  #: a customer on a company's address
    COMPANY = "company"  #: an agent on a company's address
    CONVERSATION = "conversation"  #: an agent on a conversation address


@dataclasses.dataclass(frozen=True)
class Archive:
    """The archive an IQ addresses, as its requester may read it."""

    reader: Reader
    company: Company
    jid: str  #: the archive's address
    requester: str  #: bare JID
    #: The one conversation read (CUSTOMER: None if they never wrote;
    #: COMPANY: None, every conversation).
    conversation: Conversation | None


@dataclasses.dataclass(frozen=True)
class Filters:
    """The query form's values."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None
    with_: str | None = None
    after_id: str | None = None
    before_id: str | None = None
    ids: tuple[str, ...] = ()
    text: str | None = None


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
        xmpp.register_handler(
            CoroutineCallback(
                "orgchat mam metadata",
                MatchXPath(f"{{{xmpp.default_ns}}}iq/{{{NS_MAM}}}metadata"),
                self.handle_metadata,
            )
        )

    async def handle(self, iq: Any) -> None:
        if iq["type"] == "get":
            await self.fields(iq)
        elif iq["type"] == "set":
            await self.query(iq)

    async def handle_metadata(self, iq: Any) -> None:
        if iq["type"] == "get":
            await self.metadata(iq)
        elif iq["type"] == "set":
            await self.metadata_set(iq)

    @xmpp_errors
    async def fields(self, iq: Iq) -> None:
        """The search form (XEP-0313 "Retrieving form fields"): every field a query may use."""
        reply = iq.reply(clear=True)
        query = Element(f"{{{NS_MAM}}}query")
        form = SubElement(query, f"{{{NS_DATA}}}x", type="form")
        form_type = SubElement(form, f"{{{NS_DATA}}}field", var="FORM_TYPE", type="hidden")
        SubElement(form_type, f"{{{NS_DATA}}}value").text = NS_MAM
        for var, ftype in FIELDS:
            field = SubElement(form, f"{{{NS_DATA}}}field", var=var, type=ftype)
            if var == "ids":
                # The list is open, its options are never listed (XEP-0313).
                validate = SubElement(field, f"{{{NS_VALIDATE}}}validate", datatype="xs:string")
                SubElement(validate, f"{{{NS_VALIDATE}}}open")
        reply.append(query)
        reply.send()

    @xmpp_errors
    async def metadata_set(self, iq: Iq) -> None:
        raise XMPPError("feature-not-implemented", "Archive metadata is read with a get")

    @xmpp_errors
    async def metadata(self, iq: Iq) -> None:
        """The first and last message of the archive (XEP-0313 "Archive metadata")."""
        archive = await self._archive_of(iq)
        out = Element(f"{{{NS_MAM}}}metadata")
        if archive.reader is not Reader.CUSTOMER or archive.conversation is not None:
            ends = await self.archive.ends(_scope(archive))
            if ends is not None:
                for tag, message in zip(("start", "end"), ends, strict=True):
                    SubElement(
                        out,
                        f"{{{NS_MAM}}}{tag}",
                        id=message.stanza_id,
                        timestamp=_stamp(message.ts),
                    )
        reply = iq.reply(clear=True)
        reply.append(out)
        reply.send()

    @xmpp_errors
    async def query(self, iq: Iq) -> None:
        query = iq.xml.find(f"{{{NS_MAM}}}query")
        assert query is not None
        queryid = query.get("queryid")
        archive = await self._archive_of(iq)
        filters = _form(query)
        after, before, limit = _rsm(query)
        narrowed = await self._narrow(archive, filters.with_)
        if narrowed is None:  # `with` names nobody of this archive
            page = ArchivePage([], True, 0)
        elif narrowed.reader is Reader.CUSTOMER and narrowed.conversation is None:
            # A customer who never wrote: an empty archive, where no stanza-id is.
            if after or before or filters.after_id or filters.before_id or filters.ids:
                raise XMPPError(
                    "item-not-found", _("No such message in this archive"), etype="cancel"
                )
            page = ArchivePage([], True, 0)
        else:
            try:
                page = await self.archive.page(
                    dataclasses.replace(
                        _scope(narrowed),
                        start=filters.start,
                        end=filters.end,
                        after_id=filters.after_id,
                        before_id=filters.before_id,
                        ids=filters.ids,
                        text=filters.text,
                        after=after,
                        before=before,
                        limit=limit,
                    )
                )
            except NotFound as exc:
                raise XMPPError("item-not-found", str(exc), etype="cancel") from None
        out = await self._results(page.messages, narrowed, iq["from"].full, queryid)
        if query.find(f"{{{NS_MAM}}}flip-page") is not None:
            out.reverse()  # XEP-0313 "Flipped pages": the same page, newest first
        if out:
            self.outbox.send(out)
        reply = iq.reply(clear=True)
        fin = Element(f"{{{NS_MAM}}}fin", complete="true" if page.complete else "false")
        rsm = SubElement(fin, f"{{{NS_RSM}}}set")
        if page.messages:
            SubElement(rsm, f"{{{NS_RSM}}}first").text = page.messages[0].stanza_id
            SubElement(rsm, f"{{{NS_RSM}}}last").text = page.messages[-1].stanza_id
        if page.count is not None:
            SubElement(rsm, f"{{{NS_RSM}}}count").text = str(page.count)
        reply.append(fin)
        reply.send()

    async def _archive_of(self, iq: Iq) -> Archive:
        """The archive addressed, for this requester; raises if unknown or forbidden."""
        requester = iq["from"].bare
        address = parse_address(str(iq["to"]), self.domain)
        company = await self.directory.find(address.slug) if address and address.slug else None
        if address is None or address.slug is None or company is None:
            raise UnknownAddress(_("No archive here"))
        slug, token = address.slug, address.token
        is_agent = self.directory.is_agent(company.id, requester)
        if token is None:
            jid = company_jid(slug, self.domain)
            if is_agent:
                return Archive(Reader.COMPANY, company, jid, requester, None)
            conv = await self.conversations.find(company.id, requester)
            return Archive(Reader.CUSTOMER, company, jid, requester, conv)
        if not is_agent:
            raise NotAnAgent(_("Only the company's agents may read this conversation"))
        conv = await self.conversations.of_company(company.id, token)
        if conv is None:
            raise UnknownAddress(_("No such conversation"))
        jid = conversation_jid(slug, token, self.domain)
        return Archive(Reader.CONVERSATION, company, jid, requester, conv)

    async def _narrow(self, archive: Archive, with_: str | None) -> Archive | None:
        """Apply the ``with`` filter: the archive to read, or None for nothing."""
        if with_ is None:
            return archive
        if archive.reader is Reader.CUSTOMER:
            return archive if with_ == archive.requester else None
        if archive.reader is Reader.CONVERSATION:
            return archive if with_ == archive.jid else None
        # An agent on the company's address: one of its conversations.
        address = parse_address(with_, self.domain)
        if address is None or address.slug != archive.company.slug or address.token is None:
            return None
        conv = await self.conversations.of_company(archive.company.id, address.token)
        if conv is None:
            return None
        return dataclasses.replace(archive, conversation=conv)

    async def _results(
        self,
        messages: list[ArchivedMessage],
        archive: Archive | None,
        to_full: str,
        queryid: str | None,
    ) -> list[str]:
        if archive is None or not messages:
            return []
        if archive.reader is Reader.CUSTOMER:
            assert archive.conversation is not None
            customer = archive.conversation.customer_jid
            return [
                _result(
                    m,
                    archive.jid,
                    to_full,
                    queryid,
                    # As the customer saw it.
                    (customer, archive.jid)
                    if m.author is Party.CUSTOMER
                    else (archive.jid, customer),
                )
                for m in messages
            ]
        # As the agents saw it: each conversation from its own address.
        if archive.conversation is not None:
            tokens = {archive.conversation.id: archive.conversation.token}
        else:
            ids = sorted({m.conversation_id for m in messages})
            tokens = {c.id: c.token for c in await self.conversations.by_ids(ids)}
        out = []
        for m in messages:
            token = tokens.get(m.conversation_id)
            if token is None:  # the conversation was deleted meanwhile
                continue
            conversation_address = conversation_jid(archive.company.slug, token, self.domain)
            pair = (
                (conversation_address, archive.requester)
                if m.author is Party.CUSTOMER
                else (m.sender_jid, conversation_address)
            )
            out.append(_result(m, archive.jid, to_full, queryid, pair))
        return out


def _scope(archive: Archive) -> ArchiveQuery:
    conv = archive.conversation
    return ArchiveQuery(company_id=archive.company.id, conversation_id=conv.id if conv else None)


def _stamp(ts: dt.datetime) -> str:
    return ts.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _result(
    m: ArchivedMessage,
    archive_jid: str,
    to_full: str,
    queryid: str | None,
    pair: tuple[str, str],
) -> str:
    """One result message (XEP-0313 "Query results"): the archived message as ``pair`` saw it."""
    frm, to = pair
    qid = f' queryid="{escape_attr(queryid)}"' if queryid else ""
    inner_id = f' id="{escape_attr(m.client_id)}"' if m.client_id else ""
    extra = f"<thread>{escape_text(m.thread)}</thread>" if m.thread else ""
    extra += m.payload or ""
    return (
        f'<message from="{escape_attr(archive_jid)}" to="{escape_attr(to_full)}" '
        f'id="{new_id()}"><result xmlns="{NS_MAM}"{qid} id="{escape_attr(m.stanza_id)}">'
        f'<forwarded xmlns="{NS_FORWARD}"><delay xmlns="{NS_DELAY}" stamp="{_stamp(m.ts)}"/>'
        f'<message xmlns="{NS_CLIENT}" type="chat" from="{escape_attr(frm)}" '
        f'to="{escape_attr(to)}"{inner_id}><body>{escape_text(m.body)}</body>{extra}</message>'
        "</forwarded></result></message>"
    )


def _form(query: Element) -> Filters:
    """The filters of the query's data form; unknown fields are feature-not-implemented."""
    values: dict[str, list[str]] = {}
    form = query.find(f"{{{NS_DATA}}}x")
    if form is not None:
        for field in form.findall(f"{{{NS_DATA}}}field"):
            var = field.get("var")
            if not var:
                continue
            found = [v.text.strip() for v in field.findall(f"{{{NS_DATA}}}value") if v.text]
            values.setdefault(var, []).extend(v for v in found if v)
    known = {"FORM_TYPE", *(var for var, _type in FIELDS)}
    unknown = set(values) - known
    if unknown:
        raise XMPPError(
            "feature-not-implemented",
            f"Unsupported filter: {', '.join(sorted(unknown))}",
            etype="cancel",
        )

    def one(var: str) -> str | None:
        found = values.get(var)
        return found[0] if found else None

    with_ = one("with")
    ids = tuple(dict.fromkeys(values.get("ids", ())))
    if len(ids) > MAX_IDS:
        raise XMPPError("policy-violation", f"At most {MAX_IDS} ids per query", etype="modify")
    return Filters(
        start=_time(one("start")),
        end=_time(one("end")),
        with_=with_.split("/")[0] if with_ else None,
        after_id=one("after-id"),
        before_id=one("before-id"),
        ids=ids,
        text=one(FULLTEXT_FIELD),
    )


def _time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        # In UTC now: a time at the edge of the calendar (0001-01-01T00:00+14:00)
        # does not exist there, and must be refused here, not fail the query.
        return stamp.astimezone(dt.UTC) if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)
    except (ValueError, OverflowError):
        raise XMPPError(
            "bad-request", f"Not a XEP-0082 date and time: {value[:40]}", etype="modify"
        ) from None


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
