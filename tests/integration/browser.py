"""converse.js in Chromium, driven through Playwright, as a customer's browser client.

The page (``tests/integration/converse/index.html``) embeds converse.js from
the npm lock file in that directory (installed by scripts/stack.sh) and is
served by a small HTTP server on a free loopback port; converse.js logs in
over ejabberd's WebSocket (RFC 7395) at ``ws://127.0.0.1:5280/ws``.

Chromium is Debian's (``/usr/bin/chromium``): Playwright never downloads a
browser here. Everything a test asserts is what the page shows.
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
import urllib.parse
from collections.abc import AsyncIterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Locator,
    Page,
    Response,
    expect,
)

SITE = Path(__file__).resolve().parent / "converse"
CHROMIUM = Path("/usr/bin/chromium")
#: Every HTTP(S) request not to the test site (WebSockets are not routed).
OFF_LOOPBACK = re.compile(r"^(?!http://127\.0\.0\.1[:/])")
#: How long the page may take to show what a test waits for, in milliseconds.
TIMEOUT_MS = 20_000


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # the page's assets, one line each: noise in a test log


class StaticSite:
    """The test client's directory over HTTP on 127.0.0.1, in a thread."""

    def __init__(self, root: Path = SITE) -> None:
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="converse-site", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def start(self) -> StaticSite:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def site_problem(root: Path = SITE) -> str | None:
    """Why the test client cannot run on this machine, or None."""
    if not (root / "node_modules" / "converse.js" / "dist" / "converse.min.js").exists():
        return f"converse.js is not installed in {root}: run scripts/stack.sh up (npm ci)"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: run scripts/stack.sh up (Debian package chromium)"
    return None


class ConversePage:
    """One converse.js session in its own browser context (a device: its own storage)."""

    def __init__(self, context: BrowserContext, page: Page) -> None:
        self.context = context
        self.page = page
        self.console: list[str] = []
        self.closed = False
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.console.append(f"pageerror: {exc}"))
        page.on("response", self._on_response)
        page.on(
            "requestfailed",
            lambda req: self.console.append(f"request failed: {req.url} ({req.failure})"),
        )

    def _on_console(self, msg: ConsoleMessage) -> None:
        self.console.append(f"{msg.type}: {msg.text}")

    def _on_response(self, response: Response) -> None:
        if response.status >= 400:
            self.console.append(f"http {response.status}: {response.url}")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.console[-lines:])

    @classmethod
    async def open(
        cls, browser: Browser, site: str, jid: str, password: str, chat: str
    ) -> ConversePage:
        """Log ``jid`` in on a fresh device and open the chat with ``chat``."""
        context = await browser.new_context()
        try:
            # Nothing off this machine: converse.js's login page shows its
            # sponsors' logos from conversejs.org, which is not reachable here.
            await context.route(OFF_LOOPBACK, lambda route: route.abort())
            page = await context.new_page()
            session = cls(context, page)
            query = urllib.parse.urlencode({"jid": jid, "password": password, "chat": chat})
            await page.goto(f"{site}index.html?{query}")
            await session.wait_chat_open(chat)
        except BaseException:
            await context.close()
            raise
        return session

    def chat_view(self, jid: str) -> Locator:
        return self.page.locator(f'converse-chat[jid="{jid}"]')

    async def wait_chat_open(self, jid: str) -> None:
        """The chat with ``jid`` is on screen, its message box ready for typing."""
        try:
            await expect(self.chat_view(jid).locator("textarea.chat-textarea")).to_be_visible(
                timeout=TIMEOUT_MS
            )
        except AssertionError as exc:
            raise AssertionError(
                f"converse.js did not open the chat with {jid}:\n{self.log_tail()}"
            ) from exc

    async def send(self, jid: str, text: str) -> None:
        """Type ``text`` in the chat with ``jid`` and press Enter, as a person would."""
        box = self.chat_view(jid).locator("textarea.chat-textarea")
        await box.fill(text)
        await box.press("Enter")

    def messages(self, jid: str, sender: str | None = None) -> Locator:
        """The message texts shown in the chat with ``jid``; ``sender``: 'me' or 'them'."""
        scope = self.chat_view(jid)
        if sender is not None:
            scope = scope.locator(f".chat-msg__content--{sender}")
        return scope.locator(".chat-msg__text")

    async def expect_message(self, jid: str, text: str, sender: str | None = None) -> None:
        """``text`` is shown in the chat with ``jid`` (by ``sender``, if given)."""
        try:
            await expect(self.messages(jid, sender).filter(has_text=text)).to_have_count(
                1, timeout=TIMEOUT_MS
            )
        except AssertionError as exc:
            shown = await self.messages(jid).all_inner_texts()
            raise AssertionError(
                f"{text!r} (sender {sender}) not shown in the chat with {jid}; shown: {shown}\n"
                f"browser console:\n{self.log_tail()}"
            ) from exc

    async def close(self) -> None:
        """Log out by closing the device; safe to call twice."""
        if not self.closed:
            self.closed = True
            await self.context.close()


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, through Playwright; closed however the block ends."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            await browser.close()
