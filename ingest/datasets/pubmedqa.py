"""PubMedQA (PQA-L's ori_pqal.json): {PMID: {"QUESTION", "CONTEXTS": [...], "LABELS", "MESHES", "YEAR",
"final_decision": "yes"|"no"|"maybe", "LONG_ANSWER", ...}}.

One document per abstract (its CONTEXTS joined, keyed by PMID) and one question per abstract, answered
yes/no/maybe, with the long answer in its metadata; split by PMID. The official test split is the
PMIDs of test_ground_truth.json (found beside the source, or passed as `test_ids`); the split
fractions cut the rest (without that file, the test fraction applies too).
"""

from __future__ import annotations

from pathlib import Path

from ingest.datasets.common import Imported, Question, document, load_json, need
from ragtune.errors import RagtuneError

DATA_FILE = "ori_pqal.json"
TEST_IDS_FILE = "test_ground_truth.json"
DECISIONS = ("yes", "no", "maybe")


def _test_ids(path: Path, known: dict) -> set[str]:
    """The PMIDs of an official test split: a JSON object keyed by PMID, or a list of PMIDs."""
    data = load_json(path)
    if not isinstance(data, (dict, list)) or not data:
        raise RagtuneError(
            f"{path}: expected a JSON object keyed by PMID (or a list of PMIDs) naming the test split"
        )
    ids = {str(k) for k in data}
    unknown = sorted(ids - set(known))
    if unknown:
        raise RagtuneError(
            f"{path}: {len(unknown)} test PMIDs are not in the dataset, e.g. {unknown[:3]}; "
            "is it the test split of another PubMedQA file?"
        )
    return ids


def read_pubmedqa(source: Path, test_ids: Path | None = None) -> Imported:
    path = source / DATA_FILE if source.is_dir() else source
    data = load_json(path)
    if not isinstance(data, dict) or not data:
        raise RagtuneError(f"{path}: expected a JSON object keyed by PubMed id (PubMedQA's {DATA_FILE})")
    if test_ids is None and (path.parent / TEST_IDS_FILE).is_file():
        test_ids = path.parent / TEST_IDS_FILE
    test = _test_ids(test_ids, data) if test_ids is not None else set()
    documents, questions = [], []
    for pmid, entry in data.items():
        where = f"{path}: {pmid}"
        question = need(entry, "QUESTION", str, where, "the question")
        contexts = need(entry, "CONTEXTS", list, where, "the list of abstract sections")
        if not contexts or not all(isinstance(c, str) for c in contexts):
            raise RagtuneError(f"{where}: `CONTEXTS` must be a non-empty list of strings")
        decision = need(entry, "final_decision", str, where, "yes, no or maybe (is this the labelled PQA-L?)")
        if decision not in DECISIONS:
            raise RagtuneError(f"{where}: `final_decision` must be yes, no or maybe, got {decision!r}")
        meta = {k: entry[k] for k in ("LABELS", "MESHES", "YEAR") if entry.get(k)}
        documents.append(
            document(
                pmid, "\n\n".join(c.strip() for c in contexts), "", {k.lower(): v for k, v in meta.items()}
            )
        )
        row = {"id": pmid, "question": question.strip(), "answer": decision, "doc_ids": [pmid]}
        if isinstance(entry.get("LONG_ANSWER"), str):
            row["metadata"] = {"long_answer": entry["LONG_ANSWER"]}
        questions.append(Question(row, group=pmid, split="test" if pmid in test else None))
    notes = [f"test split: the {len(test)} PMIDs of {test_ids}"] if test_ids is not None else []
    return Imported(documents, questions, "abstracts", notes)
