"""The template writer: a question from the span's own sentence, the floor that never needs a model.

Cloze translation by wh-substitution (Lewis et al. 2019, "Unsupervised Question Answering by Cloze
Translation", the rule-based variant): the span is replaced in place by a wh-phrase chosen by its type,
the sentence is cut to the clause around it, and it ends in "?":

    "Brightwater was founded in 1612 by Mara Quill."  + 1612        -> "Brightwater was founded in what year by Mara Quill?"
    "Southern California consists of 10 counties."     + 10          -> "Southern California consists of how many counties?"
    "Mara Quill founded Brightwater in 1612."          + Mara Quill  -> "Who founded Brightwater in 1612?"

A determiner before the span goes with it ("the `max_workers` argument" -> "which argument"); a kind
noun after an identifier or a count noun after a number joins the wh-phrase; parentheses that do not
hold the span are dropped ("the National Football League (NFL)"); a sentence longer than MAX_WORDS keeps
the clauses nearest the span.
"""

from __future__ import annotations

import re

from synth.spans import STOP, Span, wordset

TEMPLATE_VERSION = "synth-template-v1"
MAX_WORDS = 25
MIN_CLAUSE_WORDS = 6
KIND_NOUNS = wordset(
    "function functions method methods module modules class classes attribute attributes option options "
    "parameter parameters argument arguments keyword keywords statement statements variable variables "
    "command commands flag flags field fields type types exception exceptions decorator operator "
    "operators object objects constant constants property properties package packages library file "
    "files directory setting settings value values key keys tag tags header element elements"
)
_ORG = wordset(
    "inc university company church river street league bowl state states republic kingdom empire museum "
    "institute college school foundation association society party army war council corporation group "
    "city county island islands mountains sea ocean lake bay park tower bridge hall center centre award "
    "prize cup act treaty court agency department ministry bank airport station valley desert southern "
    "northern eastern western north south east west new san santa los las saint st fort mount "
    "national international united royal general american british french german"
)
_DET_BEFORE = re.compile(r"(?:^|(?<=\s))(?:[Tt]he|[Aa]n?|[Tt]his)\s+$")
_KIND_BEFORE = re.compile(r"(?:(?:^|(?<=\s))(?:[Tt]he|[Aa]n?)\s+)?(?P<n>(?:[\w-]+\s+)?(?P<k>\w+))\s+$")
_PARENS = re.compile(r"\s\([^()]*\)")
_BOUNDARY = re.compile(r"(?:[;:]|,|\s[–—-])\s+")
_CONNECTIVE = re.compile(
    r"^(?:However|Moreover|Furthermore|Therefore|Thus|Also|Additionally|In addition|For example|"
    r"For instance|In particular|Note that|Finally|Instead|Otherwise|Similarly)\s*,?\s+",
    re.IGNORECASE,
)
_MARK = "\x00"  # where the wh-phrase sits while the sentence is trimmed


def template_question(span: Span) -> str | None:
    """The wh-question of `span`'s sentence whose answer is the span, or None when none fits."""
    before, after = span.sentence[: span.start], span.sentence[span.end :]
    wh, before, after = wh_phrase(span, before, after)
    text = f"{before}{_MARK}{after}"
    text = _PARENS.sub(lambda m: m.group() if _MARK in m.group() else "", text)
    text = _clause(text)
    text = _CONNECTIVE.sub("", text.strip()).rstrip(" .!?:;,")
    q = text.replace(_MARK, wh)
    q = re.sub(r"\s+", " ", q).strip()
    if len(q.split()) < 3:
        return None
    return q[0].upper() + q[1:] + "?"


def wh_phrase(span: Span, before: str, after: str) -> tuple[str, str, str]:
    """(the wh-phrase, the text before it, the text after it) for the span's type."""
    det = _DET_BEFORE.search(before)
    stem = before[: det.start()] if det else before
    nxt = after.split(maxsplit=1)
    next_word = nxt[0].strip(".,;:)") if nxt else ""
    rest_after = after[after.index(next_word) + len(next_word) :] if next_word else after
    if span.kind == "year" and span.text.endswith("s"):
        return "what decade", stem, after  # "in the 1970s"
    if span.kind in ("year", "date"):
        if det and next_word.isalpha() and next_word.islower() and next_word not in STOP:
            return f"the {next_word} of what {span.kind}", stem, rest_after  # "the 2015 season"
        return ("what year" if span.kind == "year" else "what date"), before, after
    if span.kind == "number":
        if span.text.endswith(("%", "percent")):
            return "what percentage", stem, after
        if next_word.isalpha() and next_word.islower() and next_word not in STOP:
            return f"how many {next_word}", stem, rest_after
        return "what number", stem, after
    if span.kind == "identifier" and next_word.lower() in KIND_NOUNS:
        return f"which {next_word.lower()}", stem, rest_after
    kind_before = _KIND_BEFORE.search(before)
    if span.kind == "identifier" and kind_before and kind_before.group("k").lower() in KIND_NOUNS:
        return f"which {kind_before.group('n')}", before[: kind_before.start()], after
    if span.kind == "name":
        if re.search(r"\bby\s+$", before):
            return "whom", before, after
        if not before.strip() and _person_like(span.text):
            return "who", before, after
    return "what", stem, after


def _person_like(text: str) -> bool:
    words = text.split()
    return (
        2 <= len(words) <= 3
        and all(w.isalpha() and w[0].isupper() for w in words)
        and not any(w.lower() in _ORG for w in words)
    )


def _clause(text: str) -> str:
    """`text` when short enough, else the clauses nearest the mark that fit MAX_WORDS (a word window
    around the mark when its own clause is longer)."""
    if len(text.split()) <= MAX_WORDS:
        return text
    parts = _split_keep(text)
    i = next(k for k, p in enumerate(parts) if _MARK in p)
    lo, hi = i, i + 1
    while True:
        grown = False
        for lo2, hi2 in ((lo - 1, hi), (lo, hi + 1)):
            if 0 <= lo2 and hi2 <= len(parts) and len("".join(parts[lo2:hi2]).split()) <= MAX_WORDS:
                lo, hi, grown = lo2, hi2, True
                break
        if not grown:
            break
    out = "".join(parts[lo:hi]).strip(" ,;:")
    if MIN_CLAUSE_WORDS <= len(out.split()) <= MAX_WORDS:
        return out
    out = text  # the span's clause alone says too little ("In what year"): a word window instead
    words = out.split()
    k = next(j for j, w in enumerate(words) if _MARK in w)
    return " ".join(words[max(0, k - 10) : k + MAX_WORDS - 10])


def _split_keep(text: str) -> list[str]:
    """`text` cut after each clause boundary, the boundaries kept (joined, the parts give `text` back)."""
    parts, last = [], 0
    for m in _BOUNDARY.finditer(text):
        parts.append(text[last : m.end()])
        last = m.end()
    parts.append(text[last:])
    return parts
