"""Profanity, a terminal XMPP client nobody here wrote, driven through tmux.

The tests type into Profanity as a person would (``/connect``, ``/msg``,
``/cmd exec``, ``/form submit``) and read what a person reads: the text of
the terminal, captured with ``tmux capture-pane``. Nothing here looks at
Profanity's stanzas or logs to decide whether a test passes.

Each instance runs on a tmux server of its own (``tmux -L orgchat-NAME``),
with its own ``HOME``, ``XDG_CONFIG_HOME`` and ``XDG_DATA_HOME``, so instances
never share settings, certificates or windows, and stopping one stops nothing
else. ``remain-on-exit`` keeps the pane after Profanity exits, so a crash is
seen (and its last screen kept) instead of the session vanishing.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

#: Wide enough that a line of ours never wraps; tall enough for a form.
COLUMNS, ROWS = 220, 60

#: What gets in the way of reading the screen: the roster panel beside every
#: window, the splash logo, chat states and desktop notifications. Archive
#: (XEP-0313) fetching is off so that a chat window shows only this session.
PROFRC = """\
[ui]
splash=false
roster=false
occupants=false
wintitle.show=false
beep=false
flash=false

[notifications]
message=false
typing=false
invite=false
sub=false

[chatstates]
enabled=false

[presence]
autoaway.mode=off

