"""Import files read row by row: line-accurate errors, all or nothing, --skip-bad."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from component.cli_common import InputError
from component.features.directory import input as inputs
from component.features.directory.input import MAX_LISTED, BadRow, BadRows, read_import
from storage.models import ImportedCompany, Role


def rows(path: Path) -> list[ImportedCompany | BadRow]:
    return list(read_import(path, "localhost"))


def errors(path: Path) -> list[str]:
    return [str(row) for row in rows(path) if isinstance(row, BadRow)]


def slugs(path: Path) -> list[str]:
    return [row.company.slug for row in rows(path) if isinstance(row, ImportedCompany)]


def test_csv_rows_are_named_by_the_line_they_start_on(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(
        "slug,name,address,agents\n"
        'pizza,Pizza,"Lenina 1,\nsecond floor",mario@localhost\n'  # a field over two lines
        "\n"
        "bad slug,Bad,,\n"
        "shop,Shop,,x@y:boss\n"
        "tyres,Tyres,,\n"
        "pizza,Pizza again,,\n"
        "late,Late\n"
    )
    assert errors(path) == [
        f"{path}:5: slug: invalid slug 'bad slug': use 1-64 characters a-z, 0-9 and '-', "
        "not starting or ending with '-'",
        f"{path}:6: agents: agent role must be 'agent' or 'admin', not 'boss'",
        f"{path}:8: slug: duplicate slug 'pizza' (also on line 2)",
        f"{path}:9: 2 fields where the header has 4",
    ]
    assert slugs(path) == ["pizza", "tyres"]
    [pizza, _] = [row for row in rows(path) if isinstance(row, ImportedCompany)]
    assert pizza.company.address == "Lenina 1, second floor"
    assert pizza.agents == (("mario@localhost", Role.AGENT),)


def test_pretty_json_rows_are_named_by_line_and_place(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    companies = [
        {"slug": "pizza", "name": "Pizza"},
        {"slug": "shop", "name": "Shop", "timezone": "Mars/Olympus"},
        {"slug": "pizza", "name": "Again"},
        ["not", "an", "object"],
        {"slug": "bikes", "name": "Bikes", "agents": ["anna@elsewhere"]},
    ]
    path.write_text(json.dumps({"version": 2, "companies": companies, "more": {}}, indent=2))
    assert errors(path) == [
        f"{path}:8: company #2: timezone: unknown time zone 'Mars/Olympus' "
        "(use an IANA name such as Europe/Berlin)",
        f"{path}:13: company #3: slug: duplicate slug 'pizza' (also company #1)",
        f"{path}:17: company #4: expected an object (a company)",
        f"{path}:22: company #5: agents: anna@elsewhere is not an account of localhost: "
        "agents log in to localhost",
    ]


def test_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(
        '{"slug": "pizza", "name": "Pizza", "accepts_requests": false}\n'
        "\n"
        '{"slug": "shop", "name": \n'
        '{"slug": "tyres", "name": "Tyres", "colour": "black"}\n'
        '{"slug": "bikes", "name": "Bikes", "agents": [{"jid": "b@localhost", "role": "admin"}]}\n'
    )
    assert errors(path) == [
        f"{path}:3: invalid JSON: Expecting value",
        f"{path}:4: colour: unknown field",
    ]
    pizza, bikes = (row for row in rows(path) if isinstance(row, ImportedCompany))
    assert pizza.company.accepts_requests is False
    assert bikes.agents == (("b@localhost", Role.ADMIN),)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_json_is_read_the_same_in_chunks_of_any_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    path = tmp_path / "c.json"
    path.write_text(
        '[{"slug": "a", "name": "A", "agents": ["x@localhost"]},\n'
        "  12345,\n"  # a number the chunks cut: still one value, not an object
        ' {"slug": "b", "name": "Бетта \\u00e9"} ]\n'
    )
    whole = rows(path)
    monkeypatch.setattr(inputs, "_CHUNK_CHARS", chunk)
    assert rows(path) == whole
    assert errors(path) == [f"{path}:2: company #2: expected an object (a company)"]
    assert slugs(path) == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('[{"slug": "a", "name": "A"},\n{"slug": "b"', 2, "invalid JSON: Expecting ',' delimiter"),
        ('[{"slug": "a", "name": "A"}\n{"slug": "b"}]', 2, "invalid JSON: expected ',' or ']'"),
        ('[{"slug": "a", "name": "A"}] []', 1, "invalid JSON: extra data after the companies"),
        ('{"companies": {"slug": "a"}}', 1, 'expected a list of companies (or {"companies"'),
        ('{"company": []}', None, 'expected a list of companies (or {"companies"'),
        ("", 1, 'expected a list of companies (or {"companies"'),
    ],
)
def test_malformed_json_stops_the_reading(
    tmp_path: Path, text: str, line: int | None, message: str
) -> None:
    path = tmp_path / "c.json"
    path.write_text(text)
    *_, last = rows(path)
    assert isinstance(last, BadRow) and last.fatal
    assert (last.line, last.message[: len(message)]) == (line, message)


def test_a_file_that_is_not_utf8_stops_the_reading(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    good = "".join(f"c{n},Company {n}\n" for n in range(10_000))
    path.write_bytes(f"slug,name\n{good}".encode() + b"shop,Sh\xffp\n")
    *_, last = rows(path)
    assert isinstance(last, BadRow) and last.fatal and "not UTF-8 text" in str(last)
    path.write_bytes(b"slug,name\nshop,Sh\xffp\n")  # decoded with the header
    with pytest.raises(InputError, match="not UTF-8 text"):
        read_import(path, "localhost")


def test_a_byte_order_mark_is_not_part_of_the_header(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes("slug,name\npizza,Pizza\n".encode("utf-8-sig"))
    assert slugs(path) == ["pizza"]


def test_what_is_known_before_the_first_row_is_refused_at_once(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        read_import(tmp_path / "missing.csv", "localhost")
    path = tmp_path / "c.csv"
    path.write_text("slug,colour\n")
    with pytest.raises(InputError, match="the header must name at least 'slug' and 'name'"):
        read_import(path, "localhost")


def write_bad(path: Path, good: int, bad: int) -> None:
    lines = ["slug,name"] + [f"c{n},Company {n}" for n in range(good)]
    lines += [f"Bad{n},Bad" for n in range(bad)]
    path.write_text("\n".join(lines) + "\n")


def test_a_bad_row_passes_nothing_on_and_fails_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("slug,name\na,A\nBad,B\nc,C\n")
    bad = BadRows(skip=False)
    passed: list[str] = []
    with pytest.raises(InputError) as info:
        passed.extend(row.company.slug for row in bad.good(read_import(path, "localhost")))
    assert passed == ["a"]  # what came before: the store's transaction rolls it back
    assert str(info.value) == f"{path}:3: slug: invalid slug 'Bad': " + (
        "use 1-64 characters a-z, 0-9 and '-', not starting or ending with '-'"
    )


def test_many_bad_rows_are_listed_up_to_a_limit_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    write_bad(path, good=3, bad=MAX_LISTED + 7)
    with pytest.raises(InputError) as info:
        list(BadRows(skip=False).good(read_import(path, "localhost")))
    lines = str(info.value).splitlines()
    assert len(lines) == MAX_LISTED + 1
    assert lines[0].startswith(f"{path}:5: slug: invalid slug 'Bad0'")
    assert lines[-1] == (
        f"{path}: {MAX_LISTED + 7} bad rows (the first {MAX_LISTED} above), "
        "nothing imported (--skip-bad imports the rest)"
    )


def test_skipping_passes_the_good_rows_on_and_lists_every_bad_one(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    write_bad(path, good=3, bad=MAX_LISTED + 7)
    bad = BadRows(skip=True)
    assert [row.company.slug for row in bad.good(read_import(path, "localhost"))] == [
        "c0",
        "c1",
        "c2",
    ]
    assert (bad.passed, bad.count, len(bad.listed)) == (3, MAX_LISTED + 7, MAX_LISTED + 7)


def test_skipping_does_not_skip_an_unreadable_rest(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('[{"slug": "a", "name": "A"}, {"slug": "B", "name": "B"}, {"slug": ')
    with pytest.raises(InputError) as info:
        list(BadRows(skip=True).good(read_import(path, "localhost")))
    assert str(info.value).splitlines() == [
        f"{path}:1: company #2: slug: invalid slug 'B': use 1-64 characters a-z, 0-9 and '-', "
        "not starting or ending with '-'",
        f"{path}:1: invalid JSON: Expecting value",
        f"{path}: nothing imported: the rest of the file cannot be read",
    ]
