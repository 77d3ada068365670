"""The agent desk from any standard client: XEP-0050 ad-hoc commands.

On a company's address (``slug@domain``), for its agents:

* "Open conversations" (``conversations``): a table, unclaimed first;
* "Claim a conversation" (``claim``), "Transfer a conversation"
  (``transfer``), "Resolve a conversation" (``resolve``), "Reopen a
  conversation" (``reopen``), "Add an internal note" (``note``), "Send a
  canned reply" (``canned-reply``): pick a conversation (and what the
  command needs), complete.

The same conversation commands live on each conversation address
(``slug+token@domain``) for that conversation, without picking it: claim,
resolve and reopen complete at once.

The admins' commands (agents, hours, away message, canned replies, reaction
window) are :mod:`.admin`'s.

The rules (who may claim, transfer, resolve) are :mod:`component.features.desk.rules`'s;
these classes translate forms, and re-check everything a form brings back.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence

from component.addressing import (
    conversation_jid,
    display_name,
    normalize_bare_jid,
    parse_conversation,
)
from component.directory import Directory
from component.errors import RoutingError, UnknownAddress
from component.features.desk import rules as desk
from component.i18n import Text, _, listing
from component.routing.commands import Command, Context, Done, Next, Step, Target
from component.routing.router import MessageRouter
from extensions.forms import Column, Field, Form, Option, ResultForm, Table
from extensions.submitted_form import SubmittedForm
from extensions.xml import PayloadError
from storage.models import (
    Company,
    Conversation,
    ConversationStatus,
    DeskConversation,
    Note,
    Party,
    Role,
)
from storage.protocols import ConversationStore, DeskStore, DirectoryStore

#: Conversations listed by "Open conversations" and offered by the pickers.
LISTED = 50
#: Notes shown after adding one.
NOTES_SHOWN = 20
EXCERPT = 60
#: Characters of each note in the list shown after adding one.
NOTE_SHOWN = 500
EVERYONE = "everyone"  #: the transfer choice "back to every agent"
#: What a picker says when it has nothing to offer.
NONE_TO_PICK: dict[ConversationStatus, Text] = {
    ConversationStatus.OPEN: _("No open conversations."),
    ConversationStatus.RESOLVED: _("No resolved conversations."),
}


class AlreadyThere(RoutingError):
    """Adding what exists (an agent, a canned reply title)."""

    condition = "conflict"


@dataclasses.dataclass(frozen=True, slots=True)
class DeskParts:
    """What the desk commands use."""

    domain: str
    directory: Directory
    desk: DeskStore
    conversations: ConversationStore
    directory_store: DirectoryStore
    router: MessageRouter
    max_body_chars: int
    default_reaction_window_s: float
    #: The XMPP host whose accounts may be agents (``ejabberd.vhost``).
    agents_host: str


class DeskCommand(Command):
    admin_only = False

    def __init__(self, parts: DeskParts, target: Target = Target.COMPANY) -> None:
        self.parts = parts
        self.target = target

    def allowed(self, ctx: Context) -> bool:
        if ctx.company is None:
            return False
        agent = self.parts.directory.agent(ctx.company.id, ctx.requester.bare)
        return agent is not None and (not self.admin_only or agent.role is Role.ADMIN)

    @staticmethod
    def company(ctx: Context) -> Company:
        if ctx.company is None:  # allowed() says no before this
            raise UnknownAddress(_("No such company"))
        return ctx.company

    def actor(self, ctx: Context) -> desk.Actor:
        agent = self.parts.directory.agent(self.company(ctx).id, ctx.requester.bare)
        return desk.Actor.agent(
            ctx.requester.bare, admin=agent is not None and agent.role is Role.ADMIN
        )


# -- conversation commands ----------------------------------------------------------


class _ConversationCommand(DeskCommand):
    """Pick a conversation on the company's address; act on this one on a conversation's."""

    #: Which conversations the company-address picker offers.
    offers = ConversationStatus.OPEN

    async def fields(self, ctx: Context) -> list[Field] | Done:
        """What the command asks besides the conversation (a Done: nothing to do)."""
        return []

    async def act(self, ctx: Context, conv: Conversation, form: SubmittedForm) -> Done:
        raise NotImplementedError

    async def start(self, ctx: Context) -> Step:
        extra = await self.fields(ctx)
        if isinstance(extra, Done):
            return extra
        if ctx.target is Target.CONVERSATION:
            conv = await self.here(ctx)
            if not extra:
                return await self.act(ctx, conv, SubmittedForm())
            fields = extra
        else:
            listing = await self.parts.desk.conversations(self.company(ctx).id, self.offers, LISTED)
            if not listing.conversations:
                return Done(note=NONE_TO_PICK[self.offers])
            options = conversation_options(
                listing.conversations, self.company(ctx).slug, self.parts.domain
            )
            fields = [
                Field.list_single("conversation", _("Conversation"), options, required=True),
                *extra,
            ]
        return Next("act", Form(title=self.name, fields=fields))

    async def submit(self, ctx: Context, stage: str, form: SubmittedForm) -> Step:
        if ctx.target is Target.CONVERSATION:
            conv = await self.here(ctx)
        else:
            conv = await self.picked(ctx, form.text("conversation", label=_("Conversation")))
        return await self.act(ctx, conv, form)

    async def here(self, ctx: Context) -> Conversation:
        if ctx.token is None:
            raise UnknownAddress(_("No such conversation"))
        return await self._by_token(self.company(ctx), ctx.token)

    async def picked(self, ctx: Context, address: str) -> Conversation:
        """A conversation address (or ``slug+token``) of this company."""
        company = self.company(ctx)
        parts = parse_conversation(address, self.parts.domain)
        if parts is None or parts[0] != company.slug:
            raise UnknownAddress(
                _(
                    "{address} is not a conversation of {company}",
                    address=address,
                    company=company.name,
                )
            )
        return await self._by_token(company, parts[1])

    async def _by_token(self, company: Company, token: str) -> Conversation:
        conv = await self.parts.conversations.of_company(company.id, token)
        if conv is None:
            raise UnknownAddress(_("No such conversation"))
        return conv

    def label(self, conv: Conversation) -> str:
        address = conversation_jid(self.company_slug(conv), conv.token, self.parts.domain)
        return f"{display_name(conv)} ({address})"

    def company_slug(self, conv: Conversation) -> str:
        company = self.parts.directory.company_by_id(conv.company_id)
        return company.slug if company is not None else "?"


class Claim(_ConversationCommand):
    node = "claim"
    name = _("Claim a conversation")

    async def act(self, ctx: Context, conv: Conversation, form: SubmittedForm) -> Done:
        actor = self.actor(ctx)
        assert actor.jid is not None
        before, after = await self.parts.desk.change(conv.id, desk.claim(actor, actor.jid))
        if before == after:
            return Done(
                note=_(
                    "The conversation with {customer} is yours already.", customer=self.label(conv)
                )
            )
        if before.assignee:
            return Done(
                note=_(
                    "You claimed the conversation with {customer} from {agent}: the "
                    "customer's messages come to you alone while you are online.",
                    customer=self.label(conv),
                    agent=before.assignee,
                )
            )
        return Done(
            note=_(
                "You claimed the conversation with {customer}: the customer's messages "
                "come to you alone while you are online.",
                customer=self.label(conv),
            )
        )


class Transfer(_ConversationCommand):
    node = "transfer"
    name = _("Transfer a conversation")

    async def fields(self, ctx: Context) -> list[Field] | Done:
        company = self.company(ctx)
        agents = sorted(self.parts.directory.agents(company.id))
        options = [Option(EVERYONE, _("Every agent (nobody claims it)")), *map(Option, agents)]
        return [Field.list_single("agent", _("Transfer to"), options, required=True)]

    async def act(self, ctx: Context, conv: Conversation, form: SubmittedForm) -> Done:
        company = self.company(ctx)
        choice = form.text("agent", label=_("Transfer to"))
        to: str | None = None
        if choice != EVERYONE:
            try:
                to = normalize_bare_jid(choice)
            except ValueError as exc:
                raise PayloadError(_("Transfer to: {error}", error=str(exc))) from None
            desk.check_agent(to, set(self.parts.directory.agents(company.id)), company.name)
        before, after = await self.parts.desk.change(conv.id, desk.transfer(self.actor(ctx), to))
        if before == after:
            return Done(note=desk.describe(before, after))
        if to is None:
            return Done(
                note=_(
                    "The conversation with {customer} goes to every online agent again.",
                    customer=self.label(conv),
                )
            )
        return Done(
            note=_(
                "The conversation with {customer} is {agent}'s now.",
                customer=self.label(conv),
                agent=to,
            )
        )


class Resolve(_ConversationCommand):
    node = "resolve"
    name = _("Resolve a conversation")

    async def act(self, ctx: Context, conv: Conversation, form: SubmittedForm) -> Done:
        await self.parts.desk.change(conv.id, desk.resolve(self.actor(ctx)))
        return Done(
            note=_(
                "Resolved the conversation with {customer}. If the customer writes again, "
                "it reopens.",
                customer=self.label(conv),
            )
        )


class Reopen(_ConversationCommand):
    node = "reopen"
    name = _("Reopen a conversation")
    offers = ConversationStatus.RESOLVED

    async def act(self, ctx: Context, conv: Conversation, form: SubmittedForm) -> Done:
        _before, after = await self.parts.desk.change(conv.id, desk.reopen(self.actor(ctx)))
        if after.assignee:
            return Done(
                note=_(
                    "Reopened the conversation with {customer}, claimed by {agent}.",
                    customer=self.label(conv),
                    agent=after.assignee,
                )
            )
        return Done(note=_("Reopened the conversation with {customer}.", customer=self.label(conv)))


class AddNote(_ConversationCommand):
    node = "note"
    name = _("Add an internal note")

    async def fields(self, ctx: Context) -> list[Field] | Done:
        return [
            Field.text_multi(
                "note",
                _("Note"),
                required=True,
                desc=_("Only the company's agents see it; it is never sent to the customer"),
            )
        ]

    async def act(self, ctx: Context, conv: Conversation, form: SubmittedForm) -> Done:
        text = form.multiline("note", label=_("Note"), max_chars=desk.MAX_NOTE)
        # The session id: a replayed stage finds its note instead of adding it twice.
        await self.parts.desk.add_note(conv.id, ctx.requester.bare, text, key=ctx.session)
        notes = await self.parts.desk.notes(conv.id, NOTES_SHOWN)
        return Done(
            note=_("Note added; only the company's agents see it."),
            form=notes_table(notes, _("Internal notes: {customer}", customer=self.label(conv))),
        )


class SendCanned(_ConversationCommand):
    node = "canned-reply"
    name = _("Send a canned reply")

    async def fields(self, ctx: Context) -> list[Field] | Done:
        replies = await self.parts.desk.canned(self.company(ctx).id)
        if not replies:
            return Done(
                note=_("No canned replies yet: a company admin adds them with “Canned replies”."),
                note_type="warn",
            )
        options = [Option(str(r.id), r.title) for r in replies]
        return [Field.list_single("reply", _("Canned reply"), options, required=True)]

    async def act(self, ctx: Context, conv: Conversation, form: SubmittedForm) -> Done:
        company = self.company(ctx)
        replies = {str(r.id): r for r in await self.parts.desk.canned(company.id)}
        chosen = replies.get(form.text("reply", label=_("Canned reply")))
        if chosen is None:
            raise UnknownAddress(_("No such canned reply (removed meanwhile?)"))
        await self.parts.router.post_as(
            str(ctx.requester),
            conversation_jid(company.slug, conv.token, self.parts.domain),
            body=chosen.body,
            origin_id=ctx.session,  # a replayed stage is not sent twice
        )
        return Done(
            note=_("Sent to {customer}: {text}", customer=self.label(conv), text=chosen.body)
        )


class OpenConversations(DeskCommand):
    node = "conversations"
    name = _("Open conversations")

    async def start(self, ctx: Context) -> Step:
        company = self.company(ctx)
        listing = await self.parts.desk.conversations(company.id, ConversationStatus.OPEN, LISTED)
        if not listing.conversations:
            return Done(note=NONE_TO_PICK[ConversationStatus.OPEN])
        rows = [
            {
                "conversation": conversation_jid(
                    company.slug, item.conversation.token, self.parts.domain
                ),
                "customer": display_name(item.conversation),
                "last": last_message(item),
                "at": f"{item.last_ts:%Y-%m-%d %H:%M} UTC" if item.last_ts else "",
                "assignee": item.assignee or "",
            }
            for item in listing.conversations
        ]
        shown = len(listing.conversations)
        title = (
            _("Open conversations ({shown} of {count})", shown=shown, count=listing.total)
            if listing.total > shown
            else _("Open conversations ({count})", count=shown)
        )
        return Done(
            form=ResultForm(
                title=title,
                instructions=_("Unclaimed first, then the most recent."),
                table=Table(
                    [
                        Column("conversation", _("Conversation"), "jid-single"),
                        Column("customer", _("Customer")),
                        Column("last", _("Last message")),
                        Column("at", _("At")),
                        Column("assignee", _("Claimed by")),
                    ],
                    rows,
                ),
            )
        )


# -- helpers ------------------------------------------------------------------------


def sentence(parts: Sequence[Text]) -> Text:
    """What a command did, one part after the other (each a sentence of its own)."""
    return listing(parts, " ")


def excerpt(text: str, limit: int = EXCERPT) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _cut(text: str, limit: int) -> str:
    """At most ``limit`` characters, lines kept."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def last_message(item: DeskConversation) -> str:
    if item.last_body is None:
        return ""
    if item.last_author is Party.CUSTOMER:
        return _("Customer: {text}", text=excerpt(item.last_body))
    return _("Agent: {text}", text=excerpt(item.last_body))


