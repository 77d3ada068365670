"""Requests to several companies at once: the business rules.

A customer asks several companies the same question in one go (an IQ in
``urn:orgchat:request:0``, see :mod:`extensions.request`, or the ad-hoc
command "Ask several companies"). Each company receives it in its own
conversation with the customer, so its answer is an ordinary chat that only
this customer sees, and no company learns who else was asked.

This service owns:

* choosing the companies (named, or found in the directory), refusing those
  unknown, closed now, opted out or over their intake limit;
* the limits: most companies per request, requests per customer (Redis),
  duplicates (the same text to the same companies, PostgreSQL);
* statuses per company: sent -> delivered -> seen -> answered | declined |
  expired, moved forward by the feature's routing hooks (:mod:`.hooks`), and the
  customer's status notifications (one headline per request per batch, and
  only on forward moves, so at most four per company);
* close (optionally accepting one offer; the others are told politely) and
  expiry, swept by every component process (each request expires once).

Storage does the bookkeeping in single transactions; routing delivers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable, Sequence

from component import metrics
from component.addressing import company_jid, conversation_jid, parse_address
from component.config import RequestSettings
from component.directory import Directory
from component.errors import (
    BodyTooLong,
    NoRecipient,
    NotAllowed,
    NotConnected,
    RateLimited,
    TooManyRecipients,
    UnknownAddress,
)
from component.features.requests.hooks import status_messages
from component.hours import open_now
from component.i18n import Text, _, listing, n_, writer
from component.logs import get_logger
from component.routing.outbox import Outbox, new_id
from component.routing.router import MessageRouter
from component.routing.views import own_copies
from component.search import DirectorySearch, SearchQuery
from extensions import forms
from extensions.request.create import Create, Search
from extensions.request.offers import offer_from_form
from extensions.request.payloads import closed_payload, closed_text, fanout_payload, fanout_text
from extensions.request.queries import Close, ListQuery
from extensions.request.stanza import new_request_id
from extensions.request.views import RequestView, TargetView
from storage.errors import Conflict, NotFound, Unavailable, raise_if_cancelling
from storage.models import (
    Company,
    CompanySearch,
    Limit,
    NewRequest,
    Notice,
    OwnCopy,
    Party,
    Request,
    RequestState,
    StatusChange,
    TargetStatus,
)
from storage.protocols import LimitStore, RequestStore

log = get_logger(__name__)

#: Requests expired per storage call by the sweep.
EXPIRY_BATCH = 100
#: Most results of a directory search, whatever the request asks.
SEARCH_MAX = 100


@dataclasses.dataclass(slots=True)
class Candidate:
    """A company asked for, and why it cannot be sent the request (if so)."""

    jid: str
    company: Company | None
    refused: str | None = None  #: unknown | closed | opted-out | over-limit
    opens: dt.datetime | None = None


class RequestService:
    def __init__(
        self,
        *,
        domain: str,
        directory: Directory,
        search: DirectorySearch,
        store: RequestStore,
        limits: LimitStore,
        router: MessageRouter,
        outbox: Outbox,
        settings: RequestSettings,
        max_body_chars: int,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.domain = domain
        self.directory = directory
        self.finder = search
        self.store = store
        self.limits = limits
        self.router = router
        self.outbox = outbox
        self.settings = settings
        self.max_body_chars = max_body_chars
        self.now = now

    # -- the customer's operations --------------------------------------------

    async def create(
        self, customer: str, ask: Create, nick: str | None = None, lang: str | None = None
    ) -> RequestView:
        """Send one request to several companies; raises RoutingError subclasses.

        The texts around the question are in the customer's language ``lang``
        (an ``xml:lang``), the question's own: the companies have none recorded.
        """
        if len(ask.body) > self.max_body_chars:
            raise BodyTooLong(
                n_(
                    "Request text longer than {count} character",
                    "Request text longer than {count} characters",
                    self.max_body_chars,
                )
            )
        most = self.settings.max_companies
        if ask.companies:
            if len(ask.companies) > most:
                raise TooManyRecipients(_too_many(most))
            candidates = [await self._named(jid) for jid in ask.companies]
        else:
            assert ask.search is not None
            if ask.search.max is not None and ask.search.max > most:
                raise TooManyRecipients(_too_many(most))
            found, passed_over = await self._search(ask.search, ask.search.max or most)
            if not found:
                raise UnknownAddress(_("No company matches this search"))
            # Closed companies that open ones took the place of are reported
            # ("not sent: closed"), not silently left out.
            if ask.include_closed:
                passed_over = []
            candidates = [
                Candidate(company_jid(c.slug, self.domain), c) for c in found + passed_over
            ]
        now = self.now()
        for cand in candidates:
            self._check_open(cand, now, ask.include_closed)
        if all(c.refused == "unknown" for c in candidates):
            raise UnknownAddress(_refusals_text(candidates))
        if not any(c.refused is None for c in candidates):
            raise NoRecipient(_refusals_text(candidates))
        (allowed,) = await self.limits.hit(
            Limit.CUSTOMER_REQUESTS, [customer], self.settings.rate, self.settings.rate_window
        )
        if not allowed:
            raise RateLimited(_("Too many requests to several companies; try again later"))
        await self._check_intake([c for c in candidates if c.refused is None])
        sendable = [c for c in candidates if c.refused is None]
        if not sendable:
            raise NoRecipient(_refusals_text(candidates))
        public_id = new_request_id()
        expires = now + dt.timedelta(seconds=self.settings.expire_after)
        form_xml = forms.to_xml(ask.form) if ask.form is not None else None
        companies = [c.company for c in sendable if c.company is not None]
        ids = tuple(company.id for company in companies)
        stanza_ids = tuple(new_id() for _id in ids)
        body = fanout_text(ask.subject, ask.body, ask.form, writer(lang))
        created = await self.store.create(
            NewRequest(
                public_id=public_id,
                customer_jid=customer,
                customer_nick=nick,
                subject=ask.subject,
                body=ask.body,
                form=form_xml,
                dedup_key=_dedup_key(ask.subject, ask.body, form_xml, ids),
                created_at=now,
                expires_at=expires,
                company_ids=ids,
                stanza_ids=stanza_ids,
                message_body=body,
                message_payload=fanout_payload(public_id, ask.subject, expires, ask.form),
                copies=await self._copies(customer, nick, companies, stanza_ids, body),
            ),
            self.settings.duplicate_window,
        )
        if created.duplicate:
            log.info("request.duplicate", request=created.request.public_id)
        else:
            metrics.REQUESTS.inc()
            metrics.REQUEST_COMPANIES.inc(len(ids))
            log.info("request.created", request=public_id, companies=len(ids))
        if created.delivery is not None:
            await self.router.deliveries.deliver(created.delivery)
        refused = [c for c in candidates if c.refused is not None]
        return await self.view(created.request, refused=refused, duplicate=created.duplicate)

    async def get(self, customer: str, public_id: str) -> RequestView:
        return await self.view(await self._own(customer, public_id), full=True)

    async def list_requests(
        self, customer: str, query: ListQuery
    ) -> tuple[list[RequestView], int, int]:
        """(views, index of the first, count of all) for XEP-0059; full views
        (offers, decline reasons, last changes) when the query asks for them."""
        try:
            page = await self.store.list_for(
                customer,
                state=RequestState(query.state) if query.state else None,
                after=query.after,
                before=query.before,
                limit=query.max,
            )
        except NotFound:
            raise UnknownAddress(_("Unknown result set position")) from None
        views = [await self.view(r, full=query.full) for r in page.requests]
        return views, page.first_index, page.count

    async def close(self, customer: str, close: Close, lang: str | None = None) -> RequestView:
        """Close an open request, optionally accepting one company's offer; the
        companies are told in the customer's language ``lang``, as the request was."""
        request = await self._own(customer, close.request)
        accepted: int | None = None
        if close.accept is not None:
            company = await self._company_of(close.accept)
            if company is None or company.id not in {t.company_id for t in request.targets}:
                raise UnknownAddress(_("That company is not part of this request"))
            accepted = company.id
        if request.state is not RequestState.OPEN:
            raise NotAllowed(
                _("This request is already {state}", state=STATES[request.state.value])
            )
        told = [t for t in request.targets if t.status is not TargetStatus.DECLINED]
        tokens = {
            conv.id: conv.token
            for conv in await self.router.conversations.by_ids([t.conversation_id for t in told])
        }
        notices = []
        for t in told:
            stanza_id = new_id()
            body = closed_text(t.company_id == accepted, accepted is not None, writer(lang))
            company = await self.directory.find_by_id(t.company_id)
            token = tokens.get(t.conversation_id)
            notices.append(
                Notice(
                    company_id=t.company_id,
                    stanza_id=stanza_id,
                    body=body,
                    payload=closed_payload(request.public_id, t.company_id == accepted),
                    copies=(
                        self._own_copies(customer, company, token, stanza_id, body)
                        if company is not None and token is not None
                        else ()
                    ),
                )
            )
        try:
            closed, delivery = await self.store.close(
                request.public_id, customer, accepted, notices
            )
        except NotFound:
            raise UnknownAddress(_("No such request")) from None
        except Conflict:
            raise NotAllowed(_("This request is no longer open")) from None
        log.info("request.closed", request=request.public_id, accepted=accepted is not None)
        if delivery is not None:
            await self.router.deliveries.deliver(delivery)
        return await self.view(closed, full=True)

    async def _copies(
        self,
        customer: str,
        nick: str | None,
        companies: Sequence[Company],
        stanza_ids: Sequence[str],
        body: str,
    ) -> tuple[tuple[OwnCopy, ...], ...]:
        """The request's message in the users' own archives, per company: the
        customer's and the agents' (routing/views.py). Their conversation
        addresses are needed first, so the conversations are opened here (the
        request's statement finds them open)."""
        if self.router.own_archives is None:
            return ()
        opened = await self.router.conversations.open_many(
            [(company.id, customer, nick) for company in companies], by_request=True
        )
        token = {conv.company_id: conv.token for conv in opened}
        return tuple(
            self._own_copies(customer, company, token[company.id], stanza_id, body)
            for company, stanza_id in zip(companies, stanza_ids, strict=True)
        )

    def _own_copies(
        self, customer: str, company: Company, token: str, stanza_id: str, body: str
    ) -> tuple[OwnCopy, ...]:
        """What the customer posts in one company's conversation (the request, its
        closing notice), in the users' own archives."""
        host = self.router.own_archives
        if host is None:
            return ()
        return own_copies(
            author=Party.CUSTOMER,
            sender=customer,
            echo=False,
            body=body,
            message_id=stanza_id,
            stanza_id=stanza_id,
            customer=customer,
            company_address=company_jid(company.slug, self.domain),
            conversation_address=conversation_jid(company.slug, token, self.domain),
            agents=self.directory.agents(company.id),
            host=host,
        )

    async def open_request(self, conversation_id: int) -> str | None:
        """The public id of the conversation's newest open request, if any."""
        return (await self.store.open_in([conversation_id])).get(conversation_id)

    # -- directory ---------------------------------------------------------------

    async def search(self, search: Search, limit: int) -> list[Company]:
        """Companies that take requests and match every given criterion (the
        directory's search), open ones first, then by relevance and name."""
        chosen, _passed_over = await self._search(search, limit)
        return chosen

    async def _search(self, search: Search, limit: int) -> tuple[list[Company], list[Company]]:
        """(what :meth:`search` returns, the closed companies among the ``limit``
        best matches that open ones took the place of)."""
        criteria = CompanySearch(
            category=search.category, city=search.city, text=search.text, takes_requests=True
        )
        wanted = min(limit, SEARCH_MAX)
        opened = await self.finder.find(
            SearchQuery(criteria, open_now=True), limit=wanted, counted=False
        )
        best = await self.finder.find(
            SearchQuery(criteria, open_now=False), limit=wanted, counted=False
        )
        assert opened is not None and best is not None  # no cursor: there is a first page
        chosen = [hit.company for hit in opened.hits]
        slugs = {c.slug for c in chosen}
        rest = [hit.company for hit in best.hits if hit.company.slug not in slugs]
        room = wanted - len(chosen)
        return chosen + rest[:room], rest[room:]

    async def categories(self) -> tuple[str, ...]:
        return (await self.finder.known_values()).categories

    async def cities(self) -> tuple[str, ...]:
        return (await self.finder.known_values()).cities

    async def _named(self, jid: str) -> Candidate:
        company = await self._company_of(jid)
        return Candidate(jid, company, None if company else "unknown")

    async def _company_of(self, jid: str) -> Company | None:
        address = parse_address(jid, self.domain)
        if address is None or address.slug is None or address.token is not None:
            return None
        return await self.directory.find(address.slug)

    def _check_open(self, cand: Candidate, now: dt.datetime, include_closed: bool) -> None:
        company = cand.company
        if company is None:
            return
        if not company.accepts_requests:
            cand.refused = "opted-out"
            return
        is_open, opens = open_now(company.hours, company.timezone, now)
        if not is_open and not include_closed:
            cand.refused, cand.opens = "closed", opens

    async def _check_intake(self, candidates: Sequence[Candidate]) -> None:
        subjects = [c.company.id for c in candidates if c.company]
        allowed = await self.limits.hit(
            Limit.COMPANY_REQUESTS,
            subjects,
            self.settings.company_rate,
            self.settings.company_rate_window,
        )
        for cand, ok in zip(candidates, allowed, strict=True):
            if not ok:
                cand.refused = "over-limit"

    async def _own(self, customer: str, public_id: str) -> Request:
        request = await self.store.get(public_id)
        if request is None or request.customer_jid != customer:
            # Someone else's request does not exist, as far as this customer knows.
            raise UnknownAddress(_("No such request"))
        return request

    # -- views -------------------------------------------------------------------

    async def view(
        self,
        request: Request,
        *,
        full: bool = False,
        refused: Sequence[Candidate] = (),
        duplicate: bool = False,
    ) -> RequestView:
        await self.directory.load_ids(
            [t.company_id for t in request.targets] + [request.accepted_company_id or 0]
        )
        targets = []
        for t in request.targets:
            company = self.directory.company_by_id(t.company_id)
            if company is None:
                continue  # removed from the directory since
            offer = None
            if full and t.offer is not None:
                offer = offer_from_form(forms.from_xml(t.offer))
            targets.append(
                TargetView(
                    jid=company_jid(company.slug, self.domain),
                    name=company.name,
                    status=t.status.value,
                    updated=t.updated_at if full else None,
                    offer=offer,
                    decline_reason=t.reason if full else None,
                )
            )
        for cand in refused:
            targets.append(
                TargetView(
                    jid=cand.jid,
                    name=cand.company.name if cand.company else None,
                    status="refused",
                    reason=cand.refused,
                    opens=cand.opens.isoformat(timespec="seconds") if cand.opens else None,
                )
            )
        accepted = self.directory.company_by_id(request.accepted_company_id or 0)
        return RequestView(
            id=request.public_id,
            state=request.state.value,
            subject=request.subject,
            created=request.created_at,
            expires=request.expires_at,
            targets=tuple(targets),
            body=request.body if full else None,
            form=forms.from_xml(request.form) if full and request.form else None,
            closed=request.closed_at,
            accepted=company_jid(accepted.slug, self.domain) if accepted else None,
            duplicate=duplicate,
        )

    # -- expiry --------------------------------------------------------------------

    async def expire_due(self) -> int:
        """Expire what is due and tell the customers; returns how many expired."""
        expired = 0
        while True:
            batch = await self.store.expire_due(self.now(), EXPIRY_BATCH)
            expired += len(batch)
            out: list[str] = []
            for request in batch:
                log.info("request.expired", request=request.public_id)
                changes = [
                    StatusChange(request.public_id, request.customer_jid, t.company_id, t.status)
                    for t in request.targets
                    if t.status is TargetStatus.EXPIRED
                ]
                out.extend(await status_messages(self.directory, self.domain, changes))
            try:
                self.outbox.send(out)
            except NotConnected:
                # The statuses are stored; the customer sees them on the next query.
                log.warning("request.expiry_not_notified", requests=len(batch))
            if len(batch) < EXPIRY_BATCH:
                return expired

    async def expire_forever(self) -> None:
        """Sweep for expired requests every ``expiry_interval`` seconds."""
        while True:
            raise_if_cancelling()
            await asyncio.sleep(self.settings.expiry_interval)
            try:
                await self.expire_due()
            except Unavailable as exc:
                log.warning("request.expiry_failed", error=str(exc))


