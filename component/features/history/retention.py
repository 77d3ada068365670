"""Retention per company: the sweep that deletes archived messages once they expire.

A company added with ``--retention-days N`` keeps its messages N days. Every
component process runs :func:`prune_forever` (``archive.retention_interval``
seconds apart, the first run after a random part of the interval, so that
processes started together do not sweep together); ``orgchat archive prune``
runs :func:`prune_now` once. The store deletes in small batches that commit
one by one and skip rows another process is deleting, so any number of
sweeps may overlap and archiving never waits long behind one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random

from component.logs import get_logger
from storage.errors import Unavailable, raise_if_cancelling
from storage.models import Pruned
from storage.protocols import ArchiveStore

log = get_logger(__name__)


async def prune_now(archive: ArchiveStore, batch_size: int) -> list[Pruned]:
    """Delete what has expired now; one entry per company with a retention."""
    pruned = await archive.prune_expired(dt.datetime.now(dt.UTC), batch_size)
    for entry in pruned:
        if entry.messages:
            log.info(
                "archive.pruned",
                company=entry.company_slug,
                retention_days=entry.retention_days,
                messages=entry.messages,
            )
    return pruned


async def prune_forever(archive: ArchiveStore, interval_s: float, batch_size: int) -> None:
    """Run :func:`prune_now` every ``interval_s`` seconds (never if 0)."""
    if interval_s <= 0:
        return
    delay = random.uniform(0, interval_s)  # spreads the processes' runs
    while True:
        raise_if_cancelling()
        await asyncio.sleep(delay)
        delay = interval_s
        try:
            await prune_now(archive, batch_size)
        except Unavailable as exc:
            log.warning("archive.prune_failed", error=str(exc))
