"""In-memory stand-ins for the stores of the services built on routing: requests
to several companies (RequestStore) and the agent desk (DeskStore).

Like tests/unit/fakes.py, whose conversations and archive the request store
writes to, they follow their interfaces as tests/contracts checks.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import Sequence

from storage.models import (
    ConversationStatus,
    CreatedRequest,
    DeskRouting,
    DeskState,
    NewRequest,
    Notice,
    Request,
    RequestPage,
    RequestState,
    RequestTarget,
    StatusChange,
    TargetStatus,
    TargetUpdate,
)
from storage.postgres.requests import fan_out
from storage.protocols import DeskDecision
from tests.unit.fakes import FakeArchive, FakeConversations

OPEN, RESOLVED = ConversationStatus.OPEN, ConversationStatus.RESOLVED


def _fold(updates: Sequence[TargetUpdate]) -> list[TargetUpdate]:
    """One update per conversation, as PostgreSQL folds them (see
    storage.postgres.tables.request_targets.advance_ctes), in the order in
    which conversations first appear."""
    folded: dict[int, TargetUpdate] = {}
    for update in updates:
        best = folded.get(update.conversation_id)
        if best is None or update.status.rank > best.status.rank:
            folded[update.conversation_id] = update
        elif (
            update.status is TargetStatus.ANSWERED
            and best.status is TargetStatus.ANSWERED
            and update.offer is not None
        ):
            folded[update.conversation_id] = dataclasses.replace(best, offer=update.offer)
    return list(folded.values())


class FakeRequestStore:
    """Requests in memory, opening conversations in ``conversations`` and archiving
    their messages in ``archive`` as the PostgreSQL store does; the archive's
    batches read and move its requests (:meth:`newest_open`, :meth:`move`), as
    PostgreSQL's batch statement does.

    ``list_for`` and ``close`` are not modelled (no unit test needs them).
    """

    def __init__(self, conversations: FakeConversations, archive: FakeArchive) -> None:
        self.conversations = conversations
        self.archive = archive
        archive.requests = self
        self.requests: dict[str, Request] = {}
        self.created: list[NewRequest] = []  #: every call of create
        #: every update applied (by advance, or by an archived batch)
        self.updates: list[TargetUpdate] = []
        self._dedup_keys: dict[str, str] = {}  #: public id -> dedup key
        self._ids = itertools.count(1)

    def open_request(
        self,
        public_id: str,
        company_id: int,
        conversation_id: int,
        *,
        customer_jid: str,
        now: dt.datetime,
    ) -> None:
        """An open request targeting one conversation, made without ``create``."""
        target = RequestTarget(company_id, conversation_id, TargetStatus.SENT, now)
        self.requests[public_id] = Request(
            next(self._ids), public_id, customer_jid, "s", "b", None, RequestState.OPEN,
            now, now + dt.timedelta(days=1), None, None, (target,),
        )  # fmt: skip

    async def create(self, new: NewRequest, duplicate_window_s: float) -> CreatedRequest:
        self.created.append(new)
        since = new.created_at - dt.timedelta(seconds=duplicate_window_s)
        earlier = [
            r
            for r in self.requests.values()
            if duplicate_window_s > 0
            and r.customer_jid == new.customer_jid
            and self._dedup_keys.get(r.public_id) == new.dedup_key
            and r.created_at > since
        ]
        if earlier:
            newest = max(earlier, key=lambda r: (r.created_at, r.id))
            return CreatedRequest(newest, True, None)
        opened = await self.conversations.open_many(
            [(company_id, new.customer_jid, new.customer_nick) for company_id in new.company_ids]
        )
        delivery = self.archive.insert_delivered(fan_out(new, [conv.id for conv in opened]))
        targets = tuple(
            RequestTarget(conv.company_id, conv.id, TargetStatus.SENT, new.created_at)
            for conv in opened
        )
        request = Request(
            next(self._ids), new.public_id, new.customer_jid, new.subject, new.body, new.form,
            RequestState.OPEN, new.created_at, new.expires_at, None, None, targets,
        )  # fmt: skip
        self.requests[new.public_id] = request
        self._dedup_keys[new.public_id] = new.dedup_key
        return CreatedRequest(request, False, delivery)

    async def get(self, public_id: str) -> Request | None:
        return self.requests.get(public_id)

    async def list_for(self, customer_jid: str, **_: object) -> RequestPage:
        raise NotImplementedError

    def newest_open(self, conversation_id: int) -> Request | None:
        return max(
            (
                r
                for r in self.requests.values()
                if r.state is RequestState.OPEN
                and any(t.conversation_id == conversation_id for t in r.targets)
            ),
            key=lambda r: r.id,
            default=None,
        )

    async def open_in(self, conversation_ids: Sequence[int]) -> dict[int, str]:
        found = {c: self.newest_open(c) for c in conversation_ids}
        return {c: r.public_id for c, r in found.items() if r is not None}

    async def advance(self, updates: Sequence[TargetUpdate]) -> list[StatusChange]:
        return self.move([u for u in updates if u.written is None])  # nothing archived here

    def move(self, updates: Sequence[TargetUpdate]) -> list[StatusChange]:
        """Apply updates whose ``written`` condition is met (advance, or an archived batch)."""
        self.updates.extend(updates)
        changes = []
        for update in _fold(updates):
            request = self.newest_open(update.conversation_id)
            if request is None:
                continue
            targets = list(request.targets)
            n, target = next(
                (n, t) for n, t in enumerate(targets) if t.conversation_id == update.conversation_id
            )
            moves = update.status.rank > target.status.rank
            new_offer = update.status is TargetStatus.ANSWERED and update.offer is not None
            if not (moves or (new_offer and target.status is TargetStatus.ANSWERED)):
                continue
            target = dataclasses.replace(
                target,
                status=update.status if moves else target.status,
                updated_at=dt.datetime.now(dt.UTC),
                offer=update.offer if new_offer else target.offer,
                reason=update.reason if update.status is TargetStatus.DECLINED else target.reason,
            )
            if moves:
                changes.append(
                    StatusChange(
                        request.public_id, request.customer_jid, target.company_id, update.status
                    )
                )
            targets[n] = target
            self.requests[request.public_id] = dataclasses.replace(request, targets=tuple(targets))
        return changes

    async def close(
        self, public_id: str, customer_jid: str, accepted: int | None, notices: Sequence[Notice]
    ) -> tuple[Request, None]:
        raise NotImplementedError

    async def expire_due(self, now: dt.datetime, limit: int) -> list[Request]:
        due = sorted(
            (
                r
                for r in self.requests.values()
                if r.state is RequestState.OPEN and r.expires_at <= now
            ),
            key=lambda r: (r.expires_at, r.id),
        )[:limit]
        expired = []
        for r in due:
            targets = tuple(
                dataclasses.replace(
                    t, status=TargetStatus.EXPIRED, updated_at=dt.datetime.now(dt.UTC)
                )
                if t.status.rank < TargetStatus.ANSWERED.rank
                else t
                for t in r.targets
            )
            self.requests[r.public_id] = dataclasses.replace(
                r, state=RequestState.EXPIRED, targets=targets
            )
            expired.append(self.requests[r.public_id])
        return expired


class FakeDeskStore:
    """The desk's conversation states in memory: ``route``, ``state`` and ``change``."""

    def __init__(self) -> None:
        self.states: dict[int, DeskState] = {}
        self.calls: list[tuple[list[int], list[int]]] = []  #: route's arguments

    async def route(self, conversation_ids: Sequence[int], reopen: Sequence[int]) -> DeskRouting:
        self.calls.append((list(conversation_ids), list(reopen)))
        assignees = {
            c: s.assignee
            for c in conversation_ids
            if (s := self.states.get(c)) is not None and s.assignee is not None
        }
        reopened = sorted(
            {c for c in reopen if c in self.states and self.states[c].status is RESOLVED}
        )
        for c in reopened:
            self.states[c] = dataclasses.replace(self.states[c], status=OPEN)
        return DeskRouting(assignees=assignees, reopened=reopened)

    async def state(self, conversation_id: int) -> DeskState:
        return self.states.get(conversation_id, DeskState(conversation_id))

    async def change(
        self, conversation_id: int, decide: DeskDecision
    ) -> tuple[DeskState, DeskState]:
        before = await self.state(conversation_id)
        change = decide(before)
        if change is None:
            return before, before
        self.states[conversation_id] = DeskState(conversation_id, change.status, change.assignee)
        return before, self.states[conversation_id]
