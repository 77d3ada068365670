# ruff: noqa: RUF001, RUF002, RUF003  (Cyrillic in patterns and examples is intended)
"""The new text of an email reply: quotes, attributions and signatures removed.

:func:`strip_reply` works on the text/plain body of a reply (RFC 5322 body,
already decoded); :func:`html_to_text` turns an HTML-only reply into such text
first; :func:`unflow` undoes RFC 3676 ``format=flowed`` line wrapping.

What is cut, from the first line that matches to the end:

* an attribution ("quote header") line, possibly wrapped over up to three
  lines: "On <date>, <name> wrote:" (English), "Am ... schrieb ...:" (German),
  "Le ... a écrit :" (French), "пн, 27 нояб. 2026 г. в 21:15, Имя <...>:"
  (Russian Gmail), "... написал(а):" / "... пишет:" (Russian), and the
  Spanish, Italian, Portuguese, Dutch, Polish and Swedish equivalents;
  a bare "<name> wrote:" counts only when ``>`` quoted lines follow it;
* an Outlook divider ("-----Original Message-----" and its translations,
  forwarded-message dividers) or an Outlook header block: a "From:" line
  ("Von:", "De :", "От:", ...) followed within four lines by "Sent:"/"Date:"
  (and translations);
* a signature delimiter, ``-- `` (RFC 3676 section 4.3; also without the
  trailing space, which some clients strip), and the common mobile
  signatures ("Sent from my iPhone", "Von meinem iPhone gesendet", "Envoyé de
  mon iPhone", "Отправлено с iPhone", "Get Outlook for Android", ...).

Lines quoted with ``>`` are dropped wherever they are. If nothing is left above
the first quote header, the reply was bottom-posted: the text below the quote
is taken instead (the header and the quoted lines removed, still cut at a
signature).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

__all__ = ["html_to_text", "strip_reply", "unflow"]

_F = re.IGNORECASE | re.UNICODE

#: Attribution lines that are a quote header on their own (matched against one
#: line, or two or three consecutive lines joined with a space).
_HEADERS = [
    # English: Gmail, Apple Mail, Thunderbird ("On 27/11/2026 21:15, X wrote:").
    re.compile(r"^on\s.{3,300}\swrote\s?:$", _F),
    # German: "Am 27.11.2026 um 21:15 schrieb X:", Gmail "Am Fr., 27. Nov. 2026 um
    # 21:15 Uhr schrieb X <x@y>:"; "X schrieb am 27.11.2026 um 21:15:".
    re.compile(r"^am\s.{3,300}\sschrieb\s.{1,300}:$", _F),
    re.compile(r"^.{1,300}\sschrieb\sam\s.{3,200}:$", _F),
    # French: Gmail "Le ven. 27 nov. 2026 à 21:15, X <x@y> a écrit :".
    re.compile(r"^le\s.{3,300}\sa\s+écrit\s?:$", _F),
    # Russian Gmail: "пт, 27 нояб. 2026 г. в 21:15, X <x@y>:".
    re.compile(
        r"^(?:(?:пн|вт|ср|чт|пт|сб|вс),\s*)?\d{1,2}\s+[а-яё]+\.?\s+\d{4}\s*г\.\s*,?\s*в\s+"
        r"\d{1,2}:\d{2}.{0,300}:$",
        _F,
    ),
    # Mail.ru: "Пятница, 27 ноября 2026, 21:15 +03:00 от X <x@y>:".
    re.compile(
        r"^[а-яё]+,\s+\d{1,2}\s+[а-яё]+\s+\d{4},\s+\d{1,2}:\d{2}.{0,40}\sот\s.{1,300}:$", _F
    ),
    # Numeric date, time and an address (Yandex "27.11.2026, 21:15, "X" <x@y>:").
    re.compile(
        r"^\d{1,2}[./]\d{1,2}[./]\d{2,4},?\s+\d{1,2}:\d{2},?\s.{0,200}<[^<>@\s]+@[^<>\s]+>:$"
    ),
    # Spanish, Portuguese, Italian, Dutch, Polish, Swedish.
    re.compile(r"^el\s.{3,300}\sescribió\s?:$", _F),
    re.compile(r"^em\s.{3,300}\sescreveu\s?:$", _F),
    re.compile(r"^il\s.{3,300}\sha\sscritto\s?:$", _F),
    re.compile(r"^op\s.{3,300}\sschreef\s.{1,300}:$", _F),
    re.compile(r"^(?:w\sdniu|dnia)\s.{3,300}\s(?:pisze|napisał\(a\)|napisał|napisała)\s?:$", _F),
    re.compile(r"^den\s.{3,300}\sskrev\s.{1,300}:$", _F),
]

#: Attribution lines too loose to trust unless ``>`` quoted lines follow (or
#: nothing, or a signature: what remains of an HTML reply without its
#: blockquote): "X wrote:", Russian Apple Mail "27 нояб. 2026 г., в 21:15,
#: X <x@y> написал(а):", Thunderbird/Yandex "27.11.2026 21:15, X пишет:".
_LOOSE_HEADERS = [
    re.compile(
        r"^.{1,300}\s(?:wrote|writes|schrieb|a\s+écrit|escribió|ha\sscritto|написал\(а\)|"
        r"написал|написала|пишет)\s?:$",
        _F,
    ),
]

#: Dividers after which everything is the quoted (or forwarded) message.
_DIVIDERS = re.compile(
    r"^(?:-{2,}\s*(?:original\s+message|ursprüngliche\s+nachricht|message\s+d'origine|"
    r"исходное\s+сообщение|mensaje\s+original|messaggio\s+originale|"
    r"oorspronkelijk\s+bericht|forwarded\s+message|weitergeleitete\s+nachricht|"
    r"message\s+transféré|пересылаемое\s+сообщение|пересланное\s+сообщение)\s*-{2,}|"
    r"begin\s+forwarded\s+message:|anfang\s+der\s+weitergeleiteten\s+nachricht:|"
    r"début\s+du\s+message\s+réexpédié\s?:|начало\s+переадресованного\s+сообщения:)$",
    _F,
)

_FROM_LINE = re.compile(r"^\*?(?:from|von|de|от|van|da|od|från)\s?:\*?\s*\S", _F)
_SENT_LINE = re.compile(
    r"^\*?(?:sent|date|gesendet|datum|envoyé|date|отправлено|дата|verzonden|inviato|"
    r"enviado|fecha|wysłano|data|skickat)\s?:\*?\s*\S",
    _F,
)

_SIGNATURE = re.compile(r"^--\s?$")
_DEVICE = (
    r"(?:iphone|ipad|ipod|android|galaxy|samsung|blackberry|huawei|xiaomi|pixel|"
    r"mobile|phone|smartphone|tablet|windows\s+phone)"
)
_MOBILE = re.compile(
    r"^(?:sent\s+from\s+(?:my\s+)?" + _DEVICE + r"\b.{0,40}|"
    r"sent\s+from\s+(?:outlook|mail\s+for\s+windows|yahoo\s+mail)\b.{0,40}|"
    r"get\s+outlook\s+for\s+(?:ios|android)\b.{0,20}|"
    r"von\s+meinem\s+.{1,40}\s+gesendet|gesendet\s+von\s+meinem\s+.{1,40}|"
    r"envoyé\s+(?:de|depuis)\s+mon\s+.{1,40}|"
    r"enviado\s+desde\s+mi\s+.{1,40}|inviato\s+da\s+(?:iphone|ipad|android|mobile)\b.{0,40}|"
    r"отправлено\s+(?:с|со|из)\s+(?:моего\s+)?(?:iphone|ipad|android|samsung|galaxy|"
    r"мобильн|устройств|приложени|почты|яндекс|mail\.ru)\S*.{0,60})$",
    _F,
)
_RULE = re.compile(r"^[_\-=*~]{5,}$")


def _quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _next_content(lines: list[str], start: int) -> str | None:
    # By index, not over a slice: a slice copies the rest of the text on every
    # call, which made a long reply quadratic.
    for i in range(start, len(lines)):
        if lines[i].strip():
            return lines[i]
    return None


def _header_span(lines: list[str], i: int) -> int:
    """How many lines (1-3) an attribution starting at ``lines[i]`` spans; 0: none.

    An attribution wrapped over several lines must start a paragraph (first
    line, or after a blank line), so that a line of the reply above it is never
    taken for its beginning.
    """
    first = lines[i].strip()
    if not first or _quoted(first):
        return 0
    may_wrap = i == 0 or not lines[i - 1].strip()
    joined = first
    for span in range(1, 4 if may_wrap else 2):
        if span > 1:
            if i + span - 1 >= len(lines):
                break
            nxt = lines[i + span - 1].strip()
            if not nxt or _quoted(nxt):
                break
            joined = f"{joined} {nxt}"
        if any(p.match(joined) for p in _HEADERS):
            return span
        if any(p.match(joined) for p in _LOOSE_HEADERS):
            following = _next_content(lines, i + span)
            if following is None or _quoted(following) or _is_signature(following):
                return span
    return 0


def _is_outlook_block(lines: list[str], i: int) -> bool:
    if not _FROM_LINE.match(lines[i].strip()):
        return False
    return any(_SENT_LINE.match(line.strip()) for line in lines[i + 1 : i + 5])


def _is_signature(line: str) -> bool:
    return bool(_SIGNATURE.match(line) or _MOBILE.match(line.strip()))


def _clean(lines: list[str]) -> str:
    kept = [line.rstrip() for line in lines if not _quoted(line)]
    while kept and (not kept[-1].strip() or _RULE.match(kept[-1].strip())):
        kept.pop()
    text = "\n".join(kept).strip("\n")
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def strip_reply(text: str) -> str:
    """Only the text the replier wrote (see the module documentation)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    first_header: tuple[int, int] | None = None
    cut = len(lines)
    for i, line in enumerate(lines):
        if _is_signature(line):
            cut = i
            break
        if _DIVIDERS.match(line.strip()) or _is_outlook_block(lines, i):
            cut = i
            break
        span = _header_span(lines, i)
        if span:
            first_header = (i, span)
            cut = i
            break
    top = _clean(lines[:cut])
    if top or first_header is None:
        return top
    # Bottom-posted: the new text follows the quote.
    start, span = first_header
    rest = lines[start + span :]
    end = len(rest)
    for j, line in enumerate(rest):
        if (
            _is_signature(line)
            or _DIVIDERS.match(line.strip())
            or _is_outlook_block(rest, j)
            or (not _quoted(line) and _header_span(rest, j))
        ):
            end = j
            break
    return _clean(rest[:end])


