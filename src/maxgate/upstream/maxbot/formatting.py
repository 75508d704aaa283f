"""GREEN-API's text marks as MAX formatting: ``*bold*``, ``_italic_``, ``~strike~``,
```` ```monospace``` ```` and ```inline code``` sent as MAX's HTML (``format: html``).

GREEN-API's clients write WhatsApp's marks (its v3 docs for MAX name no ``format`` field), and
MAX formats only when ``NewMessageBody.format`` asks it to. HTML rather than MAX's markdown
because HTML can say "this is literal": every character that is not part of a mark is escaped
(``&``, ``<``, ``>``), whereas MAX's markdown would also read ``**``, ``++``, ``^^``, ``[…](…)``
or a ``#`` line in an ordinary text, and documents no escape. A text with no mark goes as it
is, without ``format``, so plain texts reach MAX byte for byte (docs/max-bot.md#formatting).

A mark follows WhatsApp's rules: it opens at the start or after a character that is neither a
letter, digit nor the same mark, with no space after it; it closes before the end or such a
character, with no space before it; it does not span lines. So ``snake_case_names``,
``2*3*4`` and ``a * b * c`` stay as they are. Inside code nothing else is a mark.
"""

from __future__ import annotations

import html
import re

MAX_TEXT = 4000  # characters MAX takes in one message's text
_CODE = re.compile(r"```(.+?)```|`([^`\n]+)`", re.DOTALL)
_MARKS = (("*", "b"), ("_", "i"), ("~", "s"))


def _inline(mark: str) -> re.Pattern[str]:
    m = re.escape(mark)
    return re.compile(rf"(?<![^\W_]|{m}){m}(?=[^\s{m}])([^\n]*?[^\s{m}]|[^\s{m}]){m}(?![^\W_]|{m})")


_INLINE = [(_inline(mark), tag) for mark, tag in _MARKS]


def _marks(plain: str) -> str:
    """A stretch of text outside code: escaped, its bold, italic and strike marks as tags."""
    out = html.escape(plain, quote=False)
    for pattern, tag in _INLINE:
        out = pattern.sub(rf"<{tag}>\1</{tag}>", out)
    return out


def to_html(text: str) -> str:
    """``text`` with GREEN-API's marks as MAX's HTML tags and everything else escaped."""
    parts: list[str] = []
    at = 0
    for code in _CODE.finditer(text):
        parts.append(_marks(text[at : code.start()]))
        block, inline = code.group(1), code.group(2)
        if block is not None:
            parts.append(f"<pre>{html.escape(block, quote=False)}</pre>")
        else:
            parts.append(f"<code>{html.escape(inline, quote=False)}</code>")
        at = code.end()
    parts.append(_marks(text[at:]))
    return "".join(parts)


def new_body_text(text: str | None) -> dict[str, str]:
    """The ``text`` and ``format`` fields of a ``NewMessageBody`` for a GREEN-API text (a
    message or a caption): ``{"text": html, "format": "html"}`` when it has a mark, else the
    text as it is (``{}`` for no text). A text whose tags would take it over MAX's limit goes
    plain too: MAX would refuse it, and the marks are only looks."""
    if not text:
        return {}
    converted = to_html(text)
    if converted == html.escape(text, quote=False) or len(converted) > MAX_TEXT:
        return {"text": text}
    return {"text": converted, "format": "html"}
