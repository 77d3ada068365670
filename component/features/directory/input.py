"""Validation of directory input from operators: CLI arguments and import files.

Everything is checked before anything is written, and every problem is one
line naming the field (and, for files, the line or item) at fault.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from component import hours
from component.addressing import agent_jid
from component.cli_common import InputError, bare_jid, check_slug
from storage.models import CompanyDraft, ImportedCompany, Role

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: Digits with the usual separators; a leading "+" makes it international.
_PHONE = re.compile(r"^\+?[0-9(][0-9 ()./-]*$")
MAX_PHONE_CHARS = 32
MAX_URL_CHARS = 500
MAX_ADDRESS_CHARS = 200
FIELDS = (
    "slug",
    "name",
    "email",
    "timezone",
    "hours",
    "category",
    "city",
    "phone",
    "url",
    "address",
)
#: Optional true/false fields of a JSON import (CSV has text fields only).
FLAGS = ("accepts_requests",)


def company_draft(
    slug: str,
    name: str,
    email: str | None = None,
    timezone: str | None = None,
    hours_spec: str | None = None,
    category: str | None = None,
    city: str | None = None,
    accepts_requests: bool = True,
    *,
    phone: str | None = None,
    url: str | None = None,
    address: str | None = None,
) -> CompanyDraft:
    check_slug(slug)
    name = (name or "").strip()
    if not name:
        raise InputError("the company name must not be empty")
    if email is not None and email != "" and not _EMAIL.match(email):
        raise InputError(f"invalid email address {email!r}")
    tz = timezone or "UTC"
    try:
        hours.check_timezone(tz)
    except hours.HoursError as exc:
        raise InputError(str(exc)) from None
    if hours_spec:
        try:
            hours.parse(hours_spec)
        except hours.HoursError as exc:
            raise InputError(f"invalid opening hours {hours_spec!r}: {exc}") from None
    return CompanyDraft(
        slug=slug,
        name=name,
        email=email or None,
        timezone=tz,
        hours=hours_spec or None,
        category=(category or "").strip() or None,
        city=(city or "").strip() or None,
        accepts_requests=accepts_requests,
        phone=check_phone(phone),
        url=check_url(url),
        address=check_address(address),
    )


def check_phone(phone: str | None) -> str | None:
    """A phone number as people write it (``+7 383 555-01-00``); blank: none."""
    phone = (phone or "").strip()
    if not phone:
        return None
    digits = sum(ch.isdigit() for ch in phone)
    if len(phone) > MAX_PHONE_CHARS or digits < 3 or not _PHONE.match(phone):
        raise InputError(
            f"invalid phone number {phone!r} (digits, spaces and ( ) - . / only, "
            "'+' first for an international number, e.g. '+7 383 555-01-00')"
        )
    return phone


def check_url(url: str | None) -> str | None:
    """A web site: an absolute http or https URL; blank: none."""
    url = (url or "").strip()
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or len(url) > MAX_URL_CHARS
        or any(ch.isspace() for ch in url)
    ):
        raise InputError(f"invalid web site {url!r} (an http:// or https:// URL)")
    return url


def check_address(address: str | None) -> str | None:
    """A street address on one line (the city is a field of its own); blank: none."""
    address = " ".join((address or "").split())
    if len(address) > MAX_ADDRESS_CHARS:
        raise InputError(f"the street address is longer than {MAX_ADDRESS_CHARS} characters")
    return address or None


def load_import(path: Path, agents_host: str) -> list[ImportedCompany]:
    """Parse a JSON or CSV import file (by extension); raises InputError.

    Every agent must be an account of ``agents_host`` (see
    :func:`component.addressing.agent_jid`).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    suffix = path.suffix.lower()
    if suffix == ".json":
        items = _from_json(path, text)
    elif suffix == ".csv":
        items = _from_csv(path, text)
    else:
        raise InputError(f"{path}: unknown file type (expected .json or .csv)")
    slugs = [i.company.slug for i in items]
    dupes = sorted({s for s in slugs if slugs.count(s) > 1})
    if dupes:
        raise InputError(f"{path}: duplicate slug(s) {', '.join(dupes)}")
    for item in items:
        for jid, _ in item.agents:
            try:
                agent_jid(jid, agents_host)
            except ValueError as exc:
                raise InputError(f"{path}: company {item.company.slug}: {exc}") from None
    return items


def _from_json(path: Path, text: str) -> list[ImportedCompany]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    if isinstance(data, dict) and "companies" in data:
        data = data["companies"]
    if not isinstance(data, list):
        raise InputError(f'{path}: expected a list of companies (or {{"companies": [...]}})')
    items = []
    for n, obj in enumerate(data, 1):
        where = f"{path}: company #{n}"
        if not isinstance(obj, dict):
            raise InputError(f"{where}: expected an object")
        unknown = set(obj) - set(FIELDS) - set(FLAGS) - {"agents"}
        if unknown:
            raise InputError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        for key in FLAGS:
            if obj.get(key) is not None and not isinstance(obj[key], bool):
                raise InputError(f"{where}: '{key}' must be true or false")
        agents_raw = obj.get("agents", [])
        if not isinstance(agents_raw, list):
            raise InputError(f"{where}: 'agents' must be a list")
        agents = []
        for a in agents_raw:
            if isinstance(a, str):
                jid, role = a, "agent"
            elif isinstance(a, dict) and "jid" in a:
                jid, role = a["jid"], a.get("role", "agent")
            else:
                raise InputError(f'{where}: each agent is a JID or {{"jid": ..., "role": ...}}')
            agents.append(_agent(where, jid, role))
        items.append(ImportedCompany(_draft(where, obj), tuple(agents)))
    return items


def _from_csv(path: Path, text: str) -> list[ImportedCompany]:
    reader = csv.DictReader(text.splitlines())
    if (
        reader.fieldnames is None
        or "slug" not in reader.fieldnames
        or "name" not in reader.fieldnames
    ):
        raise InputError(f"{path}: the header must name at least 'slug' and 'name'")
    unknown = set(reader.fieldnames) - set(FIELDS) - {"agents"}
    if unknown:
        raise InputError(f"{path}: unknown column(s) {', '.join(sorted(unknown))}")
    items = []
    for row in reader:
        where = f"{path}:{reader.line_num}"
        agents = []
        # "agents" holds space-separated JIDs; "jid:admin" marks an admin.
        for token in (row.get("agents") or "").split():
            jid, _, role = token.partition(":")
            agents.append(_agent(where, jid, role or "agent"))
        items.append(ImportedCompany(_draft(where, row), tuple(agents)))
    return items


def _draft(where: str, obj: dict[str, Any]) -> CompanyDraft:
    values = {k: obj.get(k) for k in FIELDS}
    for key, value in values.items():
        if value is not None and not isinstance(value, str):
            raise InputError(f"{where}: '{key}' must be a string")
    try:
        return company_draft(
            values["slug"] or "",
            values["name"] or "",
            values["email"],
            values["timezone"],
            values["hours"],
            values["category"],
            values["city"],
            # JSON only (checked by _from_json); null or absent: true.
            obj.get("accepts_requests") is not False,
            phone=values["phone"],
            url=values["url"],
            address=values["address"],
        )
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def _agent(where: str, jid: object, role: object) -> tuple[str, Role]:
    if not isinstance(jid, str):
        raise InputError(f"{where}: agent JID must be a string")
    try:
        return bare_jid(jid), Role(str(role))
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    except ValueError:
        raise InputError(f"{where}: agent role must be 'agent' or 'admin', not {role!r}") from None
