"""IQs of requests to several companies (``urn:orgchat:request:0``).

Addressed to the component domain by a customer:

* ``<create/>`` (set): send one request to several companies;
* ``<request id/>`` (get): one request with every company's status;
* ``<requests/>`` (get): the customer's requests, newest first, paged with
  XEP-0059 result set management;
* ``<close/>`` (set): close a request, optionally accepting an offer.

The domain's disco#info (XEP-0030) advertises the namespace, with the limit
a client shows before sending as XEP-0128 extended information (FORM_TYPE
``urn:orgchat:request:0``, field ``max-companies``).

Payloads are parsed by :mod:`extensions.request` (a malformed one is a
``bad-request`` and never reaches a company); the rules live in
:class:`component.features.requests.service.RequestService`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from xml.etree.ElementTree import Element

from slixmpp.stanza import Iq

from component.features.requests.service import RequestService
from component.i18n import _, stanza_lang, translate_form
from component.routing import domain_iq
from component.routing.commands import Target
from extensions.forms import Field, ResultForm
from extensions.request.create import parse_create
from extensions.request.queries import parse_close, parse_get, parse_list
from extensions.request.stanza import NS
from extensions.request.views import request_element, requests_element
from storage.models import Company


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

    # -- disco#info (called by IqHandlers) ----------------------------------------

    def features(self, target: Target) -> Sequence[str]:
        return (NS,) if target is Target.DOMAIN else ()

    async def forms(
        self, target: Target, company: Company | None, lang: str | None = None
    ) -> Sequence[Element]:
        """XEP-0128: the limits of the domain's requests (:func:`limits_form`)."""
        if target is not Target.DOMAIN:
            return ()
        return (translate_form(limits_form(self.service.settings.max_companies), lang).element(),)

    # -- the IQs ---------------------------------------------------------------------

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
        return requests_element(views, first, count, full=query.full)


def limits_form(max_companies: int) -> ResultForm:
    """The limits a client shows before sending a request (docs/protocol.md)::

    <x xmlns="jabber:x:data" type="result">
      <field var="FORM_TYPE" type="hidden"><value>urn:orgchat:request:0</value></field>
      <field var="max-companies" type="text-single" label="Most companies per request">
        <value>10</value>
      </field>
    </x>
    """
    return ResultForm(
        fields=[
            Field.hidden("FORM_TYPE", NS),
            Field.text_single(
                "max-companies", _("Most companies per request"), default=str(max_companies)
            ),
        ]
    )
