"""IQ queries answered by the component.

* XEP-0030 service discovery: disco#info of the domain, of each company and
  of each conversation address; disco#items of the domain lists the
  companies, paged with XEP-0059 result set management.
* XEP-0050 discovery of ad-hoc commands (executed by
  :mod:`component.routing.commands`): the feature in disco#info where
  commands exist for that kind of address, the node
  ``http://jabber.org/protocol/commands`` in disco#items (the commands the
  requester may run there) and disco#info of each command node.
* Features add disco#info features and XEP-0128 extended information forms
  through :class:`DiscoExtension` (the directory's search, vCards and
  company information, the archive's XEP-0313 features, the request
  namespace); :class:`Advertised` is the one for features only.
* XEP-0199 ping and XEP-0092 software version.
* :func:`render_result`: an IQ result as a string, for the answers written
  through the Outbox rather than as slixmpp reply objects (the directory
  search's pages of results, :mod:`component.features.directory.iq`).

Any other IQ get/set is answered ``feature-not-implemented`` by slixmpp.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from importlib import metadata
from typing import Any, Protocol
from xml.etree.ElementTree import Element, SubElement

from slixmpp.exceptions import XMPPError
from slixmpp.stanza import Iq
from slixmpp.xmlstream.handler import CoroutineCallback
from slixmpp.xmlstream.matcher import MatchXPath

from component.addressing import company_jid, display_name
from component.directory import Directory
from component.errors import NotAnAgent, UnknownAddress, xmpp_errors
from component.i18n import XML_LANG, _, stanza_lang, translate
from component.routing.commands import (
    NS_COMMANDS,
    CommandRegistry,
    Context,
    Forbidden,
    Target,
    resolve_target,
)
from component.routing.rsm import NS_RSM
from component.routing.wire import (
    NS_CHATSTATES,
    NS_CORRECT,
    NS_MARKERS,
    NS_NICK,
    NS_RECEIPTS,
    NS_SID,
)
from component.search import DirectorySearch, SearchQuery
from extensions.forms import NS_DATA
from extensions.xml import escape_attr
from storage.models import Company, Conversation
from storage.protocols import ConversationStore

NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
NS_PING = "urn:xmpp:ping"
NS_VERSION = "jabber:iq:version"

SERVICE_FEATURES = (NS_DISCO_INFO, NS_DISCO_ITEMS, NS_RSM, NS_PING, NS_VERSION)
CHAT_FEATURES = (
    NS_DISCO_INFO,
    NS_PING,
    NS_RECEIPTS,
    NS_CHATSTATES,
    NS_MARKERS,
    NS_SID,
    NS_CORRECT,
    NS_NICK,
)
#: Largest page of disco#items, whatever the client asks.
MAX_ITEMS_PAGE = 200


class DiscoExtension(Protocol):
    """A feature module's additions to disco#info of an address of the domain."""

    def features(self, target: Target) -> Sequence[str]:
        """Features to advertise at an address of that kind."""

    async def forms(
        self, target: Target, company: Company | None, lang: str | None = None
    ) -> Sequence[Element]:
        """XEP-0128 forms (``<x type="result"/>``, each with its own FORM_TYPE),
        labelled in ``lang`` (the query's ``xml:lang``)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Advertised:
    """A DiscoExtension of features only: what to advertise at each kind of address."""

    by_target: Mapping[Target, Sequence[str]]

    def features(self, target: Target) -> Sequence[str]:
        return self.by_target.get(target, ())

    async def forms(
        self, target: Target, company: Company | None, lang: str | None = None
    ) -> Sequence[Element]:
        return ()


async def agent_conversation(
    directory: Directory,
    conversations: ConversationStore,
    requester: str,
    company: Company,
    token: str,
) -> Conversation:
    """A conversation of the company queried by one of its agents; raises otherwise."""
    if not directory.is_agent(company.id, requester):
        raise NotAnAgent(_("Only the company's agents may query this conversation"))
    conv = await conversations.of_company(company.id, token)
    if conv is None:
        raise UnknownAddress(_("No such conversation"))
    return conv


class IqHandlers:
    def __init__(
        self,
        *,
        domain: str,
        directory: Directory,
        search: DirectorySearch,
        conversations: ConversationStore,
        commands: CommandRegistry | None = None,
        disco_extensions: Sequence[DiscoExtension] = (),
    ) -> None:
        self.domain = domain
        self.directory = directory
        self.search = search
        self.conversations = conversations
        self.commands = commands
        self.disco_extensions = disco_extensions

    def register(self, xmpp: Any) -> None:
        ns = xmpp.default_ns
        handlers: dict[str, Callable[[Any], Awaitable[None]]] = {
            NS_DISCO_INFO: self.disco_info,
            NS_DISCO_ITEMS: self.disco_items,
            NS_PING: self.ping,
            NS_VERSION: self.version,
        }
        for payload_ns, handler in handlers.items():
            tag = "ping" if payload_ns == NS_PING else "query"
            xmpp.register_handler(
                CoroutineCallback(
                    f"orgchat {payload_ns}",
                    MatchXPath(f"{{{ns}}}iq/{{{payload_ns}}}{tag}"),
                    only_get(handler),
                )
            )

    # -- targets --------------------------------------------------------------

    async def _target(self, iq: Iq) -> tuple[Company | None, str | None]:
        """(company, conversation token) addressed by the IQ; raises if unknown."""
        _kind, company, token = await resolve_target(self.directory, iq["to"])
        return company, token

    async def _conversation(self, iq: Iq, company: Company, token: str) -> Conversation:
        return await agent_conversation(
            self.directory, self.conversations, iq["from"].bare, company, token
        )

    # -- handlers -------------------------------------------------------------

    @xmpp_errors
    async def disco_info(self, iq: Iq) -> None:
        query = iq.xml.find(f"{{{NS_DISCO_INFO}}}query")
        node = query.get("node") if query is not None else None
        if node:
            return await self._command_node_info(iq, node)
        target, company, token = await resolve_target(self.directory, iq["to"])
        reply = iq.reply(clear=True)
        out = Element(f"{{{NS_DISCO_INFO}}}query")
        if company is None:
            name = translate(_("orgchat business messenger"), stanza_lang(iq.xml))
            _identity(out, "component", "generic", name)
            features: tuple[str, ...] = SERVICE_FEATURES
        elif token is None:
            _identity(out, "account", "registered", company.name)
            features = CHAT_FEATURES
        else:
            conv = await self._conversation(iq, company, token)
            _identity(out, "account", "registered", display_name(conv))
            features = CHAT_FEATURES
        if self.commands is not None and self.commands.has_commands(target):
            # XEP-0050 §2.1: advertised where there are commands to list.
            features = (*features, NS_COMMANDS)
        for extension in self.disco_extensions:
            features = (*features, *extension.features(target))
        for feature in features:
            SubElement(out, f"{{{NS_DISCO_INFO}}}feature", var=feature)
        for extension in self.disco_extensions:
            out.extend(await extension.forms(target, company, stanza_lang(iq.xml)))
        reply.append(out)
        reply.send()

    @xmpp_errors
    async def disco_items(self, iq: Iq) -> None:
        company, _token = await self._target(iq)
        query = iq.xml.find(f"{{{NS_DISCO_ITEMS}}}query")
        out = Element(f"{{{NS_DISCO_ITEMS}}}query")
        reply = iq.reply(clear=True)
        if company is None and (query is None or not query.get("node")):
            # XEP-0030 §4.1: the domain's items are its companies, by name.
            rsm = query.find(f"{{{NS_RSM}}}set") if query is not None else None
            found, rsm_out = await self.search.paged(
                SearchQuery(), rsm, MAX_ITEMS_PAGE, self.domain
            )
            for hit in found.hits:
                SubElement(
                    out,
                    f"{{{NS_DISCO_ITEMS}}}item",
                    jid=company_jid(hit.company.slug, self.domain),
                    name=hit.company.name,
                )
            if rsm_out is not None:
                out.append(rsm_out)
        elif query is not None and query.get("node") == NS_COMMANDS and self.commands:
            # XEP-0050 §2.2: the commands this requester may run at this address.
            out.set("node", NS_COMMANDS)
            ctx = await self.commands.context(iq)
            for command in self.commands.items_for(ctx):
                SubElement(
                    out,
                    f"{{{NS_DISCO_ITEMS}}}item",
                    jid=str(ctx.target_jid),
                    node=command.node,
                    name=translate(command.name, ctx.lang),
                )
        elif query is not None and query.get("node"):
            raise UnknownAddress(_("No such node"))
        reply.append(out)
        reply.send()

    async def _command_node_info(self, iq: Iq, node: str) -> None:
        """XEP-0050 §2.2: disco#info of the command list or of one command."""
        if self.commands is None:
            raise UnknownAddress(_("No such node"))
        ctx: Context = await self.commands.context(iq)
        out = Element(f"{{{NS_DISCO_INFO}}}query", node=node)
        if node == NS_COMMANDS:
            if not self.commands.has_commands(ctx.target):
                raise UnknownAddress(_("No such node"))
            _identity(out, "automation", "command-list", translate(_("Commands"), ctx.lang))
            features: tuple[str, ...] = (NS_DISCO_INFO, NS_DISCO_ITEMS)
        else:
            command = self.commands.find(ctx.target, node)
            if command is None:
                raise UnknownAddress(_("No such node"))
            if not command.allowed(ctx):
                raise Forbidden(_("You may not run this command here"))
            _identity(out, "automation", "command-node", translate(command.name, ctx.lang))
            features = (NS_COMMANDS, NS_DATA)
        for feature in features:
            SubElement(out, f"{{{NS_DISCO_INFO}}}feature", var=feature)
        reply = iq.reply(clear=True)
        reply.append(out)
        reply.send()

    @xmpp_errors
    async def ping(self, iq: Iq) -> None:
        await self._target(iq)
        iq.reply(clear=True).send()

    @xmpp_errors
    async def version(self, iq: Iq) -> None:
        out = Element(f"{{{NS_VERSION}}}query")
        _text(out, "name", "orgchat", ns=NS_VERSION)
        _text(out, "version", _version(), ns=NS_VERSION)
        reply = iq.reply(clear=True)
        reply.append(out)
        reply.send()


