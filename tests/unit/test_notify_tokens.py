"""component.features.notify.tokens: signed, expiring Reply-To and unsubscribe addresses."""

from __future__ import annotations

import base64
import re

import pytest

from component.features.notify.tokens import TOKEN_CHARS, Purpose, TokenClaims, TokenError, Tokens
from storage.models import Party

DOMAIN = "reply.biz.localhost"
NOW = 1_800_000_000.0
TTL = 30 * 86400.0


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tokens(clock: Clock) -> Tokens:
    return Tokens("s3cret", TTL, clock=clock)


@pytest.mark.parametrize("party", list(Party))
@pytest.mark.parametrize("purpose", list(Purpose))
@pytest.mark.parametrize("conversation_id", [0, 1, 42, 2**31, 2**63 + 5, 2**64 - 1])
def test_round_trip(tokens: Tokens, party: Party, purpose: Purpose, conversation_id: int) -> None:
    token = tokens.make(conversation_id, party, purpose)
    claims = tokens.check(token)
    assert claims == TokenClaims(conversation_id, party, purpose, int(NOW + TTL))


def test_token_is_short_lowercase_base32(tokens: Tokens) -> None:
    token = tokens.make(12345, Party.COMPANY, Purpose.REPLY)
    assert len(token) == TOKEN_CHARS == 40
    assert re.fullmatch(r"[a-z2-7]{40}", token)
    # 25 bytes: 14 of fields and an 88-bit tag (at least 80 bits)
    assert len(base64.b32decode(token.upper())) == 25


def test_case_insensitive(tokens: Tokens) -> None:
    token = tokens.make(7, Party.CUSTOMER, Purpose.REPLY)
    assert tokens.check(token.upper()).conversation_id == 7
    address = tokens.address(token, DOMAIN).upper()
    assert tokens.parse_address(address, DOMAIN).conversation_id == 7


def test_tokens_differ_by_every_field(tokens: Tokens) -> None:
    made = {
        tokens.make(1, Party.COMPANY, Purpose.REPLY),
        tokens.make(2, Party.COMPANY, Purpose.REPLY),
        tokens.make(1, Party.CUSTOMER, Purpose.REPLY),
        tokens.make(1, Party.COMPANY, Purpose.UNSUBSCRIBE),
    }
    assert len(made) == 4


def test_expired(tokens: Tokens, clock: Clock) -> None:
    token = tokens.make(5, Party.COMPANY, Purpose.REPLY)
    clock.now = NOW + TTL - 1
    assert tokens.check(token).conversation_id == 5
    clock.now = NOW + TTL
    with pytest.raises(TokenError, match=r"^expired$") as err:
        tokens.check(token)
    assert err.value.reason == TokenError.EXPIRED
    claims = tokens.check(token, allow_expired=True)
    assert claims.conversation_id == 5


def test_forged_by_another_secret(clock: Clock) -> None:
    theirs = Tokens("other secret", TTL, clock=clock).make(5, Party.COMPANY, Purpose.REPLY)
    with pytest.raises(TokenError, match=r"^forged$"):
        Tokens("s3cret", TTL, clock=clock).check(theirs)


def test_every_flipped_character_is_refused(tokens: Tokens) -> None:
    token = tokens.make(99, Party.CUSTOMER, Purpose.REPLY)
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    for i, char in enumerate(token):
        other = alphabet[(alphabet.index(char) + 1) % 32]
        tampered = token[:i] + other + token[i + 1 :]
        with pytest.raises(TokenError) as err:
            tokens.check(tampered)
        assert str(err.value) in {"forged", "malformed"}


def test_tampered_expiry_is_forged(tokens: Tokens) -> None:
    raw = bytearray(base64.b32decode(tokens.make(3, Party.COMPANY, Purpose.REPLY).upper()))
    raw[13] ^= 0xFF  # the last byte of the expiry
    forged = base64.b32encode(bytes(raw)).decode().lower()
    with pytest.raises(TokenError, match=r"^forged$"):
        tokens.check(forged)


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a" * 39, "a" * 41, "0" * 40, "!" * 40, "é" * 40, "a" * 39 + "1"],
)
def test_malformed(tokens: Tokens, token: str) -> None:
    with pytest.raises(TokenError, match=r"^malformed$"):
        tokens.check(token)


def test_address_scheme(tokens: Tokens) -> None:
    reply = tokens.make(8, Party.COMPANY, Purpose.REPLY)
    unsub = tokens.make(8, Party.COMPANY, Purpose.UNSUBSCRIBE)
    assert tokens.address(reply, DOMAIN) == f"reply+{reply}@{DOMAIN}"
    assert tokens.address(unsub, DOMAIN) == f"unsubscribe+{unsub}@{DOMAIN}"
    # RFC 5321 section 4.5.3.1.1: a local part has at most 64 octets
    assert len(tokens.address(unsub, DOMAIN).partition("@")[0]) <= 64
    assert tokens.parse_address(tokens.address(unsub, DOMAIN), DOMAIN).purpose is (
        Purpose.UNSUBSCRIBE
    )


