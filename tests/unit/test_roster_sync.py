"""The roster worker takes jobs only while the process's stream to ejabberd is up:
in a cluster, a process whose node is down leaves the jobs to the others."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest

from component.roster_sync import RosterSync
from storage.models import RosterJob

pytestmark = pytest.mark.asyncio


class Jobs:
    """A queue with no job: only whether it was asked matters here."""

    def __init__(self) -> None:
        self.claimed = asyncio.Event()

    async def claim(self, limit: int) -> list[RosterJob]:
        self.claimed.set()
        return []

    async def done(self, job_id: int) -> None: ...

    async def retry_later(self, job_id: int, delay_s: float, error: str) -> None: ...

    async def watch(self, wakeup: Callable[[], Awaitable[None]]) -> None: ...


async def test_no_job_is_taken_while_disconnected_and_the_next_session_takes_them() -> None:
    jobs = Jobs()
    up = False
    asked = asyncio.Event()

    def connected() -> bool:
        asked.set()
        return up

    async def nothing(*_: Any) -> None: ...

    sync = RosterSync(
        domain="biz.example",
        local_host="example",
        jobs=jobs,
        api=cast(Any, None),
        directory=cast(Any, None),
        conversations=cast(Any, None),
        on_added=nothing,
        on_removed=nothing,
        connected=connected,
    )
    worker = asyncio.create_task(sync.run())
    try:
        await sync.wakeup()  # a job queued while the stream is down
        await asyncio.wait_for(asked.wait(), 5)
        await asyncio.sleep(0)  # the worker is back to waiting
        assert not jobs.claimed.is_set()

        up = True
        await sync.wakeup()  # what the new session does
        await asyncio.wait_for(jobs.claimed.wait(), 5)
    finally:
        worker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await worker
