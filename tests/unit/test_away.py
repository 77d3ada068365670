"""The away reply's text: the company's own message, then when it opens, in its time zone."""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo

from component.features.notify.away import away_text
from storage.models import Company

SHOP = Company(1, "shop", "Night Shop", None, "Asia/Novosibirsk", "Mo-Fr 09:00-18:00", None, None)
OPENS = dt.datetime(2026, 11, 30, 9, 0, tzinfo=zoneinfo.ZoneInfo("Asia/Novosibirsk"))


def test_opening_time_in_the_companys_zone_with_its_offset() -> None:
    text = away_text(SHOP, OPENS)
    assert "Night Shop is closed now and opens Mon 30 Nov 09:00 (Asia/Novosibirsk, UTC+07:00)." in (
        text
    )
    assert "Your message was passed on" in text


def test_the_companys_own_message_comes_first() -> None:
    shop = dataclasses.replace(SHOP, away_message="Back on Monday, see you!")
    assert away_text(shop, OPENS).startswith("Back on Monday, see you!\n\n")


def test_in_russian() -> None:
    text = away_text(SHOP, OPENS, "ru")
    assert text.startswith("Компания «Night Shop» сейчас закрыта и откроется ")
    assert "(Asia/Novosibirsk, UTC+07:00)" in text


def test_never_opens() -> None:
    assert "no opening hours published" in away_text(SHOP, None)
