"""XEP-0313 archive queries with real clients, against the rows in PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any
from xml.etree import ElementTree as ET

import asyncpg
import pytest

from tests.integration.clients import chat, child, is_error, is_message, new_id
from tests.integration.conftest import DOMAIN, MakeCompany, register
from tests.integration.conftest import TestCompany as Company

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


# -- issue 6: the company's whole archive, extended filters, refusals ------------

EXTENDED = "urn:xmpp:mam:2#extended"
FULLTEXT = "{urn:xmpp:fulltext:0}fulltext"


def form(**fields: str | list[str]) -> str:
    """A submitted query form; a list gives a field several values (``ids``)."""
    out = f'<field var="FORM_TYPE" type="hidden"><value>{MAM}</value></field>'
    for var, value in fields.items():
        values = value if isinstance(value, list) else [value]
        name = {"fulltext": FULLTEXT, "after_id": "after-id", "before_id": "before-id"}.get(
            var, var
        )
        out += f'<field var="{name}">' + "".join(f"<value>{v}</value>" for v in values)
        out += "</field>"
    return f'<x xmlns="jabber:x:data" type="submit">{out}</x>'


def rsm(max_: int, after: str | None = None, before: str | None = None) -> str:
    inner = f"<max>{max_}</max>"
    if after is not None:
        inner += f"<after>{after}</after>"
    if before is not None:
        inner += f"<before>{before}</before>" if before else "<before/>"
    return f'<set xmlns="{RSM}">{inner}</set>'


def set_of(answer: ET.Element) -> dict[str, str | None]:
    """first, last and count of the <fin/>'s result set, and its complete flag."""
    done = fin(answer)
    found = child(done, "set", RSM)
    assert found is not None
    values: dict[str, str | None] = {
        name: getattr(child(found, name), "text", None) for name in ("first", "last", "count")
    }
    values["complete"] = done.get("complete")
    return values


async def converse(
    company: Company, agent: Any, customer: Any, lines: list[str], reply: bool = True
) -> str:
    """The customer writes each line, the agent answers each; returns the conversation JID."""
    conv_jid = ""
    for line in lines:
        customer.send_xml(chat(company.jid, line))
        got = await agent.inbox.expect(is_message(line))
        conv_jid = got.get("from", "").split("/")[0]
        if reply:
            agent.send_xml(chat(conv_jid, f"re: {line}"))
            await customer.inbox.expect(is_message(f"re: {line}"))
    return conv_jid


async def test_an_agent_reads_every_conversation_from_the_company_address(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection
) -> None:
    company = await make_company(agents=2, name="Whole Archive")
    mario, luigi = [await clients(account) for account in company.agents]
    anna_account, boris_account = await register("anna"), await register("boris")
    anna, boris = await clients(anna_account), await clients(boris_account)
    anna_conv = await converse(company, mario, anna, ["a1", "a2"])
    boris_conv = await converse(company, mario, boris, ["b1"])
    await converse(company, mario, anna, ["a3"], reply=False)
    rows = await db.fetch(
        "SELECT m.stanza_id, m.body FROM messages m JOIN companies c ON c.id = m.company_id"
        " WHERE c.slug = $1 ORDER BY m.id",
        company.slug,
    )
    bodies = ["a1", "re: a1", "a2", "re: a2", "b1", "re: b1", "a3"]
    assert [r["body"] for r in rows] == bodies
    ids = [r["stanza_id"] for r in rows]

    # Every conversation, as the agents see them, whichever agent asks.
    results, answer = await mam(luigi, company.jid)
    seen = [forwarded(r) for r in results]
    assert [s[0] for s in seen] == ids and [s[3] for s in seen] == bodies
    by_body = {s[3]: s for s in seen}
    assert by_body["a1"][1:3] == (anna_conv, company.agents[1].jid)
    assert by_body["re: a1"][1:3] == (company.agents[0].jid, anna_conv)
    assert by_body["b1"][1:3] == (boris_conv, company.agents[1].jid)
    assert all(r.get("from") == company.jid for r in results)
    text = "".join(ET.tostring(r, encoding="unicode") for r in results)
    assert anna_account.user not in text and boris_account.user not in text
    assert set_of(answer) == {"first": ids[0], "last": ids[-1], "count": "7", "complete": "true"}

    # `with` a conversation address: that conversation only; anyone else: nothing.
    only, answer = await mam(mario, company.jid, form=form(**{"with": boris_conv}))
    assert [forwarded(r)[3] for r in only] == ["b1", "re: b1"]
    assert set_of(answer)["count"] == "2"
    nobody, answer = await mam(mario, company.jid, form=form(**{"with": anna_account.jid}))
    assert nobody == [] and set_of(answer) == {
        "first": None,
        "last": None,
        "count": "0",
        "complete": "true",
    }
    # A customer still reads only their own conversation there.
    own, _ = await mam(boris, company.jid)
    assert [forwarded(r)[3] for r in own] == ["b1", "re: b1"]

    # Paging forward and backward across pages of 3, as clients walk it.
    forward: list[str] = []
    after: str | None = None
    while True:
        page, answer = await mam(mario, company.jid, rsm(3, after=after))
        forward += [forwarded(r)[0] for r in page]
        info = set_of(answer)
        assert info["count"] == "7"
        if info["complete"] == "true":
            break
        assert len(page) == 3
        after = info["last"]
    assert forward == ids
    backward: list[str] = []
    before = ""
    while True:
        page, answer = await mam(mario, company.jid, rsm(3, before=before))
        backward = [forwarded(r)[0] for r in page] + backward
        info = set_of(answer)
        if info["complete"] == "true":
            break
        before = info["first"] or ""
    assert backward == ids
    # A page that ends exactly at the first message is complete.
    page, answer = await mam(mario, company.jid, rsm(2, before=ids[2]))
    assert [forwarded(r)[0] for r in page] == ids[:2] and set_of(answer)["complete"] == "true"
    page, answer = await mam(mario, company.jid, rsm(1, after=ids[-2]))
    assert [forwarded(r)[0] for r in page] == ids[-1:] and set_of(answer)["complete"] == "true"


