"""Storage errors: what callers may catch, whatever the backend."""

from __future__ import annotations


class StorageError(Exception):
    """Base class of every storage error."""


class Unavailable(StorageError):
    """The backend (PostgreSQL or Redis) cannot be reached or timed out.

    Routing answers the sender with an error of type ``wait``; nothing that
    was not committed is acknowledged.
    """


class NotFound(StorageError):
    """The company, agent or conversation does not exist."""


class Conflict(StorageError):
    """The row already exists (duplicate slug, agent already added)."""
