"""XEP-0050 ad-hoc commands without sockets: IQs in, replies out.

Two small commands defined here drive the framework: a two-stage ``order`` on
company addresses (with ``prev``) and a single-stage ``hours`` on the domain.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from xml.etree import ElementTree as ET

import pytest
import pytest_asyncio
from slixmpp.stanza import Iq

from component.directory import Directory
from component.errors import NotAcceptable, condition_for
from component.routing.commands import (
    NS_COMMANDS,
    STAGE_VAR,
    Command,
    CommandRegistry,
    Context,
    Done,
    Next,
    Step,
    Target,
)
from component.routing.iq import IqHandlers
from component.search import DirectorySearch
from extensions.forms import NS_DATA, Column, Field, Form, Option, ResultForm, Table
from extensions.submitted_form import SubmittedForm
from extensions.xml import PayloadError
from storage.errors import Unavailable
from tests.unit.fakes import FakeConversations, FakeDirectorySearchStore, FakeDirectoryStore

DOMAIN = "biz.localhost"
NS = "jabber:component:accept"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
ANNA = "anna@localhost/phone"
PIZZA = f"pizza@{DOMAIN}"
SIZES = ["S", "M", "L"]
TTL = 600.0


# -- the two test commands ----------------------------------------------------------


class Order(Command):
    """Two stages: choose a size, then confirm (with prev back to the first)."""

    node = "order"
    name = "Order a pizza"
    target = Target.COMPANY

    def __init__(self) -> None:
        self.banned: set[str] = set()
        self.orders: list[tuple[str | None, str, str]] = []

    def allowed(self, ctx: Context) -> bool:
        return str(ctx.requester.bare) not in self.banned

    async def start(self, ctx: Context) -> Step:
        return Next(
            "size",
            Form(
                title="Order",
                instructions="Choose a size.\nEvery pizza is round.",
                fields=[
                    Field.list_single(
                        "size",
                        "Size",
                        [Option("S", "Small"), Option("M", "Medium"), Option("L", "Large")],
                        required=True,
                        default="M",
                        desc="Diameter",
                    ),
                    Field.text_single("name", "Name on the box"),
                ],
            ),
            actions=("next",),
        )

    async def submit(self, ctx: Context, stage: str, form: SubmittedForm) -> Step:
        assert ctx.company is not None
        if stage == "size":
            size = form.choice("size", SIZES, label="Size")
            return Next(
                "confirm",
                Form(
                    fields=[
                        Field.fixed(f"A {size} pizza from {ctx.company.name}"),
                        Field.boolean("sure", "Order it?", default=True),
                        Field.hidden("size", size),
                    ]
                ),
                actions=("prev", "complete"),
                note="Almost done",
            )
        size = form.choice("size", SIZES)  # echoed in a hidden field: checked again
        if not form.boolean("sure", label="Order it?"):
            return Done(note="Nothing ordered", note_type="warn")
        self.orders.append((ctx.session, ctx.action, size))
        return Done(
            note="Ordered",
            form=ResultForm(
                title="Your order",
                table=Table(
                    columns=[Column("size", "Size"), Column("company", "Company")],
                    rows=[{"size": size, "company": ctx.company.name}],
                ),
            ),
        )

    async def back(self, ctx: Context, stage: str | None) -> Step:
        return await self.start(ctx)


class Hours(Command):
    """One stage on the domain: a result at once."""

    node = "hours"
    name = "Opening hours"
    target = Target.DOMAIN

    def __init__(self) -> None:
        self.fail: Exception | None = None

    async def start(self, ctx: Context) -> Step:
        if self.fail is not None:
            raise self.fail
        return Done(
            note="Times are local",
            form=ResultForm(fields=[Field.text_single("hours", "Hours", default="Mo-Fr 09-18")]),
        )


class Desk(Command):
    """Listed for the company's agents only."""

    node = "desk"
    name = "Agent desk"
    target = Target.COMPANY

    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    def allowed(self, ctx: Context) -> bool:
        assert ctx.company is not None
        return self.directory.is_agent(ctx.company.id, str(ctx.requester.bare))

    async def start(self, ctx: Context) -> Step:
        return Done(note="Nothing to do")


# -- the environment ---------------------------------------------------------------


