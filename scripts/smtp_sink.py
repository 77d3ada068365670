#!/usr/bin/env python3
"""Development SMTP sink: every message received is kept as one ``.eml`` file.

The development and test stack (``scripts/stack.sh``) runs it on
127.0.0.1:2525 with ``--maildir .run/mail``: orgchat's email notifier sends
there, nothing is relayed, and the integration tests read the directory.

Each file holds the message exactly as received, preceded by two headers
carrying the SMTP envelope, which the message itself may not show (Bcc)::

    X-Sink-Envelope-From: <sender@example>
    X-Sink-Envelope-To: <rcpt1@example>, <rcpt2@example>

File names sort in arrival order, ``20261127T211500.123456Z-000001.eml``
(UTC time + counter). A message is written to a hidden temporary file in the
same directory, then renamed: a reader never sees half a message, and
``*.eml`` only ever matches complete ones.

AUTH is offered and any credentials are accepted, so a client configured with
a user and password works as well as one without. One logfmt line per
message goes to stderr (the stack appends it to ``.run/log/smtp.log``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any, NoReturn

PROG = "smtp_sink"

# aiosmtpd 1.4 logs a warning about its own legacy attribute at every AUTH.
logging.getLogger("mail.log").addFilter(
    lambda record: "login_data is deprecated" not in record.getMessage()
)


def log(event: str, **fields: object) -> None:
    """One logfmt line: ``ts=... event=... key=value``."""
    parts = [f"ts={dt.datetime.now(dt.UTC).isoformat(timespec='milliseconds')}", f"event={event}"]
    for key, value in fields.items():
        text = str(value)
        if not text or any(c in text for c in ' ="'):
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        parts.append(f"{key}={text}")
    print(" ".join(parts), file=sys.stderr, flush=True)


class Maildir:
    """Stores messages as ``.eml`` files, atomically, named in arrival order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._counter = itertools.count(1)

    def store(self, mail_from: str, rcpt_tos: list[str], content: bytes) -> Path:
        eol = b"\r\n" if b"\r\n" in content[:4096] else b"\n"
        recipients = b", ".join(b"<%s>" % rcpt.encode() for rcpt in rcpt_tos)
        envelope = b"X-Sink-Envelope-From: <%s>%sX-Sink-Envelope-To: %s%s" % (
            mail_from.encode(),
            eol,
            recipients,
            eol,
        )
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".eml", dir=self.path)
        try:
            os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide mail from other users
            with os.fdopen(fd, "wb") as fh:
                fh.write(envelope + content)
            while True:
                final = self.path / f"{stamp}-{next(self._counter):06d}.eml"
                if not final.exists():
                    break
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return final


class Handler:
    """aiosmtpd handler: accept every recipient, store every message."""

    def __init__(self, maildir: Maildir) -> None:
        self.maildir = maildir

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.original_content or b""
        try:
            path = await asyncio.to_thread(
                self.maildir.store, envelope.mail_from or "", list(envelope.rcpt_tos), content
            )
        except OSError as exc:
            log("mail_store_failed", error=exc)
            return "451 Requested action aborted: cannot store the message"
        log(
            "mail_received",
            file=path.name,
            mail_from=envelope.mail_from or "",
            rcpt_to=",".join(envelope.rcpt_tos),
            bytes=len(content),
            peer=session.peer[0] if session.peer else "",
            auth_user=_auth_user(session),
        )
        return "250 Message accepted for delivery"


def _auth_user(session: Any) -> str:
    login = getattr(session.auth_data, "login", None)
    return login.decode(errors="replace") if isinstance(login, bytes) else ""


def _accept_any_login(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> Any:
    from aiosmtpd.smtp import AuthResult

    return AuthResult(success=True, auth_data=auth_data)


async def serve(host: str, port: int, maildir: Maildir) -> int:
    from aiosmtpd.smtp import SMTP

    loop = asyncio.get_running_loop()
    handler = Handler(maildir)

    def factory() -> Any:
        # An explicit hostname: the default resolves the machine's FQDN, which can
        # take seconds on a host without DNS.
        return SMTP(
            handler,
            hostname="orgchat-smtp-sink",
            enable_SMTPUTF8=True,
            authenticator=_accept_any_login,
            auth_require_tls=False,
        )

    try:
        server = await loop.create_server(factory, host, port)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        print(f"{PROG}: error: cannot listen on {host}:{port}: {reason}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log("smtp_sink_started", host=host, port=port, maildir=maildir.path, pid=os.getpid())
    await stop.wait()
    server.close()
    await server.wait_closed()
    log("smtp_sink_stopped")
    return 0


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line on stderr and exit status 2, no usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message}\n")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range 1-65535: {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog=PROG, description="Development SMTP server storing mail as .eml files.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=_port, default=2525, help="port to listen on (2525)")
    parser.add_argument(
        "--maildir", type=Path, default=Path(".run/mail"), help="where .eml files go (.run/mail)"
    )
    args = parser.parse_args(argv)
    if not args.host:
        parser.error("--host must not be empty")
    try:
        args.maildir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        parser.error(f"--maildir {args.maildir}: {exc.strerror}")
    if not os.access(args.maildir, os.W_OK | os.X_OK):
        parser.error(f"--maildir {args.maildir}: not writable")
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        print(f"{PROG}: error: aiosmtpd is not installed (pip install aiosmtpd)", file=sys.stderr)
        return 1
    return asyncio.run(serve(args.host, args.port, Maildir(args.maildir.resolve())))


if __name__ == "__main__":
    sys.exit(main())
