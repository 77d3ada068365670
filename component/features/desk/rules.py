"""The agent desk: who may do what to a conversation, and the assignment rule.

A conversation is ``open`` or ``resolved`` and may be claimed by one agent of
its company. The rules, the same for the ad-hoc commands (agents and company
admins, :mod:`component.features.desk.commands`) and the CLI (operators):

* **claim**: an open conversation that nobody claimed, or your own (nothing
  to do). Claimed by another agent: ``forbidden``, unless the requester is a
  company admin (or the operator), who takes it over. A resolved
  conversation is ``not-allowed``: reopen it first (claiming does not reopen
  by itself, so that a resolved conversation never comes back by accident).
* **transfer** to another agent of the company (a JID that is not one is
  ``item-not-found``), or back to everyone (a *release*): the claimer's own
  conversation, an unclaimed one, or anyone's for an admin; else ``forbidden``.
  Resolved: ``not-allowed``.
* **resolve**: the claimer, anyone for an unclaimed conversation, an admin for
  any; else ``forbidden``. Already resolved: ``not-allowed``. The claim stays,
  so the agent who handled it gets the customer's next message.
* **reopen**: any agent; an open conversation is ``not-allowed``. A customer
  writing to a resolved conversation reopens it too (routing, recorded with
  the customer as actor).
* **notes** are for the company's agents only and never leave the desk.

Every change is one transaction of :meth:`storage.protocols.DeskStore.change`
(the decision runs with the conversation's desk row locked) and one row of
the audit log.

Assignment rule (:class:`DeskHooks`, the desk's part in routing): a claimed
conversation's customer messages go to the claiming agent alone while that
agent is online, otherwise to every online agent of the company, as
unclaimed ones do. Looked up once per batch, never per message.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, MutableMapping, Sequence
from typing import TYPE_CHECKING

from component.errors import NotAllowed, RoutingError, UnknownAddress
from component.i18n import Text, _
from component.logs import get_logger
from component.routing.hooks import RoutingHooks
from storage.models import (
    ActorKind,
    BatchExtras,
    BatchRead,
    ConversationStatus,
    DeskChange,
    DeskEventKind,
    DeskState,
)
from storage.protocols import DeskDecision, DeskStore

if TYPE_CHECKING:
    from component.routing.items import Item

log = get_logger(__name__)

OPEN, RESOLVED = ConversationStatus.OPEN, ConversationStatus.RESOLVED

#: Longest internal note, canned reply title and away message, in characters
#: (the same from the agents' commands and the operator's CLI).
MAX_NOTE = 4000
MAX_TITLE = 100
MAX_AWAY = 1000


class NotYours(RoutingError):
    """The conversation is claimed by another agent (and the requester is no admin)."""

    etype = "auth"
    condition = "forbidden"


class WrongState(NotAllowed):
    """The transition does not apply to the conversation's status."""


class NotAnAgentOf(UnknownAddress):
    """The named agent is not an agent of the company."""


