# ruff: noqa: RUF001  (the page's Russian texts are intended)
"""The directory page (web/, issue 14) in a real browser.

ejabberd serves the page at http://127.0.0.1:5280/web/ (mod_http_fileserver,
WEB_ROOT); Debian's Chromium, driven by Playwright, opens it with the tests'
own XMPP host and component domain in the query string. The page talks only
XMPP over ejabberd's WebSocket: a guest account by in-band registration, the
search, vCards and disco#info of the tests' component, messages, and the
history from the guest's own archive, photos through ejabberd's upload
service. Agents are slixmpp clients. Every
assertion on the browser's side is on what a person sees; the tests' hooks
(``PAGE_HOOKS``) only put the page in the background and record the
notifications it shows.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from playwright.async_api import (
    Browser,
    BrowserContext,
    FilePayload,
    Locator,
    Page,
    Request,
    ViewportSize,
    WebSocketRoute,
    expect,
)

from tests.integration.browser import CHROMIUM, OFF_LOOPBACK, TIMEOUT_MS, chromium
from tests.integration.clients import Predicate, chat, child, is_message, local, new_id
from tests.integration.conftest import (
    REPO,
    RUN,
    VHOST,
    MakeCompany,
    api,
    orgchat,
    register,
)
from tests.integration.test_requests import day_after_tomorrow
from tests.integration.test_upload import (
    NS_OOB,
    NS_UPLOAD,
    PNG,
    http,
    iq,
    slot_request,
    upload_service,
)

if TYPE_CHECKING:  # imported at run time, pytest would try to collect it as a test class
    from tests.integration.conftest import TestCompany

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

WEB = REPO / "web"
SITE = "http://127.0.0.1:5280/web/"
#: The tests' host and domain instead of the development stack's defaults.
OVERRIDES = {"xmpp": VHOST}
GUEST = re.compile(r"You are a guest: (guest-[0-9a-f]{8})")
BOSH = "http://127.0.0.1:5280/bosh"
SCREENSHOTS = REPO / "docs" / "screenshots"
MARKERS = "urn:xmpp:chat-markers:0"
MARKABLE = f'<markable xmlns="{MARKERS}"/>'

#: Run in the page before its own scripts. The page's visibility is the
#: test's to set (``testSetHidden``: a tab in the background), and every
#: notification the page shows is recorded (the real Notification, subclassed).
PAGE_HOOKS = """
(() => {
  let hidden = false;
  Object.defineProperty(Document.prototype, 'hidden', { configurable: true, get: () => hidden });
  Object.defineProperty(Document.prototype, 'visibilityState', {
    configurable: true,
    get: () => (hidden ? 'hidden' : 'visible'),
  });
  window.testSetHidden = (value) => {
    hidden = value;
    document.dispatchEvent(new Event('visibilitychange'));
  };
  window.testNotifications = [];
  window.testPermissionRequests = 0;
  const Real = window.Notification;
  window.Notification = class extends Real {
    constructor(title, options) {
      super(title, options);
      window.testNotifications.push(this);
    }
    static requestPermission() {
      window.testPermissionRequests += 1;
      return Real.requestPermission();
    }
  };
})();
"""


def served_problem() -> str | None:
    """Why the page that ejabberd serves cannot be tested here, or None."""
    if not (WEB / "node_modules" / "strophe.js" / "dist" / "strophe.esm.js").exists():
        return f"Strophe.js is not installed in {WEB}: run scripts/stack.sh up (npm ci)"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: run scripts/stack.sh up (Debian package chromium)"
    # ejabberd serves the web/ of the checkout that ran `make up` (WEB_ROOT):
    # test that page only if it is this checkout's.
    for name in ("index.html", "app.js", "xmpp.js", "i18n.js", "style.css"):
        try:
            with urllib.request.urlopen(SITE + name, timeout=10) as resp:
                served = resp.read()
        except (urllib.error.URLError, OSError) as exc:
            return f"ejabberd does not serve {SITE}{name}: {exc}"
        if served != (WEB / name).read_bytes():
            return (
                f"ejabberd serves another {name} at {SITE} than {WEB / name}: its WEB_ROOT "
                "is another checkout's web/ (run scripts/stack.sh up from this one)"
            )
    return None


def page_url(**query: str) -> str:
    """The page's address; a parameter given as "" is left out."""
    return (
        SITE
        + "?"
        + urllib.parse.urlencode(
            {key: value for key, value in {**OVERRIDES, **query}.items() if value}
        )
    )


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(services: None) -> AsyncIterator[Browser]:
    problem = served_problem()
    if problem:
        pytest.fail(problem, pytrace=False)
    async with chromium() as browser:
        yield browser


