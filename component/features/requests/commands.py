"""Requests to several companies from any standard client: XEP-0050 ad-hoc commands.

The same capability as the ``urn:orgchat:request:0`` IQs, as data forms
(XEP-0004) that Gajim, Psi, Conversations and others render:

* on the service domain, for customers: "Ask several companies" (``ask``),
  "My requests" (``requests``) and "Close a request" (``close-request``);
* on a conversation address, for the company's agents: "Make an offer"
  (``offer``) and "Decline the request" (``decline``). They post an ordinary
  message into the conversation carrying the structured offer or decline,
  exactly as custom desk software would send it.

Every rule (limits, refusals, statuses) is :class:`RequestService`'s; these
classes only translate forms.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from xml.etree.ElementTree import Element

from component.errors import BadRequest, NotAnAgent, UnknownAddress
from component.features.requests.service import REFUSALS, STATES, RequestService
from component.i18n import Text, _, n_
from component.routing.commands import Command, Context, Done, Next, Step, Target
from component.routing.router import MessageRouter
from extensions.forms import Column, Field, Form, Option, ResultForm, Table
from extensions.request.create import Create, Search
from extensions.request.offers import (
    AVAILABILITY_TEXT,
    decline_element,
    decline_text,
    offer_element,
    offer_from_form,
    offer_text,
)
from extensions.request.queries import Close, ListQuery
from extensions.request.stanza import (
    AVAILABILITY,
    FORM_OFFER,
    MAX_REASON,
    MAX_SUBJECT,
    is_request_id,
)
from extensions.request.views import RequestView
from extensions.submitted_form import SubmittedForm
from storage.models import Company
from storage.protocols import ConversationStore

#: Companies offered as a list in "Ask several companies"; with more, a
#: customer picks a category and a city instead.
MAX_LISTED = 100
#: Requests shown by "My requests" and offered by "Close a request".
RECENT = 20
#: The choices "any category/city" and "accept no offer": XEP-0004 options
#: need a value, and an empty one crashes some clients (Profanity).
ANY = "*"
NONE = "none"
#: What the target statuses (wire codes) say to people.
STATUSES: dict[str, Text] = {
    "sent": _("sent"),
    "delivered": _("delivered"),
    "seen": _("seen"),
    "answered": _("answered"),
    "declined": _("declined"),
    "expired": _("expired"),
    "refused": _("not sent"),
}


class Ask(Command):
    node = "ask"
    name = _("Ask several companies")
    target = Target.DOMAIN

    def __init__(self, service: RequestService) -> None:
        self.service = service

    async def start(self, ctx: Context) -> Step:
        everyone = await self.service.search(Search(None, None, None, None), MAX_LISTED)
        if not everyone:
            return Done(note=_("No company takes requests yet."), note_type="warn")
        most = self.service.settings.max_companies
        return Next(
            "write",
            Form(
                title=self.name,
                instructions=n_(
                    "Choose up to {count} company, or a category and a city (the first "
                    "matching companies are asked), then write your question. Every "
                    "company answers you in its own chat.",
                    "Choose up to {count} companies, or a category and a city (the first "
                    "matching companies are asked), then write your question. Every "
                    "company answers you in its own chat.",
                    most,
                ),
                fields=[
                    Field.list_multi(
                        "companies",
                        _("Companies"),
                        _company_options(everyone, self.service.domain),
                    ),
                    Field.list_single(
                        "category",
                        _("Category"),
                        [Option(ANY, _("Any category")), *await self.service.categories()],
                        # A value shown from the start: some clients (Profanity)
                        # list a field's choices with their labels only then.
                        default=ANY,
                    ),
                    Field.list_single(
                        "city",
                        _("City"),
                        [Option(ANY, _("Any city")), *await self.service.cities()],
                        default=ANY,
                    ),
                    Field.text_single("text", _("Name contains")),
                    Field.text_single(
                        "max",
                        _("How many companies (1-{most})", most=most),
                        default=str(min(5, most)),
                    ),
                    Field.text_single("subject", _("Subject"), required=True),
                    Field.text_multi("body", _("Your question"), required=True),
                    Field.boolean(
                        "include-closed",
                        _("Also ask companies that are closed now"),
                        default=False,
                    ),
                ],
            ),
        )

    async def submit(self, ctx: Context, stage: str, form: SubmittedForm) -> Step:
        # The choices offered: the companies listed when the form was made.
        offered = await self.service.search(Search(None, None, None, None), MAX_LISTED)
        listed = [f"{c.slug}@{self.service.domain}" for c in offered]
        companies = tuple(form.choices("companies", listed, required=False, label=_("Companies")))
        category = _unless_any(form.text("category", required=False, label=_("Category")))
        city = _unless_any(form.text("city", required=False, label=_("City")))
        text = form.text("text", required=False, label=_("Name contains"))
        search = None
        if not companies:
            if not (category or city or text):
                raise BadRequest(_("Choose companies, or a category, a city or a name"))
            most = self.service.settings.max_companies
            count = form.integer(
                "max", required=False, minimum=1, maximum=most, label=_("How many")
            )
            search = Search(category, city, text, count)
        ask = Create(
            subject=form.text("subject", label=_("Subject"), max_chars=MAX_SUBJECT),
            body=form.multiline("body", label=_("Your question")),
            companies=companies,
            search=search,
            form=None,
            include_closed=form.boolean("include-closed"),
        )
        view = await self.service.create(ctx.requester.bare, ask, lang=ctx.lang)
        sent = sum(1 for t in view.targets if t.status != "refused")
        note = n_(
            "Sent to {count} company; the answers arrive as chats.",
            "Sent to {count} companies; the answers arrive as chats.",
            sent,
        )
        if view.duplicate:
            note = _("You sent this already; nothing was sent again.")
        return Done(note=note, form=_result(view))


class MyRequests(Command):
    node = "requests"
    name = _("My requests")
    target = Target.DOMAIN

    def __init__(self, service: RequestService) -> None:
        self.service = service

    async def start(self, ctx: Context) -> Step:
        views, _last, count = await self.service.list_requests(
            ctx.requester.bare, ListQuery(None, RECENT, None, None)
        )
        if not views:
            return Done(note=_("You have no requests yet. Try “Ask several companies”."))
        rows = [
            {
                "request": v.id,
                "subject": v.subject,
                "state": STATES.get(v.state, v.state),
                "company": t.name or t.jid,
                "status": STATUSES.get(t.status, t.status),
            }
            for v in views
            for t in v.targets
        ]
        columns = [
            Column("subject", _("Subject")),
            Column("state", _("Request")),
            Column("company", _("Company")),
            Column("status", _("Status")),
            Column("request", _("Id")),
        ]
        title = (
            _("My requests ({shown} of {count})", shown=len(views), count=count)
            if count > len(views)
            else self.name
        )
        return Done(form=ResultForm(title=title, table=Table(columns, rows)))


class CloseRequest(Command):
    node = "close-request"
    name = _("Close a request")
    target = Target.DOMAIN

    def __init__(self, service: RequestService) -> None:
        self.service = service

    async def start(self, ctx: Context) -> Step:
        views, _last, _count = await self.service.list_requests(
            ctx.requester.bare, ListQuery("open", RECENT, None, None)
        )
        if not views:
            return Done(note=_("You have no open requests."))
        options = [Option(v.id, f"{v.subject} ({v.created:%Y-%m-%d %H:%M} UTC)") for v in views]
        return Next(
            "pick",
            Form(
                title=self.name,
                fields=[
                    Field.list_single(
                        "request", _("Request"), options, required=True, default=views[0].id
                    )
                ],
            ),
            actions=("next",),
        )

    async def submit(self, ctx: Context, stage: str, form: SubmittedForm) -> Step:
        public_id = form.text("request", label=_("Request"))
        if not is_request_id(public_id):
            raise BadRequest(_("Request: not a request id"))
        view = await self.service.get(ctx.requester.bare, public_id)
        if stage == "pick":
            options = [Option(NONE, _("None: just close it"))] + [
                Option(
                    t.jid,
                    _(
                        "{company}: {status}",
                        company=t.name or t.jid,
                        status=STATUSES.get(t.status, t.status),
                    ),
                )
                for t in view.targets
            ]
            return Next(
                "accept",
                Form(
                    title=_("Close “{subject}”", subject=view.subject),
                    instructions=_("The companies are told, politely. You can accept one offer."),
                    fields=[
                        Field.hidden("request", view.id),
                        Field.list_single(
                            "accept", _("Accept the offer of"), options, default=NONE
                        ),
                    ],
                ),
            )
        accepted = form.choice(
            "accept", [NONE, *(t.jid for t in view.targets)], required=False, label=_("Accept")
        )
        chosen = None if accepted in (None, NONE) else accepted
        closed = await self.service.close(ctx.requester.bare, Close(view.id, chosen), ctx.lang)
        if chosen is None:
            note = _("Request closed; the companies were told.")
        else:
            company = next((t.name or t.jid for t in view.targets if t.jid == chosen), chosen)
            note = _(
                "Request closed: you accepted the offer of {company}. The companies were told.",
                company=company,
            )
        return Done(note=note, form=_result(closed))


class _Answer(Command):
    """Common part of the agents' commands: only in a conversation with an open request."""

    target = Target.CONVERSATION

    def __init__(
        self, service: RequestService, router: MessageRouter, conversations: ConversationStore
    ) -> None:
        self.service = service
        self.router = router
        self.conversations = conversations

    def allowed(self, ctx: Context) -> bool:
        return ctx.company is not None and self.service.directory.is_agent(
            ctx.company.id, ctx.requester.bare
        )

    async def _open_request(self, ctx: Context) -> str:
        if ctx.company is None or ctx.token is None:
            raise UnknownAddress(_("No such conversation"))
        if not self.allowed(ctx):
            raise NotAnAgent(_("Only the company's agents may answer here"))
        conv = await self.conversations.of_company(ctx.company.id, ctx.token)
        if conv is None:
            raise UnknownAddress(_("No such conversation"))
        public_id = await self.service.open_request(conv.id)
        if public_id is None:
            raise UnknownAddress(_("This conversation has no open request"))
        return public_id

    async def _post(self, ctx: Context, body: str | None, answer: Element) -> None:
        """Send the answer into the conversation as the agent (idempotent per session)."""
        assert ctx.token is not None
        await self.router.post_as(
            str(ctx.requester),
            str(ctx.target_jid),
            body=body,
            origin_id=ctx.session,
            payloads=[answer],
        )


