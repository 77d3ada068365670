"""Expiring abandoned guest accounts: the pass, and the sweep that repeats it.

A pass lists the accounts of ``ejabberd.vhost`` (``registered_users``),
asks ejabberd for each guest's last activity (``get_last``) and expires the
abandoned ones (:mod:`.rules`), at most ``limit`` of them. ``orgchat guests
expire`` runs one pass; every component process runs :func:`sweep_forever`,
and a lease in PostgreSQL lets one of them sweep per interval.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import random
from collections.abc import AsyncIterator

from component.config import GuestSettings
from component.ejabberd_api import ApiError, EjabberdApi
from component.features.guests.rules import guests_among, is_abandoned
from component.features.history.forget import ForgetReport, forget_customer
from component.logs import get_logger
from storage import postgres
from storage import redis as redis_store
from storage.errors import Unavailable, raise_if_cancelling

log = get_logger(__name__)

#: The lease (storage: LeaseStore) of the periodic sweep.
SWEEP_LEASE = "guest-sweep"


@dataclasses.dataclass(frozen=True, slots=True)
class Expired:
    """One guest account a pass expired (or, in a dry run, would expire)."""

    jid: str
    last_active: dt.datetime
    #: What was forgotten; None in a dry run.
    report: ForgetReport | None


class GuestExpiry:
    """Finds and removes the abandoned guest accounts of one ejabberd host."""

    def __init__(
        self,
        *,
        api: EjabberdApi,
        pg: postgres.PostgresStores,
        rd: redis_store.RedisStores,
        vhost: str,
    ) -> None:
        self.api = api
        self.pg = pg
        self.rd = rd
        self.vhost = vhost

    async def run(
        self,
        older_than: dt.timedelta,
        *,
        limit: int | None = None,
        dry_run: bool = False,
        deadline: float | None = None,
    ) -> AsyncIterator[Expired]:
        """One pass: the guests it expires, one by one.

        ``dry_run``: nothing is touched (the report is None). Stops after
        ``limit`` guests, or when the event loop's clock passes ``deadline``.
        Raises ApiError (ejabberd) or Unavailable (PostgreSQL): what was
        expired until then stays expired, the rest waits for the next pass.
        """
        loop = asyncio.get_running_loop()
        now = dt.datetime.now(dt.UTC)
        expired = 0
        for jid in guests_among(await self.api.registered_users(self.vhost), self.vhost):
            if (limit is not None and expired >= limit) or (
                deadline is not None and loop.time() >= deadline
            ):
                return
            last = await self.api.last_activity(jid)
            if not is_abandoned(last, now, older_than):
                continue
            expired += 1
            yield Expired(jid, last.at, None if dry_run else await self.expire(jid, last.at))

    async def expire(self, jid: str, last_active: dt.datetime) -> ForgetReport:
        """Forget the guest's data, then remove the account from ejabberd.

        In this order so that a failure halfway leaves nothing behind: the
        account is what the next pass finds the guest by. Data forgotten and
        the account still there (ejabberd refused or was down): the next pass
        finds the same abandoned guest, forgets again (nothing left: a no-op)
        and removes the account. The other order would lose the account and
        with it every later chance to find the data it left.
        """
        report = await forget_customer(self.pg, self.rd, jid)
        await self.api.unregister(jid)
        log.info(
            "guests.expired",
            jid=jid,
            last_active=last_active.isoformat(),
            conversations=report.stored.conversations,
            messages=report.stored.messages,
        )
        return report


async def sweep_forever(expiry: GuestExpiry, settings: GuestSettings) -> None:
    """Run a pass every ``settings.sweep_interval`` seconds (never if 0).

    Every process tries once per interval (the first try after a random
    part of it, so that processes started together do not try together);
    the one that takes the lease sweeps, the others skip until the next
    interval. The lease lasts one interval and the pass stops before its end,
    so two sweeps never overlap. A failure (ejabberd's API or PostgreSQL
    down) is logged; the next interval's sweep picks up where it stopped.
    """
    interval = settings.sweep_interval
    if interval <= 0:
        return
    older_than = dt.timedelta(days=settings.expire_after_days)
    loop = asyncio.get_running_loop()
    delay = random.uniform(0, interval)
    while True:
        raise_if_cancelling()
        await asyncio.sleep(delay)
        delay = interval
        deadline = loop.time() + interval  # measured before the lease is taken
        expired = 0
        try:
            if not await expiry.pg.leases.take(SWEEP_LEASE, interval):
                log.debug("guests.sweep_skipped", reason="another process holds the lease")
                continue
            async for _ in expiry.run(older_than, limit=settings.sweep_batch, deadline=deadline):
                expired += 1
        except (ApiError, Unavailable) as exc:
            log.warning("guests.sweep_failed", error=str(exc), expired=expired)
            continue
        log.info("guests.swept", expired=expired, batch=settings.sweep_batch)
