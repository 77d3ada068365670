"""Archive access without sockets: the MAM query form, the conversation cache's
eviction and the CLI's retention argument."""

from __future__ import annotations

import argparse
import asyncio
from xml.etree import ElementTree as ET

import pytest
from slixmpp.exceptions import XMPPError

from component.features.directory.cli import retention_days
from component.features.history import mam
from component.routing.conversation_cache import ConversationCache
from storage.models import Conversation

MAM = "urn:xmpp:mam:2"


def query(*fields: tuple[str, list[str]]) -> ET.Element:
    values = "".join(
        f'<field var="{var}">' + "".join(f"<value>{v}</value>" for v in vals) + "</field>"
        for var, vals in fields
    )
    return ET.fromstring(
        f'<query xmlns="{MAM}"><x xmlns="jabber:x:data" type="submit">'
        f'<field var="FORM_TYPE" type="hidden"><value>{MAM}</value></field>{values}</x></query>'
    )


def test_the_form_gives_every_filter() -> None:
    filters = mam._form(
        query(
            ("with", ["shop+abcdefghij@biz.localhost/desk"]),
            ("start", ["2026-01-01T00:00:00Z"]),
            ("end", ["2026-01-02T00:00:00"]),
            ("after-id", ["a"]),
            ("before-id", ["b"]),
            ("ids", ["x", "y", "x"]),
            ("{urn:xmpp:fulltext:0}fulltext", ["  deliver tomorrow "]),
        )
    )
    assert filters.with_ == "shop+abcdefghij@biz.localhost"
    assert filters.start is not None and filters.start.isoformat() == "2026-01-01T00:00:00+00:00"
    assert filters.end is not None and filters.end.tzinfo is not None
    assert (filters.after_id, filters.before_id, filters.ids) == ("a", "b", ("x", "y"))
    assert filters.text == "deliver tomorrow"
    assert mam._form(ET.fromstring(f'<query xmlns="{MAM}"/>')) == mam.Filters()


@pytest.mark.parametrize(
    ("fields", "condition"),
    [
        ((("{urn:example}mood", ["x"]),), "feature-not-implemented"),
        ((("start", ["yesterday"]),), "bad-request"),
        ((("ids", [str(n) for n in range(mam.MAX_IDS + 1)]),), "policy-violation"),
    ],
)
def test_bad_forms_are_refused(fields: tuple[tuple[str, list[str]], ...], condition: str) -> None:
    with pytest.raises(XMPPError) as caught:
        mam._form(query(*fields))
    assert caught.value.condition == condition


def test_paging_requests() -> None:
    def rsm(inner: str) -> ET.Element:
        return ET.fromstring(
            f'<query xmlns="{MAM}"><set xmlns="http://jabber.org/protocol/rsm">{inner}</set></query>'
        )

    assert mam._rsm(ET.fromstring(f'<query xmlns="{MAM}"/>')) == (None, None, mam.DEFAULT_PAGE)
    assert mam._rsm(rsm("<max>5000</max><before/>")) == (None, "", mam.MAX_PAGE)
    assert mam._rsm(rsm("<max>2</max><after>s1</after>")) == ("s1", None, 2)
    with pytest.raises(XMPPError):
        mam._rsm(rsm("<max>many</max>"))


def test_evicting_a_customer_forgets_only_their_conversations() -> None:
    cache = ConversationCache()
    anna = [Conversation(n, n, "anna@localhost", f"tok{n}aaaaaa", None) for n in (1, 2)]
    boris = Conversation(3, 1, "boris@localhost", "tok3aaaaaa", None)
    for conv in (*anna, boris):
        cache.put(conv)
    asyncio.run(cache.evict("anna@localhost"))
    assert len(cache) == 1
    assert cache.by_pair(1, "anna@localhost") is None and cache.of_company(1, "tok1aaaaaa") is None
    assert cache.of_company(1, "tok3aaaaaa") == boris and cache.of_company(2, "tok3aaaaaa") is None
    assert cache.by_id(3) == boris
    asyncio.run(cache.evict(None))
    assert len(cache) == 0


def test_retention_days_is_a_positive_whole_number() -> None:
    assert retention_days("30") == 30
    for bad in ("0", "-1", "1.5", "forever", "36501"):
        with pytest.raises(argparse.ArgumentTypeError):
            retention_days(bad)
