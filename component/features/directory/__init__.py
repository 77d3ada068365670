"""The company directory as customers see it, and as the operator keeps it.

* :mod:`.iq`: XEP-0055 search (through the core's one search of the
  directory, :mod:`component.search`, which requests to several companies
  use too), vcard-temp and vCard4 cards, and the company
  information of service discovery; :mod:`.cards` builds the cards;
* :mod:`.response_times`: the median first response shown on the cards;
* :mod:`.input`, :mod:`.cli`: ``orgchat company``, ``agent``, ``import`` and
  ``roster`` for the operator.

The in-memory directory that routing reads on every message is the core's
(:mod:`component.directory`); its tables are :mod:`storage.postgres`'s
directory store.
"""

from __future__ import annotations

from component.feature import Contribution, Feature
from component.features.directory import cli
from component.features.directory.iq import DirectoryIqHandlers
from component.features.directory.response_times import ResponseTimes
from component.routing.router import MessageRouter


class DirectoryFeature(Feature):
    name = "directory"
    cli = cli.CLI

    def contribute(self, router: MessageRouter) -> Contribution:
        core = self.core
        handlers = DirectoryIqHandlers(
            domain=core.domain,
            directory=core.directory,
            search=core.search,
            conversations=core.pg.conversations,
            response_times=ResponseTimes(core.pg.response_times),
            outbox=core.outbox,
        )
        return Contribution(iq=[handlers], disco=[handlers])
