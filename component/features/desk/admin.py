"""The agent desk's admin commands: XEP-0050 ad-hoc commands on a company's
address, for its admins (role ``admin``): "Manage agents" (``agents``),
"Opening hours and time zone" (``hours``), "Away message"
(``away-message``), "Canned replies" (``canned-replies``), "Email reaction
window" (``reaction-window``).

They change the company's settings through the directory store (every
process learns them from the directory's notifications) and its canned
replies through the desk store.
"""

from __future__ import annotations

from component import hours
from component.addressing import agent_jid, normalize_bare_jid
from component.errors import NotAllowed
from component.features.desk import rules as desk
from component.features.desk.commands import (
    AlreadyThere,
    DeskCommand,
    DeskParts,
    agent_commands,
    excerpt,
    sentence,
)
from component.i18n import Text, _, listing
from component.routing.commands import Command, Context, Done, Next, Step
from extensions.forms import Column, Field, Form, Option, ResultForm, Table
from extensions.submitted_form import SubmittedForm
from extensions.xml import PayloadError
from storage.errors import Conflict, NotFound
from storage.models import Role

#: The roles of agents as people say them.
ROLES: dict[Role, Text] = {Role.ADMIN: _("admin"), Role.AGENT: _("agent")}


class ManageAgents(DeskCommand):
    node = "agents"
    name = _("Manage agents")
    admin_only = True

    async def start(self, ctx: Context) -> Step:
        company = self.company(ctx)
        agents = await self.parts.directory_store.list_agents(company.slug)
        others = [a.jid for a in agents if a.jid != ctx.requester.bare]
        fields = [
            Field.jid_single(
                "add", _("Add an agent"), desc=_("Their XMPP address, e.g. zoe@localhost")
            ),
            Field.boolean("admin", _("The new agent is a company admin"), default=False),
        ]
        if others:
            fields.append(Field.list_multi("remove", _("Remove agents"), others))
        listed = listing(
            [_("{agent} ({role})", agent=a.jid, role=ROLES[a.role]) for a in agents], "\n"
        )
        return Next(
            "edit",
            Form(
                title=self.name,
                instructions=_(
                    "Agents of {company}:\n{agents}", company=company.name, agents=listed
                ),
                fields=fields,
            ),
        )

    async def submit(self, ctx: Context, stage: str, form: SubmittedForm) -> Step:
        company = self.company(ctx)
        current = {a.jid for a in await self.parts.directory_store.list_agents(company.slug)}
        added = form.jid("add", required=False, label=_("Add an agent"))
        add = None
        if added is not None:
            try:
                add = agent_jid(str(added), self.parts.agents_host)
            except ValueError as exc:
                raise PayloadError(_("Add an agent: {error}", error=str(exc))) from None
            if add in current:
                raise AlreadyThere(_already(add, company.name))
        remove: list[str] = []
        for value in form.values("remove"):
            if not value.strip():
                continue
            try:
                jid = normalize_bare_jid(value)
            except ValueError as exc:
                raise PayloadError(_("Remove agents: {error}", error=str(exc))) from None
            if jid == ctx.requester.bare:
                raise NotAllowed(_("You cannot remove yourself; another admin can"))
            desk.check_agent(jid, current, company.name)
            remove.append(jid)
        done: list[Text] = []
        if add is not None:
            role = Role.ADMIN if form.boolean("admin") else Role.AGENT
            try:
                await self.parts.directory_store.add_agent(company.slug, add, role)
            except Conflict:
                raise AlreadyThere(_already(add, company.name)) from None
            done.append(
                _(
                    "Added {agent} ({role}); {company} appears in their contacts.",
                    agent=add,
                    role=ROLES[role],
                    company=company.name,
                )
            )
        for jid in remove:
            try:
                await self.parts.directory_store.remove_agent(company.slug, jid)
            except NotFound:
                continue  # removed meanwhile: what was asked
            done.append(_("Removed {agent}.", agent=jid))
        agents = await self.parts.directory_store.list_agents(company.slug)
        rows = [{"agent": a.jid, "role": ROLES[a.role]} for a in agents]
        return Done(
            note=sentence(done) if done else _("Nothing changed."),
            form=ResultForm(
                title=_("Agents of {company}", company=company.name),
                table=Table(
                    [Column("agent", _("Agent"), "jid-single"), Column("role", _("Role"))], rows
                ),
            ),
        )


class OpeningHours(DeskCommand):
    node = "hours"
    name = _("Opening hours and time zone")
    admin_only = True

    async def start(self, ctx: Context) -> Step:
        company = self.company(ctx)
        return Next(
            "edit",
            Form(
                title=self.name,
                instructions=_(
                    "Customers see them on the company's card; outside them they get an away reply."
                ),
                fields=[
                    Field.text_single(
                        "hours",
                        _("Opening hours"),
                        default=company.hours,
                        desc=_(
                            "OpenStreetMap syntax, e.g. Mo-Fr 09:00-18:00; Sa 10:00-14:00; "
                            "PH off (or 24/7); empty: none published"
                        ),
                    ),
                    Field.text_single(
                        "timezone",
                        _("Time zone"),
                        required=True,
                        default=company.timezone,
                        desc=_("An IANA name, e.g. Europe/Berlin"),
                    ),
                ],
            ),
        )

    async def submit(self, ctx: Context, stage: str, form: SubmittedForm) -> Step:
        company = self.company(ctx)
        spec = form.text("hours", required=False, label=_("Opening hours"), max_chars=500)
        tz = form.text("timezone", label=_("Time zone"), max_chars=64)
        if spec:
            try:
                hours.parse(spec)
            except hours.HoursError as exc:
                raise PayloadError(_("Opening hours: {error}", error=str(exc))) from None
        try:
            hours.check_timezone(tz)
        except hours.HoursError as exc:
            raise PayloadError(_("Time zone: {error}", error=str(exc))) from None
        await self.parts.directory_store.set_hours(company.id, spec, tz)
        if spec:
            return Done(
                note=_("Opening hours: {hours}; time zone {timezone}.", hours=spec, timezone=tz)
            )
        return Done(note=_("No opening hours published; time zone {timezone}.", timezone=tz))


