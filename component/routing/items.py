"""One message in the router's batch, and what the batch learns about it."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

from component.routing.wire import Inbound
from storage.models import Company, Conversation, Party


@dataclasses.dataclass(slots=True)
class Item:
    """One queued message and what the batch learns about it."""

    msg: Inbound
    #: CUSTOMER: to slug@domain; COMPANY: an agent (or the company by email) to slug+token@domain
    author: Party
    company: Company
    token: str | None = None
    conv: Conversation | None = None
    error: tuple[str, str, str | None] | None = None
    #: The agents a customer's message (or chat state) goes to.
    online: Sequence[str] = ()
    stanza_id: str | None = None
    duplicate: bool = False
    forward: bool = True  #: receipts/markers: False when already forwarded once
    #: XEP-0201 thread and payload (trusted XML of our own namespaces) the
    #: archive statement gave the message, as a feature's routing hooks asked
    #: (BatchExtras.replies); archived and delivered with it.
    thread: str | None = None
    payload: str | None = None
    #: Resolved once the item has been handled (see MessageRouter.post_as).
    done: asyncio.Future[None] | None = None
    #: Written by the component on the sender's behalf (post_as): his own
    #: client never showed it, so he is sent a copy (views.py).
    echo: bool = False
