"""Replies by email: what the inbound SMTP server (:mod:`.inbound`) does with a
reply whose signed Reply-To named a conversation and a side.

The reply is posted into the conversation like any message (archived,
delivered, receipts and the cascade), as the company or as the customer; an
unsubscribe link opts that address out of emails.
"""

from __future__ import annotations

import hashlib

from component.addressing import company_jid, conversation_jid
from component.directory import Directory
from component.features.notify.inbound import InboundReply
from component.logs import get_logger
from component.routing.router import MessageRouter
from storage.errors import NotFound
from storage.models import Channel, Company, Conversation, Party
from storage.protocols import ContactStore, ConversationStore

log = get_logger(__name__)


class EmailReplies:
    def __init__(
        self,
        *,
        domain: str,
        directory: Directory,
        contacts: ContactStore,
        conversations: ConversationStore,
        router: MessageRouter,
        max_body_chars: int,
    ) -> None:
        self.domain = domain
        self.directory = directory
        self.contacts = contacts
        self.conversations = conversations
        self.router = router
        self.max_body_chars = max_body_chars

    async def _conversation(self, conversation_id: int) -> tuple[Conversation, Company] | None:
        found = await self.conversations.by_ids([conversation_id])
        if not found:
            return None
        company = await self.directory.find_by_id(found[0].company_id)
        return (found[0], company) if company is not None else None

    async def expected_sender(self, conversation_id: int, party: Party) -> str | None:
        """The address the conversation's emails to ``party`` went to."""
        found = await self._conversation(conversation_id)
        if found is None:
            return None
        conv, company = found
        address = (
            company_jid(company.slug, self.domain) if party is Party.COMPANY else conv.customer_jid
        )
        return (await self.contacts.get(address)).email

    async def on_reply(self, reply: InboundReply) -> None:
        """Post a reply by email into its conversation, as the company or the customer.

        Routed like any message (archived, delivered, receipts and cascade);
        the email's Message-ID is its XEP-0359 origin-id, so an MTA that
        delivers it twice does not post it twice.
        """
        found = await self._conversation(reply.conversation_id)
        if found is None:
            raise NotFound("conversation")
        conv, company = found
        company_address = company_jid(company.slug, self.domain)
        if reply.party is Party.COMPANY:
            # Written as the company: its address, to the conversation's.
            sender, to = company_address, conversation_jid(company.slug, conv.token, self.domain)
        else:
            sender, to = conv.customer_jid, company_address
        await self.router.post_as(
            sender,
            to,
            body=reply.text[: self.max_body_chars],
            # The Message-ID, hashed: it says only "the same email" (an MTA that
            # delivers it twice posts it once), never who sent it from where.
            origin_id=_origin_id(reply.message_id),
            verified=True,  # the signed Reply-To token named this conversation and side
        )
        log.info("notify.reply_posted", conversation=conv.id, party=reply.party.value)

    async def on_unsubscribe(self, conversation_id: int, party: Party) -> None:
        found = await self._conversation(conversation_id)
        if found is None:
            return
        conv, company = found
        address = (
            company_jid(company.slug, self.domain) if party is Party.COMPANY else conv.customer_jid
        )
        await self.contacts.set_opt_out(address, Channel.EMAIL, True)
        log.info("notify.unsubscribed", party=party.value)


def _origin_id(message_id: str | None) -> str | None:
    if message_id is None:
        return None
    return "email-" + hashlib.sha256(message_id.encode()).hexdigest()[:32]
