"""XEP-0004 data forms for ad-hoc commands: typed builders and typed reading.

Building (what the component sends; every class renders with ``element()``):

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

Reading (what a client submits): :class:`SubmittedForm` with typed getters
(``text``, ``multiline``, ``choice``, ``choices``, ``jid``, ``jids``,
``boolean``, ``integer``). A missing required value or a value of the wrong
type raises :class:`BadPayload`, a ``bad-request`` whose text names the field;
the XEP-0050 responder adds ``<bad-payload/>`` to it. Submitted values are
never trusted: options are checked against what the command offers *now*,
hidden fields come back however the client likes.

Mistakes of the command author (a list field without options, two values in a
single-valued field, a newline in a fixed field) raise ValueError when the
form is built, not when a client reads it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, overload
from xml.etree.ElementTree import Element, SubElement

from slixmpp.jid import JID, InvalidJID

from component.routing.errors import BadRequest

NS_DATA = "jabber:x:data"

FieldType = Literal[
    "boolean",
    "fixed",
    "hidden",
    "jid-multi",
    "jid-single",
    "list-multi",
    "list-single",
    "text-multi",
    "text-single",
]

SINGLE_VALUED: frozenset[str] = frozenset(
    {"boolean", "fixed", "jid-single", "list-single", "text-single"}
)
LIST_TYPES: frozenset[str] = frozenset({"list-single", "list-multi"})
TRUE_VALUES = frozenset({"1", "true"})
FALSE_VALUES = frozenset({"0", "false"})


class BadPayload(BadRequest):
    """A submitted form lacks a required value or has one of the wrong type.

    ``modify``/``bad-request`` (``condition_for``), plus XEP-0050's
    ``<bad-payload/>`` when it ends an ad-hoc command stage.
    """


# -- building -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Option:
    """One choice of a list field: the value submitted and the label shown."""

    value: str
    label: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Field:
    """One ``<field/>``. Use the constructors (``Field.text_single(...)``)."""

    type: FieldType
    var: str | None = None
    label: str | None = None
    desc: str | None = None
    required: bool = False
    values: tuple[str, ...] = ()
    options: tuple[Option, ...] = ()

    def __post_init__(self) -> None:
        if self.type != "fixed" and not self.var:
            raise ValueError(f"a {self.type} field needs a var")
        if self.options and self.type not in LIST_TYPES:
            raise ValueError(f"field {self.var!r}: only list fields have options")
        if self.type in LIST_TYPES:
            if not self.options:
                raise ValueError(f"field {self.var!r}: a list field needs options")
            offered = [o.value for o in self.options]
            if len(set(offered)) != len(offered):
                raise ValueError(f"field {self.var!r}: option values must be unique")
            unknown = [v for v in self.values if v not in offered]
            if unknown:
                raise ValueError(f"field {self.var!r}: default {unknown[0]!r} is not an option")
        if self.type in SINGLE_VALUED and len(self.values) > 1:
            raise ValueError(f"field {self.var!r}: a {self.type} field has one value at most")
        if self.type in {"fixed", "text-single", "jid-single", "jid-multi"} and any(
            "\n" in v or "\r" in v for v in self.values
        ):
            raise ValueError(f"field {self.var!r}: no newlines in a {self.type} value")
        if self.type == "boolean" and self.values and self.values[0] not in {"true", "false"}:
            raise ValueError(f"field {self.var!r}: a boolean value is 'true' or 'false'")

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
        return cls("text-single", var, label, desc, required, _one(default))

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
        return cls("text-multi", var, label, desc, required, lines)

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
        return cls("list-single", var, label, desc, required, _one(default), _options(options))

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
        return cls("list-multi", var, label, desc, required, tuple(default), _options(options))

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
        return cls("jid-single", var, label, desc, required, _one(value))

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
        return cls("jid-multi", var, label, desc, required, tuple(str(j) for j in default))

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
        return cls("boolean", var, label, desc, required, _one(value))

    @classmethod
    def hidden(cls, var: str, value: str | Sequence[str]) -> Field:
        """Returned by the client as sent (XEP-0004): echo data, re-validate it."""
        values = (value,) if isinstance(value, str) else tuple(value)
        return cls("hidden", var, values=values)

    @classmethod
    def fixed(cls, text: str, *, var: str | None = None) -> Field:
        """One line of text shown in the form; use several for several lines."""
        return cls("fixed", var, values=(text,))

    def element(self, *, reported: bool = False) -> Element:
        el = Element(f"{{{NS_DATA}}}field")
        if self.var:
            el.set("var", self.var)
        el.set("type", self.type)
        if self.label:
            el.set("label", self.label)
        if reported:
            return el
        if self.desc:
            SubElement(el, f"{{{NS_DATA}}}desc").text = self.desc
        if self.required:
            SubElement(el, f"{{{NS_DATA}}}required")
        for value in self.values:
            SubElement(el, f"{{{NS_DATA}}}value").text = value
        for option in self.options:
            opt = SubElement(el, f"{{{NS_DATA}}}option")
            if option.label:
                opt.set("label", option.label)
            SubElement(opt, f"{{{NS_DATA}}}value").text = option.value
        return el


@dataclasses.dataclass(frozen=True, slots=True)
class Form:
    """A form to fill in (``<x type="form"/>``)."""

    fields: Sequence[Field]
    title: str | None = None
    #: Newlines start new ``<instructions/>`` elements (XEP-0004 §3).
    instructions: str | None = None

    def __post_init__(self) -> None:
        _check_unique(self.fields)

    def element(self, extra: Sequence[Field] = ()) -> Element:
        """The ``<x/>``; ``extra`` fields (the responder's own) come last."""
        _check_unique([*self.fields, *extra])
        x = _head("form", self.title, self.instructions)
        for fld in (*self.fields, *extra):
            x.append(fld.element())
        return x


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
        names = [c.var for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError("column vars must be unique")
        for row in self.rows:
            unknown = set(row) - set(names)
            if unknown:
                raise ValueError(f"row has values for unknown columns: {sorted(unknown)}")


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

    def element(self) -> Element:
        x = _head("result", self.title, self.instructions)
        for fld in self.fields:
            x.append(fld.element())
        if self.table is not None:
            reported = SubElement(x, f"{{{NS_DATA}}}reported")
            for col in self.table.columns:
                reported.append(Field(col.type, col.var, col.label).element(reported=True))
            for row in self.table.rows:
                item = SubElement(x, f"{{{NS_DATA}}}item")
                # XEP-0004 §3.4: every item has every reported field.
                for col in self.table.columns:
                    cell = SubElement(item, f"{{{NS_DATA}}}field", var=col.var)
                    value = row.get(col.var, ())
                    for v in (value,) if isinstance(value, str) else value:
                        SubElement(cell, f"{{{NS_DATA}}}value").text = v
        return x


def _one(value: str | None) -> tuple[str, ...]:
    return () if value is None else (value,)


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


def _head(form_type: str, title: str | None, instructions: str | None) -> Element:
    x = Element(f"{{{NS_DATA}}}x", type=form_type)
    if title:
        SubElement(x, f"{{{NS_DATA}}}title").text = title
    for line in (instructions or "").splitlines():
        if line.strip():
            SubElement(x, f"{{{NS_DATA}}}instructions").text = line
    return x


# -- reading --------------------------------------------------------------------


class SubmittedForm:
    """Values of a submitted ``<x type="submit"/>``, read with typed getters.

    Every getter takes the field's ``var`` and an optional ``label`` used in
    error texts (``"Question" is required``). Empty values count as missing.
    """

    def __init__(self, values: Mapping[str, Sequence[str]] | None = None) -> None:
        self._values = {var: list(vals) for var, vals in (values or {}).items()}

    @classmethod
    def parse(cls, x: Element | None) -> SubmittedForm:
        """Read a submitted form; None (no form) is an empty one.

        XEP-0050 §3.5.1: ``type="cancel"`` counts as ``submit``. Fields without a
        var are ignored; a var given twice is a bad payload.
        """
        values: dict[str, list[str]] = {}
        if x is None:
            return cls(values)
        if x.get("type", "submit") not in {"submit", "cancel"}:
            raise BadPayload("A submitted form has type 'submit'")
        for fld in x.findall(f"{{{NS_DATA}}}field"):
            var = fld.get("var")
            if not var:
                continue
            if var in values:
                raise BadPayload(f"Field {var!r} is given twice")
            values[var] = [v.text or "" for v in fld.findall(f"{{{NS_DATA}}}value")]
        return cls(values)

    def __contains__(self, var: object) -> bool:
        return var in self._values

    def vars(self) -> list[str]:
        return list(self._values)

    def values(self, var: str) -> list[str]:
        """The raw values of a field (empty if absent)."""
        return list(self._values.get(var, ()))

    def without(self, var: str) -> SubmittedForm:
        return SubmittedForm({k: v for k, v in self._values.items() if k != var})

    # -- typed getters ------------------------------------------------------------

    @overload
    def text(
        self,
        var: str,
        *,
        required: Literal[True] = ...,
        label: str | None = ...,
        max_chars: int | None = ...,
    ) -> str: ...

    @overload
    def text(
        self,
        var: str,
        *,
        required: Literal[False],
        label: str | None = ...,
        max_chars: int | None = ...,
    ) -> str | None: ...

    def text(
        self,
        var: str,
        *,
        required: bool = True,
        label: str | None = None,
        max_chars: int | None = None,
    ) -> str | None:
        """A text-single (or hidden) value, stripped of surrounding whitespace."""
        value = self._single(var, label)
        value = value.strip() if value is not None else None
        return self._check_text(var, label, value or None, required, max_chars)

    @overload
    def multiline(
        self,
        var: str,
        *,
        required: Literal[True] = ...,
        label: str | None = ...,
        max_chars: int | None = ...,
    ) -> str: ...

    @overload
    def multiline(
        self,
        var: str,
        *,
        required: Literal[False],
        label: str | None = ...,
        max_chars: int | None = ...,
    ) -> str | None: ...

    def multiline(
        self,
        var: str,
        *,
        required: bool = True,
        label: str | None = None,
        max_chars: int | None = None,
    ) -> str | None:
        """A text-multi value: its lines joined with newlines, stripped."""
        text = "\n".join(self._values.get(var, ())).strip()
        return self._check_text(var, label, text or None, required, max_chars)

    @overload
    def choice(
        self,
        var: str,
        options: Iterable[str],
        *,
        required: Literal[True] = ...,
        label: str | None = ...,
    ) -> str: ...

    @overload
    def choice(
        self,
        var: str,
        options: Iterable[str],
        *,
        required: Literal[False],
        label: str | None = ...,
    ) -> str | None: ...

    def choice(
        self,
        var: str,
        options: Iterable[str],
        *,
        required: bool = True,
        label: str | None = None,
    ) -> str | None:
        """A list-single value, which must be one of ``options``."""
        value = self._single(var, label)
        if not value:
            return self._missing(var, label, required)
        if value not in set(options):
            raise BadPayload(f"{_name(var, label)}: {value!r} is not one of the choices")
        return value

    def choices(
        self,
        var: str,
        options: Iterable[str],
        *,
        required: bool = True,
        label: str | None = None,
    ) -> list[str]:
        """list-multi values, each one of ``options``; required means at least one."""
        allowed = set(options)
        chosen: list[str] = []
        for value in self._values.get(var, ()):
            if not value:
                continue
            if value not in allowed:
                raise BadPayload(f"{_name(var, label)}: {value!r} is not one of the choices")
            if value not in chosen:
                chosen.append(value)
        if not chosen and required:
            raise BadPayload(f"{_name(var, label)}: choose at least one")
        return chosen

    @overload
    def jid(self, var: str, *, required: Literal[True] = ..., label: str | None = ...) -> JID: ...

    @overload
    def jid(self, var: str, *, required: Literal[False], label: str | None = ...) -> JID | None: ...

    def jid(self, var: str, *, required: bool = True, label: str | None = None) -> JID | None:
        """A jid-single value, validated (RFC 7622)."""
        value = (self._single(var, label) or "").strip()
        if not value:
            return self._missing(var, label, required)
        return _parse_jid(var, label, value)

    def jids(self, var: str, *, required: bool = True, label: str | None = None) -> list[JID]:
        """jid-multi values, validated; duplicates dropped (XEP-0004 §3.3)."""
        out: dict[str, JID] = {}
        for value in self._values.get(var, ()):
            if value.strip():
                jid = _parse_jid(var, label, value.strip())
                out.setdefault(str(jid), jid)
        if not out and required:
            raise BadPayload(f"{_name(var, label)} is required")
        return list(out.values())

    def boolean(self, var: str, *, default: bool = False, label: str | None = None) -> bool:
        """A boolean value: ``1``/``true`` or ``0``/``false``; absent is ``default``."""
        value = (self._single(var, label) or "").strip().lower()
        if not value:
            return default
        if value in TRUE_VALUES:
            return True
        if value in FALSE_VALUES:
            return False
        raise BadPayload(f"{_name(var, label)}: {value!r} is not a boolean")

    @overload
    def integer(
        self,
        var: str,
        *,
        required: Literal[True] = ...,
        label: str | None = ...,
        minimum: int | None = ...,
        maximum: int | None = ...,
    ) -> int: ...

    @overload
    def integer(
        self,
        var: str,
        *,
        required: Literal[False],
        label: str | None = ...,
        minimum: int | None = ...,
        maximum: int | None = ...,
    ) -> int | None: ...

    def integer(
        self,
        var: str,
        *,
        required: bool = True,
        label: str | None = None,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        """A whole number typed in a text-single field, within the bounds."""
        value = (self._single(var, label) or "").strip()
        if not value:
            return self._missing(var, label, required)
        try:
            number = int(value)
        except ValueError:
            raise BadPayload(f"{_name(var, label)}: {value!r} is not a whole number") from None
        if minimum is not None and number < minimum:
            raise BadPayload(f"{_name(var, label)} must be at least {minimum}")
        if maximum is not None and number > maximum:
            raise BadPayload(f"{_name(var, label)} must be at most {maximum}")
        return number

    # -- helpers ------------------------------------------------------------------

    def _single(self, var: str, label: str | None) -> str | None:
        values = [v for v in self._values.get(var, ()) if v.strip()]
        if len(values) > 1:
            raise BadPayload(f"{_name(var, label)} takes one value")
        return values[0] if values else None

    @staticmethod
    def _missing(var: str, label: str | None, required: bool) -> None:
        if required:
            raise BadPayload(f"{_name(var, label)} is required")

    def _check_text(
        self, var: str, label: str | None, value: str | None, required: bool, max_chars: int | None
    ) -> str | None:
        if value is None:
            return self._missing(var, label, required)
        if max_chars is not None and len(value) > max_chars:
            raise BadPayload(f"{_name(var, label)} is longer than {max_chars} characters")
        return value


def _name(var: str, label: str | None) -> str:
    return f"{label!r}" if label else f"Field {var!r}"


def _parse_jid(var: str, label: str | None, value: str) -> JID:
    try:
        jid = JID(value)
    except InvalidJID:
        raise BadPayload(f"{_name(var, label)}: {value!r} is not a valid address") from None
    if not jid.domain:
        raise BadPayload(f"{_name(var, label)}: {value!r} is not a valid address")
    return jid