class WebPage:
    """The directory page in one browser context (one browser profile: its own storage)."""

    def __init__(self, context: BrowserContext, page: Page) -> None:
        self.context = context
        self.page = page
        self.console: list[str] = []
        page.on("console", lambda msg: self.console.append(f"{msg.type}: {msg.text}"))
        page.on("pageerror", lambda exc: self.console.append(f"pageerror: {exc}"))

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.console[-lines:])

    async def goto(self, **query: str) -> None:
        await self.page.goto(page_url(**query))

    async def new_tab(self) -> None:
        """Close this tab and open the page again in a new one (same profile)."""
        await self.page.close()
        self.page = await self.context.new_page()

    async def set_hidden(self, hidden: bool) -> None:
        """Put the page in the background (another tab in front), or back."""
        await self.page.evaluate("hidden => window.testSetHidden(hidden)", hidden)

    async def notifications(self) -> list[dict[str, str]]:
        """The notifications the page has shown: their title and body."""
        shown: list[dict[str, str]] = await self.page.evaluate(
            "window.testNotifications.map(n => ({title: n.title, body: n.body}))"
        )
        return shown

    async def guest_name(self) -> str:
        """The guest's name the page shows once it is online."""
        identity = self.page.get_by_text(GUEST)
        try:
            await expect(identity).to_be_visible(timeout=TIMEOUT_MS)
        except AssertionError as exc:
            raise AssertionError(f"no guest shown:\n{self.log_tail()}") from exc
        match = GUEST.search(await identity.inner_text())
        assert match, await identity.inner_text()
        return match.group(1)

    def cards(self) -> Locator:
        return self.page.get_by_role("list").get_by_role("article")

    def card(self, name: str) -> Locator:
        return self.page.get_by_role("article", name=name, exact=True)

    def chat(self, name: str) -> Locator:
        return self.page.get_by_role("region", name=f"Chat with {name}")

    def log(self, name: str) -> Locator:
        return self.chat(name).get_by_role("log")

    async def search(self, text: str) -> None:
        await self.page.get_by_label("Find a company").fill(text)
        await self.page.get_by_role("button", name="Search").click()

    async def send(self, name: str, text: str) -> None:
        box = self.chat(name).get_by_label("Your message")
        await box.fill(text)
        await self.chat(name).get_by_role("button", name="Send").click()

    async def attach(self, name: str, file: FilePayload) -> None:
        """Choose ``file`` with the chat's "Attach a photo" button, as a person does."""
        async with self.page.expect_file_chooser() as chooser:
            await self.chat(name).get_by_role("button", name="Attach a photo").click()
        await (await chooser.value).set_files(file)

    async def expect_photo(self, name: str, url: str) -> None:
        """The chat with ``name`` shows the photo at ``url`` inline, loaded, and a link to it."""
        photo = self.log(name).get_by_role("img", name="Photo")
        try:
            await expect(photo).to_have_attribute("src", url, timeout=TIMEOUT_MS)
        except AssertionError as exc:
            raise AssertionError(f"no photo {url} shown:\n{self.log_tail()}") from exc
        await expect(photo).to_be_visible()
        assert await photo.evaluate("img => img.referrerPolicy") == "no-referrer"
        await self.page.wait_for_function(
            "url => [...document.images].some(i => i.src === url && i.naturalWidth > 0)",
            arg=url,
            timeout=TIMEOUT_MS,
        )
        link = self.log(name).get_by_role("link", name="Photo")
        await expect(link).to_have_attribute("href", url)

    async def expect_messages(self, name: str, texts: list[str]) -> None:
        """The chat with ``name`` shows exactly these messages, in this order."""
        shown = self.log(name).get_by_role("listitem").locator(".text")
        try:
            await expect(shown).to_have_text(texts, timeout=TIMEOUT_MS)
        except AssertionError as exc:
            raise AssertionError(
                f"chat with {name}: {await shown.all_inner_texts()}, expected {texts}\n"
                f"browser console:\n{self.log_tail()}"
            ) from exc


OpenPage = Callable[..., Awaitable[WebPage]]


@pytest_asyncio.fixture(loop_scope="session")
async def web(browser: Browser) -> AsyncIterator[OpenPage]:
    """Open the page in a fresh browser profile (``locale``: the browser's language;
    ``phone``: a phone-sized screen)."""
    contexts: list[BrowserContext] = []

    async def open_page(
        locale: str = "en-US",
        phone: bool = False,
        permissions: tuple[str, ...] = (),
        timezone: str | None = None,
        websocket: Callable[[WebSocketRoute], Any] | None = None,
        **query: str,
    ) -> WebPage:
        viewport: ViewportSize = (
            {"width": 390, "height": 800} if phone else {"width": 1200, "height": 900}
        )
        context = await browser.new_context(
            locale=locale,
            viewport=viewport,
            is_mobile=phone,
            has_touch=phone,
            permissions=list(permissions),
            timezone_id=timezone,
        )
        contexts.append(context)
        await context.add_init_script(PAGE_HOOKS)
        # Nothing off this machine: the page needs nothing but ejabberd.
        await context.route(OFF_LOOPBACK, lambda route: route.abort())
        if websocket is not None:  # stands between the page and ejabberd from the start
            await context.route_web_socket(re.compile(r"/ws$"), websocket)
        page = WebPage(context, await context.new_page())
        await page.goto(**query)
        return page

    try:
        yield open_page
    finally:
        for context in contexts:
            await context.close()


def closed_now_hours() -> str:
    """Opening hours (UTC) that are closed now: two hours, three days from today."""
    day = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).weekday()
    return f"{['Mo', 'Tu', 'We', 'Th', 'Fr', 'Sa', 'Su'][day]} 10:00-12:00"


