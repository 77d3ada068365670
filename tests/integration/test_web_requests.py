# ruff: noqa: RUF001  (the page's Russian texts are intended)
"""Asking several companies from the directory page (web/, issue 15, parts 1-3).

The same browser, page and fixtures as test_web.py: Debian's Chromium driven
by Playwright opens the page that ejabberd serves, as a guest of the tests'
host; the companies are the tests' own, shaped like the demo's tyre shops in
Novosibirsk (demo/companies.json: Shina Sibir, Koleso Plus), in a city of this
run alone. Agents are slixmpp clients that answer as desk software does (an
offer, a decline) or stay silent. Every assertion on the browser's side is on
what a person sees; PostgreSQL and the agents' clients say what the
component did.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest
from playwright.async_api import Locator, expect

from tests.integration import test_web
from tests.integration.browser import TIMEOUT_MS
from tests.integration.clients import chat, child, is_message
from tests.integration.conftest import RUN, MakeCompany
from tests.integration.test_requests import NS, OFFER, has_thread
from tests.integration.test_web import SCREENSHOTS, OpenPage, WebPage, closed_now_hours

if TYPE_CHECKING:  # imported at run time, pytest would try to collect it as a test class
    from tests.integration.conftest import TestCompany

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

#: test_web.py's fixtures, by name: the same browser, the same page and hooks.
browser = test_web.browser
web = test_web.web

DECLINE = f'<decline xmlns="{NS}"><reason>Out of stock</reason></decline>'
#: Koleso's offer: cheaper than OFFER (320.00 EUR, in stock, until 2030-12-05), to order.
CHEAPER = (
    OFFER.replace("320.00", "290.00")
    .replace("in-stock", "to-order")
    .replace("2030-12-05", "2030-12-20")
)


async def tyre_shops(make_company: MakeCompany, city_name: str) -> tuple[TestCompany, ...]:
    """The demo's two tyre shops, a third that stays silent, one closed now and one
    that takes no requests, in ``city_name`` (a city of one test alone)."""
    city = {"category": "tyres", "city": city_name}
    shina = await make_company(agents=1, name="Shina Sibir", hours="24/7", **city)
    koleso = await make_company(agents=1, name="Koleso Plus", hours="24/7", **city)
    silent = await make_company(agents=1, name="Tyre Depot", hours="24/7", **city)
    closed = await make_company(
        agents=0, name="Night Tyres", hours=closed_now_hours(), timezone="UTC", **city
    )
    opted_out = await make_company(
        agents=0, name="Tyres Direct", hours="24/7", no_requests=True, **city
    )
    return shina, koleso, silent, closed, opted_out


async def find_tyre_shops(page: WebPage, city: str) -> None:
    await page.guest_name()
    await page.page.get_by_label("Category").select_option(label="Tyres")
    await page.page.get_by_label("City").select_option(label=city)
    await expect(page.cards()).to_have_count(5, timeout=TIMEOUT_MS)


async def write_question(page: WebPage, subject: str) -> None:
    """Open "Ask several companies": the limit is shown before anything is sent."""
    await page.page.get_by_text("Ask several companies").click()
    await expect(page.page.get_by_text("at most 10 companies at once")).to_be_visible()
    await page.page.get_by_label("Subject").fill(subject)
    await page.page.get_by_label("Your question").fill("How much for four, fitted, this week?")


def request_screen(page: WebPage, subject: str) -> Locator:
    return page.page.get_by_role("region", name=subject)


def company_line(screen: Locator, name: str) -> Locator:
    return screen.get_by_role("listitem").filter(has_text=name)


async def request_id(page: WebPage) -> str:
    """The request on screen, from the page's address (what a reload opens again)."""
    await page.page.wait_for_url(re.compile(r"[?&]request=r[a-z2-7]{20}"), timeout=TIMEOUT_MS)
    query = urllib.parse.parse_qs(urllib.parse.urlparse(page.page.url).query)
    return query["request"][0]


async def received(agent: Any, rid: str) -> str:
    """The agent receives the request; the address of its conversation."""
    got = await agent.inbox.expect(has_thread(rid))
    return str(got.get("from", "")).split("/")[0]