async def test_extended_filters_full_text_and_metadata(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection
) -> None:
    company = await make_company(agents=1, name="Filter Shop")
    agent = await clients(company.agents[0])
    customer = await clients(await register("customer"))
    lines = [
        "Do you deliver to Akademgorodok?",
        "Winter tyres 205/55 R16",
        "Доставка завтра возможна?",
        "Thanks, see you",
    ]
    conv = await converse(company, agent, customer, lines, reply=False)
    rows = await db.fetch(
        "SELECT m.stanza_id, m.ts FROM messages m JOIN companies c ON c.id = m.company_id"
        " WHERE c.slug = $1 ORDER BY m.id",
        company.slug,
    )
    ids = [r["stanza_id"] for r in rows]

    # The form advertises every field, and disco the features they need.
    info = await customer.plugin["xep_0030"].get_info(jid=company.jid)
    features = info["disco_info"]["features"]
    assert {MAM, EXTENDED, "urn:xmpp:fulltext:0"} <= set(features)
    iq_id = new_id()
    customer.send_xml(f'<iq type="get" to="{company.jid}" id="{iq_id}"><query xmlns="{MAM}"/></iq>')
    fields = await customer.inbox.expect(lambda el: el.get("id") == iq_id)
    text = ET.tostring(fields, encoding="unicode")
    for var in ("before-id", "after-id", "ids", FULLTEXT):
        assert f'var="{var}"' in text

    for who, archive in ((customer, company.jid), (agent, company.jid), (agent, conv)):
        got, answer = await mam(who, archive, form=form(after_id=ids[0], before_id=ids[3]))
        assert [forwarded(r)[0] for r in got] == ids[1:3]
        assert set_of(answer)["count"] == "2" and set_of(answer)["complete"] == "true"
        got, _ = await mam(who, archive, form=form(ids=[ids[3], ids[1]]))
        assert [forwarded(r)[0] for r in got] == [ids[1], ids[3]]
        start, end = rows[1]["ts"].isoformat(), rows[2]["ts"].isoformat()
        got, _ = await mam(who, archive, form=form(start=start, end=end))
        assert [forwarded(r)[0] for r in got] == ids[1:3]
        got, answer = await mam(who, archive, form=form(fulltext="DELIVER akadem"))
        assert [forwarded(r)[3] for r in got] == [lines[0]]
        got, _ = await mam(who, archive, form=form(fulltext="доставка"))
        assert [forwarded(r)[3] for r in got] == [lines[2]]
        got, answer = await mam(who, archive, form=form(fulltext="pizza"))
        assert got == [] and set_of(answer)["count"] == "0"
        # Filters and paging together: the filtered set, paged by RSM.
        got, answer = await mam(who, archive, rsm(1, before=""), form=form(after_id=ids[0]))
        assert [forwarded(r)[0] for r in got] == ids[3:]
        assert set_of(answer) == {
            "first": ids[3],
            "last": ids[3],
            "count": "3",
            "complete": "false",
        }
        # A flipped page: the same messages, newest first.
        got, answer = await mam(who, archive, rsm(2) + f'<flip-page xmlns="{MAM}"/>')
        assert [forwarded(r)[0] for r in got] == [ids[1], ids[0]]
        assert set_of(answer)["first"] == ids[0]
        _, answer = await mam(who, archive, form=form(after_id="no-such-id"))
        assert is_error("item-not-found")(answer)
        _, answer = await mam(who, archive, form=form(ids=[ids[0], "no-such-id"]))
        assert is_error("item-not-found")(answer)

    # Archive metadata (§6): the first and the last message.
    for who, archive in ((customer, company.jid), (agent, conv)):
        iq_id = new_id()
        who.send_xml(f'<iq type="get" to="{archive}" id="{iq_id}"><metadata xmlns="{MAM}"/></iq>')
        answer = await who.inbox.expect(lambda el, i=iq_id: el.get("id") == i)
        meta = child(answer, "metadata", MAM)
        assert meta is not None, ET.tostring(answer)
        assert [child(meta, t).get("id") for t in ("start", "end")] == [ids[0], ids[-1]]  # type: ignore[union-attr]

    _, answer = await mam(customer, company.jid, form=form(**{"{urn:example}x": "1"}))
    assert is_error("feature-not-implemented")(answer)


