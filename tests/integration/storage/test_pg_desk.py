"""DeskStore on PostgreSQL: state transitions with their audit log, routing's one
statement, the list, notes, canned replies, company settings."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

import asyncpg
import pytest
import pytest_asyncio

from storage import postgres
from storage.errors import Conflict, NotFound
from storage.models import (
    ActorKind,
    CompanyDraft,
    Conversation,
    ConversationStatus,
    DeskChange,
    DeskEventKind,
    DeskState,
    NewMessage,
    Party,
    Role,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

OPEN, RESOLVED = ConversationStatus.OPEN, ConversationStatus.RESOLVED
MARIO, LUIGI = "mario@localhost", "luigi@localhost"


@pytest_asyncio.fixture
async def company_id(pg: postgres.PostgresStores, slug: str) -> int:
    company = await pg.directory.add_company(CompanyDraft(slug=slug, name="Desk Pizza"))
    await pg.directory.add_agent(slug, MARIO, Role.ADMIN)
    await pg.directory.add_agent(slug, LUIGI, Role.AGENT)
    return company.id


async def open_conv(pg: postgres.PostgresStores, company_id: int, jid: str) -> Conversation:
    [conv] = await pg.conversations.open_many([(company_id, jid, None)])
    return conv


def claim_by(agent: str) -> DeskChange:
    return DeskChange(DeskEventKind.CLAIM, OPEN, agent, ActorKind.AGENT, agent)


async def archive(pg: postgres.PostgresStores, conv: Conversation, body: str, n: int) -> None:
    await pg.archive.append_batch(
        [
            NewMessage(
                conversation_id=conv.id,
                author=Party.CUSTOMER,
                sender_jid=conv.customer_jid,
                body=body,
                stanza_id=f"desk-{conv.id}-{n}",
                client_id=None,
                client_key=None,
                pending=False,
                ts=dt.datetime(2030, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=n),
            )
        ]
    )


async def test_a_conversation_without_a_row_is_open_and_unassigned(
    pg: postgres.PostgresStores, company_id: int
) -> None:
    conv = await open_conv(pg, company_id, "anna@localhost")
    assert await pg.desk.state(conv.id) == DeskState(conv.id, OPEN, None)
    assert await pg.desk.events(conv.id) == []


async def test_change_writes_the_state_and_the_event(
    pg: postgres.PostgresStores, company_id: int
) -> None:
    conv = await open_conv(pg, company_id, "anna@localhost")
    before, after = await pg.desk.change(conv.id, lambda s: claim_by(MARIO))
    assert before == DeskState(conv.id) and after == DeskState(conv.id, OPEN, MARIO)
    assert await pg.desk.state(conv.id) == after

    await pg.desk.change(
        conv.id,
        lambda s: DeskChange(DeskEventKind.RESOLVE, RESOLVED, s.assignee, ActorKind.OPERATOR),
    )
    [claim, resolve] = await pg.desk.events(conv.id)
    assert (claim.kind, claim.actor_kind, claim.actor) == (
        DeskEventKind.CLAIM,
        ActorKind.AGENT,
        MARIO,
    )
    assert (claim.from_agent, claim.to_agent) == (None, MARIO)
    assert (resolve.kind, resolve.actor_kind, resolve.actor) == (
        DeskEventKind.RESOLVE,
        ActorKind.OPERATOR,
        None,
    )
    assert await pg.desk.state(conv.id) == DeskState(conv.id, RESOLVED, MARIO)


async def test_a_refused_or_empty_decision_writes_nothing(
    pg: postgres.PostgresStores, company_id: int
) -> None:
    conv = await open_conv(pg, company_id, "anna@localhost")

    def refuse(state: DeskState) -> DeskChange:
        raise PermissionError("no")

    with pytest.raises(PermissionError):
        await pg.desk.change(conv.id, refuse)
    before, after = await pg.desk.change(conv.id, lambda s: None)
    assert before == after == DeskState(conv.id)
    assert await pg.desk.events(conv.id) == []


async def test_unknown_conversation(pg: postgres.PostgresStores) -> None:
    with pytest.raises(NotFound):
        await pg.desk.change(2**40, lambda s: claim_by(MARIO))
    with pytest.raises(NotFound):
        await pg.desk.add_note(2**40, MARIO, "lost")


async def test_concurrent_claims_are_serialised(
    pg: postgres.PostgresStores, company_id: int
) -> None:
    """Each decision sees the state the other one wrote: only one claim wins."""
    conv = await open_conv(pg, company_id, "anna@localhost")

    def first_come(agent: str):  # type: ignore[no-untyped-def]
        def decide(state: DeskState) -> DeskChange | None:
            return None if state.assignee is not None else claim_by(agent)

        return decide

    results = await asyncio.gather(
        *(pg.desk.change(conv.id, first_come(a)) for a in (MARIO, LUIGI, MARIO, LUIGI))
    )
    assert sum(1 for before, after in results if before != after) == 1
    assert len(await pg.desk.events(conv.id)) == 1


async def test_route_reads_assignees_and_reopens_in_one_statement(
    pg: postgres.PostgresStores, company_id: int
) -> None:
    claimed, resolved, plain = [
        await open_conv(pg, company_id, f"{n}@localhost") for n in ("c1", "c2", "c3")
    ]
    await pg.desk.change(claimed.id, lambda s: claim_by(MARIO))
    await pg.desk.change(resolved.id, lambda s: claim_by(LUIGI))
    await pg.desk.change(
        resolved.id,
        lambda s: DeskChange(DeskEventKind.RESOLVE, RESOLVED, LUIGI, ActorKind.AGENT, LUIGI),
    )
    ids = [claimed.id, resolved.id, plain.id]

    routing = await pg.desk.route(ids, [])  # chat states: nothing reopens
    assert routing.assignees == {claimed.id: MARIO, resolved.id: LUIGI}
    assert routing.reopened == []
    assert (await pg.desk.state(resolved.id)).status is RESOLVED

    routing = await pg.desk.route(ids, [resolved.id, plain.id])
    assert routing.assignees == {claimed.id: MARIO, resolved.id: LUIGI}
    assert routing.reopened == [resolved.id]
    assert await pg.desk.state(resolved.id) == DeskState(resolved.id, OPEN, LUIGI)
    reopen = (await pg.desk.events(resolved.id))[-1]
    assert (reopen.kind, reopen.actor_kind, reopen.actor) == (
        DeskEventKind.REOPEN,
        ActorKind.CUSTOMER,
        None,
    )
    assert (await pg.desk.route(ids, [resolved.id])).reopened == []  # once
    assert await pg.desk.route([], []) == dataclasses.replace(routing, assignees={}, reopened=[])


async def test_list_unassigned_first_then_newest(
    pg: postgres.PostgresStores, company_id: int
) -> None:
    a, b, c, d = [await open_conv(pg, company_id, f"{n}@localhost") for n in "abcd"]
    await archive(pg, a, "first", 1)
    await archive(pg, b, "second", 2)
    await archive(pg, c, "third", 3)
    await archive(pg, a, "fourth", 4)  # a is now the newest
    await pg.desk.change(c.id, lambda s: claim_by(MARIO))
    await pg.desk.change(
        b.id, lambda s: DeskChange(DeskEventKind.RESOLVE, RESOLVED, None, ActorKind.OPERATOR)
    )

    listed = await pg.desk.conversations(company_id, OPEN, 10)
    assert [x.conversation.id for x in listed.conversations] == [a.id, d.id, c.id]
    assert listed.total == 3
    first = listed.conversations[0]
    assert (first.last_body, first.last_author, first.assignee) == ("fourth", Party.CUSTOMER, None)
    assert listed.conversations[1].last_body is None  # no message yet
    assert listed.conversations[2].assignee == MARIO

    resolved = await pg.desk.conversations(company_id, RESOLVED, 10)
    assert [x.conversation.id for x in resolved.conversations] == [b.id]
    everything = await pg.desk.conversations(company_id, None, 2)
    assert len(everything.conversations) == 2 and everything.total == 4


async def test_notes_are_kept_in_order_and_logged(
    pg: postgres.PostgresStores, company_id: int
) -> None:
    conv = await open_conv(pg, company_id, "anna@localhost")
    notes = [await pg.desk.add_note(conv.id, MARIO, f"note {n}") for n in range(3)]
    operator = await pg.desk.add_note(conv.id, LUIGI, "from the CLI", by_operator=True)
    assert [n.body for n in await pg.desk.notes(conv.id, 2)] == ["note 2", "from the CLI"]
    assert await pg.desk.notes(conv.id, 10) == [*notes, operator]
    events = await pg.desk.events(conv.id)
    assert [e.kind for e in events] == [DeskEventKind.NOTE] * 4
    assert [e.note_id for e in events] == [n.id for n in [*notes, operator]]
    assert events[-1].actor_kind is ActorKind.OPERATOR and events[0].actor == MARIO


async def test_a_note_with_a_used_key_is_stored_once(
    pg: postgres.PostgresStores, company_id: int
) -> None:
    conv = await open_conv(pg, company_id, "boris@localhost")
    first = await pg.desk.add_note(conv.id, MARIO, "call back", key="session-1")
    again = await pg.desk.add_note(conv.id, MARIO, "call back", key="session-1")
    other = await pg.desk.add_note(conv.id, MARIO, "call back", key="session-2")
    plain = [await pg.desk.add_note(conv.id, MARIO, "no key") for _ in range(2)]
    assert again == first and other != first and plain[0] != plain[1]
    assert len(await pg.desk.notes(conv.id, 10)) == 4
    assert len(await pg.desk.events(conv.id)) == 4  # the replay logged nothing either


async def test_canned_replies(pg: postgres.PostgresStores, company_id: int, slug: str) -> None:
    hours = await pg.desk.add_canned(company_id, "Hours", "We are open 9 to 18.")
    menu = await pg.desk.add_canned(company_id, "Delivery", "We deliver within 5 km.")
    assert await pg.desk.canned(company_id) == [menu, hours]  # by title
    with pytest.raises(Conflict):
        await pg.desk.add_canned(company_id, "Hours", "again")
    other = await pg.directory.add_company(CompanyDraft(slug=f"{slug}-o", name="Other"))
    await pg.desk.add_canned(other.id, "Hours", "Other hours")  # titles are per company
    with pytest.raises(NotFound):
        await pg.desk.remove_canned(other.id, hours.id)  # not theirs
    await pg.desk.remove_canned(company_id, hours.id)
    assert await pg.desk.canned(company_id) == [menu]
    with pytest.raises(NotFound):
        await pg.desk.remove_canned(company_id, hours.id)
    with pytest.raises(NotFound):
        await pg.desk.add_canned(2**40, "x", "y")


async def test_company_settings_reach_the_company_row(
    pg: postgres.PostgresStores, company_id: int, slug: str
) -> None:
    await pg.directory.set_hours(company_id, "Mo-Fr 09:00-18:00", "Europe/Berlin")
    await pg.directory.set_away_message(company_id, "Back soon.")
    await pg.directory.set_reaction_window(company_id, 600)
    company = await pg.directory.get_company(slug)
    assert company is not None
    assert (company.hours, company.timezone) == ("Mo-Fr 09:00-18:00", "Europe/Berlin")
    assert (company.away_message, company.reaction_window_s) == ("Back soon.", 600)
    await pg.directory.set_away_message(company_id, None)
    await pg.directory.set_reaction_window(company_id, None)
    await pg.directory.set_hours(company_id, None, "UTC")
    company = await pg.directory.get_company(slug)
    assert company is not None
    assert (company.hours, company.away_message, company.reaction_window_s) == (None, None, None)
    with pytest.raises(NotFound):
        await pg.directory.set_away_message(2**40, "x")


async def test_removing_an_agent_releases_their_conversations(
    pg: postgres.PostgresStores, company_id: int, slug: str, sql: asyncpg.Connection
) -> None:
    mine, theirs = [await open_conv(pg, company_id, f"{n}@localhost") for n in ("m", "t")]
    await pg.desk.change(mine.id, lambda s: claim_by(LUIGI))
    await pg.desk.change(theirs.id, lambda s: claim_by(MARIO))

    await pg.directory.remove_agent(slug, LUIGI)

    assert await pg.desk.state(mine.id) == DeskState(mine.id, OPEN, None)
    assert await pg.desk.state(theirs.id) == DeskState(theirs.id, OPEN, MARIO)
    release = (await pg.desk.events(mine.id))[-1]
    assert (release.kind, release.actor_kind, release.from_agent, release.to_agent) == (
        DeskEventKind.RELEASE,
        ActorKind.SYSTEM,
        LUIGI,
        None,
    )
    # Removing the company removes everything of its desk.
    await pg.directory.remove_company(slug)
    for table in ("desk_conversations", "desk_events", "desk_notes"):
        assert (
            await sql.fetchval(
                f"SELECT count(*) FROM {table} WHERE conversation_id = ANY($1::bigint[])",
                [mine.id, theirs.id],
            )
            == 0
        )
