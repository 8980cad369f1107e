"""The refresh plan: compare the documents read now with the index's by content hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from ragtune.records import Document


def document_hash(doc: Document) -> str:
    """What decides a document's chunks: its text, title and metadata (not its source path)."""
    key = json.dumps([doc.text, doc.title, doc.metadata], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass
class RefreshPlan:
    """Document ids by fate. `renamed` pairs (old id, new id) reuse their vectors; `kept` are documents of
    sources not named in this run (or missing ones when deletion is off), left as they are."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    full: bool = False

    @property
    def is_noop(self) -> bool:
        return not (self.added or self.changed or self.removed or self.renamed)

    def counts(self) -> dict[str, int]:
        return {
            k: len(getattr(self, k)) for k in ("added", "changed", "removed", "renamed", "unchanged", "kept")
        }

    def summary(self) -> str:
        c = self.counts()
        text = (
            f"plan{' (full rebuild)' if self.full else ''}: {c['added']} added, {c['changed']} changed, "
            f"{c['removed']} removed, {c['renamed']} renamed, {c['unchanged']} unchanged"
        )
        return text + (f", {c['kept']} kept from other sources" if c["kept"] else "")


def make_plan(
    previous: dict[str, dict],
    current: list[tuple[Document, str, str]],
    origins: set[str],
    delete_missing: bool = True,
    full: bool = False,
) -> RefreshPlan:
    """`previous`: doc_id → {"hash", "origin"} of the index; `current`: (document, origin, hash) read now;
    `origins`: the sources of this run (only their missing documents are removed)."""
    plan = RefreshPlan(full=full)
    if full:
        plan.added = [d.id for d, _, _ in current]
        return plan
    seen = set()
    for doc, _, h in current:
        seen.add(doc.id)
        old = previous.get(doc.id)
        if old is None:
            plan.added.append(doc.id)
        elif old["hash"] != h:
            plan.changed.append(doc.id)
        else:
            plan.unchanged.append(doc.id)
    for doc_id, old in previous.items():
        if doc_id in seen:
            continue
        if delete_missing and old.get("origin") in origins:
            plan.removed.append(doc_id)
        else:
            plan.kept.append(doc_id)
    # A removed document whose exact content reappears under a new id is a rename: move, don't re-embed.
    removed_by_hash = {}
    for doc_id in plan.removed:
        removed_by_hash.setdefault(previous[doc_id]["hash"], []).append(doc_id)
    hashes = {d.id: h for d, _, h in current}
    still_added = []
    for doc_id in plan.added:
        olds = removed_by_hash.get(hashes[doc_id])
        if olds:
            plan.renamed.append((olds.pop(0), doc_id))
        else:
            still_added.append(doc_id)
    plan.added = still_added
    moved = {old for old, _ in plan.renamed}
    plan.removed = [d for d in plan.removed if d not in moved]
    return plan
