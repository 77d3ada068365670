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
    VHOST,
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
        assert f"not an account of {VHOST}" in result.err or "expected user@domain" in (
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


# -- every command, every field ----------------------------------------------------

COMMANDS = "http://jabber.org/protocol/commands"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
DATA = "jabber:x:data"
#: What a hostile user types into a field: markup, bidi overrides, emoji, line
#: breaks. Sent once, far longer than any field keeps (every field at once
#: stays under ejabberd's 256 KB per stanza), or as 200 values per field.
HOSTILE = "<b>&amp;</b>\"'\u202e\u200b\U0001f600\r\n]]>"
LONG = (HOSTILE * 300)[:5000]
#: Crashes of a handler, a batch or a job: none may appear while they run.
CRASHES = ("event=handler.failed", "event=routing.batch_failed", "event=notify.job_crashed")


async def answer(client: Any, to: str, payload: str, itype: str = "set") -> Any:
    iq_id = new_id()
    client.send_xml(f'<iq type="{itype}" to="{to}" id="{iq_id}">{payload}</iq>')
    return await client.inbox.expect(
        lambda el: el.tag.endswith("}iq") and el.get("id") == iq_id and el.get("type") != "get",
        wait=20,
    )


def condition(reply: Any) -> str | None:
    error = child(reply, "error")
    if error is None:
        return None
    names = [c.tag.split("}")[1] for c in error if c.tag.startswith(f"{{{STANZAS}}}")]
    return next((n for n in names if n != "text"), None)


def hostile_submission(form: Any, values: int) -> str:
    """A submission of ``form`` with every field given ``values`` hostile values
    (one: a very long one)."""
    fields = []
    for field in form:
        var = field.get("var")
        if not field.tag.endswith("}field") or not var or field.get("type") == "fixed":
            continue
        text = LONG if values == 1 else HOSTILE
        escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        body = f"<value>{escaped}</value>" * values
        fields.append(f'<field var="{var.replace(chr(34), "&quot;")}">{body}</field>')
    return f'<x xmlns="{DATA}" type="submit">{"".join(fields)}</x>'


async def attack_every_command(client: Any, target: str) -> int:
    """Run each command listed at ``target``, answering every stage with hostile
    values; each answer is a result or a proper error, never a crash. Returns
    how many stages were attacked."""
    items = f'<query xmlns="{DISCO_ITEMS}" node="{COMMANDS}"/>'
    listing = await answer(client, target, items, "get")
    query = child(listing, "query", DISCO_ITEMS)
    assert query is not None, listing
    attacked = 0
    for item in query:
        node = item.get("node")
        for values in (1, 200):
            reply = await answer(
                client, target, f'<command xmlns="{COMMANDS}" node="{node}" action="execute"/>'
            )
            for _stage in range(4):  # the longest command has three stages
                command = child(reply, "command", COMMANDS)
                form = None if command is None else child(command, "x", DATA)
                if reply.get("type") == "error" or form is None or command is None:
                    break
                if command.get("status") != "executing":
                    break
                session = command.get("sessionid")
                reply = await answer(
                    client,
                    target,
                    f'<command xmlns="{COMMANDS}" node="{node}" sessionid="{session}"'
                    f' action="execute">{hostile_submission(form, values)}</command>',
                )
                attacked += 1
                assert condition(reply) != "internal-server-error", (node, reply)
    return attacked


async def test_every_command_and_every_field_take_hostile_values(
    component: ComponentProcess, make_company: MakeCompany, clients: Any
) -> None:
    company = await make_company(agents=1)
    admin = await register("admin")
    result = await orgchat("agent", "add", company.slug, admin.jid, "--admin")
    assert result.code == 0, result.err
    agent = await clients(company.agents[0])
    boss = await clients(admin)
    customer = await clients(await register("hostile"))
    customer.send_xml(f'<message to="{company.jid}" type="chat"><body>hi</body></message>')
    got = await agent.inbox.expect(is_message("hi"))
    conversation = (got.get("from") or "").split("/")[0]
    log_before = component.log_path.read_text()
    before = disconnections(component)

    attacked = 0
    for client, target in (
        (customer, DOMAIN),
        (customer, company.jid),
        (boss, company.jid),
        (agent, conversation),
    ):
        attacked += await attack_every_command(client, target)
    assert attacked >= 10  # the forms were really reached, not just listed

    await round_trip(company, customer, agent)
    assert disconnections(component) == before
    new_log = component.log_path.read_text()[len(log_before) :]
    assert not [line for line in new_log.splitlines() if any(c in line for c in CRASHES)]


async def test_every_iq_namespace_takes_hostile_payloads(
    component: ComponentProcess, make_company: MakeCompany, clients: Any
) -> None:
    """Every namespace the component advertises, asked with get and set and a
    payload that has hostile attributes and thousands of children: each gets
    an answer, none crashes a handler."""
    company = await make_company(agents=1)
    agent = await clients(company.agents[0])
    customer = await clients(await register("hostile-iq"))
    log_before = component.log_path.read_text()
    before = disconnections(component)
    escaped = LONG.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
    children = f'<item jid="{escaped}" node="{escaped}" with="{escaped}" start="x"/>' * 3
    many = "<field var='x'><value>v</value></field>" * 3000
    asked = 0
    for target in (DOMAIN, company.jid):
        info = await answer(customer, target, f'<query xmlns="{DISCO_INFO}"/>', "get")
        query = child(info, "query", DISCO_INFO)
        assert query is not None
        namespaces = {f.get("var") for f in query if f.tag.endswith("}feature")}
        assert len(namespaces) >= 5
        for ns in sorted(n for n in namespaces if n):
            for itype in ("get", "set"):
                for payload in (
                    f'<query xmlns="{ns}" node="{escaped}" queryid="{escaped}">{children}</query>',
                    f'<x xmlns="{ns}"><x xmlns="{DATA}" type="submit">{many}</x></x>',
                ):
                    reply = await answer(customer, target, payload, itype)
                    asked += 1
                    assert condition(reply) != "internal-server-error", (ns, itype, reply)
    assert asked >= 40
    await round_trip(company, customer, agent)
    assert disconnections(component) == before
    new_log = component.log_path.read_text()[len(log_before) :]
    assert not [line for line in new_log.splitlines() if any(c in line for c in CRASHES)]


async def test_the_component_runs_on_libuvs_event_loop(component: ComponentProcess) -> None:
    """`orgchat run` takes component.event_loop's default, uvloop (docs/config.md)."""
    assert "event=component.starting" in component.log_path.read_text()
    assert "event_loop=uvloop" in component.log_path.read_text()
