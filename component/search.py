"""The directory's search: what customers find, answered by PostgreSQL's indexes.

The matching rules and the order (relevance, then name, then slug) are the
storage's (:class:`storage.models.CompanySearch`; the SQL and its indexes are
:mod:`storage.postgres.tables.company_search`), so that a search costs an
index lookup, not a scan of the directory. What needs the clock is added
here: whether each company is open now, and pages of open companies only,
judged among a bounded number of companies read in one query. The XEP-0055 search
(:mod:`component.features.directory.iq`) and requests to several companies
(:mod:`component.features.requests`) both search through this module.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from xml.etree.ElementTree import Element

from component import hours
from component.addressing import company_jid, parse_address
from component.directory import Directory
from component.routing.rsm import RsmRequest, parse_rsm, rsm_result, unknown_position
from storage.models import Company, CompanySearch, KnownValues, SearchCursor
from storage.protocols import DirectorySearchStore

#: Companies looked at, at most, for one page of open companies (in one
#: query): past it the page is returned short (its last company lets the
#: client go on).
MAX_EXAMINED = 500
#: Counting stops here: a count of this many means "at least" (XEP-0059 allows
#: an approximate count); counting further would read every match.
COUNT_CAP = 1_000
#: Seconds the form's categories and cities are reused, unless the directory changes.
VALUES_TTL = 60.0


@dataclasses.dataclass(frozen=True, slots=True)
class SearchQuery:
    """What a customer looks for: the criteria, and whether only open companies."""

    criteria: CompanySearch = dataclasses.field(default_factory=CompanySearch)
    open_now: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Hit:
    company: Company
    at: dt.datetime  #: when it was found

    @property
    def open_now(self) -> bool:
        """Whether the company was open then: judged only when asked for (a
        disco#items page of 200 companies does not show it)."""
        return hours.open_now(self.company.hours, self.company.timezone, self.at)[0]


@dataclasses.dataclass(frozen=True, slots=True)
class Found:
    hits: list[Hit]
    index: int | None  #: position of the first hit among all results; None: unknown
    count: int | None  #: how many results in all; None: unknown (only open ones)
    more: bool  #: whether results may follow the last hit


class DirectorySearch:
    """One per process: the search, and the categories and cities it offers."""

    def __init__(
        self,
        store: DirectorySearchStore,
        directory: Directory,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.store = store
        self.directory = directory
        self.now = now
        self._values: tuple[int, float, KnownValues] | None = None

    async def paged(
        self, query: SearchQuery, rsm: Element | None, limit: int, domain: str
    ) -> tuple[Found, Element | None]:
        """XEP-0059 over the results, company addresses being the positions: the
        page ``rsm`` asks for (at most ``limit``), and the ``<set/>`` to answer
        with; None when no page was asked for and everything fits (§2.6: a
        limited result says so even unasked)."""
        request = parse_rsm(rsm, limit)
        found = await self.find(query, limit=request.max, cursor=_cursor(request, domain))
        if found is None:
            raise unknown_position()
        if rsm is None and not found.more:
            return found, None
        hits = found.hits
        first, last = (
            (company_jid(hits[0].company.slug, domain), company_jid(hits[-1].company.slug, domain))
            if hits
            else (None, None)
        )
        return found, rsm_result(first, last, found.index, found.count)

    async def find(
        self,
        query: SearchQuery,
        *,
        limit: int,
        cursor: SearchCursor | None = None,
        counted: bool = True,
    ) -> Found | None:
        """A page of results from ``cursor``; None if the cursor names a company
        that is not among them. ``counted`` also reports the count and the
        index (two more queries; never when only open companies are wanted)."""
        criteria, open_now = query.criteria, query.open_now
        cursor = cursor or SearchCursor()
        now = self.now()
        backwards = cursor.before is not None or cursor.last
        hits: list[Hit] = []
        more = False
        if limit > 0:
            # Only open ones: look at up to MAX_EXAMINED, keep the open ones.
            want = MAX_EXAMINED if open_now else limit
            chunk = await self.store.page(criteria, cursor, want)
            if chunk is None:
                return None
            for company in reversed(chunk) if backwards else chunk:
                hit = Hit(company, now)
                if not open_now or hit.open_now:
                    hits.append(hit)
            more = len(chunk) == want or len(hits) > limit
            hits = hits[:limit]
        if backwards:
            hits.reverse()
        if open_now or not counted:
            return Found(hits, None, None, more)
        count = await self.store.count(criteria, COUNT_CAP)
        index: int | None = cursor.index
        if hits and (cursor.after is not None or cursor.before is not None or cursor.last):
            index = await self.store.position(criteria, hits[0].company.slug, COUNT_CAP)
        return Found(hits, index, count, index is None or index + len(hits) < count)

    async def known_values(self) -> KnownValues:
        """The categories and cities of the directory, for the search forms."""
        generation = self.directory.generation
        if self._values is not None:
            seen, at, values = self._values
            if seen == generation and time.monotonic() - at < VALUES_TTL:
                return values
        values = await self.store.known_values()
        self._values = (generation, time.monotonic(), values)
        return values


def _cursor(request: RsmRequest, domain: str) -> SearchCursor:
    """The cursor of a page request whose positions are company addresses."""
    if request.before == "":
        return SearchCursor(last=True)
    return SearchCursor(
        after=None if request.after is None else _slug(request.after, domain),
        before=None if request.before is None else _slug(request.before, domain),
        index=request.index,
    )


def _slug(jid: str, domain: str) -> str:
    address = parse_address(jid, domain)
    if address is None or address.slug is None or address.token is not None:
        raise unknown_position()
    return address.slug