class _Stream:
    default_ns = NS


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclasses.dataclass
class Env:
    registry: CommandRegistry
    iq_handlers: IqHandlers
    order: Order
    hours: Hours
    clock: Clock
    sent: list[ET.Element]

    async def run(self, to: str, payload: str, frm: str = ANNA, itype: str = "set") -> ET.Element:
        """Hand one IQ to the command handler; return the reply (result or error)."""
        return await self._call(self.registry.handle, to, payload, frm, itype)

    async def disco(self, to: str, payload: str, frm: str = ANNA) -> ET.Element:
        handler = (
            self.iq_handlers.disco_info if DISCO_INFO in payload else self.iq_handlers.disco_items
        )
        return await self._call(handler, to, payload, frm, "get")

    async def _call(
        self, handler: object, to: str, payload: str, frm: str, itype: str
    ) -> ET.Element:
        iq = Iq(
            _Stream(),
            ET.fromstring(
                f'<iq xmlns="{NS}" type="{itype}" id="q1" from="{frm}" to="{to}">{payload}</iq>'
            ),
        )
        self.sent.clear()
        try:
            await handler(iq)  # type: ignore[operator]
        except Exception as exc:  # what slixmpp's CoroutineCallback does
            iq.exception(exc)
        assert len(self.sent) == 1, self.sent
        return self.sent[0]


@pytest_asyncio.fixture
async def env(monkeypatch: pytest.MonkeyPatch) -> Env:
    sent: list[ET.Element] = []
    monkeypatch.setattr(Iq, "send", lambda self, *a, **k: sent.append(self.xml))
    store = FakeDirectoryStore()
    store.add("pizza", "Pizza Napoli", ["mario@localhost"])
    store.add("bikes", "Bike Shop", ["bob@localhost"])
    directory = Directory(store)
    await directory.reload(None)
    clock = Clock()
    registry = CommandRegistry(directory=directory, secret="s3cret", session_ttl=TTL, clock=clock)
    order, hours = Order(), Hours()
    for command in (order, hours, Desk(directory)):
        registry.add(command)
    handlers = IqHandlers(
        domain=DOMAIN,
        directory=directory,
        search=DirectorySearch(FakeDirectorySearchStore(store.companies), directory),
        conversations=FakeConversations(),
        commands=registry,
    )
    return Env(registry, handlers, order, hours, clock, sent)


# -- stanza helpers ------------------------------------------------------------------


def command(node: str, *, action: str | None = None, sid: str | None = None, form: str = "") -> str:
    attrs = f' node="{node}"'
    if action is not None:
        attrs += f' action="{action}"'
    if sid is not None:
        attrs += f' sessionid="{sid}"'
    return f'<command xmlns="{NS_COMMANDS}"{attrs}>{form}</command>'


def cmd(reply: ET.Element) -> ET.Element:
    assert reply.get("type") == "result", ET.tostring(reply, encoding="unicode")
    el = reply.find(f"{{{NS_COMMANDS}}}command")
    assert el is not None
    return el


def error(reply: ET.Element) -> tuple[str | None, str, str | None, str | None]:
    """(type, defined condition, XEP-0050 specific condition, text) of an error reply."""
    assert reply.get("type") == "error", ET.tostring(reply, encoding="unicode")
    # slixmpp keeps its <error/> in jabber:client until it serialises the stanza.
    err = next((c for c in reply if c.tag.endswith("}error")), None)
    assert err is not None
    conditions = [
        c for c in err if c.tag.startswith(f"{{{STANZAS}}}") and not c.tag.endswith("}text")
    ]
    specific = [c.tag.split("}")[1] for c in err if c.tag.startswith(f"{{{NS_COMMANDS}}}")]
    assert len(conditions) == 1
    return (
        err.get("type"),
        conditions[0].tag.split("}")[1],
        specific[0] if specific else None,
        err.findtext(f"{{{STANZAS}}}text"),
    )


def form_of(el: ET.Element) -> ET.Element:
    x = el.find(f"{{{NS_DATA}}}x")
    assert x is not None
    return x


def fields(x: ET.Element) -> dict[str, ET.Element]:
    return {f.get("var") or "": f for f in x.findall(f"{{{NS_DATA}}}field")}


def submit(values: Mapping[str, str | Sequence[str]], ftype: str = "submit") -> str:
    out = [f'<x xmlns="{NS_DATA}" type="{ftype}">']
    for var, value in values.items():
        out.append(f'<field var="{var}">')
        for v in (value,) if isinstance(value, str) else value:
            out.append(f"<value>{v}</value>")
        out.append("</field>")
    out.append("</x>")
    return "".join(out)


def echo(el: ET.Element, **values: str) -> str:
    """What a client submits: the form's hidden fields as sent, plus ``values``."""
    hidden = {
        var: [v.text or "" for v in f.findall(f"{{{NS_DATA}}}value")]
        for var, f in fields(form_of(el)).items()
        if f.get("type") == "hidden"
    }
    return submit({**hidden, **values})


async def start_order(env: Env, frm: str = ANNA) -> ET.Element:
    return cmd(await env.run(PIZZA, command("order", action="execute"), frm))