async def test_ticked_shops_answer_decline_and_one_stays_silent_until_expiry(
    make_company: MakeCompany, clients: Any, web: OpenPage, db: asyncpg.Connection
) -> None:
    city = f"Novosibirsk {RUN} ticked"
    shina, koleso, silent, closed, opted_out = await tyre_shops(make_company, city)
    agents = [await clients(c.agents[0]) for c in (shina, koleso, silent)]
    page = await web()
    await find_tyre_shops(page, city)
    subject = "Winter tyres 205/55 R16"
    await write_question(page, subject)
    for company in (shina, koleso, silent, closed, opted_out):
        await page.card(company.name).get_by_label("Ask this company").check()
    await expect(page.page.get_by_text("The companies I ticked (5 of 10)")).to_be_visible()
    await page.page.get_by_role("button", name="Send to 5 companies").click()

    # At once, per company: sent, or why not.
    screen = request_screen(page, subject)
    await expect(screen).to_be_visible(timeout=TIMEOUT_MS)
    await expect(company_line(screen, closed.name)).to_contain_text(
        re.compile(r"Not sent: closed until \w+day 10:00")
    )
    await expect(company_line(screen, opted_out.name)).to_contain_text(
        "Not sent: does not take requests"
    )
    for company in (shina, koleso, silent):
        await expect(company_line(screen, company.name)).to_contain_text(
            re.compile("Sent|Delivered")
        )
    rid = await request_id(page)
    shina_agent, koleso_agent, silent_agent = agents
    conv_shina = await received(shina_agent, rid)
    conv_koleso = await received(koleso_agent, rid)
    await received(silent_agent, rid)

    # Live: delivered, then an offer, a decline; the silent one stays delivered.
    await expect(company_line(screen, silent.name)).to_contain_text("Delivered", timeout=TIMEOUT_MS)
    shina_agent.send_xml(chat(conv_shina, "Four for 320 EUR fitted, in stock.", extra=OFFER))
    koleso_agent.send_xml(chat(conv_koleso, "Sorry, we have none left.", extra=DECLINE))
    await expect(company_line(screen, shina.name)).to_contain_text("Answered", timeout=TIMEOUT_MS)
    await expect(company_line(screen, koleso.name)).to_contain_text("Declined", timeout=TIMEOUT_MS)
    await expect(company_line(screen, koleso.name)).to_contain_text("Reason: Out of stock")
    offers = screen.get_by_role("table", name="Offers")
    await expect(offers.get_by_role("row")).to_have_count(2, timeout=TIMEOUT_MS)  # head + one
    await expect(offers.get_by_role("row", name=re.compile(shina.name))).to_contain_text("€320.00")

    # A reload shows the same, from one list query.
    await page.page.reload()
    screen = request_screen(page, subject)
    await expect(company_line(screen, shina.name)).to_contain_text("Answered", timeout=TIMEOUT_MS)
    await expect(company_line(screen, koleso.name)).to_contain_text("Declined")
    await expect(company_line(screen, silent.name)).to_contain_text("Delivered")
    await expect(offers.get_by_role("row", name=re.compile(shina.name))).to_contain_text("In stock")

    # A company's thread is its chat; back comes back to the request.
    await (
        company_line(screen, shina.name)
        .get_by_role("button", name=f"Open the chat with {shina.name}")
        .click()
    )
    log = page.log(shina.name)
    await expect(log).to_contain_text("Offer: 320.00 EUR, in stock", timeout=TIMEOUT_MS)
    await page.chat(shina.name).get_by_role("button", name="Back to the list").click()
    await expect(screen).to_be_visible()

    # Nobody at the silent shop answers in time: the request expires (its time
    # is moved, the sweep does the rest) and the page says so.
    await db.execute(
        "UPDATE requests SET expires_at = now() - interval '1 second' WHERE public_id = $1", rid
    )
    await expect(company_line(screen, silent.name)).to_contain_text(
        "No answer in time", timeout=TIMEOUT_MS
    )
    await expect(screen).to_contain_text("This request has expired.")
    await expect(company_line(screen, koleso.name)).to_contain_text("Declined")
    await expect(screen.get_by_role("button", name=re.compile("Accept"))).to_have_count(0)
    assert await db.fetchval("SELECT state FROM requests WHERE public_id = $1", rid) == "expired"


