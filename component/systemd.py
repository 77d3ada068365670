"""systemd's service notifications (sd_notify(3)): readiness, status, watchdog.

Under a unit with ``Type=notify`` (deploy/orgchat@.service), systemd passes a
datagram socket in ``NOTIFY_SOCKET``; the component says ``READY=1`` once its
stream to ejabberd is up, ``STATUS=…`` when it is lost or back, and
``STOPPING=1`` when it shuts down. With ``WatchdogSec=``, systemd also passes
``WATCHDOG_USEC``: the component then sends ``WATCHDOG=1`` from its event loop
at half that interval, so that a loop that hangs gets the process restarted.

The protocol is one datagram of ``KEY=value`` lines; it is written here with
the standard library (the python-systemd binding is a C extension of the
distribution, not an installable wheel). Outside systemd, nothing is sent.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping

from component.logs import get_logger
from storage.errors import raise_if_cancelling

log = get_logger(__name__)


class Notifier:
    """The ``NOTIFY_SOCKET`` of this process, if systemd gave one."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        address = environ.get("NOTIFY_SOCKET", "")
        # An abstract socket is named with a leading "@" (a NUL byte on the wire).
        self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        #: Seconds between two watchdog pings (half systemd's interval), or None.
        self.watchdog_interval = int(usec) / 2_000_000 if usec.isdigit() and mine else None

    def notify(self, *fields: str) -> None:
        """Send ``KEY=value`` fields; a failure is logged, never raised."""
        if not self.address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto("\n".join(fields).encode(), self.address)
        except OSError as exc:
            log.warning("systemd.notify_failed", error=str(exc))

    async def watchdog(self) -> None:
        """Ping systemd's watchdog from the event loop; runs until cancelled."""
        if self.watchdog_interval is None:
            return
        while True:
            raise_if_cancelling()
            self.notify("WATCHDOG=1")
            await asyncio.sleep(self.watchdog_interval)
