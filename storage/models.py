"""Rows and values exchanged between storage and the rest of orgchat.

Plain frozen dataclasses: storage returns them, routing reads them. No table
or key names here; those belong to ``storage.postgres`` and ``storage.redis``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum


class Role(enum.StrEnum):
    AGENT = "agent"
    ADMIN = "admin"


class Direction(enum.StrEnum):
    """Which way a message went, seen from the company."""

    IN = "in"  #: customer -> company
    OUT = "out"  #: company (an agent) -> customer


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


@dataclasses.dataclass(frozen=True, slots=True)
class Agent:
    company_id: int
    jid: str  #: bare JID, normalised
    role: Role


@dataclasses.dataclass(frozen=True, slots=True)
class DirectorySnapshot:
    """Everything the component's in-memory directory cache holds."""

    companies: tuple[Company, ...]
    agents: tuple[Agent, ...]


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


@dataclasses.dataclass(frozen=True, slots=True)
class Conversation:
    """One (company, customer) pair and its opaque address token."""

    id: int
    company_id: int
    customer_jid: str  #: bare JID of the customer; never shown to agents
    token: str  #: opaque part of the conversation address
    customer_nick: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class NewMessage:
    """A message accepted by routing, to be archived."""

    conversation_id: int
    direction: Direction
    sender_jid: str  #: bare JID of the customer (IN) or of the agent (OUT)
    body: str
    stanza_id: str  #: XEP-0359 stanza-id assigned by the component
    client_id: str | None  #: the sender's `id` attribute
    #: Retransmission key (XEP-0359 origin-id, else the `id` attribute); None: no dedup.
    client_key: str | None
    pending: bool  #: IN only: no agent was online, deliver when one comes
    ts: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class ArchiveResult:
    """Outcome of archiving one NewMessage, in the order they were given."""

    stanza_id: str  #: the archived stanza-id (the first one's for a duplicate)
    duplicate: bool  #: the same sender already sent this client_key here


@dataclasses.dataclass(frozen=True, slots=True)
class ArchivedBatch:
    """Outcome of archiving a batch."""

    results: list[ArchiveResult]  #: one per message, in the order given
    #: The delivery record of the newly archived messages that are not pending
    #: (None if there are none): confirm it once their stanzas are written.
    delivery_id: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class ArchivedMessage:
    id: int  #: archive order
    conversation_id: int
    direction: Direction
    sender_jid: str
    body: str
    stanza_id: str
    client_id: str | None
    ts: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class ArchivePage:
    """One page of a conversation's archive, oldest first (XEP-0313 + XEP-0059)."""

    messages: list[ArchivedMessage]
    #: No more messages beyond this page in the direction of paging.
    complete: bool
    #: Messages matching the query's time filters, all pages together.
    count: int


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
    """Put a company into an agent's roster, or take it out (durable job)."""

    id: int
    op: RosterOp
    company_slug: str
    company_name: str
    agent_jid: str
    attempts: int


@dataclasses.dataclass(frozen=True, slots=True)
class PresenceChange:
    """An agent's availability before and after one presence update."""

    was_online: bool
    is_online: bool
