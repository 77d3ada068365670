"""XEP-0050 ad-hoc commands: a stateless responder that features plug commands into.

A command lives on one kind of address (:class:`Target`): the service domain,
a company (``slug@domain``) or a conversation (``slug+token@domain``). Clients
find the commands a requester may run with XEP-0030 (disco#items on the node
``http://jabber.org/protocol/commands`` of that address, answered by
:mod:`component.routing.iq` through :meth:`CommandRegistry.items_for`) and run
them with ``<iq type="set"><command/></iq>``.

Writing a command
=================

Subclass :class:`Command`; ``start`` returns the first :data:`Step`, ``submit``
the step after a submitted stage::

    class Feedback(Command):
        node = "feedback"
        name = _("Send feedback")
        target = Target.COMPANY

        def allowed(self, ctx: Context) -> bool:  # listed and runnable only if True
            return ctx.company is not None and ctx.company.accepts_requests

        async def start(self, ctx: Context) -> Step:
            return Next("write", Form(title=_("Feedback"), fields=[
                Field.list_single("mood", _("How was it?"), ["good", "bad"], required=True),
                Field.text_multi("text", _("Anything else?")),
            ]))

        async def submit(self, ctx: Context, stage: str, form: SubmittedForm) -> Step:
            mood = form.choice("mood", ["good", "bad"], label=_("How was it?"))
            text = form.multiline("text", required=False, max_chars=2000)
            await self.store.save(ctx.company, ctx.requester.bare, mood, text)
            return Done(note=_("Thank you, {name}!", name=ctx.requester.user))

    registry.add(Feedback())      # before the stream starts: Parts.commands in app.wire

Every text a person reads is written in English with :func:`component.i18n._`
(``n_`` where a count decides the grammar): the responder translates the
notes, the command's name, the form's title, instructions and labels, and the
error texts into the request's ``xml:lang`` (``ctx.lang``), so commands never
translate themselves.

* :class:`Next` (``status="executing"``): a stage name, its :class:`Form`, the
  actions it offers (``"next"``, ``"complete"``, and ``"prev"`` if the command
  implements :meth:`Command.back`), the default one, an optional note.
* :class:`Done` (``status="completed"``): an optional note (``info``, ``warn``
  or ``error``: XEP-0050 §3.6 wants an ``error`` note when a command completes
  but fails) and an optional :class:`ResultForm` (fields and/or a table).
* Raise :class:`~component.errors.RoutingError` subclasses (or let
  :class:`storage.errors.Unavailable` through) to answer with an IQ error:
  :func:`~component.errors.xmpp_errors` maps them. The typed getters
  of :class:`SubmittedForm` raise ``bad-request`` + ``<bad-payload/>`` with a
  text naming the field.
* :attr:`Context.session` is the session id, the same for every stage of one
  execution: a natural idempotency key for a command's final write.

Sessions without server state
=============================

Several component processes serve one domain and ejabberd hands each IQ to
any of them, so nothing about a session is kept in memory:

* the ``sessionid`` is ``<nonce>.<issued>.<mac>``: 16 random characters, the
  issue time (Unix seconds) and a truncated HMAC-SHA256 of (requester full
  JID, target bare JID, node, nonce, issue time) under a key derived from
  ``component.secret``. Every process verifies every other's; a forged,
  altered or foreign id (another requester, even another resource of the same
  account, another address, another node) is ``bad-request`` +
  ``<bad-sessionid/>``; an id older than ``commands.session_ttl`` seconds is
  ``not-allowed`` + ``<session-expired/>`` (XEP-0050 §4.4). The id stays the
  same for the whole session, as XEP-0050 §3.3 and §4.1 ask (clients
  such as slixmpp's XEP-0050 plugin drop results whose id changed).
* the current stage travels in the form, as the hidden field
  ``orgchat-stage`` = ``<stage>.<actions>.<mac>``: the stage's name, the
  actions it offered (uppercase: the default one) and an HMAC binding both to
  the session id. Clients return hidden fields (XEP-0004), so ``next`` and
  ``complete`` know the stage; without it, or with an altered one, the answer
  is ``bad-request`` + ``<bad-payload/>``. An action the stage did not offer is
  ``bad-request`` + ``<bad-action/>``, but for ``next`` and ``complete`` at a
  stage with one way forward, which both take it (:func:`_stage_action`).
* ``prev`` usually comes without a form: :meth:`Command.back` then gets
  ``stage=None`` (a command with two stages simply starts again).
* Data a later stage needs goes into the form too (hidden fields, defaults),
  and comes back untrusted: ``submit`` validates everything again, and checks
  permissions again (``allowed`` is checked on every request).
* A session's stages can be replayed until it expires (a completed session is
  not remembered): a command whose last step must happen once uses
  ``ctx.session`` as an idempotency key.

``cancel`` of a valid session is answered ``status="canceled"``; an unknown
action is ``bad-request`` + ``<malformed-action/>``; ``next``, ``complete`` or
``prev`` without a session is ``<bad-action/>``; an unknown node (or one of
another kind of address) ``item-not-found``; a command the requester may not
run ``forbidden``. Only IQs of type ``set`` execute commands.
"""

