"""Addresses on the component domain.

* ``domain`` itself: the service (disco, help).
* ``slug@domain``: a company, as customers see it.
* ``slug+token@domain``: one conversation, as the company's agents see it.
  ``token`` is random (stored with the conversation), so the address is
  stable per (company, customer) and reveals nothing about the customer.
"""

from __future__ import annotations

import re

from slixmpp.jid import JID, InvalidJID

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
TOKEN_RE = re.compile(r"^[a-z2-7]{10}$")
SEPARATOR = "+"


def is_slug(value: str) -> bool:
    return bool(SLUG_RE.match(value))


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
