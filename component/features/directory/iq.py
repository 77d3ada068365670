"""The directory over XMPP: search, company cards and extended service discovery.

* XEP-0054 vcard-temp of the service, of each company (name, email, street
  address and city, phone, web site, category, hours) and, for the
  company's agents only, of each conversation (the customer's nickname).

* XEP-0055 Jabber Search on the component domain, with a XEP-0004 data form
  (``FORM_TYPE`` ``jabber:iq:search``): an IQ get returns the form (name,
  category, city, open now), an IQ set with the submitted form returns the
  matching companies as a ``<reported/>`` + ``<item/>`` table. Results are
  paged with XEP-0059 (``<set/>`` in ``<query/>``, at most
  :data:`MAX_SEARCH_PAGE` per page; keys are company JIDs) and ordered by
  relevance, then name; PostgreSQL's indexes answer them
  (:mod:`component.search`).
* XEP-0292 vCard4 of each company (and of the service): the IQ
  ``<vcard xmlns="urn:ietf:params:xml:ns:vcard-4.0"/>`` of XEP-0292 up to
  version 0.11, and the PEP-style ``<items node="urn:xmpp:vcard4"/>`` read of
  version 0.12 (what Gajim and Movim ask; slixmpp asks for the node
  ``urn:ietf:params:xml:ns:vcard-4.0`` of the early drafts, answered too),
  which returns the same card as item ``current``.
* XEP-0128 service discovery extensions: disco#info of a company carries a
  ``urn:orgchat:company:0`` form (category, city, time zone, opening hours,
  open now, next opening, median first-response time), added by
  :class:`component.routing.iq.IqHandlers` through :meth:`features` and
  :meth:`forms`.

The search is a service of the domain: a search IQ to a company or a
conversation address is ``service-unavailable`` (RFC 6120 §8.4: that address
offers no such service; XEP-0055 defines no error of its own).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from xml.etree.ElementTree import Element, SubElement

from slixmpp.exceptions import XMPPError
from slixmpp.stanza import Iq
from slixmpp.xmlstream.handler import CoroutineCallback
from slixmpp.xmlstream.matcher import MatchXPath

from component.addressing import company_jid, display_name
from component.directory import Directory
from component.errors import BadRequest, RoutingError, xmpp_errors
from component.features.directory.cards import (
    NS_VCARD,
    NS_VCARD4,
    SERVICE_NAME,
    company_info,
    company_vcard4,
    company_vcard_temp,
    service_vcard4,
    vcard_temp,
)
from component.features.directory.response_times import ResponseTimes
from component.i18n import _, stanza_lang, translate, translate_form
from component.routing.commands import Target, resolve_target
from component.routing.iq import agent_conversation, only_get, render_result
from component.routing.outbox import Outbox
from component.routing.rsm import NS_RSM
from component.search import DirectorySearch, Hit, SearchQuery
from extensions.forms import NS_DATA, Column, Field, Form, Option, ResultForm, Table
from extensions.submitted_form import SubmittedForm
from extensions.xml import PayloadError, escape_text, to_xml
from storage.models import Company, CompanySearch, KnownValues
from storage.protocols import ConversationStore

NS_SEARCH = "jabber:iq:search"
#: XEP-0292 §4.1: the PEP node of a vCard4; not a disco feature (§7 names NS_VCARD4).
NODE_VCARD4 = "urn:xmpp:vcard4"
#: The node names a card is read from: XEP-0292 0.12's, and the namespace, the
#: node of the early drafts that slixmpp's XEP-0292 plugin still asks for.
VCARD4_NODES = frozenset({NODE_VCARD4, NS_VCARD4})
#: The item id of the one card of a company's vCard4 node (XEP-0060 singleton).
VCARD4_ITEM = "current"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"

#: Largest page of search results, whatever the client asks.
MAX_SEARCH_PAGE = 50
MAX_NAME_CHARS = 100
#: The list options meaning "no filter" (chosen by default).
ANY = "*"

SEARCH_INSTRUCTIONS = _(
    "Find a company: type any part of its name, or choose a category or a city, "
    "or only those open now. Leave a field empty to leave it out."
)
RESULT_COLUMNS = (
    Column("jid", _("Address"), "jid-single"),
    Column("name", _("Name")),
    Column("category", _("Category")),
    Column("city", _("City")),
    Column("open-now", _("Open now"), "boolean"),
)


class NotOffered(RoutingError):
    """The address offers no such service (a search sent to a company, ...)."""

    condition = "service-unavailable"


class DirectoryIqHandlers:
    """XEP-0055 search, vCards (XEP-0054, XEP-0292) and XEP-0128 extended info."""

    def __init__(
        self,
        *,
        domain: str,
        directory: Directory,
        search: DirectorySearch,
        conversations: ConversationStore,
        response_times: ResponseTimes,
        outbox: Outbox,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.domain = domain
        self.directory = directory
        self._search = search
        self.conversations = conversations
        self.response_times = response_times
        self.outbox = outbox
        self._now = now

    def register(self, xmpp: Any) -> None:
        ns = xmpp.default_ns
        routes: dict[str, Callable[[Any], Awaitable[None]]] = {
            f"{{{NS_SEARCH}}}query": self.search,
            f"{{{NS_VCARD}}}vCard": only_get(self.vcard),
            f"{{{NS_VCARD4}}}vcard": only_get(self.vcard4),
            f"{{{NS_PUBSUB}}}pubsub": only_get(self.pep_items),
        }
        for path, handler in routes.items():
            xmpp.register_handler(
                CoroutineCallback(f"orgchat {path}", MatchXPath(f"{{{ns}}}iq/{path}"), handler)
            )

    # -- disco#info (called by IqHandlers) ----------------------------------------

    def features(self, target: Target) -> Sequence[str]:
        """The disco#info features this module adds at an address of that kind."""
        if target is Target.DOMAIN:
            return (NS_VCARD, NS_SEARCH, NS_VCARD4)
        if target is Target.COMPANY:
            return (NS_VCARD, NS_VCARD4)
        return (NS_VCARD,)

    async def forms(
        self, target: Target, company: Company | None, lang: str | None = None
    ) -> Sequence[Element]:
        """XEP-0128: the extended information of a company's disco#info."""
        if target is not Target.COMPANY or company is None:
            return ()
        median = await self.response_times.median(company.id)
        return (translate_form(company_info(company, self._now(), median), lang).element(),)

    # -- XEP-0055 -------------------------------------------------------------------

    @xmpp_errors
    async def search(self, iq: Iq) -> None:
        if iq["type"] not in ("get", "set"):
            return  # results and errors of IQs we never sent
        target, _company, _token = await resolve_target(self.directory, iq["to"])
        if target is not Target.DOMAIN:
            raise NotOffered(_("Search the directory at {domain}", domain=self.domain))
        query = iq.xml.find(f"{{{NS_SEARCH}}}query")
        assert query is not None  # the handler's matcher
        lang = stanza_lang(iq.xml)
        if iq["type"] == "get":
            out = search_form(await self._search.known_values(), lang)
        else:
            criteria = parse_search(query.find(f"{{{NS_DATA}}}x"))
            found, rsm = await self._search.paged(
                criteria, query.find(f"{{{NS_RSM}}}set"), MAX_SEARCH_PAGE, self.domain
            )
            out = search_results(found.hits, rsm, self.domain, lang)
        # Written as a string: a page of 50 results as a reply object with an
        # element tree cost the event loop four times the CPU (docs/performance.md,
        # "Searching the directory"). A failure before this line is still
        # answered by @xmpp_errors; the Outbox drops (and logs) an answer larger
        # than ejabberd takes.
        self.outbox.send_or_drop([render_result(iq.xml, out)])

    # -- XEP-0054, XEP-0292 ---------------------------------------------------------

    @xmpp_errors
    async def vcard(self, iq: Iq) -> None:
        _kind, company, token = await resolve_target(self.directory, iq["to"])
        if company is None:
            out = vcard_temp(SERVICE_NAME)
        elif token is None:
            out = company_vcard_temp(company, self.domain, stanza_lang(iq.xml))
        else:
            conv = await agent_conversation(
                self.directory, self.conversations, iq["from"].bare, company, token
            )
            out = vcard_temp(display_name(conv), display_name(conv))
        reply = iq.reply(clear=True)
        reply.append(out)
        reply.send()

    @xmpp_errors
    async def vcard4(self, iq: Iq) -> None:
        reply = iq.reply(clear=True)
        reply.append(await self._card(iq))
        reply.send()

    @xmpp_errors
    async def pep_items(self, iq: Iq) -> None:
        """XEP-0292 §4.1 (0.12): the card as the one item of the node urn:xmpp:vcard4."""
        pubsub = iq.xml.find(f"{{{NS_PUBSUB}}}pubsub")
        items = pubsub.find(f"{{{NS_PUBSUB}}}items") if pubsub is not None else None
        if items is None:
            raise XMPPError("feature-not-implemented", "Only item retrieval is supported here")
        card = await self._card(iq)
        node_name = items.get("node") or ""
        if node_name not in VCARD4_NODES:
            raise XMPPError("item-not-found", "No such node", etype="cancel")
        wanted = {i.get("id") for i in items.findall(f"{{{NS_PUBSUB}}}item")}
        if wanted and wanted != {VCARD4_ITEM}:
            raise XMPPError("item-not-found", "No such item", etype="cancel")
        out = Element(f"{{{NS_PUBSUB}}}pubsub")
        node = SubElement(out, f"{{{NS_PUBSUB}}}items", node=node_name)
        SubElement(node, f"{{{NS_PUBSUB}}}item", id=VCARD4_ITEM).append(card)
        reply = iq.reply(clear=True)
        reply.append(out)
        reply.send()

    async def _card(self, iq: Iq) -> Element:
        target, company, _token = await resolve_target(self.directory, iq["to"])
        if target is Target.DOMAIN:
            return service_vcard4(self.domain)
        if target is Target.COMPANY and company is not None:
            return company_vcard4(company, self.domain, stanza_lang(iq.xml))
        raise NotOffered(_("Conversation addresses have no vCard4; ask for vcard-temp"))


