"""A bounded in-process cache of conversations.

A conversation's id, company, customer and token never change once created,
so caching them cannot make a process disagree with another one; the
nickname may change and is refreshed whenever a customer sends a new one.
A company removed and added again gets a new id, so stale entries of the old
company simply stop matching. A customer forgotten (``orgchat forget``) is
the one deletion that matters: their next message must open a new
conversation, so :meth:`ConversationCache.evict` drops them when PostgreSQL
says their conversations were deleted. The cache only saves round trips.
"""

from __future__ import annotations

from storage.models import Conversation


class ConversationCache:
    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._by_pair: dict[tuple[int, str], Conversation] = {}
        self._by_token: dict[str, Conversation] = {}
        self._by_id: dict[int, Conversation] = {}

    def by_pair(self, company_id: int, customer_jid: str) -> Conversation | None:
        return self._by_pair.get((company_id, customer_jid))

    def of_company(self, company_id: int, token: str) -> Conversation | None:
        """As ConversationStore.of_company, from the cache."""
        conv = self._by_token.get(token)
        return conv if conv is not None and conv.company_id == company_id else None

    def by_id(self, conversation_id: int) -> Conversation | None:
        return self._by_id.get(conversation_id)

    def put(self, conv: Conversation) -> None:
        if conv.id not in self._by_id and len(self._by_id) >= self._capacity:
            # Evict the oldest entry (dicts keep insertion order).
            oldest = self._by_id.pop(next(iter(self._by_id)))
            self._by_pair.pop((oldest.company_id, oldest.customer_jid), None)
            self._by_token.pop(oldest.token, None)
        self._by_pair[(conv.company_id, conv.customer_jid)] = conv
        self._by_token[conv.token] = conv
        self._by_id[conv.id] = conv

    async def evict(self, customer_jid: str | None) -> None:
        """Forget the customer's conversations; None: forget everything.

        The listener of ConversationStore.watch_deleted (None after each
        reconnection of the watch: a deletion may have been missed).
        """
        if customer_jid is None:
            self._by_pair.clear()
            self._by_token.clear()
            self._by_id.clear()
            return
        for conv in [c for c in self._by_id.values() if c.customer_jid == customer_jid]:
            del self._by_id[conv.id]
            self._by_pair.pop((conv.company_id, conv.customer_jid), None)
            self._by_token.pop(conv.token, None)

    def __len__(self) -> int:
        return len(self._by_id)
