"""The ``orgchat`` command: run the component, and the operator's verbs.

The verbs of each feature live in its package (its ``cli`` module, see
:mod:`component.feature`); this module parses, dispatches and reports:

    orgchat [--config FILE] run
    orgchat [--config FILE] migrate
    orgchat [--config FILE] company add SLUG --name NAME [--email ADDR] [--timezone TZ]
                                       [--hours SPEC] [--category C] [--city C]
                                       [--phone TEL] [--url URL] [--address STREET]
                                       [--no-requests] [--retention-days N]
    orgchat [--config FILE] company list | show SLUG | remove SLUG | emails SLUG on|off
    orgchat [--config FILE] agent add SLUG JID [--admin] | list SLUG | remove SLUG JID
    orgchat [--config FILE] import FILE [--skip-bad]
    orgchat [--config FILE] roster sync [SLUG...]
    orgchat [--config FILE] desk list SLUG [--all] | claim|transfer CONVERSATION AGENT_JID
                               | release|resolve|reopen|log CONVERSATION
                               | note CONVERSATION TEXT --agent JID
    orgchat [--config FILE] canned add SLUG TITLE BODY | list SLUG | remove SLUG ID
    orgchat [--config FILE] archive prune
    orgchat [--config FILE] export CONVERSATION | export --customer JID --company SLUG
    orgchat [--config FILE] forget JID --yes
    orgchat [--config FILE] guests expire [--dry-run] [--older-than DAYS]
    orgchat config docs | check
    orgchat --version

Every error is one line on stderr (one per bad row of an import file) and a
non-zero exit status: 2 for bad input (nothing was changed), 1 when a service
(PostgreSQL, ejabberd's HTTP API) is unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

import asyncpg

from component import config as config_mod
from component import logs
from component.cli_common import InputError, Run, Verb
from component.ejabberd_api import ApiError
from component.features import FEATURES
from storage import postgres
from storage.errors import Conflict, NotFound, Unavailable

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
    parser.add_argument(
        "--version", action="version", version=f"orgchat {version()}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("run", help="run the component")
    sub.add_parser("migrate", help="apply database migrations")
    for feature in FEATURES:
        if feature.cli is not None:
            feature.cli.add_parsers(sub, _Parser)

    cfg = sub.add_parser("config", help="configuration helpers").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    cfg.add_parser("docs", help="print docs/config.md generated from the declaration")
    cfg.add_parser("check", help="load and validate the configuration")
    return parser


def version() -> str:
    """The installed distribution's version (setup.cfg's, as pip recorded it)."""
    try:
        return importlib.metadata.version("orgchat")
    except importlib.metadata.PackageNotFoundError:  # a checkout on sys.path, never installed
        return "unknown (not installed)"


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
        import uvloop

        from component.app import App

        try:
            run = uvloop.run if config.component.event_loop == "uvloop" else asyncio.run
            run(App(config).run())
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
    except ApiError as exc:
        return _fail(f"ejabberd's HTTP API: {exc}", EXIT_UNAVAILABLE)


def _fail(message: str, code: int) -> int:
    for line in message.splitlines():
        print(f"orgchat: error: {line}", file=sys.stderr)
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


def _validated(args: argparse.Namespace, config: config_mod.Config) -> Run:
    """Check the arguments (raising InputError) and return what to run."""
    action = getattr(args, "action", None)
    key = f"{args.command} {action}" if action else args.command
    return _verbs()[key](args, config)


def _verbs() -> dict[str, Verb]:
    """Every feature's verbs, by ``"verb"`` or ``"verb action"``."""
    verbs: dict[str, Verb] = {}
    for feature in FEATURES:
        if feature.cli is not None:
            verbs.update(feature.cli.verbs)
    return verbs


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