class MakeOffer(_Answer):
    node = "offer"
    name = _("Make an offer")

    async def start(self, ctx: Context) -> Step:
        await self._open_request(ctx)
        return Next(
            "offer",
            Form(
                title=self.name,
                instructions=_("The customer sees your offer next to the other answers."),
                fields=[
                    Field.text_single("price", _("Price"), required=True, desc=_("e.g. 320.00")),
                    Field.text_single(
                        "currency",
                        _("Currency"),
                        required=True,
                        desc=_("ISO 4217 code, e.g. EUR"),
                    ),
                    Field.list_single(
                        "availability",
                        _("Availability"),
                        [Option(a, _(AVAILABILITY_TEXT[a])) for a in AVAILABILITY],
                        required=True,
                        default="in-stock",
                    ),
                    Field.text_single("valid-until", _("Valid until"), desc=_("YYYY-MM-DD")),
                    Field.text_multi("message", _("Message to the customer")),
                ],
            ),
        )

    async def submit(self, ctx: Context, stage: str, form: SubmittedForm) -> Step:
        await self._open_request(ctx)
        fields = tuple(
            Field(var, (value,))
            for var in ("price", "currency", "availability", "valid-until")
            if (value := form.text(var, required=False))
        )
        offer = offer_from_form(Form(fields, form_type=FORM_OFFER))
        await self._post(ctx, form.multiline("message", required=False), offer_element(offer))
        return Done(note=_("Sent to the customer: {answer}", answer=offer_text(offer)))


