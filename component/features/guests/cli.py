"""The operator's guest command: ``orgchat guests expire``.

    orgchat guests expire [--dry-run] [--older-than DAYS]

removes the abandoned guest accounts now, with everything stored about them
(:mod:`.expiry`), and prints one line per guest and a total. ``--older-than``
overrides ``guests.expire_after_days``; ``--dry-run`` only lists them. A
sweep of a running component at the same moment is harmless: both steps of
an expiry may run twice.
"""

from __future__ import annotations

import argparse
import datetime as dt

from component import config as config_mod
from component.cli_common import CliVerbs, InputError, Run, Subparsers, redis_stores
from component.ejabberd_api import EjabberdApi
from component.features.guests.expiry import GuestExpiry
from storage import postgres


def add_parsers(sub: Subparsers, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add ``guests expire`` to the command's subparsers."""
    guests = sub.add_parser("guests", help="the web page's guest accounts").add_subparsers(
        dest="action", required=True, parser_class=parser_class
    )
    exp = guests.add_parser(
        "expire", help="remove the abandoned guest accounts now, with their data"
    )
    exp.add_argument("--dry-run", action="store_true", help="only list them")
    exp.add_argument(
        "--older-than",
        metavar="DAYS",
        type=int,
        help="days since last online (default: guests.expire_after_days)",
    )


def expire(args: argparse.Namespace, config: config_mod.Config) -> Run:
    days = config.guests.expire_after_days
    if args.older_than is not None:
        if args.older_than < 1:
            raise InputError(f"invalid --older-than {args.older_than}: 1 day or more")
        days = args.older_than
    dry_run: bool = args.dry_run

    async def run(pg: postgres.PostgresStores) -> int:
        async with redis_stores(config) as rd:
            expiry = GuestExpiry(
                api=EjabberdApi.from_settings(config.ejabberd),
                pg=pg,
                rd=rd,
                vhost=config.ejabberd.vhost,
            )
            count = 0
            async for guest in expiry.run(dt.timedelta(days=days), dry_run=dry_run):
                count += 1
                seen = f"last online {guest.last_active:%Y-%m-%d %H:%M} UTC"
                if guest.report is None:
                    print(f"would remove {guest.jid} ({seen})")
                    continue
                gone = guest.report.stored
                print(
                    f"removed {guest.jid} ({seen}): {gone.conversations} conversations, "
                    f"{gone.messages} messages forgotten"
                )
        accounts = "guest account" if count == 1 else "guest accounts"
        done = "would be removed" if dry_run else "removed"
        print(f"{count} {accounts} not online for {days} days {done}")
        return 0

    return run


#: The verbs of this module, by the key component.cli dispatches on.
CLI = CliVerbs(add_parsers, {"guests expire": expire})
