"""The small interfaces that the component depends on.

``storage.postgres`` and ``storage.redis`` implement them; unit tests of the
routing layer use in-memory fakes of the same shape. Every method may raise
:class:`storage.errors.Unavailable` when its backend is down.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol

from storage.models import (
    Admission,
    Admitted,
    Agent,
    ArchivedBatch,
    ArchivedMessage,
    ArchivePage,
    ArchiveQuery,
    BatchExtras,
    CannedReply,
    Channel,
    Company,
    CompanyDraft,
    CompanySearch,
    Contact,
    Conversation,
    ConversationStatus,
    CreatedRequest,
    Delivery,
    DeskChange,
    DeskEvent,
    DeskList,
    DeskRouting,
    DeskState,
    DirectorySnapshot,
    Forgotten,
    ImportedCompany,
    ImportReport,
    KnownValues,
    Limit,
    NewMessage,
    NewRequest,
    Note,
    Notice,
    NotifyJob,
    Once,
    Party,
    PresenceChange,
    Pruned,
    PushSubscription,
    Request,
    RequestPage,
    RequestState,
    Role,
    RosterJob,
    SearchCursor,
    StatusChange,
    TargetUpdate,
    Unseen,
)

#: Called with a company slug when it (or one of its agents) changed, or with
#: None when every cached entry must be reloaded (after a reconnect, or a
#: change of several companies at once, such as an import).
DirectoryListener = Callable[[str | None], Awaitable[None]]


class DirectorySearchStore(Protocol):
    """The directory's search (PostgreSQL, indexed): ordered by relevance, then
    name, then slug; see :mod:`storage.postgres.tables.company_search`."""

    async def page(
        self, criteria: CompanySearch, cursor: SearchCursor, limit: int
    ) -> list[Company] | None:
        """Up to ``limit`` results from ``cursor``, in order; None when the
        cursor names a company that is not among the results."""

    async def count(self, criteria: CompanySearch, cap: int) -> int:
        """How many companies match, counting no further than ``cap``."""

    async def position(self, criteria: CompanySearch, slug: str, cap: int) -> int | None:
        """How many results come before the company ``slug`` (None: at least
        ``cap``, or not a result)."""

    async def known_values(self) -> KnownValues:
        """The distinct categories and cities, in order, as they are spelled."""


class DirectoryStore(Protocol):
    """Companies and their agents (PostgreSQL)."""

    async def add_company(self, draft: CompanyDraft) -> Company:
        """Raises Conflict if the slug exists."""

    async def remove_company(self, slug: str) -> None:
        """Removes the company, its agents and conversations. Raises NotFound."""

    async def get_company(self, slug: str) -> Company | None: ...

    async def list_companies(self) -> list[Company]: ...

    async def companies_by_slug(self, slugs: Sequence[str]) -> list[Company]:
        """The existing companies among ``slugs``, in slug order."""

    async def companies_by_id(self, ids: Sequence[int]) -> list[Company]:
        """The existing companies among ``ids``, in id order."""

    async def add_agent(self, slug: str, jid: str, role: Role) -> Agent:
        """Raises NotFound (company) or Conflict (already an agent).

        Queues a RosterJob(ADD) in the same transaction.
        """

    async def remove_agent(self, slug: str, jid: str) -> None:
        """Raises NotFound. Queues a RosterJob(REMOVE) in the same transaction."""

    async def list_agents(self, slug: str) -> list[Agent]:
        """Raises NotFound if the company does not exist."""

    async def import_companies(self, items: Iterable[ImportedCompany]) -> ImportReport:
        """Upsert companies, add missing agents and queue their roster jobs, in one transaction.

        ``items`` is consumed as it is written, so it may stream a file of any
        size; an exception it raises rolls the whole import back. Listeners
        of ``watch`` hear of it once.
        """

    async def resync_rosters(self, slugs: Sequence[str] | None = None) -> int:
        """Queue RosterJob(ADD) for every agent of these companies (None: all).

        Returns how many were queued. For when ejabberd's rosters may have
        lost what the directory says.
        """

    async def set_hours(self, company_id: int, hours: str | None, timezone: str) -> None:
        """Opening hours (validated by the caller) and time zone. Raises NotFound."""

    async def set_away_message(self, company_id: int, text: str | None) -> None:
        """None restores the standard text. Raises NotFound."""

    async def set_reaction_window(self, company_id: int, seconds: int | None) -> None:
        """None restores the service's default. Raises NotFound."""

    async def snapshot(self) -> DirectorySnapshot:
        """Every agent and the companies that have agents (in one instant),
        what the component keeps in memory whatever the directory's size."""

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

    async def open_many(
        self, pairs: Sequence[tuple[int, str, str | None]], *, by_request: bool = False
    ) -> list[Conversation]:
        """Get or create the conversation of each (company_id, customer_jid, nick).

        Returns them in the given order. A non-None nick different from the
        stored one replaces it. ``by_request``: the conversations created are
        opened by a request to several companies; such a company joins the
        customer's roster only once it answers (not when merely asked).
        """

    async def find(self, company_id: int, customer_jid: str) -> Conversation | None: ...

    async def of_company(self, company_id: int, token: str) -> Conversation | None:
        """The conversation with this token, if it is one of this company's.

        The tenant check: an address ``slug+token`` names a conversation only
        together with its company, so every lookup by token goes through here.
        """

    async def by_ids(self, ids: Sequence[int]) -> list[Conversation]:
        """The conversations that exist among ``ids`` (any order)."""

    async def watch_deleted(self, listener: Callable[[str | None], Awaitable[None]]) -> None:
        """Call ``listener(customer_jid)`` whenever conversations of that customer
        are deleted (``forget``, a company removed), and ``listener(None)``
        after every (re)connection of the watch; runs until cancelled. Never
        raises Unavailable: it retries with backoff.
        """

    async def active_customers(self, since: dt.datetime, limit: int) -> list[tuple[int, str]]:
        """(company_id, customer_jid) of conversations with messages since ``since``,
        newest conversations first, at most ``limit``."""


