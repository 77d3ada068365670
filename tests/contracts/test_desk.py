"""DeskStore: PgDeskStore against FakeDeskStore.

Covered: ``route`` (what routing asks once per batch, through
component.features.desk.rules.DeskHooks), ``state`` and ``change``. Left out (not in
the fake): ``change``'s NotFound for an unknown conversation (the fake knows
no conversations), the audit log, notes, canned replies and the desk's
conversation list; tests/integration/storage/test_pg_desk.py has them.
"""

from __future__ import annotations

import dataclasses

import pytest
import pytest_asyncio

from storage.models import (
    ActorKind,
    ConversationStatus,
    DeskChange,
    DeskEventKind,
    DeskRouting,
    DeskState,
)
from storage.protocols import DeskStore
from tests.contracts.conftest import RealPostgres, companies, unique
from tests.unit.fakes_services import FakeDeskStore

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

OPEN, RESOLVED = ConversationStatus.OPEN, ConversationStatus.RESOLVED
MARIO, LUIGI = "mario@localhost", "luigi@localhost"


@dataclasses.dataclass
class Desk:
    store: DeskStore
    conversations: tuple[int, int, int]  #: ids of conversations that exist


@pytest_asyncio.fixture
async def desk(pg_or_fake: RealPostgres | None) -> Desk:
    if pg_or_fake is None:
        return Desk(FakeDeskStore(), (1, 2, 3))
    [company] = await companies(pg_or_fake.stores, 1)
    opened = await pg_or_fake.stores.conversations.open_many(
        [(company, unique("c-") + "@localhost", None) for _ in range(3)]
    )
    a, b, c = (conv.id for conv in opened)
    return Desk(pg_or_fake.stores.desk, (a, b, c))


def to(kind: DeskEventKind, status: ConversationStatus, assignee: str | None) -> DeskChange:
    return DeskChange(kind, status, assignee, ActorKind.AGENT, MARIO)


async def test_a_conversation_starts_open_and_unassigned(desk: Desk) -> None:
    conv = desk.conversations[0]
    assert await desk.store.state(conv) == DeskState(conv, OPEN, None)


async def test_change_writes_what_the_decision_returns(desk: Desk) -> None:
    conv = desk.conversations[0]
    seen: list[DeskState] = []

    def claim(state: DeskState) -> DeskChange:
        seen.append(state)
        return to(DeskEventKind.CLAIM, OPEN, MARIO)

    claimed = DeskState(conv, OPEN, MARIO)
    assert await desk.store.change(conv, claim) == (DeskState(conv), claimed)
    assert seen == [DeskState(conv)]
    assert await desk.store.state(conv) == claimed
    # Nothing to do: nothing changes.
    assert await desk.store.change(conv, lambda state: None) == (claimed, claimed)

    def refuse(state: DeskState) -> DeskChange:
        raise PermissionError(f"claimed by {state.assignee}")

    with pytest.raises(PermissionError, match=MARIO):
        await desk.store.change(conv, refuse)
    assert await desk.store.state(conv) == claimed
    resolved = DeskState(conv, RESOLVED, LUIGI)
    assert await desk.store.change(conv, lambda _: to(DeskEventKind.TRANSFER, RESOLVED, LUIGI)) == (
        claimed,
        resolved,
    )
    assert await desk.store.state(conv) == resolved


async def test_route_names_the_assignees_and_reopens_resolved_conversations(desk: Desk) -> None:
    claimed, resolved, untouched = desk.conversations
    await desk.store.change(claimed, lambda _: to(DeskEventKind.CLAIM, OPEN, MARIO))
    await desk.store.change(resolved, lambda _: to(DeskEventKind.RESOLVE, RESOLVED, LUIGI))
    everything = [claimed, resolved, untouched]
    # Without reopening: resolved stays resolved, its assignee is named anyway.
    assert await desk.store.route(everything, []) == DeskRouting(
        assignees={claimed: MARIO, resolved: LUIGI}, reopened=[]
    )
    assert (await desk.store.state(resolved)).status is RESOLVED
    # A customer wrote in all three: only the resolved one reopens.
    assert await desk.store.route(everything, everything) == DeskRouting(
        assignees={claimed: MARIO, resolved: LUIGI}, reopened=[resolved]
    )
    assert await desk.store.state(resolved) == DeskState(resolved, OPEN, LUIGI)
    assert await desk.store.state(untouched) == DeskState(untouched)
    assert await desk.store.route([untouched], []) == DeskRouting(assignees={}, reopened=[])
    assert await desk.store.route([], []) == DeskRouting(assignees={}, reopened=[])
