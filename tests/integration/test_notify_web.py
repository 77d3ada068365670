"""Notifications that lead back to the web page (issue 15): web push and email links.

Push: the page in a browser (Debian's Chromium), through its notifications
box (``web/push.js``), registers the service worker (``web/sw.js``) and a push
subscription with the VAPID key the component advertises; the customer
leaves, an agent answers, the component pushes to the tests' push service
(:class:`PushEndpoint`: real HTTP, VAPID checked, payload decrypted with the
subscription's private key); the decrypted payload is delivered to the
service worker through the Chrome DevTools Protocol
(``ServiceWorker.deliverPushMessage``), which shows the notification; a
``notificationclick`` takes the page's tab to the conversation.

Headless Chromium has no push service: ``pushManager.subscribe`` cannot work
there (in a Playwright context it is refused, "no Push API in incognito";
in a persistent profile it waits for Google's servers forever). The page's
``PushManager`` is therefore replaced by the tests' hooks (``FAKE_PUSH``),
which hand ``push.js`` the subscription of the tests' push service, with
its keys; everything else is the browser's and the component's own. A
system notification cannot be clicked headless either: the test dispatches
the ``notificationclick`` event in the worker itself (a script-made
``NotificationEvent``, which may navigate a tab of the page but not open a
new window: that needs the click of a person).

Email: a guest confirmed an address, leaves, an agent answers; one email
arrives with a link to the conversation on the page carrying a login token
(never the password). A fresh client logs in with it (SASL X-OAUTH2) and
reads the conversation from the guest's archive; a changed token, another
account's name, and an expired token are refused; the page's Strophe.js
logs in with it too.

The page itself (``web/app.js``): its "Notifications and email" dialog turns
push on and off (the same test push service and ``PushManager`` stand-in),
and sets and confirms the email address; the email's link, opened in a fresh
browser context, logs that guest in with the token and shows the conversation.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from playwright.async_api import Browser, BrowserContext, CDPSession, Locator, Page, expect

from component.config import PushSettings
from component.ejabberd_api import EjabberdApi
from component.features.notify.links import PageLinks
from component.features.notify.push import PushSender, b64url_encode
from tests.integration.browser import CHROMIUM, TIMEOUT_MS, chromium
from tests.integration.clients import SlixClient, chat, is_message
from tests.integration.conftest import (
    API,
    PAGE_URL,
    REPO,
    VAPID_KEY,
    VHOST,
    Account,
    MakeCompany,
    api,
)
from tests.integration.mailbox import Mailbox, text_of
from tests.integration.push_endpoint import PushEndpoint, verify_vapid
from tests.integration.test_mam import fin, form, forwarded, mam
from tests.integration.test_notify import (
    confirm_email,
    customer_offline,
    customer_online,
    iq,
    log_out,
    mail_address,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

ORIGIN = "http://127.0.0.1:5280"
SITE = f"{ORIGIN}/web/"
WS = "ws://127.0.0.1:5280/ws"
#: The files the tests load from ejabberd (WEB_ROOT): the page and this issue's.
SERVED = ("sw.js", "push.js", "index.html", "app.js", "xmpp.js", "i18n.js", "style.css")
GUEST = re.compile(r"You are a guest: (guest-[0-9a-f]{8})")

#: The page's PushManager, replaced: ``subscribe`` and ``getSubscription`` give
#: the subscription in ``window.testSubscription`` (set by the test), and record
#: the options ``push.js`` passed and whether it unsubscribed.
FAKE_PUSH = """
(() => {
  let current = null;
  const make = (json, options) => ({
    endpoint: json.endpoint,
    options,
    toJSON: () => json,
    unsubscribe: async () => { current = null; window.testUnsubscribed = true; return true; },
  });
  PushManager.prototype.subscribe = async function (options) {
    window.testSubscribeOptions = {
      userVisibleOnly: options.userVisibleOnly,
      key: Array.from(new Uint8Array(options.applicationServerKey)),
    };
    current = make(window.testSubscription, options);
    return current;
  };
  PushManager.prototype.getSubscription = async function () {
    if (!current && window.testSubscription) current = make(window.testSubscription, {});
    return current;
  };
})();
"""

#: In the service worker: a click on the notification tagged ``tag`` (a person's
#: click cannot happen headless; a script-made event can navigate a tab, not open one).
CLICK = """async (tag) => {
  const [notification] = await self.registration.getNotifications({ tag });
  self.dispatchEvent(new NotificationEvent('notificationclick', { notification }));
}"""


def served_problem() -> str | None:
    """Why the browser test cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: run scripts/stack.sh up (Debian package chromium)"
    for name in SERVED:
        try:
            with urllib.request.urlopen(SITE + name, timeout=10) as resp:
                served = resp.read()
        except OSError as exc:
            return f"ejabberd does not serve {SITE}{name}: {exc}"
        if served != (REPO / "web" / name).read_bytes():
            return f"ejabberd serves another {name} at {SITE} than this checkout's web/{name}"
    return None


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser(services: None) -> AsyncIterator[Browser]:
    problem = served_problem()
    if problem:
        pytest.fail(problem, pytrace=False)
    async with chromium() as browser:
        yield browser


