"""Answer first: the spans of a chunk worth asking about, by rules, ranked so the most askable come first.

Each rule finds one type of span in a prose sentence (synth/sentences.py), in this order; a span that
overlaps one found by an earlier rule is skipped:

| type | what |
|---|---|
| identifier | a backticked term; `name()`; dotted.names; snake_case; camelCase; `--option`; `__dunder__` |
| date | "12 March 1999", "March 12, 1999", "March 1999" |
| year | 1000-2099 (and "1990s") |
| number | digits, with a unit of scale or % ("1,500", "3.5 million", "40%"), or two..twenty spelled out |
| term | a defined term: "X is a/an/the ...", "called X", "known as X", "named X" |
| name | capitalised words not starting the sentence, or two to four starting it ("Mara Quill") |
| phrase | the last resort: one or two words after a determiner ("the string representation") |

Ranking (`score`): the type (phrases last), distinctive (the span once in the chunk, not the chunk's
title, not a stop word or a bare 0/1), short (1-4 words), and from a sentence of reasonable length
that does not open with a pronoun. `pick_spans` then takes the best spans from different sentences
first, so a chunk's questions are not all about one sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from synth.sentences import sentences

MAX_SPAN_WORDS = 4


def wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
_SPELLED = (
    "two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty"
)
_LINKS = r"(?:of|the|de|da|von|van|der|la|le|du|and|for|on|upon)"
_CAP = r"[A-Z][\w'’\-]*[\w]"
_DET = r"(?:[Tt]he|[Aa]n?|[Tt]his|[Ee]ach|[Ee]very|[Ii]ts|[Tt]heir|his|her|our|your)"

# (type, pattern); the span is group "s" when the pattern names it, else the whole match.
RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("identifier", re.compile(r"(?P<q>``?)(?P<s>[^`\n]{1,40})(?P=q)")),
    ("identifier", re.compile(r"(?<![\w.])(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*\(\)")),
    ("identifier", re.compile(r"(?<![\w-])--?[a-z][\w-]+")),
    ("identifier", re.compile(r"\b__\w+__\b")),
    ("identifier", re.compile(r"(?<![\w.])[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+(?![\w(])(?<!\.)")),
    ("identifier", re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")),
    ("identifier", re.compile(r"\b(?:[a-z]+[A-Z]\w*|[A-Z][a-z]+[A-Z]\w*)\b")),
    (
        "date",
        re.compile(rf"\b(?:\d{{1,2}} {_MONTH},? \d{{4}}|{_MONTH} \d{{1,2}}, \d{{4}}|{_MONTH} \d{{4}})\b"),
    ),
    ("year", re.compile(r"\b(?:1\d{3}|20\d{2})s?\b(?![.,]\d)")),
    (
        "number",
        re.compile(
            r"(?<![\w.])(?>\d[\d,]*(?:\.\d+)*)(?:\s?%| percent|\s(?:thousand|million|billion|trillion))?(?!\w)"
        ),
    ),
    ("number", re.compile(rf"\b(?:{'|'.join(_SPELLED.split())})\b", re.IGNORECASE)),
    (
        "term",
        re.compile(
            r"^(?:(?:The|An?)\s+)?(?P<s>[\w-]+(?: [\w-]+){0,2}) (?:is|are|was|were|refers to|means) "
            r"(?:a|an|the|one|used|called)\b"
        ),
    ),
    (
        "term",
        re.compile(
            r"\b(?:called|named|known as|termed|referred to as|dubbed) [\"“']?(?P<s>[\w-]+(?: [A-Z][\w-]*)*)"
        ),
    ),
    ("name", re.compile(rf"{_CAP}(?:\s+(?:{_LINKS}\s+)?{_CAP}){{0,6}}(?:\s\d+\b(?![.,–-]\d))?")),
    ("phrase", re.compile(rf"\b{_DET} (?P<s>[a-z][a-z-]{{2,}}(?: [a-z][a-z-]{{2,}})?)\b")),
)
TYPE_WEIGHT = {
    "identifier": 3.0,
    "date": 3.0,
    "year": 3.0,
    "term": 3.0,
    "name": 2.8,
    "number": 2.5,
    "phrase": 1.0,
}
STOP = wordset(
    "a an the of in on at to for by with from and or but is are was were be been being it its this that "
    "these those there here which what who whom whose when where why how as into than then also not no "
    "can may must should would could will shall do does did has have had he she they we you i one all "
    "any each every some such other more most many much very only same own so if else see use used "
    "note example following however since after before during while although because unlike like "
    "e.g i.e etc"
)
_OPENERS = wordset("use call set add pass run return read write see note make let")
_ORDINALS = wordset("first second third fourth fifth sixth seventh eighth ninth tenth last next")
_PRONOUN_START = re.compile(r"^(?:It|This|That|They|These|Those|He|She|Its|Their|His|Her)\b")
_WORD = re.compile(r"\w+")
_PHRASE_END_BAD = re.compile(r"(?:ly|ing|ed)$")


@dataclass(frozen=True)
class Span:
    """An answer candidate: `text` as the chunk spells it (no backticks), found at sentence[start:end]
    (backticks included), of `kind` (a RULES type)."""

    text: str
    sentence: str
    start: int
    end: int
    kind: str
    score: float = 0.0


def spans_in(sentence: str) -> list[Span]:
    """Every rule's spans in one sentence, earlier rules first, none overlapping."""
    taken: list[tuple[int, int]] = []
    out = []
    for kind, rx in RULES:
        for m in rx.finditer(sentence):
            g = "s" if "s" in rx.groupindex else 0
            start, end = (m.start(0), m.end(0)) if kind == "identifier" and g else m.span(g)
            text = _trim(kind, m.group(g), at_start=m.start(g) == 0)
            if not text or any(start < b and a < end for a, b in taken):
                continue
            if kind != "identifier" or not g:
                start = sentence.index(text, start)
                end = start + len(text)
            k = "number" if kind == "year" and re.match(r"\s+[a-z]+s\b", sentence[end:]) else kind
            if _usable(k, text, sentence, start):  # a "year" before "guests" is a count
                taken.append((start, end))
                out.append(Span(text, sentence, start, end, k))
    return out