# -- execution ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_execute_answers_the_first_form_with_a_signed_session(env: Env) -> None:
    el = await start_order(env)
    assert el.get("status") == "executing" and el.get("node") == "order"
    sid = el.get("sessionid")
    assert sid and len(sid.split(".")) == 3
    actions = el.find(f"{{{NS_COMMANDS}}}actions")
    assert actions is not None and actions.get("execute") == "next"
    assert [a.tag.split("}")[1] for a in actions] == ["next"]
    x = form_of(el)
    assert x.get("type") == "form" and x.findtext(f"{{{NS_DATA}}}title") == "Order"
    assert [i.text for i in x.findall(f"{{{NS_DATA}}}instructions")] == [
        "Choose a size.",
        "Every pizza is round.",
    ]
    size = fields(x)["size"]
    assert size.get("type") == "list-single" and size.get("label") == "Size"
    assert size.find(f"{{{NS_DATA}}}required") is not None
    assert size.findtext(f"{{{NS_DATA}}}desc") == "Diameter"
    assert size.findtext(f"{{{NS_DATA}}}value") == "M"
    options = [
        (o.get("label"), o.findtext(f"{{{NS_DATA}}}value"))
        for o in size.findall(f"{{{NS_DATA}}}option")
    ]
    assert options == [("Small", "S"), ("Medium", "M"), ("Large", "L")]
    stage = fields(x)[STAGE_VAR]
    assert stage.get("type") == "hidden"
    # A request without action is an execute too (XEP-0050 §2.4.1).
    assert cmd(await env.run(PIZZA, command("order"))).get("status") == "executing"


@pytest.mark.asyncio
async def test_next_then_complete_keeps_the_session_id_and_completes(env: Env) -> None:
    first = await start_order(env)
    sid = first.get("sessionid")
    second = cmd(
        await env.run(PIZZA, command("order", action="next", sid=sid, form=echo(first, size="L")))
    )
    assert second.get("status") == "executing" and second.get("sessionid") == sid
    actions = second.find(f"{{{NS_COMMANDS}}}actions")
    assert actions is not None and actions.get("execute") == "complete"
    assert [a.tag.split("}")[1] for a in actions] == ["prev", "complete"]
    note = second.find(f"{{{NS_COMMANDS}}}note")
    assert note is not None and note.get("type") == "info" and note.text == "Almost done"
    x = fields(form_of(second))
    assert x["size"].findtext(f"{{{NS_DATA}}}value") == "L"
    assert x["sure"].findtext(f"{{{NS_DATA}}}value") == "true"

    done = cmd(
        await env.run(
            PIZZA, command("order", action="complete", sid=sid, form=echo(second, sure="1"))
        )
    )
    assert done.get("status") == "completed" and done.get("sessionid") == sid
    assert done.find(f"{{{NS_COMMANDS}}}actions") is None
    note = done.find(f"{{{NS_COMMANDS}}}note")
    # The result also as text, for clients that show no result form.
    assert note is not None and note.get("type") == "info"
    assert note.text == "Ordered\n\nSize: L; Company: Pizza Napoli"
    result = form_of(done)
    assert result.get("type") == "result"
    reported = result.find(f"{{{NS_DATA}}}reported")
    assert reported is not None
    assert [(f.get("var"), f.get("label")) for f in reported] == [
        ("size", "Size"),
        ("company", "Company"),
    ]
    items = result.findall(f"{{{NS_DATA}}}item")
    assert [[f.findtext(f"{{{NS_DATA}}}value") for f in item] for item in items] == [
        ["L", "Pizza Napoli"]
    ]
    assert env.order.orders == [(sid, "complete", "L")]


@pytest.mark.asyncio
async def test_execute_within_a_session_is_the_stage_default(env: Env) -> None:
    first = await start_order(env)
    sid = first.get("sessionid")
    second = cmd(
        await env.run(
            PIZZA, command("order", action="execute", sid=sid, form=echo(first, size="S"))
        )
    )
    assert second.get("status") == "executing"
    done = cmd(await env.run(PIZZA, command("order", sid=sid, form=echo(second, sure="false"))))
    assert done.get("status") == "completed"
    note = done.find(f"{{{NS_COMMANDS}}}note")
    assert note is not None and note.get("type") == "warn" and note.text == "Nothing ordered"
    assert env.order.orders == []


@pytest.mark.asyncio
async def test_a_single_stage_command_completes_at_once(env: Env) -> None:
    done = cmd(await env.run(DOMAIN, command("hours")))
    assert done.get("status") == "completed" and done.get("sessionid")
    assert done.findtext(f"{{{NS_COMMANDS}}}note") == "Times are local\n\nHours: Mo-Fr 09-18"
    hours = fields(form_of(done))["hours"]
    assert hours.findtext(f"{{{NS_DATA}}}value") == "Mo-Fr 09-18"


