"""A column of many rows as one text parameter: how a batch's rows travel.

The batch statement (:mod:`storage.postgres.batch`) inserts its messages,
their copies in users' own archives and the cascade's marks and steps (a
few rows per message) from one parameter per column. As arrays, asyncpg
encoded each element on its own and first asked ``collections.abc``
whether it was a nested array: for the 18 columns of messages and copies
that was 12 µs of the component's CPU per message, more than a tenth of
its whole share (docs/performance.md, "Columns packed as text").
Packed, a column is one string, its values each preceded by the unit
separator (U+001F), NULL written as U+0002: one ``str.join`` in the
component, and PostgreSQL splits it again with ``string_to_array`` (SQL of
:func:`column`; the first, empty field is dropped, so that an empty list and
a list of one empty string differ).

Neither character can be in a value that came in XML: XML 1.0 allows no
control character but tab, line feed and carriage return. A value that
holds one anyway (from another source) raises ValueError instead of being
split in two; the batch then archives its messages one by one, and refuses
only that one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import cast

SEPARATOR = "\x1f"
NULL = "\x02"

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)
_FLAGS = {True: "t", False: "f"}


def column(parameter: str, pgtype: str) -> str:
    """SQL: the values packed in ``parameter`` (``$3``), as an array of ``pgtype``."""
    return rf"(string_to_array({parameter}, E'\x1f', E'\x02'))[2:]::{pgtype}[]"


def columns(first: int, pgtypes: Sequence[str]) -> str:
    """SQL: :func:`column` for parameters ``$first`` on, one per type, comma-separated
    (the arguments of an ``unnest``)."""
    return ", ".join(column(f"${first + i}", pgtype) for i, pgtype in enumerate(pgtypes))


def moment(micros: str) -> str:
    """SQL: the timestamptz ``micros`` microseconds after the epoch (exact)."""
    return f"(timestamptz 'epoch' + {micros} * interval '1 microsecond')"


def texts(values: Sequence[str | None]) -> str:
    """Strings and NULLs; raises ValueError for a value with a separator or NULL in it."""
    if not values:
        return ""
    nulls = values.count(None)
    strings = (
        [NULL if value is None else value for value in values]
        if nulls
        else cast("Sequence[str]", values)
    )
    packed = SEPARATOR + SEPARATOR.join(strings)
    if packed.count(SEPARATOR) != len(values) or packed.count(NULL) != nulls:
        raise ValueError("a value holds a control character that XML does not allow")
    return packed


def numbers(values: Sequence[float]) -> str:
    """Integers and floats (bigint, float8: ``str`` of a float reads back exactly)."""
    return SEPARATOR + SEPARATOR.join(map(str, values)) if values else ""


def flags(values: Sequence[bool]) -> str:
    """Booleans."""
    return SEPARATOR + SEPARATOR.join(map(_FLAGS.__getitem__, values)) if values else ""


def micros(moment: dt.datetime) -> int:
    """Microseconds since the epoch of an aware datetime, for :func:`numbers`
    (read back by the SQL of :func:`moment`); TypeError for a naive one."""
    return (moment - _EPOCH) // _MICROSECOND
