"""XML for every namespace orgchat writes or reads: escaping, a one-line
serialiser, and the checks a payload parser needs.

* :func:`escape_text` and :func:`escape_attr` are the only escapers: the
  message hot path (:mod:`component.routing.wire`) renders stanzas as strings
  with them, and so do the extensions' message payloads. Attribute values
  keep their carriage returns, line feeds and tabs (XML attribute-value
  normalisation would turn them into spaces otherwise); character data keeps
  its carriage returns.
* :func:`xml_safe` and :func:`fits_xml` deal with the characters XML cannot
  carry at all, in text that did not arrive as XML (email, import files).
* :func:`to_xml` serialises an ElementTree element on one line with
  default-namespace declarations only (``<offer xmlns="urn:orgchat:request:0">``,
  never ``ns0:`` prefixes), for payloads stored or written as strings.
* :class:`PayloadError` is what every parser of a payload raises, with a
  short reason that is sent to the user as the error text; the component maps
  it to ``modify``/``bad-request`` in one place
  (:func:`component.errors.condition_for`). The small readers below
  (:func:`expect`, :func:`leaf_text`, :func:`boolean` ...) raise it with
  uniform wording.
"""

from __future__ import annotations

import functools
import re
from typing import Protocol
from xml.etree.ElementTree import Element

from slixmpp.jid import JID

NS_XML = "http://www.w3.org/XML/1998/namespace"

_INTEGER = re.compile(r"\+?[0-9]{1,30}")


def N_(template: str) -> str:
    """Mark a text people read that ``extensions`` writes (a :class:`PayloadError`
    template, a message body): the component's catalogues translate it
    (component/i18n.py)."""
    return template


class Write(Protocol):
    """Writes a template marked :func:`N_` in the reader's language, ``values``
    filling its ``{named}`` placeholders; the component gives one per language."""

    def __call__(self, template: str, /, **values: object) -> str: ...


def english(template: str, /, **values: object) -> str:
    """The :class:`Write` of English, the templates' own language."""
    return template.format_map(values) if values else template


class PayloadError(ValueError):
    """A malformed payload; str(exc) is a short human-readable reason.

    The reason is sent to the user as the error text; it starts with a
    capital letter and has no final full stop. It is kept in ``template``
    with its ``values`` (which fill its ``{named}`` placeholders, if given) so
    that the component can translate it: a reason marked :func:`N_` is in its
    catalogues.
    """

    def __init__(self, reason: str, /, **values: object) -> None:
        # A reason already capitalised is kept as given: the component's are
        # translatable strings (component/i18n.py), which a new string would lose.
        self.template = reason if reason[:1].isupper() else reason[:1].upper() + reason[1:]
        self.values = values
        super().__init__(english(self.template, **values))


# -- writing ----------------------------------------------------------------------


#: The characters XML 1.0 cannot carry, escaped or not: controls but TAB, LF
#: and CR; lone surrogates; U+FFFE and U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """The text without the characters XML cannot carry."""
    return _NOT_XML.sub("", text)


def fits_xml(text: str) -> bool:
    """Whether XML can carry the text (no character :func:`xml_safe` removes)."""
    return _NOT_XML.search(text) is None


def escape_text(text: str) -> str:
    """Character data: ``&``, ``<``, ``>`` and carriage returns escaped."""
    # The common case, nothing to escape: a substring test per character is
    # a fast scan in C, four of them quicker than one regular expression's
    # (0.15 against 0.7 µs for a 120-character body).
    if not ("&" in text or "<" in text or ">" in text or "\r" in text):
        return text
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def escape_attr(text: str) -> str:
    """A double-quoted attribute value; white space other than spaces survives parsing."""
    if not (
        "&" in text
        or "<" in text
        or ">" in text
        or '"' in text
        or "\r" in text
        or "\n" in text
        or "\t" in text
    ):
        return text  # as in escape_text
    return escape_text(text).replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;")


