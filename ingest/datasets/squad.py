"""SQuAD v1.1 / v2.0 JSON: {"data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question",
"answers": [{"text", "answer_start"}], "is_impossible"?}]}]}]}.

One document per paragraph (id "<article title>/<n>"), one question per qa with its distinct answer
texts as the accepted answers, grouped by article: all questions of an article land in one split.
SQuAD v2's unanswerable questions (`is_impossible`) have no answer text, which a ragtune QA example
requires, so they are skipped and counted.
"""

from __future__ import annotations

from pathlib import Path

from ingest.datasets.common import Imported, Question, document, load_json, need
from ragtune.errors import RagtuneError


def read_squad(source: Path) -> Imported:
    if source.is_dir():
        raise RagtuneError(f"{source} is a folder; pass the SQuAD JSON file itself (e.g. dev-v1.1.json)")
    data = need(load_json(source), "data", list, str(source), "the list of articles (is this a SQuAD file?)")
    documents, questions, unanswerable = [], [], 0
    paragraphs_seen: dict[str, int] = {}
    for a, article in enumerate(data):
        where = f"{source}: data[{a}]"
        title = need(article, "title", str, where, "the article title")
        for p, para in enumerate(need(article, "paragraphs", list, where, "a list of paragraphs")):
            pwhere = f"{where}.paragraphs[{p}]"
            context = need(para, "context", str, pwhere, "the paragraph text")
            n = paragraphs_seen[title] = paragraphs_seen.get(title, -1) + 1
            doc_id = f"{title}/{n}"
            documents.append(
                document(doc_id, context, title.replace("_", " "), {"article": title, "paragraph": n})
            )
            for i, qa in enumerate(need(para, "qas", list, pwhere, "a list of questions")):
                qwhere = f"{pwhere}.qas[{i}]"
                qid = need(qa, "id", (str, int), qwhere, "the question id")
                question = need(qa, "question", str, qwhere, "a non-empty question")
                if qa.get("is_impossible") is True:
                    unanswerable += 1
                    continue
                answers = need(qa, "answers", list, qwhere, "a list of answers")
                texts = [
                    need(ans, "text", str, f"{qwhere}.answers[{k}]", "the answer text")
                    for k, ans in enumerate(answers)
                ]
                if not texts:
                    raise RagtuneError(f"{qwhere}: `answers` is empty and `is_impossible` is not true")
                questions.append(
                    Question(
                        {
                            "id": str(qid),
                            "question": question.strip(),
                            "answer": list(dict.fromkeys(texts)),
                            "doc_ids": [doc_id],
                            "metadata": {"article": title},
                        },
                        group=title,
                    )
                )
    if not questions:
        raise RagtuneError(f"{source}: no answerable questions in `data`")
    notes = (
        [f"skipped {unanswerable} unanswerable questions (SQuAD v2 `is_impossible`: no answer text)"]
        if unanswerable
        else []
    )
    return Imported(documents, questions, "articles", notes)
