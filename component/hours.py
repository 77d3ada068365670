"""Opening hours: OpenStreetMap's ``opening_hours`` syntax, in full.

    24/7
    Mo-Fr 09:00-18:00; Sa 10:00-14:00; PH off
    Mo,We,Fr 08:00-12:00,13:00-17:00; Dec 25 off
    Fr-Sa 20:00-02:00                (closing after midnight)
    Sa[1] 10:00-14:00                (the first Saturday of each month)
    week 01-26 Mo-Fr 09:00-18:00     (ISO week numbers)
    Mo-Fr 10:00+                     (open end)
    Sa 09:00-13:00 "by appointment"  (a comment)

The syntax (https://wiki.openstreetmap.org/wiki/Key:opening_hours/specification)
is read and evaluated by ``opening-hours-py``, the Python binding of the Rust
crate ``opening-hours``: maintained, the whole syntax real directory data uses,
and fast (a specification parses in some microseconds, an evaluation takes
fewer). Times are local to the company's time zone; times no rule covers are
closed. Rules are separated by ``;``, and the last rule naming a day decides
that day, its first hours after midnight included: ``Mo-Sa 18:00-02:00; Su
12:00-16:00`` and ``Mo-Su 10:00-14:00; Sa 20:00-02:00`` are closed at 01:00 on
Sunday, ``Mo-Sa 18:00-02:00, Su 12:00-16:00`` (``,`` adds to what earlier
rules say of a day instead of replacing it) is open.

What counts as open:

* public (and school) holidays: companies have no country on record, so
  ``PH`` and ``SH`` never match: ``Mo-Fr 09:00-18:00; PH off`` is open on a
  holiday weekday, and ``PH off`` alone never opens;
* an open end (``10:00+``) is open until midnight;
* without coordinates on record, sunrise and sunset are 07:00 and 19:00, dawn
  and dusk 06:00 and 20:00 (the library's defaults);
* ``unknown`` (``Mo-Fr 09:00-18:00 unknown``) counts as open, like hours not
  published at all; a comment does not change a rule (``Sa 09:00-13:00 "by
  appointment"`` is open then, ``"by appointment"`` alone always).

The next opening is looked for up to a year ahead. Empty rules and repeated
spaces (``Mo-Fr  09:00-18:00;``), which the syntax refuses but hours written
before it may have, are ignored.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import re
import zoneinfo

import opening_hours

_TIME = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
#: Where the library's syntax error points: ``--> line:column``.
_ERROR_AT = re.compile(r"-->\s*(\d+):(\d+)")
_EXAMPLE = "write e.g. 'Mo-Fr 09:00-18:00; Sa 10:00-14:00; PH off'"
#: How far ahead the next opening is looked for (hours may open once a year).
_HORIZON = dt.timedelta(days=366)
#: How many closed intervals (comments cut a closed time into several) are looked
#: through for it: far more than real hours have, few enough that crafted hours
#: cannot slow down every search.
_MAX_INTERVALS = 200
#: The library raises it on a syntax error; its type stub (2.1.4) leaves it out.
_ParserError: type[Exception] = opening_hours.ParserError  # type: ignore[attr-defined]


class HoursError(ValueError):
    """The opening hours specification (or its time zone) is malformed."""


def check_timezone(name: str) -> str:
    """``name`` if it is an IANA time zone; HoursError naming it otherwise."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise HoursError(
            f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin)"
        ) from None
    return name


# Away replies and searches read a company's hours on every customer message:
# parse each distinct specification once (the library takes 5-20 µs to parse
# one, a few µs to evaluate it; a failed parse is not cached).
@functools.lru_cache(maxsize=4096)
def parse(spec: str) -> opening_hours.OpeningHours:
    """The parsed specification; HoursError saying where it is wrong."""
    text = _tidy(spec)
    if not text:
        raise HoursError("empty opening hours")
    try:
        return opening_hours.OpeningHours(text)
    except _ParserError as exc:
        raise HoursError(_syntax_error(text, str(exc))) from None


