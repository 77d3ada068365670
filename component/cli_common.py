"""What every verb of the ``orgchat`` command shares (:mod:`component.cli` and the
features' ``cli`` modules).

A verb parses its arguments first (a bad one is a one-line error, exit 2,
nothing touched) and returns a :data:`Handler`, which the command runs with
the PostgreSQL stores.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeAlias

from component.config import Config
from storage import postgres
from storage.errors import NotFound
from storage.models import Company

#: Runs a parsed verb against PostgreSQL; returns the exit status.
Handler = Callable[[postgres.PostgresStores], Awaitable[int]]
#: A verb: its arguments and the configuration -> what to run (raises InputError).
Verb = Callable[[argparse.Namespace, Config], Handler]
#: The ``orgchat`` command's subparsers, which the features add their verbs to.
Subparsers: TypeAlias = "argparse._SubParsersAction[Any]"


@dataclasses.dataclass(frozen=True, slots=True)
class CliVerbs:
    """A feature's verbs of the ``orgchat`` command (its ``cli`` module's ``CLI``)."""

    #: Adds the verbs' parsers: ``add_parsers(sub, parser_class)``.
    add_parsers: Callable[[Subparsers, type[argparse.ArgumentParser]], None]
    #: ``"verb"`` or ``"verb action"`` -> the verb.
    verbs: Mapping[str, Verb]


async def known_company(pg: postgres.PostgresStores, slug: str) -> Company:
    """The company, or NotFound with a one-line message."""
    company = await pg.directory.get_company(slug)
    if company is None:
        raise NotFound(f"unknown company {slug!r}")
    return company