class ArchiveStore(Protocol):
    """The message archive (PostgreSQL)."""

    async def append_batch(
        self,
        messages: Sequence[NewMessage],
        confirmed: Sequence[int] = (),
        extras: BatchExtras | None = None,
    ) -> ArchivedBatch:
        """Archive all messages in one transaction; results in the same order.

        A message whose (conversation, sender, client_key) was archived before
        (or earlier in the same batch) is not stored again: its result carries
        the first stanza_id and duplicate=True. The new messages that are not
        pending get one delivery record, created in the same transaction,
        which also confirms the ``confirmed`` delivery records (see confirm).
        The ``extras`` are recorded in the same transaction, as
        NotifyStore.mark_seen, NotifyStore.schedule and RequestStore.advance
        would (a mark, step or update whose ``written`` message is a duplicate
        is skipped), and the routing they ask for is read as DeskStore.route
        would (``read``). A new message among the ``replies`` of a
        conversation with an open request (as RequestStore.open_in finds it)
        is archived with that request's thread and payload (``threads``). One
        round trip in all, and a second, read-only one only when messages
        were skipped as duplicates.
        """

    async def claim_pending(self, company_ids: Sequence[int], limit: int) -> Delivery | None:
        """Atomically take pending IN messages of these companies, oldest first,
        under a new delivery record (None if there were none)."""

    async def count_pending(self) -> int:
        """How many customer messages wait for an agent, of every company."""

    async def claim_unconfirmed(self, older_than_s: float, limit: int) -> list[Delivery]:
        """Take over delivery records nobody confirmed for ``older_than_s`` seconds
        (their process died or lost its stream); they stay leased to the caller."""

    async def confirm(self, delivery_ids: Sequence[int]) -> None:
        """The stanzas of these deliveries were written: forget the records."""

    async def requeue(self, stanza_ids: Sequence[str]) -> None:
        """Mark IN messages pending again (no agent was available to take them)."""

    async def page(self, query: ArchiveQuery) -> ArchivePage:
        """A page of the messages of the query's scope that match its filters.

        ``query.after``/``query.before`` are stanza-ids: the page starts after
        the first or ends before the second (``before=""``: the last page).
        Raises NotFound for any stanza-id of the query that is not in its scope.
        """

    async def ends(self, query: ArchiveQuery) -> tuple[ArchivedMessage, ArchivedMessage] | None:
        """The first and the last message of the query's scope (None if it has none)."""

    async def messages_of(
        self, conversation_id: int, *, after: int, limit: int
    ) -> list[ArchivedMessage]:
        """Up to ``limit`` messages of the conversation whose archive id
        (ArchivedMessage.id) is above ``after``, in archive order (export)."""

    async def prune_expired(self, now: dt.datetime, batch_size: int) -> list[Pruned]:
        """Delete the messages that are older than their company's retention.

        In statements of at most ``batch_size`` rows, each committed on its
        own, so nothing is locked for long; several processes may run it at
        once. Returns one entry per company that has a retention.
        """


