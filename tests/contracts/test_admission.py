"""AdmissionStore: RedisAdmission against FakeAdmission.

One admission answers what the separate calls of LimitStore (``hit``,
``first_seen``) and PresenceStore (``online_among``) answer, in one round
trip, and shares their counters, presence and marks.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from storage import redis as redis_storage
from storage.models import Admission, Admitted, Hits, Limit, Marks, Once
from storage.protocols import AdmissionStore, LimitStore, PresenceStore
from tests.contracts.conftest import unique
from tests.unit.fakes import FakeAdmission, FakeLimits, FakePresence

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


@dataclass
class Stores:
    admission: AdmissionStore
    limits: LimitStore
    presence: PresenceStore


@pytest.fixture
def stores(redis_or_fake: redis_storage.RedisStores | None) -> Stores:
    if redis_or_fake is None:
        limits, presence = FakeLimits(), FakePresence()
        return Stores(FakeAdmission(limits, presence), limits, presence)
    return Stores(redis_or_fake.admission, redis_or_fake.limits, redis_or_fake.presence)


def jid(name: str) -> str:
    return unique(f"{name}-") + "@localhost"


async def test_one_admission_counts_tells_and_marks(stores: Stores) -> None:
    anna, bob = jid("anna"), jid("bob")
    mario, luigi = jid("mario"), jid("luigi")
    await stores.presence.update(mario, "desk", "available")
    conv = unique("")
    admitted = await stores.admission.admit(
        Admission(
            hits=(
                Hits(Limit.CUSTOMER_MESSAGES, [anna, bob, anna, anna], 2, 60),
                # Another kind is another counter, even for the same subject.
                Hits(Limit.CUSTOMER_SIGNALS, [anna], 1, 60),
            ),
            agents=[mario, luigi],
            marks=Marks(Once.MARKER_FORWARDED, [(conv, "displayed", "m1")] * 2, 60),
        )
    )
    assert admitted == Admitted(
        allowed=([True, True, True, False], [True]),
        online=frozenset({mario}),
        first=[True, False],
    )
    # The same counters and marks as the single calls'.
    assert await stores.limits.hit(Limit.CUSTOMER_MESSAGES, [bob, bob], 2, 60) == [True, False]
    assert await stores.limits.hit(Limit.CUSTOMER_SIGNALS, [anna], 1, 60) == [False]
    assert await stores.limits.first_seen(
        Once.MARKER_FORWARDED, [(conv, "displayed", "m1")], 60
    ) == [False]
    assert await stores.limits.hit(Limit.CUSTOMER_MESSAGES, [bob], 1, 61) == [True]
    again = await stores.admission.admit(
        Admission(hits=(Hits(Limit.CUSTOMER_MESSAGES, [bob], 1, 61),), agents=[luigi])
    )
    assert again == Admitted(allowed=([False],), online=frozenset(), first=[])


async def test_an_empty_admission(stores: Stores) -> None:
    nothing = Admission(
        hits=(Hits(Limit.CUSTOMER_MESSAGES, [], 1, 60), Hits(Limit.CUSTOMER_SIGNALS, [], 1, 60)),
        marks=Marks(Once.MARKER_FORWARDED, [], 60),
    )
    assert await stores.admission.admit(nothing) == Admitted(allowed=([], []))
    assert await stores.admission.admit(Admission()) == Admitted()
