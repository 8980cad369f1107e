"""The prose sentences of a chunk: Markdown/reST markup and code left out, sentences split by punctuation.

A question is built from one sentence (synth/template.py) or asked about one (synth/prompt.py), so
only prose counts: fenced and indented code, tables, headings, directive lines and reST underlines
are dropped; links keep their text, emphasis markers go, backticks stay (they mark identifiers).
Paragraphs (blank-line separated, list items each their own) are split after `.`, `!` or `?` followed
by a capital, a digit, a quote or a backtick, but not after a common abbreviation ("e.g.", "Dr.").
"""

from __future__ import annotations

import re

MIN_WORDS = 5
MAX_WORDS = 60

_QUOTE = re.compile(r"^\s*(?:>\s?)+")  # Markdown block quotes: the text without the markers
_FENCE = re.compile(r"^\s*(```|~~~)")
_DROP_LINE = re.compile(
    r"^\s*(?:#{1,6}\s|\||[=\-~^*+#`]{3,}\s*$|\.\. |:[\w -]+:\s|>>>|\.\.\.|\$ |\{[%{]|<[a-zA-Z/!]|\[[^\]]+\]:\s)"
)
_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)]|#\.)\s+")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_REST_LINK = re.compile(r"`([^`<]+?)\s*(?:<[^>]*>)?`__?")  # reST `text <url>`_ -> text
_CREDIT = re.compile(  # changelog credits: "by @user in #123", "(#222 by [@bbc2])", bare URLs
    r"\s*\(#\d+[^)]*\)|\s+by\s+\[?@[\w-]+\]?(?:\s+in\s+\S+)?|\s+in\s+#\d+|\s*<?https?://\S+>?"
)
_CODE_CHARS = re.compile(r"[=(){}\[\];<>#\\|$]")
_PROSE_WORD = re.compile(r"\b[a-z]{3,}\b")
_ROLE = re.compile(r":[\w:.-]+:`~?([^`<]+?)(?:\s*<[^>]*>)?`")  # reST :func:`name <target>` -> `name`
_EMPH = re.compile(r"(\*\*|\*(?=\S)|(?<=\S)\*)")
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'`(“])")
_ABBREV = re.compile(
    r"(?:\b(?:e\.g|i\.e|etc|vs|cf|Dr|Mr|Mrs|Ms|St|No|Fig|approx|ca|Jr|Sr|Inc|Co|Ltd|Corp|Gen|Rev)|"
    r"(?<![\w.])[A-Z]|(?:\b[A-Z]\.)+[A-Z])\.$",
    re.IGNORECASE,
)


def paragraphs(text: str) -> list[str]:
    """The prose paragraphs of `text` (a list item is a paragraph), markup removed, lines joined."""
    out: list[str] = []
    cur: list[str] = []
    in_code = False
    for line in text.splitlines():
        line = _QUOTE.sub("", line)
        if _FENCE.match(line):
            in_code = not in_code
            continue
        drop = (
            in_code or _DROP_LINE.match(line) or line.startswith(("    ", "\t")) and not _BULLET.match(line)
        )
        if drop or not line.strip() or _BULLET.match(line):
            if cur:
                out.append(" ".join(cur))
                cur = []
            if drop or not line.strip():
                continue
        cur.append(clean(_BULLET.sub("", line)).strip())
    if cur:
        out.append(" ".join(cur))
    return [p for p in out if p]


def clean(line: str) -> str:
    line = _ROLE.sub(r"`\1`", line)
    line = _REST_LINK.sub(r"\1", line)
    line = _LINK.sub(r"\1", line)
    line = _CREDIT.sub("", line)
    line = _EMPH.sub("", line)
    return line.rstrip(":") + "." if line.rstrip().endswith("::") else line


def sentences(text: str) -> list[str]:
    """The prose sentences of `text` with MIN_WORDS to MAX_WORDS words, in order."""
    out = []
    for para in paragraphs(text):
        parts: list[str] = []
        for piece in _SPLIT.split(para):
            if parts and _ABBREV.search(parts[-1]):
                parts[-1] += " " + piece
            else:
                parts.append(piece)
        out += [s.strip() for s in parts if MIN_WORDS <= len(s.split()) <= MAX_WORDS and is_prose(s)]
    return out


def is_prose(sentence: str) -> bool:
    """A sentence, not code: two lowercase words or more, few code characters outside backticks."""
    outside = re.sub(r"`[^`]*`", "", sentence)
    if sentence[0].islower() and not sentence.startswith(("e.g", "i.e")):
        return False  # the tail of a sentence a chunk boundary cut
    return len(_CODE_CHARS.findall(outside)) <= 2 and len(_PROSE_WORD.findall(outside)) >= 2
