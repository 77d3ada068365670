"""Quiet hours: when the cascade holds push and email back."""

from __future__ import annotations

import datetime as dt

import pytest

from component.hours import HoursError, check_quiet_hours, quiet_until

UTC = dt.UTC


def at(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, 28, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("spec", "now", "until"),
    [
        ("22:00-07:00", at(23, 30), dt.datetime(2026, 11, 29, 7, 0, tzinfo=UTC)),
        ("22:00-07:00", at(3, 0), at(7, 0)),
        ("22:00-07:00", at(7, 0), None),
        ("22:00-07:00", at(12, 0), None),
        ("12:00-13:30", at(12, 15), at(13, 30)),
        ("12:00-13:30", at(11, 59), None),
    ],
)
def test_quiet_until(spec: str, now: dt.datetime, until: dt.datetime | None) -> None:
    assert quiet_until(spec, "UTC", now) == until


def test_quiet_hours_in_the_customers_zone() -> None:
    # 21:30 UTC is 22:30 in Berlin (winter): quiet until 07:00 Berlin = 06:00 UTC.
    until = quiet_until("22:00-07:00", "Europe/Berlin", at(21, 30))
    assert until is not None and until.astimezone(UTC) == dt.datetime(2026, 11, 29, 6, tzinfo=UTC)
    assert quiet_until("22:00-07:00", "Nowhere/Atlantis", at(23)) is None  # unreadable: not quiet
    assert quiet_until(None, None, at(23)) is None


@pytest.mark.parametrize("bad", ["22:00", "25:00-07:00", "10:00-10:00", "ab-cd", ""])
def test_bad_quiet_hours(bad: str) -> None:
    with pytest.raises(HoursError):
        check_quiet_hours(bad)
