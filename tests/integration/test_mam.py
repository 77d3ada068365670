"""XEP-0313 archive queries with real clients, against the rows in PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any
from xml.etree import ElementTree as ET

import asyncpg
import pytest

from tests.integration.clients import chat, child, is_error, is_message, new_id
from tests.integration.conftest import DOMAIN, MakeCompany, register

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

MAM = "urn:xmpp:mam:2"
RSM = "http://jabber.org/protocol/rsm"
FORWARD = "urn:xmpp:forward:0"
CLIENT = "jabber:client"


async def mam(
    client: Any, to: str, rsm: str = "", form: str = ""
) -> tuple[list[ET.Element], ET.Element]:
    """Run one query: (the forwarded messages, the IQ result or error)."""
    qid, iq_id = new_id(), new_id()
    client.send_xml(
        f'<iq type="set" to="{to}" id="{iq_id}"><query xmlns="{MAM}" queryid="{qid}">'
        f"{form}{rsm}</query></iq>"
    )
    answer = await client.inbox.expect(lambda el: el.get("id") == iq_id)
    results = []
    while True:
        found = [
            el
            for el in client.inbox.items
            if (r := child(el, "result", MAM)) is not None and r.get("queryid") == qid
        ]
        if not found:
            break
        for el in found:
            client.inbox.items.remove(el)
        results += found
    return results, answer


def forwarded(result: ET.Element) -> tuple[str, str, str | None, str | None]:
    """(archive id, from, to, body) of one result message."""
    res = child(result, "result", MAM)
    assert res is not None
    fwd = child(res, "forwarded", FORWARD)
    assert fwd is not None and child(fwd, "delay", "urn:xmpp:delay") is not None
    msg = child(fwd, "message", CLIENT)
    assert msg is not None
    body = child(msg, "body", CLIENT)
    return (
        res.get("id", ""),
        msg.get("from", ""),
        msg.get("to"),
        None if body is None else body.text,
    )


def fin(answer: ET.Element) -> ET.Element:
    assert answer.get("type") == "result", ET.tostring(answer)
    found = child(answer, "fin", MAM)
    assert found is not None
    return found


async def test_both_sides_read_the_conversation_as_they_saw_it(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection
) -> None:
    company = await make_company(agents=1, name="Archive Shop")
    agent = await clients(company.agents[0])
    customer_account = await register("customer")
    customer = await clients(customer_account)
    conv_jid = ""
    for n in range(3):
        customer.send_xml(chat(company.jid, f"question {n}", f"q{n}"))
        got = await agent.inbox.expect(is_message(f"question {n}"))
        conv_jid = got.get("from", "").split("/")[0]
        if n < 2:
            agent.send_xml(chat(conv_jid, f"answer {n}", f"a{n}"))
            await customer.inbox.expect(is_message(f"answer {n}"))
    rows = await db.fetch(
        "SELECT m.stanza_id, m.body FROM messages m"
        " JOIN conversations c ON c.id = m.conversation_id"
        " WHERE c.customer_jid = $1 ORDER BY m.id",
        customer_account.jid,
    )
    bodies = ["question 0", "answer 0", "question 1", "answer 1", "question 2"]
    assert [r["body"] for r in rows] == bodies

    # The customer, on the company's address.
    results, answer = await mam(customer, company.jid)
    seen = [forwarded(r) for r in results]
    assert [s[0] for s in seen] == [r["stanza_id"] for r in rows]
    assert [s[3] for s in seen] == bodies
    assert {s[1] for s in seen[0::2]} == {customer_account.jid}
    assert {s[1] for s in seen[1::2]} == {company.jid}
    assert all(r.get("from") == company.jid for r in results)
    done = fin(answer)
    assert done.get("complete") == "true"
    rsm = child(done, "set", RSM)
    assert rsm is not None and [child(rsm, n).text for n in ("first", "last", "count")] == [  # type: ignore[union-attr]
        rows[0]["stanza_id"],
        rows[-1]["stanza_id"],
        "5",
    ]

    # The agent, on the conversation's address: the customer never appears.
    results, answer = await mam(agent, conv_jid)
    seen = [forwarded(r) for r in results]
    assert [s[3] for s in seen] == bodies
    assert {s[1] for s in seen[0::2]} == {conv_jid}
    assert {s[1] for s in seen[1::2]} == {company.agents[0].jid}
    assert customer_account.user not in "".join(ET.tostring(r, encoding="unicode") for r in results)
    assert fin(answer).get("complete") == "true"


async def test_paging_filters_and_refusals(make_company: MakeCompany, clients: Any) -> None:
    company = await make_company(agents=1, name="Paged Shop")
    agent = await clients(company.agents[0])
    customer = await clients(await register("customer"))
    conv_jid = ""
    for n in range(5):
        customer.send_xml(chat(company.jid, f"m{n}", f"m{n}"))
        got = await agent.inbox.expect(is_message(f"m{n}"))
        conv_jid = got.get("from", "").split("/")[0]

    first, answer = await mam(customer, company.jid, f'<set xmlns="{RSM}"><max>2</max></set>')
    assert [forwarded(r)[3] for r in first] == ["m0", "m1"]
    done = fin(answer)
    assert done.get("complete") == "false"
    last = child(child(done, "set", RSM), "last")  # type: ignore[arg-type]
    assert last is not None
    after = f'<set xmlns="{RSM}"><max>2</max><after>{last.text}</after></set>'
    second, _ = await mam(customer, company.jid, after)
    assert [forwarded(r)[3] for r in second] == ["m2", "m3"]
    tail, answer = await mam(
        customer, company.jid, f'<set xmlns="{RSM}"><max>2</max><before/></set>'
    )
    assert [forwarded(r)[3] for r in tail] == ["m3", "m4"]
    assert fin(answer).get("complete") == "false"

    def form(**fields: str) -> str:
        values = "".join(f'<field var="{k}"><value>{v}</value></field>' for k, v in fields.items())
        hidden = f'<field var="FORM_TYPE" type="hidden"><value>{MAM}</value></field>'
        return f'<x xmlns="jabber:x:data" type="submit">{hidden}{values}</x>'

    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    none, answer = await mam(customer, company.jid, form=form(start=future))
    assert none == [] and fin(answer).get("complete") == "true"
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    every, _ = await mam(customer, company.jid, form=form(start=past))
    assert len(every) == 5

    # Refusals: wrong archive, wrong people, bad input.
    outsider = await clients(await register("outsider"))
    _, answer = await mam(outsider, conv_jid)
    assert is_error("forbidden")(answer)
    mine, answer = await mam(outsider, company.jid)  # their own (empty) conversation
    assert mine == [] and fin(answer).get("complete") == "true"
    _, answer = await mam(customer, company.jid, f'<set xmlns="{RSM}"><after>nope</after></set>')
    assert is_error("item-not-found")(answer)
    _, answer = await mam(customer, company.jid, form=form(start="yesterday"))
    assert is_error("bad-request")(answer)
    _, answer = await mam(customer, f"no-such-shop@{DOMAIN}")
    assert is_error("item-not-found")(answer)


async def test_the_archive_is_advertised_and_describes_its_form(
    make_company: MakeCompany, clients: Any
) -> None:
    company = await make_company(agents=0, name="Form Shop")
    customer = await clients(await register("customer"))
    info = await customer.plugin["xep_0030"].get_info(jid=company.jid)
    assert MAM in info["disco_info"]["features"]
    iq_id = new_id()
    customer.send_xml(f'<iq type="get" to="{company.jid}" id="{iq_id}"><query xmlns="{MAM}"/></iq>')
    answer = await customer.inbox.expect(lambda el: el.get("id") == iq_id)
    assert answer.get("type") == "result"
    text = ET.tostring(answer, encoding="unicode")
    for var in ("FORM_TYPE", "start", "end", "with"):
        assert f'var="{var}"' in text
