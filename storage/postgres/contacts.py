"""The ``contacts`` and ``push_subscriptions`` tables: reaching people off XMPP.

A contact's address is a customer's bare JID or a company's JID
(``slug@domain``), compared as given: callers pass normalised bare JIDs.
Nothing is stored until someone sets something; :meth:`PgContactStore.get`
answers defaults for an address without a row.

A company's email comes from the directory (``companies.email``) unless the
company confirmed an address of its own here or opted out of email. The store
recognises a company address by its local part being a company's slug. It
does not know the component's domain unless it is given one
(``company_domain``): without it, a customer whose local part happens to be a
company slug (``pizza-napoli@localhost``) would be given that company's email,
so every deployment should pass it (``PostgresStores``/``connect`` take it).

Confirmation codes are compared by their hash, in SQL (the hash is what the
caller computed from the code; its secret never reaches the database).
"""

from __future__ import annotations

import asyncpg

from storage.models import Channel, Contact, PushSubscription
from storage.postgres.pool import Database

PUSH_COLUMNS = "id, address, endpoint, p256dh, auth"

# $1 the address, $2 the component domain (NULL: any domain). One row even if
# nothing is stored (the LEFT JOIN from the address itself).
_GET = """
    SELECT c.email, c.pending_email,
           coalesce(c.email_opt_out, false) AS email_opt_out,
           coalesce(c.push_opt_out, false) AS push_opt_out,
           c.quiet_hours, c.quiet_timezone,
           (SELECT co.email FROM companies co
             WHERE strpos(a.address, '@') > 0
               AND co.slug = split_part(a.address, '@', 1)
               AND ($2::text IS NULL OR split_part(a.address, '@', 2) = $2)) AS directory_email
      FROM (SELECT $1::text AS address) a
      LEFT JOIN contacts c ON c.address = a.address
"""

# A new request replaces any earlier one (its code no longer confirms).
_REQUEST_EMAIL = """
    INSERT INTO contacts (address, pending_email, pending_code_hash, pending_since)
    VALUES ($1, $2, $3, now())
    ON CONFLICT (address) DO UPDATE
       SET pending_email = EXCLUDED.pending_email,
           pending_code_hash = EXCLUDED.pending_code_hash,
           pending_since = EXCLUDED.pending_since,
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

# The endpoint identifies a subscription: subscribing again (new keys, or
# another account in the same browser) updates it in place.
_ADD_PUSH = """
    INSERT INTO push_subscriptions (address, endpoint, p256dh, auth)
    VALUES ($1, $2, $3, $4)
    ON CONFLICT (endpoint) DO UPDATE
       SET address = EXCLUDED.address, p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth,
           updated_at = now()
    RETURNING id
"""


def push_from_row(row: asyncpg.Record) -> PushSubscription:
    return PushSubscription(
        id=row["id"],
        address=row["address"],
        endpoint=row["endpoint"],
        p256dh=row["p256dh"],
        auth=row["auth"],
    )


class PgContactStore:
    """See :class:`storage.protocols.ContactStore` and the module's docstring."""

    def __init__(self, db: Database, company_domain: str | None = None) -> None:
        self._db = db
        #: Only ``slug@company_domain`` falls back to the directory's email
        #: (None: any ``slug@...``).
        self._company_domain = company_domain

    async def get(self, address: str) -> Contact:
        """The stored contact, or defaults.

        ``email`` is the address confirmed here; failing that, if ``address``
        is a company's JID and the company did not opt out of email, the
        directory's.
        """
        async with self._db.acquire() as conn:
            row = await conn.fetchrow(_GET, address, self._company_domain)
        assert row is not None  # one row whatever is stored
        email: str | None = row["email"]
        if email is None and not row["email_opt_out"]:
            email = row["directory_email"]
        return Contact(
            address=address,
            email=email,
            pending_email=row["pending_email"],
            email_opt_out=row["email_opt_out"],
            push_opt_out=row["push_opt_out"],
            quiet_hours=row["quiet_hours"],
            quiet_timezone=row["quiet_timezone"],
        )

    async def request_email(self, address: str, email: str, code_hash: str) -> None:
        async with self._db.acquire() as conn:
            await conn.execute(_REQUEST_EMAIL, address, email, code_hash)

    async def confirm_email(self, address: str, code_hash: str) -> str | None:
        """The confirmed address replaces the earlier one; opt-outs are left as they are."""
        async with self._db.acquire() as conn:
            confirmed: str | None = await conn.fetchval(_CONFIRM_EMAIL, address, code_hash)
        return confirmed

    async def set_opt_out(self, address: str, channel: Channel, opted_out: bool) -> None:
        async with self._db.acquire() as conn:
            await conn.execute(_SET_OPT_OUT, address, channel.value, opted_out)

    async def set_quiet_hours(
        self, address: str, quiet_hours: str | None, timezone: str | None
    ) -> None:
        async with self._db.acquire() as conn:
            await conn.execute(_SET_QUIET_HOURS, address, quiet_hours, timezone)

    async def add_push(self, address: str, endpoint: str, p256dh: str, auth: str) -> int:
        """Upsert by endpoint: a known endpoint moves to ``address`` with the new keys."""
        async with self._db.acquire() as conn:
            subscription_id: int = await conn.fetchval(_ADD_PUSH, address, endpoint, p256dh, auth)
        return subscription_id

    async def push_subscriptions(self, address: str) -> list[PushSubscription]:
        """Oldest first."""
        async with self._db.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {PUSH_COLUMNS} FROM push_subscriptions WHERE address = $1 ORDER BY id",
                address,
            )
        return [push_from_row(row) for row in rows]

    async def remove_push(self, subscription_id: int) -> None:
        """Removing an unknown id does nothing."""
        async with self._db.acquire() as conn:
            await conn.execute("DELETE FROM push_subscriptions WHERE id = $1", subscription_id)
