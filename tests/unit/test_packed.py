"""Packing columns as text (storage/postgres/packed.py): what PostgreSQL's
string_to_array(packed, U+001F, U+0002) and the [2:] slice read back (the
same as the server's, tests/integration/storage/test_pg_packed.py) is always
what was packed, and a value that would split is refused."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage.postgres import packed


def unpacked(text: str) -> list[str | None]:
    """string_to_array(text, SEPARATOR, NULL)[2:], in Python."""
    if not text:
        return []
    return [None if field == packed.NULL else field for field in text.split(packed.SEPARATOR)][1:]


_VALUE = st.none() | st.text(st.characters(exclude_characters=[packed.SEPARATOR, packed.NULL]))


@given(st.lists(_VALUE))
def test_what_is_packed_reads_back_whole(values: list[str | None]) -> None:
    assert unpacked(packed.texts(values)) == values


@pytest.mark.parametrize("bad", ["a\x1fb", "\x02", "x\x02", "\x1f"])
def test_a_value_with_a_separator_or_the_null_mark_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="control character"):
        packed.texts(["fine", bad, None])


def test_numbers_and_flags() -> None:
    assert unpacked(packed.numbers([1, -20, 300])) == ["1", "-20", "300"]
    assert unpacked(packed.flags([True, False])) == ["t", "f"]
    assert packed.numbers([]) == packed.flags([]) == packed.texts([]) == ""


def test_micros_counts_from_the_epoch_and_refuses_a_naive_moment() -> None:
    assert packed.micros(dt.datetime(1970, 1, 1, 0, 0, 1, 5, tzinfo=dt.UTC)) == 1_000_005
    with pytest.raises(TypeError):
        packed.micros(dt.datetime(2026, 1, 1))  # naive on purpose
