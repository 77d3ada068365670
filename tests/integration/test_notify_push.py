"""Web push against a real HTTP push service stand-in (RFC 8030, 8291, 8292).

Every push goes over a loopback socket to :class:`PushEndpoint`, which
decrypts the body with the subscription's private key and checks the VAPID
signature with code independent of ``component.features.notify.push``: wrong
cryptography fails these tests.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec

from component.config import PushSettings
from component.features.notify.push import (
    MAX_PLAINTEXT,
    SERVICE_BACKOFF_MIN,
    PushOutcome,
    PushSender,
    generate_vapid_key,
)
from tests.integration.push_endpoint import (
    PushEndpoint,
    b64d,
    browser_subscription,
    decrypt,
    verify_vapid,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

SUBJECT = "mailto:ops@biz.test.localhost"
PAYLOAD = {
    "title": "Pizza Napoli",
    "body": 'Да, доставляем в Академгородок 🍕 "до 23:00"',
    "unseen": 2,
    "jid": "pizza-napoli@biz.test.localhost",
    "link": "xmpp:pizza-napoli@biz.test.localhost?message",
}


def settings(key: str | None = None, **kw: object) -> PushSettings:
    values: dict[str, object] = {
        "vapid_private_key": generate_vapid_key() if key is None else key,
        "vapid_subject": SUBJECT,
        "ttl": 600,
        "timeout": 3.0,
    }
    values.update(kw)
    return PushSettings(**values)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """httpx honours proxy variables: loopback must be reached directly."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    yield


@pytest_asyncio.fixture(loop_scope="session")
async def push() -> AsyncIterator[PushEndpoint]:
    async with PushEndpoint() as endpoint:
        yield endpoint


@pytest.fixture
def sender() -> PushSender:
    return PushSender(settings())


async def test_push_is_encrypted_signed_and_decrypts_to_the_payload(
    push: PushEndpoint, sender: PushSender
) -> None:
    browser = push.subscribe()
    before = time.time()

    result = await sender.send(browser.model(), PAYLOAD)

    assert result.outcome is PushOutcome.SENT, result
    assert result.status == 201
    assert len(push.requests) == 1
    req = push.requests[0]
    assert req.method == "POST"
    assert push.url(req.path) == browser.endpoint
    assert req.headers["content-encoding"] == "aes128gcm"
    assert req.headers["content-type"] == "application/octet-stream"
    assert req.headers["ttl"] == "600"
    assert req.headers["urgency"] == "normal"
    assert "topic" not in req.headers
    token = verify_vapid(req.headers["authorization"], browser.endpoint, SUBJECT, now=before)
    assert token.key == sender.public_key()
    assert token.claims["aud"] == f"http://127.0.0.1:{push.port}"
    assert token.claims["exp"] > before + 3600
    # The body is not the payload in clear, and decrypts to it exactly.
    assert b"Pizza" not in req.body
    assert json.loads(browser.decrypt(req.body)) == PAYLOAD


async def test_only_the_subscriber_can_decrypt(push: PushEndpoint, sender: PushSender) -> None:
    browser = push.subscribe()
    other = browser_subscription(browser.endpoint)
    assert (await sender.send(browser.model(), PAYLOAD)).outcome is PushOutcome.SENT
    body = push.requests[-1].body
    with pytest.raises(InvalidTag):
        decrypt(body, other.private_key, browser.auth_secret)  # another device's key
    with pytest.raises(InvalidTag):
        decrypt(body, browser.private_key, other.auth_secret)  # another auth secret
    tampered = body[:-1] + bytes([body[-1] ^ 1])
    with pytest.raises(InvalidTag):
        browser.decrypt(tampered)


async def test_every_push_has_a_fresh_salt_and_ephemeral_key(
    push: PushEndpoint, sender: PushSender
) -> None:
    browser = push.subscribe()
    for _ in range(2):
        assert (await sender.send(browser.model(), PAYLOAD)).outcome is PushOutcome.SENT
    first, second = (r.body for r in push.requests)
    assert first[:16] != second[:16]  # salt
    assert first[21:86] != second[21:86]  # keyid: the sender's ephemeral public key
    assert browser.decrypt(first) == browser.decrypt(second)


async def test_urgency_topic_and_ttl_override(push: PushEndpoint, sender: PushSender) -> None:
    browser = push.subscribe()
    result = await sender.send(browser.model(), PAYLOAD, urgency="high", topic="conv-42", ttl=0)
    assert result.outcome is PushOutcome.SENT
    headers = push.requests[0].headers
    assert (headers["urgency"], headers["topic"], headers["ttl"]) == ("high", "conv-42", "0")


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (202, PushOutcome.SENT),
        (404, PushOutcome.GONE),
        (410, PushOutcome.GONE),
        (500, PushOutcome.RETRY),
        (503, PushOutcome.RETRY),
        (400, PushOutcome.REJECTED),
        (403, PushOutcome.REJECTED),
        (413, PushOutcome.REJECTED),
    ],
)
async def test_answers_of_the_push_service(
    push: PushEndpoint, sender: PushSender, status: int, outcome: PushOutcome
) -> None:
    push.answer(status, body=b"push service says\nno" if status >= 400 else b"")
    result = await sender.send(push.subscribe().model(), PAYLOAD)
    assert (result.outcome, result.status) == (outcome, status)
    assert len(push.requests) == 1
    assert result.retry_after is None
    assert str(status) in result.detail
    if status >= 400:
        assert "push service says no" in result.detail