async def new_context(browser: Browser) -> BrowserContext:
    context = await browser.new_context()
    await context.grant_permissions(["notifications"], origin=ORIGIN)
    return context


async def guest() -> Account:
    """An account named as the page names its guests, on the tests' host."""
    account = Account(f"guest-{secrets.token_hex(4)}@{VHOST}", secrets.token_hex(8))
    await api("register", {"user": account.user, "host": VHOST, "password": account.password})
    return account


async def registration_id(
    context: BrowserContext, page: Page, scope: str
) -> tuple[CDPSession, str]:
    """A DevTools Protocol session with its ServiceWorker domain on, and the
    service worker registration of ``scope`` as that domain names it."""
    cdp = await context.new_cdp_session(page)
    found: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def updated(event: dict[str, Any]) -> None:
        for reg in event["registrations"]:
            if reg["scopeURL"] == scope and not reg["isDeleted"] and not found.done():
                found.set_result(reg["registrationId"])

    cdp.on("ServiceWorker.workerRegistrationUpdated", updated)
    await cdp.send("ServiceWorker.enable")
    return cdp, await asyncio.wait_for(found, 10)


async def notifications(page: Page, count: int = 0) -> list[dict[str, Any]]:
    """The notifications the service worker shows, once there are ``count`` (or
    after TIMEOUT_MS: a push event may wait for a busy machine)."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT_MS / 1000
    while True:
        shown: list[dict[str, Any]] = await page.evaluate(
            """async () => (await (await navigator.serviceWorker.ready).getNotifications())
                 .map(n => ({ title: n.title, body: n.body, tag: n.tag, data: n.data }))"""
        )
        if len(shown) >= count or asyncio.get_running_loop().time() > deadline:
            return shown
        await asyncio.sleep(0.1)


async def test_unsubscribe_removes_only_that_device(
    make_company: MakeCompany, clients: Any, db: asyncpg.Connection
) -> None:
    """``<unsubscribe/>`` over plain XMPP: that endpoint goes, the others stay; twice is fine."""
    account = await guest()
    customer = await clients(account)
    async with PushEndpoint() as service:
        phone, laptop = service.subscribe(), service.subscribe()
        for device in (phone, laptop):
            answer = await iq(
                customer,
                f'<subscribe xmlns="urn:orgchat:notify:0" endpoint="{device.endpoint}" '
                f'p256dh="{device.p256dh}" auth="{device.auth}"/>',
            )
            assert answer.get("type") == "result"
        for _ in range(2):
            answer = await iq(
                customer, f'<unsubscribe xmlns="urn:orgchat:notify:0" endpoint="{phone.endpoint}"/>'
            )
            assert answer.get("type") == "result"
        left = await db.fetch(
            "SELECT endpoint FROM push_subscriptions WHERE address = $1", account.jid
        )
        assert [r["endpoint"] for r in left] == [laptop.endpoint]
        answer = await iq(customer, '<unsubscribe xmlns="urn:orgchat:notify:0"/>')
        assert answer.get("type") == "error"


# -- email links ---------------------------------------------------------------------------


class TokenClient(SlixClient):
    """A fresh device that logs in with an email link's token (SASL X-OAUTH2 only)."""

    def __init__(self, jid: str, token: str) -> None:
        super().__init__(jid + "/link", "")
        self.plugin["feature_mechanisms"].use_mech = "X-OAUTH2"
        # slixmpp passes every credential but the name through bytes(): a str fails.
        self.credentials["access_token"] = token.encode()  # type: ignore[assignment]
        self.refused = asyncio.Event()
        self.add_event_handler("failed_all_auth", lambda _: self.refused.set())