async def test_search_by_category_and_city_shows_the_cards(
    make_company: MakeCompany, web: OpenPage
) -> None:
    city = f"Tyreton {RUN}"  # a city of this run alone
    common = {"timezone": "UTC", "city": city}
    open_shop = await make_company(
        agents=0,
        name="Koleso Web",
        category="tyres",
        hours="24/7",
        address="Sibirskaya ulitsa 7",
        phone="+7 383 555-07-00",
        **common,
    )
    closed_shop = await make_company(
        agents=0, name="Shina Web", category="tyres", hours=closed_now_hours(), **common
    )
    await make_company(agents=0, name="Pizza Web", category="restaurant", **common)
    await make_company(agents=0, name="Koleso Elsewhere", category="tyres", city=f"Other {RUN}")

    page = await web()
    await page.guest_name()
    await page.page.get_by_label("Category").select_option(label="Tyres")
    await page.page.get_by_label("City").select_option(label=city)

    await expect(page.cards()).to_have_count(2, timeout=TIMEOUT_MS)
    await expect(page.cards().get_by_role("heading")).to_have_text(
        [open_shop.name, closed_shop.name]
    )
    koleso = page.card(open_shop.name)
    await expect(koleso).to_contain_text(f"Tyres · {city}")
    await expect(koleso).to_contain_text("Open now")
    await expect(koleso).to_contain_text(f"Sibirskaya ulitsa 7, {city}", timeout=TIMEOUT_MS)
    await expect(koleso.get_by_role("link", name="+7 383 555-07-00")).to_be_visible()
    await expect(koleso).to_contain_text("24/7")
    await expect(koleso.get_by_role("button", name="Message")).to_be_visible()
    shina = page.card(closed_shop.name)
    await expect(shina).to_contain_text("Closed")
    weekday = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).strftime("%A")
    await expect(shina).to_contain_text(re.compile(rf"Opens {weekday}, .* at 10:00"))

    await page.page.get_by_label("Open now").check()
    await expect(page.cards().get_by_role("heading")).to_have_text([open_shop.name])


@dataclass
class Exchange:
    company: TestCompany
    agent: Any
    conversation: str
    page: WebPage
    question: str
    answer: str


async def guest_asks_agent_answers(
    make_company: MakeCompany, clients: Any, web: OpenPage, name: str
) -> Exchange:
    """A guest finds the company ``name`` by name and writes to it; its agent answers."""
    company = await make_company(agents=1, name=name, category="restaurant")
    agent = await clients(company.agents[0])
    page = await web()
    await page.guest_name()

    await page.search(name.lower())
    await expect(page.cards().get_by_role("heading")).to_have_text([name], timeout=TIMEOUT_MS)
    await page.card(name).get_by_role("button", name="Message").click()
    await expect(page.chat(name)).to_be_visible()

    question = "Do you deliver to Akademgorodok?"
    await page.send(name, question)
    got = await agent.inbox.expect(is_message(question))
    conversation = got.get("from", "").split("/")[0]
    assert conversation.startswith(company.slug + "+"), conversation
    # The company's receipt: the message is archived.
    await expect(page.log(name).get_by_role("listitem").filter(has_text=question)).to_contain_text(
        "Delivered", timeout=TIMEOUT_MS
    )

    answer = "Yes, within 40 minutes. Pizza or pasta?"
    agent.send_xml(chat(conversation, answer))
    await page.expect_messages(name, [question, answer])
    return Exchange(company, agent, conversation, page, question, answer)


async def test_guest_chats_with_an_agent(
    make_company: MakeCompany, clients: Any, web: OpenPage
) -> None:
    ex = await guest_asks_agent_answers(make_company, clients, web, f"Pizza {RUN} Live")
    await expect(ex.page.page.locator("body")).not_to_contain_text("XEP")
    # The company's answer is shown as the company's, not as the guest's.
    theirs = ex.page.log(ex.company.name).get_by_role("listitem").filter(has_text=ex.answer)
    await expect(theirs).to_contain_text(f"{ex.company.name}: {ex.answer}")

    # The agent types: the page says so until the next message.
    typing = ex.page.chat(ex.company.name).get_by_text(f"{ex.company.name} is typing…")
    ex.agent.send_xml(
        chat(
            ex.conversation,
            None,
            extra='<composing xmlns="http://jabber.org/protocol/chatstates"/>',
        )
    )
    await expect(typing).to_be_visible(timeout=TIMEOUT_MS)
    ex.agent.send_xml(chat(ex.conversation, "Or both?"))
    await expect(typing).to_be_hidden(timeout=TIMEOUT_MS)
    await ex.page.expect_messages(ex.company.name, [ex.question, ex.answer, "Or both?"])

    # The server drops the connection, and the network stays down a while
    # (each new WebSocket closes abnormally, as when it cannot be established):
    # the page says so, keeps what is written meanwhile, and sends it once it
    # is back by itself.
    network_down = True

    async def websocket(ws: WebSocketRoute) -> None:
        if network_down:
            await ws.close(code=1006)
        else:
            ws.connect_to_server()

    await ex.page.page.route_web_socket(re.compile(r"/ws$"), websocket)
    guest = await ex.page.guest_name()
    await api("kick_user", {"user": guest, "host": VHOST})
    status = ex.page.page.get_by_role("status").filter(has_text="Connection lost. Reconnecting…")
    await expect(status).to_be_visible(timeout=TIMEOUT_MS)
    await ex.page.send(ex.company.name, "Pasta, please.")
    waiting = ex.page.log(ex.company.name).get_by_role("listitem").filter(has_text="Pasta, please.")
    await expect(waiting).to_contain_text("Waiting for the connection")
    await expect(ex.page.chat(ex.company.name)).to_contain_text("You are offline")
    await ex.agent.inbox.absent(is_message("Pasta, please."))
    network_down = False
    await expect(status).to_be_hidden(timeout=TIMEOUT_MS)
    await ex.agent.inbox.expect(is_message("Pasta, please."))
    await expect(waiting).to_contain_text("Delivered", timeout=TIMEOUT_MS)
    await ex.page.expect_messages(
        ex.company.name, [ex.question, ex.answer, "Or both?", "Pasta, please."]
    )