# -- XEP-0055 forms -------------------------------------------------------------------


def search_form(known: KnownValues, lang: str | None = None) -> str:
    """The ``<query/>`` answering a search get (XML text): instructions and the
    data form, in ``lang`` (the query's ``xml:lang``)."""
    form = Form(
        title=_("Find a company"),
        instructions=SEARCH_INSTRUCTIONS,
        fields=[
            Field.hidden("FORM_TYPE", NS_SEARCH),
            Field.text_single("name", _("Name"), desc=_("Any part of the company's name")),
            _choice("category", _("Category"), _("Any category"), known.categories),
            _choice("city", _("City"), _("Any city"), known.cities),
            Field.boolean("open-now", _("Open now"), default=False),
        ],
    )
    return (
        f'<query xmlns="{NS_SEARCH}">'
        f"<instructions>{escape_text(translate(SEARCH_INSTRUCTIONS, lang))}</instructions>"
        f"{translate_form(form, lang).xml()}</query>"
    )


def _choice(var: str, label: str, anything: str, values: Sequence[str]) -> Field:
    options = [Option(ANY, anything), *(Option(v) for v in values if v != ANY)]
    return Field.list_single(var, label, options, default=ANY)


def parse_search(x: Element | None) -> SearchQuery:
    """The criteria of a submitted search form; raises PayloadError (bad-request).

    Category and city are compared case-insensitively with the directory, so
    a value that is not (or no longer) among the form's options finds nothing
    rather than failing; ``*`` or an empty value leaves the criterion out.
    """
    if x is None:
        raise BadRequest(
            _("Submit the search form (a data form): an IQ get of jabber:iq:search returns it")
        )
    form = SubmittedForm.parse(x)
    if x.get("type", "submit") != "submit":
        raise PayloadError("A submitted search form has type 'submit'")
    form_type = form.values("FORM_TYPE")
    if form_type and form_type != [NS_SEARCH]:
        raise PayloadError(f"This is not a {NS_SEARCH} form")
    name = form.text("name", required=False, label=_("Name"), max_chars=MAX_NAME_CHARS)
    category = form.text("category", required=False, label=_("Category"))
    city = form.text("city", required=False, label=_("City"))
    return SearchQuery(
        CompanySearch(
            name=name,
            category=None if category == ANY else category,
            city=None if city == ANY else city,
        ),
        open_now=form.boolean("open-now", label=_("Open now")),
    )


def search_results(
    hits: Sequence[Hit], rsm: Element | None, domain: str, lang: str | None = None
) -> str:
    """The ``<query/>`` answering a search set (XML text): one page of the table
    (its columns labelled in ``lang``), and its ``<set/>`` when there is one."""
    none: tuple[str, ...] = ()  # no category, no city: a field without a value
    rows = [
        {
            "jid": company_jid(hit.company.slug, domain),
            "name": hit.company.name,
            "category": hit.company.category or none,
            "city": hit.company.city or none,
            "open-now": "true" if hit.open_now else "false",
        }
        for hit in hits
    ]
    # XEP-0004 §3.4 (2.13.1): a table result has no top-level field, so no
    # FORM_TYPE field either, unlike the older example of XEP-0055 §3.
    form = translate_form(ResultForm(table=Table(RESULT_COLUMNS, rows)), lang)
    page = "" if rsm is None else to_xml(rsm, within=NS_SEARCH)
    return f'<query xmlns="{NS_SEARCH}">{form.xml()}{page}</query>'
