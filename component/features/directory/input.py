"""Validation of directory input from operators: CLI arguments and import files.

Everything is checked before anything is committed. A bad argument is one
line (:class:`~component.cli_common.InputError`); an import file is read
row by row as the import writes it (:func:`read_import`), and each bad row
is one line ``FILE:LINE: field: message`` (:class:`BadRow`), which
:class:`BadRows` counts, lists and, unless they are to be skipped, turns
into the import's failure.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar
from urllib.parse import urlsplit

from component import hours
from component.addressing import agent_jid
from component.cli_common import FieldError, InputError, check_slug, check_text
from extensions.xml import fits_xml
from storage.models import CompanyDraft, ImportedCompany, Role

if TYPE_CHECKING:
    from _csv import Reader as _CsvReader

_T = TypeVar("_T")

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: Digits with the usual separators; a leading "+" makes it international.
_PHONE = re.compile(r"^\+?[0-9(][0-9 ()./-]*$")
_DIGIT = re.compile(r"[0-9]")
_SPACE = re.compile(r"\s")
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
_KNOWN_KEYS = frozenset((*FIELDS, *FLAGS, "agents"))
#: Bad rows listed when an import is refused (all are counted).
MAX_LISTED = 50


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
    """A company as the operator describes it; FieldError names the first field at fault."""
    return CompanyDraft(
        slug=check_slug(slug),
        name=check_name(name),
        email=check_email(email),
        timezone=check_timezone(timezone or "UTC"),
        hours=check_hours(hours_spec),
        category=check_text("category", category),
        city=check_text("city", city),
        accepts_requests=accepts_requests,
        phone=check_phone(phone),
        url=check_url(url),
        address=check_address(address),
    )


def check_name(name: str | None) -> str:
    """The company's name, trimmed; never blank."""
    checked = check_text("name", name)
    if checked is None:
        raise FieldError("name", "the company name must not be empty")
    return checked


def check_email(email: str | None) -> str | None:
    """The company's email address (for the notification cascade); blank: none."""
    if email and (not _EMAIL.match(email) or not fits_xml(email)):
        raise FieldError("email", f"invalid email address {email!r}")
    return email or None


# An import names the same few zones on every row: look each up once.
@functools.lru_cache(maxsize=1024)
def check_timezone(name: str) -> str:
    """An IANA time zone name (:func:`component.hours.check_timezone`)."""
    try:
        return hours.check_timezone(name)
    except hours.HoursError as exc:
        raise FieldError("timezone", str(exc)) from None


def check_hours(spec: str | None) -> str | None:
    """Opening hours (:func:`component.hours.parse`); blank: none."""
    if not spec:
        return None
    if not fits_xml(spec):  # a comment in quotes may hold anything
        raise FieldError("hours", "holds a control character")
    try:
        hours.parse(spec)
    except hours.HoursError as exc:
        raise FieldError("hours", f"invalid opening hours {spec!r}: {exc}") from None
    return spec


def check_phone(phone: str | None) -> str | None:
    """A phone number as people write it (``+7 383 555-01-00``); blank: none."""
    phone = (phone or "").strip()
    if not phone:
        return None
    if len(phone) > MAX_PHONE_CHARS or not _PHONE.match(phone) or len(_DIGIT.findall(phone)) < 3:
        raise FieldError(
            "phone",
            f"invalid phone number {phone!r} (digits, spaces and ( ) - . / only, "
            "'+' first for an international number, e.g. '+7 383 555-01-00')",
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
        or _SPACE.search(url)
        or not fits_xml(url)
    ):
        raise FieldError("url", f"invalid web site {url!r} (an http:// or https:// URL)")
    return url


def check_address(address: str | None) -> str | None:
    """A street address on one line (the city is a field of its own); blank: none."""
    address = " ".join((address or "").split())
    if not fits_xml(address):
        raise FieldError("address", "holds a control character")
    if len(address) > MAX_ADDRESS_CHARS:
        raise FieldError(
            "address", f"the street address is longer than {MAX_ADDRESS_CHARS} characters"
        )
    return address or None


# -- import files ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class BadRow:
    """A row of an import file that cannot be imported, and why."""

    path: Path
    line: int | None  #: where the row starts; None: the file as a whole
    message: str  #: "field: what is wrong"
    #: Its place in a JSON list, which may well be all on one line.
    company: int | None = None
    #: The file cannot be read past it (malformed JSON, not UTF-8).
    fatal: bool = False

    def __str__(self) -> str:
        where = str(self.path) if self.line is None else f"{self.path}:{self.line}"
        if self.company is not None:
            where += f": company #{self.company}"
        return f"{where}: {self.message}"