class ResponseTimeStore(Protocol):
    """How fast companies answer, measured from the archive (PostgreSQL)."""

    async def median_first_response(
        self, company_id: int, *, since: dt.datetime, silence_s: float
    ) -> float | None:
        """The median wait, in seconds, of the company's customers since ``since``.

        In each conversation a *wait* starts with a customer's message sent
        after at least ``silence_s`` seconds without any message (or as the
        conversation's first), and ends with the first agent message after
        it; customer messages sent while a wait is open start no other. Only
        waits that started at or after ``since`` and have ended count. None
        when there is none.
        """


class LeaseStore(Protocol):
    """Named leases, so that one process of many runs a periodic job (PostgreSQL)."""

    async def take(self, name: str, seconds: float) -> bool:
        """Take the lease ``name`` for ``seconds`` from now, unless another
        process holds it (then False). A lease is never released: it runs out."""


class CustomerStore(Protocol):
    """Everything stored about one customer, across the tables (PostgreSQL)."""

    async def forget(self, customer_jid: str) -> Forgotten:
        """Delete, in one transaction, the customer's conversations (with their
        messages, request targets, notification jobs and marks), requests,
        contact row, push subscriptions and pending roster jobs. What the JID
        holds as an agent stays. Returns what was deleted."""


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

    async def generation(self) -> str:
        """Names the presence data the store holds: the same value until the store
        loses its data (a Redis restart without persistence), a new one after."""


class AdmissionStore(Protocol):
    """A routed batch's questions to Redis, asked in one round trip (the
    counterpart of its one archive statement in PostgreSQL)."""

    async def admit(self, admission: Admission) -> Admitted:
        """Count ``admission.hits`` as :meth:`LimitStore.hit` does, tell the online
        ones among ``admission.agents`` as :meth:`PresenceStore.online_among`
        does, and mark ``admission.marks`` as :meth:`LimitStore.first_seen`
        does, in that order."""


class LimitStore(Protocol):
    """Rate limits shared by every component process (Redis)."""

    async def hit(
        self, kind: Limit, subjects: Sequence[str | int], limit: int, window_s: int
    ) -> list[bool]:
        """Count one event of ``kind`` per subject; True where the subject is within
        ``limit`` events per ``window_s`` seconds."""

    async def first_seen(
        self, kind: Once, keys: Sequence[Sequence[str | int]], ttl_s: int
    ) -> list[bool]:
        """True for each key (a tuple of parts) of ``kind`` seen for the first time
        within ``ttl_s`` seconds."""

    async def forget(self, jid: str) -> int:
        """Drop every counter kept about this bare JID; returns how many."""


