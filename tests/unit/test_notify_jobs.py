"""The cascade's job pool, and how long a failing push service is left alone."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, cast

import pytest

from component.config import NotifySettings
from component.features.notify.cascade import CONCURRENT_JOBS, Cascade
from component.features.notify.push import (
    MAX_FAILING_SERVICES,
    SERVICE_BACKOFF_MAX,
    SERVICE_BACKOFF_MIN,
    ServiceBackoff,
)
from storage.models import NotifyJob


class Jobs:
    """A NotifyStore's claim: hands out the queued job ids, at most ``limit``."""

    def __init__(self) -> None:
        self.due: list[int] = []
        self.limits: list[int] = []

    async def claim(self, now: dt.datetime, limit: int, lease: float) -> list[NotifyJob]:
        self.limits.append(limit)
        taken, self.due = self.due[:limit], self.due[limit:]
        return [cast(NotifyJob, Job(i)) for i in taken]


class Job:
    def __init__(self, id: int) -> None:
        self.id = id


def pool(jobs: Jobs, run: Any) -> Cascade:
    cascade = Cascade.__new__(Cascade)
    cascade.notify = cast(Any, jobs)
    cascade.settings = NotifySettings(poll_interval=0.01)
    cascade.now = lambda: dt.datetime.now(dt.UTC)
    cascade._run = run  # type: ignore[method-assign]
    return cascade


class Log(list[int]):
    """Job ids in the order they did something; ``until`` waits for a state."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Event()

    def append(self, job_id: int) -> None:
        super().append(job_id)
        self.changed.set()

    async def until(self, check: Any) -> None:
        while not check():
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 10)


@pytest.mark.asyncio
async def test_a_job_that_never_ends_holds_only_its_own_slot() -> None:
    jobs = Jobs()
    jobs.due = [0, 1, 2]
    done = Log()
    forever = asyncio.Event()

    async def run(job: NotifyJob) -> None:
        if job.id == 0:
            await forever.wait()
        done.append(job.id)

    task = asyncio.create_task(pool(jobs, run).run())
    try:
        await done.until(lambda: done == [1, 2])
        jobs.due.append(3)  # due later, while job 0 still hangs
        await done.until(lambda: 3 in done)
        assert 0 not in done
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.asyncio
async def test_jobs_are_claimed_only_for_free_slots() -> None:
    jobs = Jobs()
    jobs.due = list(range(CONCURRENT_JOBS + 5))
    release = asyncio.Event()
    started = Log()

    async def run(job: NotifyJob) -> None:
        started.append(job.id)
        if job.id == 0:
            await release.wait()
        else:
            await asyncio.Event().wait()

    task = asyncio.create_task(pool(jobs, run).run())
    try:
        await started.until(lambda: len(started) == CONCURRENT_JOBS)
        for _ in range(5):
            await asyncio.sleep(0.02)  # several poll intervals: nothing more is claimed
        assert jobs.limits == [CONCURRENT_JOBS]
        assert len(jobs.due) == 5
        release.set()  # one slot frees: exactly one more job is claimed
        await started.until(lambda: len(started) == CONCURRENT_JOBS + 1)
        assert jobs.limits[1] == 1
        assert len(jobs.due) == 4
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.asyncio
async def test_a_crashed_job_is_retried_and_the_pool_goes_on() -> None:
    jobs = Jobs()
    jobs.due = [0, 1]
    retried = Log()
    done = Log()

    async def retry(job_id: int, delay: float, error: str) -> None:
        retried.append(job_id)

    async def run(job: NotifyJob) -> None:
        if job.id == 0:
            raise RuntimeError("a bug")
        done.append(job.id)

    cascade = pool(jobs, run)
    jobs.retry = retry  # type: ignore[attr-defined]
    cascade._backoff = lambda job: 1.0  # type: ignore[method-assign]
    task = asyncio.create_task(cascade.run())
    try:
        await done.until(lambda: done == [1])
        await retried.until(lambda: retried == [0])
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_failing_push_service_is_left_alone_with_a_growing_backoff() -> None:
    clock = Clock()
    services = ServiceBackoff(clock)
    origin = "https://push.example.net"
    assert services.remaining(origin) == 0
    assert services.failed(origin) == SERVICE_BACKOFF_MIN
    assert services.remaining(origin) == SERVICE_BACKOFF_MIN
    clock.now += SERVICE_BACKOFF_MIN
    assert services.remaining(origin) == 0  # tried again...
    assert services.failed(origin) == 2 * SERVICE_BACKOFF_MIN  # ...and failed again
    for _ in range(20):
        clock.now += services.remaining(origin)
        backoff = services.failed(origin)
    assert backoff == SERVICE_BACKOFF_MAX
    assert services.remaining("https://other.example.net") == 0
    services.answered(origin)
    assert services.remaining(origin) == 0
    assert services.failed(origin) == SERVICE_BACKOFF_MIN


def test_a_failure_long_after_the_last_starts_the_backoff_over() -> None:
    clock = Clock()
    services = ServiceBackoff(clock)
    services.failed("https://a.example")
    services.failed("https://a.example")
    clock.now += 10 * SERVICE_BACKOFF_MAX
    assert services.failed("https://a.example") == SERVICE_BACKOFF_MIN


def test_failing_services_remembered_are_bounded() -> None:
    services = ServiceBackoff(Clock())
    for n in range(MAX_FAILING_SERVICES + 10):
        services.failed(f"https://s{n}.example")
    assert services.remaining("https://s0.example") == 0  # the oldest forgotten
    assert services.remaining(f"https://s{MAX_FAILING_SERVICES + 9}.example") > 0