def unflow(text: str, *, delsp: bool = False) -> str:
    """Undo RFC 3676 ``format=flowed``: join soft line breaks, remove space-stuffing.

    A line ending in a space continues on the next line of the same quote depth;
    the signature delimiter ``-- `` is never joined; with ``DelSp=yes`` the
    trailing space of a flowed line is deleted.
    """
    out: list[str] = []
    pending: str | None = None
    pending_depth = 0
    for raw in text.replace("\r\n", "\n").split("\n"):
        depth = len(raw) - len(raw.lstrip(">"))
        body = raw[depth:]
        if body.startswith(" "):
            body = body[1:]  # space-stuffing (section 4.4)
        flowed = body.endswith(" ") and body != "-- "
        if flowed and delsp:
            body = body[:-1]
        if pending is not None and depth == pending_depth:
            body = pending + body
        elif pending is not None:
            out.append(">" * pending_depth + (" " if pending_depth else "") + pending)
        pending = None
        if flowed:
            pending, pending_depth = body, depth
            continue
        out.append(">" * depth + (" " if depth else "") + body)
    if pending is not None:
        out.append(">" * pending_depth + (" " if pending_depth else "") + pending)
    return "\n".join(out)


_SKIP = frozenset({"script", "style", "head", "title", "blockquote", "template", "noscript"})
_BLOCK = frozenset(
    {
        "p",
        "div",
        "section",
        "article",
        "header",
        "footer",
        "ul",
        "ol",
        "table",
        "tr",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "pre",
        "address",
        "center",
        "dl",
        "dt",
        "dd",
        "form",
        "fieldset",
        "figure",
        "main",
        "nav",
        "aside",
    }
)
_PARAGRAPH = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table", "pre"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._skip: dict[str, int] = {}
        self._pre = 0

    @property
    def skipping(self) -> bool:
        return any(self._skip.values())

    def _newlines(self, count: int) -> None:
        self._parts.append("\n" * count)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skip[tag] = self._skip.get(tag, 0) + 1
            return
        if self.skipping:
            return
        if tag == "br":
            self._newlines(1)
        elif tag == "hr":
            self._newlines(1)
            self._parts.append("\x00RULE\x00")
            self._newlines(1)
        elif tag == "li":
            self._newlines(1)
            self._parts.append("- ")
        elif tag in ("td", "th"):
            self._parts.append(" ")
        elif tag in _BLOCK:
            self._newlines(2 if tag in _PARAGRAPH else 1)
        if tag == "pre":
            self._pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            if self._skip.get(tag):
                self._skip[tag] -= 1
            if tag == "blockquote" and not self.skipping:
                self._newlines(1)
            return
        if self.skipping:
            return
        if tag == "pre" and self._pre:
            self._pre -= 1
        if tag in _BLOCK:
            self._newlines(2 if tag in _PARAGRAPH else 1)

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if self._pre:
            # Protected from the stripping of text(); restored there.
            self._parts.append(data.replace(" ", "\x01").replace("\t", "\x02"))
        else:
            self._parts.append(re.sub(r"[ \t\r\n\f]+", " ", data))

    def text(self) -> str:
        raw = "".join(self._parts)
        lines = [line.strip(" \t") for line in raw.split("\n")]
        lines = ["-- " if line == "--" else line for line in lines]
        out = "\n".join("-" * 20 if line == "\x00RULE\x00" else line for line in lines)
        out = out.replace("\xa0", " ").replace("\x01", " ").replace("\x02", "\t")
        out = re.sub(r"\n{3,}", "\n\n", out)
        return out.strip("\n")


def html_to_text(html: str) -> str:
    """Visible text of an HTML body, ``<blockquote>`` (the quoted message), scripts
    and styles left out; block elements and ``<br>`` become line breaks."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return parser.text()
