"""Domain errors and the one place that maps them to XMPP error conditions.

Routing and every feature raise (or record) these exceptions; :func:`condition_for` turns any
exception into an RFC 6120 §8.3 (type, condition, text) triple, and
:func:`xmpp_errors` wraps slixmpp handlers (IQ, presence) so that every
failure becomes a correct error reply instead of silence or a crash.

Texts are :func:`component.i18n._` texts, translated by :func:`xmpp_errors`
into the ``xml:lang`` of the stanza answered (by whoever renders the error
otherwise: :func:`component.i18n.translate`).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, cast

from slixmpp.exceptions import XMPPError
from slixmpp.stanza.error import Error
from slixmpp.xmlstream import StanzaBase

from component.i18n import Text, _, stanza_lang, translate
from component.logs import get_logger
from extensions.xml import PayloadError
from storage.errors import Unavailable

log = get_logger(__name__)

# RFC 6120 §8.3.3.12 policy-violation is missing from slixmpp's list of
# conditions, which silently turns it into feature-not-implemented.
Error.conditions = Error.conditions | {"policy-violation"}


class RoutingError(Exception):
    """A stanza that routing refuses, with its XMPP error condition."""

    etype = "cancel"
    condition = "undefined-condition"

    def __init__(self, text: str | None = None) -> None:
        super().__init__(text or self.condition)
        self.text = text


class UnknownAddress(RoutingError):
    condition = "item-not-found"


class NotAnAgent(RoutingError):
    etype = "auth"
    condition = "forbidden"


class BodyTooLong(RoutingError):
    etype = "modify"
    condition = "policy-violation"


class TooManyRecipients(RoutingError):
    etype = "modify"
    condition = "policy-violation"


class NotAllowed(RoutingError):
    condition = "not-allowed"


class NoRecipient(RoutingError):
    """None of the companies of a request can take it now (closed, over limit...)."""

    etype = "wait"
    condition = "recipient-unavailable"


class RateLimited(RoutingError):
    etype = "wait"
    condition = "resource-constraint"


class BadRequest(RoutingError):
    etype = "modify"
    condition = "bad-request"


class NotAcceptable(RoutingError):
    etype = "modify"
    condition = "not-acceptable"


class NotImplementedPayload(RoutingError):
    condition = "feature-not-implemented"


class NotReady(RoutingError):
    """The component has not loaded the directory yet (PostgreSQL down at start)."""

    etype = "wait"
    condition = "internal-server-error"


class Refused(RoutingError):
    """A refusal already decided as (type, condition, text), raised again elsewhere."""

    def __init__(self, etype: str, condition: str, text: str | None) -> None:
        super().__init__(text)
        self.etype = etype
        self.condition = condition


class NotConnected(Exception):
    """The component is not attached to ejabberd; nothing can be sent."""


#: Storage outages: the sender should retry; nothing was accepted.
UNAVAILABLE = ("wait", "internal-server-error", _("Service temporarily unavailable, retry later"))


def condition_for(exc: BaseException) -> tuple[str, str, str | None]:
    """(error type, defined condition, text) for any exception; the text is
    English, a :class:`~component.i18n.Text` when it can be translated."""
    if isinstance(exc, RoutingError):
        return exc.etype, exc.condition, exc.text
    if isinstance(exc, PayloadError):
        # A malformed payload or form (extensions' parsers): its text says why,
        # in the reader's language if a catalogue has it. The component raises
        # some with a Text of its own.
        if isinstance(exc.template, Text):
            return "modify", "bad-request", exc.template
        return "modify", "bad-request", _(exc.template, **exc.values)
    if isinstance(exc, Unavailable):
        return UNAVAILABLE
    return "wait", "internal-server-error", _("Internal error")


P = ParamSpec("P")
R = TypeVar("R")


def xmpp_errors(handler: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Turn domain exceptions raised by a slixmpp handler into XMPPError.

    slixmpp then answers the stanza with the error (``rootstanza.exception``),
    its text in the language of the stanza (the handler's first stanza argument).
    """

    @functools.wraps(handler)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await handler(*args, **kwargs)
        except XMPPError as exc:
            if exc.text:
                exc.text = translate(exc.text, _lang_of(args))
            raise
        except Exception as exc:
            etype, condition, text = condition_for(exc)
            if not isinstance(exc, RoutingError | PayloadError | Unavailable):
                log.exception("handler.failed", handler=handler.__qualname__)
            text = None if text is None else translate(text, _lang_of(args))
            raise XMPPError(cast(Any, condition), text, etype=cast(Any, etype)) from exc

    return wrapper


def _lang_of(args: tuple[object, ...]) -> str | None:
    stanza = next((a for a in args if isinstance(a, StanzaBase)), None)
    return None if stanza is None else stanza_lang(stanza.xml)
