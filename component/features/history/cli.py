"""The operator's archive commands: ``archive prune``, ``export`` and ``forget``.

    orgchat archive prune                         delete what is past its retention, now
    orgchat export slug+token@domain              one conversation as JSON, on stdout
    orgchat export --customer JID --company SLUG  the same, named by its two parties
    orgchat forget JID --yes                      delete everything about one customer

Each factory checks its arguments (raising InputError: one line, exit status
2, nothing touched) and returns what to run against the stores, as the
other commands of :mod:`component.cli` do.

``export`` writes one JSON document, one message per line, read from the
archive in chunks so that a long conversation never sits in memory whole::

    {"conversation": "pizza-napoli+k3x7f2q7mz@biz.localhost",
     "company": {"slug": "pizza-napoli", "name": "Pizza Napoli", "address": "pizza-napoli@..."},
     "customer": {"jid": "anna@localhost", "nick": "Anna"},
     "messages": [
    {"ts": "2026-11-27T06:12:09.318000+00:00", "direction": "in", "sender": "anna@localhost",
     "body": "...", "stanza_id": "...", "thread": null},
    ...
    ]}
"""

from __future__ import annotations

import argparse
import json
import sys

from component import config as config_mod
from component.addressing import company_jid, conversation_jid
from component.cli_common import (
    CliVerbs,
    InputError,
    Run,
    Subparsers,
    bare_jid,
    check_slug,
    conversation_argument,
    known_company,
    redis_stores,
)
from component.features.history.forget import forget_customer
from component.features.history.retention import prune_now
from storage import postgres
from storage.errors import NotFound
from storage.models import ArchivedMessage, Company, Conversation, Party

#: Messages read from the archive per round trip while exporting.
EXPORT_CHUNK = 1000


def add_parsers(sub: Subparsers, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add ``archive``, ``export`` and ``forget`` to the command's subparsers."""
    archive = sub.add_parser("archive", help="the message archive").add_subparsers(
        dest="action", required=True, parser_class=parser_class
    )
    archive.add_parser("prune", help="delete the messages past their company's retention, now")
    exp = sub.add_parser("export", help="write one conversation as JSON to stdout")
    exp.add_argument("conversation", nargs="?", metavar="CONVERSATION", help="slug+token@domain")
    exp.add_argument("--customer", metavar="JID", help="the customer's bare JID (with --company)")
    exp.add_argument("--company", metavar="SLUG", help="the company (with --customer)")
    fgt = sub.add_parser("forget", help="delete everything stored about one customer")
    fgt.add_argument("jid", metavar="JID", help="the customer's bare JID")
    fgt.add_argument("--yes", action="store_true", help="really delete (it cannot be undone)")


def archive_prune(args: argparse.Namespace, config: config_mod.Config) -> Run:
    async def run(pg: postgres.PostgresStores) -> int:
        pruned = await prune_now(pg.archive, config.archive.retention_batch)
        if not pruned:
            print("no company has a retention period: nothing to delete")
            return 0
        for entry in pruned:
            print(
                f"{entry.company_slug}: {entry.messages} messages older than "
                f"{entry.retention_days} days deleted"
            )
        print(f"{sum(entry.messages for entry in pruned)} messages deleted")
        return 0

    return run


def export(args: argparse.Namespace, config: config_mod.Config) -> Run:
    domain = config.component.domain
    if args.conversation is not None:
        if args.customer is not None or args.company is not None:
            raise InputError("give a conversation address or --customer and --company, not both")
        slug, token = conversation_argument(args.conversation, domain)
        customer = None
    else:
        if args.customer is None or args.company is None:
            raise InputError(
                "give a conversation address, or both --customer JID and --company SLUG"
            )
        slug, token = check_slug(args.company), None
        customer = bare_jid(args.customer)

    async def run(pg: postgres.PostgresStores) -> int:
        company = await known_company(pg, slug)
        conv = await _conversation(pg, company, token, customer)
        _write_export(company, conv, domain)
        after = 0
        first = True
        while True:
            chunk = await pg.archive.messages_of(conv.id, after=after, limit=EXPORT_CHUNK)
            for message in chunk:
                sys.stdout.write(("" if first else ",\n") + json.dumps(_exported(message)))
                first = False
            if len(chunk) < EXPORT_CHUNK:
                break
            after = chunk[-1].id
        sys.stdout.write("\n]}\n")
        return 0

    return run


def forget(args: argparse.Namespace, config: config_mod.Config) -> Run:
    domain = config.component.domain
    jid = bare_jid(args.jid)
    if jid.partition("@")[2] == domain:
        raise InputError(f"{jid} is an address of this service, not a customer")
    if not args.yes:
        raise InputError(
            f"forget deletes everything stored about {jid} and cannot be undone; "
            "run it again with --yes"
        )

    async def run(pg: postgres.PostgresStores) -> int:
        async with redis_stores(config) as rd:
            report = await forget_customer(pg, rd, jid)
        gone = report.stored
        print(f"forgot {jid}:")
        print(f"  conversations:      {gone.conversations}")
        print(f"  messages:           {gone.messages}")
        print(f"  requests:           {gone.requests}")
        print(f"  notification jobs:  {gone.notify_jobs}")
        print(f"  contact rows:       {gone.contacts}")
        print(f"  push subscriptions: {gone.push_subscriptions}")
        print(f"  roster jobs:        {gone.roster_jobs}")
        print(f"  own archive rows:   {gone.own_archives}")
        print(f"  redis:              {report.redis}")
        return 0

    return run


async def _conversation(
    pg: postgres.PostgresStores, company: Company, token: str | None, customer: str | None
) -> Conversation:
    if token is not None:
        conv = await pg.conversations.of_company(company.id, token)
        if conv is None:
            raise NotFound(f"no conversation {token!r} of {company.slug}")
        return conv
    assert customer is not None
    conv = await pg.conversations.find(company.id, customer)
    if conv is None:
        raise NotFound(f"{customer} has no conversation with {company.slug}")
    return conv


def _write_export(company: Company, conv: Conversation, domain: str) -> None:
    head = {
        "conversation": conversation_jid(company.slug, conv.token, domain),
        "company": {
            "slug": company.slug,
            "name": company.name,
            "address": company_jid(company.slug, domain),
        },
        "customer": {"jid": conv.customer_jid, "nick": conv.customer_nick},
    }
    sys.stdout.write(json.dumps(head)[:-1] + ', "messages": [\n')


def _exported(m: ArchivedMessage) -> dict[str, str | None]:
    return {
        "ts": m.ts.isoformat(),
        # The export's format: "in" (the customer wrote) or "out" (the company).
        "direction": "in" if m.author is Party.CUSTOMER else "out",
        "sender": m.sender_jid,
        "body": m.body,
        "stanza_id": m.stanza_id,
        "thread": m.thread,
    }


#: The verbs of this module, by the key component.cli dispatches on.
CLI = CliVerbs(
    add_parsers,
    {
        "archive prune": archive_prune,
        "export": export,
        "forget": forget,
    },
)
