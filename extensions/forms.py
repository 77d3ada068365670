"""XEP-0004 data forms: the one codec for every form orgchat writes or reads.

Ad-hoc commands, the directory search, the request payloads (a customer's
fields, a company's offer) and the company information of service discovery
all build and read their forms here.

Building: :class:`Form` and :class:`ResultForm` render as XML text with
``xml()``, the one writer of a form: what is written as a string (the
directory search's answers, the request payloads, stored forms) takes it as
it is. ``element()`` is that text parsed, for the stanzas still built as
element trees (commands, disco#info, the requests' views), so the two cannot
differ; the parse costs about twice the writing (some 15 µs for a form of
five fields).

* :class:`Form` (``type="form"``): a title, instructions and :class:`Field`\\ s,
  made with one constructor per field type::

      Form(
          title="Ask several companies",
          instructions="Choose the companies, then write your question.",
          fields=[
              Field.list_multi("companies", "Companies", options, required=True),
              Field.text_multi("question", "Question", required=True,
                               desc="Sent to every company you chose"),
              Field.boolean("urgent", "Urgent", default=False),
              Field.hidden("request", "42"),
          ],
      )

* :class:`ResultForm` (``type="result"``): key-value fields and/or one table,
  rendered as ``<reported/>`` and ``<item/>`` elements (XEP-0004 §3.4)::

      ResultForm(
          title="My requests",
          table=Table(
              columns=[Column("company", "Company"), Column("state", "State")],
              rows=[{"company": "Pizza Napoli", "state": "answered"}],
          ),
      )

* A form with a XEP-0068 ``FORM_TYPE`` (``Form(fields, form_type=...)``),
  written first as a hidden field; ``to_xml``/``from_xml`` store one as a
  string.

Reading:

* :func:`read_form`: a payload's form, strictly (a ``FORM_TYPE``, a var on
  every field, bounded counts and lengths), as a :class:`Form`.
* :class:`~extensions.submitted_form.SubmittedForm`: what a client submits
  to a command, with typed getters (``text``, ``multiline``, ``choice``,
  ``choices``, ``jid``, ``jids``, ``boolean``, ``integer``).

Either raises :class:`~extensions.xml.PayloadError` (``bad-request``, with a
text naming the field; the XEP-0050 responder adds ``<bad-payload/>``).
Submitted values are never trusted: options are checked against what the
command offers *now*, hidden fields come back however the client likes.

Mistakes of the command author (a list field without options, two values in a
single-valued field, a newline in a fixed field) raise ValueError when the
form is built, not when a client reads it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal, cast, get_args
from xml.etree.ElementTree import Element, ParseError, fromstring

from slixmpp.jid import JID

from extensions.xml import PayloadError, describe, escape_attr, escape_text, leaf_text, show

NS_DATA = "jabber:x:data"
FORM_TYPE = "FORM_TYPE"

FieldType = Literal[
    "boolean",
    "fixed",
    "hidden",
    "jid-multi",
    "jid-single",
    "list-multi",
    "list-single",
    "text-multi",
    "text-private",
    "text-single",
]
FormType = Literal["form", "submit", "result"]
FIELD_TYPES: frozenset[str] = frozenset(get_args(FieldType))
MULTI_VALUED: frozenset[str] = frozenset({"jid-multi", "list-multi", "text-multi"})

SINGLE_VALUED: frozenset[str] = frozenset(
    {"boolean", "fixed", "jid-single", "list-single", "text-single"}
)
LIST_TYPES: frozenset[str] = frozenset({"list-single", "list-multi"})
TRUE_VALUES = frozenset({"1", "true"})
_X = f"{{{NS_DATA}}}x"
_FIELD = f"{{{NS_DATA}}}field"
_VALUE = f"{{{NS_DATA}}}value"
_IGNORED_IN_X = frozenset({f"{{{NS_DATA}}}title", f"{{{NS_DATA}}}instructions"})
_IGNORED_IN_FIELD = frozenset(
    {f"{{{NS_DATA}}}desc", f"{{{NS_DATA}}}required", f"{{{NS_DATA}}}option"}
)
FALSE_VALUES = frozenset({"0", "false"})


# -- building -------------------------------------------------------------------


#: Lines of a result's text summary (:meth:`ResultForm.summary`).
SUMMARY_LINES = 20


@dataclasses.dataclass(frozen=True, slots=True)
class Option:
    """One choice of a list field: the value submitted and the label shown."""

    value: str
    label: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Field:
    """One ``<field/>``.

    Build the fields of a form with :meth:`of` or its shorthands
    (``Field.text_single(...)``), which check what a form author can get
    wrong; :func:`read_form` builds them from what a client sent (``type``
    None: the client gave none).
    """

    var: str | None
    values: tuple[str, ...] = ()
    label: str | None = None
    type: FieldType | None = None
    desc: str | None = None
    required: bool = False
    options: tuple[Option, ...] = ()

    @classmethod
    def of(
        cls,
        type: FieldType,
        var: str | None,
        label: str | None = None,
        desc: str | None = None,
        required: bool = False,
        values: tuple[str, ...] = (),
        options: tuple[Option, ...] = (),
    ) -> Field:
        """A field as a form's author writes it, checked (ValueError: the author's
        mistake); the typed constructors below are shorthands for it."""
        if type != "fixed" and not var:
            raise ValueError(f"a {type} field needs a var")
        if options and type not in LIST_TYPES:
            raise ValueError(f"field {var!r}: only list fields have options")
        if type in LIST_TYPES:
            if not options:
                raise ValueError(f"field {var!r}: a list field needs options")
            offered = [o.value for o in options]
            if "" in offered:
                # XEP-0004 §3.3: an option has a value; clients such as
                # Profanity crash on an empty one. "Any"/"none" is a value too.
                raise ValueError(f"field {var!r}: an option needs a non-empty value")
            if len(set(offered)) != len(offered):
                raise ValueError(f"field {var!r}: option values must be unique")
            unknown = [v for v in values if v not in offered]
            if unknown:
                raise ValueError(f"field {var!r}: default {unknown[0]!r} is not an option")
        if type in SINGLE_VALUED and len(values) > 1:
            raise ValueError(f"field {var!r}: a {type} field has one value at most")
        if type in {"fixed", "text-single", "jid-single", "jid-multi"} and any(
            "\n" in v or "\r" in v for v in values
        ):
            raise ValueError(f"field {var!r}: no newlines in a {type} value")
        if type == "boolean" and values and values[0] not in {"true", "false"}:
            raise ValueError(f"field {var!r}: a boolean value is 'true' or 'false'")
        return cls(var, values, label, type, desc, required, options)

    # -- constructors, one per XEP-0004 field type --------------------------------

    @classmethod
    def text_single(
        cls,
        var: str,
        label: str | None = None,
        *,
        required: bool = False,
        default: str | None = None,
        desc: str | None = None,
    ) -> Field:
        return cls.of("text-single", var, label, desc, required, _one(default))

    @classmethod
    def text_multi(
        cls,
        var: str,
        label: str | None = None,
        *,
        required: bool = False,
        default: str | None = None,
        desc: str | None = None,
    ) -> Field:
        # XEP-0004 §3.3: one <value/> per line.
        lines = tuple(default.splitlines()) if default else ()
        return cls.of("text-multi", var, label, desc, required, lines)

    @classmethod
    def list_single(
        cls,
        var: str,
        label: str | None,
        options: Iterable[Option | str],
        *,
        required: bool = False,
        default: str | None = None,
        desc: str | None = None,
    ) -> Field:
        return cls.of("list-single", var, label, desc, required, _one(default), _options(options))

    @classmethod
    def list_multi(
        cls,
        var: str,
        label: str | None,
        options: Iterable[Option | str],
        *,
        required: bool = False,
        default: Iterable[str] = (),
        desc: str | None = None,
    ) -> Field:
        return cls.of("list-multi", var, label, desc, required, tuple(default), _options(options))

    @classmethod
    def jid_single(
        cls,
        var: str,
        label: str | None = None,
        *,
        required: bool = False,
        default: str | JID | None = None,
        desc: str | None = None,
    ) -> Field:
        value = None if default is None else str(default)
        return cls.of("jid-single", var, label, desc, required, _one(value))

    @classmethod
    def jid_multi(
        cls,
        var: str,
        label: str | None = None,
        *,
        required: bool = False,
        default: Iterable[str | JID] = (),
        desc: str | None = None,
    ) -> Field:
        return cls.of("jid-multi", var, label, desc, required, tuple(str(j) for j in default))

    @classmethod
    def boolean(
        cls,
        var: str,
        label: str | None = None,
        *,
        required: bool = False,
        default: bool | None = None,
        desc: str | None = None,
    ) -> Field:
        value = None if default is None else ("true" if default else "false")
        return cls.of("boolean", var, label, desc, required, _one(value))

    @classmethod
    def hidden(cls, var: str, value: str | Sequence[str]) -> Field:
        """Returned by the client as sent (XEP-0004): echo data, re-validate it."""
        values = (value,) if isinstance(value, str) else tuple(value)
        return cls.of("hidden", var, values=values)

    @classmethod
    def fixed(cls, text: str, *, var: str | None = None) -> Field:
        """One line of text shown in the form; use several for several lines."""
        return cls.of("fixed", var, values=(text,))

    def xml(self, *, reported: bool = False) -> str:
        """The ``<field/>`` as XML text; ``reported``: as a column of a table's
        ``<reported/>`` (var, type and label only)."""
        head = _field_head(self.var, self.type, self.label)
        if reported:
            return head + "/>"
        inner = _values(self.values)
        if self.desc or self.required or self.options:
            desc = f"<desc>{escape_text(self.desc)}</desc>" if self.desc else ""
            required = "<required/>" if self.required else ""
            # Every option labelled (its value when it has no label of its own):
            # some clients (Poezio) show an unlabelled option blank.
            options = "".join(
                [
                    f'<option label="{escape_attr(o.label or o.value)}">'
                    f"<value>{escape_text(o.value)}</value></option>"
                    for o in self.options
                ]
            )
            inner = desc + required + inner + options
        return _closed(head, inner, "</field>")


@dataclasses.dataclass(frozen=True, slots=True)
class Form:
    """A data form: to fill in (``type="form"``, a command's stage), or the values
    of one (``submit``, ``result``: a payload's fields, an offer)."""

    fields: Sequence[Field]
    title: str | None = None
    #: Newlines start new ``<instructions/>`` elements (XEP-0004 §3).
    instructions: str | None = None
    #: XEP-0068 FORM_TYPE, written first as a hidden field; None: none.
    form_type: str | None = None

    def __post_init__(self) -> None:
        _check_unique(self.fields)

    def xml(self, type: FormType = "form", extra: Sequence[Field] = ()) -> str:
        """The ``<x/>`` as XML text; ``extra`` fields (the responder's own) come last.

        For an offer (``form_type`` ``urn:orgchat:request:0#offer``), type result::

            <x xmlns="jabber:x:data" type="result">
              <field var="FORM_TYPE" type="hidden">
                <value>urn:orgchat:request:0#offer</value></field>
              <field var="price"><value>320.00</value></field>
              <field var="currency"><value>EUR</value></field>
            </x>
        """
        if extra:
            _check_unique([*self.fields, *extra])  # the fields alone were, when built
        inner = [_heading(self.title, self.instructions)]
        if self.form_type is not None:
            inner.append(Field(FORM_TYPE, (self.form_type,), type="hidden").xml())
        inner.extend(fld.xml() for fld in (*self.fields, *extra))
        return _x(type, "".join(inner))

    def element(self, type: FormType = "form", extra: Sequence[Field] = ()) -> Element:
        """:meth:`xml` as an element, to be placed in a stanza object."""
        return fromstring(self.xml(type, extra))


@dataclasses.dataclass(frozen=True, slots=True)
class Column:
    """One column of a result table (a field of ``<reported/>``)."""

    var: str
    label: str
    type: FieldType = "text-single"


@dataclasses.dataclass(frozen=True, slots=True)
class Table:
    """Rows of a result, each a mapping from column var to one or more values."""

    columns: Sequence[Column]
    rows: Sequence[Mapping[str, str | Sequence[str]]]

    def __post_init__(self) -> None:
        if not self.columns:
            raise ValueError("a table needs at least one column")
        names = {c.var for c in self.columns}
        if len(names) != len(self.columns):
            raise ValueError("column vars must be unique")
        for row in self.rows:
            if not row.keys() <= names:
                unknown = sorted(row.keys() - names)
                raise ValueError(f"row has values for unknown columns: {unknown}")


@dataclasses.dataclass(frozen=True, slots=True)
class ResultForm:
    """The result of a command (``<x type="result"/>``): fields or a table.

    Not both: XEP-0004 §3.4 describes a table result as <reported/> and
    <item/> elements, and clients such as aioxmpp refuse a result that mixes
    them with plain fields. Put what would go beside a table in the command's
    note or the form's title and instructions.
    """

    title: str | None = None
    instructions: str | None = None
    fields: Sequence[Field] = ()
    table: Table | None = None

    def __post_init__(self) -> None:
        if self.fields and self.table is not None:
            raise ValueError("a result form has fields or a table, not both")
        _check_unique(self.fields)

    def summary(
        self,
        max_lines: int = SUMMARY_LINES,
        more: Callable[[int], str] = lambda count: f"… and {count} more",
    ) -> str:
        """The result as a few lines of text, for clients that show a command's
        note but no result form (Profanity, Poezio): a line per row, or per
        field, at most ``max_lines`` and a line saying how many more (``more``
        writes it, in the reader's language)."""
        lines: list[str] = []
        if self.table is not None:
            for row in self.table.rows:
                cells = ((col.label, _joined(row.get(col.var, ()))) for col in self.table.columns)
                lines.append("; ".join(f"{label}: {text}" for label, text in cells if text))
        for fld in self.fields:
            text = _joined(fld.values)
            if fld.type != "hidden" and text:
                lines.append(f"{fld.label or fld.var}: {text}")
        if len(lines) > max_lines:
            lines = [*lines[:max_lines], more(len(lines) - max_lines)]
        return "\n".join(line for line in lines if line)

    def xml(self) -> str:
        """The ``<x type="result"/>`` as XML text: its fields, or its table as
        ``<reported/>`` and one ``<item/>`` per row (XEP-0004 §3.4)."""
        inner = [_heading(self.title, self.instructions)]
        inner.extend(fld.xml() for fld in self.fields)
        if self.table is not None:
            columns = self.table.columns
            inner.append("<reported>")
            inner.extend(
                Field(c.var, type=c.type, label=c.label).xml(reported=True) for c in columns
            )
            inner.append("</reported>")
            # XEP-0004 §3.4: every item has every reported field. The rows are
            # what a search answers 50 of: one f-string per cell.
            cells = [(c.var, _field_head(c.var, None, None)) for c in columns]
            for row in self.table.rows:
                inner.append("<item>")
                for var, head in cells:
                    value = row.get(var, ())
                    if isinstance(value, str):
                        inner.append(f"{head}><value>{escape_text(value)}</value></field>")
                    else:
                        inner.append(_closed(head, _values(value), "</field>"))
                inner.append("</item>")
        return _x("result", "".join(inner))

    def element(self) -> Element:
        """:meth:`xml` as an element, to be placed in a stanza object."""
        return fromstring(self.xml())


def _one(value: str | None) -> tuple[str, ...]:
    return () if value is None else (value,)


def _joined(value: str | Sequence[str]) -> str:
    return value if isinstance(value, str) else ", ".join(value)


def _options(options: Iterable[Option | str]) -> tuple[Option, ...]:
    return tuple(o if isinstance(o, Option) else Option(o) for o in options)


def _check_unique(fields: Sequence[Field]) -> None:
    seen: set[str] = set()
    for fld in fields:
        if fld.var is None:
            continue
        if fld.var in seen:
            raise ValueError(f"two fields with var {fld.var!r}")
        seen.add(fld.var)


def _x(form_type: str, inner: str) -> str:
    return _closed(f'<x xmlns="{NS_DATA}" type="{form_type}"', inner, "</x>")


def _heading(title: str | None, instructions: str | None) -> str:
    """A form's ``<title/>``, then an ``<instructions/>`` per line that is not blank."""
    out = f"<title>{escape_text(title)}</title>" if title else ""
    for line in (instructions or "").splitlines():
        if line.strip():
            out += f"<instructions>{escape_text(line)}</instructions>"
    return out


def _field_head(var: str | None, type: str | None, label: str | None) -> str:
    """``<field`` and its attributes, the tag left open."""
    head = "<field"
    if var:
        head += f' var="{escape_attr(var)}"'
    if type is not None:
        head += f' type="{escape_attr(type)}"'
    if label is not None:
        head += f' label="{escape_attr(label)}"'
    return head


def _values(values: Iterable[str]) -> str:
    return "".join([f"<value>{escape_text(v)}</value>" for v in values])


def _closed(head: str, inner: str, end: str) -> str:
    """An element from its open start tag: ``head/>`` when empty, as
    :func:`extensions.xml.to_xml` writes one."""
    return f"{head}>{inner}{end}" if inner else head + "/>"


def to_xml(form: Form) -> str:
    """The form as an opaque string for storage (``type="result"``, one line)."""
    return form.xml("result")


def from_xml(text: str) -> Form:
    """Read back what :func:`to_xml` wrote: ``from_xml(to_xml(f)) == f``."""
    try:
        el = fromstring(text)
    except ParseError as exc:
        raise PayloadError(f"stored form is not XML: {exc}") from None
    return read_form(el)


# -- reading --------------------------------------------------------------------


def read_form(
    el: Element,
    form_type: str | None = None,
    *,
    max_fields: int | None = None,
    max_value: int | None = None,
) -> Form:
    """A payload's ``<x xmlns="jabber:x:data"/>`` of type submit or result, strictly.

    It has a FORM_TYPE (``form_type`` if given); at most ``max_fields`` fields
    besides FORM_TYPE, each with a non-empty, unique ``var``, a known type
    if any, and a var, label and values of at most ``max_value`` characters.
    ``<title/>``, ``<instructions/>`` and the ``<desc/>``, ``<required/>`` and
    ``<option/>`` of fields are left out.
    """
    if el.tag != _X:
        raise PayloadError(f"expected <x xmlns='{NS_DATA}'/>, not {describe(el)}")
    if el.get("type") not in ("submit", "result"):
        raise PayloadError("the data form's type must be submit or result")
    found_type: str | None = None
    fields: list[Field] = []
    seen: set[str] = set()
    for child in el:
        if child.tag in _IGNORED_IN_X:
            continue
        if child.tag != _FIELD:
            raise PayloadError(f"unexpected {describe(child)} in the data form")
        field = _read_field(child, max_value)
        assert field.var is not None
        if field.var in seen:
            raise PayloadError(f"the data form has the field {show(field.var)} twice")
        seen.add(field.var)
        if field.var == FORM_TYPE:
            if len(field.values) != 1:
                raise PayloadError("the data form's FORM_TYPE needs exactly one value")
            found_type = field.values[0]
            continue
        fields.append(field)
        if max_fields is not None and len(fields) > max_fields:
            raise PayloadError(f"the data form has more than {max_fields} fields")
    if found_type is None:
        raise PayloadError("the data form has no FORM_TYPE")
    if form_type is not None and found_type != form_type:
        raise PayloadError(f"the data form's FORM_TYPE must be {form_type}")
    return Form(tuple(fields), form_type=found_type)


def _read_field(el: Element, max_value: int | None) -> Field:
    var = el.get("var")
    if not var:
        raise PayloadError("every field of the data form needs a var")
    if max_value is not None and len(var) > max_value:
        raise PayloadError(f"a field var is longer than {max_value} characters")
    ftype = el.get("type")
    if ftype is not None and ftype not in FIELD_TYPES:
        raise PayloadError(f"the field {show(var)} has an unknown type {show(ftype)}")
    label = el.get("label")
    if label is not None and max_value is not None and len(label) > max_value:
        raise PayloadError(
            f"the label of the field {show(var)} is longer than {max_value} characters"
        )
    values: list[str] = []
    for child in el:
        if child.tag in _IGNORED_IN_FIELD:
            continue
        if child.tag != _VALUE:
            raise PayloadError(f"unexpected {describe(child)} in the field {show(var)}")
        value = leaf_text(child)
        if max_value is not None and len(value) > max_value:
            raise PayloadError(
                f"a value of the field {show(var)} is longer than {max_value} characters"
            )
        values.append(value)
    if len(values) > 1 and ftype is not None and ftype not in MULTI_VALUED:
        raise PayloadError(f"the field {show(var)} has several values")
    return Field(var, tuple(values), label, cast(FieldType | None, ftype))
