"""A small client for ejabberd's HTTP API (mod_http_api).

Used to put contacts into users' rosters (``add_rosteritem``): a company
into its agents' and customers' rosters, a conversation into its agents'.
XEP-0356 roster pushes fail on ejabberd 23.01, the HTTP API works. Calls run
in a worker thread (urllib), they are rare.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

#: The roster group of companies (a conversation's group is its company's name).
COMPANIES_GROUP = "Companies"


class ApiError(Exception):
    """ejabberd refused the call or could not be reached."""


class EjabberdApi:
    def __init__(self, base_url: str, token: str = "", timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    async def call(self, command: str, args: dict[str, Any]) -> Any:
        return await asyncio.to_thread(self._call, command, args)

    def _call(self, command: str, args: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            f"{self.base_url}/{command}",
            data=json.dumps(args).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:200]
            raise ApiError(f"{command}: HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ApiError(f"{command}: {exc}") from None
        result = json.loads(body) if body else None
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