@pytest.mark.asyncio
async def test_cancel_ends_the_session(env: Env) -> None:
    first = await start_order(env)
    sid = first.get("sessionid")
    canceled = cmd(await env.run(PIZZA, command("order", action="cancel", sid=sid)))
    assert canceled.get("status") == "canceled" and canceled.get("sessionid") == sid
    assert list(canceled) == []
    # Nothing started yet: canceled all the same.
    assert cmd(await env.run(PIZZA, command("order", action="cancel"))).get("status") == "canceled"


# -- sessions ----------------------------------------------------------------------


def tamper(sid: str) -> str:
    nonce, issued, mac = sid.split(".")
    return f"{nonce}.{int(issued) + 1}.{mac}"


@pytest.mark.asyncio
async def test_forged_or_foreign_session_ids_are_bad_sessionid(env: Env) -> None:
    first = await start_order(env)
    sid = first.get("sessionid")
    assert sid is not None
    form = echo(first, size="S")
    bad = ("modify", "bad-request", "bad-sessionid", "Unknown session")
    for forged in (tamper(sid), "x", "a.b.c", sid + "x", "list:20020923T213616Z-700"):
        assert (
            error(await env.run(PIZZA, command("order", action="next", sid=forged, form=form)))
            == bad
        )
    # Another resource of the same account, another account.
    for other in ("anna@localhost/laptop", "bob@localhost/phone"):
        reply = await env.run(PIZZA, command("order", action="next", sid=sid, form=form), frm=other)
        assert error(reply) == bad
    # Another address, another command.
    reply = await env.run(f"bikes@{DOMAIN}", command("order", action="next", sid=sid, form=form))
    assert error(reply) == bad
    reply = await env.run(
        PIZZA, command("desk", action="next", sid=sid, form=form), frm="mario@localhost/x"
    )
    assert error(reply) == bad
    # The rightful requester still goes on.
    assert (
        cmd(await env.run(PIZZA, command("order", sid=sid, form=form))).get("status") == "executing"
    )


@pytest.mark.asyncio
async def test_sessions_expire(env: Env) -> None:
    first = await start_order(env)
    sid = first.get("sessionid")
    env.clock.now += TTL - 1
    second = cmd(await env.run(PIZZA, command("order", sid=sid, form=echo(first, size="S"))))
    env.clock.now += 2
    expired = ("cancel", "not-allowed", "session-expired", "This session has expired; start again")
    assert error(await env.run(PIZZA, command("order", sid=sid, form=echo(second)))) == expired
    assert error(await env.run(PIZZA, command("order", action="cancel", sid=sid))) == expired


@pytest.mark.asyncio
async def test_another_process_with_the_same_secret_continues_the_session(env: Env) -> None:
    first = await start_order(env)
    sid = first.get("sessionid")
    other = CommandRegistry(
        directory=env.registry.directory,
        secret="s3cret",
        session_ttl=TTL,
        clock=env.clock,
    )
    other.add(env.order)
    env.registry = other
    second = cmd(await env.run(PIZZA, command("order", sid=sid, form=echo(first, size="S"))))
    assert second.get("sessionid") == sid
    stranger = CommandRegistry(
        directory=env.registry.directory,
        secret="other",
        session_ttl=TTL,
        clock=env.clock,
    )
    stranger.add(env.order)
    env.registry = stranger
    reply = await env.run(PIZZA, command("order", sid=sid, form=echo(second)))
    assert error(reply)[2] == "bad-sessionid"


@pytest.mark.asyncio
async def test_the_stage_field_cannot_be_altered_or_left_out(env: Env) -> None:
    first = await start_order(env)
    sid = first.get("sessionid")
    token = fields(form_of(first))[STAGE_VAR].findtext(f"{{{NS_DATA}}}value")
    assert token is not None
    stage, codes, mac = token.split(".")
    for forged in (f"confirm.{codes}.{mac}", f"{stage}.Nc.{mac}", "size"):
        reply = await env.run(
            PIZZA, command("order", sid=sid, form=submit({STAGE_VAR: forged, "size": "S"}))
        )
        assert error(reply) == (
            "modify",
            "bad-request",
            "bad-payload",
            "The form's hidden field orgchat-stage was altered",
        )
    for action in ("next", "complete", "execute"):
        reply = await env.run(
            PIZZA, command("order", action=action, sid=sid, form=submit({"size": "S"}))
        )
        assert error(reply) == (
            "modify",
            "bad-request",
            "bad-payload",
            "Send the form back with its hidden fields",
        )
    # A stage token of another session is refused too.
    other = await start_order(env)
    reply = await env.run(
        PIZZA, command("order", sid=other.get("sessionid"), form=echo(first, size="S"))
    )
    assert error(reply)[2] == "bad-payload"


