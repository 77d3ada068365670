# ruff: noqa: RUF001  (Russian texts are intended)
"""Texts in the person's language on the real stack: the ``xml:lang`` of a
client's stanza picks Russian or English (component/i18n.py).

A real client (slixmpp, through ejabberd's c2s) runs commands, lists them,
gets an error and an away reply, once with ``xml:lang="ru"`` and once with
``xml:lang="en"``; the mechanism itself is tested in tests/unit/test_i18n.py.
"""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

import pytest

from tests.integration.clients import child, local, new_id
from tests.integration.conftest import DOMAIN, MakeCompany, register
from tests.integration.test_requests import day_after_tomorrow

pytestmark = [
    pytest.mark.integration,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.usefixtures("component"),  # the session's `orgchat run` answers, not ejabberd
]

COMMANDS = "http://jabber.org/protocol/commands"
DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
DATA = "jabber:x:data"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
BODY = "{jabber:client}body"


async def iq(client: Any, to: str, payload: str, lang: str, itype: str = "set") -> ET.Element:
    iid = new_id()
    client.send_xml(f'<iq type="{itype}" to="{to}" id="{iid}" xml:lang="{lang}">{payload}</iq>')
    return await client.inbox.expect(
        lambda el: local(el.tag) == "iq" and el.get("id") == iid and el.get("type") != itype
    )


def command_of(reply: ET.Element) -> ET.Element:
    assert reply.get("type") == "result", ET.tostring(reply, encoding="unicode")
    command = child(reply, "command", COMMANDS)
    assert command is not None
    return command


def labels(command: ET.Element) -> dict[str, str]:
    """var -> label of the fields of the command's form, and its title as ``title``."""
    form = child(command, "x", DATA)
    assert form is not None
    found = {f.get("var") or "": f.get("label") or "" for f in form if local(f.tag) == "field"}
    found["title"] = form.findtext(f"{{{DATA}}}title") or ""
    return found


def note(command: ET.Element) -> str:
    return command.findtext(f"{{{COMMANDS}}}note") or ""


async def run_settings(client: Any, lang: str) -> tuple[dict[str, str], str]:
    """Run "Notification settings" in ``lang``: (the form's labels, the final note)."""
    start = f'<command xmlns="{COMMANDS}" node="notifications" action="execute"/>'
    first = command_of(await iq(client, DOMAIN, start, lang))
    form = child(first, "x", DATA)
    assert form is not None
    # Send back the hidden fields (the signed stage), keep every other default.
    fields = "".join(
        f'<field var="{f.get("var")}">'
        + "".join(f"<value>{v.text or ''}</value>" for v in f if local(v.tag) == "value")
        + "</field>"
        for f in form
        if local(f.tag) == "field" and f.get("type") in ("hidden", "boolean")
    )
    submit = (
        f'<command xmlns="{COMMANDS}" node="notifications" action="complete"'
        f' sessionid="{first.get("sessionid")}"><x xmlns="{DATA}" type="submit">{fields}</x>'
        "</command>"
    )
    done = command_of(await iq(client, DOMAIN, submit, lang))
    assert done.get("status") == "completed"
    return labels(first), note(done)


async def test_a_command_speaks_the_language_of_the_request(clients: Any) -> None:
    customer = await clients(await register("lang"))

    ru, ru_note = await run_settings(customer, "ru-RU")
    assert ru["title"] == "Настройки уведомлений"
    assert ru["email"] == "Адрес почты"
    assert ru["quiet-hours"] == "Тихие часы"
    assert ru_note == "Настройки сохранены."

    en, en_note = await run_settings(customer, "en")
    assert en["title"] == "Notification settings"
    assert en["email"] == "Email address"
    assert en["quiet-hours"] == "Quiet hours"
    assert en_note == "Settings saved."

    # Another language: English.
    de, _note = await run_settings(customer, "de")
    assert de["title"] == "Notification settings"


async def test_notes_and_the_command_list_in_russian(clients: Any) -> None:
    customer = await clients(await register("lang"))
    start = f'<command xmlns="{COMMANDS}" node="requests" action="execute"/>'
    assert note(command_of(await iq(customer, DOMAIN, start, "ru"))) == (
        "У вас пока нет запросов. Попробуйте «Спросить несколько компаний»."
    )
    assert note(command_of(await iq(customer, DOMAIN, start, "en"))) == (
        "You have no requests yet. Try “Ask several companies”."
    )

    names = {}
    for lang in ("ru", "en"):
        query = f'<query xmlns="{DISCO_ITEMS}" node="{COMMANDS}"/>'
        reply = await iq(customer, DOMAIN, query, lang, "get")
        items = child(reply, "query", DISCO_ITEMS)
        assert items is not None
        names[lang] = {el.get("node"): el.get("name") for el in items}
    assert names["ru"]["ask"] == "Спросить несколько компаний"
    assert names["en"]["ask"] == "Ask several companies"


async def test_errors_in_russian(clients: Any) -> None:
    customer = await clients(await register("lang"))
    execute = f'<command xmlns="{COMMANDS}" node="no-such-command" action="execute"/>'
    for lang, text in (("ru", "Нет такой команды"), ("en", "No such command")):
        reply = await iq(customer, DOMAIN, execute, lang)
        assert reply.get("type") == "error"
        error = child(reply, "error")
        assert error is not None
        assert error.findtext(f"{{{STANZAS}}}text") == text


async def test_the_away_reply_speaks_the_language_of_the_message(
    make_company: MakeCompany, clients: Any
) -> None:
    company = await make_company(
        agents=1, name="Ночной магазин", hours=f"{day_after_tomorrow()} 09:00-18:00",
        timezone="Europe/Moscow",
    )  # fmt: skip
    customer = await clients(await register("lang"))
    customer.send_xml(
        f'<message to="{company.jid}" type="chat" id="{new_id()}" xml:lang="ru">'
        "<body>Вы работаете?</body></message>"
    )
    away = await customer.inbox.expect(lambda el: "закрыта" in (el.findtext(BODY) or ""))
    body = away.findtext(BODY) or ""
    assert body.startswith("Компания «Ночной магазин» сейчас закрыта и откроется ")
    assert "Europe/Moscow" in body and "09:00" in body
    assert "Ваше сообщение передано" in body
