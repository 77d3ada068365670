"""The agent desk for operators: ``orgchat desk ...`` and ``orgchat canned ...``.

    orgchat desk list SLUG [--all] [--limit N]
    orgchat desk claim CONVERSATION AGENT_JID
    orgchat desk transfer CONVERSATION AGENT_JID
    orgchat desk release CONVERSATION
    orgchat desk resolve CONVERSATION
    orgchat desk reopen CONVERSATION
    orgchat desk note CONVERSATION TEXT --agent JID
    orgchat desk log CONVERSATION
    orgchat canned add SLUG TITLE BODY | list SLUG | remove SLUG ID

CONVERSATION is a conversation's address, ``slug+token@domain`` (the domain
may be left out). The operator acts with a company admin's rights (the rules
are :mod:`component.features.desk.rules`'s); every change is recorded with the operator as
actor. A refused change (a resolved conversation, a JID that is not an agent
of the company) is bad input: one line, exit status 2, nothing changed.
Plugged into :mod:`component.cli`, which owns the exit statuses.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from component.addressing import conversation_jid, display_name
from component.cli_common import (
    CliVerbs,
    InputError,
    Run,
    Subparsers,
    bare_jid,
    check_slug,
    check_text,
    conversation_argument,
    known_company,
)
from component.config import Config
from component.errors import RoutingError
from component.features.desk import rules as desk
from storage import postgres
from storage.errors import Conflict, NotFound
from storage.models import Company, Conversation, ConversationStatus
from storage.protocols import DeskDecision


def add_parsers(sub: Subparsers, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add ``desk`` and ``canned`` to the ``orgchat`` command's subparsers."""
    deskp = sub.add_parser("desk", help="the agent desk: conversations").add_subparsers(
        dest="action", required=True, parser_class=parser_class
    )
    dlist = deskp.add_parser("list", help="a company's open conversations, unclaimed first")
    dlist.add_argument("slug")
    dlist.add_argument("--all", action="store_true", help="resolved conversations too")
    dlist.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    for name, text in (
        ("claim", "give a conversation to an agent (taking it from another)"),
        ("transfer", "give a conversation to another agent"),
    ):
        p = deskp.add_parser(name, help=text)
        p.add_argument("conversation", help="its address, slug+token@domain")
        p.add_argument("agent", help="an agent of the company (bare JID)")
    for name, text in (
        ("release", "give a conversation back to every agent"),
        ("resolve", "mark a conversation resolved"),
        ("reopen", "open a resolved conversation again"),
        ("log", "a conversation's desk history"),
    ):
        p = deskp.add_parser(name, help=text)
        p.add_argument("conversation", help="its address, slug+token@domain")
    note = deskp.add_parser("note", help="add an internal note (never sent to the customer)")
    note.add_argument("conversation", help="its address, slug+token@domain")
    note.add_argument("text")
    note.add_argument("--agent", required=True, help="the agent the note is from")

    canned = sub.add_parser("canned", help="a company's canned replies").add_subparsers(
        dest="action", required=True, parser_class=parser_class
    )
    cadd = canned.add_parser("add", help="add a canned reply")
    cadd.add_argument("slug")
    cadd.add_argument("title")
    cadd.add_argument("body")
    clist = canned.add_parser("list", help="list a company's canned replies")
    clist.add_argument("slug")
    crm = canned.add_parser("remove", help="remove a canned reply by its id")
    crm.add_argument("slug")
    crm.add_argument("id", type=int)


# -- arguments ------------------------------------------------------------------------


async def _find(
    pg: postgres.PostgresStores, address: tuple[str, str], domain: str
) -> tuple[Company, Conversation]:
    slug, token = address
    company = await known_company(pg, slug)
    conv = await pg.conversations.of_company(company.id, token)
    if conv is None:
        raise NotFound(f"no conversation {conversation_jid(slug, token, domain)}")
    return company, conv


async def _agent_of(pg: postgres.PostgresStores, company: Company, jid: str) -> str:
    agents = {a.jid for a in await pg.directory.list_agents(company.slug)}
    if jid not in agents:
        raise NotFound(f"{jid} is not an agent of {company.slug}")
    return jid


async def _apply(
    pg: postgres.PostgresStores, conv: Conversation, decision: DeskDecision, domain: str, slug: str
) -> int:
    try:
        before, after = await pg.desk.change(conv.id, decision)
    except RoutingError as exc:
        raise InputError(str(exc)) from None
    print(f"{conversation_jid(slug, conv.token, domain)}: {desk.describe(before, after)}")
    return 0


# -- handlers -------------------------------------------------------------------------


def desk_list(args: argparse.Namespace, config: Config) -> Run:
    domain = config.component.domain
    slug = check_slug(args.slug)
    if args.limit < 1:
        raise InputError("--limit must be at least 1")

    async def run(pg: postgres.PostgresStores) -> int:
        company = await known_company(pg, slug)
        status = None if args.all else ConversationStatus.OPEN
        listing = await pg.desk.conversations(company.id, status, args.limit)
        for item in listing.conversations:
            conv = item.conversation
            when = f"{item.last_ts:%Y-%m-%d %H:%M}" if item.last_ts else "-"
            last = " ".join((item.last_body or "-").split())[:60]
            print(
                f"{conversation_jid(slug, conv.token, domain)}\t{item.status.value}\t"
                f"{item.assignee or '-'}\t{when}\t{display_name(conv)}\t{last}"
            )
        more = listing.total - len(listing.conversations)
        if more > 0:
            print(f"({more} more; use --limit)")
        return 0

    return run