# -- actions -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_prev_goes_back_when_the_command_supports_it(env: Env) -> None:
    first = await start_order(env)
    sid = first.get("sessionid")
    second = cmd(await env.run(PIZZA, command("order", sid=sid, form=echo(first, size="L"))))
    # With the form (stage known) and without it (most clients).
    for form in (echo(second), ""):
        back = cmd(await env.run(PIZZA, command("order", action="prev", sid=sid, form=form)))
        assert back.get("status") == "executing" and back.get("sessionid") == sid
        assert "size" in fields(form_of(back))
    # The first stage offers no prev.
    reply = await env.run(PIZZA, command("order", action="prev", sid=sid, form=echo(first)))
    assert error(reply)[1:3] == ("bad-request", "bad-action")


@pytest.mark.asyncio
async def test_prev_is_a_bad_action_for_commands_without_back(env: Env) -> None:
    done = cmd(await env.run(DOMAIN, command("hours")))
    reply = await env.run(DOMAIN, command("hours", action="prev", sid=done.get("sessionid")))
    assert error(reply) == ("modify", "bad-request", "bad-action", "This command cannot go back")


@pytest.mark.asyncio
async def test_actions_the_stage_does_not_offer_are_bad_actions(env: Env) -> None:
    first = await start_order(env)
    sid = first.get("sessionid")
    reply = await env.run(
        PIZZA, command("order", action="prev", sid=sid, form=echo(first, size="S"))
    )
    assert error(reply)[1:] == (
        "bad-request",
        "bad-action",
        "This stage does not offer the action 'prev'",
    )
    # Continuing without a session.
    for action in ("next", "complete", "prev"):
        reply = await env.run(PIZZA, command("order", action=action, form=echo(first, size="S")))
        assert error(reply)[1:3] == ("bad-request", "bad-action")


@pytest.mark.asyncio
async def test_a_stage_with_one_way_forward_takes_either_name_for_it(env: Env) -> None:
    """XEP-0050: "next" on the last stage (what Poezio sends) completes it, and
    "complete" on a stage that only goes on goes on."""
    first = await start_order(env)
    sid = first.get("sessionid")
    second = cmd(
        await env.run(
            PIZZA, command("order", action="complete", sid=sid, form=echo(first, size="S"))
        )
    )
    assert second.get("status") == "executing"
    done = cmd(
        await env.run(PIZZA, command("order", action="next", sid=sid, form=echo(second, sure="1")))
    )
    assert done.get("status") == "completed"
    assert env.order.orders == [(sid, "complete", "S")]


@pytest.mark.asyncio
async def test_malformed_action(env: Env) -> None:
    reply = await env.run(PIZZA, command("order", action="jump"))
    assert error(reply) == ("modify", "bad-request", "malformed-action", "Unknown action 'jump'")


# -- addresses, permissions, errors -----------------------------------------------------


@pytest.mark.asyncio
async def test_unknown_nodes_and_addresses_are_item_not_found(env: Env) -> None:
    for to, node in (
        (PIZZA, "nope"),
        (DOMAIN, "order"),  # a company command, sent to the domain
        (PIZZA, "hours"),
        (f"pizza+abcdefghij@{DOMAIN}", "order"),  # no conversation commands
        (f"nobody@{DOMAIN}", "order"),
        (f"Bad+Address@{DOMAIN}", "order"),
    ):
        assert error(await env.run(to, command(node)))[:3] == ("cancel", "item-not-found", None), (
            to,
            node,
        )


@pytest.mark.asyncio
async def test_not_allowed_is_forbidden_on_every_request(env: Env) -> None:
    env.order.banned.add("eve@localhost")
    reply = await env.run(PIZZA, command("order"), frm="eve@localhost/x")
    assert error(reply) == ("cancel", "forbidden", None, "You may not run this command here")
    first = await start_order(env)
    env.order.banned.add("anna@localhost")
    reply = await env.run(
        PIZZA, command("order", sid=first.get("sessionid"), form=echo(first, size="S"))
    )
    assert error(reply)[1] == "forbidden"


