"""The away reply's text: the company's own message, when it opens, in both time zones."""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo

from component.features.notify.away import away_text
from storage.models import Company

SHOP = Company(1, "shop", "Night Shop", None, "Asia/Novosibirsk", "Mo-Fr 09:00-18:00", None, None)
OPENS = dt.datetime(2026, 11, 30, 9, 0, tzinfo=zoneinfo.ZoneInfo("Asia/Novosibirsk"))


def test_opening_time_in_both_zones() -> None:
    text = away_text(SHOP, OPENS, dt.timedelta(hours=1))
    assert "opens Mon 30 Nov 09:00 (Asia/Novosibirsk, UTC+07:00)" in text
    assert "Mon 30 Nov 03:00 your time" in text


def test_unknown_customer_zone_is_utc_and_own_message_first() -> None:
    shop = dataclasses.replace(SHOP, away_message="Back on Monday, see you!")
    text = away_text(shop, OPENS, None)
    assert text.startswith("Back on Monday, see you!\n\n")
    assert "Mon 30 Nov 02:00 UTC" in text


def test_never_opens() -> None:
    assert "no opening hours published" in away_text(SHOP, None, None)
