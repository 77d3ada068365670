"""Requests to several companies on the message path (the feature's routing hooks).

* An agent's ``<offer/>`` or ``<decline/>`` (``urn:orgchat:request:0``) is
  checked as the message is classified (a malformed one is ``bad-request``
  and goes nowhere); one without a body gets the text a standard client
  shows.
* Every agent message in a conversation with an open request becomes part
  of it: XEP-0201 thread = the request's id, and a ``<reply/>``,
  ``<offer/>`` or ``<decline/>`` payload, archived and delivered with it.
  The batch's archive statement finds the request: this feature gives the
  payload around the request's id (:meth:`RequestHooks.alongside`).
* Answers archived now (not duplicates) and XEP-0333 ``displayed`` markers
  move the company's status (answered, declined, seen), in the same
  statement; a request's message written to an agent moves it to delivered
  (a statement of its own, :meth:`RequestHooks.after_delivery`). Every
  forward move becomes one body-less status headline per request per batch
  to the customer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from component.addressing import company_jid
from component.directory import Directory
from component.errors import BadRequest
from component.i18n import writer
from component.routing.hooks import RoutingHooks
from component.routing.items import Item
from component.routing.outbox import new_id
from extensions import forms
from extensions.request import offers, payloads
from extensions.request.stanza import NS, q
from extensions.xml import PayloadError
from storage.models import (
    ArchivedMessage,
    BatchExtras,
    BatchRead,
    Party,
    RequestReply,
    StatusChange,
    TargetStatus,
    TargetUpdate,
)
from storage.protocols import RequestStore

_OFFER = q("offer")
_DECLINE = q("decline")
#: Stands for the request's id in a payload built before the request is
#: found: the payload is given to the archive statement as what comes before
#: and after its first occurrence, which is the ``request`` attribute (an
#: element's attributes are written before its children).
_PUBLIC_ID = "{public-id}"


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    """An agent's structured answer to a request."""

    status: TargetStatus  #: ANSWERED (an offer) or DECLINED
    offer: offers.Offer | None = None
    reason: str | None = None


def answer_of(item: Item) -> Answer | None:
    """The agent's offer or decline carried by the message, if any; raises PayloadError."""
    if item.author is not Party.COMPANY:
        return None  # a customer's <offer/> means nothing: left out, as any unknown child
    for element in item.msg.payloads:
        if element.tag == _OFFER:
            return Answer(TargetStatus.ANSWERED, offer=offers.parse_offer(element))
        if element.tag == _DECLINE:
            return Answer(TargetStatus.DECLINED, reason=offers.parse_decline(element))
    return None


async def status_messages(
    directory: Directory, domain: str, changes: Sequence[StatusChange]
) -> list[str]:
    """One body-less headline per request, listing its targets that moved."""
    await directory.load_ids(change.company_id for change in changes)
    grouped: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for change in changes:
        company = directory.company_by_id(change.company_id)
        if company is None:
            continue
        grouped.setdefault((change.public_id, change.customer_jid), []).append(
            (company_jid(company.slug, domain), change.status.value)
        )
    return [
        payloads.status_message(domain, customer, new_id(), public_id, targets)
        for (public_id, customer), targets in grouped.items()
    ]


def _payload(answer: Answer | None, public_id: str) -> str:
    """The payload of an agent's message in the request ``public_id``."""
    if answer is None:
        return payloads.reply_payload(public_id)
    if answer.offer is not None:
        return payloads.offer_payload(public_id, answer.offer)
    return payloads.decline_payload(public_id, answer.reason)


class RequestHooks(RoutingHooks):
    namespaces = frozenset({NS})

    def __init__(self, *, domain: str, directory: Directory, store: RequestStore) -> None:
        self.domain = domain
        self.directory = directory
        self.store = store

    def check(self, item: Item) -> None:
        """Validate an offer or decline, and write its terms into the body: what
        every client shows (the payload is for clients that understand it)."""
        try:
            answer = answer_of(item)
        except PayloadError as exc:
            raise BadRequest(str(exc)) from None
        if answer is None:
            return
        if answer.offer is not None:
            terms = offers.offer_text(answer.offer, writer(item.msg.lang))
            body = item.msg.body
            item.msg.body = terms if body is None else f"{body}\n\n{terms}"
        elif item.msg.body is None:
            item.msg.body = offers.decline_text(answer.reason, writer(item.msg.lang))

    def alongside(
        self,
        batch: Sequence[Item],
        routed: Sequence[int],
        written: Sequence[int],
        extras: BatchExtras,
    ) -> None:
        """Every agent message joins its conversation's newest open request, if
        any, and moves its status if archived now; a displayed marker moves it
        to seen. The archive statement finds the request (none: an offer or
        decline is just its text) and applies the moves."""
        for item in batch:
            conv, msg = item.conv, item.msg
            if item.error is not None or conv is None or item.author is not Party.COMPANY:
                continue
            if msg.body is not None and item.stanza_id:
                answer = answer_of(item)
                head, _id, tail = _payload(answer, _PUBLIC_ID).partition(_PUBLIC_ID)
                extras.replies.append(RequestReply(item.stanza_id, conv.id, head, tail))
                offer = answer.offer if answer else None
                extras.updates.append(
                    TargetUpdate(
                        conv.id,
                        answer.status if answer else TargetStatus.ANSWERED,
                        offer=forms.to_xml(offers.offer_form(offer)) if offer else None,
                        reason=answer.reason if answer else None,
                        written=item.stanza_id,
                    )
                )
            elif msg.body is None and msg.marker == "displayed" and item.forward:
                extras.updates.append(TargetUpdate(conv.id, TargetStatus.SEEN))

    async def after_store(self, batch: Sequence[Item], read: BatchRead) -> list[str]:
        """The statuses the batch's statement moved, told to the customers."""
        if not read.changes:
            return []
        return await status_messages(self.directory, self.domain, read.changes)

    async def after_delivery(self, messages: Sequence[ArchivedMessage]) -> list[str]:
        """A request's message written to an agent: that company has it."""
        updates = [
            TargetUpdate(m.conversation_id, TargetStatus.DELIVERED)
            for m in messages
            if m.thread and m.author is Party.CUSTOMER
        ]
        if not updates:
            return []
        return await status_messages(self.directory, self.domain, await self.store.advance(updates))
