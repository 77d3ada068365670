"""What every verb of the ``orgchat`` command shares (:mod:`component.cli` and the
features' ``cli`` modules).

A verb checks its arguments first (a bad one raises :class:`InputError`: a
one-line error, exit 2, nothing touched) and returns a :data:`Run`, which the
command runs with the PostgreSQL stores. A verb that reads a file as it
writes (``orgchat import``) raises InputError from its Run, before it commits.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeAlias

from component.addressing import agent_jid, is_slug, normalize_bare_jid, parse_conversation
from component.config import Config
from extensions.xml import fits_xml
from storage import postgres
from storage import redis as redis_store
from storage.errors import NotFound
from storage.models import Company

#: Runs a checked verb against PostgreSQL; returns the exit status.
Run = Callable[[postgres.PostgresStores], Awaitable[int]]
#: A verb: its arguments and the configuration -> what to run (raises InputError).
Verb = Callable[[argparse.Namespace, Config], Run]
#: The ``orgchat`` command's subparsers, which the features add their verbs to.
Subparsers: TypeAlias = "argparse._SubParsersAction[Any]"


@dataclasses.dataclass(frozen=True, slots=True)
class CliVerbs:
    """A feature's verbs of the ``orgchat`` command (its ``cli`` module's ``CLI``)."""

    #: Adds the verbs' parsers: ``add_parsers(sub, parser_class)``.
    add_parsers: Callable[[Subparsers, type[argparse.ArgumentParser]], None]
    #: ``"verb"`` or ``"verb action"`` -> the verb.
    verbs: Mapping[str, Verb]


class InputError(ValueError):
    """Operator input that cannot be accepted; the message is one line per problem."""


class FieldError(InputError):
    """Input refused because of one field (as import files name it: ``slug``, ``email``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_slug(slug: str) -> str:
    """A company's slug as typed."""
    if not is_slug(slug):
        raise FieldError(
            "slug",
            f"invalid slug {slug!r}: use 1-64 characters a-z, 0-9 and '-', "
            "not starting or ending with '-'",
        )
    return slug


def check_text(field: str, text: str | None) -> str | None:
    """A free-text field as typed, trimmed; blank: none. Refused if it holds a
    character XML cannot carry (a control character): the component writes
    such fields into stanzas, where one would make ejabberd close its stream."""
    text = (text or "").strip()
    if not fits_xml(text):
        raise FieldError(field, "holds a control character")
    return text or None


def bare_jid(value: str) -> str:
    """A person's bare JID (an agent's, a customer's) as typed, normalised."""
    try:
        return normalize_bare_jid(value)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def agent_argument(value: str, config: Config) -> str:
    """An agent's bare JID as typed: an account of ``ejabberd.vhost``."""
    try:
        return agent_jid(value, config.ejabberd.vhost)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def conversation_argument(value: str, domain: str) -> tuple[str, str]:
    """(slug, token) of a conversation address as typed (``slug+token@domain``)."""
    parts = parse_conversation(value, domain)
    if parts is None:
        raise InputError(
            f"invalid conversation {value!r}: not a conversation address (slug+token@{domain})"
        )
    return parts


async def known_company(pg: postgres.PostgresStores, slug: str) -> Company:
    """The company, or NotFound with a one-line message."""
    company = await pg.directory.get_company(slug)
    if company is None:
        raise NotFound(f"unknown company {slug!r}")
    return company


@contextlib.asynccontextmanager
async def redis_stores(config: Config) -> AsyncIterator[redis_store.RedisStores]:
    """The component's Redis stores (its key prefix), for one verb."""
    rd = await redis_store.connect(
        config.redis.url,
        prefix=f"{config.redis.prefix}:{config.component.domain}",
        timeout=config.redis.timeout,
    )
    try:
        yield rd
    finally:
        await rd.close()
