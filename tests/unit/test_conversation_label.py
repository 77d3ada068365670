"""The label of a customer without a nickname is the same everywhere agents see it."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import pytest
from slixmpp.stanza import Iq

from component.addressing import display_name
from component.directory import Directory
from component.features.directory.iq import DirectoryIqHandlers
from component.features.directory.response_times import ResponseTimes
from component.routing.iq import IqHandlers
from component.routing.outbox import Outbox
from component.search import DirectorySearch
from tests.unit.fakes import FakeConversations, FakeDirectorySearchStore, FakeDirectoryStore
from tests.unit.test_directory_iq import FakeResponseTimes

pytestmark = pytest.mark.asyncio

DOMAIN = "biz.localhost"


class _Stream:
    default_ns = "jabber:component:accept"


def _iq(to: str, payload: str) -> Iq:
    return Iq(
        _Stream(),
        ET.fromstring(
            f'<iq xmlns="jabber:component:accept" type="get" id="q1" '
            f'from="mario@localhost/desk" to="{to}">{payload}</iq>'
        ),
    )


@pytest.mark.parametrize("nick", [None, "Anna K."])
async def test_vcard_and_disco_name_match_the_messages_label(
    nick: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[Iq] = []
    monkeypatch.setattr(Iq, "send", lambda self, *args, **kwargs: sent.append(self))
    store = FakeDirectoryStore()
    store.add("pizza", "Pizza Napoli", ["mario@localhost"])
    directory = Directory(store)
    await directory.reload(None)
    conversations = FakeConversations()
    company = directory.company("pizza")
    assert company is not None
    [conv] = await conversations.open_many([(company.id, "alice@localhost", nick)])
    search = DirectorySearch(FakeDirectorySearchStore(store.companies), directory)
    handlers = IqHandlers(
        domain=DOMAIN, directory=directory, search=search, conversations=conversations
    )
    cards = DirectoryIqHandlers(
        domain=DOMAIN,
        directory=directory,
        search=search,
        conversations=conversations,
        response_times=ResponseTimes(FakeResponseTimes()),
        outbox=Outbox(lambda data: None),
    )
    to = f"pizza+{conv.token}@{DOMAIN}"
    label = display_name(conv)

    await cards.vcard(_iq(to, '<vCard xmlns="vcard-temp"/>'))
    await handlers.disco_info(_iq(to, '<query xmlns="http://jabber.org/protocol/disco#info"/>'))
    vcard, info = (reply.xml for reply in sent)
    assert vcard.findtext("{vcard-temp}vCard/{vcard-temp}FN") == label
    assert vcard.findtext("{vcard-temp}vCard/{vcard-temp}NICKNAME") == label
    identity = info.find(
        "{http://jabber.org/protocol/disco#info}query/{http://jabber.org/protocol/disco#info}identity"
    )
    assert identity is not None and identity.get("name") == label
    assert "alice" not in ET.tostring(vcard, encoding="unicode")
