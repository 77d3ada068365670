"""XEP-0004 forms as real clients need them: every option has a value and a label."""

from __future__ import annotations

import pytest

from extensions.forms import NS_DATA, Column, Field, Form, Option, ResultForm, Table


def test_an_option_with_an_empty_value_is_refused() -> None:
    """Profanity crashes on <option><value/></option>: "any" is a value too."""
    with pytest.raises(ValueError, match="non-empty value"):
        Field.list_single("city", "City", [Option("", "Any"), "Tomsk"])


def test_every_option_is_labelled() -> None:
    """Poezio shows an option without a label blank: its value is its label."""
    form = Form(
        fields=[Field.list_single("city", "City", [Option("*", "Any city"), "Tomsk"])]
    ).element()
    options = form.findall(f"{{{NS_DATA}}}field/{{{NS_DATA}}}option")
    assert [(o.get("label"), o.findtext(f"{{{NS_DATA}}}value")) for o in options] == [
        ("Any city", "*"),
        ("Tomsk", "Tomsk"),
    ]


def test_a_result_reads_as_text_too() -> None:
    """What Profanity and Poezio show of a result: its note, so the summary."""
    table = Table(
        [Column("jid", "Address", "jid-single"), Column("status", "Status")],
        [{"jid": f"c{n}@biz.localhost", "status": ("sent", "seen")} for n in range(25)],
    )
    lines = ResultForm(table=table).summary(max_lines=3).split("\n")
    assert lines == [
        "Address: c0@biz.localhost; Status: sent, seen",
        "Address: c1@biz.localhost; Status: sent, seen",
        "Address: c2@biz.localhost; Status: sent, seen",
        "… and 22 more",
    ]
    fields = ResultForm(
        fields=[Field.hidden("stage", "x"), Field.text_single("a", "A", default="1")]
    )
    assert fields.summary() == "A: 1"