class DeclineRequest(_Answer):
    node = "decline"
    name = _("Decline the request")

    async def start(self, ctx: Context) -> Step:
        await self._open_request(ctx)
        return Next(
            "decline",
            Form(
                title=self.name,
                fields=[
                    Field.text_single("reason", _("Reason"), desc=_("e.g. Out of stock")),
                    Field.text_multi("message", _("Message to the customer")),
                ],
            ),
        )

    async def submit(self, ctx: Context, stage: str, form: SubmittedForm) -> Step:
        await self._open_request(ctx)
        reason = form.text("reason", required=False, max_chars=MAX_REASON)
        answer = decline_element(reason or None)
        await self._post(ctx, form.multiline("message", required=False), answer)
        return Done(note=_("Sent to the customer: {answer}", answer=decline_text(reason)))


def request_commands(
    service: RequestService, router: MessageRouter, conversations: ConversationStore
) -> list[Command]:
    return [
        Ask(service),
        MyRequests(service),
        CloseRequest(service),
        MakeOffer(service, router, conversations),
        DeclineRequest(service, router, conversations),
    ]


def _unless_any(value: str | None) -> str | None:
    return None if value == ANY else value


def _company_options(companies: Sequence[Company], domain: str) -> list[Option]:
    """One option per company, labelled "Name (category, city)".

    Labels must be unique (XEP-0004 clients such as aioxmpp refuse a form with
    two equal option labels), so a label that repeats gets the address too.
    """
    labels = []
    for c in companies:
        extra = ", ".join(filter(None, (c.category, c.city)))
        labels.append(f"{c.name} ({extra})" if extra else c.name)
    counts = Counter(labels)
    return [
        Option(f"{c.slug}@{domain}", label if counts[label] == 1 else f"{label} <{c.slug}>")
        for c, label in zip(companies, labels, strict=True)
    ]


def _result(view: RequestView) -> ResultForm:
    rows = [
        {
            "company": t.name or t.jid,
            "status": STATUSES.get(t.status, t.status)
            if t.reason is None
            else _("Not sent: {reason}", reason=REFUSALS.get(t.reason, t.reason)),
        }
        for t in view.targets
    ]
    return ResultForm(
        title=view.subject,
        instructions=_(
            "Request {id}: {state}", id=view.id, state=STATES.get(view.state, view.state)
        ),
        table=Table([Column("company", _("Company")), Column("status", _("Status"))], rows),
    )
