"""The cascade's part of a routed batch: its read marks and steps ride on the
batch's archive statement (BatchExtras), never a round trip of their own."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from typing import Any, cast
from xml.etree import ElementTree as ET

import pytest

from component.config import NotifySettings
from component.directory import Directory
from component.features.notify.cascade import Cascade
from component.routing.outbox import Outbox
from storage.models import Channel, Party, ReadMark, StepDue
from tests.unit.fakes import (
    FakeArchive,
    FakeConversations,
    FakeDirectoryStore,
    FakePresence,
    message_router,
)

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
NS = "jabber:component:accept"
AGENT = "mario@localhost"


class NoRoundTrips:
    """A NotifyStore that must not be called while routing."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"NotifyStore.{name} called on the message path")


class NoPush:
    enabled = False


def cascade() -> Cascade:
    hooks = Cascade.__new__(Cascade)
    hooks.notify = cast(Any, NoRoundTrips())
    hooks.settings = NotifySettings(
        company_offline_after=60, customer_email_after=600, quiet_period=900
    )
    hooks.push = cast(Any, NoPush())
    hooks.now = lambda: NOW
    return hooks


def stanza(sender: str, to: str, body: str, msg_id: str) -> ET.Element:
    return ET.fromstring(
        f'<message xmlns="{NS}" from="{sender}" to="{to}" type="chat" id="{msg_id}">'
        f"<body>{body}</body></message>"
    )


@pytest.mark.asyncio
async def test_marks_and_steps_ride_on_the_archive_statement_and_skip_duplicates() -> None:
    store = FakeDirectoryStore()
    company = store.add("pizza", "Pizza Napoli", [AGENT])
    store.companies["pizza"] = dataclasses.replace(company, email="orders@pizza.example")
    directory = Directory(store)
    await directory.reload(None)
    conversations = FakeConversations()
    archive = FakeArchive(conversations)
    written: list[str] = []
    router = message_router(
        directory,
        Outbox(written.append),
        conversations=conversations,
        archive=archive,
        presence=FakePresence(),  # nobody online: the company is emailed after a minute
        hooks=[cascade()],
    )
    task = asyncio.create_task(router.run())

    async def send(element: ET.Element) -> None:
        router.submit(element)
        await asyncio.sleep(0)
        await router.drain()

    try:
        await send(stanza("anna@localhost/phone", "pizza@biz.localhost", "hello", "m1"))
        [conv] = conversations.rows.values()
        [message] = [m for _, m in archive.rows]
        assert archive.extras[-1].seen == [ReadMark(conv.id, Party.CUSTOMER)]
        assert archive.extras[-1].steps == [
            StepDue(conv.id, Party.COMPANY, Channel.EMAIL, NOW + dt.timedelta(seconds=60), 900.0)
        ]
        assert message.body == "hello"

        # A retransmission (the same id) is archived as a duplicate: it reads
        # nothing new and schedules nothing.
        recorded = len(archive.extras)
        await send(stanza("anna@localhost/phone", "pizza@biz.localhost", "hello", "m1"))
        assert len(archive.rows) == 1
        assert all(not extras for extras in archive.extras[recorded:])
    finally:
        task.cancel()