def open_now(spec: str | None, timezone: str, now: dt.datetime) -> tuple[bool, dt.datetime | None]:
    """Whether a company is open at ``now``, and if not when it opens (its local time).

    Unknown or unreadable hours count as open: a business without published
    hours is not turned away. None for the opening: not within a year.
    """
    if not spec:
        return True, None
    return _open_at(spec, timezone, now.replace(second=0, microsecond=0))


# The syntax counts in minutes: within one minute the answer cannot change.
# Companies share a few specifications and time zones, so a page of search
# results (or a burst of messages to one company) judges each pair once a minute.
@functools.lru_cache(maxsize=4096)
def _open_at(spec: str, timezone: str, minute: dt.datetime) -> tuple[bool, dt.datetime | None]:
    try:
        hours = parse(spec)
        zone = zoneinfo.ZoneInfo(timezone)
    except (HoursError, zoneinfo.ZoneInfoNotFoundError, ValueError):
        return True, None
    # The library reads naive times as local wall-clock times.
    local = minute.astimezone(zone).replace(tzinfo=None)
    intervals = hours.intervals(local, local + _HORIZON)
    for start, _, state, _ in itertools.islice(intervals, _MAX_INTERVALS):
        if state != opening_hours.State.CLOSED:
            return (True, None) if start <= local else (False, start.replace(tzinfo=zone))
    return False, None


def check_quiet_hours(spec: str) -> tuple[int, int]:
    """``"22:00-07:30"`` -> (start, end) in minutes, ``end`` past 1440 when it wraps."""
    start_s, sep, end_s = spec.strip().partition("-")
    if not sep:
        raise HoursError(f"bad quiet hours {spec!r} (expected HH:MM-HH:MM)")
    start, end = _minutes(start_s), _minutes(end_s)
    if start >= 1440 or end > 1440 or start == end:
        raise HoursError(f"bad quiet hours {spec!r}")
    return start, end + 1440 if end < start else end


def quiet_until(spec: str | None, timezone: str | None, now: dt.datetime) -> dt.datetime | None:
    """The end of the quiet hours ``now`` falls in, or None (not quiet, or unreadable)."""
    if not spec:
        return None
    try:
        start, end = check_quiet_hours(spec)
        local = now.astimezone(zoneinfo.ZoneInfo(timezone or "UTC"))
    except (HoursError, zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    minute = local.hour * 60 + local.minute
    for day in (-1, 0):  # a period that began yesterday may still run
        if start + day * 1440 <= minute < end + day * 1440:
            return midnight + dt.timedelta(minutes=end + day * 1440)
    return None


def _tidy(spec: str) -> str:
    """``spec`` without empty rules (``Mo 09:00-12:00;``) and repeated spaces.

    The syntax refuses both; hours stored before it may have them. Comments are kept.
    """
    parts = spec.split('"')
    parts[::2] = [re.sub(r";( ?;)+", ";", re.sub(r"\s+", " ", part)) for part in parts[::2]]
    return '"'.join(parts).strip(" ;")


def _syntax_error(spec: str, library_message: str) -> str:
    """A one-line message for the library's multi-line syntax error."""
    match = _ERROR_AT.search(library_message)
    if match is None:
        return f"not OpenStreetMap opening hours ({_EXAMPLE})"
    line, column = int(match.group(1)), int(match.group(2))
    at = sum(len(text) + 1 for text in spec.split("\n")[: line - 1]) + column - 1
    if at >= len(spec):
        return f"{spec!r} is incomplete ({_EXAMPLE})"
    rest = spec[at:]
    shown = rest if len(rest) <= 20 else rest[:20] + "..."
    return f"unexpected {shown!r} at character {at + 1} ({_EXAMPLE})"


def _minutes(text: str) -> int:
    match = _TIME.match(text.strip())
    if not match:
        raise HoursError(f"bad time {text!r} (expected HH:MM)")
    minutes = int(match.group(1)) * 60 + int(match.group(2))
    if minutes > 1440:
        raise HoursError(f"bad time {text!r}")
    return minutes
