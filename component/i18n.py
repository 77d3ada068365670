"""Texts people read, in their language: English (the source) and Russian.

Every text orgchat writes to a person (command notes and forms, error texts,
away replies, emails) is written in English inside ``_()`` (or ``n_()`` where a
count decides the grammar) with named placeholders::

    _("{company} is closed now", company=company.name)
    n_("Sent to {count} company", "Sent to {count} companies", sent)

Both return a :class:`Text`: a ``str`` whose value is the English rendering
(so code and tests that only need English see a plain string) and which
remembers its message id and values. It is translated where the reader's
language is known, at the edge: :func:`translate` (or :func:`translate_form`
for a whole data form) with a language chosen by :func:`language` from an
``xml:lang`` (:func:`stanza_lang`). Values that are :class:`Text` themselves are
translated into the same language; other values are inserted as they are.
``extensions/`` cannot import this module: the few texts it writes for people
(errors of forms and offers, message bodies) are templates marked ``N_()``,
which :class:`~extensions.xml.PayloadError` keeps with their values for
:func:`component.errors.condition_for` to translate, or which extensions write
through a :class:`~extensions.xml.Write` given by :func:`writer`.

The catalogue is gettext's: ``component/locale/<lang>/LC_MESSAGES/orgchat.po``,
the English texts being the message ids. It is read with Babel and compiled in
memory on first use, so no generated ``.mo`` file is kept in the repository.
A text missing from a catalogue (or whose translation is broken) is written in
English; ``tests/unit/test_i18n.py`` fails when the code uses a text the Russian
catalogue lacks. ``docs/architecture.md`` ("Languages") says how a translator
edits the catalogue and how a language is added: a directory under ``locale/``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import gettext
import io
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
from xml.etree.ElementTree import Element

from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from component.logs import get_logger
from extensions.forms import Column, Field, Form, Option, ResultForm, Table
from extensions.xml import Write

log = get_logger(__name__)

#: The language of the message ids, and of everyone whose language is unknown.
DEFAULT = "en"
DOMAIN = "orgchat"
LOCALE_DIR = Path(__file__).parent / "locale"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
#: The keywords marking texts in the code, as Babel's extractor takes them
#: (``pybabel extract -k``; the catalogue test uses them too).
KEYWORDS: dict[str, Any] = {"_": None, "n_": (1, 2), "N_": None}
#: Where the texts are: the component, and the templates ``extensions`` marks ``N_()``.
SOURCES = ("component", "extensions")


def catalogue_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


#: Every language orgchat writes: English and each language with a catalogue.
LANGUAGES: frozenset[str] = frozenset(
    {DEFAULT} | {p.name for p in LOCALE_DIR.iterdir() if catalogue_path(p.name).is_file()}
    if LOCALE_DIR.is_dir()
    else {DEFAULT}
)


class Text(str):
    """An English text that can be translated (see the module documentation).

    Build one with :func:`_` or :func:`n_`. Operations of ``str`` (slicing,
    joining, f-strings) give plain English strings: translate before them.
    """

    msgid: str
    plural: str | None
    number: int | None  #: the count of an ``n_()`` text
    values: dict[str, object]

    def __new__(
        cls, msgid: str, plural: str | None, count: int | None, values: dict[str, object]
    ) -> Text:
        english = msgid if plural is None or count == 1 else plural
        self = super().__new__(cls, _format(english, values, DEFAULT))
        self.msgid = msgid
        self.plural = plural
        self.number = count
        self.values = values
        return self

    def into(self, lang: str) -> str:
        """This text in ``lang`` (one of :data:`LANGUAGES`), English where it has
        no (valid) translation."""
        if lang == DEFAULT:
            return str(self)
        catalogue = _catalogue(lang)
        if self.plural is None:
            template = catalogue.gettext(self.msgid)
        else:
            assert self.number is not None
            template = catalogue.ngettext(self.msgid, self.plural, self.number)
        try:
            return _format(template, self.values, lang)
        except (KeyError, IndexError, ValueError) as exc:
            log.warning("i18n.broken_translation", lang=lang, msgid=self.msgid, error=str(exc))
            return str(self)


def _(msgid: str, /, **values: object) -> Text:
    """A text; ``values`` fill its ``{named}`` placeholders."""
    return Text(msgid, None, None, values)


def n_(singular: str, plural: str, count: int, /, **values: object) -> Text:
    """A text whose grammar depends on ``count`` (``{count}`` in the text)."""
    return Text(singular, plural, count, {"count": count, **values})


def listing(items: Sequence[str], separator: str = "; ") -> Text:
    """Texts (or names) one after the other, each translated: a value for a
    placeholder such as ``{refusals}``."""
    return _Listing(items, separator)


class _Listing(Text):
    items: tuple[str, ...]
    separator: str

    def __new__(cls, items: Sequence[str], separator: str) -> _Listing:
        self = str.__new__(cls, separator.join(items))
        self.msgid, self.plural, self.number, self.values = str(self), None, None, {}
        self.items, self.separator = tuple(items), separator
        return self

    def into(self, lang: str) -> str:
        return self.separator.join(translate(item, lang) for item in self.items)


def _format(template: str, values: dict[str, object], lang: str) -> str:
    if not values:
        return template
    return template.format_map(
        {k: v.into(lang) if isinstance(v, Text) else v for k, v in values.items()}
    )


@functools.cache
def _catalogue(lang: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``lang``, read once per process."""
    with catalogue_path(lang).open("rb") as po:
        catalog = read_po(po, locale=lang, domain=DOMAIN)
    mo = io.BytesIO()
    write_mo(mo, catalog)  # untranslated and fuzzy entries left out: English
    mo.seek(0)
    return gettext.GNUTranslations(mo)