def read_import(path: Path, agents_host: str) -> Iterator[ImportedCompany | BadRow]:
    """The rows of an import file, read as they are asked for: each a company or a BadRow.

    The type goes by the extension: ``.json`` (a list of company objects, or
    ``{"companies": [...]}``), ``.jsonl`` (one company object per line) or
    ``.csv`` (a header naming at least ``slug`` and ``name``; ``agents``
    holds space-separated JIDs, ``jid:admin`` for an admin). What can be
    checked before the first row raises InputError now: the type, that the
    file can be read, a CSV header. A slug repeating an earlier row's is a
    bad row; so is an agent who is not an account of ``agents_host``.
    """
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise InputError(f"{path}: unknown file type (expected .json, .jsonl or .csv)")
    try:
        # utf-8-sig: spreadsheets start their CSV files with a byte order mark.
        file = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    try:
        rows = reader(path, file, agents_host)
    except UnicodeDecodeError as exc:
        file.close()
        raise InputError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except BaseException:
        file.close()
        raise
    return _unique(path, file, rows)


class BadRows:
    """An import's bad rows as they go by: counted, listed, and fatal unless skipped."""

    def __init__(self, *, skip: bool) -> None:
        self.skip = skip
        self.count = 0
        #: Every bad row when skipping them, else the first MAX_LISTED.
        self.listed: list[BadRow] = []
        #: Companies passed on by :meth:`good`.
        self.passed = 0

    def good(self, rows: Iterable[ImportedCompany | BadRow]) -> Iterator[ImportedCompany]:
        """The companies of ``rows``, for a store that imports them in one transaction.

        Unless skipping, nothing is passed on after the first bad row, and the
        end raises InputError listing them, so that nothing is committed. A
        fatal row ends the rows and raises even when skipping: what follows
        it is unknown.
        """
        fatal = False
        for row in rows:
            if isinstance(row, ImportedCompany):
                if self.skip or not self.count:
                    self.passed += 1
                    yield row
                continue
            self.count += 1
            if self.skip or len(self.listed) < MAX_LISTED:
                self.listed.append(row)
            if row.fatal:
                fatal = True
                break
        if fatal or (self.count and not self.skip):
            raise InputError("\n".join(self._refusal(fatal)))

    def _refusal(self, fatal: bool) -> Iterator[str]:
        yield from map(str, self.listed)
        path = self.listed[0].path
        if fatal and (self.skip or self.count > 1):
            yield f"{path}: nothing imported: the rest of the file cannot be read"
        elif self.count > 1:
            shown = (
                f" (the first {len(self.listed)} above)" if self.count > len(self.listed) else ""
            )
            yield (
                f"{path}: {self.count} bad rows{shown}, nothing imported "
                "(--skip-bad imports the rest)"
            )


class _Unreadable(InputError):
    """The file cannot be read on from ``line`` (None: unknown)."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line


#: A row as a reader finds it: (its line, its number in a JSON list, the
#: company or why it cannot be one).
_Row = tuple[int | None, int | None, "ImportedCompany | InputError"]


def _unique(path: Path, file: TextIO, rows: Iterator[_Row]) -> Iterator[ImportedCompany | BadRow]:
    """The readers' rows as companies and BadRows; a slug seen before is a bad row."""
    first: dict[str, int | None] = {}  # slug -> its first line (number in a JSON list)
    with file:
        try:
            for line, number, found in rows:
                if isinstance(found, InputError):
                    fatal = isinstance(found, _Unreadable)
                    yield BadRow(path, line, _reason(found), number, fatal)
                    continue
                slug = found.company.slug
                here = line if number is None else number
                if first.setdefault(slug, here) == here:  # rows' lines (numbers) differ
                    yield found
                    continue
                earlier = f"on line {first[slug]}" if number is None else f"company #{first[slug]}"
                message = f"slug: duplicate slug {slug!r} (also {earlier})"
                yield BadRow(path, line, message, number)
        except UnicodeDecodeError as exc:
            yield BadRow(path, None, f"not UTF-8 text ({exc.reason})", fatal=True)