def _trim(kind: str, text: str, at_start: bool) -> str:
    text = text.strip().strip(".,;:!?\"'“”")
    if kind == "name":
        text = re.sub(r"['’]s$", "", text)  # "ABC's" -> "ABC"
    first, _, rest = text.partition(" ")
    if kind == "name" and rest and (first.lower() in STOP or at_start and first.lower() in _OPENERS):
        text = rest  # "The Eiffel Tower" -> "Eiffel Tower"; "Use Python" (opening the sentence) -> "Python"
    if kind == "phrase" and rest and rest.lower() in STOP:
        text = first  # "the function that" -> "function"
    return text


def _usable(kind: str, text: str, sentence: str, start: int) -> bool:
    n = len(text.split())
    if start and sentence[start - 1] in "#@$%/\\-":
        return False  # an issue number, a handle, a path part
    if not 1 <= n <= MAX_SPAN_WORDS or not _WORD.search(text):
        return False
    low = text.lower()
    if re.match(r"i['’]", low):
        return False  # "I'll"
    if low in STOP or all(w in STOP for w in _WORD.findall(low)):
        return False
    if kind == "name" and start == 0 and n < 2:
        return False  # a capitalised first word is just a sentence start
    if kind == "phrase" and (_PHRASE_END_BAD.search(low) or _noun_goes_on(sentence[start + len(text) :])):
        return False
    if kind in ("term", "identifier") and low.split()[0] in STOP:
        return False
    if kind == "phrase" and low.split()[0] in _ORDINALS:
        return False
    if kind == "name" and sentence[start - 1 : start] == "(" and sentence[start + len(text) :][:1] == ")":
        return False  # "(NFL)": an abbreviation of the name before it
    if kind == "identifier" and text.isalpha() and _after_capitalised(sentence, start):
        return False  # "Audra McDonald": a name, not a camelCase identifier
    if kind in ("number", "year") and not _free_number(sentence, start, start + len(text)):
        return False
    return kind != "term" or text[0].isupper() or start > 0 or n <= 3


def _noun_goes_on(after: str) -> bool:
    """The word after a phrase continues it ("the entire standard | library")."""
    m = re.match(r"\s+([a-z][a-z-]*)\b", after)
    return bool(m) and m.group(1) not in STOP


def _after_capitalised(sentence: str, start: int) -> bool:
    prev = sentence[:start].split()
    return bool(prev) and prev[-1][:1].isupper() and prev[-1].lower() not in STOP


def _free_number(sentence: str, start: int, end: int) -> bool:
    """Not part of a range ("24-10"), a version or a name ("Super Bowl 50", "Python 3.12")."""
    if sentence[end : end + 2][:1] in "–-/" and sentence[end + 1 : end + 2].isdigit():
        return False
    if start >= 2 and sentence[start - 1] in "–-/" and sentence[start - 2].isdigit():
        return False
    return not _after_capitalised(sentence, start)


def score(span: Span, chunk_words: list[str], title: str, index: int) -> float:
    """How askable a span is: higher first (see the module docstring)."""
    s = TYPE_WEIGHT[span.kind]
    words = [w.lower() for w in _WORD.findall(span.text)]
    n_sent = len(span.sentence.split())
    if title and words == [w.lower() for w in _WORD.findall(title)]:
        return -10.0
    s -= 0.5 * max(0, _count(chunk_words, words) - 1)  # said several times: the question is ambiguous
    s -= 0.3 * max(0, len(words) - 2)
    s -= 0.0 if 6 <= n_sent <= 30 else 0.7
    s -= 0.8 if _PRONOUN_START.match(span.sentence) else 0.0
    s -= 1.0 if span.kind == "number" and span.text in ("0", "1") else 0.0
    return s - 0.01 * index


def _count(haystack: list[str], needle: list[str]) -> int:
    n = len(needle)
    return sum(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1)) if n else 0


def candidate_spans(text: str, title: str = "") -> list[Span]:
    """Every span of the chunk's prose sentences, best first (ties: chunk order)."""
    chunk_words = [w.lower() for w in _WORD.findall(text)]
    found = [sp for sent in sentences(text) for sp in spans_in(sent)]
    scored = [
        Span(sp.text, sp.sentence, sp.start, sp.end, sp.kind, score(sp, chunk_words, title, i))
        for i, sp in enumerate(found)
    ]
    order = sorted(range(len(scored)), key=lambda i: (-scored[i].score, i))
    return [scored[i] for i in order if scored[i].score > 0]


def pick_spans(text: str, title: str, n: int) -> list[Span]:
    """The `n` best spans of a chunk, one per sentence first, never the same text twice."""
    ranked = candidate_spans(text, title)
    picked: list[Span] = []
    seen_text: set[str] = set()
    for fresh_only in (True, False):
        used = {sp.sentence for sp in picked}
        for sp in ranked:
            if len(picked) == n:
                return picked
            if sp.text.lower() in seen_text or (fresh_only and sp.sentence in used):
                continue
            picked.append(sp)
            seen_text.add(sp.text.lower())
            used.add(sp.sentence)
    return picked
