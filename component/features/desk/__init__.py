"""The agent desk: a shared inbox with claim, transfer, resolve, reopen, notes,
canned replies, and the company settings its admins change.

* :mod:`.rules`: who may do what (pure decisions run under the
  conversation's row lock) and the assignment rule (its routing hooks);
* :mod:`.commands`, :mod:`.admin`: the desk from any standard client (ad-hoc
  commands of agents, and of company admins);
* :mod:`.cli`: the same for the operator (``orgchat desk``, ``orgchat canned``).
"""

from __future__ import annotations

from collections.abc import Sequence

from component.feature import Contribution, Feature
from component.features.desk import cli
from component.features.desk.admin import desk_commands
from component.features.desk.commands import DeskParts
from component.features.desk.rules import DeskHooks
from component.routing.hooks import RoutingHooks
from component.routing.router import MessageRouter


class Desk(Feature):
    name = "desk"
    cli = cli.CLI

    @property
    def hooks(self) -> Sequence[RoutingHooks]:
        return (DeskHooks(self.core.pg.desk),)

    def contribute(self, router: MessageRouter) -> Contribution:
        core = self.core
        parts = DeskParts(
            domain=core.domain,
            directory=core.directory,
            desk=core.pg.desk,
            conversations=core.pg.conversations,
            directory_store=core.pg.directory,
            router=router,
            max_body_chars=core.config.limits.max_body_chars,
            default_reaction_window_s=core.config.notify.company_reaction_window,
            agents_host=core.config.ejabberd.vhost,
        )
        return Contribution(commands=desk_commands(parts))
