"""XEP-0050 ad-hoc commands on the real stack: discovery and the responder's errors.

A real client (slixmpp, through ejabberd's c2s) asks the session's `orgchat
run` process. The framework itself is tested without sockets in
tests/unit/test_commands.py; features that add commands test them end to end.
Whatever commands exist, what is listed must be well-formed and runnable.
"""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

import pytest

from tests.integration.clients import chat, child, is_message, local, new_id
from tests.integration.conftest import DOMAIN, RUN, MakeCompany, register

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

COMMANDS = "http://jabber.org/protocol/commands"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
DATA = "jabber:x:data"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


async def iq(client: Any, to: str, payload: str, itype: str = "get") -> ET.Element:
    iid = new_id()
    client.send_xml(f'<iq type="{itype}" to="{to}" id="{iid}">{payload}</iq>')
    return await client.inbox.expect(
        lambda el: local(el.tag) == "iq" and el.get("id") == iid and el.get("type") != "get"
    )


def conditions(reply: ET.Element) -> tuple[str | None, str | None]:
    """(defined condition, XEP-0050 specific condition) of an error reply."""
    assert reply.get("type") == "error", ET.tostring(reply, encoding="unicode")
    err = child(reply, "error")
    assert err is not None
    defined = [local(c.tag) for c in err if c.tag.startswith(f"{{{STANZAS}}}")]
    specific = [local(c.tag) for c in err if c.tag.startswith(f"{{{COMMANDS}}}")]
    defined = [c for c in defined if c != "text"]
    return (defined[0] if defined else None), (specific[0] if specific else None)


async def check_commands_of(client: Any, target: str) -> None:
    """disco#items on the commands node is well-formed; each command describes itself."""
    reply = await iq(client, target, f'<query xmlns="{DISCO_ITEMS}" node="{COMMANDS}"/>')
    assert reply.get("type") == "result", ET.tostring(reply, encoding="unicode")
    assert reply.get("from") == target
    query = child(reply, "query", DISCO_ITEMS)
    assert query is not None and query.get("node") == COMMANDS
    listed = [el for el in query if local(el.tag) == "item"]
    assert len(listed) == len(query)
    info = await iq(client, target, f'<query xmlns="{DISCO_INFO}"/>')
    info_query = child(info, "query", DISCO_INFO)
    assert info_query is not None
    features = {el.get("var") for el in info_query if local(el.tag) == "feature"}
    if listed:
        assert COMMANDS in features
    for item in listed:
        assert item.get("jid") == target and item.get("node") and item.get("name")
        node_info = await iq(
            client, target, f'<query xmlns="{DISCO_INFO}" node="{item.get("node")}"/>'
        )
        node_query = child(node_info, "query", DISCO_INFO)
        assert node_query is not None and node_query.get("node") == item.get("node")
        identity = child(node_query, "identity", DISCO_INFO)
        assert identity is not None
        assert (identity.get("category"), identity.get("type")) == ("automation", "command-node")
        assert identity.get("name") == item.get("name")
        node_features = {el.get("var") for el in node_query if local(el.tag) == "feature"}
        assert {COMMANDS, DATA} <= node_features


async def test_commands_are_discoverable_everywhere(
    make_company: MakeCompany, clients: Any
) -> None:
    company = await make_company(agents=1, name="Command Shop")
    customer = await clients(await register("customer"))
    agent = await clients(company.agents[0])

    await check_commands_of(customer, DOMAIN)
    await check_commands_of(customer, company.jid)
    await check_commands_of(agent, company.jid)

    customer.send_xml(chat(company.jid, "hello, commands"))
    got = await agent.inbox.expect(is_message("hello, commands"))
    conversation = (got.get("from") or "").split("/")[0]
    assert conversation.startswith(company.slug + "+")
    await check_commands_of(agent, conversation)


async def test_command_errors_reach_a_real_client(make_company: MakeCompany, clients: Any) -> None:
    company = await make_company(agents=0, name="Errors Shop")
    customer = await clients(await register("customer"))
    nobody = f"t{RUN}-nobody-{new_id()}@{DOMAIN}"

    for target in (DOMAIN, company.jid):
        execute = f'<command xmlns="{COMMANDS}" node="no-such-command" action="execute"/>'
        reply = await iq(customer, target, execute, "set")
        assert conditions(reply) == ("item-not-found", None)
        assert reply.get("from") == target
        reply = await iq(customer, target, f'<query xmlns="{DISCO_INFO}" node="no-such-command"/>')
        assert conditions(reply) == ("item-not-found", None)
        reply = await iq(customer, target, f'<query xmlns="{DISCO_ITEMS}" node="urn:example:x"/>')
        assert conditions(reply) == ("item-not-found", None)
        # Commands run with IQ set only (XEP-0050 §2.4).
        reply = await iq(customer, target, f'<command xmlns="{COMMANDS}" node="x"/>', "get")
        assert conditions(reply) == ("bad-request", None)
        # An unknown action is malformed whatever the node (XEP-0050 §4.4).
        reply = await iq(
            customer, target, f'<command xmlns="{COMMANDS}" node="x" action="jump"/>', "set"
        )
        assert conditions(reply) == ("bad-request", "malformed-action")

    reply = await iq(customer, nobody, f'<command xmlns="{COMMANDS}" node="x"/>', "set")
    assert conditions(reply) == ("item-not-found", None)
    reply = await iq(customer, nobody, f'<query xmlns="{DISCO_ITEMS}" node="{COMMANDS}"/>')
    assert conditions(reply) == ("item-not-found", None)