def _reason(exc: InputError) -> str:
    return f"{exc.field}: {exc}" if isinstance(exc, FieldError) else str(exc)


def _validated(
    convert: Callable[[_T, str], ImportedCompany], raw: _T, agents_host: str
) -> ImportedCompany | InputError:
    try:
        return convert(raw, agents_host)
    except InputError as exc:
        return exc


# -- CSV


def _csv(path: Path, file: TextIO, agents_host: str) -> Iterator[_Row]:
    reader = csv.reader(file)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise InputError(f"{path}: unreadable CSV header: {exc}") from None
    if header is None or "slug" not in header or "name" not in header:
        raise InputError(f"{path}: the header must name at least 'slug' and 'name'")
    unknown = set(header) - set(FIELDS) - {"agents"}
    if unknown:
        raise InputError(f"{path}: unknown column(s) {', '.join(sorted(unknown))}")
    return _csv_rows(reader, header, agents_host)


def _csv_rows(reader: _CsvReader, header: list[str], agents_host: str) -> Iterator[_Row]:
    end = reader.line_num
    try:
        for row in reader:
            start, end = end + 1, reader.line_num  # a quoted field may span lines
            if not row:
                continue
            if len(row) != len(header):
                wrong = InputError(f"{len(row)} fields where the header has {len(header)}")
                yield start, None, wrong
                continue
            values = dict(zip(header, row, strict=True))
            yield start, None, _validated(_from_csv, values, agents_host)
    except csv.Error as exc:
        yield reader.line_num, None, _Unreadable(reader.line_num, f"unreadable CSV: {exc}")


def _from_csv(values: dict[str, str], agents_host: str) -> ImportedCompany:
    draft = _draft(values, accepts_requests=True)
    agents = []
    for token in values.get("agents", "").split():
        jid, _, role = token.partition(":")
        agents.append(_agent(jid, role or "agent", agents_host))
    return ImportedCompany(draft, tuple(agents))


# -- JSON


def _json(path: Path, file: TextIO, agents_host: str) -> Iterator[_Row]:
    text = _JsonText(file)
    try:
        for number, (line, obj) in enumerate(_json_companies(text), 1):
            yield line, number, _validated(_from_object, obj, agents_host)
    except _Unreadable as exc:
        yield exc.line, None, exc


