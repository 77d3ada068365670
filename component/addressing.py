"""Addresses on the component domain.

* ``domain`` itself: the service (disco, help).
* ``slug@domain``: a company, as customers see it.
* ``slug+token@domain``: one conversation, as the company's agents see it.
  ``token`` is random (stored with the conversation), so the address is
  stable per (company, customer) and reveals nothing about the customer.
"""

from __future__ import annotations

import dataclasses
import functools
import re

from slixmpp.jid import JID, InvalidJID

from storage.models import Conversation

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
TOKEN_RE = re.compile(r"^[a-z2-7]{10}$")
SEPARATOR = "+"


def is_slug(value: str) -> bool:
    return bool(SLUG_RE.match(value))


@functools.lru_cache(maxsize=4096)  # twice per message; the same few addresses recur
def split_local(local: str) -> tuple[str, str | None] | None:
    """``"pizza+abc"`` -> ("pizza", "abc"); ``"pizza"`` -> ("pizza", None); else None."""
    slug, sep, token = local.partition(SEPARATOR)
    if not SLUG_RE.match(slug):
        return None
    if not sep:
        return slug, None
    if not TOKEN_RE.match(token):
        return None
    return slug, token


@dataclasses.dataclass(frozen=True, slots=True)
class Address:
    """An address on the component domain: the domain itself (no slug), a
    company (a slug, no token) or a conversation (both)."""

    slug: str | None = None
    token: str | None = None


def parse_address(jid: str, domain: str) -> Address | None:
    """What ``jid`` (bare or full) names on ``domain``; None if it is on another
    domain or its local part is no company or conversation address."""
    bare = jid.partition("/")[0]
    local, at, host = bare.rpartition("@")
    if not at:
        local, host = "", bare
    if host != domain:
        return None
    if not local:
        return Address()
    parts = split_local(local)
    return None if parts is None else Address(*parts)


def parse_conversation(value: str, domain: str) -> tuple[str, str] | None:
    """(slug, token) of a conversation address typed by a person: ``slug+token@domain``,
    or ``slug+token`` alone; None if it is none."""
    text = value.strip().lower()
    address = parse_address(text if "@" in text else f"{text}@{domain}", domain)
    if address is None or address.slug is None or address.token is None:
        return None
    return address.slug, address.token


#: The resource of a company's available presence (IQs to it are the company's).
COMPANY_RESOURCE = "orgchat"


def company_jid(slug: str, domain: str) -> str:
    return f"{slug}@{domain}"


def conversation_jid(slug: str, token: str, domain: str) -> str:
    return f"{slug}{SEPARATOR}{token}@{domain}"


def normalize_bare_jid(value: str) -> str:
    """Validate a user's bare JID (``local@domain``) and return its normal form.

    Raises ValueError with a one-line reason.
    """
    try:
        jid = JID(value.strip())
    except InvalidJID as exc:
        raise ValueError(f"invalid JID {value!r}: {exc}") from None
    if not jid.user or not jid.domain:
        raise ValueError(f"invalid JID {value!r}: expected user@domain")
    if jid.resource:
        raise ValueError(f"invalid JID {value!r}: expected a bare JID without /resource")
    return str(jid.bare)


def agent_jid(value: str, host: str) -> str:
    """An agent's bare JID: an account of the service's own XMPP ``host``.

    Never a component's address (a company of this domain, another service):
    as an agent it would receive customers' messages and could relay them on,
    or loop them back. Raises ValueError with a one-line reason.
    """
    jid = normalize_bare_jid(value)
    if jid.rpartition("@")[2] != host:
        raise ValueError(f"{jid} is not an account of {host}: agents log in to {host}")
    return jid


def display_name(conv: Conversation) -> str:
    """The customer's nickname, else a stable, opaque label.

    Agents see the same one in messages and in the conversation's vCard and disco#info.
    """
    return conv.customer_nick or f"Customer {conv.token[:4].upper()}"