@pytest.mark.parametrize(
    "shape",
    [
        "{a}",
        "<{a}>",
        "  <{a}>  ",
        "{local}@REPLY.Biz.Localhost",
        "{local}@reply.biz.localhost.",
        '"{local}"@reply.biz.localhost',
    ],
)
def test_parse_address_shapes(tokens: Tokens, shape: str) -> None:
    token = tokens.make(11, Party.CUSTOMER, Purpose.REPLY)
    address = tokens.address(token, DOMAIN)
    local = address.partition("@")[0]
    claims = tokens.parse_address(shape.format(a=address, local=local), DOMAIN)
    assert (claims.conversation_id, claims.party, claims.purpose) == (
        11,
        Party.CUSTOMER,
        Purpose.REPLY,
    )


def test_parse_address_refusals(tokens: Tokens, clock: Clock) -> None:
    reply = tokens.make(4, Party.COMPANY, Purpose.REPLY)
    unsub = tokens.make(4, Party.COMPANY, Purpose.UNSUBSCRIBE)
    cases = {
        f"reply+{reply}@other.example": "unknown domain",
        f"reply+{reply}@sub.{DOMAIN}": "unknown domain",
        f"unsubscribe+{reply}@{DOMAIN}": "malformed",  # prefix and purpose disagree
        f"reply+{unsub}@{DOMAIN}": "malformed",
        f"reply-{reply}@{DOMAIN}": "malformed",
        f"reply@{DOMAIN}": "malformed",
        f"hello+{reply}@{DOMAIN}": "malformed",
        f"reply+{reply}": "malformed",
        f"@{DOMAIN}": "malformed",
        f"reply+{reply[:-1]}x@{DOMAIN}": "forged",
    }
    for address, reason in cases.items():
        with pytest.raises(TokenError) as err:
            tokens.parse_address(address, DOMAIN)
        assert str(err.value) == reason, address
    clock.now = NOW + TTL + 1
    with pytest.raises(TokenError, match=r"^expired$"):
        tokens.parse_address(f"reply+{reply}@{DOMAIN}", DOMAIN)
    assert tokens.parse_address(f"reply+{reply}@{DOMAIN}", DOMAIN, allow_expired=True)


def test_address_of_a_malformed_token(tokens: Tokens) -> None:
    with pytest.raises(TokenError, match=r"^malformed$"):
        tokens.address("nope", DOMAIN)


def test_bad_construction_and_ranges(tokens: Tokens) -> None:
    with pytest.raises(ValueError):
        Tokens("", TTL)
    with pytest.raises(ValueError):
        Tokens("x", 0)
    with pytest.raises(ValueError):
        tokens.make(-1, Party.COMPANY, Purpose.REPLY)
    with pytest.raises(ValueError):
        tokens.make(2**64, Party.COMPANY, Purpose.REPLY)
    with pytest.raises(ValueError):
        Tokens("x", 2**33).make(1, Party.COMPANY, Purpose.REPLY)


def test_default_clock_is_wall_time() -> None:
    import time

    tokens = Tokens("x", 60)
    claims = tokens.check(tokens.make(1, Party.COMPANY, Purpose.REPLY))
    assert abs(claims.expires - (time.time() + 60)) < 5


def test_the_conversation_id_is_not_readable_in_the_token() -> None:
    import base64
    import struct

    tokens = Tokens("s3cret", 3600)
    for conversation_id in (1, 2, 4242):
        raw = base64.b32decode(tokens.make(conversation_id, Party.COMPANY, Purpose.REPLY).upper())
        assert struct.pack(">Q", conversation_id) not in raw
        claims = tokens.check(tokens.make(conversation_id, Party.COMPANY, Purpose.REPLY))
        assert claims.conversation_id == conversation_id


def test_tokens_of_the_first_version_still_work() -> None:
    import base64
    import hashlib
    import hmac
    import struct
    import time

    secret = "s3cret"
    key = hmac.new(secret.encode(), b"orgchat notify token v1", hashlib.sha256).digest()
    payload = struct.pack(">BBQI", 1, 0x01 | 0x02, 77, int(time.time()) + 60)
    raw = payload + hmac.new(key, payload, hashlib.sha256).digest()[:11]
    old = base64.b32encode(raw).decode().lower()
    claims = Tokens(secret, 3600).check(old)
    assert (claims.conversation_id, claims.party, claims.purpose) == (
        77,
        Party.CUSTOMER,
        Purpose.UNSUBSCRIBE,
    )