def conversation_options(items: Sequence[DeskConversation], slug: str, domain: str) -> list[Option]:
    """One option per conversation: "Customer: last words [claimed by]", unique labels
    (clients such as aioxmpp refuse a form with two equal labels)."""
    labels = []
    for item in items:
        last = f": {excerpt(item.last_body, 40)}" if item.last_body else ""
        claimed = f" [{item.assignee}]" if item.assignee else ""
        labels.append(f"{display_name(item.conversation)}{last}{claimed}")
    counts = Counter(labels)
    options = []
    for item, label in zip(items, labels, strict=True):
        address = conversation_jid(slug, item.conversation.token, domain)
        options.append(Option(address, label if counts[label] == 1 else f"{label} <{address}>"))
    return options


def notes_table(notes: Sequence[Note], title: str) -> ResultForm:
    # Each note shown cut: twenty notes of the longest kind, escaped, would
    # make one IQ larger than ejabberd accepts from the component.
    rows = [
        {
            "at": f"{n.ts:%Y-%m-%d %H:%M} UTC",
            "agent": n.agent_jid,
            "note": _cut(n.body, NOTE_SHOWN),
        }
        for n in notes
    ]
    return ResultForm(
        title=title,
        table=Table(
            [Column("at", _("At")), Column("agent", _("Agent")), Column("note", _("Note"))], rows
        ),
    )


def agent_commands(parts: DeskParts) -> list[Command]:
    """The commands of every agent: on the company's address and on each conversation's."""
    conversation_level = [Claim, Transfer, Resolve, Reopen, AddNote, SendCanned]
    return [
        OpenConversations(parts),
        *(cls(parts) for cls in conversation_level),
        *(cls(parts, Target.CONVERSATION) for cls in conversation_level),
    ]
