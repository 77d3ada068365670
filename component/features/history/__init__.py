"""History: the archive served over XEP-0313, retention, export and forget.

* :mod:`.mam`: XEP-0313 queries (with XEP-0059 paging, XEP-0431 full-text
  search) on company and conversation addresses;
* :mod:`.retention`: the sweep that deletes what a company keeps no longer;
* :mod:`.forget`: forgetting one customer, for ``orgchat forget`` and guest expiry;
* :mod:`.cli`: ``orgchat archive prune``, ``orgchat export``, ``orgchat forget``.

The archive itself is written by routing (:mod:`component.routing.router`);
its table is :mod:`storage.postgres`'s archive store.
"""

from __future__ import annotations

from component.feature import Contribution, Feature
from component.features.history import cli
from component.features.history.mam import NS_FULLTEXT, NS_MAM, NS_MAM_EXTENDED, MamHandler
from component.features.history.retention import prune_forever
from component.routing.commands import Target
from component.routing.iq import Advertised
from component.routing.router import MessageRouter

#: Where the archive is served: every company and conversation address.
ARCHIVE_FEATURES = (
    NS_MAM,
    NS_MAM_EXTENDED,  # XEP-0313: before-id, after-id, ids, flip-page, metadata
    NS_FULLTEXT,  # XEP-0431 full-text search in the archive
)


class History(Feature):
    name = "history"
    cli = cli.CLI

    def contribute(self, router: MessageRouter) -> Contribution:
        core = self.core
        archive = core.config.archive

        async def retention() -> None:
            await prune_forever(
                core.pg.archive, archive.retention_interval, archive.retention_batch
            )

        return Contribution(
            iq=[
                MamHandler(
                    domain=core.domain,
                    directory=core.directory,
                    conversations=core.pg.conversations,
                    archive=core.pg.archive,
                    outbox=core.outbox,
                )
            ],
            disco=[
                Advertised(
                    {Target.COMPANY: ARCHIVE_FEATURES, Target.CONVERSATION: ARCHIVE_FEATURES}
                )
            ],
            tasks={"retention-sweep": retention},
        )