def _jsonl(path: Path, file: TextIO, agents_host: str) -> Iterator[_Row]:
    for line, raw in enumerate(file, 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield line, None, InputError(f"invalid JSON: {exc.msg}")
            continue
        yield line, None, _validated(_from_object, obj, agents_host)


def _from_object(obj: object, agents_host: str) -> ImportedCompany:
    """A company from a JSON object, its values' types checked."""
    if not isinstance(obj, dict):
        raise InputError("expected an object (a company)")
    unknown = obj.keys() - _KNOWN_KEYS
    if unknown:
        raise FieldError(", ".join(sorted(unknown)), "unknown field")
    for key in FIELDS:
        if obj.get(key) is not None and not isinstance(obj[key], str):
            raise FieldError(key, "must be a string")
    flag = obj.get("accepts_requests")  # null or absent: true
    if flag is not None and not isinstance(flag, bool):
        raise FieldError("accepts_requests", "must be true or false")
    listed = obj.get("agents", [])
    if not isinstance(listed, list):
        raise FieldError("agents", "must be a list")
    draft = _draft(obj, accepts_requests=flag is not False)
    agents = []
    for a in listed:
        if isinstance(a, str):
            agents.append(_agent(a, "agent", agents_host))
        elif isinstance(a, dict) and "jid" in a:
            agents.append(_agent(a["jid"], a.get("role", "agent"), agents_host))
        else:
            raise FieldError("agents", 'each agent is a JID or {"jid": ..., "role": ...}')
    return ImportedCompany(draft, tuple(agents))


def _draft(values: Mapping[str, Any], *, accepts_requests: bool) -> CompanyDraft:
    """The company of a row whose FIELDS are strings or absent."""
    get = values.get
    return company_draft(
        get("slug") or "",
        get("name") or "",
        get("email"),
        get("timezone"),
        get("hours"),
        get("category"),
        get("city"),
        accepts_requests,
        phone=get("phone"),
        url=get("url"),
        address=get("address"),
    )


def _agent(jid: object, role: object, agents_host: str) -> tuple[str, Role]:
    if not isinstance(jid, str):
        raise FieldError("agents", "an agent's JID must be a string")
    try:
        checked = Role(str(role))
    except ValueError:
        raise FieldError("agents", f"agent role must be 'agent' or 'admin', not {role!r}") from None
    try:
        return agent_jid(jid, agents_host), checked
    except ValueError as exc:
        raise FieldError("agents", str(exc)) from None


class _JsonText:
    """A JSON document read a chunk at a time and consumed from the front.

    Values are decoded by :mod:`json` one at a time, so that a list of a
    million companies never is in memory at once; ``line`` follows along.
    """

    def __init__(self, file: TextIO) -> None:
        self._file = file
        self._text = ""
        self._pos = 0
        self._eof = False
        self.line = 1  #: the line of the next character

    def peek(self) -> str:
        """The next character that is not white space ("" at the end), not consumed."""
        while True:
            blank = _JSON_SPACE.match(self._text, self._pos)
            assert blank is not None  # "*" matches nothing as well
            end = blank.end()
            self._advance(end)
            if end < len(self._text) or not self._read():
                return self._text[end : end + 1]

    def take(self, expected: str) -> str:
        """Consume the next character that is not white space, one of ``expected``."""
        found = self.peek()
        if not found or found not in expected:
            wanted = " or ".join(repr(ch) for ch in expected)
            raise _Unreadable(self.line, f"invalid JSON: expected {wanted}")
        self._advance(self._pos + 1)
        return found

    def value(self) -> object:
        """Decode and consume the next value."""
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self._text, self._pos)
            except json.JSONDecodeError as exc:
                # The value may go on in the next chunk (unless it is absurdly long).
                if len(self._text) - self._pos < MAX_VALUE_CHARS and self._read():
                    continue
                line = self.line + self._text.count("\n", self._pos, exc.pos)
                raise _Unreadable(line, f"invalid JSON: {exc.msg}") from None
            if end == len(self._text) and self._read():
                continue  # a number cut short by the chunk's end
            self._advance(end)
            return value

    def _advance(self, end: int) -> None:
        self.line += self._text.count("\n", self._pos, end)
        self._pos = end

    def _read(self) -> bool:
        """Append the next chunk, dropping what was consumed; False at the end."""
        chunk = "" if self._eof else self._file.read(_CHUNK_CHARS)
        if not chunk:
            self._eof = True
            return False
        self._text = self._text[self._pos :] + chunk
        self._pos = 0
        return True


def _json_companies(text: _JsonText) -> Iterator[tuple[int, object]]:
    """(line, value) of each company of a JSON list, or of ``{"companies": [...]}``."""
    first = text.peek()
    if first == "[":
        yield from _json_list(text)
    elif first == "{":
        yield from _json_object(text)
    else:
        raise _Unreadable(text.line, _SHAPE)
    if text.peek():
        raise _Unreadable(text.line, "invalid JSON: extra data after the companies")


def _json_object(text: _JsonText) -> Iterator[tuple[int, object]]:
    """The companies of ``{"companies": [...]}``; its other keys are not ours."""
    text.take("{")
    found = False
    more = text.peek() != "}"
    while more:
        text.peek()
        line, key = text.line, text.value()
        if not isinstance(key, str):
            raise _Unreadable(line, "invalid JSON: expected a property name")
        text.take(":")
        if key != "companies":
            text.value()
        elif text.peek() == "[":
            found = True
            yield from _json_list(text)
        else:
            raise _Unreadable(text.line, _SHAPE)
        more = text.take(",}") == ","
    if not found:
        raise _Unreadable(None, _SHAPE)


def _json_list(text: _JsonText) -> Iterator[tuple[int, object]]:
    text.take("[")
    if text.peek() == "]":
        text.take("]")
        return
    while True:
        text.peek()
        yield text.line, text.value()
        if text.take(",]") == "]":
            return


_SHAPE = 'expected a list of companies (or {"companies": [...]})'
_DECODER = json.JSONDecoder()
_JSON_SPACE = re.compile(r"[ \t\n\r]*")
#: Read a JSON file this many characters at a time.
_CHUNK_CHARS = 1 << 20
#: A JSON value (one company) longer than this is malformed, not buffered on.
MAX_VALUE_CHARS = 1 << 20

_READERS: dict[str, Callable[[Path, TextIO, str], Iterator[_Row]]] = {
    ".csv": _csv,
    ".json": _json,
    ".jsonl": _jsonl,
}
