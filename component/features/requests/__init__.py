"""Requests to several companies at once (``urn:orgchat:request:0``).

* :mod:`.service`: the rules (choosing companies, limits, close, expiry);
* :mod:`.hooks`: its part in routing (offers and declines, threads, statuses);
* :mod:`.iq`: the IQs of the namespace; :mod:`.commands`: the same through
  ad-hoc commands, for standard clients.

The wire format is :mod:`extensions.request`; the tables are
:mod:`storage.postgres`'s requests store.
"""

from __future__ import annotations

from collections.abc import Sequence

from component.feature import Contribution, Feature
from component.features.requests.commands import request_commands
from component.features.requests.hooks import RequestHooks
from component.features.requests.iq import RequestIqHandlers
from component.features.requests.service import RequestService
from component.routing.hooks import RoutingHooks
from component.routing.router import MessageRouter


class Requests(Feature):
    name = "requests"

    @property
    def hooks(self) -> Sequence[RoutingHooks]:
        core = self.core
        return (RequestHooks(domain=core.domain, directory=core.directory, store=core.pg.requests),)

    def contribute(self, router: MessageRouter) -> Contribution:
        core = self.core
        service = RequestService(
            domain=core.domain,
            directory=core.directory,
            search=core.search,
            store=core.pg.requests,
            limits=core.rd.limits,
            router=router,
            outbox=core.outbox,
            settings=core.config.requests,
            max_body_chars=core.config.limits.max_body_chars,
        )
        handlers = RequestIqHandlers(service)
        return Contribution(
            iq=[handlers],
            commands=request_commands(service, router, core.pg.conversations),
            disco=[handlers],
            tasks={"request-expiry": service.expire_forever},
        )