def to_xml(el: Element, within: str = "") -> str:
    """Serialise an element on one line, with default-namespace declarations
    only; ``within``: the default namespace around it (a stream's), not declared again."""
    out: list[str] = []
    _write(el, within, out)
    return "".join(out)


def _write(el: Element, parent_ns: str, out: list[str]) -> None:
    ns, name = split_tag(el.tag)
    out.append("<" + name if ns == parent_ns else f'<{name} xmlns="{escape_attr(ns)}"')
    for key, value in el.attrib.items():
        out.append(f' {_attr_name(key)}="{escape_attr(value)}"')
    if el.text is None and len(el) == 0:
        out.append("/>")
        return
    out.append(">")
    if el.text:
        out.append(escape_text(el.text))
    for child in el:
        _write(child, ns, out)
        if child.tail:
            out.append(escape_text(child.tail))
    out.append(f"</{name}>")


def _attr_name(key: str) -> str:
    if key[0] != "{":
        return key
    ns, name = split_tag(key)
    if ns != NS_XML:
        raise ValueError(f"namespaced attribute {key!r} is not supported")
    return "xml:" + name


@functools.lru_cache(maxsize=4096)
def split_tag(tag: str) -> tuple[str, str]:
    """``"{ns}name"`` -> ``("ns", "name")``; no namespace -> ``("", tag)``."""
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return "", tag


# -- reading ----------------------------------------------------------------------


def describe(el: Element, home: str | None = None) -> str:
    """``<name/>`` for an element of the ``home`` namespace, else with its xmlns."""
    ns, name = split_tag(el.tag)
    if ns == home or not ns:
        return f"<{name}/>"
    return f"<{name} xmlns='{ns}'/>"


def expect(el: Element, ns: str, name: str, home: str | None = None) -> None:
    """Raise unless ``el`` is ``<name xmlns=ns/>``."""
    if el.tag != "{" + ns + "}" + name:
        raise PayloadError(f"expected <{name} xmlns='{ns}'/>, not {describe(el, home)}")


def once(previous: object, el: Element, home: str | None = None) -> None:
    """Raise if an element that may appear once already did (``previous`` set)."""
    if previous is not None:
        raise PayloadError(f"more than one {describe(el, home)}")


def no_children(el: Element, home: str | None = None) -> None:
    if len(el):
        raise PayloadError(f"unexpected {describe(el[0], home)} in {describe(el, home)}")


def leaf_text(el: Element, home: str | None = None) -> str:
    """The text of an element that holds text only ("" if empty)."""
    if len(el):
        raise PayloadError(f"{describe(el, home)} must hold text only")
    return el.text or ""


def required_attr(el: Element, name: str, home: str | None = None) -> str:
    value = el.get(name)
    if value is None:
        raise PayloadError(f"{describe(el, home)} has no {name}")
    return value


def show(value: str) -> str:
    """A user-supplied value quoted for an error text, cut to a readable length."""
    return repr(value if len(value) <= 40 else value[:40] + "...")


def boolean(value: str | None, what: str, *, default: bool) -> bool:
    """XML Schema boolean: true, false, 1 or 0 (surrounding white space ignored)."""
    if value is None:
        return default
    text = value.strip()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise PayloadError(f"{what} must be true, false, 1 or 0")


def integer(value: str, what: str) -> int:
    """A non-negative XML Schema integer (surrounding white space ignored)."""
    text = value.strip()
    if not _INTEGER.fullmatch(text):
        raise PayloadError(f"{what} must be a non-negative integer")
    return int(text)


def bare_jid(value: str | None, what: str) -> str:
    """A bare JID with a localpart (``name@domain``), normalised."""
    if value is None:
        raise PayloadError(f"{what} is missing")
    try:
        jid = JID(value.strip())
    except ValueError:
        raise PayloadError(f"{what} is not a valid JID: {show(value)}") from None
    if not jid.node or jid.resource:
        raise PayloadError(f"{what} must be a bare JID such as name@domain: {show(value)}")
    return str(jid.bare)
