"""Away replies: outside opening hours, one honest automatic reply per closed period.

A customer who writes while the company is closed (its opening hours, in its
own time zone) gets one chat message from the company saying when it opens,
in the company's local time with its zone and UTC offset, in the language of
the customer's message (its ``xml:lang``), at once, with the batch; and as an
instant (:mod:`extensions.away`) that a client shows in its reader's zone. (The
customer's own zone is not asked of their client with XEP-0202: many clients
never answer, which held the reply for seconds, and one, go-sendxmpp, crashes
on the question; a city directory's customers mostly share the company's
zone.) One per
conversation and closed period: a Redis key named after the next opening time,
shared by every component process. Not while an agent is online: whoever is
there answers, opening hours or not. The customer's message itself is
delivered and archived as usual (and the cascade emails the company as usual).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from component.addressing import company_jid
from component.hours import open_now
from component.i18n import _, moment, translate
from component.logs import get_logger
from component.routing.hooks import RoutingHooks
from component.routing.items import Item
from component.routing.outbox import new_id
from component.routing.wire import render_chat
from extensions.away import opens_element
from storage.errors import Unavailable
from storage.models import BatchRead, Company, Once, Party
from storage.protocols import LimitStore

log = get_logger(__name__)

#: How long "already answered for this closed period" is kept when the company
#: has no next opening time (hours that never open).
NEVER_OPENS_TTL_S = 7 * 86400


class AwayReplies(RoutingHooks):
    """Answers customers outside opening hours (a routing hook)."""

    def __init__(
        self,
        *,
        domain: str,
        limits: LimitStore,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.domain = domain
        self.limits = limits
        self.now = now

    async def after_store(self, batch: Sequence[Item], read: BatchRead) -> list[str]:
        now = self.now()
        due: list[tuple[Item, tuple[int, str], dt.datetime | None]] = []
        for item in batch:
            if (
                item.error is not None
                or item.conv is None
                or item.author is not Party.CUSTOMER
                or item.msg.body is None
                or item.duplicate
                or item.online  # an agent is there to answer, opening hours or not
            ):
                continue
            is_open, opens = open_now(item.company.hours, item.company.timezone, now)
            if not is_open:
                period = opens.isoformat() if opens else "never"
                due.append((item, (item.conv.id, period), opens))
        if not due:
            return []
        ttl = max(_ttl(now, opens) for _item, _key, opens in due)
        try:
            firsts = await self.limits.first_seen(
                Once.AWAY_REPLY, [key for _item, key, _opens in due], ttl
            )
        except Unavailable as exc:
            log.warning("away.unavailable", error=str(exc))  # no away reply beats two
            return []
        out = []
        for (item, _key, opens), first in zip(due, firsts, strict=True):
            if first:
                company = item.company
                text = away_text(company, opens, item.msg.lang)
                company_address = company_jid(company.slug, self.domain)
                out.append(
                    render_chat(
                        company_address,
                        item.msg.sender,
                        new_id(),
                        body=text,
                        nick=company.name,
                        payload=opens_element(opens) if opens else None,
                    )
                )
                log.info("away.sent", company=company.slug)
        return out


def away_text(company: Company, opens: dt.datetime | None, lang: str | None = None) -> str:
    """The away message: the company's own (agent desk) if any, then when it opens,
    in its time, in ``lang`` (an ``xml:lang``)."""
    own = f"{company.away_message.strip()}\n\n" if company.away_message else ""
    if opens is None:
        return own + translate(
            _(
                "{company} is closed and has no opening hours published. Your message was "
                "passed on; they will answer when they can.",
                company=company.name,
            ),
            lang,
        )
    local = f"{moment(opens, lang)} ({company.timezone}, UTC{_offset(opens.utcoffset())})"
    return own + translate(
        _(
            "{company} is closed now and opens {local}. Your message was passed on; they "
            "will answer when they open.",
            company=company.name,
            local=local,
        ),
        lang,
    )


def _offset(delta: dt.timedelta | None) -> str:
    minutes = int((delta or dt.timedelta(0)).total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _ttl(now: dt.datetime, opens: dt.datetime | None) -> int:
    if opens is None:
        return NEVER_OPENS_TTL_S
    return max(60, int((opens - now).total_seconds()) + 3600)
