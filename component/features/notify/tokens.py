"""Signed, expiring tokens in the Reply-To and List-Unsubscribe addresses of emails.

A notification email says ``Reply-To: reply+TOKEN@reply-domain`` and
``List-Unsubscribe: <mailto:unsubscribe+TOKEN@reply-domain>``. The token names
the conversation, the party that was mailed (the company or the customer), what
the address is for, and when it stops working; an HMAC-SHA256 tag makes it
unforgeable, so the inbound SMTP server needs no table of issued addresses and
every component process (sharing ``inbound.secret``) accepts every other's.

Token scheme (version 2)::

    payload = version (1 byte, 0x02)
            | flags   (1 byte: bit 0 purpose, 0 reply / 1 unsubscribe;
                               bit 1 party,   0 company / 1 customer)
            | conversation id (8 bytes, big-endian, unsigned)
            | expiry  (4 bytes, big-endian unix seconds, unsigned)
    tag     = HMAC-SHA256(key, payload)[:11]         (88 bits)
    hidden  = payload XOR HMAC-SHA256(enc_key, tag)[:14]
    key     = HMAC-SHA256(secret, "orgchat notify token v1")
    enc_key = HMAC-SHA256(secret, "orgchat notify token v2 hidden")
    token   = lowercase RFC 4648 base32 of hidden | tag, without padding

The payload is hidden (a deterministic SIV-like encryption: the tag is the
synthetic IV), so an address says nothing of the conversation's id, which
would tell how many conversations the service has. Version 1 tokens (the
payload in clear, in emails sent before) are still accepted.

25 bytes give exactly 40 characters of ``[a-z2-7]``, so addresses are short
(``unsubscribe+`` + 40 = 52 characters, within the 64 octets RFC 5321 allows a
local part) and survive MTAs that change the case of local parts: a token is
decoded case-insensitively.

Address scheme: ``reply+TOKEN@domain`` for replies and
``unsubscribe+TOKEN@domain`` for unsubscribing (RFC 2369 ``mailto:``); the
word before ``+`` must agree with the purpose inside the token. The domain is
compared case-insensitively, a trailing dot and surrounding ``<>`` are ignored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from storage.models import Party

VERSION = 2
_KEY_LABEL = b"orgchat notify token v1"
_HIDING_LABEL = b"orgchat notify token v2 hidden"
_PAYLOAD = struct.Struct(">BBQI")
_TAG_BYTES = 11
_TOKEN_BYTES = _PAYLOAD.size + _TAG_BYTES  # 25
TOKEN_CHARS = _TOKEN_BYTES * 8 // 5  # 40
_B32_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz234567")
_FLAG_UNSUBSCRIBE = 0x01
_FLAG_CUSTOMER = 0x02
_MAX_EXPIRY = 2**32 - 1
_MAX_ID = 2**64 - 1


class TokenError(Exception):
    """A token or address that must not be honoured; ``str()`` is a short reason.

    The reasons are the class constants below.
    """

    FORGED = "forged"  #: well formed, but the tag does not match (or another secret)
    EXPIRED = "expired"  #: authentic, but past its expiry
    MALFORMED = "malformed"  #: not a token of ours at all
    FOREIGN = "unknown domain"  #: an address outside the reply domain

    @property
    def reason(self) -> str:
        return str(self)


class Purpose(StrEnum):
    """What an address is for; the value is the short code used in logs."""

    REPLY = "r"
    UNSUBSCRIBE = "u"

    @property
    def prefix(self) -> str:
        """The word before ``+`` in the address."""
        return "reply" if self is Purpose.REPLY else "unsubscribe"


_PREFIXES = {purpose.prefix: purpose for purpose in Purpose}


@dataclass(frozen=True)
class TokenClaims:
    """What an authentic token says."""

    conversation_id: int
    party: Party
    purpose: Purpose
    expires: int  #: unix seconds; the token is valid while ``now < expires``


class Tokens:
    """Makes and checks tokens with one secret and one lifetime."""

    def __init__(self, secret: str, ttl_s: float, clock: Callable[[], float] = time.time) -> None:
        if not secret:
            raise ValueError("the token secret must not be empty")
        if ttl_s <= 0:
            raise ValueError("the token lifetime must be positive")
        self._key = hmac.new(secret.encode(), _KEY_LABEL, hashlib.sha256).digest()
        self._hiding_key = hmac.new(secret.encode(), _HIDING_LABEL, hashlib.sha256).digest()
        self._ttl = ttl_s
        self._clock = clock

    def make(self, conversation_id: int, party: Party, purpose: Purpose) -> str:
        """A token valid for ``ttl_s`` seconds from now."""
        if not 0 <= conversation_id <= _MAX_ID:
            raise ValueError(f"conversation id out of range: {conversation_id}")
        expires = int(self._clock() + self._ttl)
        if expires > _MAX_EXPIRY:
            raise ValueError("token expiry beyond 2106")
        flags = (_FLAG_UNSUBSCRIBE if purpose is Purpose.UNSUBSCRIBE else 0) | (
            _FLAG_CUSTOMER if party is Party.CUSTOMER else 0
        )
        payload = _PAYLOAD.pack(VERSION, flags, conversation_id, expires)
        tag = self._tag(payload)
        raw = self._hide(payload, tag) + tag
        return base64.b32encode(raw).decode("ascii").lower()

    def check(self, token: str, *, allow_expired: bool = False) -> TokenClaims:
        """The claims of an authentic, unexpired token; else TokenError.

        ``allow_expired``: an authentic but expired token is accepted too (for
        unsubscribe addresses, which must keep working in old emails).
        """
        hidden, tag = _split(token)
        payload = self._hide(hidden, tag)  # XOR: hiding again reveals
        if hmac.compare_digest(tag, self._tag(payload)) and payload[0] == VERSION:
            claims = _claims(payload)
        elif hmac.compare_digest(tag, self._tag(hidden)) and hidden[0] == 1:
            claims = _claims(hidden)  # version 1: in clear
        else:
            raise TokenError(TokenError.FORGED)
        if not allow_expired and self._clock() >= claims.expires:
            raise TokenError(TokenError.EXPIRED)
        return claims

    def address(self, token: str, domain: str) -> str:
        """``reply+TOKEN@domain`` or ``unsubscribe+TOKEN@domain``, after the token's purpose."""
        purpose = self.check(token, allow_expired=True).purpose
        return f"{purpose.prefix}+{token.lower()}@{domain}"

    def parse_address(
        self, address: str, domain: str, *, allow_expired: bool = False
    ) -> TokenClaims:
        """The inverse of :meth:`address`, checked as :meth:`check`; else TokenError."""
        value = address.strip()
        if value.startswith("<") and value.endswith(">"):
            value = value[1:-1].strip()
        local, at, addr_domain = value.rpartition("@")
        if not at or not local:
            raise TokenError(TokenError.MALFORMED)
        if _norm_domain(addr_domain) != _norm_domain(domain):
            raise TokenError(TokenError.FOREIGN)
        if len(local) >= 2 and local.startswith('"') and local.endswith('"'):
            local = local[1:-1]  # a quoted local part (RFC 5321 Quoted-string)
        prefix, plus, token = local.lower().partition("+")
        purpose = _PREFIXES.get(prefix)
        if not plus or purpose is None:
            raise TokenError(TokenError.MALFORMED)
        claims = self.check(token, allow_expired=allow_expired)
        if claims.purpose is not purpose:
            raise TokenError(TokenError.MALFORMED)
        return claims

    def _hide(self, data: bytes, tag: bytes) -> bytes:
        stream = hmac.new(self._hiding_key, tag, hashlib.sha256).digest()
        return bytes(a ^ b for a, b in zip(data, stream, strict=False))

    def _tag(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_TAG_BYTES]


def _norm_domain(domain: str) -> str:
    return domain.strip().rstrip(".").lower()


def _split(token: str) -> tuple[bytes, bytes]:
    text = token.strip().lower()
    if len(text) != TOKEN_CHARS or not set(text) <= _B32_ALPHABET:
        raise TokenError(TokenError.MALFORMED)
    try:
        raw = base64.b32decode(text.upper())
    except (binascii.Error, ValueError):  # pragma: no cover - excluded by the checks above
        raise TokenError(TokenError.MALFORMED) from None
    return raw[: _PAYLOAD.size], raw[_PAYLOAD.size :]


def _claims(payload: bytes) -> TokenClaims:
    version, flags, conversation_id, expires = _PAYLOAD.unpack(payload)
    if version not in (1, VERSION) or flags & ~(_FLAG_UNSUBSCRIBE | _FLAG_CUSTOMER):
        raise TokenError(TokenError.MALFORMED)
    return TokenClaims(
        conversation_id=conversation_id,
        party=Party.CUSTOMER if flags & _FLAG_CUSTOMER else Party.COMPANY,
        purpose=Purpose.UNSUBSCRIBE if flags & _FLAG_UNSUBSCRIBE else Purpose.REPLY,
        expires=expires,
    )
