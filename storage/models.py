"""Rows and values exchanged between storage and the rest of orgchat.

Plain frozen dataclasses: storage returns them, routing reads them. No table
or key names here; those belong to ``storage.postgres`` and ``storage.redis``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Sequence


class Role(enum.StrEnum):
    AGENT = "agent"
    ADMIN = "admin"


class Limit(enum.StrEnum):
    """What a shared rate limit counts, per subject (LimitStore.hit)."""

    CUSTOMER_MESSAGES = "customer"  #: a customer's messages; subject: their bare JID
    CUSTOMER_SIGNALS = "signals"  #: a customer's chat states and markers; subject: the JID
    CUSTOMER_REQUESTS = "requests"  #: requests to several companies; subject: the customer
    COMPANY_REQUESTS = "company-requests"  #: requests a company receives; subject: its id
    EMAIL_CONFIRMATIONS = "confirm-email"  #: attempts at a confirmation code; subject: a JID
    CODES_REQUESTED = "code-requested"  #: confirmation emails asked for; subject: a JID
    CODES_RECEIVED = "code-received"  #: confirmation emails sent to; subject: an address


class Once(enum.StrEnum):
    """What is done only once within a time (LimitStore.first_seen)."""

    MARKER_FORWARDED = "marker"  #: an agent's receipt or marker: (conversation, kind, id)
    AWAY_REPLY = "away"  #: the away reply of a closed period: (conversation, opening time)


@dataclasses.dataclass(frozen=True, slots=True)
class Hits:
    """Events of one ``kind`` counted against a limit, one per subject, in order."""

    kind: Limit
    subjects: Sequence[str | int]
    limit: int
    window_s: int


@dataclasses.dataclass(frozen=True, slots=True)
class Marks:
    """Keys (tuples of parts) of one ``kind`` done only once within ``ttl_s`` seconds."""

    kind: Once
    keys: Sequence[Sequence[str | int]]
    ttl_s: int


@dataclasses.dataclass(frozen=True, slots=True)
class Admission:
    """What a routed batch asks Redis before it is archived (AdmissionStore.admit):
    its events counted against their limits, which agents are online, and
    which marks it makes for the first time."""

    hits: Sequence[Hits] = ()
    agents: Sequence[str] = ()
    marks: Marks | None = None

    def __bool__(self) -> bool:
        return (
            any(h.subjects for h in self.hits)
            or bool(self.agents)
            or bool(self.marks and self.marks.keys)
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Admitted:
    """The answers to an :class:`Admission`: for each of its ``hits`` whether each
    event is within its limit; the online ones among its ``agents``; for each
    of its ``marks``' keys whether it is the first time."""

    allowed: tuple[list[bool], ...] = ()
    online: frozenset[str] = frozenset()
    first: list[bool] = dataclasses.field(default_factory=list)


class Party(enum.StrEnum):
    """A side of a conversation: the customer, or the company (any of its agents).

    The one name for who wrote a message (``author``), who read it, and who is
    notified about what the other side wrote (the cascade's ``party``).
    """

    CUSTOMER = "customer"
    COMPANY = "company"

    @property
    def other(self) -> Party:
        return Party.COMPANY if self is Party.CUSTOMER else Party.CUSTOMER


@dataclasses.dataclass(frozen=True, slots=True)
class CompanyDraft:
    """A company as the operator describes it (CLI, import)."""

    slug: str
    name: str
    email: str | None = None
    timezone: str = "UTC"
    hours: str | None = None
    category: str | None = None
    city: str | None = None
    accepts_requests: bool = True  #: False: left out of requests to several companies
    phone: str | None = None  #: shown on the company's card (vCard)
    url: str | None = None  #: the company's web site (http or https)
    address: str | None = None  #: street address, e.g. "Krasny prospekt 25"
    #: Archived messages older than this many days are deleted; None: kept forever.
    retention_days: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Company:
    id: int
    slug: str
    name: str
    email: str | None
    timezone: str
    hours: str | None
    category: str | None
    city: str | None
    accepts_requests: bool = True  #: False: left out of requests to several companies
    phone: str | None = None
    url: str | None = None
    address: str | None = None  #: street address (the city is ``city``)
    #: Archived messages older than this many days are deleted; None: kept forever.
    retention_days: int | None = None
    #: The agent desk's settings (company admins): the away message (None: the
    #: standard text) and the email reaction window in seconds (None: the
    #: service's ``notify.company_reaction_window``).
    away_message: str | None = None
    reaction_window_s: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Agent:
    company_id: int
    jid: str  #: bare JID, normalised
    role: Role


