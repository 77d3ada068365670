"""IQs in orgchat's own namespaces, addressed to the service domain.

Requests to several companies (``urn:orgchat:request:0``) and notification
settings (``urn:orgchat:notify:0``) are IQs to the domain whose child element
names the operation. This module registers such handlers once, the same way:
results and errors of IQs we never sent are ignored, the wrong IQ type or an
address other than the domain is refused, and every failure is mapped by
:func:`~component.errors.xmpp_errors` (a payload the extension cannot
parse is ``bad-request`` with the extension's text).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from xml.etree.ElementTree import Element

from slixmpp.stanza import Iq
from slixmpp.xmlstream.handler import CoroutineCallback
from slixmpp.xmlstream.matcher import MatchXPath

from component.errors import BadRequest, NotImplementedPayload, xmpp_errors

#: Answers the IQ's payload with the element of the result (None: an empty result).
PayloadHandler = Callable[[Iq, Element], Awaitable[Element | None]]


def register(xmpp: Any, ns: str, handlers: Mapping[tuple[str, str | None], PayloadHandler]) -> None:
    """Register ``handlers`` by (payload tag, IQ type; None: get or set)."""
    for (tag, itype), handler in handlers.items():
        xmpp.register_handler(
            CoroutineCallback(
                f"orgchat {ns} {tag}",
                MatchXPath(f"{{{xmpp.default_ns}}}iq/{{{ns}}}{tag}"),
                _answering(ns, tag, itype, handler),
            )
        )


def _answering(
    ns: str, tag: str, itype: str | None, handler: PayloadHandler
) -> Callable[[Any], Awaitable[None]]:
    @xmpp_errors
    async def answer(iq: Iq) -> None:
        if iq["type"] not in ("get", "set"):
            return  # a result or error of an IQ we never sent
        if itype is not None and iq["type"] != itype:
            raise BadRequest(f"<{tag}/> goes in an IQ of type {itype}")
        if iq["to"].user:
            raise NotImplementedPayload("Send this to the service domain itself")
        payload = iq.xml.find(f"{{{ns}}}{tag}")
        assert payload is not None  # the matcher found it
        result = await handler(iq, payload)
        reply = iq.reply(clear=True)
        if result is not None:
            reply.append(result)
        reply.send()

    return answer
