"""The company card's optional fields from operators: phone, web site, street address."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from component.cli import EXIT_USAGE, build_parser, main
from component.cli_common import InputError
from component.features.directory.input import company_draft
from tests.unit.test_inputs import load_import


def test_card_fields_are_optional() -> None:
    draft = company_draft("pizza", "Pizza")
    assert (draft.phone, draft.url, draft.address) == (None, None, None)
    blank = company_draft("pizza", "Pizza", phone=" ", url="", address="  ")
    assert (blank.phone, blank.url, blank.address) == (None, None, None)


def test_card_fields_are_kept_as_written() -> None:
    draft = company_draft(
        "pizza",
        "Pizza",
        phone=" +7 383 555-01-00 ",
        url="https://pizza.example/menu?lang=en",
        address="  Krasny   prospekt 25\n",
    )
    assert draft.phone == "+7 383 555-01-00"
    assert draft.url == "https://pizza.example/menu?lang=en"
    assert draft.address == "Krasny prospekt 25"  # one line, single spaces
    assert company_draft("p", "P", phone="(383) 555.01.00").phone == "(383) 555.01.00"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("phone", "call us", "invalid phone number"),
        ("phone", "+7 383 555 01 00 ext. 5", "invalid phone number"),
        ("phone", "12", "invalid phone number"),
        ("phone", "++7 383", "invalid phone number"),
        ("phone", "1" * 33, "invalid phone number"),
        ("url", "pizza.example", "invalid web site"),
        ("url", "ftp://pizza.example/", "invalid web site"),
        ("url", "https://", "invalid web site"),
        ("url", "https://pizza.example/a b", "invalid web site"),
        ("url", "https://[::1", "invalid web site"),
        ("address", "x" * 201, "longer than 200"),
        # Characters XML cannot carry: the component writes these fields into stanzas.
        ("address", "Lenina\x08 1", "holds a control character"),
        ("category", "tyres\x1b", "holds a control character"),
        ("city", "Novosibirsk\x00", "holds a control character"),
        ("email", "shop\x01@pizza.example", "invalid email address"),
        ("url", "https://pizza.example/\x01", "invalid web site"),
        ("hours_spec", 'Mo-Fr 10:00-18:00 "ring\x07"', "holds a control character"),
    ],
)
def test_bad_card_fields(field: str, value: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        company_draft("pizza", "Pizza", **{field: value})  # type: ignore[arg-type]


def test_a_name_xml_cannot_carry_is_refused_on_its_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="holds a control character"):
        company_draft("pizza", "Piz\x1fza")  # a trailing one is white space, trimmed
    path = tmp_path / "c.csv"
    path.write_text("slug,name\npizza,Pizza\nbikes,Bikes\x02\n")
    with pytest.raises(InputError, match=r"c.csv:3: name: holds a control character"):
        load_import(path, "localhost")


def test_import_files_carry_the_card(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(
        json.dumps(
            [
                {
                    "slug": "pizza",
                    "name": "Pizza",
                    "phone": "+7 383 555-01-00",
                    "url": "https://pizza.example/",
                    "address": "Krasny prospekt 25",
                },
                {"slug": "bikes", "name": "Bikes"},
            ]
        )
    )
    pizza, bikes = (item.company for item in load_import(path, "localhost"))
    assert (pizza.phone, pizza.url, pizza.address) == (
        "+7 383 555-01-00",
        "https://pizza.example/",
        "Krasny prospekt 25",
    )
    assert (bikes.phone, bikes.url, bikes.address) == (None, None, None)

    csv_path = tmp_path / "c.csv"
    csv_path.write_text('slug,name,phone,url,address\npizza,Pizza,+7 383,,"Lenina 1, office 2"\n')
    [item] = load_import(csv_path, "localhost")
    assert (item.company.phone, item.company.url, item.company.address) == (
        "+7 383",
        None,
        "Lenina 1, office 2",
    )

    path.write_text(json.dumps([{"slug": "pizza", "name": "Pizza", "url": "pizza"}]))
    with pytest.raises(InputError, match="company #1: url: invalid web site"):
        load_import(path, "localhost")
    path.write_text(json.dumps([{"slug": "pizza", "name": "Pizza", "phone": 3835550100}]))
    with pytest.raises(InputError, match="phone: must be a string"):
        load_import(path, "localhost")


def test_cli_options() -> None:
    args = build_parser().parse_args(
        [
            "company",
            "add",
            "pizza",
            "--name",
            "Pizza",
            "--phone",
            "+7 383 555-01-00",
            "--url",
            "https://pizza.example/",
            "--address",
            "Krasny prospekt 25",
        ]
    )
    assert (args.phone, args.url, args.address) == (
        "+7 383 555-01-00",
        "https://pizza.example/",
        "Krasny prospekt 25",
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["canned", "add", "pizza", "Hi\x07", "Hello"],
        ["canned", "add", "pizza", "Hi", "Hello\x01 there"],
        [
            "desk",
            "note",
            "pizza+abcdefgh23@biz.localhost",
            "see\x00 above",
            "--agent",
            "mario@localhost",
        ],
    ],
    ids=["canned-title", "canned-text", "desk-note"],
)
def test_operator_texts_xml_cannot_carry_are_refused(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Refused before any database is asked (none is reachable at this address).
    config = ["--config", "/dev/null"]
    assert main([*config, *argv]) == EXIT_USAGE
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("orgchat: error: ") and "holds a control character" in line