from __future__ import annotations

import abc
import base64
import dataclasses
import enum
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, cast, get_args
from xml.etree.ElementTree import Element, SubElement

from slixmpp.exceptions import XMPPError
from slixmpp.jid import JID
from slixmpp.stanza import Iq
from slixmpp.xmlstream.handler import CoroutineCallback
from slixmpp.xmlstream.matcher import MatchXPath

from component.addressing import split_local
from component.directory import Directory
from component.errors import (
    BadRequest,
    NotReady,
    RoutingError,
    UnknownAddress,
    condition_for,
    xmpp_errors,
)
from component.i18n import _, stanza_lang, translate, translate_form
from component.logs import get_logger
from extensions.forms import NS_DATA, Field, Form, ResultForm
from extensions.submitted_form import SubmittedForm
from extensions.xml import PayloadError
from storage.models import Company

log = get_logger(__name__)

NS_COMMANDS = "http://jabber.org/protocol/commands"
#: The hidden field that carries the signed stage (see the module docstring).
STAGE_VAR = "orgchat-stage"

Action = Literal["execute", "cancel", "prev", "next", "complete"]
StepAction = Literal["prev", "next", "complete"]
NoteType = Literal["info", "warn", "error"]

ACTIONS: frozenset[str] = frozenset(get_args(Action))
_CODES: dict[str, StepAction] = {"p": "prev", "n": "next", "c": "complete"}
_ORDER: tuple[StepAction, ...] = ("prev", "next", "complete")
STAGE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{16}$")
#: How far in the future an issue time may be (clocks of two processes).
CLOCK_SKEW_S = 60
_KEY_LABEL = b"orgchat XEP-0050 session ids v1"


class Target(enum.Enum):
    """The kind of address a command lives on."""

    DOMAIN = "domain"  #: the service, ``domain``
    COMPANY = "company"  #: ``slug@domain``
    CONVERSATION = "conversation"  #: ``slug+token@domain`` (agents' side)


@dataclasses.dataclass(frozen=True, slots=True)
class Context:
    """Who runs a command, where, and (while executing) in which session."""

    requester: JID  #: full JID
    target_jid: JID  #: bare JID the command was sent to
    target: Target
    company: Company | None  #: the company of a COMPANY or CONVERSATION target
    token: str | None  #: the conversation token of a CONVERSATION target
    lang: str | None  #: xml:lang of the request (XEP-0050 §3.7), if any
    session: str | None = None  #: the sessionid; None outside an execution (disco)
    action: Action = "execute"  #: the action being performed, ``execute`` resolved


@dataclasses.dataclass(frozen=True, slots=True)
class Next:
    """Another stage: ``status="executing"`` with a form to fill in."""

    stage: str
    form: Form
    actions: Sequence[StepAction] = ("complete",)
    #: The action of the client's default button; None: ``next`` if offered, else
    #: ``complete``.
    default: StepAction | None = None
    note: str | None = None
    note_type: NoteType = "info"

    def __post_init__(self) -> None:
        if not STAGE_RE.match(self.stage):
            raise ValueError(f"stage names match {STAGE_RE.pattern}: {self.stage!r}")
        if not self.actions or any(a not in _ORDER for a in self.actions):
            raise ValueError(f"actions are some of {_ORDER}: {self.actions!r}")
        if self.default_action not in self.actions:
            raise ValueError(f"default {self.default_action!r} is not among {self.actions!r}")

    @property
    def default_action(self) -> StepAction:
        if self.default is not None:
            return self.default
        return "next" if "next" in self.actions else "complete"


@dataclasses.dataclass(frozen=True, slots=True)
class Done:
    """The end: ``status="completed"``, with a note and/or a result form."""

    note: str | None = None
    form: ResultForm | None = None
    note_type: NoteType = "info"


Step = Next | Done