async def test_search_results_are_asked_offers_compared_and_one_accepted(
    make_company: MakeCompany, clients: Any, web: OpenPage, db: asyncpg.Connection
) -> None:
    city = f"Novosibirsk {RUN} searched"
    shina, koleso, silent, closed, opted_out = await tyre_shops(make_company, city)
    agents = [await clients(c.agents[0]) for c in (shina, koleso, silent)]
    page = await web()
    await find_tyre_shops(page, city)
    subject = "Studded tyres 195/65 R15"
    await write_question(page, subject)
    await page.page.get_by_label("The companies this search finds").check()
    await page.page.get_by_role("button", name="Send to the companies found").click()

    screen = request_screen(page, subject)
    await expect(screen).to_be_visible(timeout=TIMEOUT_MS)
    await expect(company_line(screen, closed.name)).to_contain_text("Not sent: closed until")
    # A search asks only companies that take requests.
    await expect(company_line(screen, opted_out.name)).to_have_count(0)
    rid = await request_id(page)
    shina_agent, koleso_agent, silent_agent = agents
    conv_shina = await received(shina_agent, rid)
    conv_koleso = await received(koleso_agent, rid)
    await received(silent_agent, rid)

    shina_agent.send_xml(chat(conv_shina, "Four for 320 EUR.", extra=OFFER))
    koleso_agent.send_xml(chat(conv_koleso, "290 EUR, in a week.", extra=CHEAPER))
    offers = screen.get_by_role("table", name="Offers")
    names = offers.get_by_role("rowheader")
    await expect(names).to_have_count(2, timeout=TIMEOUT_MS)
    koleso_row = offers.get_by_role("row", name=re.compile(koleso.name))
    await expect(koleso_row).to_contain_text("€290.00")
    await expect(koleso_row).to_contain_text("To order")
    await expect(koleso_row).to_contain_text("Dec 20, 2030")
    # New shops: no response time measured yet, and the page says so.
    await expect(koleso_row).to_contain_text("not known yet")

    # Sortable by price, both ways.
    sort = offers.get_by_role("button", name="Sort by price")
    await sort.click()
    await expect(names).to_have_text([koleso.name, shina.name])
    head = offers.get_by_role("columnheader", name="Sort by price")
    await expect(head).to_have_attribute("aria-sort", "ascending")
    await page.page.set_viewport_size({"width": 1000, "height": 700})
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.page.screenshot(path=SCREENSHOTS / "offers.png")
    await sort.click()
    await expect(names).to_have_text([shina.name, koleso.name])
    await expect(head).to_have_attribute("aria-sort", "descending")

    # Accept one: the request is closed, the others are told politely.
    await offers.get_by_role("button", name=f"Accept the offer of {shina.name}").click()
    await expect(screen).to_contain_text(
        f"You accepted the offer of {shina.name}; the other companies were told politely.",
        timeout=TIMEOUT_MS,
    )
    await expect(offers.get_by_role("row", name=re.compile(shina.name))).to_contain_text("Accepted")
    await expect(screen.get_by_role("button", name=re.compile("Accept"))).to_have_count(0)
    told = await shina_agent.inbox.expect(lambda el: child(el, "closed", NS) is not None)
    assert child(told, "closed", NS).get("accepted") == "true"  # type: ignore[union-attr]
    for agent in (koleso_agent, silent_agent):
        notice = await agent.inbox.expect(
            is_message("/me closed this request and chose another company's offer.")
        )
        assert child(notice, "closed", NS).get("accepted") == "false"  # type: ignore[union-attr]
    # The same screen in Russian.
    await page.page.get_by_role("button", name="Русский").click()
    await expect(screen.get_by_role("table", name="Предложения")).to_be_visible()
    await expect(company_line(screen, closed.name)).to_contain_text("Не отправлено: закрыто до")
    await expect(company_line(screen, silent.name)).to_contain_text("Доставлено")
    await expect(screen).to_contain_text(f"Вы приняли предложение {shina.name}")
    row = await db.fetchrow(
        "SELECT r.state, c.slug FROM requests r JOIN companies c ON c.id = r.accepted_company_id"
        " WHERE r.public_id = $1",
        rid,
    )
    assert row is not None and (row["state"], row["slug"]) == ("closed", shina.slug)


async def test_a_request_closed_without_accepting(
    make_company: MakeCompany, clients: Any, web: OpenPage, db: asyncpg.Connection
) -> None:
    city = f"Novosibirsk {RUN} closed"
    shina, koleso, _silent, _closed, _opted_out = await tyre_shops(make_company, city)
    shina_agent = await clients(shina.agents[0])
    page = await web()
    await find_tyre_shops(page, city)
    subject = "All-season tyres"
    await write_question(page, subject)
    for company in (shina, koleso):
        await page.card(company.name).get_by_label("Ask this company").check()
    await page.page.get_by_role("button", name="Send to 2 companies").click()
    screen = request_screen(page, subject)
    await expect(screen).to_be_visible(timeout=TIMEOUT_MS)
    rid = await request_id(page)
    await received(shina_agent, rid)

    await screen.get_by_role("button", name="Close the request without accepting").click()
    await expect(screen).to_contain_text(
        "You closed this request; the companies were told.", timeout=TIMEOUT_MS
    )
    await expect(screen.get_by_role("button", name=re.compile("Close the request"))).to_be_hidden()
    await shina_agent.inbox.expect(is_message("/me closed this request."))
    my_requests = page.page.get_by_role("navigation", name="My requests")
    await expect(my_requests.get_by_role("listitem").filter(has_text=subject)).to_contain_text(
        "Closed"
    )
    assert await db.fetchval("SELECT state FROM requests WHERE public_id = $1", rid) == "closed"
