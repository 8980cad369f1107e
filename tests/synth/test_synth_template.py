"""The template writer (wh-substitution on the span's sentence), table-driven on real sentences."""

from __future__ import annotations

import pytest

from synth import template_question
from synth.spans import spans_in

# (sentence, span text, the template's question)
TEMPLATE_CASES = [
    (
        "Brightwater was founded in 1612 by Mara Quill.",
        "1612",
        "Brightwater was founded in what year by Mara Quill?",
    ),
    (
        "Brightwater was founded in 1612 by Mara Quill.",
        "Mara Quill",
        "Brightwater was founded in 1612 by whom?",
    ),
    ("Mara Quill founded Brightwater in 1612.", "Mara Quill", "Who founded Brightwater in 1612?"),
    (
        "Southern California consists of 10 counties and has a population of 22.6 million people.",
        "10",
        "Southern California consists of how many counties and has a population of 22.6 million people?",
    ),
    (
        "The built-in function `repr()` returns a printable representation of an object.",
        "repr()",
        "Which built-in function returns a printable representation of an object?",
    ),
    (
        "The max_workers argument defaults to the number of processors on the machine.",
        "max_workers",
        "Which argument defaults to the number of processors on the machine?",
    ),
    (
        "A generator function is a function that contains a yield statement.",
        "generator function",
        "What is a function that contains a yield statement?",
    ),
    (
        "Super Bowl 50 decided the champion of the National Football League (NFL) for the 2015 season.",
        "2015",
        "Super Bowl 50 decided the champion of the National Football League for the season of what year?",
    ),
    (
        "Python 3.11.2 was released on 8 February 2023 with faster startup.",
        "8 February 2023",
        "Python 3.11.2 was released on what date with faster startup?",
    ),
    (
        (
            "However, the museum reopened in 2001 after a long restoration that was paid for by the city, "
            "by a national lottery grant, and by many thousands of small donations from the public."
        ),
        "2001",
        (
            "The museum reopened in what year after a long restoration that was paid for by the city, by a "
            "national lottery grant?"
        ),
    ),  # a connective dropped, the clause around the span kept (at most 25 words)
    (
        (
            "In 2004, the V&A alongside the Royal Institute of British Architects opened the first permanent "
            "gallery in the UK covering the history of architecture with displays using models and drawings."
        ),
        "2004",
        (
            "In what year, the V&A alongside the Royal Institute of British Architects opened the first "
            "permanent gallery?"
        ),
    ),  # the span's own clause ("In what year") says too little: a word window around it instead
]


@pytest.mark.parametrize(("sentence", "span", "question"), TEMPLATE_CASES)
def test_template_question(sentence, span, question):
    found = next(s for s in spans_in(sentence) if s.text == span)
    got = template_question(found)
    assert got == question
    assert span not in got and got.endswith("?") and len(got.split()) <= 25
