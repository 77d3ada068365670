"""Opening hours: a small subset of OpenStreetMap's ``opening_hours`` syntax.

    24/7
    Mo-Fr 09:00-18:00; Sa 10:00-14:00
    Mo,We,Fr 08:00-12:00,13:00-17:00; Su off
    Fr-Sa 18:00-02:00          (closing after midnight)

Rules are separated by ``;``; a later rule for a day replaces an earlier one.
Days not mentioned are closed. Times are local to the company's time zone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
import zoneinfo

DAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
_TIME = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


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


@dataclasses.dataclass(frozen=True)
class OpeningHours:
    """For each weekday (0 = Monday), the open intervals in minutes after midnight.

    An interval may end after 24:00 (closing after midnight).
    """

    week: tuple[tuple[tuple[int, int], ...], ...]

    def is_open(self, weekday: int, minute: int) -> bool:
        if any(start <= minute < end for start, end in self.week[weekday]):
            return True
        yesterday = self.week[(weekday - 1) % 7]
        return any(end > 1440 and minute < end - 1440 for _, end in yesterday)

    def next_opening(self, weekday: int, minute: int) -> tuple[int, int] | None:
        """(days ahead, minute) of the next interval start after ``minute``; None: never."""
        for ahead in range(8):
            for start, _ in self.week[(weekday + ahead) % 7]:
                if ahead > 0 or start > minute:
                    return ahead, start
        return None


def open_now(spec: str | None, timezone: str, now: dt.datetime) -> tuple[bool, dt.datetime | None]:
    """Whether a company is open at ``now``, and if not when it opens (its local time).

    Unknown or unreadable hours count as open: a business without published
    hours is not turned away.
    """
    if not spec:
        return True, None
    try:
        hours = parse(spec)
        local = now.astimezone(zoneinfo.ZoneInfo(timezone))
    except (HoursError, zoneinfo.ZoneInfoNotFoundError, ValueError):
        return True, None
    minute = local.hour * 60 + local.minute
    if hours.is_open(local.weekday(), minute):
        return True, None
    nxt = hours.next_opening(local.weekday(), minute)
    if nxt is None:
        return False, None
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return False, midnight + dt.timedelta(days=nxt[0], minutes=nxt[1])


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


# Away replies and searches read a company's hours on every customer message:
# parse each distinct specification once.
@functools.lru_cache(maxsize=4096)
def parse(spec: str) -> OpeningHours:
    spec = spec.strip()
    if not spec:
        raise HoursError("empty opening hours")
    if spec == "24/7":
        return OpeningHours(tuple(((0, 1440),) for _ in DAYS))
    week: list[tuple[tuple[int, int], ...]] = [() for _ in DAYS]
    for raw_rule in spec.split(";"):
        rule = raw_rule.strip()
        if not rule:
            continue
        days_part, _, times_part = rule.partition(" ")
        days = _parse_days(days_part)
        intervals = _parse_times(times_part.strip(), rule)
        for day in days:
            week[day] = intervals
    return OpeningHours(tuple(week))


def _parse_days(text: str) -> list[int]:
    days: list[int] = []
    for part in text.split(","):
        first, sep, last = part.partition("-")
        if first not in DAYS or (sep and last not in DAYS):
            raise HoursError(f"bad day {part!r} (use {', '.join(DAYS)} and ranges like Mo-Fr)")
        start = DAYS.index(first)
        end = DAYS.index(last) if sep else start
        span = (end - start) % 7
        days.extend((start + i) % 7 for i in range(span + 1))
    return days


def _parse_times(text: str, rule: str) -> tuple[tuple[int, int], ...]:
    if text == "off":
        return ()
    if not text:
        raise HoursError(f"no times in {rule!r} (e.g. 'Mo-Fr 09:00-18:00' or 'Su off')")
    intervals = []
    for part in text.split(","):
        start_s, sep, end_s = part.strip().partition("-")
        if not sep:
            raise HoursError(f"bad time range {part!r} (expected HH:MM-HH:MM)")
        start, end = _minutes(start_s), _minutes(end_s)
        if end <= start:
            end += 1440  # closes after midnight
        if start >= 1440 or end - start > 1440:
            raise HoursError(f"bad time range {part!r}")
        intervals.append((start, end))
    return tuple(sorted(intervals))


def _minutes(text: str) -> int:
    match = _TIME.match(text.strip())
    if not match:
        raise HoursError(f"bad time {text!r} (expected HH:MM)")
    minutes = int(match.group(1)) * 60 + int(match.group(2))
    if minutes > 1440:
        raise HoursError(f"bad time {text!r}")
    return minutes