async def test_429_retry_after_is_honoured(push: PushEndpoint, sender: PushSender) -> None:
    push.answer(429, retry_after="120")
    result = await sender.send(push.subscribe().model(), PAYLOAD)
    assert (result.outcome, result.status, result.retry_after) == (PushOutcome.RETRY, 429, 120.0)


async def test_503_with_an_http_date_retry_after(push: PushEndpoint, sender: PushSender) -> None:
    when = time.time() + 90
    push.answer(503, retry_after=time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(when)))
    result = await sender.send(push.subscribe().model(), PAYLOAD)
    assert result.outcome is PushOutcome.RETRY
    assert result.retry_after is not None
    assert 80 <= result.retry_after <= 91


async def test_closed_port_is_retry(sender: PushSender) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    browser = browser_subscription(f"http://127.0.0.1:{port}/wpush/closed")
    result = await sender.send(browser.model(), PAYLOAD)
    assert (result.outcome, result.status) == (PushOutcome.RETRY, None)
    assert result.detail


async def test_a_push_service_that_never_answers_is_retry(push: PushEndpoint) -> None:
    sender = PushSender(settings(timeout=0.5))
    push.hang = True
    started = time.monotonic()
    result = await sender.send(push.subscribe().model(), PAYLOAD)
    assert (result.outcome, result.status, result.detail) == (PushOutcome.RETRY, None, "timeout")
    assert time.monotonic() - started < 3
    assert len(push.requests) == 1


async def test_a_push_service_that_never_answers_is_left_alone_for_a_while(
    push: PushEndpoint,
) -> None:
    """One timeout per backoff period, not one per subscription: the next
    pushes to that service are answered "retry" at once; other services are
    still tried."""
    sender = PushSender(settings(timeout=0.5))
    push.hang = True
    first = await sender.send(push.subscribe().model(), PAYLOAD)
    assert (first.outcome, first.detail) == (PushOutcome.RETRY, "timeout")
    assert first.retry_after == SERVICE_BACKOFF_MIN
    again = await sender.send(push.subscribe().model(id=2), PAYLOAD)
    assert again.outcome is PushOutcome.RETRY
    assert again.detail == "push service failing: not tried"
    assert 0 < (again.retry_after or 0) <= SERVICE_BACKOFF_MIN
    assert len(push.requests) == 1
    async with PushEndpoint() as other:
        elsewhere = await sender.send(other.subscribe().model(), PAYLOAD)
    assert elsewhere.outcome is PushOutcome.SENT


async def test_a_huge_payload_is_cut_and_still_decrypts(
    push: PushEndpoint, sender: PushSender
) -> None:
    long_body = "Зимние шины 205/55 R16 — " * 1000
    payload = {**PAYLOAD, "body": long_body, "quoted": ['"' * 3000]}
    browser = push.subscribe()

    result = await sender.send(browser.model(), payload)

    assert result.outcome is PushOutcome.SENT, result
    req = push.requests[0]
    assert len(req.body) <= 4096
    plaintext = browser.decrypt(req.body)
    assert len(plaintext) <= MAX_PLAINTEXT < 4078
    got = json.loads(plaintext)
    assert set(got) == set(payload)
    assert {k: got[k] for k in ("title", "unseen", "jid", "link")} == {
        k: PAYLOAD[k] for k in ("title", "unseen", "jid", "link")
    }
    assert got["body"].endswith("…")
    assert long_body.startswith(got["body"][:-1])
    assert len(got["body"]) > 500  # cut to fit, not emptied


async def test_disabled_sender_sends_nothing(push: PushEndpoint) -> None:
    sender = PushSender(settings(key=""))
    assert sender.enabled is False
    with pytest.raises(RuntimeError):
        sender.public_key()
    result = await sender.send(push.subscribe().model(), PAYLOAD)
    assert (result.outcome, result.status) == (PushOutcome.REJECTED, None)
    assert push.requests == []


async def test_unusable_subscription_is_rejected_without_a_request(
    push: PushEndpoint, sender: PushSender
) -> None:
    good = push.subscribe().model()
    for bad in (
        {"p256dh": "not base64!"},
        {"p256dh": good.p256dh[:20]},
        {"auth": ""},
        {"endpoint": "ftp://127.0.0.1/x"},
    ):
        fields: dict[str, Any] = {**dataclasses.asdict(good), **bad}
        result = await sender.send(type(good)(**fields), PAYLOAD)
        assert (result.outcome, result.status) == (PushOutcome.REJECTED, None), bad
    assert push.requests == []


async def test_public_key_is_an_uncompressed_p256_point(sender: PushSender) -> None:
    key = sender.public_key()
    assert "=" not in key
    raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    assert len(raw) == 65
    assert raw[0] == 4
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)  # on the curve
    assert b64d(key) == raw


async def test_the_helper_decrypts_the_rfc_8291_example() -> None:
    """The stand-in's own decryption, held to RFC 8291 Appendix A."""
    ua_private = ec.derive_private_key(
        int.from_bytes(b64d("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"), "big"),
        ec.SECP256R1(),
    )
    body = b64d(
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmY"
        "WAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSg"
        "Sxsj_Qulcy4a-fN"
    )
    plaintext = decrypt(body, ua_private, b64d("BTBZMqHH6r4Tts7J_aSIgg"))
    assert plaintext == b"When I grow up, I want to be a watermelon"