async def test_reload_keeps_the_guest_and_shows_the_history(
    make_company: MakeCompany, clients: Any, web: OpenPage
) -> None:
    ex = await guest_asks_agent_answers(make_company, clients, web, f"Pizza {RUN} History")
    company, page, question, answer = ex.company, ex.page, ex.question, ex.answer
    guest = await page.guest_name()

    # Reload: the address bar kept the open chat; the page keeps nothing but
    # the guest's credentials, so the messages come from the guest's archive.
    await page.page.reload()
    assert await page.guest_name() == guest
    await page.expect_messages(company.name, [question, answer])

    # Close the tab, open the page again: the same guest, the same conversation.
    await page.new_tab()
    await page.goto()
    assert await page.guest_name() == guest
    await page.search(company.name)
    await page.card(company.name).get_by_role("button", name="Message").click()
    await page.expect_messages(company.name, [question, answer])

    # Another browser is another guest, with no history.
    other = await web(company=company.slug)
    assert await other.guest_name() != guest
    await expect(other.log(company.name)).to_contain_text("Write your question", timeout=TIMEOUT_MS)


async def first_response_measured(customer: Any, company: str, wait: float = 10) -> None:
    """Ask the company's disco#info until it reports a first-response time
    (the component measures it in the background after the first request)."""
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        qid = new_id()
        customer.send_xml(
            f'<iq type="get" id="{qid}" to="{company}">'
            '<query xmlns="http://jabber.org/protocol/disco#info"/></iq>'
        )
        reply = await customer.inbox.expect(
            lambda el, qid=qid: local(el.tag) == "iq" and el.get("id") == qid
        )
        if 'var="first-response"' in ET.tostring(reply, encoding="unicode"):
            return
        assert asyncio.get_running_loop().time() < deadline, "no first-response in disco#info"
        await asyncio.sleep(0.2)


async def test_deep_link_opens_the_company_chat(
    make_company: MakeCompany, clients: Any, web: OpenPage
) -> None:
    name = f"Velo {RUN} Link"
    company = await make_company(
        agents=1, name=name, category="bike-shop", address="Ulitsa Lenina 12", city="Novosibirsk"
    )
    agent = await clients(company.agents[0])
    # Another customer was answered before: the company has a first-response time.
    earlier = await clients(await register("customer"))
    earlier.send_xml(chat(company.jid, "Open on Sunday?"))
    got = await agent.inbox.expect(is_message("Open on Sunday?"))
    agent.send_xml(chat(got.get("from", "").split("/")[0], "Yes, 10 to 16."))
    await earlier.inbox.expect(is_message("Yes, 10 to 16."))
    await first_response_measured(earlier, company.jid)

    # On a phone: the chat fills the screen, the company's card above it.
    page = await web(company=company.slug, phone=True)
    chat_region = page.chat(name)
    await expect(chat_region).to_be_visible(timeout=TIMEOUT_MS)
    await expect(chat_region).to_contain_text("Ulitsa Lenina 12, Novosibirsk", timeout=TIMEOUT_MS)
    await expect(chat_region).to_contain_text("Usually answers within a minute")
    await expect(page.page.get_by_role("region", name="Companies")).to_be_hidden()
    await expect(chat_region.get_by_label("Your message")).to_be_in_viewport()
    await expect(chat_region.get_by_role("button", name="Send")).to_be_in_viewport()
    await page.send(name, "Do you repair carbon frames?")
    await agent.inbox.expect(is_message("Do you repair carbon frames?"))
    await page.expect_messages(name, ["Do you repair carbon frames?"])

    # Back to the list, which fills the screen in turn.
    await chat_region.get_by_role("button", name="Back to the list").click()
    await expect(page.page.get_by_role("region", name="Companies")).to_be_visible()
    await expect(chat_region).to_be_hidden()

    # A company that never was, one removed from the directory, a link that no
    # company can have: said in words, and nothing to type into.
    gone = await make_company(agents=0, name=f"Gone {RUN}")
    chatting = await web(company=gone.slug)
    await expect(chatting.log(gone.name)).to_contain_text("Write your question", timeout=TIMEOUT_MS)
    assert (await orgchat("company", "remove", gone.slug)).code == 0
    await chatting.send(gone.name, "Still there?")
    bounced = chatting.log(gone.name).get_by_role("listitem").filter(has_text="Still there?")
    await expect(bounced).to_contain_text("Not delivered", timeout=TIMEOUT_MS)
    await expect(bounced).to_contain_text("This company was not found")
    await expect(chatting.page.get_by_label("Your message")).to_be_hidden()
    for slug in (f"t{RUN}-no-such-company", gone.slug, "No such company!"):
        missing = await web(company=slug)
        await expect(missing.chat(slug)).to_contain_text(
            "This company was not found. It may have left the directory.", timeout=TIMEOUT_MS
        )
        await expect(missing.page.get_by_label("Your message")).to_be_hidden()