async def test_nobody_reads_what_is_not_theirs(make_company: MakeCompany, clients: Any) -> None:
    company = await make_company(agents=1, name="Private Shop")
    other = await make_company(agents=1, name="Other Shop")
    agent = await clients(company.agents[0])
    stranger_agent = await clients(other.agents[0])
    customer = await clients(await register("customer"))
    conv = await converse(company, agent, customer, ["secret"])
    stranger = await clients(await register("stranger"))

    # A customer on a company they never wrote to: their own, empty archive.
    for who in (stranger, customer):
        got, answer = await mam(who, other.jid)
        assert got == [] and set_of(answer) == {
            "first": None,
            "last": None,
            "count": "0",
            "complete": "true",
        }
    _, answer = await mam(stranger, company.jid, rsm(5, after="any-id"))
    assert is_error("item-not-found")(answer)
    got, answer = await mam(stranger, company.jid, form=form(fulltext="secret"))
    assert got == [] and set_of(answer)["count"] == "0"

    # Conversation addresses: the company's agents only.
    for who in (stranger, customer, stranger_agent):
        _, answer = await mam(who, conv)
        assert is_error("forbidden")(answer), ET.tostring(answer)
        iq_id = new_id()
        who.send_xml(f'<iq type="get" to="{conv}" id="{iq_id}"><metadata xmlns="{MAM}"/></iq>')
        answer = await who.inbox.expect(lambda el, i=iq_id: el.get("id") == i)
        assert is_error("forbidden")(answer)
    # An agent of another company is a customer on this company's address.
    got, answer = await mam(stranger_agent, company.jid)
    assert got == [] and set_of(answer)["count"] == "0"
    # Nor does `with` open another conversation to an agent.
    got, _ = await mam(stranger_agent, other.jid, form=form(**{"with": conv}))
    assert got == []


async def test_history_is_in_each_users_own_archive_where_clients_look(
    make_company: MakeCompany, clients: Any
) -> None:
    """Conversations, Gajim, Dino, Poezio and converse.js fetch one-to-one
    history from the user's own archive (ejabberd's MAM on their account,
    ``with`` = the contact): there each party finds the conversation as it
    saw it live, the colleague who did not answer included."""
    company = await make_company(agents=2, name="Own Archive Shop")
    mario, luigi = company.agents
    mario_client, luigi_client = await clients(mario), await clients(luigi)
    customer_account = await register("customer")
    customer = await clients(customer_account)
    customer.send_xml(chat(company.jid, "Do you have 205/55 R16?", "q1"))
    got = await mario_client.inbox.expect(is_message("Do you have 205/55 R16?"))
    conv_jid = got.get("from", "").split("/")[0]
    mario_client.send_xml(chat(conv_jid, "Yes, 4 in stock", "a1"))
    await customer.inbox.expect(is_message("Yes, 4 in stock"))
    # Luigi saw Mario's answer live in the same chat, marked with who wrote it.
    marked = f"{mario.user}: Yes, 4 in stock"
    live = await luigi_client.inbox.expect(is_message(marked, frm=conv_jid))

    async def own(client: Any, owner: str, peer: str) -> list[tuple[str, str | None, str | None]]:
        """(from, to, body) of each message in ``owner``'s own archive with ``peer``."""
        results, answer = await mam(client, owner, form=form(**{"with": peer}))
        assert fin(answer).get("complete") == "true"
        return [forwarded(r)[1:] for r in results]

    assert await own(customer, customer_account.jid, company.jid) == [
        (customer_account.jid, company.jid, "Do you have 205/55 R16?"),
        (company.jid, customer_account.jid, "Yes, 4 in stock"),
    ]
    assert await own(mario_client, mario.jid, conv_jid) == [
        (conv_jid, mario.jid, "Do you have 205/55 R16?"),
        (mario.jid, conv_jid, "Yes, 4 in stock"),
    ]
    assert await own(luigi_client, luigi.jid, conv_jid) == [
        (conv_jid, luigi.jid, "Do you have 205/55 R16?"),
        (conv_jid, luigi.jid, marked),
    ]
    # The copy carries the id of the stanza Luigi got live: one message to his client.
    results, _ = await mam(luigi_client, luigi.jid, form=form(**{"with": conv_jid}))
    stored = results[-1].find(f"{{{MAM}}}result/{{{FORWARD}}}forwarded/{{{CLIENT}}}message")
    assert stored is not None and stored.get("id") == live.get("id")
    # Nobody else's archive is touched: the customer's address never reaches the agents'.
    assert await own(customer, customer_account.jid, conv_jid) == []
