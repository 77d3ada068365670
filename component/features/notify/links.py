"""Links back to a customer's chat with a company on the web page (``web/``).

The page opens a company's chat from ``?company=SLUG`` (docs/operations.md,
"Web page"); :class:`PageLinks` adds it to the configured
``notify.page_url``, keeping the page's own parameters (``?xmpp=HOST``...).
A web push carries that plain link: the browser it reaches is the one that
subscribed, and has the customer's account already.

An email may be opened anywhere, and a guest (an account the page
registered, :mod:`component.features.guests`) has no password to type: the
page keeps it in the browser that registered it. A guest's email link
therefore also carries a login, in the fragment (never sent to a server,
nor in a ``Referer``)::

    https://example.org/web/?company=pizza-napoli#jid=guest-0a1b2c3d%40example.org&token=TOKEN

``TOKEN`` is an ejabberd OAuth token with the ``sasl_auth`` scope only,
issued for that account by ``oauth_issue_token`` for ``notify.login_link_ttl``
seconds: the page logs in with SASL ``X-OAUTH2`` (``\\0jid\\0TOKEN``). ejabberd
keeps the token with its account and expiry and refuses any other (a changed
character, another account, past its expiry); the guest's password is
neither in the link nor known to orgchat. Accounts with a password of their
own get the plain link and log in as usual.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from component.ejabberd_api import ApiError, EjabberdApi
from component.features.guests.rules import is_guest
from component.logs import get_logger

log = get_logger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class ChatLink:
    url: str
    #: When the login it carries stops working; None: it carries none.
    login_expires: dt.datetime | None = None


class PageLinks:
    """Links to the web page's chat with a company (``notify.page_url``)."""

    def __init__(
        self,
        *,
        page_url: str,
        api: EjabberdApi,
        vhost: str,
        login_ttl: int,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        parts = urlsplit(page_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"notify.page_url: not an http(s) address: {page_url!r}")
        self.page_url = page_url
        self.api = api
        self.vhost = vhost
        self.login_ttl = login_ttl
        self.now = now

    def chat(self, company_slug: str) -> str:
        """The page with that company's chat open."""
        parts = urlsplit(self.page_url)
        query = [
            (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "company"
        ]
        query.append(("company", company_slug))
        return urlunsplit(parts._replace(query=urlencode(query), fragment=""))

    async def for_email(self, company_slug: str, customer_jid: str) -> ChatLink:
        """The chat's link for an email to ``customer_jid``: with a login for a
        guest (see the module documentation). When ejabberd cannot issue the
        token now, the plain link: the email still quotes the answer and takes
        a reply."""
        url = self.chat(company_slug)
        if not is_guest(customer_jid, self.vhost):
            return ChatLink(url)
        expires = self.now() + dt.timedelta(seconds=self.login_ttl)
        try:
            token = await self.api.issue_login_token(customer_jid, self.login_ttl)
        except ApiError as exc:
            log.warning("notify.login_link_failed", jid=customer_jid, error=str(exc))
            return ChatLink(url)
        fragment = urlencode({"jid": customer_jid, "token": token})
        return ChatLink(f"{url}#{fragment}", expires)