class Command(abc.ABC):
    """One ad-hoc command. Set ``node``, ``name`` and ``target`` on the class."""

    node: str  #: unique among the commands of one target kind
    name: str  #: shown in clients' command lists: an ``_()`` text
    target: Target

    def allowed(self, ctx: Context) -> bool:
        """Whether the requester may see and run the command here (every request)."""
        return True

    @abc.abstractmethod
    async def start(self, ctx: Context) -> Step:
        """The first step (a request without sessionid)."""

    async def submit(self, ctx: Context, stage: str, form: SubmittedForm) -> Step:
        """The step after ``stage``'s form was submitted (``ctx.action`` says how)."""
        raise NotImplementedError(f"{type(self).__name__} returned a stage but has no submit")

    async def back(self, ctx: Context, stage: str | None) -> Step:
        """The step before ``stage`` (None: the client did not send the form back).

        Override it to offer ``"prev"`` in :class:`Next` actions.
        """
        raise _command_error("bad-request", "bad-action", _("This command cannot go back"))

    @property
    def supports_back(self) -> bool:
        return type(self).back is not Command.back


class Forbidden(RoutingError):
    """XEP-0050 §4.4: the requester may not run (or see) this command."""

    condition = "forbidden"


def _command_error(condition: str, specific: str, text: str) -> XMPPError:
    """An XMPP error with XEP-0050's specific condition (§4.4)."""
    etype = "cancel" if condition == "not-allowed" else "modify"
    return XMPPError(
        cast(Any, condition),
        text,
        etype=cast(Any, etype),
        extension=specific,
        extension_ns=NS_COMMANDS,
    )


def _stage_action(action: str, stage: StageToken | None) -> str:
    """The action a submission takes at its stage; ``bad-action`` if the stage
    does not offer it.

    ``execute`` is the stage's default. A stage with one way forward takes
    either name for it (XEP-0050 §3.4 leaves clients free to send ``next``
    or ``complete``; Poezio submits every stage with ``next``, the last one
    too).
    """
    if action == "execute":
        if stage is None:
            raise PayloadError(_("Send the form back with its hidden fields"))
        return stage.default
    if stage is None:
        return action
    forward = [a for a in stage.actions if a != "prev"]
    if action in ("next", "complete") and action not in forward and len(forward) == 1:
        return forward[0]
    if action not in stage.actions:
        raise _command_error(
            "bad-request",
            "bad-action",
            _("This stage does not offer the action {action}", action=repr(action)),
        )
    return action


async def resolve_target(
    directory: Directory, jid: JID
) -> tuple[Target, Company | None, str | None]:
    """(kind, company, conversation token) of an address of the domain. Raises
    UnknownAddress, or Unavailable when the company must be read and cannot."""
    if not jid.user:
        return Target.DOMAIN, None, None
    parts = split_local(jid.user)
    company = await directory.find(parts[0]) if parts else None
    if parts is None or company is None:
        raise UnknownAddress(_("No such company"))
    slug_token = parts[1]
    return (Target.COMPANY if slug_token is None else Target.CONVERSATION), company, slug_token


# -- signed session ids and stages ------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class StageToken:
    stage: str
    actions: tuple[StepAction, ...]
    default: StepAction