@pytest.mark.asyncio
async def test_missing_or_wrong_values_are_bad_payload_with_a_text(env: Env) -> None:
    first = await start_order(env)
    sid = first.get("sessionid")
    cases = {
        echo(first): "'Size' is required",
        echo(first, size=""): "'Size' is required",
        echo(first, size="XL"): "'Size': 'XL' is not one of the choices",
    }
    for form, text in cases.items():
        reply = await env.run(PIZZA, command("order", sid=sid, form=form))
        assert error(reply) == ("modify", "bad-request", "bad-payload", text)
    second = cmd(await env.run(PIZZA, command("order", sid=sid, form=echo(first, size="S"))))
    reply = await env.run(PIZZA, command("order", sid=sid, form=echo(second, sure="maybe")))
    assert error(reply)[3] == "'Order it?': 'maybe' is not a boolean"
    # The hidden size is checked again, whatever the client sent back.
    reply = await env.run(PIZZA, command("order", sid=sid, form=echo(second, size="XXL", sure="1")))
    assert error(reply)[3] == "Field 'size': 'XXL' is not one of the choices"
    reply = await env.run(
        PIZZA,
        command(
            "order", sid=sid, form=echo(first, size="S").replace('type="submit"', 'type="form"')
        ),
    )
    assert error(reply)[2] == "bad-payload"
    assert env.order.orders == []


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (NotAcceptable("Closed today"), ("modify", "not-acceptable", None, "Closed today")),
        (
            Unavailable("db down"),
            ("wait", "internal-server-error", None, "Service temporarily unavailable, retry later"),
        ),
        (RuntimeError("bug"), ("wait", "internal-server-error", None, "Internal error")),
    ],
)
@pytest.mark.asyncio
async def test_errors_raised_by_commands_become_xmpp_errors(
    env: Env, exc: Exception, expected: tuple[str, str, None, str]
) -> None:
    env.hours.fail = exc
    assert error(await env.run(DOMAIN, command("hours"))) == expected


@pytest.mark.asyncio
async def test_only_iq_set_executes(env: Env) -> None:
    reply = await env.run(DOMAIN, command("hours"), itype="get")
    assert error(reply)[1] == "bad-request"
    env.sent.clear()
    iq = Iq(
        _Stream(),
        ET.fromstring(
            f'<iq xmlns="{NS}" type="result" id="r" from="{ANNA}" to="{DOMAIN}">'
            f"{command('hours')}</iq>"
        ),
    )
    await env.registry.handle(iq)
    assert env.sent == []


@pytest.mark.asyncio
async def test_directory_not_loaded_is_wait(env: Env) -> None:
    env.registry.directory.loaded.clear()
    assert error(await env.run(DOMAIN, command("hours")))[:2] == ("wait", "internal-server-error")


# -- discovery -----------------------------------------------------------------------


def disco_features(reply: ET.Element) -> set[str]:
    query = reply.find(f"{{{DISCO_INFO}}}query")
    assert query is not None, ET.tostring(reply, encoding="unicode")
    return {f.get("var") or "" for f in query.findall(f"{{{DISCO_INFO}}}feature")}


def items(reply: ET.Element) -> list[tuple[str | None, str | None, str | None]]:
    query = reply.find(f"{{{DISCO_ITEMS}}}query")
    assert query is not None, ET.tostring(reply, encoding="unicode")
    assert query.get("node") == NS_COMMANDS
    return [(i.get("jid"), i.get("node"), i.get("name")) for i in query]


@pytest.mark.asyncio
async def test_disco_info_advertises_commands_where_there_are_some(env: Env) -> None:
    assert NS_COMMANDS in disco_features(await env.disco(DOMAIN, f'<query xmlns="{DISCO_INFO}"/>'))
    assert NS_COMMANDS in disco_features(await env.disco(PIZZA, f'<query xmlns="{DISCO_INFO}"/>'))
    empty = CommandRegistry(directory=env.registry.directory, secret="s", session_ttl=TTL)
    env.iq_handlers.commands = empty
    assert NS_COMMANDS not in disco_features(
        await env.disco(DOMAIN, f'<query xmlns="{DISCO_INFO}"/>')
    )
    assert NS_COMMANDS not in disco_features(
        await env.disco(PIZZA, f'<query xmlns="{DISCO_INFO}"/>')
    )


@pytest.mark.asyncio
async def test_disco_items_list_what_the_requester_may_run(env: Env) -> None:
    query = f'<query xmlns="{DISCO_ITEMS}" node="{NS_COMMANDS}"/>'
    assert items(await env.disco(DOMAIN, query)) == [(DOMAIN, "hours", "Opening hours")]
    assert items(await env.disco(PIZZA, query)) == [(PIZZA, "order", "Order a pizza")]
    assert items(await env.disco(PIZZA, query, frm="mario@localhost/desk")) == [
        (PIZZA, "order", "Order a pizza"),
        (PIZZA, "desk", "Agent desk"),
    ]
    # Bob is an agent of another company.
    assert items(await env.disco(PIZZA, query, frm="bob@localhost/desk")) == [
        (PIZZA, "order", "Order a pizza")
    ]
    env.order.banned.add("anna@localhost")
    assert items(await env.disco(PIZZA, query)) == []
    assert items(await env.disco(f"pizza+abcdefghij@{DOMAIN}", query)) == []
    reply = await env.disco(f"nobody@{DOMAIN}", query)
    assert error(reply)[1] == "item-not-found"
    reply = await env.disco(PIZZA, f'<query xmlns="{DISCO_ITEMS}" node="other"/>')
    assert error(reply)[1] == "item-not-found"