async def token_login(jid: str, token: str) -> TokenClient | None:
    """The client, online; None when ejabberd refused the token."""
    client = TokenClient(jid, token)
    client.connect("127.0.0.1", 5222)
    ready = asyncio.ensure_future(client._ready.wait())
    refused = asyncio.ensure_future(client.refused.wait())
    done, pending = await asyncio.wait({ready, refused}, timeout=15, return_when="FIRST_COMPLETED")
    for task in pending:
        task.cancel()
    if ready in done:
        return client
    await client.stop()
    assert refused in done, "neither logged in nor refused within 15 s"
    return None


def link_in(text: str) -> str:
    links: list[str] = re.findall(r"(http://127\.0\.0\.1:5280/web/\S+)", text)
    [link] = links
    return link


@pytest.mark.parametrize(
    ("lang", "open_line", "note"),
    [
        ("en", "Open the chat: ", "without a password until"),
        ("ru", "Открыть чат: ", "без пароля до"),
    ],
)
async def test_a_guests_email_link_logs_a_fresh_client_in_to_the_conversation(
    make_company: MakeCompany,
    clients: Any,
    mailbox: Mailbox,
    rds: aioredis.Redis,
    lang: str,
    open_line: str,
    note: str,
) -> None:
    company = await make_company(agents=1, name="Tyre Shop Link")
    agent = await clients(company.agents[0])
    account = await guest()
    customer = await clients(account)
    address = mail_address("guest-link")
    await confirm_email(customer, mailbox, address, lang=lang)
    customer.send_xml(chat(company.jid, "Do you fit winter tyres today?"))
    got = await agent.inbox.expect(is_message("Do you fit winter tyres today?"))
    await log_out(customer, rds, account.jid)
    agent.send_xml(chat(got.get("from", "").split("/")[0], "Yes, come at 15:00"))

    [mail] = await mailbox.expect(address, wait=15)
    text = text_of(mail)
    assert "Yes, come at 15:00" in text
    link = link_in(text)
    assert "#" in link, f"no login in {link}: ejabberd issued no token (notify.login_link_failed)"
    assert f"{open_line}{link}" in text and note in text
    url = urllib.parse.urlsplit(link)
    assert urllib.parse.parse_qs(url.query) == {"xmpp": [VHOST], "company": [company.slug]}
    fragment = urllib.parse.parse_qs(url.fragment)
    assert fragment["jid"] == [account.jid]
    [token] = fragment["token"]
    # The password is nowhere in the email, neither part nor header.
    assert account.password not in mail.as_string()
    html = mail.get_body(preferencelist=("html",))
    assert html is not None and f'href="{link.replace("&", "&amp;")}"' in str(html.get_content())

    # A fresh device logs in with what the link carries and reads the conversation.
    device = await token_login(account.jid, token)
    assert device is not None, "the link's token was refused"
    try:
        results, answer = await mam(device, account.jid, form=form(**{"with": company.jid}))
        assert fin(answer).get("complete") == "true"
        assert [forwarded(r)[1:] for r in results] == [
            (account.jid, company.jid, "Do you fit winter tyres today?"),
            (company.jid, account.jid, "Yes, come at 15:00"),
        ]
    finally:
        await device.stop()

    # A changed token, or the token with another account, is refused.
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert await token_login(account.jid, tampered) is None
    other = await guest()
    assert await token_login(other.jid, token) is None


