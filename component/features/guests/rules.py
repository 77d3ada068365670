"""Who is a guest, and when a guest's account is abandoned: pure decisions.

A guest is an account the web page registered for one browser by in-band
registration (XEP-0077), without a form: its local part is ``guest-`` and
eight lower-case hexadecimal digits (``newGuest`` in web/xmpp.js, which must
stay in step with :data:`GUEST_NAME`; a unit test checks it), on the
service's own ejabberd host (``ejabberd.vhost``). Accounts of other hosts,
and names an operator chose, are never guests.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from component.ejabberd_api import LastActivity

#: The local part of a guest's account (web/xmpp.js: ``guest-${randomToken(4)}``).
GUEST_NAME = re.compile(r"guest-[0-9a-f]{8}")


def is_guest(jid: str, vhost: str) -> bool:
    """Whether the bare JID is a guest's account of ``vhost``."""
    user, at, host = jid.partition("@")
    return bool(at) and host == vhost and GUEST_NAME.fullmatch(user) is not None


def guests_among(users: Iterable[str], vhost: str) -> list[str]:
    """The bare JIDs of the guests among the user names of ``vhost``'s accounts."""
    return [f"{user}@{vhost}" for user in users if GUEST_NAME.fullmatch(user)]


def is_abandoned(last: LastActivity, now: dt.datetime, after: dt.timedelta) -> bool:
    """Whether a guest last seen as ``last`` is abandoned at ``now``.

    Only ejabberd's last activity counts. orgchat's archive would add
    nothing: a guest writes only while online, so their last message is
    never later than their last session's end. An online guest, and one
    ejabberd knows no last activity of, are never abandoned.
    """
    return last.known and not last.online and now - last.at >= after