class RequestStore(Protocol):
    """Requests to several companies, their targets and statuses (PostgreSQL)."""

    async def create(self, new: NewRequest, duplicate_window_s: float) -> CreatedRequest:
        """Store the request and fan it out, in one transaction.

        If the same customer created a request with the same ``dedup_key``
        less than ``duplicate_window_s`` seconds ago, nothing is written and
        that request is returned with ``duplicate=True``. Otherwise each
        company's conversation with the customer is opened (created if new,
        ``customer_nick`` as for ConversationStore.open_many), the fan-out
        message is archived in it (direction IN, sender the customer, thread
        the public id, not pending) and recorded in one delivery record that
        the caller confirms, and every target starts as SENT.
        """

    async def get(self, public_id: str) -> Request | None: ...

    async def list_for(
        self,
        customer_jid: str,
        *,
        state: RequestState | None,
        after: str | None,
        before: str | None,
        limit: int,
    ) -> RequestPage:
        """A page of the customer's requests, newest first.

        ``after``/``before`` are public ids (XEP-0059); ``before=""`` asks
        for the last page. Raises NotFound for an id that is not the
        customer's.
        """

    async def open_in(self, conversation_ids: Sequence[int]) -> dict[int, str]:
        """The public id of the newest open request targeting each conversation."""

    async def advance(self, updates: Sequence[TargetUpdate]) -> list[StatusChange]:
        """Move targets of open requests forward; return the effective changes.

        Each update applies to the newest open request targeting its
        conversation. A status only moves to a higher rank (DECLINED and
        EXPIRED are final); an ANSWERED update with an offer on an already
        ANSWERED target replaces the offer without a change being reported.
        The updates of a routed batch are applied by its archive statement
        instead (BatchExtras.updates, ArchiveStore.append_batch).
        """

    async def close(
        self,
        public_id: str,
        customer_jid: str,
        accepted_company_id: int | None,
        notices: Sequence[Notice],
    ) -> tuple[Request, Delivery | None]:
        """Close an open request of this customer, in one transaction.

        Archives each notice in its company's conversation (direction IN,
        sender the customer, thread the public id) under one delivery record
        leased to the caller. Raises NotFound (no such request of this
        customer, or an accepted company that is not a target) or Conflict
        (not open).
        """

    async def expire_due(self, now: dt.datetime, limit: int) -> list[Request]:
        """Expire open requests whose time is up; their unanswered targets
        become EXPIRED. Each request is returned to exactly one caller, even
        with several processes sweeping."""


class NotifyStore(Protocol):
    """The cascade's durable jobs and read state (PostgreSQL).

    A conversation has, per party, a *seen* mark (everything up to it was read
    on XMPP) and, per party and channel, a *notified* mark (everything up to
    it was sent by that channel) and the time of the last sending.
    """

    async def schedule(
        self, jobs: Sequence[tuple[int, Party, Channel, dt.datetime]], quiet_s: float
    ) -> None:
        """Ensure a pending job per (conversation, party, channel) due at the given time.

        An existing pending job keeps its due time: what arrives meanwhile is
        batched into it. A new job is never due before ``quiet_s`` seconds
        after the last sending of the same (conversation, party, channel).
        """

    async def claim(self, now: dt.datetime, limit: int, lease_s: float) -> list[NotifyJob]:
        """Lease due pending jobs (``FOR UPDATE SKIP LOCKED``): other processes
        skip them until the lease ends (a process that died mid-job)."""

    async def unseen(self, job: NotifyJob) -> Unseen:
        """The messages the job is about: of the party's incoming direction,
        after its seen mark and after the channel's notified mark. Raises
        NotFound if the conversation is gone."""

    async def sent(self, job_id: int, up_to_message_id: int) -> None:
        """The job notified up to this message: done, marks and time recorded."""

    async def cancel(self, job_id: int, reason: str) -> None:
        """Nothing to do (seen meanwhile, opted out, nobody to reach)."""

    async def retry(self, job_id: int, delay_s: float, error: str) -> None:
        """A temporary failure: pending again in ``delay_s`` seconds, attempts + 1."""

    async def fail(self, job_id: int, error: str) -> None:
        """A permanent failure: kept as failed with the error, never retried."""

    async def postpone(self, job_id: int, due_at: dt.datetime) -> None:
        """Pending again at ``due_at`` (quiet hours), attempts unchanged."""

    async def mark_seen(self, marks: Sequence[tuple[int, Party]]) -> None:
        """The party has read everything of the conversation archived so far."""