async def test_an_expired_login_link_is_refused_and_accounts_with_a_password_get_none(
    services: None,
) -> None:
    """PageLinks against the real ejabberd, with a one-second login."""
    links = PageLinks(page_url=PAGE_URL, api=EjabberdApi(API), vhost=VHOST, login_ttl=1)
    account = await guest()
    link = await links.for_email("some-shop", account.jid)
    assert link.login_expires is not None
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(link.url).fragment)["token"][0]
    await asyncio.sleep(2.5)
    assert await token_login(account.jid, token) is None
    # Not a guest: the plain link, no login in it.
    member = Account(f"anna-{secrets.token_hex(3)}@{VHOST}", secrets.token_hex(8))
    await api("register", {"user": member.user, "host": VHOST, "password": member.password})
    plain = await links.for_email("some-shop", member.jid)
    assert plain.url == f"{PAGE_URL}&company=some-shop" and plain.login_expires is None


async def test_the_page_logs_in_with_the_link_token(browser: Browser) -> None:
    """Strophe.js (the page's XMPP library) with push.js's TOKEN_LOGIN: X-OAUTH2 works."""
    links = PageLinks(page_url=PAGE_URL, api=EjabberdApi(API), vhost=VHOST, login_ttl=60)
    account = await guest()
    link = await links.for_email("some-shop", account.jid)
    assert link.login_expires is not None, "ejabberd issued no token: notify.login_link_failed"
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(SITE + "push.js")
        found = await page.evaluate(
            """async ({ href, ws, STROPHE }) => {
                 const push = await import('/web/push.js');
                 const { Strophe } = await import(STROPHE);
                 const link = push.readEmailLink(new URL(href));
                 const status = await new Promise((resolve) => {
                   const conn = new Strophe.Connection(ws, push.TOKEN_LOGIN);
                   conn.connect(link.jid, link.token, (s) => {
                     if (s === Strophe.Status.AUTHFAIL) resolve('refused');
                     if (s !== Strophe.Status.CONNECTED) return;
                     conn.disconnect();
                     resolve('connected');
                   });
                 });
                 return { company: link.company, jid: link.jid, status };
               }""",
            {
                "href": link.url,
                "ws": WS,
                "STROPHE": "/web/node_modules/strophe.js/dist/strophe.esm.js",
            },
        )
        assert found == {"company": "some-shop", "jid": account.jid, "status": "connected"}
    finally:
        await context.close()


# -- the page's own controls ---------------------------------------------------------------


async def page_guest(page: Page) -> str:
    """The guest's address the page shows once it is online."""
    identity = page.get_by_text(GUEST)
    await expect(identity).to_be_visible(timeout=TIMEOUT_MS)
    match = GUEST.search(await identity.inner_text())
    assert match, await identity.inner_text()
    return f"{match.group(1)}@{VHOST}"


async def open_settings(page: Page) -> Locator:
    await page.get_by_role("button", name="Notifications and email").click()
    dialog = page.get_by_role("dialog", name="Notifications and email")
    await expect(dialog).to_be_visible()
    return dialog


def chat_with(page: Page, name: str) -> Locator:
    return page.get_by_role("region", name=f"Chat with {name}")


async def write(page: Page, name: str, text: str) -> None:
    await chat_with(page, name).get_by_label("Your message").fill(text)
    await chat_with(page, name).get_by_role("button", name="Send").click()


async def expect_chat(page: Page, name: str, texts: list[str]) -> None:
    shown = chat_with(page, name).get_by_role("log").get_by_role("listitem").locator(".text")
    await expect(shown).to_have_text(texts, timeout=TIMEOUT_MS)


async def ask_code(dialog: Locator, mailbox: Mailbox, address: str) -> str:
    """Give ``address`` in the dialog; the code the component emailed it."""
    await dialog.get_by_label("Email address").fill(address)
    await dialog.get_by_role("button", name="Send me a code").click()
    await expect(dialog.get_by_text(f"We sent a code to {address}. Enter it here.")).to_be_visible(
        timeout=TIMEOUT_MS
    )
    [mail] = await mailbox.expect(address)
    code = str(mail["Subject"]).rsplit(" ", 1)[1]
    assert re.fullmatch(r"[0-9]{6}", code), mail["Subject"]
    return code