async def test_russian_from_the_browser_language(make_company: MakeCompany, web: OpenPage) -> None:
    name = f"Apteka {RUN}"
    await make_company(
        agents=0,
        name=name,
        category="pharmacy",
        city="Tomsk",
        timezone="UTC",
        hours=closed_now_hours(),
    )
    page = await web(locale="ru-RU", permissions=("notifications",))

    await expect(page.page.get_by_text(re.compile(r"Вы гость: guest-"))).to_be_visible(
        timeout=TIMEOUT_MS
    )
    await expect(page.page.get_by_role("heading", name="Справочник города")).to_be_visible()
    await page.page.get_by_label("Найти компанию").fill(name)
    await page.page.get_by_role("button", name="Найти").click()
    card = page.card(name)
    await expect(card).to_contain_text("Аптека · Tomsk", timeout=TIMEOUT_MS)
    weekday = closed_now_hours().split()[0]
    day = {"Mo": "Пн", "Tu": "Вт", "We": "Ср", "Th": "Чт", "Fr": "Пт", "Sa": "Сб", "Su": "Вс"}[
        weekday
    ]
    await expect(card).to_contain_text("Закрыто · Откроется")
    await expect(card).to_contain_text(f"{day} 10:00-12:00")
    await expect(page.page.locator("body")).not_to_contain_text("XEP")
    await expect(card.get_by_role("button", name="Написать")).to_be_visible()
    await expect(page.page.get_by_role("checkbox", name="Сообщать об ответах")).to_be_visible()

    # Switched by hand, and kept.
    await page.page.get_by_role("button", name="English").click()
    await expect(card.get_by_role("button", name="Message")).to_be_visible()
    await page.page.reload()
    await expect(page.page.get_by_text(GUEST)).to_be_visible(timeout=TIMEOUT_MS)
    await expect(page.page.get_by_role("button", name="Русский")).to_be_visible()


async def test_a_person_logs_in_with_their_account(
    make_company: MakeCompany, clients: Any, web: OpenPage
) -> None:
    """An XMPP account instead of the guest: the conversation from another client is there."""
    name = f"Hammer {RUN} Login"
    company = await make_company(agents=1, name=name, category="hardware")
    agent = await clients(company.agents[0])
    account = await register("webuser")
    phone = await clients(account)
    phone.send_xml(chat(company.jid, "Do you cut keys?"))
    got = await agent.inbox.expect(is_message("Do you cut keys?"))
    agent.send_xml(chat(got.get("from", "").split("/")[0], "Yes, while you wait."))
    await phone.inbox.expect(is_message("Yes, while you wait."))

    page = await web()
    guest = await page.guest_name()
    await page.page.get_by_role("button", name="Log in").click()
    dialog = page.page.get_by_role("dialog", name="Log in with your XMPP account")
    await dialog.get_by_label("XMPP address").fill(account.jid)
    await dialog.get_by_label("Password").fill("not the password")
    await dialog.get_by_role("button", name="Log in").click()
    await expect(dialog.get_by_role("alert")).to_have_text(
        "Wrong address or password.", timeout=TIMEOUT_MS
    )
    await dialog.get_by_label("Password").fill(account.password)
    await dialog.get_by_role("button", name="Log in").click()
    await expect(page.page.get_by_text(f"Logged in as {account.jid}")).to_be_visible(
        timeout=TIMEOUT_MS
    )

    await page.search(name)
    await page.card(name).get_by_role("button", name="Message").click()
    await page.expect_messages(name, ["Do you cut keys?", "Yes, while you wait."])
    mine = page.log(name).get_by_role("listitem").filter(has_text="Do you cut keys?")
    await expect(mine).to_contain_text("You: Do you cut keys?")

    # Logged out: the same guest as before, who never wrote to this company.
    await page.page.get_by_role("button", name="Log out").click()
    assert await page.guest_name() == guest
    await expect(page.log(name)).to_contain_text("Write your question", timeout=TIMEOUT_MS)


def displayed(mid: str) -> Predicate:
    """The company's agent is told that the person has seen the message ``mid``."""

    def pred(el: ET.Element) -> bool:
        marker = child(el, "displayed", MARKERS)
        return local(el.tag) == "message" and marker is not None and marker.get("id") == mid

    return pred


async def ask(page: WebPage, agent: Any, name: str, question: str) -> str:
    """The guest writes ``question`` in the open chat with ``name``; the agent gets it
    from the conversation's address, which is returned."""
    await page.send(name, question)
    got = await agent.inbox.expect(is_message(question))
    return got.get("from", "").split("/")[0]


