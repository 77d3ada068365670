"""Hostile input through the real stack: what a logged-in user, an agent or an
operator could send to break the component. Each gets the right error, and the
component's link to ejabberd stays up (it answers the next message at once,
and its log shows no disconnection)."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from tests.integration.clients import child, is_message, new_id
from tests.integration.conftest import (
    DOMAIN,
    ComponentProcess,
    MakeCompany,
    orgchat,
    register,
)
from tests.integration.mailbox import Mailbox

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def disconnections(component: ComponentProcess) -> int:
    return component.log_path.read_text().count("event=component.disconnected")


async def round_trip(company: Any, customer: Any, agent: Any) -> None:
    text = f"still there? {new_id()}"
    customer.send_xml(f'<message to="{company.jid}" type="chat"><body>{text}</body></message>')
    await agent.inbox.expect(is_message(text))


def iq_error(iq_id: str) -> Any:
    def pred(el: Any) -> bool:
        return bool(el.tag.endswith("}iq") and el.get("id") == iq_id and el.get("type") == "error")

    return pred


async def test_a_deeply_nested_iq_is_refused_and_the_link_stays_up(
    component: ComponentProcess, make_company: MakeCompany, clients: Any
) -> None:
    company = await make_company(agents=1)
    agent = await clients(company.agents[0])
    customer = await clients(await register("deep"))
    before = disconnections(component)
    deep = "<foo xmlns='urn:x:unknown'>" + "<a>" * 2000 + "</a>" * 2000 + "</foo>"
    for to in (DOMAIN, company.jid):
        iq_id = new_id()
        customer.send_xml(f'<iq type="get" to="{to}" id="{iq_id}">{deep}</iq>')
        error = await customer.inbox.expect(iq_error(iq_id))
        assert child(child(error, "error"), "policy-violation", STANZAS) is not None  # type: ignore[arg-type]
    await round_trip(company, customer, agent)
    assert disconnections(component) == before


async def test_a_huge_nickname_reaches_agents_cut_and_the_link_stays_up(
    component: ComponentProcess, make_company: MakeCompany, clients: Any
) -> None:
    company = await make_company(agents=1)
    agent = await clients(company.agents[0])
    customer = await clients(await register("nick"))
    before = disconnections(component)
    # 70,000 ">" are 70 KB from the client; written out escaped they would be
    # 280 KB, more than ejabberd takes from a component in one stanza.
    nick = f'<nick xmlns="http://jabber.org/protocol/nick">\u202e{">" * 70_000}</nick>'
    customer.send_xml(f'<message to="{company.jid}" type="chat"><body>hello</body>{nick}</message>')
    got = await agent.inbox.expect(is_message("hello"))
    shown = child(got, "nick", "http://jabber.org/protocol/nick")
    assert shown is not None and shown.text == ">" * 64
    await round_trip(company, customer, agent)
    assert disconnections(component) == before


async def test_an_agent_must_be_an_account_of_the_service(make_company: MakeCompany) -> None:
    company = await make_company(agents=0)
    other = await make_company(agents=0)
    for address in (other.jid, company.jid, DOMAIN, "someone@elsewhere.example"):
        result = await orgchat("agent", "add", company.slug, address)
        assert result.code == 2, (address, result.out)
        assert "not an account of localhost" in result.err or "expected user@domain" in (
            result.err
        ), result.err


async def test_archive_dates_out_of_range_are_bad_requests(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection
) -> None:
    company = await make_company(agents=1)
    customer = await clients(await register("mam"))
    iq_id = new_id()
    customer.send_xml(
        f'<iq type="set" to="{company.jid}" id="{iq_id}"><query xmlns="urn:xmpp:mam:2">'
        '<x xmlns="jabber:x:data" type="submit">'
        '<field var="FORM_TYPE" type="hidden"><value>urn:xmpp:mam:2</value></field>'
        '<field var="start"><value>0001-01-01T00:00:00+14:00</value></field>'
        "</x></query></iq>"
    )
    error = await customer.inbox.expect(iq_error(iq_id))
    assert child(child(error, "error"), "bad-request", STANZAS) is not None  # type: ignore[arg-type]


async def test_confirmation_emails_cannot_flood_a_mailbox(
    component: ComponentProcess, clients: Any, mailbox: Mailbox
) -> None:
    from tests.integration.test_notify import NOTIFY, iq, mail_address

    victim = mail_address("victim")
    senders = [await clients(await register(f"flood{n}")) for n in range(2)]
    answers = []
    for n in range(5):
        customer = senders[n % 2]
        payload = f'<settings xmlns="{NOTIFY}"><email>{victim}</email></settings>'
        answers.append(await iq(customer, payload))
    kinds = [a.get("type") for a in answers]
    # At most three codes for one address a day, whoever asks.
    assert kinds == ["result", "result", "result", "error", "error"], kinds
    refused = child(answers[-1], "error")
    assert refused is not None and child(refused, "resource-constraint", STANZAS) is not None
    mails = await mailbox.expect(victim, count=3)
    assert len(mails) == 3
    assert all("flood" not in str(m.get_body()) for m in mails)  # the requester is not named
