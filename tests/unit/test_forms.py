"""XEP-0004 forms as real clients need them: every option has a value and a label."""

from __future__ import annotations

import pytest

from extensions.forms import NS_DATA, Field, Form, Option


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
