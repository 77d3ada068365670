"""Web push: one encrypted push message to one subscription.

The push step of the notification cascade. A browser (or a phone's web view)
registered a subscription with a push service (Mozilla, Google, Apple...):
an endpoint URL, the user agent's P-256 public key ``p256dh`` and a 16-byte
authentication secret ``auth``. Sending is one HTTP POST to the endpoint:

* **RFC 8030** (Generic Event Delivery Using HTTP Push): the request itself,
  with the ``TTL`` header (how long the push service keeps an undelivered
  message), ``Urgency`` and optionally ``Topic``; the answer is 201 Created,
  404/410 for a subscription that expired, 429 or 5xx to come back later
  (``Retry-After``), another 4xx for a request that will never be accepted.
* **RFC 8291** (Message Encryption for Web Push): the JSON payload is
  encrypted for the user agent: ECDH between a fresh P-256 key and ``p256dh``,
  HKDF-SHA256 keyed with ``auth``, AES-128-GCM;
* **RFC 8188** (Encrypted Content-Encoding for HTTP): the ``aes128gcm``
  content coding that carries it: a header (salt, record size, the sender's
  ephemeral public key) and a single record.
* **RFC 8292** (VAPID): ``Authorization: vapid t=<JWT>, k=<public key>``, an
  ES256 JWT whose ``aud`` is the endpoint's origin, signed with the operator's
  key; ``k`` is also what a browser passes to ``pushManager.subscribe`` as
  ``applicationServerKey`` (:meth:`PushSender.public_key`).

Dependencies, and why. The cryptography is written here against
``cryptography`` (ECDH, HKDF, AES-GCM and ECDSA are all in it); it is about 60
lines and is held to the RFC 8291 Appendix A test vector by the unit tests.
``pywebpush`` would bring ``requests`` (blocking: a thread per push),
``py-vapid`` and ``http_ece``, none of them typed. The POST goes through
``httpx``: asyncio-native and typed, it verifies TLS against certifi's CA
bundle, honours the proxy environment variables an outbound-restricted
server may need, and frames HTTP/1.1 correctly; its dependencies (httpcore,
h11, anyio, certifi, idna) are pure Python. A hand-written HTTP/1.1 client
would save those five packages at the price of owning TLS and response
framing. A client is opened per push (with one shared TLS context): pushes
are rare, one per unseen conversation, and nothing has to be closed.

A subscription's endpoint is used as stored: ``https`` (RFC 8030 requires
TLS), or ``http`` for development push services; registration
(:mod:`component.features.notify.preferences`) is where plain HTTP is refused outside
development. Redirects are never followed.

No storage, no XMPP: the caller (:mod:`component.features.notify.cascade`) acts on the
:class:`PushResult`: removes a subscription that is GONE, retries later on
RETRY, logs REJECTED.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import datetime as dt
import email.utils
import json
import os
import re
import time
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import httpx
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from component.config import PushSettings

#: Largest plaintext sent (RFC 8291, section 4): a push service need not accept
#: more than 4096 octets of body (RFC 8030, section 7.2); less the aes128gcm
#: header (86), the padding delimiter (1) and the GCM tag (16): 3993.
MAX_PLAINTEXT = 3993
#: The record size announced in the aes128gcm header: one record holds it all.
RECORD_SIZE = 4096
#: Lifetime of a VAPID JWT; RFC 8292 allows at most 24 hours.
VAPID_LIFETIME = 12 * 3600
#: Characters of a push service's error body kept in :attr:`PushResult.detail`.
DETAIL_CHARS = 200
#: A push service that did not answer (timeout, refused, reset) is left alone
#: this long, doubled after each further failure up to the maximum (seconds).
SERVICE_BACKOFF_MIN = 5.0
SERVICE_BACKOFF_MAX = 300.0
#: Push services remembered as failing; beyond it the oldest is forgotten.
MAX_FAILING_SERVICES = 10_000

#: Order of the P-256 group: a raw private key is an integer in [1, n - 1].
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_B64URL = re.compile(r"[A-Za-z0-9_\-+/]*={0,2}")
_TOPIC = re.compile(r"[A-Za-z0-9_\-]{1,32}")
_ELLIPSIS = "\u2026"

Urgency = Literal["very-low", "low", "normal", "high"]


class PushOutcome(StrEnum):
    """What the caller should do with a subscription after one push."""

    SENT = "sent"  #: accepted by the push service (2xx)
    GONE = "gone"  #: 404/410: the subscription expired or was revoked; remove it
    RETRY = "retry"  #: 429, 5xx, network error or timeout: try again later
    REJECTED = "rejected"  #: any other answer: this request will never be accepted


@dataclasses.dataclass(frozen=True)
class PushResult:
    outcome: PushOutcome
    status: int | None  #: the HTTP status; None when no answer came
    detail: str  #: one line for the logs
    retry_after: float | None = None  #: seconds, from Retry-After on RETRY


class PushSubscription(Protocol):
    """What a push needs of a subscription; ``storage.models.PushSubscription``
    is one (this module imports no storage)."""

    @property
    def endpoint(self) -> str: ...  #: the push service URL

    @property
    def p256dh(self) -> str: ...  #: the user agent's P-256 public key, base64url

    @property
    def auth(self) -> str: ...  #: the 16-byte authentication secret, base64url


class PushPayloadTooLarge(ValueError):
    """The payload does not fit even with every string emptied."""


# -- encodings -------------------------------------------------------------


def b64url_encode(data: bytes) -> str:
    """base64url without padding, as Web Push and JWT write it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """base64url (or standard base64), padding optional; ValueError otherwise."""
    text = text.strip()
    if not _B64URL.fullmatch(text):
        raise ValueError("not base64url")
    text = text.rstrip("=").replace("+", "-").replace("/", "_")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


