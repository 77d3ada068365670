"""Guests: the accounts the web page registers for browsers, expired once abandoned.

* :mod:`.rules`: who is a guest (the name pattern), when one is abandoned;
* :mod:`.expiry`: a pass that removes the abandoned ones with their data
  (as ``orgchat forget``), and the periodic sweep (one process at a time);
* :mod:`.cli`: ``orgchat guests expire``.

Guests are customers like any other everywhere else; only their expiry is theirs.
"""

from __future__ import annotations

from component.ejabberd_api import EjabberdApi
from component.feature import Contribution, Feature
from component.features.guests import cli
from component.features.guests.expiry import GuestExpiry, sweep_forever
from component.routing.router import MessageRouter


class Guests(Feature):
    name = "guests"
    cli = cli.CLI

    def contribute(self, router: MessageRouter) -> Contribution:
        core = self.core
        cfg = core.config
        expiry = GuestExpiry(
            api=EjabberdApi.from_settings(cfg.ejabberd),
            pg=core.pg,
            rd=core.rd,
            vhost=cfg.ejabberd.vhost,
        )

        async def sweep() -> None:
            await sweep_forever(expiry, cfg.guests)

        return Contribution(tasks={"guest-sweep": sweep})
