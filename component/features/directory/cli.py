"""The directory for the operator: ``orgchat company``, ``agent``, ``import`` and
``roster``.

    orgchat company add SLUG --name NAME [--email ADDR] [--timezone TZ] [--hours SPEC]
                        [--category C] [--city C] [--phone TEL] [--url URL]
                        [--address STREET] [--no-requests] [--retention-days N]
    orgchat company list | show SLUG | remove SLUG | emails SLUG on|off
    orgchat agent add SLUG JID [--admin] | list SLUG | remove SLUG JID
    orgchat import FILE [--skip-bad]
    orgchat roster sync [SLUG...]

Every argument is checked before PostgreSQL is touched (see
:mod:`component.cli`); a running component learns about every change by
itself (the directory's notifications: one per import, however large).

``import`` reads a JSON list (or ``{"companies": [...]}``), JSON Lines or CSV
file (:func:`~component.features.directory.input.read_import`) as it copies
it into PostgreSQL, all in one transaction. Each bad row is one line
``FILE:LINE: field: message``; any bad row imports nothing (exit 2, the first
50 listed), unless ``--skip-bad``, which imports the others and lists what
it skipped on stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from component.addressing import company_jid
from component.cli_common import (
    CliVerbs,
    Run,
    Subparsers,
    agent_argument,
    bare_jid,
    check_slug,
    known_company,
)
from component.config import Config
from component.features.directory.input import BadRows, company_draft, read_import
from storage import postgres
from storage.errors import Conflict, NotFound
from storage.models import Channel, Company, Role

#: Longest retention accepted (a hundred years: "forever" is no retention).
MAX_RETENTION_DAYS = 36500


def add_parsers(sub: Subparsers, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add ``import``, ``company``, ``agent`` and ``roster`` to the command's subparsers."""
    imp = sub.add_parser("import", help="import companies with agents from JSON or CSV")
    imp.add_argument("file", type=Path, help="a .json, .jsonl or .csv file")
    imp.add_argument(
        "--skip-bad",
        action="store_true",
        help="import the valid rows and list the bad ones (default: a bad row imports nothing)",
    )

    company = sub.add_parser("company", help="manage companies").add_subparsers(
        dest="action", required=True, parser_class=parser_class
    )
    add = company.add_parser("add", help="add a company")
    add.add_argument("slug")
    add.add_argument("--name", required=True)
    add.add_argument("--email")
    add.add_argument("--timezone", default="UTC")
    add.add_argument(
        "--hours",
        help="opening hours in OpenStreetMap syntax, e.g. 'Mo-Fr 09:00-18:00; PH off'",
    )
    add.add_argument("--category")
    add.add_argument("--city")
    add.add_argument("--phone", help="phone number, e.g. '+7 383 555-01-00'")
    add.add_argument("--url", help="web site, an http:// or https:// URL")
    add.add_argument("--address", help="street address, e.g. 'Krasny prospekt 25'")
    add.add_argument(
        "--no-requests",
        action="store_true",
        help="leave the company out of requests to several companies",
    )
    add.add_argument(
        "--retention-days",
        type=retention_days,
        metavar="N",
        help="delete the company's archived messages after N days (default: keep them)",
    )
    company.add_parser("list", help="list companies")
    show = company.add_parser("show", help="show one company and its agents")
    show.add_argument("slug")
    rm = company.add_parser("remove", help="remove a company, its agents and conversations")
    rm.add_argument("slug")
    emails = company.add_parser(
        "emails", help="turn the company's notification emails on or off (after an unsubscribe)"
    )
    emails.add_argument("slug")
    emails.add_argument("state", choices=["on", "off"])

    agent = sub.add_parser("agent", help="manage agents").add_subparsers(
        dest="action", required=True, parser_class=parser_class
    )
    aadd = agent.add_parser("add", help="make a JID an agent of a company")
    aadd.add_argument("slug")
    aadd.add_argument("jid")
    aadd.add_argument("--admin", action="store_true", help="company administrator")
    alist = agent.add_parser("list", help="list a company's agents")
    alist.add_argument("slug")
    arm = agent.add_parser("remove", help="remove an agent from a company")
    arm.add_argument("slug")
    arm.add_argument("jid")

    roster = sub.add_parser("roster", help="agents' ejabberd rosters").add_subparsers(
        dest="action", required=True, parser_class=parser_class
    )
    sync = roster.add_parser(
        "sync",
        help="put every company (or these) into its agents' rosters again, with its open "
        "conversations",
    )
    sync.add_argument("slugs", nargs="*", metavar="SLUG")


def retention_days(value: str) -> int:
    """argparse type of ``--retention-days``: a whole number of days, at least 1."""
    try:
        days = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {value!r}") from None
    if not 1 <= days <= MAX_RETENTION_DAYS:
        raise argparse.ArgumentTypeError(
            f"must be between 1 and {MAX_RETENTION_DAYS} days, not {days}"
        )
    return days


def import_(args: argparse.Namespace, config: Config) -> Run:
    rows = read_import(args.file, config.ejabberd.vhost)
    bad = BadRows(skip=args.skip_bad)

    async def run(pg: postgres.PostgresStores) -> int:
        # The store reads the rows as it writes them; a bad row (unless
        # skipped) raises InputError from within, which rolls it all back.
        report = await pg.directory.import_companies(bad.good(rows))
        for row in bad.listed:
            print(f"orgchat: skipped {row}", file=sys.stderr)
        skipped = f"; {bad.count} bad rows skipped" if bad.count else ""
        print(
            f"imported {bad.passed} companies: {report.companies_added} added, "
            f"{report.companies_updated} updated, {report.agents_added} agents added; "
            f"{report.roster_updates} roster updates queued{skipped}"
        )
        return 0

    return run