@dataclasses.dataclass(frozen=True, slots=True)
class DirectorySnapshot:
    """What the component always keeps in memory: every agent, and the
    companies that have agents (the others are loaded when needed)."""

    companies: tuple[Company, ...]
    agents: tuple[Agent, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class CompanySearch:
    """What a directory search looks for; None (or False) leaves a criterion out.

    Case-insensitive, with surrounding and repeated white space ignored.
    """

    name: str | None = None  #: any part of the company's name
    text: str | None = None  #: any part of the name, the slug or the category
    category: str | None = None  #: the whole category
    city: str | None = None  #: the whole city
    takes_requests: bool = False  #: only companies that take requests to several companies


@dataclasses.dataclass(frozen=True, slots=True)
class SearchCursor:
    """Where a page of search results starts (XEP-0059's ways of asking).

    ``after``/``before`` name a company (its slug) of the results; ``last``
    asks for the last page; otherwise the page starts at result ``index``.
    """

    after: str | None = None
    before: str | None = None
    last: bool = False
    index: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class KnownValues:
    """The distinct categories and cities of the directory, as they are spelled."""

    categories: tuple[str, ...]
    cities: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class ImportedCompany:
    """One company of an import file, with its agents."""

    company: CompanyDraft
    agents: tuple[tuple[str, Role], ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class ImportReport:
    companies_added: int
    companies_updated: int
    agents_added: int
    roster_updates: int  #: "add" jobs queued: one per agent of an imported company


@dataclasses.dataclass(frozen=True, slots=True)
class Conversation:
    """One (company, customer) pair and its opaque address token."""

    id: int
    company_id: int
    customer_jid: str  #: bare JID of the customer; never shown to agents
    token: str  #: opaque part of the conversation address
    customer_nick: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class OwnCopy:
    """A message as one user's client shows it: a row of that user's own archive.

    Standard clients read one-to-one history from the user's own archive
    (XEP-0313 on their account, ``with`` = the contact), so each message is
    also written there for the customer and for the company's agents, as
    each of them saw it live (same ``id``, so a client recognises it).
    """

    owner: str  #: bare JID of the account whose archive holds it
    peer: str  #: bare JID the owner's client shows it with (company or conversation address)
    outgoing: bool  #: the owner sent it from this account
    message_id: str  #: the ``id`` of the stanza the owner's client saw
    body: str


@dataclasses.dataclass(frozen=True, slots=True)
class NewMessage:
    """A message accepted by routing, to be archived."""

    conversation_id: int
    author: Party
    sender_jid: str  #: bare JID of the customer, or of the agent who wrote for the company
    body: str
    stanza_id: str  #: XEP-0359 stanza-id assigned by the component
    client_id: str | None  #: the sender's `id` attribute
    #: Retransmission key (XEP-0359 origin-id, else the `id` attribute); None: no dedup.
    client_key: str | None
    pending: bool  #: the customer's only: no agent was online, deliver when one comes
    ts: dt.datetime
    thread: str | None = None  #: XEP-0201 thread (a request's public id)
    #: Extra XML (our own namespaces only) rendered after the body when the
    #: message is delivered or served from the archive; written by the component.
    payload: str | None = None
    #: Its rows in users' own archives, written with it (none for a duplicate).
    copies: tuple[OwnCopy, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class ArchiveResult:
    """Outcome of archiving one NewMessage, in the order they were given."""

    stanza_id: str  #: the archived stanza-id (the first one's for a duplicate)
    duplicate: bool  #: the same sender already sent this client_key here


@dataclasses.dataclass(frozen=True, slots=True)
class BatchRead:
    """What a batch's archive statement read and moved for the features
    (what their :class:`BatchExtras` asked), handed to their routing hooks."""

    #: The desk's: the assignees of ``routed``, the reopened among ``reopen``.
    routing: DeskRouting = dataclasses.field(default_factory=lambda: DeskRouting({}, []))
    #: The requests' targets that ``updates`` moved forward, in their order.
    changes: list[StatusChange] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True, slots=True)
class ArchivedBatch:
    """Outcome of archiving a batch."""

    results: list[ArchiveResult]  #: one per message, in the order given
    #: The delivery record of the newly archived messages that are not pending
    #: (None if there are none): confirm it once their stanzas are written.
    delivery_id: int | None
    #: The XEP-0201 thread and the payload the statement gave newly archived
    #: messages (BatchExtras.replies that joined a request), by stanza-id.
    threads: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    #: What the statement read and moved for the batch's :class:`BatchExtras`.
    read: BatchRead = dataclasses.field(default_factory=BatchRead)


@dataclasses.dataclass(frozen=True, slots=True)
class ReadMark:
    """A party of a conversation has read everything archived in it so far."""

    conversation_id: int
    party: Party
    #: Recorded only if the message with this stanza-id is archived by the same
    #: batch (writing is reading; a retransmitted duplicate reads nothing new).
    #: None: recorded whatever the batch archives (a displayed marker).
    written: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class StepDue:
    """A step of the notification cascade to schedule (see NotifyStore.schedule)."""

    conversation_id: int
    party: Party
    channel: Channel
    due_at: dt.datetime
    quiet_s: float  #: never due before this long after the last sending
    written: str | None = None  #: as ReadMark.written


@dataclasses.dataclass(slots=True)
class BatchExtras:
    """What the features record and read with a batch's archive statement.

    Written in the batch's transaction, so that a batch costs one round trip
    to PostgreSQL (ArchiveStore.append_batch): the cascade's read marks and
    steps; the desk's routing (the assignees of ``routed`` conversations,
    the resolved ones among ``reopen`` opened again, see DeskStore.route);
    the agents' messages that join a request (``replies``, their thread and
    payload found by the statement) and the request statuses they and
    XEP-0333 displayed markers move (``updates``, see RequestStore.advance).
    """

    seen: list[ReadMark] = dataclasses.field(default_factory=list)
    steps: list[StepDue] = dataclasses.field(default_factory=list)
    routed: list[int] = dataclasses.field(default_factory=list)
    reopen: list[int] = dataclasses.field(default_factory=list)
    replies: list[RequestReply] = dataclasses.field(default_factory=list)
    updates: list[TargetUpdate] = dataclasses.field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.seen or self.steps or self.routed or self.reopen or self.replies or self.updates
        )

    def settled(self, archived: set[str]) -> BatchExtras:
        """These extras once the batch is archived: what depends on a message
        archived (its stanza-id in ``archived``) kept unconditionally, the rest
        dropped. The replies went with their messages (see :meth:`of_message`)."""

        def keep(written: str | None) -> bool:
            return written is None or written in archived

        return BatchExtras(
            seen=[dataclasses.replace(m, written=None) for m in self.seen if keep(m.written)],
            steps=[dataclasses.replace(s, written=None) for s in self.steps if keep(s.written)],
            routed=list(self.routed),
            reopen=list(self.reopen),
            updates=[dataclasses.replace(u, written=None) for u in self.updates if keep(u.written)],
        )

    def of_message(self, stanza_id: str) -> BatchExtras:
        """What of these extras goes with that message when it is archived alone:
        its reply (the rest follows in :meth:`settled`)."""
        return BatchExtras(replies=[r for r in self.replies if r.stanza_id == stanza_id])


@dataclasses.dataclass(frozen=True, slots=True)
class ArchivedMessage:
    id: int  #: archive order
    conversation_id: int
    author: Party
    sender_jid: str
    body: str
    stanza_id: str
    client_id: str | None
    ts: dt.datetime
    thread: str | None = None
    payload: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ArchiveQuery:
    """One XEP-0313 query of an archive: its scope, its filters and its page.

    The scope is one conversation, or every conversation of a company
    (``conversation_id`` None). The filters select the result set (and its
    count); ``after``/``before`` (XEP-0059) only choose the page within it.
    Stanza-ids that are not in the scope raise NotFound.
    """

    company_id: int
    conversation_id: int | None = None
    start: dt.datetime | None = None  #: messages at or after this time
    end: dt.datetime | None = None  #: messages at or before this time
    after_id: str | None = None  #: XEP-0313 ``after-id``: messages after this one
    before_id: str | None = None  #: XEP-0313 ``before-id``: messages before this one
    ids: tuple[str, ...] = ()  #: XEP-0313 ``ids``: only these messages (empty: any)
    #: XEP-0431 full-text search: messages whose body has every word of the
    #: text, each as a word prefix, case-insensitively. None or blank: any.
    text: str | None = None
    after: str | None = None  #: XEP-0059: the page starts after this message
    #: XEP-0059: the page ends before this message, paging backwards; "" asks
    #: for the last page.
    before: str | None = None
    limit: int = 50


@dataclasses.dataclass(frozen=True, slots=True)
class ArchivePage:
    """One page of an archive, oldest first (XEP-0313 + XEP-0059)."""

    messages: list[ArchivedMessage]
    #: No more messages beyond this page in the direction of paging.
    complete: bool
    #: Messages matching the query's filters, all pages together; None when
    #: there are too many to count cheaply (XEP-0313 makes the count optional).
    count: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class Pruned:
    """What one retention run deleted from one company's archive."""

    company_slug: str
    retention_days: int
    messages: int


@dataclasses.dataclass(frozen=True, slots=True)
class Forgotten:
    """What was deleted about one customer (``forget``), row counts per kind."""

    conversations: int
    messages: int
    requests: int
    notify_jobs: int
    contacts: int
    push_subscriptions: int
    roster_jobs: int
    own_archives: int  #: rows of users' own archives: theirs, and agents' copies


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    """Archived messages a component process is delivering, under one record."""

    id: int
    messages: list[ArchivedMessage]


class RosterOp(enum.StrEnum):
    ADD = "add"
    REMOVE = "remove"


@dataclasses.dataclass(frozen=True, slots=True)
class RosterJob:
    """Put a contact into a user's roster, or take it out (durable job): a company
    into its agents' and customers' rosters, or a conversation into its agents'."""

    id: int
    op: RosterOp
    #: The contact's local part: a company's slug, or a conversation's slug+token.
    company_slug: str
    #: The company's name; empty for a conversation (named when the job runs).
    company_name: str
    agent_jid: str  #: the user whose roster it is
    attempts: int


@dataclasses.dataclass(frozen=True, slots=True)
class PresenceChange:
    """An agent's availability before and after one presence update."""

    was_online: bool
    is_online: bool


# -- requests to several companies ---------------------------------------------


class RequestState(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"  #: by the customer (possibly accepting one company's offer)
    EXPIRED = "expired"


class TargetStatus(enum.StrEnum):
    """Where one company stands in a request. Statuses only move forward."""

    SENT = "sent"  #: archived in the company's conversation
    DELIVERED = "delivered"  #: written to at least one agent
    SEEN = "seen"  #: an agent sent a XEP-0333 displayed marker
    ANSWERED = "answered"  #: an agent replied (possibly with an offer)
    DECLINED = "declined"  #: an agent declined
    EXPIRED = "expired"  #: the request expired before an answer

    @property
    def rank(self) -> int:
        return _TARGET_RANK[self]


_TARGET_RANK = {
    TargetStatus.SENT: 0,
    TargetStatus.DELIVERED: 1,
    TargetStatus.SEEN: 2,
    TargetStatus.ANSWERED: 3,
    TargetStatus.DECLINED: 4,
    TargetStatus.EXPIRED: 4,
}


@dataclasses.dataclass(frozen=True, slots=True)
class NewRequest:
    """A request to several companies, as routing accepted it.

    ``message_body``/``message_payload`` are the fan-out message archived in
    each target's conversation (direction IN, sender the customer, thread the
    public id); ``stanza_ids`` gives each target's message its stanza-id.
    """

    public_id: str
    customer_jid: str
    customer_nick: str | None
    subject: str
    body: str
    #: The structured fields: a serialised XEP-0004 form, opaque to storage.
    form: str | None
    #: Equal for the same text to the same companies (duplicate detection).
    dedup_key: str
    created_at: dt.datetime
    expires_at: dt.datetime
    company_ids: tuple[int, ...]
    stanza_ids: tuple[str, ...]  #: one per company, same order
    message_body: str
    message_payload: str
    #: The message's copies in users' own archives, one tuple per company,
    #: same order (empty: none).
    copies: tuple[tuple[OwnCopy, ...], ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class RequestTarget:
    company_id: int
    conversation_id: int
    status: TargetStatus
    updated_at: dt.datetime
    #: The company's last structured offer: a serialised XEP-0004 form.
    offer: str | None = None
    reason: str | None = None  #: why the company declined


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    id: int
    public_id: str
    customer_jid: str
    subject: str
    body: str
    form: str | None
    state: RequestState
    created_at: dt.datetime
    expires_at: dt.datetime
    closed_at: dt.datetime | None
    accepted_company_id: int | None
    targets: tuple[RequestTarget, ...]  #: in the order the companies were given


@dataclasses.dataclass(frozen=True, slots=True)
class CreatedRequest:
    request: Request
    #: True: the same customer sent the same text to the same companies within
    #: the duplicate window; ``request`` is that earlier one, nothing was sent.
    duplicate: bool
    #: The fan-out messages, leased to the caller like any delivery record
    #: (None for a duplicate).
    delivery: Delivery | None


@dataclasses.dataclass(frozen=True, slots=True)
class RequestPage:
    """Requests of one customer, newest first (XEP-0059)."""

    requests: list[Request]
    count: int  #: all of the customer's requests matching the filter
    first_index: int  #: position of the page's first request in that list


@dataclasses.dataclass(frozen=True, slots=True)
class TargetUpdate:
    """A company's reaction in a conversation, applied to its newest open request."""

    conversation_id: int
    status: TargetStatus
    offer: str | None = None  #: with ANSWERED: a serialised XEP-0004 offer form
    reason: str | None = None  #: with DECLINED
    #: With a batch (BatchExtras.updates): applied only if the message with
    #: this stanza-id is archived by the same batch (an answer; a retransmitted
    #: duplicate moves nothing). None: applied whatever the batch archives
    #: (a displayed marker); always None for RequestStore.advance.
    written: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class RequestReply:
    """An agent's message that becomes part of its conversation's newest open
    request, if there is one (BatchExtras.replies).

    The batch statement finds the request: the message is archived (and
    delivered) with XEP-0201 thread = the request's public id and the payload
    ``head + public id + tail``. Without an open request it is archived as is.
    """

    stanza_id: str  #: the message's, archived by the same batch
    conversation_id: int
    head: str  #: the payload up to the request's public id
    tail: str  #: the payload after it


@dataclasses.dataclass(frozen=True, slots=True)
class StatusChange:
    """A target whose status moved forward (the customer is told)."""

    public_id: str
    customer_jid: str
    company_id: int
    status: TargetStatus


@dataclasses.dataclass(frozen=True, slots=True)
class Notice:
    """A message posted on the customer's behalf into one target's conversation."""

    company_id: int
    stanza_id: str
    body: str
    payload: str
    #: Its copies in users' own archives (the customer's, the agents').
    copies: tuple[OwnCopy, ...] = ()


# -- the notification cascade ----------------------------------------------------


class Channel(enum.StrEnum):
    EMAIL = "email"
    PUSH = "push"  #: web push (RFC 8030), customers only


@dataclasses.dataclass(frozen=True, slots=True)
class NotifyJob:
    """One step of the cascade for one conversation, due at a time (durable)."""

    id: int
    conversation_id: int
    party: Party
    channel: Channel
    due_at: dt.datetime
    attempts: int  #: failed attempts so far


@dataclasses.dataclass(frozen=True, slots=True)
class Unseen:
    """What a job would notify about: the party's unseen, not yet notified messages."""

    conversation: Conversation
    messages: list[ArchivedMessage]  #: oldest first; empty: nothing to send


@dataclasses.dataclass(frozen=True, slots=True)
class Contact:
    """How a customer (bare JID) or a company (``slug@domain``) is reached off XMPP."""

    address: str  #: the customer's bare JID, or the company's JID
    email: str | None  #: confirmed address (a company's comes from the directory)
    pending_email: str | None = None  #: set, awaiting its confirmation code
    email_opt_out: bool = False
    push_opt_out: bool = False
    quiet_hours: str | None = None  #: "HH:MM-HH:MM": no push or email then
    quiet_timezone: str | None = None  #: IANA zone of ``quiet_hours``
    #: Language of the emails (the ``xml:lang`` the address was set in); None: English.
    lang: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class PushSubscription:
    """A browser's or phone's Web Push subscription (RFC 8030, keys of RFC 8291)."""

    id: int
    address: str  #: the customer's bare JID
    endpoint: str  #: the push service URL
    p256dh: str  #: the user agent's public key, base64url
    auth: str  #: the authentication secret, base64url


# -- the agent desk ----------------------------------------------------------------


class ConversationStatus(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class DeskEventKind(enum.StrEnum):
    """What changed in a conversation's desk state (the audit log)."""

    CLAIM = "claim"  #: an agent took it (possibly from another, by an admin)
    TRANSFER = "transfer"  #: given to another agent
    RELEASE = "release"  #: assignment back to every online agent
    RESOLVE = "resolve"
    REOPEN = "reopen"
    NOTE = "note"  #: an internal note was added


class ActorKind(enum.StrEnum):
    """Who made a desk change."""

    AGENT = "agent"  #: an agent of the company (XMPP ad-hoc commands)
    CUSTOMER = "customer"  #: the customer wrote to a resolved conversation
    OPERATOR = "operator"  #: the service's operator (the ``orgchat desk`` CLI)
    SYSTEM = "system"  #: a consequence of another change (an agent removed)


@dataclasses.dataclass(frozen=True, slots=True)
class DeskState:
    """A conversation's place on the desk; no stored row means open and unassigned."""

    conversation_id: int
    status: ConversationStatus = ConversationStatus.OPEN
    assignee: str | None = None  #: bare JID of the claiming agent; None: everyone


@dataclasses.dataclass(frozen=True, slots=True)
class DeskChange:
    """A transition decided from a DeskState: the new state and who made it."""

    kind: DeskEventKind
    status: ConversationStatus
    assignee: str | None
    actor_kind: ActorKind
    actor: str | None = None  #: the agent's bare JID (ActorKind.AGENT only)


@dataclasses.dataclass(frozen=True, slots=True)
class DeskEvent:
    """One row of a conversation's desk audit log."""

    id: int
    conversation_id: int
    kind: DeskEventKind
    actor_kind: ActorKind
    actor: str | None
    from_agent: str | None
    to_agent: str | None
    ts: dt.datetime
    note_id: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class DeskRouting:
    """What routing learns about a batch's conversations in one statement
    (the batch's own, BatchRead.routing, or DeskStore.route)."""

    assignees: dict[int, str]  #: conversation id -> claiming agent (claimed ones only)
    reopened: list[int]  #: resolved conversations the batch's customers reopened


@dataclasses.dataclass(frozen=True, slots=True)
class DeskConversation:
    """One line of the desk's list: a conversation, its state and its last message."""

    conversation: Conversation
    status: ConversationStatus
    assignee: str | None
    last_body: str | None  #: None: no message yet
    last_ts: dt.datetime | None
    last_author: Party | None


@dataclasses.dataclass(frozen=True, slots=True)
class DeskList:
    conversations: list[DeskConversation]  #: unassigned first, then newest activity first
    total: int  #: all conversations matching the filter


@dataclasses.dataclass(frozen=True, slots=True)
class Note:
    """An internal note: for the company's agents, never sent to the customer."""

    id: int
    conversation_id: int
    agent_jid: str
    body: str
    ts: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class CannedReply:
    id: int
    company_id: int
    title: str  #: unique per company
    body: str
