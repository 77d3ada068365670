"""What a feature adds to the message path: the routing hooks.

The router (:mod:`component.routing.router`) knows no feature. A feature
that takes part in routing subclasses :class:`RoutingHooks` and overrides
what it needs; the router calls every feature's hooks, in the order of the
feature list, at these points of a batch:

1. :meth:`~RoutingHooks.check`, when a message is classified (synchronously,
   from memory): it may refuse the message (raise a RoutingError) or
   complete it (an offer without a body gets its text). Child elements in
   the namespaces listed in :attr:`~RoutingHooks.namespaces` reach it in
   ``item.msg.payloads``; any other unknown child makes the message
   unsupported.
2. :meth:`~RoutingHooks.recipients`, once the company's online agents are
   known: it may narrow them per conversation (the desk sends a claimed
   conversation to its agent alone).
3. :meth:`~RoutingHooks.before_store`, before the archive statement: it may
   set ``item.thread`` and ``item.payload`` (archived and delivered with the
   message).
4. :meth:`~RoutingHooks.after_store`, once the batch is committed (every
   feature's side by side): what it records, and stanzas to send with the
   batch.
5. :meth:`~RoutingHooks.after_delivery`, once archived messages (pending,
   fan-out, redelivered) reached agents: stanzas to send.

A hook that raises ``storage.errors.Unavailable`` in ``after_store`` or
``after_delivery`` does not fail the batch: its messages are archived and go
out, only what the hook records lags.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from typing import TYPE_CHECKING

from storage.models import ArchivedMessage

if TYPE_CHECKING:
    from component.routing.items import Item


class RoutingHooks:
    """A feature's part in routing; every method does nothing unless overridden."""

    #: Namespaces of message payloads this feature understands (``item.msg.payloads``).
    namespaces: frozenset[str] = frozenset()

    def check(self, item: Item) -> None:
        """Refuse (raise a RoutingError) or complete a message as it is classified."""

    async def recipients(
        self, agents: MutableMapping[int, list[str]], written: Sequence[int]
    ) -> None:
        """Narrow, in place, the online agents a conversation's customer messages go to.

        Never to nobody while someone is online: a message is archived as
        pending (no agent online) at the same time as this runs. A rule
        that raises Unavailable is skipped for the batch (every online
        agent gets the message).

        ``agents``: conversation id -> the company's online agents.
        ``written``: the conversations whose customer wrote a message now
        (not a marker or chat state); empty for archived messages delivered
        later.
        """

    async def before_store(self, batch: Sequence[Item]) -> None:
        """Before archiving: may set ``thread`` and ``payload`` of items."""

    async def after_store(self, batch: Sequence[Item]) -> list[str]:
        """Once the batch is archived; returns stanzas to send with it."""
        return []

    async def after_delivery(self, messages: Sequence[ArchivedMessage]) -> list[str]:
        """Once archived customer messages were written to agents; returns stanzas."""
        return []