class AwayMessage(DeskCommand):
    node = "away-message"
    name = _("Away message")
    admin_only = True

    async def start(self, ctx: Context) -> Step:
        company = self.company(ctx)
        return Next(
            "edit",
            Form(
                title=self.name,
                fields=[
                    Field.text_multi(
                        "message",
                        _("Away message"),
                        default=company.away_message,
                        desc=_(
                            "Sent to customers who write while you are closed, before the "
                            "standard text saying when you open; empty: none"
                        ),
                    )
                ],
            ),
        )

    async def submit(self, ctx: Context, stage: str, form: SubmittedForm) -> Step:
        text = form.multiline(
            "message", required=False, label=_("Away message"), max_chars=desk.MAX_AWAY
        )
        await self.parts.directory_store.set_away_message(self.company(ctx).id, text)
        return Done(note=_("Away message saved.") if text else _("Away message removed."))


class CannedReplies(DeskCommand):
    node = "canned-replies"
    name = _("Canned replies")
    admin_only = True

    async def start(self, ctx: Context) -> Step:
        replies = await self.parts.desk.canned(self.company(ctx).id)
        fields = [
            Field.text_single(
                "title", _("New reply: title"), desc=_("Shown to agents when they pick")
            ),
            Field.text_multi("body", _("New reply: text"), desc=_("What the customer receives")),
        ]
        if replies:
            fields.append(
                Field.list_multi(
                    "remove", _("Remove"), [Option(str(r.id), r.title) for r in replies]
                )
            )
        listed = "\n".join(f"{r.title}: {excerpt(r.body)}" for r in replies) or _("None yet.")
        return Next("edit", Form(title=self.name, instructions=listed, fields=fields))

    async def submit(self, ctx: Context, stage: str, form: SubmittedForm) -> Step:
        company = self.company(ctx)
        existing = {str(r.id): r for r in await self.parts.desk.canned(company.id)}
        title = form.text("title", required=False, label=_("Title"), max_chars=desk.MAX_TITLE)
        body = form.multiline(
            "body", required=False, label=_("Text"), max_chars=self.parts.max_body_chars
        )
        if bool(title) != bool(body):
            raise PayloadError(_("A new canned reply needs a title and a text"))
        remove = form.choices("remove", existing, required=False, label=_("Remove"))
        done: list[Text] = []
        if title and body:
            try:
                await self.parts.desk.add_canned(company.id, title, body)
            except Conflict:
                raise AlreadyThere(
                    _("A canned reply titled “{title}” exists already", title=title)
                ) from None
            done.append(_("Added “{title}”.", title=title))
        for reply_id in remove:
            try:
                await self.parts.desk.remove_canned(company.id, int(reply_id))
            except NotFound:
                continue
            done.append(_("Removed “{title}”.", title=existing[reply_id].title))
        replies = await self.parts.desk.canned(company.id)
        rows = [{"title": r.title, "text": r.body} for r in replies]
        return Done(
            note=sentence(done) if done else _("Nothing changed."),
            form=ResultForm(
                title=_("Canned replies of {company}", company=company.name),
                table=Table([Column("title", _("Title")), Column("text", _("Text"))], rows),
            ),
        )


class ReactionWindow(DeskCommand):
    node = "reaction-window"
    name = _("Email reaction window")
    admin_only = True

    async def start(self, ctx: Context) -> Step:
        company = self.company(ctx)
        default = max(1, round(self.parts.default_reaction_window_s / 60))
        current = company.reaction_window_s
        return Next(
            "edit",
            Form(
                title=self.name,
                instructions=_(
                    "When agents are online but nobody reads or answers a customer's message "
                    "within this time, the company is emailed anyway."
                ),
                fields=[
                    Field.text_single(
                        "minutes",
                        _("Minutes"),
                        default=None if current is None else str(max(1, round(current / 60))),
                        desc=_(
                            "1 to 10080; empty: the service's default ({minutes} min)",
                            minutes=default,
                        ),
                    )
                ],
            ),
        )

    async def submit(self, ctx: Context, stage: str, form: SubmittedForm) -> Step:
        minutes = form.integer(
            "minutes", required=False, minimum=1, maximum=10080, label=_("Minutes")
        )
        seconds = None if minutes is None else minutes * 60
        await self.parts.directory_store.set_reaction_window(self.company(ctx).id, seconds)
        if minutes is None:
            return Done(note=_("The service's default reaction window applies."))
        return Done(note=_("Reaction window: {minutes} min.", minutes=minutes))


def _already(agent: str, company: str) -> Text:
    return _("{agent} is an agent of {company} already", agent=agent, company=company)


def desk_commands(parts: DeskParts) -> list[Command]:
    """Every desk command: the agents', then the admins'."""
    return [
        *agent_commands(parts),
        ManageAgents(parts),
        OpeningHours(parts),
        AwayMessage(parts),
        CannedReplies(parts),
        ReactionWindow(parts),
    ]
