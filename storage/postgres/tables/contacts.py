"""The ``contacts`` table: how to reach a person off XMPP, per address.

An address is a customer's bare JID or a company's JID (``slug@domain``),
compared as given. Nothing is stored until someone sets something:
:func:`get` answers one row for any address, with the defaults and the
directory's email (``companies.email``) of a company address. Confirmation
codes are compared by their hash, in SQL (the hash is what the caller
computed from the code; its secret never reaches the database).
"""

from __future__ import annotations

import asyncpg

from storage.models import Channel
from storage.postgres.pool import Conn

# $1 the address, $2 the component domain (NULL: any domain). One row even if
# nothing is stored (the LEFT JOIN from the address itself).
_GET = """
    SELECT c.email, c.pending_email,
           coalesce(c.email_opt_out, false) AS email_opt_out,
           coalesce(c.push_opt_out, false) AS push_opt_out,
           c.quiet_hours, c.quiet_timezone, c.lang,
           (SELECT co.email FROM companies co
             WHERE strpos(a.address, '@') > 0
               AND co.slug = split_part(a.address, '@', 1)
               AND ($2::text IS NULL OR split_part(a.address, '@', 2) = $2)) AS directory_email
      FROM (SELECT $1::text AS address) a
      LEFT JOIN contacts c ON c.address = a.address
"""

# A new request replaces any earlier one (its code no longer confirms); its
# language (NULL: unknown) becomes the language of the emails.
_REQUEST_EMAIL = """
    INSERT INTO contacts (address, pending_email, pending_code_hash, pending_since, lang)
    VALUES ($1, $2, $3, now(), $4)
    ON CONFLICT (address) DO UPDATE
       SET pending_email = EXCLUDED.pending_email,
           pending_code_hash = EXCLUDED.pending_code_hash,
           pending_since = EXCLUDED.pending_since,
           lang = coalesce(EXCLUDED.lang, contacts.lang),
           updated_at = now()
"""

_SET_QUIET_HOURS = """
    INSERT INTO contacts (address, quiet_hours, quiet_timezone) VALUES ($1, $2, $3)
    ON CONFLICT (address) DO UPDATE
       SET quiet_hours = EXCLUDED.quiet_hours, quiet_timezone = EXCLUDED.quiet_timezone,
           updated_at = now()
"""

_CONFIRM_EMAIL = """
    UPDATE contacts
       SET email = pending_email, pending_email = NULL, pending_code_hash = NULL,
           pending_since = NULL, updated_at = now()
     WHERE address = $1 AND pending_code_hash = $2
    RETURNING email
"""

# $2 the channel ('email' or 'push'), $3 opted out or not; the other
# channel's flag is left as it is.
_SET_OPT_OUT = """
    INSERT INTO contacts (address, email_opt_out, push_opt_out)
    VALUES ($1, $2::text = 'email' AND $3::boolean, $2::text = 'push' AND $3::boolean)
    ON CONFLICT (address) DO UPDATE
       SET email_opt_out = CASE WHEN $2::text = 'email' THEN $3::boolean
                                ELSE contacts.email_opt_out END,
           push_opt_out = CASE WHEN $2::text = 'push' THEN $3::boolean
                               ELSE contacts.push_opt_out END,
           updated_at = now()
"""


async def get(conn: Conn, address: str, company_domain: str | None) -> asyncpg.Record:
    """The address's row (defaults if none) with ``directory_email``: the email
    of the company whose JID it is (``slug@company_domain``; None: any domain)."""
    row = await conn.fetchrow(_GET, address, company_domain)
    assert row is not None  # one row whatever is stored
    return row


async def request_email(
    conn: Conn, address: str, email: str, code_hash: str, lang: str | None
) -> None:
    await conn.execute(_REQUEST_EMAIL, address, email, code_hash, lang)


async def confirm_email(conn: Conn, address: str, code_hash: str) -> str | None:
    """The pending email becomes the address's if the code's hash matches; returns it."""
    confirmed: str | None = await conn.fetchval(_CONFIRM_EMAIL, address, code_hash)
    return confirmed


async def set_opt_out(conn: Conn, address: str, channel: Channel, opted_out: bool) -> None:
    await conn.execute(_SET_OPT_OUT, address, channel.value, opted_out)


async def set_quiet_hours(
    conn: Conn, address: str, quiet_hours: str | None, timezone: str | None
) -> None:
    await conn.execute(_SET_QUIET_HOURS, address, quiet_hours, timezone)
