"""IQs of requests to several companies (``urn:orgchat:request:0``).

Addressed to the component domain by a customer:

* ``<create/>`` (set): send one request to several companies;
* ``<request id/>`` (get): one request with every company's status;
* ``<requests/>`` (get): the customer's requests, newest first, paged with
  XEP-0059 result set management;
* ``<close/>`` (set): close a request, optionally accepting an offer.

Payloads are parsed by :mod:`extensions.request` (a malformed one is a
``bad-request`` and never reaches a company); the rules live in
:class:`component.requests.RequestService`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from xml.etree.ElementTree import Element

from slixmpp.stanza import Iq
from slixmpp.xmlstream.handler import CoroutineCallback
from slixmpp.xmlstream.matcher import MatchXPath

import extensions.request as req
from component.requests import RequestService
from component.routing.errors import BadRequest, NotImplementedPayload, xmpp_errors

T = TypeVar("T")


class RequestIqHandlers:
    def __init__(self, service: RequestService) -> None:
        self.service = service

    def register(self, xmpp: Any) -> None:
        ns = xmpp.default_ns
        handlers: dict[tuple[str, str], Callable[[Iq, Element], Awaitable[Element]]] = {
            ("create", "set"): self.create,
            ("close", "set"): self.close,
            ("request", "get"): self.get,
            ("requests", "get"): self.list,
        }
        for (tag, itype), handler in handlers.items():
            xmpp.register_handler(
                CoroutineCallback(
                    f"orgchat request {tag}",
                    MatchXPath(f"{{{ns}}}iq/{{{req.NS}}}{tag}"),
                    _answering(tag, itype, handler),
                )
            )

    async def create(self, iq: Iq, payload: Element) -> Element:
        ask = _parsed(req.parse_create, payload)
        return req.request_element(await self.service.create(iq["from"].bare, ask))

    async def close(self, iq: Iq, payload: Element) -> Element:
        close = _parsed(req.parse_close, payload)
        return req.request_element(await self.service.close(iq["from"].bare, close))

    async def get(self, iq: Iq, payload: Element) -> Element:
        public_id = _parsed(req.parse_get, payload)
        return req.request_element(await self.service.get(iq["from"].bare, public_id))

    async def list(self, iq: Iq, payload: Element) -> Element:
        query = _parsed(req.parse_list, payload)
        views, first, count = await self.service.list_requests(iq["from"].bare, query)
        return req.requests_element(views, first, count)


def _answering(
    tag: str, itype: str, handler: Callable[[Iq, Element], Awaitable[Element]]
) -> Callable[[Any], Awaitable[None]]:
    @xmpp_errors
    async def answer(iq: Iq) -> None:
        if iq["type"] not in ("get", "set"):
            return  # a result or error of an IQ we never sent
        if iq["type"] != itype:
            raise BadRequest(f"<{tag}/> goes in an IQ of type {itype}")
        if iq["to"].user:
            raise NotImplementedPayload("Send requests to the service domain itself")
        payload = iq.xml.find(f"{{{req.NS}}}{tag}")
        assert payload is not None  # the matcher found it
        result = await handler(iq, payload)
        reply = iq.reply(clear=True)
        reply.append(result)
        reply.send()

    return answer


def _parsed(parse: Callable[[Element], T], payload: Element) -> T:
    try:
        return parse(payload)
    except req.PayloadError as exc:
        raise BadRequest(str(exc)) from None