async def confirm_code(dialog: Locator, code: str, address: str) -> None:
    await dialog.get_by_label("Code from the email").fill(code)
    await dialog.get_by_role("button", name="Confirm").click()
    await expect(dialog.get_by_text(f"Answers you miss are emailed to {address}.")).to_be_visible(
        timeout=TIMEOUT_MS
    )
    await expect(dialog.get_by_role("button", name="Change the address")).to_be_visible()
    await expect(dialog.get_by_label("Email address")).to_be_hidden()
    await expect(dialog.get_by_label("Code from the email")).to_be_hidden()


async def push_subscriptions(db: asyncpg.Connection, jid: str) -> list[tuple[str, str, str]]:
    rows = await db.fetch(
        "SELECT endpoint, p256dh, auth FROM push_subscriptions WHERE address = $1", jid
    )
    return [tuple(r) for r in rows]


async def test_the_pages_notifications_box_turns_push_on_and_its_click_opens_the_chat(
    browser: Browser,
    make_company: MakeCompany,
    clients: Any,
    db: asyncpg.Connection,
    rds: aioredis.Redis,
) -> None:
    name = f"Push Page {secrets.token_hex(3)}"
    company = await make_company(agents=1, name=name)
    agent = await clients(company.agents[0])
    link = f"{PAGE_URL}&company={urllib.parse.quote(company.slug)}"
    async with PushEndpoint() as service:
        device = service.subscribe()
        subscription = {
            "endpoint": device.endpoint,
            "keys": {"p256dh": device.p256dh, "auth": device.auth},
        }
        context = await browser.new_context(locale="en-US")
        try:
            await context.grant_permissions(["notifications"], origin=ORIGIN)
            await context.add_init_script(FAKE_PUSH)
            await context.add_init_script(f"window.testSubscription = {json.dumps(subscription)};")
            page = await context.new_page()
            await page.goto(link)
            jid = await page_guest(page)

            # The box in "Notifications and email": ticked, the subscription reaches the component.
            dialog = await open_settings(page)
            box = dialog.get_by_role(
                "checkbox", name="Notify me of answers when this page is closed"
            )
            await expect(box).not_to_be_checked()
            await box.check()
            await expect(box).to_be_checked()
            await expect(box).to_be_enabled(timeout=TIMEOUT_MS)  # done, and nothing to say:
            await expect(dialog.locator("#push-status")).to_have_text("")
            assert await push_subscriptions(db, jid) == [
                (device.endpoint, device.p256dh, device.auth)
            ]
            used = await page.evaluate("window.testSubscribeOptions")
            assert used["userVisibleOnly"] is True
            assert (
                b64url_encode(bytes(used["key"]))
                == PushSender(PushSettings(VAPID_KEY)).public_key()
            )
            cdp, worker_id = await registration_id(context, page, SITE)

            # It stays on after a reload.
            await page.reload()
            await page_guest(page)
            dialog = await open_settings(page)
            await expect(box).to_be_checked()
            await dialog.get_by_role("button", name="Close").click()

            # The person writes, leaves (the tab goes to a page that runs nothing);
            # the agent answers; the component pushes.
            question = "Are winter tyres 205/55 R16 in stock?"
            await write(page, name, question)
            got = await agent.inbox.expect(is_message(question))
            await customer_online(rds, jid)
            await page.goto(SITE + "push.js")
            await customer_offline(rds, jid)
            answer = "Yes, four of them, 5 200 ₽ each"
            agent.send_xml(chat(got.get("from", "").split("/")[0], answer))
            for _ in range(150):
                if service.requests:
                    break
                await asyncio.sleep(0.1)
            [request] = service.requests
            verify_vapid(
                request.headers["authorization"], device.endpoint, "mailto:ops@biz.localhost"
            )
            plain = device.decrypt(request.body)
            assert json.loads(plain) == {
                "title": name,
                "body": answer,
                "unseen": 1,
                "jid": company.jid,
                "link": link,
            }

            # Delivered to the page's worker: the notification; its click opens the chat.
            [worker] = [w for w in context.service_workers if w.url == SITE + "sw.js"]
            await cdp.send(
                "ServiceWorker.deliverPushMessage",
                {"origin": ORIGIN, "registrationId": worker_id, "data": plain.decode()},
            )
            shown = await notifications(page, count=1)
            assert [(n["title"], n["body"]) for n in shown] == [(name, answer)]
            await worker.evaluate(CLICK, f"orgchat:{company.jid}")
            await page.wait_for_url(link, timeout=TIMEOUT_MS)
            await expect_chat(page, name, [question, answer])
            assert await page_guest(page) == jid
            # A push whose link leads off the page opens the page itself; no title: a word.
            hostile = {"body": "x", "jid": "evil@example.org", "link": "https://evil.example/"}
            await cdp.send(
                "ServiceWorker.deliverPushMessage",
                {"origin": ORIGIN, "registrationId": worker_id, "data": json.dumps(hostile)},
            )
            shown = await notifications(page, count=1)
            assert shown == [
                {
                    "title": "New answer",
                    "body": "x",
                    "tag": "orgchat:evil@example.org",
                    "data": {"url": SITE, "jid": "evil@example.org"},
                }
            ]

            # Off: the component forgets the subscription, the browser too.
            dialog = await open_settings(page)
            await expect(box).to_be_checked()
            await box.uncheck()
            await expect(dialog.get_by_text("Notifications are off on this device.")).to_be_visible(
                timeout=TIMEOUT_MS
            )
            await expect(box).not_to_be_checked()
            assert await page.evaluate("window.testUnsubscribed") is True
            assert await push_subscriptions(db, jid) == []
        finally:
            await context.close()


