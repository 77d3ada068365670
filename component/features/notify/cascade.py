"""The notification cascade: live XMPP, then web push, then one email.

Every message is first delivered live (routing). The cascade makes sure that a
message nobody reads does not stay unnoticed, by the cheapest channel that
works, and without spam:

* **Company** (a customer wrote): if no agent is online, one email to the
  company's contact address after ``notify.company_offline_after`` seconds;
  if agents are online but nobody reacts (reads or replies) within
  ``notify.company_reaction_window``, the same email anyway.
* **Customer** (a company wrote): if the customer is offline and has not seen
  it after ``notify.customer_push_after`` seconds, a web push to each of their
  subscriptions; still unseen after ``notify.customer_email_after``, one email
  to their confirmed address. A customer who is online has the live message.
  Both link to the chat on the web page (:mod:`.links`; a guest's email link
  also logs the browser in).

Never spam, never miss:

* each step is a durable job in PostgreSQL (``NotifyStore``), scheduled with
  the read marks in the archive statement of the batch that made it due
  (:meth:`Cascade.alongside`), taken with
  ``FOR UPDATE SKIP LOCKED``, so steps survive restarts and several processes
  share them without doing anything twice;
* at most one pending job per conversation, recipient and channel: whatever
  arrives before it is due goes into the same email; after a sending, the
  next one waits for ``notify.quiet_period``;
* a job looks at what is still unseen when it runs: read meanwhile (XEP-0333
  displayed, or a reply) means nothing is sent; opted-out recipients and
  recipients without an address are skipped;
* SMTP down or 4xx: retried with exponential backoff; 5xx: marked failed and
  reported, never retried.

Replies by email come back through :mod:`component.features.notify.inbound` and are
posted into the conversation like any message (:mod:`.replies`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable, Sequence

from component import metrics
from component.addressing import company_jid, conversation_jid, display_name
from component.config import NotifySettings
from component.directory import Directory
from component.features.notify.email import (
    Excerpt,
    Notification,
    PermanentFailure,
    SmtpSender,
    TemporaryFailure,
    render,
)
from component.features.notify.links import ChatLink, PageLinks
from component.features.notify.push import PushOutcome, PushSender
from component.features.notify.tokens import Purpose, Tokens
from component.hours import quiet_until
from component.i18n import _
from component.logs import get_logger
from component.routing.hooks import RoutingHooks
from component.routing.items import Item
from storage.errors import NotFound, Unavailable, raise_if_cancelling
from storage.models import (
    BatchExtras,
    Channel,
    Company,
    Contact,
    Conversation,
    NotifyJob,
    Party,
    ReadMark,
    StepDue,
    Unseen,
)
from storage.protocols import ContactStore, NotifyStore, PresenceStore

log = get_logger(__name__)

#: Jobs run at once: a slow push service or relay holds its own job only.
CONCURRENT_JOBS = 16
#: Characters of a message shown in a push notification.
PUSH_EXCERPT = 200


class Cascade(RoutingHooks):
    def __init__(
        self,
        *,
        domain: str,
        directory: Directory,
        notify: NotifyStore,
        contacts: ContactStore,
        presence: PresenceStore,
        settings: NotifySettings,
        smtp: SmtpSender,
        sender: str,
        push: PushSender,
        tokens: Tokens,
        reply_domain: str,
        links: PageLinks | None,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.domain = domain
        self.directory = directory
        self.notify = notify
        self.contacts = contacts
        self.presence = presence
        self.settings = settings
        self.smtp = smtp
        self.sender = sender
        self.push = push
        self.tokens = tokens
        self.reply_domain = reply_domain
        #: None: no web page (``notify.page_url`` empty): customers get ``chat_link``.
        self.links = links
        self.now = now

    # -- routing hooks: what happened in a batch -------------------------------

    def alongside(
        self,
        batch: Sequence[Item],
        routed: Sequence[int],
        written: Sequence[int],
        extras: BatchExtras,
    ) -> None:
        """Read marks and the next steps for the batch, recorded with its archive
        statement (a message's only if it is archived now, not as a duplicate)."""
        now = self.now()
        cfg = self.settings
        quiet = cfg.quiet_period
        for item in batch:
            conv = item.conv
            if item.error is not None or conv is None:
                continue
            msg = item.msg
            customer = item.author is Party.CUSTOMER
            party = Party.CUSTOMER if customer else Party.COMPANY
            if msg.body is not None and item.stanza_id:
                # Writing is reading what came before: the writer's side is seen.
                extras.seen.append(ReadMark(conv.id, party, written=item.stanza_id))
                steps: list[tuple[Party, Channel, float]] = []
                if customer:
                    if item.company.email:
                        wait = (
                            self._reaction_window(item.company)
                            if item.online
                            else cfg.company_offline_after
                        )
                        steps.append((Party.COMPANY, Channel.EMAIL, wait))
                else:
                    if self.push.enabled:
                        steps.append((Party.CUSTOMER, Channel.PUSH, cfg.customer_push_after))
                    steps.append((Party.CUSTOMER, Channel.EMAIL, cfg.customer_email_after))
                extras.steps.extend(
                    StepDue(conv.id, whom, channel, _after(now, wait), quiet, item.stanza_id)
                    for whom, channel, wait in steps
                )
            elif msg.body is None and msg.marker == "displayed":
                extras.seen.append(ReadMark(conv.id, party))

    # -- the job loop ------------------------------------------------------------

    async def run(self) -> None:
        """Run due jobs until cancelled (every component process does).

        A pool of ``CONCURRENT_JOBS`` slots: a job is claimed only when a slot
        is free, and each job frees its slot when it ends, so a push service
        or relay that never answers holds one slot for its timeout while the
        other jobs go on (no job waits for another one to finish).
        """
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                raise_if_cancelling()
                free = CONCURRENT_JOBS - len(running)
                jobs: list[NotifyJob] = []
                if free > 0:
                    try:
                        jobs = await self.notify.claim(self.now(), free, self.settings.job_lease)
                    except Unavailable as exc:
                        log.warning("notify.storage_unavailable", error=str(exc))
                for job in jobs:
                    task = asyncio.create_task(self._guarded(job), name=f"notify-job-{job.id}")
                    running.add(task)
                    task.add_done_callback(running.discard)
                if len(running) >= CONCURRENT_JOBS:
                    # Every slot taken: claim again as soon as one frees.
                    await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                elif len(jobs) < free:
                    # Nothing more due now.
                    await asyncio.sleep(self.settings.poll_interval)
        finally:
            for task in running:
                task.cancel()

    async def _guarded(self, job: NotifyJob) -> None:
        """Run one job; whatever it raises is logged and the job retried later."""
        try:
            await self._run(job)
        except Unavailable as exc:
            # The lease runs out and the job is taken again.
            log.warning("notify.storage_unavailable", job=job.id, error=str(exc))
        except Exception as exc:
            raise_if_cancelling(exc)
            log.exception("notify.job_crashed", job=job.id)
            with contextlib.suppress(Unavailable):
                await self.notify.retry(job.id, self._backoff(job), repr(exc))

    async def _run(self, job: NotifyJob) -> None:
        try:
            unseen = await self.notify.unseen(job)
        except NotFound:
            await self.notify.cancel(job.id, "conversation removed")
            return
        if not unseen.messages:
            await self.notify.cancel(job.id, "seen")
            log.info("notify.cancelled", job=job.id, reason="seen")
            return
        company = await self.directory.find_by_id(unseen.conversation.company_id)
        if company is None:
            await self.notify.cancel(job.id, "company removed")
            return
        if job.party is Party.COMPANY:
            await self._company_email(job, unseen, company)
        elif job.channel is Channel.PUSH:
            await self._customer_push(job, unseen, company)
        else:
            await self._customer_email(job, unseen, company)

    async def _company_email(self, job: NotifyJob, unseen: Unseen, company: Company) -> None:
        conv = unseen.conversation
        contact = await self.contacts.get(company_jid(company.slug, self.domain))
        if contact.email is None or contact.email_opt_out:
            await self.notify.cancel(
                job.id, "no email address" if not contact.email else "opted out"
            )
            return
        agents = list(self.directory.agents(company.id))
        online = await self.presence.online_among(agents) if agents else set()
        minutes = max(1, round(self._reaction_window(company) / 60))
        note = (
            _(
                "Nobody at {company} has answered for {minutes} min.",
                company=company.name,
                minutes=minutes,
            )
            if online
            else _("No agent of {company} is online.", company=company.name)
        )
        label = display_name(conv)
        await self._email(
            job,
            unseen,
            Notification(
                to=contact.email,
                recipient_name=company.name,
                party=Party.COMPANY,
                company_name=company.name,
                conversation_label=label,
                excerpts=[Excerpt(label, m.ts, m.body) for m in unseen.messages],
                chat_link=self._link(conversation_jid(company.slug, conv.token, self.domain)),
                reply_to=self._address(conv, Party.COMPANY, Purpose.REPLY),
                unsubscribe=self._address(conv, Party.COMPANY, Purpose.UNSUBSCRIBE),
                thread_key=f"conv-{conv.token}-company",
                note=note,
                lang=contact.lang,
            ),
        )

    async def _customer_email(self, job: NotifyJob, unseen: Unseen, company: Company) -> None:
        conv = unseen.conversation
        contact = await self._customer_to_reach(job, conv)
        if contact is None:
            return
        if contact.email is None or contact.email_opt_out:
            await self.notify.cancel(
                job.id, "no email address" if not contact.email else "opted out"
            )
            return
        link = (
            ChatLink(self._chat_link(company))
            if self.links is None
            else await self.links.for_email(company.slug, conv.customer_jid)
        )
        await self._email(
            job,
            unseen,
            Notification(
                to=contact.email,
                recipient_name=conv.customer_nick,
                party=Party.CUSTOMER,
                company_name=company.name,
                conversation_label=company.name,
                excerpts=[Excerpt(company.name, m.ts, m.body) for m in unseen.messages],
                chat_link=link.url,
                link_expires=link.login_expires,
                reply_to=self._address(conv, Party.CUSTOMER, Purpose.REPLY),
                unsubscribe=self._address(conv, Party.CUSTOMER, Purpose.UNSUBSCRIBE),
                thread_key=f"conv-{conv.token}-customer",
                lang=contact.lang,
            ),
        )

    async def _email(self, job: NotifyJob, unseen: Unseen, notification: Notification) -> None:
        message = render(notification, sender=self.sender, message_id_domain=self.reply_domain)
        try:
            await self.smtp.send(message)
        except TemporaryFailure as exc:
            await self._retry(job, str(exc))
            return
        except PermanentFailure as exc:
            await self.notify.fail(job.id, str(exc))
            metrics.NOTIFICATIONS.labels(job.channel.value, "failed").inc()
            log.error("notify.email_failed", job=job.id, to=notification.to, error=str(exc))
            return
        await self.notify.sent(job.id, unseen.messages[-1].id)
        metrics.NOTIFICATIONS.labels(job.channel.value, "sent").inc()
        log.info(
            "notify.email_sent",
            job=job.id,
            party=job.party.value,
            messages=len(unseen.messages),
        )

    async def _customer_push(self, job: NotifyJob, unseen: Unseen, company: Company) -> None:
        conv = unseen.conversation
        contact = await self._customer_to_reach(job, conv)
        if contact is None:
            return
        subscriptions = (
            []
            if contact.push_opt_out
            else await self.contacts.push_subscriptions(conv.customer_jid)
        )
        if not subscriptions:
            await self.notify.cancel(
                job.id, "opted out" if contact.push_opt_out else "no subscription"
            )
            return
        last = unseen.messages[-1]
        company_address = company_jid(company.slug, self.domain)
        payload = {
            "title": company.name,
            "body": last.body[:PUSH_EXCERPT],
            "unseen": len(unseen.messages),
            "jid": company_address,
            "link": self._chat_link(company),
        }
        sent = retry = False
        retry_after = 0.0
        # Every device at once: one that never answers costs its timeout, once.
        results = await asyncio.gather(*(self.push.send(sub, payload) for sub in subscriptions))
        for sub, result in zip(subscriptions, results, strict=True):
            if result.outcome is PushOutcome.SENT:
                sent = True
            elif result.outcome is PushOutcome.GONE:
                await self.contacts.remove_push(sub.id)
            elif result.outcome is PushOutcome.RETRY:
                retry = True
                retry_after = max(retry_after, result.retry_after or 0.0)
            else:
                log.warning("notify.push_rejected", status=result.status, detail=result.detail)
        if sent:
            # Delivered to at least one device: that is the push step done.
            await self.notify.sent(job.id, last.id)
            metrics.NOTIFICATIONS.labels(job.channel.value, "sent").inc()
            log.info("notify.push_sent", job=job.id, subscriptions=len(subscriptions))
        elif retry:
            await self._retry(job, "push service unavailable", retry_after)
        else:
            await self.notify.cancel(job.id, "no working subscription")

    def _reaction_window(self, company: Company) -> float:
        """The company's own window (agent desk, "Email reaction window"), else the default."""
        if company.reaction_window_s is not None:
            return float(company.reaction_window_s)
        return self.settings.company_reaction_window

    async def _customer_to_reach(self, job: NotifyJob, conv: Conversation) -> Contact | None:
        """The customer's contact if this step must reach them now; otherwise the
        job is settled here: cancelled (online: the live message is enough) or
        postponed to the end of their quiet hours."""
        if await self._online(conv.customer_jid):
            await self.notify.cancel(job.id, "online")
            return None
        contact = await self.contacts.get(conv.customer_jid)
        until = quiet_until(contact.quiet_hours, contact.quiet_timezone, self.now())
        if until is not None:
            await self.notify.postpone(job.id, until)
            log.info("notify.postponed", job=job.id, until=until.isoformat())
            return None
        return contact

    async def _retry(self, job: NotifyJob, error: str, at_least: float = 0.0) -> None:
        if job.attempts + 1 >= self.settings.max_attempts:
            await self.notify.fail(job.id, f"gave up after {job.attempts + 1} attempts: {error}")
            metrics.NOTIFICATIONS.labels(job.channel.value, "gave_up").inc()
            log.error("notify.gave_up", job=job.id, error=error)
            return
        delay = max(self._backoff(job), at_least)
        await self.notify.retry(job.id, delay, error)
        log.warning(
            "notify.retry", job=job.id, attempt=job.attempts + 1, delay_s=delay, error=error
        )

    def _backoff(self, job: NotifyJob) -> float:
        cfg = self.settings
        return float(min(cfg.retry_max_delay, cfg.retry_min_delay * 2**job.attempts))

    async def _online(self, jid: str) -> bool:
        """Known to be online; unknown counts as offline (never as "drop it")."""
        try:
            return bool(await self.presence.online_among([jid]))
        except Unavailable:
            return False

    def _address(self, conv: Conversation, party: Party, purpose: Purpose) -> str:
        return self.tokens.address(self.tokens.make(conv.id, party, purpose), self.reply_domain)

    def _link(self, jid: str) -> str:
        return self.settings.chat_link.format(jid=jid)

    def _chat_link(self, company: Company) -> str:
        """A customer's way back to the chat: on the web page, else ``chat_link``."""
        if self.links is None:
            return self._link(company_jid(company.slug, self.domain))
        return self.links.chat(company.slug)

    # -- replies by email (component.features.notify.inbound) ------------------------------


def _after(now: dt.datetime, seconds: float) -> dt.datetime:
    return now + dt.timedelta(seconds=seconds)