# -- choosing the language ----------------------------------------------------------


def language(tag: str | None) -> str:
    """The language to write in for an ``xml:lang`` (BCP 47) tag: its primary
    subtag if orgchat has it (``ru-RU``: ``ru``), else English."""
    primary = (tag or "").replace("_", "-").split("-", 1)[0].strip().lower()
    return primary if primary in LANGUAGES else DEFAULT


def stanza_lang(xml: Element, *children: str) -> str | None:
    """The ``xml:lang`` of a stanza, else of its first child named in ``children``
    that has one (XEP-0050 §3.7: a command's own)."""
    lang = xml.get(XML_LANG)
    for tag in children:
        if lang:
            break
        child = xml.find(tag)
        lang = child.get(XML_LANG) if child is not None else None
    return lang or None


# -- translating ----------------------------------------------------------------------

F = TypeVar("F", Form, ResultForm)
#: A table's cell: one value or several.
Cell = str | Sequence[str]


def translate(value: object, lang: str | None) -> str:
    """``value`` for a reader of ``lang`` (an ``xml:lang`` tag or None): a
    :class:`Text` translated, anything else as text."""
    if isinstance(value, Text):
        return value.into(language(lang))
    return value if isinstance(value, str) else str(value)


def translate_form(form: F, lang: str | None) -> F:
    """``form`` with its title, instructions, labels, descriptions, option labels,
    column labels and table cells translated (values a client submits are not)."""
    tr: Callable[[str], str] = functools.partial(translate, lang=lang)
    fields = [_field(f, tr) for f in form.fields]
    if isinstance(form, Form):
        return dataclasses.replace(
            form,
            title=_opt(form.title, tr),
            instructions=_opt(form.instructions, tr),
            fields=fields,
        )
    table = form.table
    if table is not None:
        table = Table(
            [Column(c.var, tr(c.label), c.type) for c in table.columns],
            [_row(row, tr) for row in table.rows],
        )
    return dataclasses.replace(
        form,
        title=_opt(form.title, tr),
        instructions=_opt(form.instructions, tr),
        fields=fields,
        table=table,
    )


def writer(lang: str | None) -> Write:
    """What ``extensions`` writes for people (templates marked ``N_()``), in ``lang``."""

    def write(template: str, /, **values: object) -> str:
        return translate(_(template, **values), lang)

    return write


def moment(value: dt.datetime, lang: str | None) -> str:
    """A moment of the coming week as people of ``lang`` write it, in the time zone
    of ``value``: ``Mon 30 Nov 09:00``, ``пн 30 нояб. 09:00``."""
    return format_datetime(value, "EEE dd MMM HH:mm", locale=language(lang))


def _opt(value: str | None, tr: Callable[[str], str]) -> str | None:
    return None if value is None else tr(value)


def _field(field: Field, tr: Callable[[str], str]) -> Field:
    return dataclasses.replace(
        field,
        label=_opt(field.label, tr),
        desc=_opt(field.desc, tr),
        options=tuple(Option(o.value, _opt(o.label, tr)) for o in field.options),
        values=tuple(tr(v) for v in field.values) if field.type == "fixed" else field.values,
    )


def _row(row: Mapping[str, Cell], tr: Callable[[str], str]) -> Mapping[str, Cell]:
    """A table's row, its :class:`Text` cells translated; the row itself when it
    has none (names, addresses: a search's 50 rows are looked at, not copied)."""
    for value in row.values():
        if isinstance(value, Text) or (
            not isinstance(value, str) and value and any(isinstance(v, Text) for v in value)
        ):
            return {k: _cell(v, tr) for k, v in row.items()}
    return row


def _cell(value: Cell, tr: Callable[[str], str]) -> Cell:
    return tr(value) if isinstance(value, str) else [tr(v) for v in value]
