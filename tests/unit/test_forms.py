"""XEP-0004 forms as real clients need them: every option has a value and a
label; and what :meth:`Form.xml` and :meth:`ResultForm.xml` write is exactly
what the element tree of the form serialises to (the reference below)."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

import pytest

from extensions.forms import NS_DATA, Column, Field, Form, FormType, Option, ResultForm, Table
from extensions.xml import to_xml


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


# -- writing: xml() is what the element tree of XEP-0004 serialises to -------------------

#: Text that escaping must keep: markup characters, quotes, carriage returns,
#: line feeds and tabs (which an attribute keeps only escaped), Cyrillic.
ODD = "A & B <\"shop\"> 'x'\r\nШина\tКолесо"  # noqa: RUF001


def _field_tree(fld: Field, *, reported: bool = False) -> ET.Element:
    """The reference: a field as an element tree, as XEP-0004 §3.2 writes it."""
    el = ET.Element(f"{{{NS_DATA}}}field")
    if fld.var:
        el.set("var", fld.var)
    if fld.type is not None:
        el.set("type", fld.type)
    if fld.label is not None:
        el.set("label", fld.label)
    if reported:
        return el
    if fld.desc:
        ET.SubElement(el, f"{{{NS_DATA}}}desc").text = fld.desc
    if fld.required:
        ET.SubElement(el, f"{{{NS_DATA}}}required")
    for value in fld.values:
        ET.SubElement(el, f"{{{NS_DATA}}}value").text = value
    for option in fld.options:
        opt = ET.SubElement(el, f"{{{NS_DATA}}}option", label=option.label or option.value)
        ET.SubElement(opt, f"{{{NS_DATA}}}value").text = option.value
    return el


def form_tree(form: Form | ResultForm, form_type: str = "result") -> ET.Element:
    """The reference: a form as an element tree (XEP-0004 §3.1, §3.4 for a table)."""
    x = ET.Element(f"{{{NS_DATA}}}x", type=form_type)
    if form.title:
        ET.SubElement(x, f"{{{NS_DATA}}}title").text = form.title
    for line in (form.instructions or "").splitlines():
        if line.strip():
            ET.SubElement(x, f"{{{NS_DATA}}}instructions").text = line
    if isinstance(form, Form) and form.form_type is not None:
        x.append(_field_tree(Field("FORM_TYPE", (form.form_type,), type="hidden")))
    for fld in form.fields:
        x.append(_field_tree(fld))
    table = form.table if isinstance(form, ResultForm) else None
    if table is not None:
        reported = ET.SubElement(x, f"{{{NS_DATA}}}reported")
        for col in table.columns:
            reported.append(
                _field_tree(Field(col.var, type=col.type, label=col.label), reported=True)
            )
        for row in table.rows:
            item = ET.SubElement(x, f"{{{NS_DATA}}}item")
            for col in table.columns:
                cell = ET.SubElement(item, f"{{{NS_DATA}}}field", var=col.var)
                value = row.get(col.var, ())
                for v in (value,) if isinstance(value, str) else value:
                    ET.SubElement(cell, f"{{{NS_DATA}}}value").text = v
    return x


FULL_FORM = Form(
    title=f"Title {ODD}",
    instructions=f"First line {ODD}\n\n   \nLast line",
    form_type="urn:orgchat:test:0",
    fields=[
        Field.text_single("name", f"Name {ODD}", required=True, default="", desc=ODD),
        Field.text_multi("question", "Question", default="one\ntwo & <three>"),
        Field.list_single("city", "City", [Option("*", f"Any {ODD}"), ODD, "Томск"], default="*"),
        Field.list_multi("tags", None, ["a", "b"], default=["a", "b"]),
        Field.jid_multi("agents", "Agents", default=["a@localhost", "b@localhost"]),
        Field.boolean("urgent", "Urgent", default=False),
        Field.hidden("stage", ["x", ""]),
        Field.fixed(f"Fixed {ODD}".replace("\r\n", " ")),
        Field(var="raw", values=("",)),
    ],
)


@pytest.mark.parametrize("form_type", ["form", "submit", "result"])
def test_a_form_is_written_as_its_element_tree_serialises(form_type: FormType) -> None:
    extra = [Field.hidden("session", "s&1")]
    tree = form_tree(dataclasses.replace(FULL_FORM, fields=[*FULL_FORM.fields, *extra]), form_type)
    text = FULL_FORM.xml(form_type, extra)
    assert text == to_xml(tree)  # byte for byte
    element = FULL_FORM.element(form_type, extra)  # the same text, parsed
    assert ET.canonicalize(to_xml(element)) == ET.canonicalize(text)
    assert element.findtext(f"{{{NS_DATA}}}title") == FULL_FORM.title  # \r survives
    assert to_xml(Form([]).element()) == Form([]).xml() == '<x xmlns="jabber:x:data" type="form"/>'


def test_a_result_is_written_as_its_element_tree_serialises() -> None:
    table = Table(
        [Column("jid", f"Address {ODD}", "jid-single"), Column("v", "Values"), Column("e", "E")],
        [
            {"jid": "a@biz.localhost", "v": ODD, "e": ""},
            {"jid": "b@biz.localhost", "v": (ODD, "Омск")},
            {"jid": "c@biz.localhost", "v": ()},
        ],
    )
    for result in (
        ResultForm(title=ODD, instructions="Two\nlines", table=table),
        ResultForm(fields=FULL_FORM.fields),
        ResultForm(),
    ):
        assert result.xml() == to_xml(form_tree(result))
        assert ET.canonicalize(to_xml(result.element())) == ET.canonicalize(result.xml())
