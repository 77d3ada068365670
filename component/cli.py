"""The ``orgchat`` command: run the component and administer the directory.

    orgchat [--config FILE] run
    orgchat [--config FILE] migrate
    orgchat [--config FILE] company add SLUG --name NAME [--email ADDR] [--timezone TZ]
                                       [--hours SPEC] [--category C] [--city C]
                                       [--phone TEL] [--url URL] [--address STREET]
                                       [--no-requests] [--retention-days N]
    orgchat [--config FILE] company list | show SLUG | remove SLUG
    orgchat [--config FILE] agent add SLUG JID [--admin] | list SLUG | remove SLUG JID
    orgchat [--config FILE] import FILE
    orgchat [--config FILE] roster sync [SLUG...]
    orgchat [--config FILE] desk list SLUG [--all] | claim|transfer CONVERSATION AGENT_JID
                               | release|resolve|reopen|log CONVERSATION
                               | note CONVERSATION TEXT --agent JID
    orgchat [--config FILE] canned add SLUG TITLE BODY | list SLUG | remove SLUG ID
    orgchat [--config FILE] archive prune
    orgchat [--config FILE] export CONVERSATION | export --customer JID --company SLUG
    orgchat [--config FILE] forget JID --yes
    orgchat config docs | check

Every error is one line on stderr and a non-zero exit status: 2 for bad
input (nothing was changed), 1 when a service is unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

import asyncpg

from component import archive_admin, desk_cli, logs
from component import config as config_mod
from component.cli_common import Handler, known_company
from component.directory_input import (
    InputError,
    agent_jid,
    check_slug,
    company_draft,
    load_import,
)
from storage import postgres
from storage.errors import Conflict, NotFound, Unavailable
from storage.models import Company, Role

EXIT_UNAVAILABLE = 1
EXIT_USAGE = 2

#: What asyncpg raises for a database.url that can never work (malformed DSN,
#: unknown database, refused credentials): bad configuration, not an outage.
_DATABASE_CONFIG_ERRORS = (
    asyncpg.ClientConfigurationError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidAuthorizationSpecificationError,
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, as promised: no usage dump, and the same "orgchat: error:"
        # prefix from subcommand parsers (whose prog is "orgchat company add").
        where = self.prog.partition(" ")[2]
        self.exit(EXIT_USAGE, f"orgchat: error: {where + ': ' if where else ''}{message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="orgchat", description="orgchat: business messenger XMPP component")
    parser.add_argument(
        "--config", metavar="FILE", help="TOML configuration file (or ORGCHAT_CONFIG)"
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("run", help="run the component")
    sub.add_parser("migrate", help="apply database migrations")
    imp = sub.add_parser("import", help="import companies with agents from JSON or CSV")
    imp.add_argument("file", type=Path)

    company = sub.add_parser("company", help="manage companies").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    add = company.add_parser("add", help="add a company")
    add.add_argument("slug")
    add.add_argument("--name", required=True)
    add.add_argument("--email")
    add.add_argument("--timezone", default="UTC")
    add.add_argument("--hours", help="opening hours, e.g. 'Mo-Fr 09:00-18:00; Sa 10:00-14:00'")
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
        type=archive_admin.retention_days,
        metavar="N",
        help="delete the company's archived messages after N days (default: keep them)",
    )
    company.add_parser("list", help="list companies")
    show = company.add_parser("show", help="show one company and its agents")
    show.add_argument("slug")
    rm = company.add_parser("remove", help="remove a company, its agents and conversations")
    rm.add_argument("slug")

    agent = sub.add_parser("agent", help="manage agents").add_subparsers(
        dest="action", required=True, parser_class=_Parser
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
        dest="action", required=True, parser_class=_Parser
    )
    sync = roster.add_parser(
        "sync", help="put every company (or these) into its agents' rosters again"
    )
    sync.add_argument("slugs", nargs="*", metavar="SLUG")

    desk_cli.add_parsers(sub, _Parser)
    archive_admin.add_parsers(sub, _Parser)

    cfg = sub.add_parser("config", help="configuration helpers").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    cfg.add_parser("docs", help="print docs/config.md generated from the declaration")
    cfg.add_parser("check", help="load and validate the configuration")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "config" and args.action == "docs":
        sys.stdout.write(config_mod.render_markdown())
        return 0
    try:
        config = config_mod.load(args.config)
    except config_mod.ConfigError as exc:
        return _fail(f"configuration: {exc}", EXIT_USAGE)
    if args.command == "config":
        try:
            config.check_secrets()
        except config_mod.ConfigError as exc:
            return _fail(f"configuration: {exc}", EXIT_USAGE)
        print("configuration ok")
        return 0
    if args.command == "run":
        try:
            config.check_secrets()
        except config_mod.ConfigError as exc:
            return _fail(f"configuration: {exc}", EXIT_USAGE)
        logs.setup(config.log.level, config.log.format)
        from component.app import App

        try:
            asyncio.run(App(config).run())
        except _DATABASE_CONFIG_ERRORS as exc:
            return _fail(f"configuration: database.url: {exc}", EXIT_USAGE)
        return 0
    try:
        # The storage layer's warnings (a pool deferred while PostgreSQL is
        # down) would reach stderr through logging's last resort: an error is
        # one line, printed below.
        logging.getLogger().addHandler(logging.NullHandler())
        return asyncio.run(_admin(args, config))
    except _DATABASE_CONFIG_ERRORS as exc:
        return _fail(f"configuration: database.url: {exc}", EXIT_USAGE)
    except InputError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except (NotFound, Conflict) as exc:
        return _fail(str(exc), EXIT_USAGE)
    except Unavailable as exc:
        return _fail(f"database unavailable: {exc}", EXIT_UNAVAILABLE)


def _fail(message: str, code: int) -> int:
    print(f"orgchat: error: {message}", file=sys.stderr)
    return code


async def _admin(args: argparse.Namespace, config: config_mod.Config) -> int:
    db = config.database
    if args.command == "migrate":
        applied = await postgres.migrate(db.url)
        print("\n".join(f"applied {name}" for name in applied) or "database is up to date")
        return 0
    # Validate every argument before touching the database.
    handler = _validated(args, config)
    pg = await postgres.connect(db.url, min_size=1, max_size=2, command_timeout=db.command_timeout)
    try:
        return await handler(pg)
    finally:
        await pg.close()


def _validated(args: argparse.Namespace, config: config_mod.Config) -> Handler:
    """Check the arguments (raising InputError) and return what to run."""
    action = getattr(args, "action", None)
    key = f"{args.command} {action}" if action else args.command
    if key in archive_admin.COMMANDS:
        return archive_admin.COMMANDS[key](args, config)
    return _COMMANDS[key](args, config.component.domain)


def _import(args: argparse.Namespace, domain: str) -> Handler:
    items = load_import(args.file)

    async def run(pg: postgres.PostgresStores) -> int:
        report = await pg.directory.import_companies(items)
        # Whatever changed, make ejabberd's rosters match the imported
        # directory again (an ejabberd may have lost them).
        queued = await pg.directory.resync_rosters([i.company.slug for i in items])
        print(
            f"imported {len(items)} companies: {report.companies_added} added, "
            f"{report.companies_updated} updated, {report.agents_added} agents added; "
            f"{queued} roster updates queued"
        )
        return 0

    return run


def _company_add(args: argparse.Namespace, domain: str) -> Handler:
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


def _company_list(args: argparse.Namespace, domain: str) -> Handler:
    async def run(pg: postgres.PostgresStores) -> int:
        for c in await pg.directory.list_companies():
            print(f"{c.slug}\t{c.name}\t{c.city or '-'}\t{c.category or '-'}\t{_requests(c)}")
        return 0

    return run


def _company_show(args: argparse.Namespace, domain: str) -> Handler:
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


def _company_remove(args: argparse.Namespace, domain: str) -> Handler:
    slug = check_slug(args.slug)

    async def run(pg: postgres.PostgresStores) -> int:
        await known_company(pg, slug)
        await pg.directory.remove_company(slug)
        print(f"removed {slug}")
        return 0

    return run


def _agent_add(args: argparse.Namespace, domain: str) -> Handler:
    slug, jid = check_slug(args.slug), agent_jid(args.jid)
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


def _agent_list(args: argparse.Namespace, domain: str) -> Handler:
    slug = check_slug(args.slug)

    async def run(pg: postgres.PostgresStores) -> int:
        await known_company(pg, slug)
        for a in await pg.directory.list_agents(slug):
            print(f"{a.jid}\t{a.role.value}")
        return 0

    return run


def _agent_remove(args: argparse.Namespace, domain: str) -> Handler:
    slug, jid = check_slug(args.slug), agent_jid(args.jid)

    async def run(pg: postgres.PostgresStores) -> int:
        await known_company(pg, slug)
        try:
            await pg.directory.remove_agent(slug, jid)
        except NotFound:
            raise NotFound(f"{jid} is not an agent of {slug}") from None
        print(f"removed {jid} from {slug}")
        return 0

    return run


def _roster_sync(args: argparse.Namespace, domain: str) -> Handler:
    slugs = [check_slug(slug) for slug in args.slugs] or None

    async def run(pg: postgres.PostgresStores) -> int:
        for slug in slugs or ():
            await known_company(pg, slug)
        queued = await pg.directory.resync_rosters(slugs)
        print(f"{queued} roster updates queued")
        return 0

    return run


_COMMANDS: dict[str, Callable[[argparse.Namespace, str], Handler]] = {
    "import": _import,
    "company add": _company_add,
    "company list": _company_list,
    "company show": _company_show,
    "company remove": _company_remove,
    "agent add": _agent_add,
    "agent list": _agent_list,
    "agent remove": _agent_remove,
    "roster sync": _roster_sync,
    **desk_cli.COMMANDS,
}


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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