def _public_bytes(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


# -- keys --------------------------------------------------------------------


def load_vapid_key(text: str) -> ec.EllipticCurvePrivateKey:
    """Read the operator's VAPID key: PEM (SEC 1 or PKCS#8), or base64url of
    the raw 32-byte private value (or of its DER encoding).

    Raises ValueError naming the problem, never the key.
    """
    text = text.strip()
    if not text:
        raise ValueError("the VAPID key is empty")
    key: object
    if "-----BEGIN" in text:
        # A PEM passed through an environment variable often has literal \n.
        pem = text.replace("\\n", "\n").encode("ascii", "replace")
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise ValueError("the VAPID key is not a readable unencrypted PEM key") from None
    else:
        try:
            raw = b64url_decode(text)
        except ValueError:
            raise ValueError("the VAPID key is neither PEM nor base64url") from None
        if len(raw) == 32:
            value = int.from_bytes(raw, "big")
            if not 0 < value < _P256_ORDER:
                raise ValueError("the VAPID key is not a valid P-256 private value")
            key = ec.derive_private_key(value, ec.SECP256R1())
        else:
            try:
                key = serialization.load_der_private_key(raw, password=None)
            except (ValueError, TypeError, UnsupportedAlgorithm):
                raise ValueError(
                    "the VAPID key is neither 32 raw bytes nor a DER private key"
                ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("the VAPID key is not an EC P-256 (prime256v1) key")
    return key


def generate_vapid_key() -> str:
    """A new VAPID private key: base64url of its raw 32 bytes (for operators)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return b64url_encode(key.private_numbers().private_value.to_bytes(32, "big"))


# -- RFC 8291 / RFC 8188 -----------------------------------------------------


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def encrypt(
    plaintext: bytes,
    ua_public: bytes,
    auth_secret: bytes,
    *,
    salt: bytes | None = None,
    as_private: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    """The ``aes128gcm`` body of a push message (RFC 8291 over RFC 8188).

    ``ua_public`` is the subscription's ``p256dh`` (65-byte uncompressed point),
    ``auth_secret`` its ``auth``. ``salt`` and ``as_private`` are fresh random
    values; tests pass the RFC's to reproduce its example. One record, no
    padding. Raises ValueError for an invalid key or a plaintext too large.
    """
    if len(plaintext) > RECORD_SIZE - 17:
        raise ValueError("plaintext larger than one aes128gcm record")
    if len(ua_public) != 65 or ua_public[0] != 4:
        raise ValueError("p256dh is not an uncompressed P-256 point")
    if len(auth_secret) < 16:
        raise ValueError("auth is shorter than 16 bytes")
    ua_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), ua_public)
    salt = os.urandom(16) if salt is None else salt
    if len(salt) != 16:
        raise ValueError("the salt must be 16 bytes")
    as_private = ec.generate_private_key(ec.SECP256R1()) if as_private is None else as_private
    as_public = _public_bytes(as_private.public_key())

    # RFC 8291, section 3.4: the input keying material from ECDH and auth.
    ecdh_secret = as_private.exchange(ec.ECDH(), ua_key)
    key_info = b"WebPush: info\x00" + ua_public + as_public
    ikm = _hkdf(auth_secret, ecdh_secret, key_info, 32)
    # RFC 8188, section 2.2 and 2.3: content-encryption key and nonce.
    cek = _hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = _hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
    # The last (and only) record: plaintext, delimiter 0x02, no padding;
    # its sequence number is 0, so the nonce is used as derived.
    record = AESGCM(cek).encrypt(nonce, plaintext + b"\x02", None)
    header = salt + RECORD_SIZE.to_bytes(4, "big") + bytes([len(as_public)]) + as_public
    return header + record


# -- RFC 8292 ----------------------------------------------------------------


def audience(endpoint: str) -> str:
    """The origin of a push endpoint (RFC 6454 serialization): the JWT ``aud``.

    ValueError for a URL that is neither http nor https or has no host.
    """
    parts = urlsplit(endpoint)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise ValueError("the endpoint is not an https URL")
    host = parts.hostname
    if not host:
        raise ValueError("the endpoint has no host")
    port = parts.port  # ValueError when malformed
    if ":" in host:
        host = f"[{host}]"
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


def _jwt_part(obj: Mapping[str, Any]) -> str:
    return b64url_encode(json.dumps(obj, separators=(",", ":")).encode())


def vapid_authorization(
    key: ec.EllipticCurvePrivateKey, endpoint: str, subject: str, now: float | None = None
) -> str:
    """The ``Authorization`` header value of RFC 8292: ``vapid t=<JWT>, k=<key>``."""
    now = time.time() if now is None else now
    claims = {"aud": audience(endpoint), "exp": int(now) + VAPID_LIFETIME, "sub": subject}
    signing_input = _jwt_part({"typ": "JWT", "alg": "ES256"}) + "." + _jwt_part(claims)
    der = key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")  # JWS ES256: R || S
    token = signing_input + "." + b64url_encode(signature)
    return f"vapid t={token}, k={b64url_encode(_public_bytes(key.public_key()))}"


# -- payload -----------------------------------------------------------------


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _string_slots(doc: Any) -> list[tuple[dict[str, Any] | list[Any], Any]]:
    """Every (container, key) whose value is a string, dict keys left alone."""
    slots: list[tuple[dict[str, Any] | list[Any], Any]] = []
    stack = [doc]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for k, v in items:
            if isinstance(v, str):
                slots.append((node, k))
            elif isinstance(v, dict | list):
                stack.append(v)
    return slots


def _json_size(text: str) -> int:
    """Bytes of ``text`` inside a JSON string (``_dumps``), quotes excluded."""
    return len(_dumps(text)) - 2


def _char_size(ch: str) -> int:
    if ch in '"\\\b\f\n\r\t':
        return 2
    return 6 if ch < " " else len(ch.encode())


def _cut(text: str, budget: int) -> str:
    """``text`` if its JSON size fits ``budget``; else its longest prefix that
    fits with an ellipsis after it, or "" when no character does."""
    if _json_size(text) <= budget:
        return text
    room = budget - _json_size(_ELLIPSIS)
    end = used = 0
    while end < len(text) and used + _char_size(text[end]) <= room:
        used += _char_size(text[end])
        end += 1
    prefix = text[:end].rstrip()
    return prefix + _ELLIPSIS if prefix else ""


def fit_payload(payload: Mapping[str, Any], limit: int = MAX_PLAINTEXT) -> bytes:
    """The payload as compact UTF-8 JSON of at most ``limit`` bytes.

    When too long, string values are capped to one common size, the largest
    that fits (so a long body is cut while a title, a JID or a link, shorter
    than the cap, stay whole); a cut string ends with an ellipsis, on a
    character boundary. Keys, numbers and structure are kept.
    TypeError/ValueError for what JSON cannot carry;
    :class:`PushPayloadTooLarge` when emptying every string is not enough.
    """
    data = _dumps(payload)
    if len(data) <= limit:
        return data
    doc = json.loads(data)  # a mutable deep copy of plain JSON values
    slots = _string_slots(doc)
    originals: list[str] = [holder[key] for holder, key in slots]

    def capped(cap: int) -> bytes:
        for (holder, key), text in zip(slots, originals, strict=True):
            holder[key] = _cut(text, cap)
        return _dumps(doc)

    # The document's size grows with the cap: the largest cap that fits.
    low, high = 0, min(limit, max((_json_size(text) for text in originals), default=0))
    best = capped(low)
    if len(best) > limit:
        raise PushPayloadTooLarge(f"payload of {len(data)} bytes, limit {limit}")
    while low < high:
        mid = (low + high + 1) // 2
        candidate = capped(mid)
        if len(candidate) <= limit:
            low, best = mid, candidate
        else:
            high = mid - 1
    return best


# -- HTTP answers ------------------------------------------------------------


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value: delta-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    now = dt.datetime.now(dt.UTC) if now is None else now
    return max(0.0, (when - now).total_seconds())


def classify(status: int, retry_after: str | None, detail: str) -> PushResult:
    """The outcome of one answer of a push service (RFC 8030, section 5 and 8)."""
    if 200 <= status < 300:
        return PushResult(PushOutcome.SENT, status, detail)
    if status in (404, 410):
        return PushResult(PushOutcome.GONE, status, detail)
    if status == 429 or status >= 500:
        return PushResult(PushOutcome.RETRY, status, detail, parse_retry_after(retry_after))
    return PushResult(PushOutcome.REJECTED, status, detail)


class ServiceBackoff:
    """Push services that did not answer, and until when they are left alone.

    Per process (a view of one process's own attempts, not shared state): a
    push service that is down costs each process one timeout per backoff
    period instead of one per subscription and job. Monotonic clock.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        #: origin -> (left alone until, current backoff)
        self._until: dict[str, tuple[float, float]] = {}

    def remaining(self, origin: str) -> float:
        """Seconds ``origin`` is still left alone (0: try it)."""
        entry = self._until.get(origin)
        return 0.0 if entry is None else max(0.0, entry[0] - self._clock())

    def failed(self, origin: str) -> float:
        """Record a failure; returns how long ``origin`` is now left alone."""
        previous = self._until.pop(origin, None)
        now = self._clock()
        # A failure long after the last one starts the backoff over.
        if previous is None or now - previous[0] > SERVICE_BACKOFF_MAX:
            backoff = SERVICE_BACKOFF_MIN
        else:
            backoff = min(previous[1] * 2, SERVICE_BACKOFF_MAX)
        if len(self._until) >= MAX_FAILING_SERVICES:
            del self._until[next(iter(self._until))]
        self._until[origin] = (now + backoff, backoff)
        return backoff

    def answered(self, origin: str) -> None:
        """The service answered (whatever it said): it is up again."""
        self._until.pop(origin, None)


def _origin(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _one_line(text: str) -> str:
    return " ".join(text.split())[:DETAIL_CHARS]


# -- the sender ----------------------------------------------------------------


class PushSender:
    """Sends web pushes with the operator's VAPID key (``[push]`` settings)."""

    def __init__(self, settings: PushSettings) -> None:
        self.settings = settings
        self._key: ec.EllipticCurvePrivateKey | None = None
        self._public = ""
        if settings.vapid_private_key.strip():
            try:
                self._key = load_vapid_key(settings.vapid_private_key)
            except ValueError as exc:
                raise ValueError(f"push.vapid_private_key: {exc}") from None
            self._public = b64url_encode(_public_bytes(self._key.public_key()))
        self._tls = httpx.create_ssl_context()
        self._failing = ServiceBackoff()

    @property
    def enabled(self) -> bool:
        """False when no VAPID key is configured: web push is off."""
        return self._key is not None

    def public_key(self) -> str:
        """The VAPID application server key: base64url of the 65-byte
        uncompressed P-256 point, for ``pushManager.subscribe``.

        RuntimeError when web push is off.
        """
        if self._key is None:
            raise RuntimeError("web push is off: push.vapid_private_key is not set")
        return self._public

    async def send(
        self,
        sub: PushSubscription,
        payload: Mapping[str, Any],
        *,
        urgency: Urgency = "normal",
        topic: str | None = None,
        ttl: int | None = None,
    ) -> PushResult:
        """Encrypt ``payload`` (JSON, strings cut to fit) for ``sub`` and POST it.

        ``urgency`` and ``topic`` are RFC 8030's (section 5.3, 5.4): a newer
        message with the same topic replaces an undelivered one. ``ttl``
        defaults to ``push.ttl``. Never raises for what the subscription or
        the push service does; TypeError/ValueError only for a payload JSON
        cannot carry, an unknown urgency or a malformed topic.
        """
        if urgency not in ("very-low", "low", "normal", "high"):
            raise ValueError(f"unknown Urgency {urgency!r}")
        if topic is not None and not _TOPIC.fullmatch(topic):
            raise ValueError("a Topic is 1 to 32 characters of the base64url alphabet")
        if self._key is None:
            return PushResult(PushOutcome.REJECTED, None, "web push is off (no VAPID key)")
        try:
            plaintext = fit_payload(payload)
        except PushPayloadTooLarge as exc:
            return PushResult(PushOutcome.REJECTED, None, str(exc))
        try:
            body = encrypt(plaintext, b64url_decode(sub.p256dh), b64url_decode(sub.auth))
            authorization = vapid_authorization(
                self._key, sub.endpoint, self.settings.vapid_subject
            )
        except ValueError as exc:
            return PushResult(PushOutcome.REJECTED, None, f"unusable subscription: {exc}")
        headers = {
            "Authorization": authorization,
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(max(0, self.settings.ttl if ttl is None else ttl)),
            "Urgency": urgency,
        }
        if topic is not None:
            headers["Topic"] = topic
        service = _origin(sub.endpoint)
        wait = self._failing.remaining(service)
        if wait > 0:
            return PushResult(PushOutcome.RETRY, None, "push service failing: not tried", wait)
        try:
            result = await self._post(sub.endpoint, headers, body)
        except httpx.InvalidURL as exc:
            return PushResult(PushOutcome.REJECTED, None, f"unusable subscription: {exc}")
        except (httpx.TimeoutException, TimeoutError):
            result = PushResult(PushOutcome.RETRY, None, "timeout")
        except (httpx.HTTPError, OSError) as exc:
            detail = _one_line(f"{type(exc).__name__}: {exc}")
            result = PushResult(PushOutcome.RETRY, None, detail)
        else:
            self._failing.answered(service)
            return result
        return dataclasses.replace(result, retry_after=self._failing.failed(service))

    async def _post(self, endpoint: str, headers: dict[str, str], body: bytes) -> PushResult:
        timeout = self.settings.timeout
        async with (
            asyncio.timeout(timeout),
            httpx.AsyncClient(verify=self._tls, timeout=timeout, follow_redirects=False) as client,
            client.stream("POST", endpoint, headers=headers, content=body) as response,
        ):
            text = b""
            async for chunk in response.aiter_bytes():
                text += chunk
                if len(text) >= DETAIL_CHARS:
                    break
            detail = f"{response.status_code} {response.reason_phrase}"
            excerpt = _one_line(text.decode("utf-8", "replace"))
            if excerpt and not 200 <= response.status_code < 300:
                detail += f": {excerpt}"
            return classify(response.status_code, response.headers.get("Retry-After"), detail)
