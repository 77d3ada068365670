"""ContactStore on PostgreSQL: reaching people off XMPP.

Composed from :mod:`.tables.contacts` and :mod:`.tables.push_subscriptions`.

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
"""

from __future__ import annotations

from storage.models import Channel, Contact, PushSubscription
from storage.postgres.pool import Database
from storage.postgres.tables import contacts, push_subscriptions


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
            row = await contacts.get(conn, address, self._company_domain)
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
            lang=row["lang"],
        )

    async def request_email(
        self, address: str, email: str, code_hash: str, lang: str | None = None
    ) -> None:
        async with self._db.acquire() as conn:
            await contacts.request_email(conn, address, email, code_hash, lang)

    async def confirm_email(self, address: str, code_hash: str) -> str | None:
        """The confirmed address replaces the earlier one; opt-outs are left as they are."""
        async with self._db.acquire() as conn:
            return await contacts.confirm_email(conn, address, code_hash)

    async def set_opt_out(self, address: str, channel: Channel, opted_out: bool) -> None:
        async with self._db.acquire() as conn:
            await contacts.set_opt_out(conn, address, channel, opted_out)

    async def set_quiet_hours(
        self, address: str, quiet_hours: str | None, timezone: str | None
    ) -> None:
        async with self._db.acquire() as conn:
            await contacts.set_quiet_hours(conn, address, quiet_hours, timezone)

    async def add_push(self, address: str, endpoint: str, p256dh: str, auth: str) -> int:
        """Upsert by endpoint: a known endpoint moves to ``address`` with the new keys."""
        async with self._db.acquire() as conn:
            return await push_subscriptions.upsert(conn, address, endpoint, p256dh, auth)

    async def push_subscriptions(self, address: str) -> list[PushSubscription]:
        """Oldest first."""
        async with self._db.acquire() as conn:
            return await push_subscriptions.of_address(conn, address)

    async def remove_push(self, subscription_id: int) -> None:
        """Removing an unknown id does nothing."""
        async with self._db.acquire() as conn:
            await push_subscriptions.delete(conn, subscription_id)