class Sessions:
    """Issues and verifies self-contained XEP-0050 session ids and stage tokens."""

    def __init__(self, secret: str, ttl: float, clock: Callable[[], float] = time.time) -> None:
        self._key = hmac.new(secret.encode(), _KEY_LABEL, hashlib.sha256).digest()
        self.ttl = ttl
        self._clock = clock

    def new(self, requester: str, target: str, node: str) -> str:
        nonce = secrets.token_urlsafe(12)
        issued = str(int(self._clock()))
        return f"{nonce}.{issued}.{self._mac('sid', requester, target, node, nonce, issued)}"

    def check(self, sid: str, requester: str, target: str, node: str) -> None:
        """Raise the XEP-0050 error for a session id that is not valid here and now."""
        parts = sid.split(".")
        if (
            len(parts) != 3
            or not _NONCE_RE.match(parts[0])
            or not parts[1].isascii()
            or not parts[1].isdigit()
        ):
            raise _command_error("bad-request", "bad-sessionid", _("Unknown session"))
        nonce, issued, mac = parts
        expected = self._mac("sid", requester, target, node, nonce, issued)
        if not hmac.compare_digest(mac.encode(), expected.encode()):
            raise _command_error("bad-request", "bad-sessionid", _("Unknown session"))
        age = self._clock() - int(issued)
        if age < -CLOCK_SKEW_S:
            raise _command_error("bad-request", "bad-sessionid", _("Unknown session"))
        if age > self.ttl:
            raise _command_error(
                "not-allowed", "session-expired", _("This session has expired; start again")
            )

    def stage_token(self, sid: str, step: Next) -> str:
        codes = "".join(
            code.upper() if action == step.default_action else code
            for code, action in _CODES.items()
            if action in step.actions
        )
        return f"{step.stage}.{codes}.{self._mac('stage', sid, step.stage, codes)}"

    def read_stage(self, sid: str, token: str) -> StageToken:
        parts = token.split(".")
        if len(parts) == 3:
            stage, codes, mac = parts
            if hmac.compare_digest(mac.encode(), self._mac("stage", sid, stage, codes).encode()):
                actions = tuple(_CODES[c.lower()] for c in codes)
                default = next(_CODES[c.lower()] for c in codes if c.isupper())
                return StageToken(stage, actions, default)
        raise PayloadError(_("The form's hidden field orgchat-stage was altered"))

    def _mac(self, *parts: str) -> str:
        # Length-prefixed, so that no two different tuples give the same input.
        data = "".join(f"{len(p)}:{p}" for p in parts).encode()
        digest = hmac.new(self._key, data, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


# -- the registry and responder ---------------------------------------------------


class CommandRegistry:
    """The commands of the component and the XEP-0050 IQ handler that runs them."""

    def __init__(
        self,
        *,
        directory: Directory,
        secret: str,
        session_ttl: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self.sessions = Sessions(secret, session_ttl, clock)
        self._commands: dict[Target, dict[str, Command]] = {t: {} for t in Target}

    def add(self, command: Command) -> None:
        """Add a command (any time; the stream finds it at the next request)."""
        by_node = self._commands[command.target]
        if not command.node or not command.name:
            raise ValueError("a command needs a node and a name")
        if command.node in by_node or command.node == NS_COMMANDS:
            raise ValueError(f"node {command.node!r} is taken on {command.target.value} addresses")
        by_node[command.node] = command

    def has_commands(self, target: Target) -> bool:
        return bool(self._commands[target])

    def find(self, target: Target, node: str) -> Command | None:
        return self._commands[target].get(node)

    def items_for(self, ctx: Context) -> list[Command]:
        """The commands the requester may run at ``ctx.target_jid`` (disco#items)."""
        return [c for c in self._commands[ctx.target].values() if c.allowed(ctx)]

    async def context(self, iq: Iq) -> Context:
        """The context of an IQ to an address of the domain; raises if unknown."""
        to = iq["to"]
        target, company, token = await resolve_target(self.directory, to)
        return Context(
            requester=iq["from"],
            target_jid=JID(to.bare),
            target=target,
            company=company,
            token=token,
            lang=iq_lang(iq),
        )

    def register(self, xmpp: Any) -> None:
        xmpp.register_handler(
            CoroutineCallback(
                "orgchat commands",
                MatchXPath(f"{{{xmpp.default_ns}}}iq/{{{NS_COMMANDS}}}command"),
                cast(Any, self.handle),
            )
        )

    async def handle(self, iq: Iq) -> None:
        """The IQ callback: execute on ``set``; results and errors are not ours."""
        if iq["type"] == "set":
            await self.execute(iq)
        elif iq["type"] == "get":
            raise XMPPError(
                "bad-request",
                translate(_("Ad-hoc commands are executed with IQ type set"), iq_lang(iq)),
                etype="modify",
            )

    @xmpp_errors
    async def execute(self, iq: Iq) -> None:
        try:
            await self._execute(iq)
        except PayloadError as exc:
            etype, condition, text = condition_for(exc)
            raise XMPPError(
                cast(Any, condition),
                text or "",
                etype=cast(Any, etype),
                extension="bad-payload",
                extension_ns=NS_COMMANDS,
            ) from exc

    async def _execute(self, iq: Iq) -> None:
        el = iq.xml.find(f"{{{NS_COMMANDS}}}command")
        assert el is not None  # the handler's matcher
        node = el.get("node")
        if not node:
            raise BadRequest(_("The command has no node"))
        action = el.get("action") or "execute"
        if action not in ACTIONS:
            raise _command_error(
                "bad-request", "malformed-action", _("Unknown action {action}", action=repr(action))
            )
        if not self.directory.loaded.is_set():
            raise NotReady(_("Service starting, retry later"))
        base = await self.context(iq)
        command = self.find(base.target, node)
        if command is None:
            raise UnknownAddress(_("No such command"))
        requester, target = str(base.requester), str(base.target_jid)
        sid = el.get("sessionid")

        if sid is None:
            if action == "cancel":
                return _reply(iq, node, None, "canceled")
            if action != "execute":
                raise _command_error(
                    "bad-request", "bad-action", _("Start the command with action 'execute'")
                )
            sid = self.sessions.new(requester, target, node)
            ctx = dataclasses.replace(base, session=sid, action="execute")
            self._check_allowed(command, ctx)
            step = await command.start(ctx)
            return self._send_step(iq, command, sid, step, ctx.lang)

        self.sessions.check(sid, requester, target, node)
        if action == "cancel":
            log.debug("command.canceled", node=node)
            return _reply(iq, node, sid, "canceled")
        form = SubmittedForm.parse(el.find(f"{{{NS_DATA}}}x"))
        tokens = form.values(STAGE_VAR)
        stage = self.sessions.read_stage(sid, tokens[0]) if len(tokens) == 1 else None
        if len(tokens) > 1:
            raise PayloadError(_("The form's hidden field orgchat-stage was altered"))
        action = _stage_action(action, stage)
        ctx = dataclasses.replace(base, session=sid, action=cast(Action, action))
        self._check_allowed(command, ctx)
        if action == "prev":
            if not command.supports_back:
                raise _command_error("bad-request", "bad-action", _("This command cannot go back"))
            step = await command.back(ctx, stage.stage if stage else None)
        else:
            if stage is None:
                raise PayloadError(_("Send the form back with its hidden fields"))
            step = await command.submit(ctx, stage.stage, form.without(STAGE_VAR))
        self._send_step(iq, command, sid, step, ctx.lang)

    @staticmethod
    def _check_allowed(command: Command, ctx: Context) -> None:
        if not command.allowed(ctx):
            raise Forbidden(_("You may not run this command here"))

    def _send_step(self, iq: Iq, command: Command, sid: str, step: Step, lang: str | None) -> None:
        """Send ``step``, its texts translated into ``lang`` (the request's)."""
        note = translate(step.note, lang) if step.note else None
        if isinstance(step, Done):
            log.debug("command.completed", node=command.node)
            result = translate_form(step.form, lang) if step.form is not None else None
            payload = [result.element()] if result is not None else []
            # The result also as text in the note: several clients show the
            # note and no result form (tables least of all).
            summary = result.summary(more=_more(lang)) if result is not None else ""
            note = "\n\n".join(part for part in (note, summary) if part)
            return _reply(iq, command.node, sid, "completed", payload, note, step.note_type)
        if "prev" in step.actions and not command.supports_back:
            raise RuntimeError(f"{type(command).__name__} offers 'prev' but has no back()")
        actions = Element(f"{{{NS_COMMANDS}}}actions", execute=step.default_action)
        for action in _ORDER:
            if action in step.actions:
                SubElement(actions, f"{{{NS_COMMANDS}}}{action}")
        form = translate_form(step.form, lang).element(
            extra=[Field.hidden(STAGE_VAR, self.sessions.stage_token(sid, step))]
        )
        return _reply(iq, command.node, sid, "executing", [actions, form], note, step.note_type)


def iq_lang(iq: Iq) -> str | None:
    """The language of a command request (XEP-0050 §3.7): the IQ's, else the command's."""
    return stanza_lang(iq.xml, f"{{{NS_COMMANDS}}}command")


def _more(lang: str | None) -> Callable[[int], str]:
    return lambda count: translate(_("… and {count} more", count=count), lang)


#: What a "%" becomes in a command's note (see _reply).
NOTE_PERCENT = "\uff05"


def _reply(
    iq: Iq,
    node: str,
    sid: str | None,
    status: str,
    payload: Sequence[Element] = (),
    note: str | None = None,
    note_type: NoteType = "info",
) -> None:
    out = Element(f"{{{NS_COMMANDS}}}command", node=node, status=status)
    if sid is not None:
        out.set("sessionid", sid)
    children = list(payload)
    if note:
        note_el = Element(f"{{{NS_COMMANDS}}}note", type=note_type)
        # Profanity (0.13) prints a note as a printf format: a "%" in it (a
        # subject, a company's name) garbles the text or crashes the client.
        # A full-width percent sign reads the same.
        note_el.text = note.replace("%", NOTE_PERCENT)
        # <actions/> first, then the note, then the form (payload order is precedence).
        children.insert(1 if children and children[0].tag.endswith("}actions") else 0, note_el)
    for child in children:
        out.append(child)
    reply = iq.reply(clear=True)
    reply.append(out)
    reply.send()