async def test_unread_answers_are_counted_until_seen(
    make_company: MakeCompany, clients: Any, web: OpenPage
) -> None:
    word = f"Unread {RUN}"
    pizza = await make_company(agents=1, name=f"{word} Pizza", category="restaurant")
    tyres = await make_company(agents=1, name=f"{word} Tyres", category="tyres")
    pizza_agent = await clients(pizza.agents[0])
    tyres_agent = await clients(tyres.agents[0])
    page = await web()
    await page.guest_name()
    await page.search(word)
    await expect(page.cards()).to_have_count(2, timeout=TIMEOUT_MS)
    await page.card(tyres.name).get_by_role("button", name="Message").click()
    tyres_conv = await ask(page, tyres_agent, tyres.name, "Winter tyres in stock?")
    await page.card(pizza.name).get_by_role("button", name="Message").click()
    pizza_conv = await ask(page, pizza_agent, pizza.name, "Open till midnight?")

    # The tyre shop answers while the pizzeria's chat is open: counted on its
    # card, in the list of new answers and in the tab's title.
    tyres_agent.send_xml(chat(tyres_conv, "Yes, 16 inch too.", extra=MARKABLE))
    await expect(page.card(tyres.name)).to_contain_text("1 new answer", timeout=TIMEOUT_MS)
    await expect(page.page).to_have_title("(1) City directory")
    new_answers = page.page.get_by_role("navigation", name="New answers")
    await expect(new_answers.get_by_role("button", name=tyres.name)).to_be_visible()

    # The pizzeria answers while the page is in the background: counted, not marked seen.
    await page.set_hidden(True)
    answer_id = new_id()
    pizza_agent.send_xml(chat(pizza_conv, "Till 2 am.", answer_id, MARKABLE))
    await expect(page.page).to_have_title("(2) City directory", timeout=TIMEOUT_MS)
    await expect(page.card(pizza.name)).to_contain_text("1 new answer")
    await pizza_agent.inbox.absent(displayed(answer_id))

    # In front again: the open chat's answer is seen, and the pizzeria is told so.
    await page.set_hidden(False)
    await expect(page.page).to_have_title("(1) City directory", timeout=TIMEOUT_MS)
    await expect(page.card(pizza.name)).not_to_contain_text("new answer")
    await pizza_agent.inbox.expect(displayed(answer_id))

    # A reload keeps the count; the list of new answers opens the chat.
    await page.page.reload()
    await page.guest_name()
    await expect(page.page).to_have_title("(1) City directory", timeout=TIMEOUT_MS)
    await new_answers.get_by_role("button", name=tyres.name).click()
    await page.expect_messages(tyres.name, ["Winter tyres in stock?", "Yes, 16 inch too."])
    await expect(page.page).to_have_title("City directory")
    await expect(new_answers).to_be_hidden()


async def test_a_notification_announces_an_answer_in_the_background(
    make_company: MakeCompany, clients: Any, web: OpenPage
) -> None:
    name = f"Notify {RUN} Pizza"
    company = await make_company(agents=1, name=name, category="restaurant")
    agent = await clients(company.agents[0])
    page = await web(company=company.slug, permissions=("notifications",))
    await page.guest_name()
    notify = page.page.get_by_role("checkbox", name="Notify me of answers")
    await notify.check()
    await expect(notify).to_be_checked()
    assert await page.page.evaluate("window.testPermissionRequests") == 1
    question = "A table for two at 7 pm?"
    conversation = await ask(page, agent, name, question)

    # The page in front: the answer is in the chat, and no notification.
    agent.send_xml(chat(conversation, "Inside or outside?"))
    await page.expect_messages(name, [question, "Inside or outside?"])

    # Back to the list, the page in the background: the next answer is announced,
    # with the company's name and the answer as text.
    await page.chat(name).get_by_role("button", name="Back to the list").click()
    await page.set_hidden(True)
    answer = "By the <b>window</b> & quiet?"
    agent.send_xml(chat(conversation, escape(answer)))
    await page.page.wait_for_function("window.testNotifications.length > 0", timeout=TIMEOUT_MS)
    assert await page.notifications() == [{"title": name, "body": answer}]
    await expect(page.page).to_have_title("(1) City directory")

    # A click on the notification opens the chat; the answer is seen once the page is in front.
    await page.page.evaluate("window.testNotifications[0].dispatchEvent(new Event('click'))")
    await page.set_hidden(False)
    await page.expect_messages(name, [question, "Inside or outside?", answer])
    await expect(page.page).to_have_title("City directory")
    assert len(await page.notifications()) == 1


async def test_bosh_when_the_websocket_cannot_be_established(
    make_company: MakeCompany, clients: Any, web: OpenPage
) -> None:
    name = f"Bosh {RUN} Pizza"
    company = await make_company(agents=1, name=name, category="restaurant")
    agent = await clients(company.agents[0])
    # As behind a proxy that does not pass WebSockets: ejabberd has none at this path.
    page = await web(company=company.slug, ws="ws://127.0.0.1:5280/no-websocket-here")
    async with page.page.expect_request(BOSH, timeout=TIMEOUT_MS):
        pass  # the page turns to BOSH (at once, or on its next attempt)
    await page.guest_name()
    question = "Gluten-free dough?"
    conversation = await ask(page, agent, name, question)
    agent.send_xml(chat(conversation, "We have it."))
    await page.expect_messages(name, [question, "We have it."])