def company_add(args: argparse.Namespace, config: Config) -> Run:
    domain = config.component.domain
    draft = company_draft(
        args.slug,
        args.name,
        args.email,
        args.timezone,
        args.hours,
        args.category,
        args.city,
        accepts_requests=not args.no_requests,
        phone=args.phone,
        url=args.url,
        address=args.address,
    )
    draft = dataclasses.replace(draft, retention_days=args.retention_days)

    async def run(pg: postgres.PostgresStores) -> int:
        try:
            company = await pg.directory.add_company(draft)
        except Conflict:
            raise Conflict(f"company {draft.slug!r} already exists") from None
        note = "" if company.accepts_requests else "; no requests to several companies"
        if company.retention_days:
            note += f"; messages kept {company.retention_days} days"
        print(f"added {company.slug}@{domain} ({company.name}){note}")
        return 0

    return run


def company_list(args: argparse.Namespace, config: Config) -> Run:
    async def run(pg: postgres.PostgresStores) -> int:
        for c in await pg.directory.list_companies():
            print(f"{c.slug}\t{c.name}\t{c.city or '-'}\t{c.category or '-'}\t{_requests(c)}")
        return 0

    return run


def company_show(args: argparse.Namespace, config: Config) -> Run:
    domain = config.component.domain
    slug = check_slug(args.slug)

    async def run(pg: postgres.PostgresStores) -> int:
        company = await known_company(pg, slug)
        agents = await pg.directory.list_agents(slug)
        _print_company(company, domain)
        print("agents:" if agents else "agents: none")
        for a in agents:
            print(f"  {a.jid} ({a.role.value})")
        return 0

    return run


def company_emails(args: argparse.Namespace, config: Config) -> Run:
    """The way back from an email's unsubscribe link (or the way out without one)."""
    slug, on = check_slug(args.slug), args.state == "on"
    address = company_jid(slug, config.component.domain)

    async def run(pg: postgres.PostgresStores) -> int:
        company = await known_company(pg, slug)
        await pg.contacts.set_opt_out(address, Channel.EMAIL, not on)
        where = company.email or "no address set (orgchat company add --email)"
        print(f"{slug}: notification emails {'on' if on else 'off'} ({where})")
        return 0

    return run


def company_remove(args: argparse.Namespace, config: Config) -> Run:
    slug = check_slug(args.slug)

    async def run(pg: postgres.PostgresStores) -> int:
        await known_company(pg, slug)
        await pg.directory.remove_company(slug)
        print(f"removed {slug}")
        return 0

    return run


def agent_add(args: argparse.Namespace, config: Config) -> Run:
    slug, jid = check_slug(args.slug), agent_argument(args.jid, config)
    role = Role.ADMIN if args.admin else Role.AGENT

    async def run(pg: postgres.PostgresStores) -> int:
        await known_company(pg, slug)
        try:
            await pg.directory.add_agent(slug, jid, role)
        except Conflict:
            raise Conflict(f"{jid} is already an agent of {slug}") from None
        print(f"added {jid} as {role.value} of {slug}; roster update queued")
        return 0

    return run


def agent_list(args: argparse.Namespace, config: Config) -> Run:
    slug = check_slug(args.slug)

    async def run(pg: postgres.PostgresStores) -> int:
        await known_company(pg, slug)
        for a in await pg.directory.list_agents(slug):
            print(f"{a.jid}\t{a.role.value}")
        return 0

    return run


def agent_remove(args: argparse.Namespace, config: Config) -> Run:
    slug, jid = check_slug(args.slug), bare_jid(args.jid)

    async def run(pg: postgres.PostgresStores) -> int:
        await known_company(pg, slug)
        try:
            await pg.directory.remove_agent(slug, jid)
        except NotFound:
            raise NotFound(f"{jid} is not an agent of {slug}") from None
        print(f"removed {jid} from {slug}")
        return 0

    return run


def roster_sync(args: argparse.Namespace, config: Config) -> Run:
    slugs = [check_slug(slug) for slug in args.slugs] or None

    async def run(pg: postgres.PostgresStores) -> int:
        for slug in slugs or ():
            await known_company(pg, slug)
        queued = await pg.directory.resync_rosters(slugs)
        print(f"{queued} roster updates queued")
        return 0

    return run


CLI = CliVerbs(
    add_parsers,
    {
        "import": import_,
        "company add": company_add,
        "company list": company_list,
        "company show": company_show,
        "company remove": company_remove,
        "company emails": company_emails,
        "agent add": agent_add,
        "agent list": agent_list,
        "agent remove": agent_remove,
        "roster sync": roster_sync,
    },
)


def _print_company(c: Company, domain: str) -> None:
    print(f"slug:     {c.slug}")
    print(f"address:  {c.slug}@{domain}")
    print(f"name:     {c.name}")
    print(f"email:    {c.email or '-'}")
    print(f"timezone: {c.timezone}")
    print(f"hours:    {c.hours or '-'}")
    print(f"category: {c.category or '-'}")
    print(f"city:     {c.city or '-'}")
    print(f"street:   {c.address or '-'}")
    print(f"phone:    {c.phone or '-'}")
    print(f"web:      {c.url or '-'}")
    print(f"requests: {'yes' if c.accepts_requests else 'no'}")
    kept = f"{c.retention_days} days" if c.retention_days else "forever"
    print(f"messages: kept {kept}")


def _requests(c: Company) -> str:
    """The list column: does the company take requests to several companies?"""
    return "requests" if c.accepts_requests else "no-requests"