@pytest.mark.asyncio
async def test_disco_info_of_a_command_node(env: Env) -> None:
    reply = await env.disco(PIZZA, f'<query xmlns="{DISCO_INFO}" node="order"/>')
    query = reply.find(f"{{{DISCO_INFO}}}query")
    assert query is not None and query.get("node") == "order"
    identity = query.find(f"{{{DISCO_INFO}}}identity")
    assert identity is not None
    assert (identity.get("category"), identity.get("type"), identity.get("name")) == (
        "automation",
        "command-node",
        "Order a pizza",
    )
    assert disco_features(reply) == {NS_COMMANDS, NS_DATA}
    # The command list node itself.
    reply = await env.disco(DOMAIN, f'<query xmlns="{DISCO_INFO}" node="{NS_COMMANDS}"/>')
    identity = reply.find(f"{{{DISCO_INFO}}}query/{{{DISCO_INFO}}}identity")
    assert identity is not None and identity.get("type") == "command-list"
    # Not for Anna; not here; nothing like it.
    assert (
        error(await env.disco(PIZZA, f'<query xmlns="{DISCO_INFO}" node="desk"/>'))[1]
        == "forbidden"
    )
    assert (
        error(await env.disco(DOMAIN, f'<query xmlns="{DISCO_INFO}" node="order"/>'))[1]
        == "item-not-found"
    )
    assert (
        error(await env.disco(PIZZA, f'<query xmlns="{DISCO_INFO}" node="nope"/>'))[1]
        == "item-not-found"
    )
    reply = await env.disco(
        f"pizza+abcdefghij@{DOMAIN}", f'<query xmlns="{DISCO_INFO}" node="{NS_COMMANDS}"/>'
    )
    assert error(reply)[1] == "item-not-found"


# -- the registry and the forms on their own -------------------------------------------------


def test_nodes_are_unique_per_target_kind(env: Env) -> None:
    with pytest.raises(ValueError, match="taken"):
        env.registry.add(Order())

    class OtherOrder(Order):
        target = Target.DOMAIN

    env.registry.add(OtherOrder())  # the same node on another kind of address


def test_steps_and_forms_refuse_authoring_mistakes() -> None:
    form = Form(fields=[Field.text_single("a")])
    for bad in (
        lambda: Next("two words", form),
        lambda: Next("s", form, actions=()),
        lambda: Next("s", form, actions=("next",), default="complete"),
        lambda: Field.list_single("x", "X", []),
        lambda: Field.list_single("x", "X", ["a"], default="b"),
        lambda: Field.list_multi("x", "X", ["a", "a"]),
        lambda: Field.of("text-single", "x", options=(Option("a"),)),
        lambda: Field.of("text-single", None),
        lambda: Field.fixed("two\nlines"),
        lambda: Field.of("list-single", "x", values=("a", "b"), options=(Option("a"), Option("b"))),
        lambda: Form(fields=[Field.text_single("a"), Field.boolean("a")]),
        lambda: Table(columns=[Column("a", "A")], rows=[{"b": "x"}]),
        lambda: Table(columns=[], rows=[]),
    ):
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(ValueError):
        form.element(extra=[Field.hidden("a", "x")])


def test_every_field_type_renders() -> None:
    x = Form(
        fields=[
            Field.text_single("ts", "Text", required=True, default="v"),
            Field.text_multi("tm", "Lines", default="one\ntwo"),
            Field.list_single("ls", "One", ["a", Option("b", "B")]),
            Field.list_multi("lm", "Many", ["a", "b", "c"], default=["a", "c"]),
            Field.jid_single("js", "JID", default="anna@localhost"),
            Field.jid_multi("jm", "JIDs", default=["a@x", "b@x"]),
            Field.boolean("b", "Yes?", default=False),
            Field.hidden("h", ["1", "2"]),
            Field.fixed("Some text"),
        ]
    ).element()
    got = {
        (f.get("var"), f.get("type")): [v.text for v in f.findall(f"{{{NS_DATA}}}value")]
        for f in x.findall(f"{{{NS_DATA}}}field")
    }
    assert got == {
        ("ts", "text-single"): ["v"],
        ("tm", "text-multi"): ["one", "two"],
        ("ls", "list-single"): [],
        ("lm", "list-multi"): ["a", "c"],
        ("js", "jid-single"): ["anna@localhost"],
        ("jm", "jid-multi"): ["a@x", "b@x"],
        ("b", "boolean"): ["false"],
        ("h", "hidden"): ["1", "2"],
        (None, "fixed"): ["Some text"],
    }


