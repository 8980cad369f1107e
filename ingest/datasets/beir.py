"""BEIR folders: corpus.jsonl {"_id", "title", "text", "metadata"?}, queries.jsonl {"_id", "text"},
qrels/{train,dev,test}.tsv ("query-id<TAB>corpus-id<TAB>score", a header line).

BEIR's own splits are kept (train.tsv → train, dev.tsv → validation, test.tsv → test), so results stay
comparable with published figures; the split fractions do not apply. The documents are the corpus.

BEIR has no answer text, yet a ragtune QA example must have a non-empty answer (records.qa_from_dict).
The answer is therefore the titles of the query's gold documents (its id where a document has no title):
the one piece of gold text BEIR gives, an answer that names its source. Retrieval metrics use `doc_ids`.
"""

from __future__ import annotations

from pathlib import Path

from ingest.datasets.common import Imported, Question, document, need
from ragtune.errors import RagtuneError
from ragtune.records import Document, RecordError, iter_jsonl

QRELS = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}


def _rows(path: Path):
    try:
        yield from iter_jsonl(path)
    except RecordError as e:
        raise RagtuneError(str(e)) from None
    except UnicodeDecodeError as e:
        raise RagtuneError(f"{path}: not UTF-8 text (bad byte at offset {e.start})") from None


def _qrels(path: Path) -> list[tuple[int, str, str, int]]:
    """(line, query id, corpus id, score) of every judgement; the header line is skipped."""
    out = []
    try:
        lines = path.read_text(encoding="utf-8-sig").split("\n")
    except UnicodeDecodeError as e:
        raise RagtuneError(f"{path}: not UTF-8 text (bad byte at offset {e.start})") from None
    for lineno, line in enumerate(lines, 1):
        cols = [c.strip() for c in line.split("\t")]
        if not any(cols) or (lineno == 1 and not cols[-1].lstrip("-").isdigit()):
            continue  # blank, or the header "query-id corpus-id score"
        if len(cols) != 3 or not cols[2].lstrip("-").isdigit():
            raise RagtuneError(
                f"{path}:{lineno}: expected `query-id<TAB>corpus-id<TAB>score`, got {line.strip()!r}"
            )
        out.append((lineno, cols[0], cols[1], int(cols[2])))
    return out


def read_beir(source: Path) -> Imported:
    corpus, queries, qrels_dir = source / "corpus.jsonl", source / "queries.jsonl", source / "qrels"
    for p in (corpus, queries, qrels_dir / QRELS["test"]):
        if not p.is_file():
            raise RagtuneError(
                f"{source} is not a BEIR folder: {p} is missing (expected corpus.jsonl, "
                "queries.jsonl and qrels/test.tsv)"
            )
    documents, titles, empty = _read_corpus(corpus)
    query_text, query_meta = _read_queries(queries)
    questions, split_of, dropped, unjudged = [], {}, 0, 0
    for split, name in QRELS.items():
        path = qrels_dir / name
        if not path.is_file():
            continue
        gold: dict[str, list[str]] = {}
        for lineno, qid, doc_id, score in _qrels(path):
            if qid not in query_text:
                raise RagtuneError(f"{path}:{lineno}: query-id {qid!r} is not in {queries}")
            if doc_id not in titles:
                raise RagtuneError(f"{path}:{lineno}: corpus-id {doc_id!r} is not in {corpus}")
            if qid in split_of and split_of[qid] != split:
                raise RagtuneError(
                    f"{path}:{lineno}: query-id {qid!r} is also judged in qrels/{QRELS[split_of[qid]]}"
                )
            split_of[qid] = split
            docs = gold.setdefault(qid, [])
            if score > 0 and doc_id not in empty and doc_id not in docs:
                docs.append(doc_id)
            dropped += doc_id in empty
        for qid, docs in gold.items():
            if not docs:
                unjudged += 1  # only non-relevant (score 0) judgements: nothing to retrieve
                continue
            row = {
                "id": qid,
                "question": query_text[qid],
                "answer": [titles[d] for d in docs],
                "doc_ids": docs,
            }
            if query_meta[qid]:
                row["metadata"] = query_meta[qid]
            questions.append(Question(row, group=qid, split=split))
    if not questions:
        raise RagtuneError(f"{qrels_dir}: no query has a relevant (score > 0) document")
    notes = (
        [f"skipped {len(empty)} corpus documents with neither text nor title ({dropped} judgements on them)"]
        if empty
        else []
    )
    if not (qrels_dir / QRELS["validation"]).is_file():
        notes.append("no qrels/dev.tsv: validation.jsonl is empty (BEIR's own splits are kept)")
    if unjudged:
        notes.append(f"skipped {unjudged} queries with no relevant (score > 0) document")
    return Imported(documents, questions, "queries", notes)


def _read_corpus(corpus: Path) -> tuple[list[Document], dict[str, str], set[str]]:
    """(documents, title of every doc id, ids of the documents with neither text nor title)."""
    documents, titles, empty = [], {}, set()
    for n, obj in _rows(corpus):
        where = f"{corpus}:{n}"
        doc_id = str(need(obj, "_id", (str, int), where, "the document id"))
        text, title = obj.get("text"), obj.get("title") or ""
        if not isinstance(text, str) or not isinstance(title, str):
            raise RagtuneError(f"{where}: `text` and `title` must be strings")
        meta = obj.get("metadata") or {}
        if not isinstance(meta, dict):
            raise RagtuneError(f"{where}: `metadata` must be an object, got {type(meta).__name__}")
        titles[doc_id] = title.strip() or doc_id
        if not (text.strip() or title.strip()):
            empty.add(doc_id)  # nothing to index; judgements on it are dropped
            continue
        documents.append(document(doc_id, text.strip() or title.strip(), title.strip(), meta))
    return documents, titles, empty


def _read_queries(queries: Path) -> tuple[dict[str, str], dict[str, dict]]:
    """(text, metadata) of every query id."""
    query_text, query_meta = {}, {}
    for n, obj in _rows(queries):
        qid = str(need(obj, "_id", (str, int), f"{queries}:{n}", "the query id"))
        query_text[qid] = need(obj, "text", str, f"{queries}:{n}", "the query text").strip()
        query_meta[qid] = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    return query_text, query_meta