def desk_claim(args: argparse.Namespace, config: Config) -> Run:
    domain = config.component.domain
    address, jid = conversation_argument(args.conversation, domain), bare_jid(args.agent)

    async def run(pg: postgres.PostgresStores) -> int:
        company, conv = await _find(pg, address, domain)
        agent = await _agent_of(pg, company, jid)
        if args.action == "claim":
            decision = desk.claim(desk.Actor.operator(), agent)
        else:
            decision = desk.transfer(desk.Actor.operator(), agent)
        return await _apply(pg, conv, decision, domain, company.slug)

    return run


def desk_state(args: argparse.Namespace, config: Config) -> Run:
    domain = config.component.domain
    address = conversation_argument(args.conversation, domain)
    operator = desk.Actor.operator()
    decisions: dict[str, Callable[[], DeskDecision]] = {
        "release": lambda: desk.transfer(operator, None),
        "resolve": lambda: desk.resolve(operator),
        "reopen": lambda: desk.reopen(operator),
    }
    make = decisions[args.action]

    async def run(pg: postgres.PostgresStores) -> int:
        company, conv = await _find(pg, address, domain)
        return await _apply(pg, conv, make(), domain, company.slug)

    return run


def desk_note(args: argparse.Namespace, config: Config) -> Run:
    domain = config.component.domain
    address, jid = conversation_argument(args.conversation, domain), bare_jid(args.agent)
    text = check_text("note", args.text)
    if not text:
        raise InputError("the note must not be empty")
    if len(text) > desk.MAX_NOTE:
        raise InputError(f"the note is longer than {desk.MAX_NOTE} characters")

    async def run(pg: postgres.PostgresStores) -> int:
        company, conv = await _find(pg, address, domain)
        await _agent_of(pg, company, jid)
        note = await pg.desk.add_note(conv.id, jid, text, by_operator=True)
        print(f"note {note.id} added to {conversation_jid(company.slug, conv.token, domain)}")
        return 0

    return run


def desk_log(args: argparse.Namespace, config: Config) -> Run:
    domain = config.component.domain
    address = conversation_argument(args.conversation, domain)

    async def run(pg: postgres.PostgresStores) -> int:
        _, conv = await _find(pg, address, domain)
        state = await pg.desk.state(conv.id)
        print(f"status: {state.status.value}; claimed by: {state.assignee or '-'}")
        notes = {n.id: n for n in await pg.desk.notes(conv.id, 10_000)}
        for e in await pg.desk.events(conv.id):
            who = e.actor or e.actor_kind.value
            moved = f"\t{e.from_agent or '-'} -> {e.to_agent or '-'}"
            note = notes.get(e.note_id) if e.note_id is not None else None
            detail = f"\t{note.agent_jid}: {note.body}" if note is not None else moved
            print(f"{e.ts:%Y-%m-%d %H:%M:%S}\t{e.kind.value}\t{who}{detail}")
        return 0

    return run


def canned_add(args: argparse.Namespace, config: Config) -> Run:
    slug = check_slug(args.slug)
    title, body = check_text("title", args.title), check_text("text", args.body)
    if not title or not body:
        raise InputError("a canned reply needs a title and a text")
    if len(title) > desk.MAX_TITLE:
        raise InputError(f"the title is longer than {desk.MAX_TITLE} characters")

    async def run(pg: postgres.PostgresStores) -> int:
        company = await known_company(pg, slug)
        try:
            reply = await pg.desk.add_canned(company.id, title, body)
        except Conflict:
            raise Conflict(f"{slug} has a canned reply titled {title!r} already") from None
        print(f"added canned reply {reply.id} ({reply.title}) to {slug}")
        return 0

    return run


def canned_list(args: argparse.Namespace, config: Config) -> Run:
    slug = check_slug(args.slug)

    async def run(pg: postgres.PostgresStores) -> int:
        company = await known_company(pg, slug)
        for reply in await pg.desk.canned(company.id):
            print(f"{reply.id}\t{reply.title}\t{' '.join(reply.body.split())}")
        return 0

    return run


def canned_remove(args: argparse.Namespace, config: Config) -> Run:
    slug = check_slug(args.slug)

    async def run(pg: postgres.PostgresStores) -> int:
        company = await known_company(pg, slug)
        try:
            await pg.desk.remove_canned(company.id, args.id)
        except NotFound:
            raise NotFound(f"{slug} has no canned reply {args.id}") from None
        print(f"removed canned reply {args.id} from {slug}")
        return 0

    return run


CLI = CliVerbs(
    add_parsers,
    {
        "desk list": desk_list,
        "desk claim": desk_claim,
        "desk transfer": desk_claim,
        "desk release": desk_state,
        "desk resolve": desk_state,
        "desk reopen": desk_state,
        "desk note": desk_note,
        "desk log": desk_log,
        "canned add": canned_add,
        "canned list": canned_list,
        "canned remove": canned_remove,
    },
)
