"""Web push without sockets: VAPID keys, RFC 8291 encryption, payload fitting, answers."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from component.config import PushSettings
from component.features.notify.push import (
    MAX_PLAINTEXT,
    PushOutcome,
    PushPayloadTooLarge,
    PushSender,
    audience,
    b64url_decode,
    classify,
    encrypt,
    fit_payload,
    generate_vapid_key,
    load_vapid_key,
    parse_retry_after,
)

# RFC 8291, Appendix A.
RFC_PLAINTEXT = b"When I grow up, I want to be a watermelon"
RFC_AS_PRIVATE = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
RFC_AS_PUBLIC = (
    "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
)
RFC_UA_PUBLIC = (
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
)
RFC_AUTH = "BTBZMqHH6r4Tts7J_aSIgg"
RFC_SALT = "DGv6ra1nlYgDCS1FRnbzlw"
RFC_BODY = (
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmY"
    "WAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSg"
    "Sxsj_Qulcy4a-fN"
)


def raw_value(key: ec.EllipticCurvePrivateKey) -> int:
    return key.private_numbers().private_value


# -- RFC 8291 ------------------------------------------------------------------


def test_encrypt_reproduces_rfc_8291_appendix_a() -> None:
    as_private = load_vapid_key(RFC_AS_PRIVATE)  # any P-256 private value reads the same
    body = encrypt(
        RFC_PLAINTEXT,
        b64url_decode(RFC_UA_PUBLIC),
        b64url_decode(RFC_AUTH),
        salt=b64url_decode(RFC_SALT),
        as_private=as_private,
    )
    assert body == b64url_decode(RFC_BODY)


def test_encrypt_refuses_bad_subscription_keys() -> None:
    ua = b64url_decode(RFC_UA_PUBLIC)
    auth = b64url_decode(RFC_AUTH)
    with pytest.raises(ValueError):
        encrypt(b"x", ua[:33], auth)  # compressed-size point
    with pytest.raises(ValueError):
        encrypt(b"x", b"\x04" + b"\x01" * 64, auth)  # not on the curve
    with pytest.raises(ValueError):
        encrypt(b"x", ua, auth[:8])
    with pytest.raises(ValueError):
        encrypt(b"x" * 5000, ua, auth)


# -- VAPID keys ----------------------------------------------------------------


def test_raw_base64url_key_with_or_without_padding() -> None:
    key = load_vapid_key(RFC_AS_PRIVATE)
    assert load_vapid_key(RFC_AS_PRIVATE + "=") is not None
    assert raw_value(load_vapid_key(f"  {RFC_AS_PRIVATE}=\n")) == raw_value(key)
    # Standard base64 alphabet is accepted too.
    std = base64.b64encode(raw_value(key).to_bytes(32, "big")).decode()
    assert raw_value(load_vapid_key(std)) == raw_value(key)


@pytest.mark.parametrize(
    "fmt", [serialization.PrivateFormat.TraditionalOpenSSL, serialization.PrivateFormat.PKCS8]
)
def test_pem_keys(fmt: serialization.PrivateFormat) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()
    assert raw_value(load_vapid_key(pem)) == raw_value(key)
    # As an environment variable often carries it: literal \n, one line.
    assert raw_value(load_vapid_key(pem.strip().replace("\n", "\\n"))) == raw_value(key)


def test_der_key_in_base64url() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert raw_value(load_vapid_key(base64.urlsafe_b64encode(der).decode())) == raw_value(key)


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, password: bytes | None = None) -> str:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    ).decode()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "not a key!",
        "c2hvcnQ",  # 5 bytes
        "A" * 43,  # 32 zero bytes: not a private value
        base64.urlsafe_b64encode(b"\xff" * 32).decode(),  # above the group order
        "-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n",
        _pem(ec.generate_private_key(ec.SECP384R1())),
        _pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)),
        _pem(ec.generate_private_key(ec.SECP256R1()), password=b"secret"),
    ],
    ids=["empty", "blank", "junk", "short", "zero", "too-big", "bad-pem", "p384", "rsa", "crypted"],
)
def test_unreadable_keys_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        load_vapid_key(text)
    if text.strip():
        with pytest.raises(ValueError, match=r"^push\.vapid_private_key: ") as info:
            PushSender(PushSettings(vapid_private_key=text))
        assert text.strip() not in str(info.value)  # a secret: never echoed


def test_generated_keys_load_and_differ() -> None:
    first, second = generate_vapid_key(), generate_vapid_key()
    assert first != second
    assert len(first) == 43 and "=" not in first
    assert len(b64url_decode(first)) == 32
    assert PushSender(PushSettings(vapid_private_key=first)).enabled


def test_public_key_of_the_rfc_key() -> None:
    sender = PushSender(PushSettings(vapid_private_key=RFC_AS_PRIVATE))
    assert sender.enabled
    assert sender.public_key() == RFC_AS_PUBLIC


def test_no_key_means_disabled() -> None:
    sender = PushSender(PushSettings(vapid_private_key=""))
    assert not sender.enabled
    with pytest.raises(RuntimeError):
        sender.public_key()


# -- RFC 8292 audience -------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "aud"),
    [
        ("https://fcm.googleapis.com/fcm/send/abc:def", "https://fcm.googleapis.com"),
        (
            "https://Updates.Push.Services.Mozilla.com:443/wpush/v2/x",
            "https://updates.push.services.mozilla.com",
        ),
        ("https://web.push.apple.com:8443/QG9", "https://web.push.apple.com:8443"),
        ("http://127.0.0.1:8080/push/1", "http://127.0.0.1:8080"),
        ("http://[::1]:9/p", "http://[::1]:9"),
    ],
)
def test_audience_is_the_endpoint_origin(endpoint: str, aud: str) -> None:
    assert audience(endpoint) == aud


@pytest.mark.parametrize("endpoint", ["ftp://example.org/x", "https:///nohost", "/relative"])
def test_audience_refuses_other_urls(endpoint: str) -> None:
    with pytest.raises(ValueError):
        audience(endpoint)


# -- payload ---------------------------------------------------------------------


def test_small_payload_is_compact_utf8_json() -> None:
    data = fit_payload({"title": "Пицца", "n": 1})
    assert data == '{"title":"Пицца","n":1}'.encode()


def test_long_text_fields_are_cut_short_ones_kept() -> None:
    payload: dict[str, Any] = {
        "title": "Pizza Napoli",
        "body": "ж" * 5000,
        "lines": ["🍕" * 2000, 'quote " and \\ and \n' * 200],
        "meta": {"unseen": 3, "jid": "pizza@biz.localhost"},
    }
    data = fit_payload(payload)
    assert len(data) <= MAX_PLAINTEXT
    got = json.loads(data)
    assert got["title"] == "Pizza Napoli"
    assert got["meta"] == payload["meta"]
    for text, original in [
        (got["body"], payload["body"]),
        *zip(got["lines"], payload["lines"], strict=True),
    ]:
        assert text.endswith("…")
        assert original.startswith(text[:-1])
        assert len(text) > 100
    # Fitted as tightly as one common cap allows: little room is left.
    assert len(data) > MAX_PLAINTEXT - 200


@pytest.mark.parametrize("limit", [60, 61, 62, 63, 100, 150])
def test_fit_is_exact_at_every_limit(limit: int) -> None:
    data = fit_payload({"a": "é" * 100, "b": "x"}, limit=limit)
    assert len(data) <= limit
    got = json.loads(data)
    assert got["b"] == "x"
    assert got["a"] == "" or got["a"].endswith("…")


def test_a_payload_without_enough_strings_is_too_large() -> None:
    with pytest.raises(PushPayloadTooLarge):
        fit_payload({"numbers": list(range(2000)), "s": "x" * 10})


# -- answers ------------------------------------------------------------------------


def test_retry_after_forms() -> None:
    now = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:01:30 GMT", now) == 90.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("", now) is None


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (201, PushOutcome.SENT),
        (202, PushOutcome.SENT),
        (404, PushOutcome.GONE),
        (410, PushOutcome.GONE),
        (429, PushOutcome.RETRY),
        (500, PushOutcome.RETRY),
        (502, PushOutcome.RETRY),
        (301, PushOutcome.REJECTED),
        (400, PushOutcome.REJECTED),
        (401, PushOutcome.REJECTED),
        (403, PushOutcome.REJECTED),
        (413, PushOutcome.REJECTED),
    ],
)
def test_classify(status: int, outcome: PushOutcome) -> None:
    result = classify(status, "30", "detail")
    assert (result.outcome, result.status) == (outcome, status)
    assert result.retry_after == (30.0 if outcome is PushOutcome.RETRY else None)
