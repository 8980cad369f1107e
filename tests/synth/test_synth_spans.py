"""Answer spans chosen by rules: prose sentences out of Markdown/reST, each rule's spans, the ranking."""

from __future__ import annotations

import pytest

from synth import candidate_spans, pick_spans
from synth.sentences import sentences
from synth.spans import spans_in

# (sentence, spans found as (type, text), in rule order)
SPAN_CASES = [
    ("Brightwater was founded in 1612 by Mara Quill.", [("year", "1612"), ("name", "Mara Quill")]),
    (
        "The built-in function `repr()` returns a printable representation of an object.",
        [
            ("identifier", "repr()"),
            ("phrase", "built-in function"),
            ("phrase", "printable representation"),
            ("phrase", "object"),
        ],
    ),
    (
        "Use os.path.join() to combine path components; the separator is os.sep.",
        [("identifier", "os.path.join()"), ("identifier", "os.sep"), ("phrase", "separator")],
    ),
    (
        "The max_workers argument defaults to the number of processors on the machine.",
        [("identifier", "max_workers"), ("phrase", "number"), ("phrase", "machine")],
    ),
    (
        "Pass --no-cache-dir to pip and set ``PYTHONHASHSEED`` before the run.",
        [("identifier", "PYTHONHASHSEED"), ("identifier", "--no-cache-dir"), ("phrase", "run")],
    ),
    ("A generator function is a function that contains a yield statement.", None),  # checked below
    (
        "Southern California consists of 10 counties and has a population of 22.6 million people.",
        [
            ("number", "10"),
            ("number", "22.6 million"),
            ("name", "Southern California"),
            ("phrase", "population"),
        ],
    ),
    ("Python 3.11.2 was released on 8 February 2023 with faster startup.", [("date", "8 February 2023")]),
    (
        "The Broncos won 24–10 and the opening was attended by 2000 guests.",
        [("number", "2000"), ("name", "Broncos")],  # a score is no span; a year before a plural is a count
    ),
    ("Fix tuple serialization by @Viicos in #10427 for Python.", [("name", "Python")]),
]


@pytest.mark.parametrize(("sentence", "expected"), [c for c in SPAN_CASES if c[1] is not None])
def test_spans_in_a_sentence(sentence, expected):
    assert [(s.kind, s.text) for s in spans_in(sentence)] == expected
    for s in spans_in(sentence):
        assert s.text in sentence[s.start : s.end]  # the span's place, backticks included


def test_a_defined_term_is_a_term():
    found = {
        (s.kind, s.text)
        for s in spans_in("A generator function is a function that contains a yield statement.")
    }
    assert ("term", "generator function") in found and ("phrase", "yield statement") in found


MARKDOWN = """# Installing tqdm

Install it with pip. The `tqdm` package ships a command line tool called tqdm as well.

```python
for i in tqdm(range(10000)):
    sleep(0.01)
```

- The `leave` option keeps the bar after the loop ends.
- See [the docs](https://tqdm.github.io) for every option, e.g. `ncols`.

| option | meaning |
|---|---|
.. note:: The bar refreshes every 0.1 seconds by default.
"""


def test_prose_sentences_of_markdown():
    assert sentences(MARKDOWN) == [
        "The `tqdm` package ships a command line tool called tqdm as well.",
        "The `leave` option keeps the bar after the loop ends.",
        "See the docs for every option, e.g. `ncols`.",
    ]


def test_ranking_prefers_distinctive_short_spans_from_different_sentences():
    text = (
        "Mara Quill was born in Brightwater in 1612. Mara Quill works as a potter and keeps three bees. "
        "It has a river."
    )
    ranked = candidate_spans(text, title="Mara Quill")
    assert [s.text for s in ranked] == ["1612", "Brightwater", "three", "potter"]  # the phrase last
    assert "Mara Quill" not in {s.text for s in ranked}  # the chunk's title is not asked for
    picked = pick_spans(text, "Mara Quill", 2)
    assert [s.text for s in picked] == ["1612", "three"]  # one per sentence first
    assert [s.text for s in pick_spans(text, "Mara Quill", 3)][2] == "Brightwater"  # then the next best
    assert pick_spans("```\ncode only()\n```", "", 2) == []
