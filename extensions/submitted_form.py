"""XEP-0004: what a client submits to an ad-hoc command, read with typed getters.

The other half of the codec (building forms, reading a payload's form
strictly) is :mod:`extensions.forms`. A missing required value or a value
of the wrong type raises :class:`~extensions.xml.PayloadError` with a text
naming the field (``bad-request``; the XEP-0050 responder adds
``<bad-payload/>``). Submitted values are never trusted: options are checked
against what the command offers *now*.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, overload
from xml.etree.ElementTree import Element

from slixmpp.jid import JID, InvalidJID

from extensions.forms import FALSE_VALUES, NS_DATA, TRUE_VALUES
from extensions.xml import N_, PayloadError


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
            raise PayloadError("A submitted form has type 'submit'")
        for fld in x.findall(f"{{{NS_DATA}}}field"):
            var = fld.get("var")
            if not var:
                continue
            if var in values:
                raise PayloadError(f"Field {var!r} is given twice")
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
            raise _not_a_choice(var, label, value)
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
                raise _not_a_choice(var, label, value)
            if value not in chosen:
                chosen.append(value)
        if not chosen and required:
            raise _invalid(
                var,
                label,
                N_("'{label}': choose at least one"),
                N_("Field '{var}': choose at least one"),
            )
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
            raise _required(var, label)
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
        raise _invalid(
            var,
            label,
            N_("'{label}': {value} is not a boolean"),
            N_("Field '{var}': {value} is not a boolean"),
            value=repr(value),
        )

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
            raise _invalid(
                var,
                label,
                N_("'{label}': {value} is not a whole number"),
                N_("Field '{var}': {value} is not a whole number"),
                value=repr(value),
            ) from None
        if minimum is not None and number < minimum:
            raise _invalid(
                var,
                label,
                N_("'{label}' must be at least {minimum}"),
                N_("Field '{var}' must be at least {minimum}"),
                minimum=minimum,
            )
        if maximum is not None and number > maximum:
            raise _invalid(
                var,
                label,
                N_("'{label}' must be at most {maximum}"),
                N_("Field '{var}' must be at most {maximum}"),
                maximum=maximum,
            )
        return number

    # -- helpers ------------------------------------------------------------------

    def _single(self, var: str, label: str | None) -> str | None:
        values = [v for v in self._values.get(var, ()) if v.strip()]
        if len(values) > 1:
            raise _invalid(
                var, label, N_("'{label}' takes one value"), N_("Field '{var}' takes one value")
            )
        return values[0] if values else None

    @staticmethod
    def _missing(var: str, label: str | None, required: bool) -> None:
        if required:
            raise _required(var, label)

    def _check_text(
        self, var: str, label: str | None, value: str | None, required: bool, max_chars: int | None
    ) -> str | None:
        if value is None:
            return self._missing(var, label, required)
        if max_chars is not None and len(value) > max_chars:
            raise _invalid(
                var,
                label,
                N_("'{label}' is longer than {max_chars} characters"),
                N_("Field '{var}' is longer than {max_chars} characters"),
                max_chars=max_chars,
            )
        return value


def _invalid(
    var: str, label: str | None, labelled: str, unlabelled: str, **values: object
) -> PayloadError:
    """The error about a field, named by its label (itself translatable) if it
    has one, else by its var; ``labelled`` and ``unlabelled`` are the templates."""
    if label:
        return PayloadError(labelled, label=label, **values)
    return PayloadError(unlabelled, var=var, **values)


def _required(var: str, label: str | None) -> PayloadError:
    return _invalid(var, label, N_("'{label}' is required"), N_("Field '{var}' is required"))


def _not_a_choice(var: str, label: str | None, value: str) -> PayloadError:
    return _invalid(
        var,
        label,
        N_("'{label}': {value} is not one of the choices"),
        N_("Field '{var}': {value} is not one of the choices"),
        value=repr(value),
    )


def _parse_jid(var: str, label: str | None, value: str) -> JID:
    try:
        jid = JID(value)
    except InvalidJID:
        jid = None
    if jid is None or not jid.domain:
        raise _invalid(
            var,
            label,
            N_("'{label}': {value} is not a valid address"),
            N_("Field '{var}': {value} is not a valid address"),
            value=repr(value),
        )
    return jid