def test_result_tables_have_every_column_in_every_item() -> None:
    x = ResultForm(
        table=Table(
            columns=[Column("a", "A"), Column("b", "B", "jid-multi")],
            rows=[{"a": "1"}, {"b": ["x@y", "z@y"]}],
        )
    ).element()
    items_ = x.findall(f"{{{NS_DATA}}}item")
    assert [[(f.get("var"), [v.text for v in f]) for f in item] for item in items_] == [
        [("a", ["1"]), ("b", [])],
        [("a", []), ("b", ["x@y", "z@y"])],
    ]
    reported = x.find(f"{{{NS_DATA}}}reported")
    assert reported is not None and [f.get("type") for f in reported] == [
        "text-single",
        "jid-multi",
    ]


def submitted(**values: str | list[str]) -> SubmittedForm:
    return SubmittedForm.parse(ET.fromstring(submit(values)))


def test_typed_getters() -> None:
    form = submitted(
        name="  Anna  ",
        text=["line one", "line two", ""],
        size="M",
        tags=["a", "b", "a"],
        jid="anna@localhost",
        jids=["a@x", "b@x", "a@x"],
        yes="1",
        no="false",
        n="42",
    )
    assert form.text("name") == "Anna"
    assert form.text("missing", required=False) is None
    assert form.multiline("text") == "line one\nline two"
    assert form.choice("size", SIZES) == "M"
    assert form.choices("tags", ["a", "b", "c"]) == ["a", "b"]
    assert form.jid("jid").bare == "anna@localhost"
    assert [str(j) for j in form.jids("jids")] == ["a@x", "b@x"]
    assert form.boolean("yes") is True and form.boolean("no") is False
    assert form.boolean("missing", default=True) is True
    assert form.integer("n", minimum=1, maximum=100) == 42
    assert form.integer("missing", required=False) is None
    assert form.choices("missing", SIZES, required=False) == []


@pytest.mark.parametrize(
    ("read", "text"),
    [
        (lambda f: f.text("missing"), "Field 'missing' is required"),
        (lambda f: f.text("missing", label="Name"), "'Name' is required"),
        (lambda f: f.text("blank"), "Field 'blank' is required"),
        (lambda f: f.text("two"), "Field 'two' takes one value"),
        (lambda f: f.text("long", max_chars=3), "Field 'long' is longer than 3 characters"),
        (lambda f: f.multiline("missing"), "Field 'missing' is required"),
        (lambda f: f.choices("missing", ["a"]), "Field 'missing': choose at least one"),
        (lambda f: f.choices("two", ["a"]), "Field 'two': 'b' is not one of the choices"),
        (lambda f: f.jid("bad"), "Field 'bad': 'not a jid@@' is not a valid address"),
        (lambda f: f.jids("missing"), "Field 'missing' is required"),
        (lambda f: f.integer("long"), "Field 'long': 'abcd' is not a whole number"),
        (lambda f: f.integer("n", maximum=9), "Field 'n' must be at most 9"),
        (lambda f: f.integer("n", minimum=99), "Field 'n' must be at least 99"),
    ],
)
def test_typed_getters_raise_bad_payload(read: object, text: str) -> None:
    form = submitted(blank="  ", two=["a", "b"], long="abcd", bad="not a jid@@", n="42")
    with pytest.raises(PayloadError) as info:
        read(form)  # type: ignore[operator]
    assert str(info.value) == text
    assert condition_for(info.value) == ("modify", "bad-request", text)


def test_a_field_given_twice_is_refused() -> None:
    with pytest.raises(PayloadError, match="twice"):
        SubmittedForm.parse(
            ET.fromstring(
                f'<x xmlns="{NS_DATA}" type="submit"><field var="a"/><field var="a"/></x>'
            )
        )
    # XEP-0050 §3.5.1: a form of type cancel counts as submit.
    assert SubmittedForm.parse(ET.fromstring(submit({"a": "1"}, "cancel"))).text("a") == "1"


def test_result_forms_have_fields_or_a_table_not_both() -> None:
    table = Table(columns=[Column("a", "A")], rows=[{"a": "1"}])
    with pytest.raises(ValueError, match="not both"):
        ResultForm(fields=[Field.fixed("x")], table=table)