async def test_leaving_the_page_goes_offline_at_once_and_coming_back_online_again(
    browser: Browser, make_company: MakeCompany, clients: Any, rds: aioredis.Redis
) -> None:
    """The person follows a link elsewhere: the page's session ends at once
    (answers then go by push or email); back on it, the page is online again,
    and what is written reaches the company. (Headless Chromium here loads the
    page anew on "back" rather than restoring it from its back-forward cache:
    the page's reconnection on a restore, ``pageshow`` with ``persisted``, is
    not exercised.)"""
    name = f"Leave Page {secrets.token_hex(3)}"
    company = await make_company(agents=1, name=name)
    agent = await clients(company.agents[0])
    context = await browser.new_context(locale="en-US")
    try:
        page = await context.new_page()
        await page.goto(f"{PAGE_URL}&company={urllib.parse.quote(company.slug)}")
        jid = await page_guest(page)
        await write(page, name, "Are you open on Sunday?")
        await agent.inbox.expect(is_message("Are you open on Sunday?"))
        await customer_online(rds, jid)
        for visit in range(2):
            await page.goto(SITE + "push.js")
            await customer_offline(rds, jid)
            await page.go_back()
            await customer_online(rds, jid)
            await write(page, name, f"Back again ({visit + 1})")
            await agent.inbox.expect(is_message(f"Back again ({visit + 1})"))
    finally:
        await context.close()


async def test_a_browser_without_push_says_so(browser: Browser) -> None:
    context = await browser.new_context(locale="en-US")
    try:
        await context.add_init_script("delete window.PushManager;")
        page = await context.new_page()
        await page.goto(PAGE_URL)
        await page_guest(page)
        dialog = await open_settings(page)
        await expect(dialog.get_by_role("checkbox")).to_be_disabled()
        await expect(
            dialog.get_by_text("This browser cannot show notifications when the page is closed.")
        ).to_be_visible()
    finally:
        await context.close()


