"""Searching the in-memory directory: the one set of matching rules.

Pure functions over :class:`storage.models.Company` rows, so that a search
never touches PostgreSQL (the directory is in memory in every process, see
:mod:`component.directory`). The XMPP side (XEP-0055 forms, XEP-0059 pages)
is :mod:`component.features.directory.iq`; requests to several companies
pick their companies with the same search (:mod:`component.features.requests`).

Matching is case-insensitive (Unicode case folding, surrounding and repeated
spaces ignored): the name matches a substring, the text a substring of the
name, the address's slug or the category, the category and the city match
whole values. Results are ordered by name, then slug, so that pages are
stable while the directory does not change.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable

from component import hours
from storage.models import Company


@dataclasses.dataclass(frozen=True, slots=True)
class SearchQuery:
    """What a customer looks for; None (or False) leaves a criterion out."""

    name: str | None = None  #: any part of the company's name
    category: str | None = None  #: the whole category
    city: str | None = None  #: the whole city
    open_now: bool = False  #: only companies open at the time of the search
    text: str | None = None  #: any part of the name, the slug or the category
    takes_requests: bool = False  #: only companies that take requests to several companies


@dataclasses.dataclass(frozen=True, slots=True)
class Hit:
    company: Company
    open_now: bool


def fold(text: str) -> str:
    """The form compared: case-folded, whitespace runs made one space."""
    return " ".join(text.split()).casefold()


def search(companies: Iterable[Company], query: SearchQuery, now: dt.datetime) -> list[Hit]:
    """The companies matching ``query`` at ``now``, by name then slug."""
    name = fold(query.name) if query.name else None
    text = fold(query.text) if query.text else None
    category = fold(query.category) if query.category else None
    city = fold(query.city) if query.city else None
    hits: list[Hit] = []
    for company in companies:
        if query.takes_requests and not company.accepts_requests:
            continue
        if name is not None and name not in fold(company.name):
            continue
        if text is not None and not any(
            text in fold(value) for value in (company.name, company.slug, company.category or "")
        ):
            continue
        if category is not None and fold(company.category or "") != category:
            continue
        if city is not None and fold(company.city or "") != city:
            continue
        is_open, _ = hours.open_now(company.hours, company.timezone, now)
        if query.open_now and not is_open:
            continue
        hits.append(Hit(company, is_open))
    hits.sort(key=lambda hit: (fold(hit.company.name), hit.company.slug))
    return hits


def known_values(companies: Iterable[Company], attr: Callable[[Company], str | None]) -> list[str]:
    """The distinct non-empty values of one attribute, case-insensitively.

    Each value is spelled as the first company (by slug) spells it; the list
    is sorted case-insensitively. These are the choices of the search form.
    """
    spelled: dict[str, str] = {}
    for company in sorted(companies, key=lambda c: c.slug):
        value = attr(company)
        if value and value.strip():
            spelled.setdefault(fold(value), " ".join(value.split()))
    return [spelled[key] for key in sorted(spelled)]