def render_result(iq: Element, payload: str) -> str:
    """The ``<iq type="result"/>`` answering ``iq`` (a get or a set, as parsed)
    with ``payload`` (XML text) as its child, for the
    :class:`~component.routing.outbox.Outbox`: what slixmpp's ``iq.reply()``
    writes, without its copy of the request and a serialiser's walk over the
    answer (the id and ``xml:lang`` kept, the addresses swapped)."""
    head = '<iq type="result"'
    for name, value in (("id", iq.get("id")), ("xml:lang", iq.get(XML_LANG))):
        if value is not None:
            head += f' {name}="{escape_attr(value)}"'
    for name, value in (("from", iq.get("to")), ("to", iq.get("from"))):
        if value:
            head += f' {name}="{escape_attr(value)}"'
    return f"{head}>{payload}</iq>"


def only_get(handler: Callable[[Iq], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
    """Answer IQs of type get; a set is feature-not-implemented."""

    async def wrapper(iq: Iq) -> None:
        if iq["type"] == "get":
            await handler(iq)
        elif iq["type"] == "set":
            text = _("Only queries (type get) are supported")
            raise XMPPError("feature-not-implemented", translate(text, stanza_lang(iq.xml)))
        # Results and errors of IQs we never sent: nothing to answer.

    return wrapper


def _identity(query: Element, category: str, itype: str, name: str) -> None:
    SubElement(query, f"{{{NS_DISCO_INFO}}}identity", category=category, type=itype, name=name)


def _text(parent: Element, tag: str, text: str, ns: str) -> None:
    SubElement(parent, f"{{{ns}}}{tag}").text = text


def _version() -> str:
    try:
        return metadata.version("orgchat")
    except metadata.PackageNotFoundError:
        return "unknown"