async def test_an_email_address_from_the_page_and_the_emails_link_in_a_fresh_browser(
    browser: Browser,
    make_company: MakeCompany,
    clients: Any,
    mailbox: Mailbox,
    rds: aioredis.Redis,
) -> None:
    name = f"Email Page {secrets.token_hex(3)}"
    company = await make_company(agents=1, name=name)
    agent = await clients(company.agents[0])
    address = mail_address("web-page")
    contexts: list[BrowserContext] = []

    async def fresh_page() -> Page:
        """A page in a browser context of its own: nothing stored."""
        contexts.append(await browser.new_context(locale="en-US"))
        return await contexts[-1].new_page()

    try:
        own = page = await fresh_page()
        await page.goto(f"{PAGE_URL}&company={urllib.parse.quote(company.slug)}")
        jid = await page_guest(page)
        stored = json.loads(
            await page.evaluate(f"localStorage.getItem('orgchat:{VHOST}:guest')") or "{}"
        )
        password = stored["password"]

        # The address, once; then the code the component emailed (a wrong one first).
        dialog = await open_settings(page)
        first = mail_address("web-page-first")
        code = await ask_code(dialog, mailbox, first)
        await dialog.get_by_label("Code from the email").fill(
            "000000" if code != "000000" else "111111"
        )
        await dialog.get_by_role("button", name="Confirm").click()
        await expect(dialog.get_by_role("alert")).to_have_text(
            "This code is not right. Check the last email and try again.", timeout=TIMEOUT_MS
        )
        await confirm_code(dialog, code, first)
        # Changed: the same two steps; the first serves until the new one is confirmed.
        await dialog.get_by_role("button", name="Change the address").click()
        code = await ask_code(dialog, mailbox, address)
        await expect(
            dialog.get_by_text(f"Answers you miss are emailed to {first}.")
        ).to_be_visible()
        await confirm_code(dialog, code, address)
        mailbox.messages.clear()
        await dialog.get_by_role("button", name="Close").click()

        # The person writes and leaves; the agent answers; one email, with a link.
        question = "Can you fit them on Saturday?"
        await write(page, name, question)
        got = await agent.inbox.expect(is_message(question))
        await customer_online(rds, jid)
        await page.goto(SITE + "push.js")  # in the page's scope, runs nothing
        await customer_offline(rds, jid)
        answer = "Saturday 11:00 is free"
        agent.send_xml(chat(got.get("from", "").split("/")[0], answer))
        [mail] = await mailbox.expect(address, wait=30)
        assert mailbox.to(first) == []
        link = link_in(text_of(mail))
        assert "#" in link, (
            f"no login in {link}: ejabberd issued no token (notify.login_link_failed)"
        )
        assert password not in mail.as_string() and password not in link
        token = urllib.parse.parse_qs(urllib.parse.urlsplit(link).fragment)["token"][0]

        # A fresh browser: the link logs that guest in and shows the conversation.
        page = await fresh_page()
        await page.goto(link)
        await expect_chat(page, name, [question, answer])
        assert await page_guest(page) == jid
        # The login left the address bar; the page keeps it for this tab, no password anywhere.
        assert "#" not in page.url and token not in page.url
        await expect(page.get_by_text("You came from an email")).to_be_visible()
        kept = await page.evaluate(
            """() => ({ local: { ...localStorage }, session: { ...sessionStorage } })"""
        )
        assert f"orgchat:{VHOST}:guest" not in kept["local"]
        assert json.loads(kept["session"][f"orgchat:{VHOST}:link"]) == {"jid": jid, "token": token}
        assert password not in json.dumps(kept)
        # A reload in that tab stays that guest.
        await page.reload()
        await expect_chat(page, name, [question, answer])
        assert await page_guest(page) == jid

        # The browser that is that guest already: its own login, the token not kept.
        await own.goto(link)
        await expect_chat(own, name, [question, answer])
        assert await page_guest(own) == jid
        assert "#" not in own.url
        assert await own.evaluate(f"sessionStorage.getItem('orgchat:{VHOST}:link')") is None
        await expect(own.get_by_text("You came from an email")).to_be_hidden()

        # A link whose token does not work: said, and the browser's own (new) guest.
        tampered = link[:-1] + ("A" if link[-1] != "A" else "B")
        page = await fresh_page()
        await page.goto(tampered)
        await expect(page.get_by_text("This link has expired.")).to_be_visible(timeout=TIMEOUT_MS)
        assert await page_guest(page) != jid
        assert "#" not in page.url
    finally:
        for context in contexts:
            await context.close()
