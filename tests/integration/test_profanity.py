"""The service through Profanity, a real terminal client nobody here wrote (issue 13).

Profanity 0.13.1 (Debian 12) runs in tmux and is typed into as a person would;
each test reads what that person reads on the screen. The other side of each
conversation is a slixmpp test client, checked stanza by stanza as elsewhere.

* a customer writes to a company with ``/msg`` and sees the agent's answer
  come from the company address;
* an agent sees a customer's message arrive from a conversation address and
  answers it with ``/msg``;
* a customer asks several companies and closes the request through
  Profanity's XEP-0050 / XEP-0004 form windows (``/cmd``, ``/fieldN``,
  ``/form submit``), and Profanity is still running afterwards (it crashes on
  some forms, e.g. an option with an empty value).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from tests.integration.clients import chat, is_message, new_id, text_of
from tests.integration.conftest import (
    DOMAIN,
    RUN,
    Account,
    MakeCompany,
    presence_shows,
    register,
    roster_of,
    wait_in_roster,
)
from tests.integration.profanity import Profanity, ProfanityDied

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

RECEIPTS = "urn:xmpp:receipts"
#: A line of a window: "12:34:56 - text" (or "!" for command output).
LINE = r"^\d\d:\d\d:\d\d [-!] "
#: An empty line of a window, which ends a block of lines.
BLANK = r"^\d\d:\d\d:\d\d [-!]$"

StartProfanity = Callable[[Account], Awaitable[Profanity]]


@pytest_asyncio.fixture(loop_scope="session")
async def profanity(tmp_path: Path) -> AsyncIterator[StartProfanity]:
    """Start Profanity instances logged in as the given accounts; all stopped at the end."""
    started: list[Profanity] = []

    async def start(account: Account) -> Profanity:
        prof = Profanity(tmp_path, f"prof-{account.user}")
        started.append(prof)
        await prof.start()
        await prof.connect(account.jid, account.password)
        return prof

    yield start
    for prof in started:
        with contextlib.suppress(Exception):
            await prof.stop()


async def wait_online(rds: aioredis.Redis, jid: str) -> str:
    """The resource under which the component sees ``jid`` online (Redis), waiting for it."""
    for _ in range(100):
        shows = await presence_shows(rds, jid)
        if shows:
            return next(iter(shows))
        await asyncio.sleep(0.1)
    raise AssertionError(f"the component never saw {jid} online")


async def test_a_crashed_profanity_is_noticed(tmp_path: Path) -> None:
    """The "no crash" checks below can fail: a Profanity that dies is seen at once."""
    prof = Profanity(tmp_path, f"prof-crash-{RUN}")
    try:
        await prof.start()
        assert await prof.alive()
        assert prof.pid is not None
        os.kill(prof.pid, signal.SIGSEGV)  # as its autocomplete does on an empty option
        with pytest.raises(ProfanityDied, match="killed by a signal"):
            await prof.wait_for("text that never comes", timeout=30)
        assert not await prof.alive()
    finally:
        await prof.stop()


async def test_customer_in_profanity_writes_to_a_company(
    make_company: MakeCompany, clients: Any, profanity: StartProfanity
) -> None:
    company = await make_company(agents=1, name="Profanity Pizza")
    agent = await clients(company.agents[0])
    customer_account = await register("pcustomer")
    prof = await profanity(customer_account)

    question = f"Table for two tonight? {RUN}"
    await prof.type(f"/msg {company.jid} {question}")
    # Profanity opens the chat window and shows the line as sent.
    await prof.wait_for(re.compile(rf"{LINE}me: {re.escape(question)}$", re.M))

    got = await agent.inbox.expect(is_message(question))
    conversation = (got.get("from") or "").split("/")[0]
    assert conversation.startswith(company.slug + "+") and conversation.endswith("@" + DOMAIN)

    answer = f"Yes, at 8 pm. {RUN}"
    agent.send_xml(chat(conversation, answer))
    # The answer is in the window /msg opened for the company's address:
    # Profanity files messages by sender's bare address, another sender would
    # get a window of its own. The component put the company in the
    # customer's roster, so Profanity names it in the line and the title bar.
    shown = await prof.wait_for(re.compile(rf"{LINE}(.+?): {re.escape(answer)}$", re.M))
    assert shown.group(1) == company.name
    screen = await prof.screen()
    assert screen.splitlines()[0].startswith(f" {company.name} [")
    windows = screen.splitlines()[-1].split()[-1]  # the status bar's list: "[1]-2-"
    assert re.findall(r"\d+", windows) == ["1", "2"], windows
    # The person sees no agent's address, nor the conversation's.
    assert company.agents[0].user not in screen
    assert conversation not in screen
    assert await prof.alive()


async def test_agent_in_profanity_answers_a_customer(
    make_company: MakeCompany, clients: Any, profanity: StartProfanity, rds: aioredis.Redis
) -> None:
    company = await make_company(agents=1, name="Profanity Bakery")
    prof = await profanity(company.agents[0])
    # The component sees the Profanity agent online: the message is delivered live.
    resource = await wait_online(rds, company.agents[0].jid)
    assert resource.startswith("profanity")

    customer_account = await register("pcustomer")
    customer = await clients(customer_account)
    question = f"Is the rye bread fresh? {RUN}"
    customer.send_xml(chat(company.jid, question, new_id(), f'<request xmlns="{RECEIPTS}"/>'))

    # The conversation joins the agent's roster, named after the customer, and
    # is online while the customer is: Profanity shows the name, not the address.
    added = await prof.wait_for(
        re.compile(
            rf"Roster item added: ({re.escape(company.slug)}\+(\S+)@{re.escape(DOMAIN)}) "
            r"\((.+?)\)$",
            re.M,
        )
    )
    conversation, token, name = added.groups()
    assert name == f"Customer {token[:4].upper()}"
    assert customer_account.user not in conversation
    await prof.wait_for(f"++ {name} (orgchat) is online")
    # Profanity announces the new chat in its console (by the address if the
    # message overtook the roster item).
    arrived = await prof.wait_for(re.compile(r"<< chat message: (.+?) \(win (\d+)\)"))
    assert arrived.group(1) in (name, conversation)

    await prof.type(f"/win {arrived.group(2)}")
    shown = await prof.wait_for(re.compile(rf"{LINE}(.+?): {re.escape(question)}$", re.M))
    assert shown.group(1).split("/")[0] in (name, conversation)
    assert customer_account.user not in await prof.screen()

    answer = f"Baked at six this morning. {RUN}"
    await prof.type(f"/msg {conversation} {answer}")
    await prof.wait_for(re.compile(rf"{LINE}me: {re.escape(answer)}$", re.M))
    reply = await customer.inbox.expect(is_message(answer))
    assert (reply.get("from") or "").split("/")[0] == company.jid
    assert await prof.alive()


async def test_ask_several_companies_and_close_the_request_through_forms(
    make_company: MakeCompany, clients: Any, profanity: StartProfanity, db: asyncpg.Connection
) -> None:
    north = await make_company(agents=1, name="Cakes North")
    south = await make_company(agents=1, name="Cakes South")
    agent_n = await clients(north.agents[0])
    agent_s = await clients(south.agents[0])
    account = await register("pasker")
    prof = await profanity(account)

    # The commands of the service, listed in the console.
    await prof.type(f"/cmd list {DOMAIN}")
    listed = await prof.wait_for(
        re.compile(rf"{LINE}Ad hoc commands:\n((?:{LINE} +\S+\n?)+)", re.M)
    )
    nodes = re.findall(r"! +(\S+)$", listed.group(1), re.M)
    assert {"ask", "requests", "close-request"} <= set(nodes), nodes

    # "Ask several companies": a form window; fields are found by their labels.
    await prof.type(f"/cmd exec ask {DOMAIN}")
    await prof.wait_for("Form title: Ask several companies")
    tags = await prof.form_tags()
    assert {"Companies", "Subject", "Your question"} <= set(tags), tags
    subject = f"Cake {RUN}"
    question = f"A cake for 12 people on Saturday? {RUN}"
    # Profanity accepts only offered values ("Invalid command" otherwise); what
    # it accepted shows in the note below. (The options are not read from the
    # screen: with the whole suite's companies they are more than it holds.)
    await prof.type(f"/{tags['Companies']} add {north.jid}")
    await prof.type(f"/{tags['Companies']} add {south.jid}")
    await prof.type(f'/{tags["Subject"]} "{subject}"')
    await prof.wait_for(f"] Subject (required): {subject}")
    await prof.type(f"/{tags['Your question']} add {question}")
    await prof.wait_for(f"[val1] {question}")
    await prof.type("/form submit")

    # Completed: the result form opens in a window of its own, the note goes to
    # the console. Profanity shows no table, so the note carries the result too.
    await prof.wait_for(f"Form title: {subject}")
    shown = await prof.wait_for(re.compile(rf"{LINE}Request (\S+): open$", re.M))
    await prof.type("/form cancel")  # close the result window: back to the console
    await prof.wait_for("Sent to 2 companies; the answers arrive as chats.")
    await prof.wait_for("Company: Cakes North; Status: sent")
    await prof.wait_for("Company: Cakes South; Status: sent")
    assert await prof.alive()

    rid = await db.fetchval("SELECT public_id FROM requests WHERE customer_jid = $1", account.jid)
    assert shown.group(1) == rid
    got_n = await agent_n.inbox.expect(is_message())
    await agent_s.inbox.expect(is_message())
    body = text_of(got_n, "body") or ""
    assert subject in body and question in body
    # North answers in its conversation: the customer's Profanity shows it.
    conv_n = (got_n.get("from") or "").split("/")[0]
    offer = f"45 EUR, chocolate. {RUN}"
    agent_n.send_xml(chat(conv_n, offer))
    # North joins the customer's roster as it answers; South, asked but
    # silent, is no contact of the customer's.
    await prof.wait_for("<< chat message: ")
    await wait_in_roster(account, north.jid)
    contacts = {item["jid"] for item in await roster_of(account)}
    assert north.jid in contacts and south.jid not in contacts, contacts

    # "Close a request": stage 1 picks the request, stage 2 the offer to accept.
    await prof.type("/win 1")
    await prof.type(f"/cmd exec close-request {DOMAIN}")
    await prof.wait_for("Form title: Close a request")
    request_tag = (await prof.form_tags())["Request"]
    await prof.clear()
    await prof.type(f"/form help {request_tag}")
    # The choices are request ids: the customer's only open request is offered.
    choices = await prof.wait_for(
        re.compile(rf"<value> is one of\n((?:{LINE} +\S+\n)+){BLANK}", re.M)
    )
    offered = re.findall(r" +(\S+)$", choices.group(1), re.M)
    assert offered == [rid]
    await prof.type(f"/{request_tag} {offered[0]}")
    # Once chosen, Profanity shows the options with their labels: the subject.
    await prof.wait_for(re.compile(rf"\[{re.escape(rid)}\] {re.escape(subject)} \("))
    await prof.type("/form submit")

    await prof.wait_for(f"Form title: Close “{subject}”")
    await prof.wait_for("[none] None: just close it")  # the default, so the options show
    accept_tag = (await prof.form_tags())["Accept the offer of"]
    await prof.wait_for(f"[{north.jid}] Cakes North: answered")
    await prof.wait_for(f"[{south.jid}] Cakes South: delivered")
    await prof.type(f"/{accept_tag} {north.jid}")
    await prof.type("/form submit")

    await prof.wait_for(re.compile(rf"Form title: {re.escape(subject)}\n"))
    await prof.wait_for(f"Request {rid}: closed")
    await prof.type("/form cancel")
    await prof.wait_for("Request closed: you accepted the offer of Cakes North.")
    await prof.wait_for("Company: Cakes North; Status: answered")
    assert await prof.alive(), await prof.exit_status()

    assert await db.fetchval("SELECT state FROM requests WHERE public_id = $1", rid) == "closed"
    # The agents read the notice as the customer's action, not as their words.
    notice = await agent_n.inbox.expect(is_message())
    assert text_of(notice, "body") == "/me closed this request and accepted your offer."
    told = await agent_s.inbox.expect(is_message())
    assert text_of(told, "body") == "/me closed this request and chose another company's offer."


async def test_a_percent_sign_in_a_note_reaches_profanity_intact(
    make_company: MakeCompany, clients: Any, profanity: StartProfanity
) -> None:
    """The note of "My requests" holds the customer's own subject; Profanity shows it.

    Profanity 0.13.1 prints a command's note as a printf format
    (``win_handle_command_exec_result_note``): ``50% sale`` came out as
    ``50<garbage>ale`` and ``%s%n`` killed it. The component writes a
    full-width percent sign in notes instead (``routing/commands.py``).
    """
    shop = await make_company(agents=1, name="Shoe Shop")
    prof = await profanity(await register("ppercent"))
    subject = f"Is the 50% sale still on (%s%n)? {RUN}"
    await prof.type(f"/cmd exec ask {DOMAIN}")
    await prof.wait_for("Form title: Ask several companies")
    tags = await prof.form_tags()
    await prof.type(f"/{tags['Companies']} add {shop.jid}")
    await prof.type(f'/{tags["Subject"]} "{subject}"')
    await prof.type(f"/{tags['Your question']} add Until when?")
    await prof.type("/form submit")
    await prof.wait_for(f"Form title: {subject}")  # a form's title is printed safely
    await prof.type("/form cancel")
    await prof.wait_for("Sent to 1 company")

    await prof.type(f"/cmd exec requests {DOMAIN}")
    await prof.wait_for("Form title: My requests")
    await prof.type("/form cancel")
    shown = subject.replace("%", "\uff05")
    await prof.wait_for(f"Subject: {shown}; Request: open")
    assert await prof.alive()
