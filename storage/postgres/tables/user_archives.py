"""ejabberd's ``archive`` table: users' own archives (XEP-0313 on their accounts).

Standard clients (Conversations, Gajim, Dino, Poezio, converse.js) fetch
one-to-one history from the user's own archive, with the contact's address.
ejabberd's mod_mam answers those queries from this table (its own SQL
schema, ``new_sql_schema``, migration 0013) and archives nothing itself;
orgchat writes the rows (:class:`storage.models.OwnCopy`, computed by
routing) in the statement that archives the messages
(:mod:`.messages`), so a copy exists exactly when its message does, at no
extra round trip.

A row is what ejabberd would have stored: the stanza as the owner's client
saw it (``xml``), its text for full-text search (``txt``), the peer, and the
time in microseconds, which ejabberd also uses as the row's XEP-0313 id.
The rows of one batch share its arrival time, so each message's time is
offset by its position in the batch (a microsecond each): ids are unique
per batch and history keeps the batch's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

from storage.models import NewMessage, OwnCopy
from storage.postgres import packed

#: The types of :func:`insert_cte`'s parameters, in the order of :func:`columns`.
_TYPES = ("text", "text", "text", "bigint", "text", "text", "text")
#: How many parameters the CTE of :func:`insert_cte` takes.
PARAMETERS = len(_TYPES)


def insert_cte(first: int, inserted: str) -> str:
    """``own AS (INSERT ...)``: the copies of the messages the CTE ``inserted``
    (which returns ``stanza_id``) inserted; parameters ``$first`` on, one
    packed column each (:mod:`storage.postgres.packed`)."""
    return f"""own AS (
        INSERT INTO archive (username, server_host, timestamp, peer, bare_peer, xml, txt,
                             kind, nick)
        SELECT c.username, c.server_host, c.timestamp, c.peer, c.peer, c.xml, c.txt, 'chat', ''
          FROM unnest({packed.columns(first, _TYPES)})
               AS c(stanza_id, username, server_host, timestamp, peer, xml, txt)
         WHERE c.stanza_id IN (SELECT stanza_id FROM {inserted})
    )"""


def columns(messages: Sequence[NewMessage]) -> tuple[str, ...]:
    """The copies of ``messages``, one packed column each, in the order of
    :func:`insert_cte`."""
    stanza_ids: list[str] = []
    usernames: list[str] = []
    hosts: list[str] = []
    stamps: list[int] = []
    peers: list[str] = []
    xmls: list[str] = []
    texts: list[str] = []
    for position, message in enumerate(messages):
        stamp = packed.micros(message.ts) + position
        for copy in message.copies:
            username, _, host = copy.owner.partition("@")
            stanza_ids.append(message.stanza_id)
            usernames.append(username)
            hosts.append(host)
            stamps.append(stamp)
            peers.append(copy.peer)
            xmls.append(stanza(copy))
            texts.append(copy.body)
    return (
        packed.texts(stanza_ids),
        packed.texts(usernames),
        packed.texts(hosts),
        packed.numbers(stamps),
        packed.texts(peers),
        packed.texts(xmls),
        packed.texts(texts),
    )


def stanza(copy: OwnCopy) -> str:
    """The message as the owner's client saw it, as ejabberd stores one."""
    sender, recipient = (copy.owner, copy.peer) if copy.outgoing else (copy.peer, copy.owner)
    return (
        f'<message xmlns="jabber:client" type="chat" id={_attr(copy.message_id)}'
        f" from={_attr(sender)} to={_attr(recipient)}>"
        f"<body>{_text(copy.body)}</body></message>"
    )


# What saxutils escapes (white space too, in attributes): JIDs, ids and most
# bodies have none of it, and are written as they are, after a substring
# test per character (each a fast scan in C, together quicker than one
# regular expression's; extensions/xml.py does the same).


def _attr(value: str) -> str:
    if (
        "&" in value
        or "<" in value
        or ">" in value
        or '"' in value
        or "\n" in value
        or "\r" in value
        or "\t" in value
    ):
        return quoteattr(value)
    return f'"{value}"'


def _text(value: str) -> str:
    if "&" in value or "<" in value or ">" in value or "\r" in value:
        return escape(value, _CARRIAGE_RETURN)  # a parser reads a bare CR as a line feed
    return value


_CARRIAGE_RETURN = {"\r": "&#13;"}
