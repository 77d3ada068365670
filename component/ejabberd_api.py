"""A small client for ejabberd's HTTP API (mod_http_api).

Used to put a company into an agent's roster with a mutual subscription
(``add_rosteritem``): XEP-0356 roster pushes fail on ejabberd 23.01, the HTTP
API works. Calls run in a worker thread (urllib), they are rare.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

ROSTER_GROUP = "Companies"


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

    async def add_company_to_roster(
        self, agent_jid: str, company_jid: str, company_name: str
    ) -> None:
        user, host = agent_jid.split("@", 1)
        cuser, chost = company_jid.split("@", 1)
        await self.call(
            "add_rosteritem",
            {
                "localuser": user,
                "localhost": host,
                "user": cuser,
                "host": chost,
                "nick": company_name,
                "group": ROSTER_GROUP,
                "subs": "both",
            },
        )

    async def remove_company_from_roster(self, agent_jid: str, company_jid: str) -> None:
        user, host = agent_jid.split("@", 1)
        cuser, chost = company_jid.split("@", 1)
        await self.call(
            "delete_rosteritem",
            {"localuser": user, "localhost": host, "user": cuser, "host": chost},
        )
