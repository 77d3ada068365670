"""A customer on converse.js, a client nobody here wrote (issue 13).

converse.js 14 (npm, its prebuilt bundle) runs in Debian's Chromium through
Playwright and logs in over ejabberd's WebSocket, as a customer's browser
would; the company's agent is a slixmpp client. Every assertion on the
customer's side is on what the page shows.

History after a fresh login: converse.js, like every standard client, reads
one-to-one history from the user's own archive (XEP-0313 on their account,
``with`` = the contact), which ejabberd serves from the ``archive`` table
that the component writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest
import pytest_asyncio
from playwright.async_api import Browser, expect

from tests.integration.browser import TIMEOUT_MS, ConversePage, StaticSite, chromium, site_problem
from tests.integration.clients import chat, is_message
from tests.integration.conftest import VHOST, Account, MakeCompany, register

if TYPE_CHECKING:  # imported at run time, pytest would try to collect it as a test class
    from tests.integration.conftest import TestCompany

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture(scope="session")
def converse_site() -> Iterator[str]:
    """The converse.js page on a loopback port, for the whole session."""
    problem = site_problem()
    if problem:
        pytest.fail(problem, pytrace=False)
    site = StaticSite().start()
    try:
        yield site.url
    finally:
        site.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(converse_site: str) -> AsyncIterator[Browser]:
    """Chromium for the session, once the site check has passed (its message says why not)."""
    async with chromium() as browser:
        yield browser


OpenConverse = Callable[[Account, str], Awaitable[ConversePage]]


@pytest_asyncio.fixture(loop_scope="session")
async def converse(browser: Browser, converse_site: str) -> AsyncIterator[OpenConverse]:
    """Log a customer in with converse.js on a new device (a fresh browser context)."""
    opened: list[ConversePage] = []

    async def login(account: Account, chat_with: str) -> ConversePage:
        page = await ConversePage.open(
            browser, converse_site, account.jid, account.password, chat_with
        )
        opened.append(page)
        return page

    try:
        yield login
    finally:
        for page in opened:
            await page.close()


@dataclass
class Exchange:
    company: TestCompany
    customer: Account
    page: ConversePage
    question: str
    answer: str


async def customer_asks_agent_answers(
    make_company: MakeCompany, clients: Any, converse: OpenConverse
) -> Exchange:
    """A customer writes to a company from converse.js; its agent answers."""
    company = await make_company(agents=1, name="Converse Bakery")
    agent = await clients(company.agents[0])
    customer = await register("conversejs")
    page = await converse(customer, company.jid)

    question = "Is the rye bread fresh today?"
    await page.send(company.jid, question)
    got = await agent.inbox.expect(is_message(question))
    conv_jid = got.get("from", "").split("/")[0]
    assert conv_jid.startswith(company.slug + "+"), conv_jid

    answer = "Yes, baked at six this morning."
    agent.send_xml(chat(conv_jid, answer))
    await page.expect_message(company.jid, question, sender="me")
    await page.expect_message(company.jid, answer, sender="them")
    return Exchange(company, customer, page, question, answer)


async def test_customer_on_converse_chats_with_an_agent(
    make_company: MakeCompany, clients: Any, converse: OpenConverse, db: asyncpg.Connection
) -> None:
    ex = await customer_asks_agent_answers(make_company, clients, converse)

    # Both in the one chat with the company's address, in order, nothing bounced.
    chat_view = ex.page.chat_view(ex.company.jid)
    await expect(ex.page.messages(ex.company.jid)).to_have_text(
        [ex.question, ex.answer], timeout=TIMEOUT_MS
    )
    await expect(chat_view.locator(".chat-msg__error")).to_have_count(0)

    rows = await db.fetch(
        """SELECT m.direction, m.body, c.customer_jid
           FROM messages m JOIN conversations c ON c.id = m.conversation_id
           JOIN companies co ON co.id = c.company_id
           WHERE co.slug = $1 ORDER BY m.id""",
        ex.company.slug,
    )
    assert [(r["direction"], r["body"]) for r in rows] == [("in", ex.question), ("out", ex.answer)]
    assert {r["customer_jid"] for r in rows} == {ex.customer.jid}


async def own_archive(
    db: asyncpg.Connection, customer: Account, peer: str, count: int, wait: float = 10
) -> list[asyncpg.Record]:
    """The rows of ``customer``'s own archive with ``peer`` (ejabberd's ``archive``
    table), once there are ``count`` of them or ``wait`` seconds have passed."""
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        rows = await db.fetch(
            """SELECT xml FROM archive
               WHERE server_host = $1 AND username = $2 AND bare_peer = $3
               ORDER BY timestamp, id""",
            VHOST,
            customer.user,
            peer,
        )
        if len(rows) >= count or asyncio.get_running_loop().time() > deadline:
            return rows
        await asyncio.sleep(0.1)


async def test_history_on_a_new_device(
    make_company: MakeCompany, clients: Any, converse: OpenConverse, db: asyncpg.Connection
) -> None:
    ex = await customer_asks_agent_answers(make_company, clients, converse)
    await ex.page.close()

    # Where ejabberd's mod_mam reads the customer's history from: one row per
    # message, the customer's own first.
    rows = await own_archive(db, ex.customer, ex.company.jid, 2)
    assert len(rows) == 2, f"the customer's own archive with {ex.company.jid}: {rows}"
    assert ex.question in rows[0]["xml"], rows[0]["xml"]
    assert ex.answer in rows[1]["xml"], rows[1]["xml"]

    # A new device: empty browser storage, so whatever it shows came from the
    # customer's own archive on the server.
    fresh = await converse(ex.customer, ex.company.jid)
    await fresh.expect_message(ex.company.jid, ex.question, sender="me")
    await fresh.expect_message(ex.company.jid, ex.answer, sender="them")
    await expect(fresh.messages(ex.company.jid)).to_have_text(
        [ex.question, ex.answer], timeout=TIMEOUT_MS
    )