def brand() -> str:
    """A made-up word, new in each run, that finds this run's companies by name."""
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    return "".join(
        consonants[b % len(consonants)] + vowels[b // len(consonants) % len(vowels)]
        for b in bytes.fromhex(RUN)
    ).capitalize()


async def test_screenshots_of_the_directory_and_a_chat(
    make_company: MakeCompany, clients: Any, web: OpenPage
) -> None:
    """docs/screenshots/directory.png and chat.png, which README.md shows."""
    word = brand()
    city = {"city": "Novosibirsk", "timezone": "Asia/Novosibirsk"}
    pizza = await make_company(
        agents=1,
        name=f"{word} Pizza",
        category="restaurant",
        address="Krasny prospekt 25",
        phone="+7 383 555-01-25",
        hours="Mo-Su 10:00-23:00",
        **city,
    )
    await make_company(
        agents=0,
        name=f"{word} Tyres",
        category="tyres",
        address="Sibirskaya ulitsa 7",
        hours=closed_now_hours(),
        **city,
    )
    await make_company(
        agents=0,
        name=f"{word} Pharmacy",
        category="pharmacy",
        address="Ulitsa Lenina 12",
        hours="24/7",
        **city,
    )
    agent = await clients(pizza.agents[0])
    page = await web(permissions=("notifications",))
    await page.page.set_viewport_size({"width": 1000, "height": 700})
    await page.guest_name()
    await page.search(word.lower())
    await expect(page.cards()).to_have_count(3, timeout=TIMEOUT_MS)
    for address in ("Krasny prospekt 25", "Sibirskaya ulitsa 7", "Ulitsa Lenina 12"):
        await expect(page.cards().filter(has_text=address)).to_have_count(1, timeout=TIMEOUT_MS)
    await expect(page.card(pizza.name)).to_contain_text("Mo-Su 10:00-23:00")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.page.screenshot(path=SCREENSHOTS / "directory.png")

    await page.card(pizza.name).get_by_role("button", name="Message").click()
    question = "Do you deliver to Akademgorodok?"
    conversation = await ask(page, agent, pizza.name, question)
    agent.send_xml(chat(conversation, "Yes, within 40 minutes. Pizza or pasta?"))
    await page.expect_messages(pizza.name, [question, "Yes, within 40 minutes. Pizza or pasta?"])
    mine = page.log(pizza.name).get_by_role("listitem").filter(has_text=question)
    await expect(mine).to_contain_text("Delivered", timeout=TIMEOUT_MS)
    await page.page.screenshot(path=SCREENSHOTS / "chat.png")


def has_link(el: ET.Element) -> bool:
    """A message that carries a file's address, as clients attach files."""
    return local(el.tag) == "message" and child(el, "x", NS_OOB) is not None


def uploads_of(page: WebPage) -> list[Request]:
    """The page's HTTP requests to the upload service, from now on."""
    requests: list[Request] = []
    page.page.on("request", lambda r: requests.append(r) if "/upload/" in r.url else None)
    return requests


async def test_a_photo_reaches_the_agent_and_shows_inline(
    make_company: MakeCompany, clients: Any, web: OpenPage
) -> None:
    name = f"Koleso {RUN} Photo"
    company = await make_company(agents=1, name=name, category="tyres")
    agent = await clients(company.agents[0])
    page = await web(company=company.slug)
    await page.guest_name()
    uploads = uploads_of(page)
    await page.attach(name, {"name": "my worn tyre.png", "mimeType": "image/png", "buffer": PNG})

    # The agent gets the photo's address as the text and as a link to the file.
    got = await agent.inbox.expect(has_link)
    url = got.findtext("{jabber:client}body") or ""
    link = child(got, "x", NS_OOB)
    assert link is not None and link.findtext(f"{{{NS_OOB}}}url") == url
    assert url.startswith("http://127.0.0.1:5280/upload/") and url.endswith(".png"), url
    assert "worn" not in url  # the person's own file name stays with them
    with await asyncio.to_thread(http, "GET", url) as response:
        assert response.read() == PNG
    puts = [r for r in uploads if r.method == "PUT"]
    assert len(puts) == 1 and puts[0].headers["content-type"] == "image/png"

    await page.expect_photo(name, url)
    mine = page.log(name).get_by_role("listitem").filter(has=page.page.get_by_role("img"))
    await expect(mine).to_contain_text("Delivered", timeout=TIMEOUT_MS)
    await expect(page.chat(name)).not_to_contain_text("Sending the photo")

    # The archive keeps the text alone: still a photo after a reload.
    await page.page.reload()
    await page.guest_name()
    await page.expect_photo(name, url)


async def test_what_is_not_a_photo_or_too_big_is_not_sent(
    make_company: MakeCompany, clients: Any, web: OpenPage
) -> None:
    name = f"Koleso {RUN} Limits"
    company = await make_company(agents=1, name=name, category="tyres")
    agent = await clients(company.agents[0])
    page = await web(company=company.slug)
    await page.guest_name()
    await expect(page.log(name)).to_contain_text("Write your question", timeout=TIMEOUT_MS)
    uploads = uploads_of(page)
    status = page.chat(name).get_by_role("status")

    await page.attach(name, {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"})
    await expect(status).to_contain_text("Only photos can be sent: JPEG, PNG, WebP or GIF.")
    big = PNG + bytes(11 * 1024 * 1024)
    await page.attach(name, {"name": "huge.png", "mimeType": "image/png", "buffer": big})
    await expect(status).to_contain_text(
        "This photo is too big (11 MB): at most 10 MB can be sent.", timeout=TIMEOUT_MS
    )
    await page.page.get_by_role("button", name="Русский").click()
    russian = page.page.get_by_role("region", name=f"Чат с компанией {name}")
    await expect(russian.get_by_role("status")).to_contain_text(
        "Фото слишком большое (11 МБ): можно отправить не больше 10 МБ."
    )
    await expect(russian.get_by_role("button", name="Прикрепить фото")).to_be_enabled()

    await agent.inbox.absent(is_message())
    assert uploads == []
    await expect(russian.get_by_role("log").get_by_role("listitem")).to_have_text(
        ["Задайте вопрос: компания ответит здесь."]
    )


async def test_an_agents_photo_shows_inline(
    make_company: MakeCompany, clients: Any, web: OpenPage
) -> None:
    ex = await guest_asks_agent_answers(make_company, clients, web, f"Pizza {RUN} Photo")
    # The agent sends a photo as Conversations does: uploaded, its address as
    # the text and as a link.
    service, _ = await upload_service(ex.agent)
    answer = await iq(ex.agent, service, slot_request("pizza.png", len(PNG)))
    slot = child(answer, "slot", NS_UPLOAD)
    assert slot is not None, ET.tostring(answer)
    put, get = (child(slot, kind, NS_UPLOAD) for kind in ("put", "get"))
    assert put is not None and get is not None
    url = get.get("url") or ""
    with await asyncio.to_thread(http, "PUT", put.get("url") or "", PNG):
        pass
    link = f'<x xmlns="{NS_OOB}"><url>{escape(url)}</url></x>'
    ex.agent.send_xml(chat(ex.conversation, escape(url), extra=link))
    await ex.page.expect_photo(ex.company.name, url)
    theirs = ex.page.log(ex.company.name).get_by_role("listitem").last
    await expect(theirs).to_contain_text(f"{ex.company.name}:")

    # An image elsewhere, or a text with an address in it, stays text.
    for text in ("http://example.com/tyre.png", f"See {url}"):
        ex.agent.send_xml(chat(ex.conversation, escape(text)))
    await ex.page.expect_messages(
        ex.company.name,
        [ex.question, ex.answer, "http://example.com/tyre.png", f"See {url}"],
    )
    await expect(ex.page.log(ex.company.name).get_by_role("img")).to_have_count(1)


async def test_the_directory_is_found_by_service_discovery(
    make_company: MakeCompany, web: OpenPage
) -> None:
    """No component domain in the address: the page finds it among the items of
    its host, each host its own (ejabberd lists a component on the host whose
    name is the longest suffix of its domain)."""
    ours = await make_company(agents=0, name=f"Pizza {RUN} Discovered", category="restaurant")
    mine = re.compile(rf"^{re.escape(ours.name)}$")
    page = await web()  # test.localhost: the tests' component, biz.test.localhost
    await page.guest_name()
    await page.search(ours.name)
    await expect(
        page.cards().filter(has=page.page.get_by_role("heading", name=mine))
    ).to_have_count(1, timeout=TIMEOUT_MS)

    # The development host finds the development stack's directory (the demo's
    # Pizza Napoli), not the tests' one.
    dev = await web(xmpp="localhost")
    await dev.guest_name()
    await dev.search("pizza")
    demo = re.compile(r"^Pizza Napoli$")
    await expect(dev.cards().filter(has=dev.page.get_by_role("heading", name=demo))).to_have_count(
        1, timeout=TIMEOUT_MS
    )
    await expect(dev.cards().filter(has=dev.page.get_by_role("heading", name=mine))).to_have_count(
        0
    )

    # Given in the address, the domain is not looked for: a wrong one finds nothing.
    lost = await web(service="nowhere.test.localhost")
    await lost.guest_name()
    await lost.search("pizza")
    await expect(lost.page.get_by_text("The search is not available right now.")).to_be_visible(
        timeout=TIMEOUT_MS
    )
    await expect(lost.cards()).to_have_count(0)


async def test_a_closed_companys_reply_says_when_it_opens_in_the_persons_time(
    make_company: MakeCompany, web: OpenPage
) -> None:
    """The away reply says when the company opens in its own zone; the page adds
    the same moment in the person's (here New York's, for a shop in Novosibirsk)."""
    day = day_after_tomorrow()
    shop = await make_company(
        agents=1, name=f"Night {RUN} Shop", hours=f"{day} 09:00-18:00", timezone="Asia/Novosibirsk"
    )
    page = await web(company=shop.slug, timezone="America/New_York")
    await page.guest_name()
    await page.send(shop.name, "Are you open?")
    line = page.log(shop.name).get_by_text(re.compile("^In your time, they open "))
    await expect(line).to_be_visible(timeout=TIMEOUT_MS)
    # The next opening, 09:00 in Novosibirsk, is another hour in New York.
    novosibirsk = ZoneInfo("Asia/Novosibirsk")
    opens = dt.datetime.now(novosibirsk).replace(hour=9, minute=0, second=0, microsecond=0)
    while opens.strftime("%a")[:2] != day or opens <= dt.datetime.now(novosibirsk):
        opens += dt.timedelta(days=1)
    in_new_york = opens.astimezone(ZoneInfo("America/New_York")).strftime("%I:%M %p")
    shown = await line.inner_text()
    assert in_new_york in shown and "09:00 AM" not in shown, (in_new_york, shown)


async def test_a_flood_of_guests_from_one_address_gets_a_clear_refusal(web: OpenPage) -> None:
    """ejabberd refuses in-band registrations from an address that registered
    less than `registration_timeout` ago (production: 600 s; off in development,
    where every test registers from 127.0.0.1). Its answer is passed to the page
    here as ejabberd words it, and the person reads a sentence, not an error."""
    refused: list[str] = []

    def websocket(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            text = message if isinstance(message, str) else message.decode()
            if "jabber:iq:register" in text and not refused:
                iq_id = re.search(r"id=[\"']([^\"']+)", text)
                assert iq_id is not None, text
                refused.append(iq_id.group(1))
                ws.send(
                    f"<iq xmlns='jabber:client' type='error' id='{iq_id.group(1)}'>"
                    "<error type='wait'><resource-constraint"
                    " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text"
                    " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Users are not allowed to"
                    " register accounts so quickly</text></error></iq>"
                )
            else:
                server.send(message)

        ws.on_message(from_page)

    page = await web(websocket=websocket)
    notice = page.page.get_by_text("Too many new visitors from your network right now.")
    await expect(notice).to_be_visible(timeout=TIMEOUT_MS)
    assert refused
    await expect(page.page.get_by_text(GUEST)).to_have_count(0)
