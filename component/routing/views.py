"""What each party sees of a message: the shared inbox and users' own archives.

A conversation is seen three ways. The customer sees a one-to-one chat with
the company's address; each agent sees a chat with the conversation's
address, where what the customer wrote arrives as from that address, and so
does what a colleague answered, marked with the colleague's name (a shared
inbox in any standard client); the agent who typed an answer sees it as his
own outgoing message.

The live stanzas follow these rules (:mod:`.router`), and so do the copies
written to users' own archives (:class:`storage.models.OwnCopy`): standard
clients fetch one-to-one history from the user's own archive (XEP-0313 on
their account, ``with`` = the contact), not from the contact's. Each copy
carries the ``id`` of the live stanza, so that a client that got both
recognises one message. Only accounts of the service's own ejabberd host
have an archive there.
"""

from __future__ import annotations

from collections.abc import Iterable

from storage.models import OwnCopy, Party


def colleague_text(author: str, body: str) -> str:
    """An answer as the author's colleagues see it: marked with who wrote it."""
    return f"{author.partition('@')[0]}: {body}"


def own_copies(
    *,
    author: Party,
    sender: str,
    echo: bool,
    body: str,
    message_id: str,
    stanza_id: str,
    customer: str,
    company_address: str,
    conversation_address: str,
    agents: Iterable[str],
    host: str,
) -> tuple[OwnCopy, ...]:
    """The copies of one message in users' own archives.

    ``sender``: the customer's or the agent's bare JID; ``message_id``: the
    ``id`` of the stanza the customer, and the agents if the customer wrote
    it, got live; ``stanza_id``: the ``id`` of a colleague's copy. ``echo``:
    the sender's own client did not show the message (the component wrote
    it for him: a command, a reply by email), so he gets it as his
    colleagues do. ``host``: the ejabberd host whose users have archives.
    """
    copies = []
    customer_wrote = author is Party.CUSTOMER
    if _on(customer, host):
        copies.append(OwnCopy(customer, company_address, customer_wrote, message_id, body))
    for agent in agents:
        if not _on(agent, host):
            continue
        if customer_wrote:
            copies.append(OwnCopy(agent, conversation_address, False, message_id, body))
        elif agent == sender and not echo:
            copies.append(OwnCopy(agent, conversation_address, True, message_id, body))
        else:
            text = colleague_text(sender, body)
            copies.append(OwnCopy(agent, conversation_address, False, stanza_id, text))
    return tuple(copies)


def _on(jid: str, host: str) -> bool:
    return jid.endswith("@" + host)
