"""IQs of requests to several companies (``urn:orgchat:request:0``).

Addressed to the component domain by a customer:

* ``<create/>`` (set): send one request to several companies;
* ``<request id/>`` (get): one request with every company's status;
* ``<requests/>`` (get): the customer's requests, newest first, paged with
  XEP-0059 result set management;
* ``<close/>`` (set): close a request, optionally accepting an offer.

Payloads are parsed by :mod:`extensions.request` (a malformed one is a
``bad-request`` and never reaches a company); the rules live in
:class:`component.features.requests.service.RequestService`.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element

from slixmpp.stanza import Iq

from component.features.requests.service import RequestService
from component.i18n import stanza_lang
from component.routing import domain_iq
from extensions.request.create import parse_create
from extensions.request.queries import parse_close, parse_get, parse_list
from extensions.request.stanza import NS
from extensions.request.views import request_element, requests_element


class RequestIqHandlers:
    def __init__(self, service: RequestService) -> None:
        self.service = service

    def register(self, xmpp: Any) -> None:
        domain_iq.register(
            xmpp,
            NS,
            {
                ("create", "set"): self.create,
                ("close", "set"): self.close,
                ("request", "get"): self.get,
                ("requests", "get"): self.list,
            },
        )

    async def create(self, iq: Iq, payload: Element) -> Element:
        ask = parse_create(payload)
        return request_element(
            await self.service.create(iq["from"].bare, ask, lang=stanza_lang(iq.xml))
        )

    async def close(self, iq: Iq, payload: Element) -> Element:
        close = parse_close(payload)
        return request_element(
            await self.service.close(iq["from"].bare, close, stanza_lang(iq.xml))
        )

    async def get(self, iq: Iq, payload: Element) -> Element:
        public_id = parse_get(payload)
        return request_element(await self.service.get(iq["from"].bare, public_id))

    async def list(self, iq: Iq, payload: Element) -> Element:
        query = parse_list(payload)
        views, first, count = await self.service.list_requests(iq["from"].bare, query)
        return requests_element(views, first, count)
