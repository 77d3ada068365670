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
2. :meth:`~RoutingHooks.alongside`, just before the archive statement
   (synchronously): what the feature records, reads and moves in the
   batch's transaction (:class:`storage.models.BatchExtras`), so that a
   batch costs one round trip to PostgreSQL whatever the features (and a
   second, read-only one only for retransmissions archived before, see
   ``ArchiveStore.append_batch``). That includes the XEP-0201 thread and the
   payload a message is archived and delivered with, when the statement
   finds them (an agent's answer to a request: the feature gives the
   payload around the request's id, the statement finds the request); the
   router sets ``item.thread`` and ``item.payload`` from what it returns.
3. :meth:`~RoutingHooks.recipients`, once the batch is archived: it may
   narrow the online agents per conversation (the desk sends a claimed
   conversation to its agent alone), from what the archive statement read
   (:class:`storage.models.BatchRead`).
4. :meth:`~RoutingHooks.after_store`, once the batch is committed (every
   feature's side by side), with what the statement read and moved: stanzas
   to send with the batch.
5. :meth:`~RoutingHooks.after_delivery`, once archived messages (pending,
   fan-out, redelivered) reached agents: stanzas to send.

A hook that raises ``storage.errors.Unavailable`` in ``after_store`` or
``after_delivery`` does not fail the batch: its messages are archived and go
out, only what the hook records lags.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from typing import TYPE_CHECKING

from storage.models import ArchivedMessage, BatchExtras, BatchRead

if TYPE_CHECKING:
    from component.routing.items import Item


class RoutingHooks:
    """A feature's part in routing; every method does nothing unless overridden."""

    #: Namespaces of message payloads this feature understands (``item.msg.payloads``).
    namespaces: frozenset[str] = frozenset()

    def check(self, item: Item) -> None:
        """Refuse (raise a RoutingError) or complete a message as it is classified."""

    def alongside(
        self,
        batch: Sequence[Item],
        routed: Sequence[int],
        written: Sequence[int],
        extras: BatchExtras,
    ) -> None:
        """Add to ``extras`` what to record, read and move with the batch's archive statement.

        ``routed``: the conversations whose messages go to online agents now.
        ``written``: those whose customer wrote a message now (not a marker or
        chat state). Items to be archived carry their ``stanza_id`` already.
        """

    async def recipients(
        self,
        agents: MutableMapping[int, list[str]],
        written: Sequence[int],
        read: BatchRead | None,
    ) -> None:
        """Narrow, in place, the online agents a conversation's customer messages go to.

        Never to nobody while someone is online: a message is archived as
        pending only when no agent is online, whoever the rules pick among
        the online ones.

        ``agents``: conversation id -> the company's online agents.
        ``written``: the conversations whose customer wrote a message now
        (not a marker or chat state); empty for archived messages delivered
        later. ``read``: what the batch's archive statement read for
        :meth:`alongside`; None for archived messages delivered later (the
        rule reads what it needs itself).
        """

    async def after_store(self, batch: Sequence[Item], read: BatchRead) -> list[str]:
        """Once the batch is archived; returns stanzas to send with it.

        ``read``: what the batch's archive statement read and moved for
        :meth:`alongside` (nothing, when the statement recorded no extras).
        """
        return []

    async def after_delivery(self, messages: Sequence[ArchivedMessage]) -> list[str]:
        """Once archived customer messages were written to agents; returns stanzas."""
        return []