class ContactStore(Protocol):
    """Email addresses, opt-outs and push subscriptions (PostgreSQL)."""

    async def get(self, address: str) -> Contact:
        """The contact (defaults if none stored). For a company JID the email is
        the directory's, unless the company opted out."""

    async def request_email(
        self, address: str, email: str, code_hash: str, lang: str | None = None
    ) -> None:
        """Remember an address awaiting confirmation (replaces any earlier one);
        ``lang`` (an ``xml:lang``), if given, becomes the language of the emails."""

    async def confirm_email(self, address: str, code_hash: str) -> str | None:
        """Confirm the pending address if the code matches; returns it, else None."""

    async def set_opt_out(self, address: str, channel: Channel, opted_out: bool) -> None: ...

    async def set_quiet_hours(
        self, address: str, quiet_hours: str | None, timezone: str | None
    ) -> None:
        """Set (or with None, clear) the contact's quiet hours."""

    async def add_push(self, address: str, endpoint: str, p256dh: str, auth: str) -> int:
        """Store (or refresh) a subscription; returns its id."""

    async def push_subscriptions(self, address: str) -> list[PushSubscription]: ...

    async def remove_push(self, subscription_id: int) -> None:
        """Forget a subscription (the push service said it is gone)."""


#: Decides a desk transition from the current state: the change to write, None
#: for nothing to do, or an exception (nothing is written).
DeskDecision = Callable[[DeskState], DeskChange | None]


class DeskStore(Protocol):
    """The agent desk: conversation status and assignment, notes, canned replies,
    the audit log and the company settings admins change (PostgreSQL)."""

    async def route(self, conversation_ids: Sequence[int], reopen: Sequence[int]) -> DeskRouting:
        """One statement per routed batch: reopen the resolved conversations among
        ``reopen`` (a customer wrote; recorded as a customer's REOPEN), and
        return the assignee of every claimed conversation among
        ``conversation_ids``."""

    async def state(self, conversation_id: int) -> DeskState: ...

    async def change(
        self, conversation_id: int, decide: DeskDecision
    ) -> tuple[DeskState, DeskState]:
        """Apply a transition atomically: in one transaction, with the
        conversation's desk state locked, ``decide`` gets the current state;
        the change it returns is written with its audit event. Returns
        (before, after). Raises NotFound for an unknown conversation, and
        whatever ``decide`` raises (then nothing is written)."""

    async def conversations(
        self, company_id: int, status: ConversationStatus | None, limit: int
    ) -> DeskList:
        """The company's conversations with that status (None: all), unassigned
        first, then by newest message."""

    async def add_note(
        self,
        conversation_id: int,
        agent_jid: str,
        body: str,
        *,
        by_operator: bool = False,
        key: str | None = None,
    ) -> Note:
        """Store an internal note and its NOTE event (actor: the agent, or the
        operator). A ``key`` already used for a note of this conversation stores
        nothing and returns that note. Raises NotFound for an unknown conversation."""

    async def notes(self, conversation_id: int, limit: int) -> list[Note]:
        """The newest ``limit`` notes, oldest first."""

    async def events(self, conversation_id: int) -> list[DeskEvent]:
        """The conversation's audit log, oldest first."""

    async def canned(self, company_id: int) -> list[CannedReply]:
        """The company's canned replies, by title."""

    async def add_canned(self, company_id: int, title: str, body: str) -> CannedReply:
        """Raises Conflict (a reply with this title exists) or NotFound (company)."""

    async def remove_canned(self, company_id: int, reply_id: int) -> None:
        """Raises NotFound if the company has no such reply."""