def _dedup_key(subject: str, body: str, form: str | None, company_ids: Sequence[int]) -> str:
    parts = [subject, body, form or "", ",".join(str(i) for i in sorted(company_ids))]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


#: Why a company was not sent a request (``Candidate.refused``), as people say it.
REFUSALS: dict[str, Text] = {
    "unknown": _("no such company"),
    "closed": _("closed now"),
    "opted-out": _("does not take requests"),
    "over-limit": _("receives too many requests right now"),
}
#: A request's state (wire code, ``RequestState``'s value), as people say it.
STATES: dict[str, Text] = {"open": _("open"), "closed": _("closed"), "expired": _("expired")}


def _too_many(most: int) -> Text:
    return n_("At most {count} company per request", "At most {count} companies per request", most)


def _refusals_text(candidates: Sequence[Candidate]) -> Text:
    listed = []
    for cand in candidates:
        reason: str = REFUSALS.get(cand.refused or "", cand.refused or "")
        if cand.refused == "closed" and cand.opens is not None:
            reason = _(
                "{reason}, opens {time} local time",
                reason=reason,
                time=cand.opens.strftime("%a %H:%M"),
            )
        listed.append(_("{company} ({reason})", company=cand.jid, reason=reason))
    return _(
        "None of the companies can take this request: {refusals}",
        refusals=listing(listed),
    )
