"""Companies' median first-response times, cached for service discovery.

disco#info of a company (XEP-0128 extended information, see
:mod:`component.features.directory.iq`) shows how fast the company answers.
Clients ask for disco#info often and expect it at once, while the figure
comes from an aggregate over a month of the archive
(:meth:`storage.protocols.ResponseTimeStore.median_first_response`). So:

* a figure is kept for ``ttl_s`` seconds per company, in each process;
* a missing or older one is fetched in the background, one query per company
  at a time, and awaited for at most ``wait_s`` seconds: a slow or failing
  query makes disco#info answer with the previous figure, or without one,
  never late; the query still completes and serves the next request.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable

from component.logs import get_logger
from storage.protocols import ResponseTimeStore

log = get_logger(__name__)

#: The period measured: waits that started within the last 30 days.
WINDOW = dt.timedelta(days=30)
#: Silence (seconds) after which a customer's message starts a new wait.
SILENCE_S = 3600.0
#: How long a figure is served before it is measured again.
TTL_S = 300.0
#: The longest disco#info waits for a figure that is not cached.
WAIT_S = 0.5


class ResponseTimes:
    def __init__(
        self,
        store: ResponseTimeStore,
        *,
        ttl_s: float = TTL_S,
        wait_s: float = WAIT_S,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._store = store
        self.ttl_s = ttl_s
        self.wait_s = wait_s
        self._clock = clock
        self._now = now
        #: company id -> (when measured, on the monotonic clock; the median or None)
        self._cache: dict[int, tuple[float, float | None]] = {}
        self._running: dict[int, asyncio.Task[float | None]] = {}

    async def median(self, company_id: int) -> float | None:
        """The company's median first response in seconds; None: unknown for now."""
        cached = self._cache.get(company_id)
        if cached is not None and self._clock() - cached[0] < self.ttl_s:
            return cached[1]
        task = self._running.get(company_id)
        if task is None:
            task = asyncio.create_task(
                self._measure(company_id), name=f"first-response-{company_id}"
            )
            task.add_done_callback(_consume)
            self._running[company_id] = task
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.wait_s)
        except TimeoutError:
            log.info("response_times.slow", company_id=company_id, wait_s=self.wait_s)
        except Exception as exc:  # logged by _measure; the card goes out without it
            log.debug("response_times.unavailable", company_id=company_id, error=repr(exc))
        return cached[1] if cached is not None else None

    async def _measure(self, company_id: int) -> float | None:
        started = self._clock()
        try:
            median = await self._store.median_first_response(
                company_id, since=self._now() - WINDOW, silence_s=SILENCE_S
            )
        except Exception as exc:
            log.warning("response_times.failed", company_id=company_id, error=repr(exc))
            raise
        else:
            self._cache[company_id] = (self._clock(), median)
            log.debug(
                "response_times.measured",
                company_id=company_id,
                median_s=median,
                took_s=round(self._clock() - started, 3),
            )
            return median
        finally:
            self._running.pop(company_id, None)


def _consume(task: asyncio.Task[float | None]) -> None:
    """Retrieve a failed measure's exception: its waiters may have left already."""
    if not task.cancelled():
        task.exception()
