"""Keep agents' and customers' rosters in step with the directory and the inbox.

Adding an agent, or a customer's first message to a company, queues a
durable job in PostgreSQL (in the same transaction, by a trigger); this
worker takes due jobs, puts the company into the user's roster with a mutual
subscription through ejabberd's HTTP API (or takes it out), and probes the
user's presence. A conversation joins its company's agents' rosters the same
way (migration 0016), named after the customer (:func:`display_name`, read
when the job runs), in a group named after the company, with subscription
``to``: the agent gets the customer's presence from the conversation's
address. Jobs are leased, so several component processes can run the
worker; a failed call is retried with backoff. A process takes jobs only
while its stream to ejabberd is up: in a cluster, a process whose node is
down would otherwise take jobs and fail them against that node's API,
delaying them, while the processes of the other nodes could do them. The API only reaches users of
the service's own ejabberd host (``ejabberd.vhost``): jobs for users of other
servers are dropped (their presence stays unknown, which the notification
cascade treats as offline).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from component.addressing import company_jid, conversation_jid, display_name, split_local
from component.directory import Directory
from component.ejabberd_api import COMPANIES_GROUP, ApiError, EjabberdApi
from component.logs import get_logger
from storage.errors import Unavailable, raise_if_cancelling
from storage.models import RosterJob, RosterOp
from storage.protocols import ConversationStore, RosterJobStore

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
        directory: Directory,
        conversations: ConversationStore,
        on_added: Callable[[str, str], Awaitable[None]],
        on_removed: Callable[[str], Awaitable[None]],
        connected: Callable[[], bool],
    ) -> None:
        self.domain = domain
        self.local_host = local_host
        self.jobs = jobs
        self.api = api
        self.directory = directory
        self.conversations = conversations
        #: (the contact's local part, user JID), once the roster holds it
        self.on_added = on_added
        self.on_removed = on_removed  #: (user JID), once a company left the roster
        self.connected = connected  #: the stream to ejabberd is up
        self._wakeup = asyncio.Event()

    async def wakeup(self) -> None:
        self._wakeup.set()

    async def run(self) -> None:
        """Process jobs whenever woken (NOTIFY, a new session) and at least every
        30 s (retries), while connected."""
        while True:
            raise_if_cancelling()
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=30)
            except TimeoutError as exc:
                raise_if_cancelling(exc)
            self._wakeup.clear()
            if not self.connected():
                continue  # the next session wakes this up
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
        if job.agent_jid.rpartition("@")[2] != self.local_host:
            await self.jobs.done(job.id)
            log.info("roster.not_local", user=job.agent_jid, company=job.company_slug)
            return 0
        parts = split_local(job.company_slug)
        token = parts[1] if parts is not None else None
        try:
            if parts is not None and token is not None and job.op is RosterOp.ADD:
                if not await self._add_conversation(job, parts[0], token):
                    await self.jobs.done(job.id)
                    log.info("roster.conversation_gone", contact=job.company_slug)
                    return 0
            elif job.op is RosterOp.ADD:
                await self.api.add_to_roster(
                    job.agent_jid,
                    company_jid(job.company_slug, self.domain),
                    job.company_name,
                    COMPANIES_GROUP,
                    "both",
                )
            else:
                await self.api.remove_from_roster(
                    job.agent_jid, f"{job.company_slug}@{self.domain}"
                )
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
        elif token is None:
            await self.on_removed(job.agent_jid)
        return 1

    async def _add_conversation(self, job: RosterJob, slug: str, token: str) -> bool:
        """The conversation's contact in an agent's roster, named now; False if the
        conversation (or its company) is gone meanwhile: nothing to add."""
        company = await self.directory.find(slug)
        conv = (
            await self.conversations.of_company(company.id, token) if company is not None else None
        )
        if company is None or conv is None:
            return False
        await self.api.add_to_roster(
            job.agent_jid,
            conversation_jid(slug, token, self.domain),
            display_name(conv),
            company.name,
            "to",
        )
        return True
