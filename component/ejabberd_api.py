"""A small client for ejabberd's HTTP API (mod_http_api).

Used to put contacts into users' rosters (``add_rosteritem``,
``delete_rosteritem``): a company into its agents' and customers' rosters, a
conversation into its agents'. XEP-0356 roster pushes fail on ejabberd 23.01,
the HTTP API works. And to expire abandoned guest accounts
(``registered_users``, ``get_last``, ``unregister``). Calls go through
httpx's async client; they are rare.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import ssl
from typing import Any

import httpx

from component.config import EjabberdSettings

#: The roster group of companies (a conversation's group is its company's name).
COMPANIES_GROUP = "Companies"
#: ``get_last``'s status of an account with a session now.
STATUS_ONLINE = "ONLINE"
#: ``get_last``'s status of an account ejabberd has no last activity of (its
#: time is then the current time). An account registered and never used has
#: one: its registration, status "Registered but didn't login".
STATUS_UNKNOWN = "NOT FOUND"


@dataclasses.dataclass(frozen=True, slots=True)
class LastActivity:
    """An account's last activity as ejabberd's mod_last keeps it (``get_last``)."""

    #: When the account was last seen (its last session ended); now if online.
    at: dt.datetime
    #: STATUS_ONLINE, STATUS_UNKNOWN, or the status text of its last presence.
    status: str

    @property
    def online(self) -> bool:
        return self.status == STATUS_ONLINE

    @property
    def known(self) -> bool:
        return self.status != STATUS_UNKNOWN


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client: httpx builds one per client otherwise
    (25 ms each, which a guest sweep of many get_last calls would pay each time)."""
    return ssl.create_default_context()


class ApiError(Exception):
    """ejabberd refused the call or could not be reached."""


class EjabberdApi:
    def __init__(self, base_url: str, token: str = "", timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: EjabberdSettings) -> EjabberdApi:
        return cls(settings.api_url, settings.api_token, settings.api_timeout)

    async def call(self, command: str, args: dict[str, Any]) -> Any:
        """POST one command; its JSON result. A client per call: calls are rare
        (roster jobs, guest sweeps, the CLI), and nothing is left open."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            async with httpx.AsyncClient(timeout=self.timeout, verify=_tls()) as client:
                response = await client.post(
                    f"{self.base_url}/{command}", json=args, headers=headers
                )
        except httpx.HTTPError as exc:
            raise ApiError(f"{command}: {exc!r}") from None
        if response.is_error:
            raise ApiError(f"{command}: HTTP {response.status_code}: {response.text[:200]}")
        try:
            result = response.json() if response.content else None
        except ValueError:
            raise ApiError(f"{command}: not JSON: {response.text[:200]}") from None
        # Commands with a "res" result answer 0 on success, 1 on failure.
        if isinstance(result, int) and result != 0:
            raise ApiError(f"{command}: ejabberd answered {result}")
        return result

    async def add_to_roster(
        self, user_jid: str, contact_jid: str, name: str, group: str, subscription: str
    ) -> None:
        """Add or update ``contact_jid`` in ``user_jid``'s roster (RFC 6121
        subscription ``both``, ``to``, ``from`` or ``none``, from the user's side)."""
        user, host = user_jid.split("@", 1)
        cuser, chost = contact_jid.split("@", 1)
        await self.call(
            "add_rosteritem",
            {
                "localuser": user,
                "localhost": host,
                "user": cuser,
                "host": chost,
                "nick": name,
                "group": group,
                "subs": subscription,
            },
        )

    async def remove_from_roster(self, user_jid: str, contact_jid: str) -> None:
        user, host = user_jid.split("@", 1)
        cuser, chost = contact_jid.split("@", 1)
        await self.call(
            "delete_rosteritem",
            {"localuser": user, "localhost": host, "user": cuser, "host": chost},
        )

    async def registered_users(self, host: str) -> list[str]:
        """The user names (local parts) of every account of ``host``."""
        users = await self.call("registered_users", {"host": host})
        return [str(user) for user in users]

    async def last_activity(self, jid: str) -> LastActivity:
        user, host = jid.split("@", 1)
        result = await self.call("get_last", {"user": user, "host": host})
        # XEP-0082 UTC: "2026-12-06T13:41:13.062302Z" or "2001-09-09T01:46:40Z".
        return LastActivity(dt.datetime.fromisoformat(result["timestamp"]), result["status"])

    async def unregister(self, jid: str) -> None:
        """Remove the account and what ejabberd holds for it (roster, vCard,
        offline messages, sessions); an account that does not exist is no error."""
        user, host = jid.split("@", 1)
        await self.call("unregister", {"user": user, "host": host})

    async def issue_login_token(self, jid: str, ttl_s: int) -> str:
        """A token that logs ``jid`` in without its password (SASL ``X-OAUTH2``)
        for ``ttl_s`` seconds: ejabberd's OAuth token with the ``sasl_auth``
        scope (``oauth_issue_token``; ejabberd keeps it, with its expiry, and
        removes it once expired). Needs ejabberd's OAuth library (Debian
        ``erlang-p1-oauth2``); without it ejabberd answers an internal error."""
        result = await self.call(
            "oauth_issue_token", {"jid": jid, "ttl": ttl_s, "scopes": "sasl_auth"}
        )
        if not isinstance(result, dict) or not isinstance(result.get("token"), str):
            raise ApiError(f"oauth_issue_token: unexpected answer {result!r:.200}")
        return str(result["token"])