@dataclasses.dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: an agent (admins may act on others' conversations) or the operator."""

    kind: ActorKind
    jid: str | None = None  #: the agent's bare JID
    admin: bool = False  #: may take over, transfer and resolve others' conversations

    @classmethod
    def agent(cls, jid: str, *, admin: bool) -> Actor:
        return cls(ActorKind.AGENT, jid, admin)

    @classmethod
    def operator(cls) -> Actor:
        return cls(ActorKind.OPERATOR, None, True)

    def change(
        self, kind: DeskEventKind, status: ConversationStatus, assignee: str | None
    ) -> DeskChange:
        return DeskChange(kind, status, assignee, self.kind, self.jid)

    def owns_or_may(self, state: DeskState) -> bool:
        return state.assignee is None or state.assignee == self.jid or self.admin


def _resolved_first(state: DeskState, refusal: Text) -> None:
    if state.status is RESOLVED:
        raise WrongState(refusal)


def claim(actor: Actor, agent: str) -> DeskDecision:
    """``agent`` takes the conversation (``agent`` is the actor, unless the operator)."""

    def decide(state: DeskState) -> DeskChange | None:
        _resolved_first(state, _("This conversation is resolved; reopen it before you claim it"))
        if state.assignee == agent:
            return None
        if state.assignee is not None and not actor.admin:
            raise NotYours(
                _(
                    "Already claimed by {agent}: ask them to transfer it to you "
                    "(a company admin can take it over)",
                    agent=state.assignee,
                )
            )
        return actor.change(DeskEventKind.CLAIM, OPEN, agent)

    return decide


def transfer(actor: Actor, to: str | None) -> DeskDecision:
    """Give the conversation to ``to`` (an agent checked by the caller), None: everyone."""

    def decide(state: DeskState) -> DeskChange | None:
        _resolved_first(state, _("This conversation is resolved; reopen it before you transfer it"))
        if not actor.owns_or_may(state):
            raise NotYours(
                _(
                    "Claimed by {agent}: only they or a company admin can transfer it",
                    agent=state.assignee,
                )
            )
        if state.assignee == to:
            return None
        kind = DeskEventKind.RELEASE if to is None else DeskEventKind.TRANSFER
        return actor.change(kind, OPEN, to)

    return decide


def resolve(actor: Actor) -> DeskDecision:
    def decide(state: DeskState) -> DeskChange | None:
        if state.status is RESOLVED:
            raise WrongState(_("This conversation is resolved already"))
        if not actor.owns_or_may(state):
            raise NotYours(
                _(
                    "Claimed by {agent}: only they or a company admin can resolve it",
                    agent=state.assignee,
                )
            )
        return actor.change(DeskEventKind.RESOLVE, RESOLVED, state.assignee)

    return decide


def reopen(actor: Actor) -> DeskDecision:
    def decide(state: DeskState) -> DeskChange | None:
        if state.status is OPEN:
            raise WrongState(_("This conversation is open already"))
        return actor.change(DeskEventKind.REOPEN, OPEN, state.assignee)

    return decide


def check_agent(jid: str, agents: Collection[str], company_name: str) -> str:
    """``jid`` if it is one of the company's agents; else item-not-found."""
    if jid not in agents:
        raise NotAnAgentOf(
            _("{agent} is not an agent of {company}", agent=jid, company=company_name)
        )
    return jid


def describe(before: DeskState, after: DeskState) -> Text:
    """One line for the requester: what the command did (or that nothing changed)."""
    if before == after:
        if after.assignee is None:
            return _("Nothing changed: the conversation is not claimed by anyone.")
        return _(
            "Nothing changed: the conversation is claimed by {agent} already.",
            agent=after.assignee,
        )
    if before.status is not after.status:
        if after.status is RESOLVED:
            if after.assignee:
                return _(
                    "The conversation is resolved now, claimed by {agent}.", agent=after.assignee
                )
            return _("The conversation is resolved now.")
        if after.assignee:
            return _("The conversation is open now, claimed by {agent}.", agent=after.assignee)
        return _("The conversation is open now.")
    if after.assignee is None:
        return _("The conversation goes to every online agent again.")
    if before.assignee is None:
        return _("The conversation is claimed by {agent}.", agent=after.assignee)
    return _(
        "The conversation moved from {before} to {after}.",
        before=before.assignee,
        after=after.assignee,
    )


class DeskHooks(RoutingHooks):
    """The assignment rule, and a customer's message reopening a resolved conversation.

    A routed batch reads the assignees and reopens conversations in its
    archive statement (:meth:`alongside`); archived messages delivered later
    read the assignees here.
    """

    def __init__(self, store: DeskStore) -> None:
        self.store = store

    def alongside(
        self,
        batch: Sequence[Item],
        routed: Sequence[int],
        written: Sequence[int],
        extras: BatchExtras,
    ) -> None:
        extras.routed.extend(routed)
        extras.reopen.extend(written)

    async def recipients(
        self,
        agents: MutableMapping[int, list[str]],
        written: Sequence[int],
        read: BatchRead | None,
    ) -> None:
        if not agents:
            return
        routing = (
            read.routing if read is not None else await self.store.route(sorted(agents), written)
        )
        if routing.reopened:
            log.info("desk.reopened_by_customer", conversations=routing.reopened)
        for conversation_id, claimer in routing.assignees.items():
            online = agents.get(conversation_id)
            if online is not None and claimer in online:
                agents[conversation_id] = [claimer]
