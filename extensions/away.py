"""When a closed company opens (``urn:orgchat:away:0``), beside an away reply's text.

An away reply's body says when the company opens, in the company's own time
zone: the component does not know the reader's (clients are not asked, see
component/features/notify/away.py). No XEP carries a business's next opening
time, so the reply also carries it as an instant, which a client can show in
its reader's own zone (the web page does)::

    <opens xmlns="urn:orgchat:away:0" at="2026-11-30T02:00:00Z"/>
"""

from __future__ import annotations

import datetime as dt

NS = "urn:orgchat:away:0"


def opens_element(opens: dt.datetime) -> str:
    """The payload of an away reply for a company that opens at ``opens`` (aware)."""
    stamp = opens.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f'<opens xmlns="{NS}" at="{stamp}"/>'
