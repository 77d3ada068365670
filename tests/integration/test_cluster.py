"""A two-node ejabberd cluster (`make cluster`): customers on node 1, agents on node 2.

Node 2 (orgchat2@localhost, c2s on NODE2_C2S) is joined to node 1; the session's
component process is attached to node 1 (listener 5348) and this module adds one
attached to node 2 (listener 5448), both serving the test domain. ejabberd
hands a stanza to a component on the sender's own node, so a customer's
messages are routed by the process on node 1 and an agent's by the one on
node 2, each delivering to users of the other node: the metrics of both
processes show it. Node 2 is stopped and started again, and made to leave the
cluster and join it again (node 1's Mnesia schema checked each time); each
test leaves node 2 in the cluster, as it found it. `make test` starts node 2
first (`make cluster`); without it these tests fail, never skip.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from tests.integration.clients import chat, is_message
from tests.integration.conftest import (
    CASCADE_TIMERS,
    REPO,
    VAPID_KEY,
    ComponentProcess,
    MakeCompany,
    port_open,
    presence_shows,
    register,
)
from tests.integration.mailbox import Mailbox
from tests.integration.test_desk import desk_row, first_message, say
from tests.integration.test_metrics import sample, scrape
from tests.integration.test_notify import mail_address
from tests.integration.test_requests import (
    conversation_of,
    create,
    has_thread,
    iq,
    notes,
    request_of,
    run_command,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

#: Node 2's ports (ejabberd-config/cluster.yml).
NODE2_C2S = 5322
NODE2_TESTS_LISTENER = 5448
NODE2_API = "http://127.0.0.1:5380/api"


def stack(*args: str) -> None:
    """scripts/stack.sh of this checkout (node 2 is this checkout's)."""
    done = subprocess.run(
        [str(REPO / "scripts" / "stack.sh"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"scripts/stack.sh {' '.join(args)}:\n{done.stdout}{done.stderr}"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def node2(
    component: ComponentProcess, mailbox: Mailbox, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ComponentProcess]:
    """A component process attached to node 2, configured as the session's one."""
    if not (port_open(NODE2_C2S) and port_open(NODE2_TESTS_LISTENER)):
        pytest.fail(
            f"ejabberd node 2 is not running (127.0.0.1:{NODE2_C2S}, :{NODE2_TESTS_LISTENER}):"
            " run `make cluster` (make test does)",
            pytrace=False,
        )
    proc = await ComponentProcess(
        tmp_path_factory.mktemp("node2"),
        "node2",
        ORGCHAT_COMPONENT_PORT=str(NODE2_TESTS_LISTENER),
        ORGCHAT_EJABBERD_API_URL=NODE2_API,
        ORGCHAT_SMTP_PORT=str(mailbox.port),
        ORGCHAT_PUSH_VAPID_PRIVATE_KEY=VAPID_KEY,
        **CASCADE_TIMERS,
    ).start()
    yield proc
    code = await proc.stop()
    assert code == 0, f"node 2's component exited {code}:\n{proc.log_tail()}"


async def until_presence(rds: aioredis.Redis, jid: str, online: bool, wait: float = 10) -> None:
    for _ in range(int(wait / 0.05)):
        if bool(await presence_shows(rds, jid)) == online:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{jid} never {'online' if online else 'offline'}")


async def test_a_customer_on_node_1_and_an_agent_on_node_2_talk_both_ways(
    component: ComponentProcess, node2: ComponentProcess, make_company: MakeCompany, clients: Any
) -> None:
    shop = await make_company(agents=1, name="Cluster Shop")
    agent = await clients(shop.agents[0], port=NODE2_C2S)
    customer = await clients(await register("customer"))
    before = [await scrape(component), await scrape(node2)]

    conv = await first_message(customer, agent, shop, "Hello from node 1")
    agent.send_xml(chat(conv, "Hello from node 2"))
    got = await customer.inbox.expect(is_message("Hello from node 2"))
    assert got.get("from", "").split("/")[0] == shop.jid
    say(customer, shop, "Thanks!")
    await agent.inbox.expect(is_message("Thanks!", frm=conv))

    # Each process routed what was sent on its own node, to a user of the other node.
    after = [await scrape(component), await scrape(node2)]
    customers = 'orgchat_messages_total{kind="customer"}'
    companies = 'orgchat_messages_total{kind="company"}'
    assert sample(after[0], customers) - sample(before[0], customers) >= 2
    assert sample(after[1], companies) - sample(before[1], companies) >= 1
    assert sample(after[1], customers) == sample(before[1], customers)


async def test_presence_pending_delivery_and_the_cascade_across_nodes(
    node2: ComponentProcess,
    make_company: MakeCompany,
    clients: Any,
    rds: aioredis.Redis,
    mailbox: Mailbox,
) -> None:
    address = mail_address("cluster")
    shop = await make_company(agents=1, name="Away Shop", email=address)
    account = shop.agents[0]

    # The agent's presence on node 2 reaches the components.
    agent = await clients(account, port=NODE2_C2S)
    await until_presence(rds, account.jid, online=True)
    await agent.stop()
    await until_presence(rds, account.jid, online=False)

    # Nobody online: the customer on node 1 writes, the company is emailed ...
    customer = await clients(await register("customer"))
    customer.send_xml(chat(shop.jid, "Is anyone there?"))
    [mail] = await mailbox.expect(address)
    assert "Is anyone there?" in mail.get_body(preferencelist=("plain",)).get_content()

    # ... and the agent gets the message when logging in to node 2.
    agent = await clients(account, port=NODE2_C2S, resource="back")
    await agent.inbox.expect(is_message("Is anyone there?"))


async def test_a_request_to_several_companies_answered_from_node_2(
    node2: ComponentProcess, make_company: MakeCompany, clients: Any
) -> None:
    north = await make_company(agents=1, name="Tyres North")
    south = await make_company(agents=1, name="Tyres South")
    agent_n = await clients(north.agents[0], port=NODE2_C2S)
    agent_s = await clients(south.agents[0], port=NODE2_C2S)
    customer = await clients(await register("asker"))

    request = request_of(await iq(customer, create(north.jid, south.jid)))
    rid = request.get("id", "")
    got_n = await agent_n.inbox.expect(has_thread(rid))
    await agent_s.inbox.expect(has_thread(rid))
    agent_n.send_xml(chat(conversation_of(got_n), "Four for 320 EUR."))
    reply = await customer.inbox.expect(has_thread(rid, "Four for 320 EUR."))
    assert reply.get("from", "").split("/")[0] == north.jid


async def test_a_claim_on_node_2_takes_the_customer_from_node_1(
    node2: ComponentProcess, make_company: MakeCompany, clients: Any, db: Any
) -> None:
    shop = await make_company(agents=2, name="Desk Shop")
    mario = await clients(shop.agents[0], lib="aioxmpp", port=NODE2_C2S)
    luigi = await clients(shop.agents[1])  # on node 1
    customer = await clients(await register("customer"))

    conv = await first_message(customer, mario, shop, "Do you repair bikes?")
    await luigi.inbox.expect(is_message("Do you repair bikes?"))
    claimed = await run_command(mario, shop.jid, "claim", {"conversation": [conv]})
    assert "You claimed" in notes(claimed)
    assert await desk_row(db, conv) == ("open", shop.agents[0].jid)
    say(customer, shop, "Mine is a road bike.")
    await mario.inbox.expect(is_message("Mine is a road bike."))
    await luigi.inbox.absent(is_message("Mine is a road bike."))


async def test_with_node_2_stopped_node_1_serves_its_users(
    node2: ComponentProcess, make_company: MakeCompany, clients: Any, rds: aioredis.Redis
) -> None:
    shop = await make_company(agents=2, name="Sturdy Shop")
    on_node1 = await clients(shop.agents[0])
    await clients(shop.agents[1], port=NODE2_C2S)
    customer = await clients(await register("customer"))
    conv = await first_message(customer, on_node1, shop, "Before")

    stack("fault", "node2-stop")
    try:
        assert not port_open(NODE2_C2S)
        say(customer, shop, "During")
        await on_node1.inbox.expect(is_message("During", frm=conv))
        on_node1.send_xml(chat(conv, "Still here"))
        await customer.inbox.expect(is_message("Still here", frm=shop.jid))
    finally:
        stack("fault", "node2-start")  # back in the cluster, as the test found it
    await node2.wait_ready()

    agent = await clients(shop.agents[1], port=NODE2_C2S, resource="again")
    # The components know the agent is back before the customer writes: a
    # message routed before that goes to the agents known online (node 1's).
    for _ in range(200):
        if "again" in await presence_shows(rds, shop.agents[1].jid):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the agent's presence from node 2 never reached the components")
    say(customer, shop, "After")
    await agent.inbox.expect(is_message("After", frm=conv))


def mnesia_nodes() -> list[str]:
    """The nodes of node 1's Mnesia schema: its cluster, running or not."""
    probe = f"probe-{secrets.token_hex(3)}"
    done = subprocess.run(
        [
            "erl",
            "-noshell",
            "-sname",
            probe,
            "-eval",
            'io:format("~s", [string:join([atom_to_list(N) || N <- rpc:call('
            "'orgchat@localhost', mnesia, system_info, [db_nodes])], \" \")]), halt().",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return sorted(done.stdout.split())


async def test_node_2_leaves_the_cluster_cleanly_and_joins_again(
    node2: ComponentProcess, make_company: MakeCompany, clients: Any
) -> None:
    assert mnesia_nodes() == ["orgchat2@localhost", "orgchat@localhost"]
    stack("cluster-down")
    try:
        assert mnesia_nodes() == ["orgchat@localhost"]
        assert not port_open(NODE2_C2S)
        # Made while node 2 is out: the join copies the account and its roster.
        shop = await make_company(agents=1, name="Rejoined Shop")
    finally:
        stack("cluster-up")
    assert mnesia_nodes() == ["orgchat2@localhost", "orgchat@localhost"]
    await node2.wait_ready()

    agent = await clients(shop.agents[0], port=NODE2_C2S)
    customer = await clients(await register("customer"))
    await first_message(customer, agent, shop, "Welcome back")