[connection]
mam=false
"""

TMUX_CONF = """\
set-option -g remain-on-exit on
set-option -g history-limit 5000
"""

#: How the pane's process ended: tmux has an exit status only for an exit.
DEAD_FORMAT = (
    "#{?#{==:#{pane_dead_status},},killed by a signal,exited with status #{pane_dead_status}}"
)


class ProfanityDied(AssertionError):
    """The Profanity process is gone (a crash, or it quit)."""


class Profanity:
    """One Profanity process in a tmux pane, typed into and read like a person would."""

    def __init__(self, tmp: Path, name: str) -> None:
        self.name = name
        self.dir = tmp / name
        # A tmux server of its own, named (not a socket path in ``tmp``: socket
        # paths are limited to 107 bytes and pytest's temporary paths are long).
        self.server = f"orgchat-{name}"
        self.pid: int | None = None
        self._socket: Path | None = None
        self._started = False

    # -- life cycle ------------------------------------------------------------

    async def start(self) -> Profanity:
        """Start Profanity in a detached tmux session and wait for its prompt."""
        for tool in ("tmux", "profanity"):
            if shutil.which(tool) is None:
                raise AssertionError(f"{tool} is not installed (scripts/stack.sh installs it)")
        env = self._prepare()
        self._started = True
        await self._tmux(
            "-f",
            str(self.dir / "tmux.conf"),
            "new-session",
            "-d",
            "-s",
            self.name,
            "-x",
            str(COLUMNS),
            "-y",
            str(ROWS),
            *(arg for key, value in env.items() for arg in ("-e", f"{key}={value}")),
            # Two arguments: tmux runs it directly (no shell), so the pane's
            # process is Profanity itself.
            "profanity",
            "--log=DEBUG",  # data/profanity/logs/profanity.log, to debug a failure
        )
        pid, socket = (
            await self._tmux("display-message", "-p", "-t", self.name, "#{pane_pid} #{socket_path}")
        ).split()
        self.pid, self._socket = int(pid), Path(socket)
        await self.wait_for("Type /help for help information")
        return self

    async def stop(self) -> None:
        """Stop this instance's tmux server, and Profanity with it; idempotent."""
        if not self._started:
            return
        proc = await asyncio.create_subprocess_exec(
            "tmux",
            "-L",
            self.server,
            "kill-server",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await proc.wait()
        if self._socket is not None:  # tmux leaves it behind
            self._socket.unlink(missing_ok=True)
        self._started = False

    async def alive(self) -> bool:
        """Whether the Profanity process still runs (not exited, not a zombie)."""
        if self.pid is None or not self._started:
            return False
        try:
            dead = await self._tmux("display-message", "-p", "-t", self.name, "#{pane_dead}")
        except AssertionError:  # no tmux server or session any more
            return False
        return dead.strip() == "0" and _running(self.pid, "profanity")

    async def exit_status(self) -> str:
        """How the pane's process ended, for failure messages."""
        try:
            return (await self._tmux("display-message", "-p", "-t", self.name, DEAD_FORMAT)).strip()
        except AssertionError as exc:
            return str(exc)

    # -- typing and reading ----------------------------------------------------

    async def type(self, line: str) -> None:
        """Type a line and press Enter."""
        await self._tmux("send-keys", "-t", self.name, "-l", "--", line)
        await self._tmux("send-keys", "-t", self.name, "Enter")

    async def screen(self) -> str:
        """The text on the terminal now, trailing blanks removed."""
        text = await self._tmux("capture-pane", "-p", "-t", self.name)
        return "\n".join(line.rstrip() for line in text.splitlines())

    async def wait_for(self, pattern: str | re.Pattern[str], timeout: float = 15) -> re.Match[str]:
        """Wait until ``pattern`` (a regex, or a literal string) is on the screen.

        Fails at once, with the last screen, if Profanity is no longer running.
        """
        regex = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            text = await self.screen()
            found = regex.search(text)
            if found is not None:
                return found
            if not await self.alive():
                raise ProfanityDied(
                    f"Profanity is not running ({await self.exit_status()}) while waiting "
                    f"for {regex.pattern!r}; its last screen:\n{text}"
                )
            if loop.time() > deadline:
                raise AssertionError(
                    f"{regex.pattern!r} not on Profanity's screen within {timeout}s:\n{text}"
                )
            await asyncio.sleep(0.1)

    async def clear(self) -> None:
        """Clear the current window (``/clear``), so the next wait sees only new text."""
        await self.type("/clear")
        deadline = asyncio.get_running_loop().time() + 10
        # The window's own lines start with a time stamp; none are left after /clear.
        while re.search(r"^\d\d:\d\d:\d\d ", await self.screen(), re.MULTILINE):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"/clear left text on the screen:\n{await self.screen()}")
            await asyncio.sleep(0.05)

    # -- what a person does ----------------------------------------------------

    async def connect(self, jid: str, password: str) -> str:
        """Log in as a person does with a self-signed server certificate.

        ``/connect``, the password at its prompt, then ``/tls allow`` when
        Profanity shows the certificate. Returns the full JID it logged in as.
        """
        await self.type(f"/connect {jid} server 127.0.0.1 tls allow")
        await self.wait_for("Enter password:")
        await self.type(password)
        await self.wait_for("Use '/tls allow' to accept this certificate.")
        await self.type("/tls allow")
        found = await self.wait_for(
            re.compile(rf"({re.escape(jid)}/\S+) logged in successfully"), timeout=20
        )
        return found.group(1)

    async def form_tags(self) -> dict[str, str]:
        """The open form's fields as shown, ``{label: tag}`` (tags are field1, field2...)."""
        text = await self.screen()
        return {
            m.group(2): m.group(1)
            for m in re.finditer(
                r"^\d\d:\d\d:\d\d - \[(field\d+)\] (.+?)(?: \(required\))?:", text, re.M
            )
        }

    # -- internals -------------------------------------------------------------

    def _prepare(self) -> dict[str, str]:
        """Write the instance's own settings; return the environment Profanity runs in."""
        home, config, data = (self.dir / d for d in ("home", "config", "data"))
        for d in (home, config / "profanity", data):
            d.mkdir(parents=True, exist_ok=True)
        (config / "profanity" / "profrc").write_text(PROFRC)
        (self.dir / "tmux.conf").write_text(TMUX_CONF)
        return {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(config),
            "XDG_DATA_HOME": str(data),
            "LANG": "C.UTF-8",
            "TERM": "tmux-256color",
        }

    async def _tmux(self, *args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            "tmux",
            "-u",
            "-L",
            self.server,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {err.decode(errors='replace')}")
        return out.decode(errors="replace")


def _running(pid: int, name: str) -> bool:
    """The process exists, is not a zombie, and is the program ``name``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z" and name.encode() in cmdline
