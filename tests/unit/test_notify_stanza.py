"""urn:orgchat:notify:0 payloads: the docs' examples parse, bad values are refused."""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from extensions.notify import stanza as nt

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def doc_payloads() -> list[ET.Element]:
    """Every urn:orgchat:notify:0 element inside the IQs of the docs' notify section."""
    text = DOC.read_text()
    section = text[text.index("## Notifications off XMPP") : text.index("## Ad-hoc commands")]
    found = []
    for block in re.findall(r"```xml\n(.*?)```", section, re.S):
        root = ET.fromstring(f"<root>{block.replace('<!-- example -->', '')}</root>")
        for iq in root:
            found += [el for el in iq if el.tag.startswith(f"{{{nt.NS}}}")]
    return found


def test_every_docs_example_parses() -> None:
    payloads = doc_payloads()
    tags = [el.tag.split("}")[1] for el in payloads]
    assert tags == ["settings", "settings", "settings", "confirm", "subscribe", "unsubscribe"]
    request = nt.parse_settings(payloads[2])
    assert request == nt.SettingsChange(
        "anna@example.org", {"push": False}, ("22:00-07:00", "Europe/Berlin")
    )
    assert nt.parse_confirm(payloads[3]) == "482913"
    sub = nt.parse_subscribe(payloads[4])
    assert sub.endpoint.startswith("https://push.example.net/") and sub.auth
    assert nt.parse_unsubscribe(payloads[5]) == "https://push.example.net/wpush/v2/gAAAA..."


def test_settings_round_trip() -> None:
    view = nt.SettingsView("anna@example.org", True, {"email": True, "push": False}, 2, "BPk")
    el = nt.settings_element(view)
    assert el.find(f"{{{nt.NS}}}email").get("confirmed") == "true"  # type: ignore[union-attr]
    change = nt.parse_settings(el)
    assert change == nt.SettingsChange("anna@example.org", {"email": True, "push": False})


@pytest.mark.parametrize(
    "xml",
    [
        '<settings xmlns="urn:orgchat:notify:0"><email> </email></settings>',
        '<settings xmlns="urn:orgchat:notify:0"><channel name="sms" enabled="true"/></settings>',
        '<settings xmlns="urn:orgchat:notify:0"><channel name="push" enabled="yes"/></settings>',
        '<settings xmlns="urn:orgchat:notify:0"><other/></settings>',
        '<confirm xmlns="urn:orgchat:notify:0" code="12345"/>',
        '<confirm xmlns="urn:orgchat:notify:0" code="abcdef"/>',
        '<subscribe xmlns="urn:orgchat:notify:0" endpoint="https://x" p256dh="k"/>',
        '<confirm xmlns="urn:other" code="123456"/>',
        '<unsubscribe xmlns="urn:orgchat:notify:0"/>',
        '<unsubscribe xmlns="urn:orgchat:notify:0" endpoint=" "/>',
    ],
)
def test_bad_payloads_are_refused(xml: str) -> None:
    el = ET.fromstring(xml)
    parse = {
        "settings": nt.parse_settings,
        "confirm": nt.parse_confirm,
        "subscribe": nt.parse_subscribe,
        "unsubscribe": nt.parse_unsubscribe,
    }[el.tag.split("}")[1]]
    with pytest.raises(nt.PayloadError):
        parse(el)
