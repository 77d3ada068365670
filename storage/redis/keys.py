"""Every Redis key orgchat uses; each starts with the store's ``prefix + ":"``.

* ``{prefix}:presence:{agent_jid}``: an agent's presence, one hash field per
  resource (:mod:`.presence`);
* ``{prefix}:presence-generation``: names the presence data Redis holds;
* ``{prefix}:limit:{window_s}:{kind}:{subject}``: a fixed-window counter
  (:class:`~storage.models.Limit`); a counter about one person ends with
  ``:{bare JID}`` (``customer:anna@localhost``), which is how
  :func:`limits_of` finds them;
* ``{prefix}:seen:{kind}:{part}:{part}...``: a mark done once within a time
  (:class:`~storage.models.Once`).
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.models import Limit, Once


def presence(prefix: str, agent_jid: str) -> str:
    return f"{prefix}:presence:{agent_jid}"


def presence_generation(prefix: str) -> str:
    return f"{prefix}:presence-generation"


def limit(prefix: str, window_s: int, kind: Limit, subject: str | int) -> str:
    """A subject is its text: 7 and "7" are one counter."""
    return f"{prefix}:limit:{window_s}:{kind}:{subject}"


def limits_of(prefix: str, jid: str) -> str:
    """A glob pattern matching every counter about ``jid``."""
    return f"{_glob_escape(prefix)}:limit:*:{_glob_escape(jid)}"


def seen(prefix: str, kind: Once, parts: Sequence[str | int]) -> str:
    """A mark is its parts joined by colons."""
    return ":".join([f"{prefix}:seen:{kind}", *(str(part) for part in parts)])


def _glob_escape(text: str) -> str:
    """``text`` matched literally by a Redis glob pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)
