"""The small interfaces that the component depends on.

``storage.postgres`` and ``storage.redis`` implement them; unit tests of the
routing layer use in-memory fakes of the same shape. Every method may raise
:class:`storage.errors.Unavailable` when its backend is down.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from storage.models import (
    Agent,
    ArchivedBatch,
    ArchivePage,
    Company,
    CompanyDraft,
    Conversation,
    Delivery,
    DirectorySnapshot,
    ImportedCompany,
    ImportReport,
    NewMessage,
    PresenceChange,
    Role,
    RosterJob,
)

#: Called with a company slug when it (or one of its agents) changed, or with
#: None when every cached entry must be reloaded (after a reconnect).
DirectoryListener = Callable[[str | None], Awaitable[None]]


class DirectoryStore(Protocol):
    """Companies and their agents (PostgreSQL)."""

    async def add_company(self, draft: CompanyDraft) -> Company:
        """Raises Conflict if the slug exists."""

    async def remove_company(self, slug: str) -> None:
        """Removes the company, its agents and conversations. Raises NotFound."""

    async def get_company(self, slug: str) -> Company | None: ...

    async def list_companies(self) -> list[Company]: ...

    async def add_agent(self, slug: str, jid: str, role: Role) -> Agent:
        """Raises NotFound (company) or Conflict (already an agent).

        Queues a RosterJob(ADD) in the same transaction.
        """

    async def remove_agent(self, slug: str, jid: str) -> None:
        """Raises NotFound. Queues a RosterJob(REMOVE) in the same transaction."""

    async def list_agents(self, slug: str) -> list[Agent]:
        """Raises NotFound if the company does not exist."""

    async def import_companies(self, items: Sequence[ImportedCompany]) -> ImportReport:
        """Upsert companies and add missing agents, all in one transaction."""

    async def resync_rosters(self, slugs: Sequence[str] | None = None) -> int:
        """Queue RosterJob(ADD) for every agent of these companies (None: all).

        Returns how many were queued. For when ejabberd's rosters may have
        lost what the directory says.
        """

    async def snapshot(self) -> DirectorySnapshot:
        """Every company and agent, for the component's cache."""

    async def watch(self, listener: DirectoryListener) -> None:
        """Call ``listener`` on every directory change; runs until cancelled.

        Calls ``listener(None)`` after every (re)connection of the watch, so
        that nothing missed while disconnected stays stale. Never raises
        Unavailable: it retries with backoff.
        """


class RosterJobStore(Protocol):
    """Durable queue of ejabberd roster edits (PostgreSQL)."""

    async def claim(self, limit: int) -> list[RosterJob]:
        """Lease due jobs (other processes skip them while leased)."""

    async def done(self, job_id: int) -> None: ...

    async def retry_later(self, job_id: int, delay_s: float, error: str) -> None: ...

    async def watch(self, wakeup: Callable[[], Awaitable[None]]) -> None:
        """Call ``wakeup`` whenever a job is queued (and after reconnects)."""


class ConversationStore(Protocol):
    """(company, customer) pairs and their opaque tokens (PostgreSQL)."""

    async def open_many(self, pairs: Sequence[tuple[int, str, str | None]]) -> list[Conversation]:
        """Get or create the conversation of each (company_id, customer_jid, nick).

        Returns them in the given order. A non-None nick different from the
        stored one replaces it.
        """

    async def find(self, company_id: int, customer_jid: str) -> Conversation | None: ...

    async def by_token(self, token: str) -> Conversation | None: ...

    async def by_ids(self, ids: Sequence[int]) -> list[Conversation]:
        """The conversations that exist among ``ids`` (any order)."""


class ArchiveStore(Protocol):
    """The message archive (PostgreSQL)."""

    async def append_batch(
        self, messages: Sequence[NewMessage], confirmed: Sequence[int] = ()
    ) -> ArchivedBatch:
        """Archive all messages in one transaction; results in the same order.

        A message whose (conversation, sender, client_key) was archived before
        (or earlier in the same batch) is not stored again: its result carries
        the first stanza_id and duplicate=True. The new messages that are not
        pending get one delivery record, created in the same transaction,
        which also confirms the ``confirmed`` delivery records (see confirm).
        """

    async def claim_pending(self, company_ids: Sequence[int], limit: int) -> Delivery | None:
        """Atomically take pending IN messages of these companies, oldest first,
        under a new delivery record (None if there were none)."""

    async def claim_unconfirmed(self, older_than_s: float, limit: int) -> list[Delivery]:
        """Take over delivery records nobody confirmed for ``older_than_s`` seconds
        (their process died or lost its stream); they stay leased to the caller."""

    async def confirm(self, delivery_ids: Sequence[int]) -> None:
        """The stanzas of these deliveries were written: forget the records."""

    async def requeue(self, stanza_ids: Sequence[str]) -> None:
        """Mark IN messages pending again (no agent was available to take them)."""

    async def page(
        self,
        conversation_id: int,
        *,
        start: dt.datetime | None,
        end: dt.datetime | None,
        after: str | None,
        before: str | None,
        limit: int,
    ) -> ArchivePage:
        """A page of the conversation's messages between ``start`` and ``end``.

        ``after``/``before`` are stanza-ids: the page starts after the first
        or ends before the second; ``before=""`` asks for the last page.
        Raises NotFound for a stanza-id that is not in this conversation.
        """


class PresenceStore(Protocol):
    """Which agents are online, per resource (Redis)."""

    async def update(self, agent_jid: str, resource: str, show: str | None) -> PresenceChange:
        """Record one resource's presence; ``show=None`` means unavailable."""

    async def online_among(self, agent_jids: Sequence[str]) -> set[str]:
        """The agents of the list that have at least one available resource."""

    async def clock_ms(self) -> int:
        """The store's clock (milliseconds), the one ``update`` stamps resources with."""

    async def prune(self, agent_jids: Sequence[str], before_ms: int) -> list[str]:
        """Drop the resources not seen since ``before_ms``; return the agents now offline."""

    async def forget(self, agent_jid: str) -> None:
        """Drop every resource of an agent (agent removed)."""


class LimitStore(Protocol):
    """Rate limits shared by every component process (Redis)."""

    async def hit(self, subjects: Sequence[str], limit: int, window_s: int) -> list[bool]:
        """Count one event per subject; True where the subject is within its limit."""

    async def first_seen(self, keys: Sequence[str], ttl_s: int) -> list[bool]:
        """True for each key seen for the first time within ``ttl_s`` seconds."""
