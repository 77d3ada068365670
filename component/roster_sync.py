"""Keep agents' and customers' rosters in step with the directory.

Adding an agent, or a customer's first message to a company, queues a
durable job in PostgreSQL (in the same transaction, by a trigger); this
worker takes due jobs, puts the company into the user's roster with a mutual
subscription through ejabberd's HTTP API (or takes it out), and probes the
user's presence. Jobs are leased, so several component processes can run the
worker; a failed call is retried with backoff. The API only reaches users of
the service's own ejabberd host (``ejabberd.vhost``): jobs for users of other
servers are dropped (their presence stays unknown, which the notification
cascade treats as offline).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from component.addressing import company_jid
from component.ejabberd_api import ApiError, EjabberdApi
from component.logs import get_logger
from storage.errors import Unavailable, raise_if_cancelling
from storage.models import RosterJob, RosterOp
from storage.protocols import RosterJobStore

log = get_logger(__name__)

MAX_RETRY_DELAY_S = 300.0
CLAIM_BATCH = 50


class RosterSync:
    def __init__(
        self,
        *,
        domain: str,
        local_host: str,
        jobs: RosterJobStore,
        api: EjabberdApi,
        on_added: Callable[[str, str], Awaitable[None]],
        on_removed: Callable[[str], Awaitable[None]],
    ) -> None:
        self.domain = domain
        self.local_host = local_host
        self.jobs = jobs
        self.api = api
        self.on_added = on_added  #: (company slug, agent JID), once the roster holds it
        self.on_removed = on_removed  #: (agent JID), once the roster no longer holds it
        self._wakeup = asyncio.Event()

    async def wakeup(self) -> None:
        self._wakeup.set()

    async def run(self) -> None:
        """Process jobs whenever woken (NOTIFY) and at least every 30 s (retries)."""
        while True:
            raise_if_cancelling()
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=30)
            except TimeoutError as exc:
                raise_if_cancelling(exc)
            self._wakeup.clear()
            try:
                await self.process_due()
            except Unavailable as exc:
                log.warning("roster.storage_unavailable", error=str(exc))

    async def process_due(self) -> int:
        done = 0
        while jobs := await self.jobs.claim(CLAIM_BATCH):
            for job in jobs:
                done += await self._run(job)
            if len(jobs) < CLAIM_BATCH:
                break
        return done

    async def _run(self, job: RosterJob) -> int:
        company_address = company_jid(job.company_slug, self.domain)
        if job.agent_jid.rpartition("@")[2] != self.local_host:
            await self.jobs.done(job.id)
            log.info("roster.not_local", user=job.agent_jid, company=job.company_slug)
            return 0
        try:
            if job.op is RosterOp.ADD:
                await self.api.add_company_to_roster(
                    job.agent_jid, company_address, job.company_name
                )
            else:
                await self.api.remove_company_from_roster(job.agent_jid, company_address)
        except ApiError as exc:
            delay = min(MAX_RETRY_DELAY_S, 2.0 ** min(job.attempts, 8))
            log.warning(
                "roster.job_failed",
                op=job.op.value,
                agent=job.agent_jid,
                company=job.company_slug,
                attempts=job.attempts,
                retry_in_s=delay,
                error=str(exc),
            )
            await self.jobs.retry_later(job.id, delay, str(exc))
            return 0
        await self.jobs.done(job.id)
        log.info("roster.job_done", op=job.op.value, agent=job.agent_jid, company=job.company_slug)
        if job.op is RosterOp.ADD:
            await self.on_added(job.company_slug, job.agent_jid)
        else:
            await self.on_removed(job.agent_jid)
        return 1
