"""Notifications: the cascade (live XMPP, then web push, then one email), away
replies, replies by email, and each customer's notification settings.

* :mod:`.cascade`: durable jobs that notify what nobody read (its routing
  hooks schedule them); :mod:`.email`, :mod:`.push`: the two channels;
* :mod:`.away`: one away reply per closed period (a routing hook);
* :mod:`.inbound`, :mod:`.replies`, :mod:`.quotes`, :mod:`.tokens`: replies
  by email, posted into the conversation;
* :mod:`.preferences`: the settings' rules; :mod:`.iq`
  (``urn:orgchat:notify:0``) and :mod:`.commands` (ad-hoc commands) change them.
"""

from __future__ import annotations

from collections.abc import Sequence

from component.ejabberd_api import EjabberdApi
from component.feature import Contribution, Core, Feature, Server
from component.features.notify.away import AwayReplies
from component.features.notify.cascade import Cascade
from component.features.notify.commands import notify_commands
from component.features.notify.email import SmtpSender
from component.features.notify.inbound import InboundServer
from component.features.notify.iq import NotifyIqHandlers
from component.features.notify.links import PageLinks
from component.features.notify.preferences import Preferences
from component.features.notify.push import PushSender
from component.features.notify.replies import EmailReplies
from component.features.notify.tokens import Tokens
from component.routing.hooks import RoutingHooks
from component.routing.router import MessageRouter


class Notify(Feature):
    name = "notify"

    def __init__(self, core: Core) -> None:
        super().__init__(core)
        cfg = core.config
        self.smtp = SmtpSender(cfg.smtp)
        self.push = PushSender(cfg.push)
        self.tokens = Tokens(cfg.inbound.secret, cfg.inbound.token_ttl)
        self.cascade = Cascade(
            domain=core.domain,
            directory=core.directory,
            notify=core.pg.notify,
            contacts=core.pg.contacts,
            presence=core.rd.presence,
            settings=cfg.notify,
            smtp=self.smtp,
            sender=cfg.smtp.sender,
            push=self.push,
            tokens=self.tokens,
            reply_domain=cfg.inbound.reply_domain,
            links=PageLinks(
                page_url=cfg.notify.page_url,
                api=EjabberdApi.from_settings(cfg.ejabberd),
                vhost=cfg.ejabberd.vhost,
                login_ttl=cfg.notify.login_link_ttl,
            )
            if cfg.notify.page_url
            else None,
        )
        self.away = AwayReplies(
            domain=core.domain,
            limits=core.rd.limits,
        )

    @property
    def hooks(self) -> Sequence[RoutingHooks]:
        return (self.cascade, self.away) if self.core.config.notify.enabled else ()

    def contribute(self, router: MessageRouter) -> Contribution:
        core = self.core
        cfg = core.config
        preferences = Preferences(
            contacts=core.pg.contacts,
            limits=core.rd.limits,
            smtp=self.smtp,
            sender=cfg.smtp.sender,
            service_name=core.domain,
            allow_http_push=cfg.dev_mode,
        )
        servers: list[Server] = []
        if cfg.notify.enabled and cfg.inbound.enabled:
            replies = EmailReplies(
                domain=core.domain,
                directory=core.directory,
                contacts=core.pg.contacts,
                conversations=core.pg.conversations,
                router=router,
                max_body_chars=cfg.limits.max_body_chars,
            )
            servers.append(
                InboundServer(
                    cfg.inbound,
                    self.tokens,
                    expected_sender=replies.expected_sender,
                    on_reply=replies.on_reply,
                    on_unsubscribe=replies.on_unsubscribe,
                )
            )
        push_key = self.push.public_key() if self.push.enabled else None
        return Contribution(
            iq=[NotifyIqHandlers(preferences, push_key)],
            commands=notify_commands(preferences),
            tasks={"notify-cascade": self.cascade.run} if cfg.notify.enabled else {},
            servers=servers,
        )
