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

import datetime as dt
from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

from storage.models import NewMessage, OwnCopy

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)

#: Parameters the CTE of :func:`insert_cte` takes, in the order of :func:`arrays`.
PARAMETERS = 7


def insert_cte(first: int, inserted: str) -> str:
    """``own AS (INSERT ...)``: the copies of the messages the CTE ``inserted``
    (which returns ``stanza_id``) inserted; parameters ``$first`` on."""
    p = [f"${first + i}" for i in range(PARAMETERS)]
    return f"""own AS (
        INSERT INTO archive (username, server_host, timestamp, peer, bare_peer, xml, txt,
                             kind, nick)
        SELECT c.username, c.server_host, c.timestamp, c.peer, c.peer, c.xml, c.txt, 'chat', ''
          FROM unnest({p[0]}::text[], {p[1]}::text[], {p[2]}::text[], {p[3]}::bigint[],
                      {p[4]}::text[], {p[5]}::text[], {p[6]}::text[])
               AS c(stanza_id, username, server_host, timestamp, peer, xml, txt)
         WHERE c.stanza_id IN (SELECT stanza_id FROM {inserted})
    )"""


def arrays(messages: Sequence[NewMessage]) -> tuple[list[object], ...]:
    """The copies of ``messages`` as one list per column of :func:`insert_cte`."""
    columns: tuple[list[object], ...] = tuple([] for _ in range(PARAMETERS))
    stanza_ids, usernames, hosts, stamps, peers, xmls, texts = columns
    for position, message in enumerate(messages):
        stamp = (message.ts - _EPOCH) // _MICROSECOND + position
        for copy in message.copies:
            username, _, host = copy.owner.partition("@")
            stanza_ids.append(message.stanza_id)
            usernames.append(username)
            hosts.append(host)
            stamps.append(stamp)
            peers.append(copy.peer)
            xmls.append(stanza(copy))
            texts.append(copy.body)
    return columns


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
