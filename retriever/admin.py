"""Version administration (the `ragtune index` commands): list, roll back and prune the versions of an index."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from ragtune.errors import RagtuneError
from retriever.errors import IndexCorrupt, IndexNotFound
from retriever.index import KnowledgeIndex
from retriever.versions import (
    VERSIONS,
    current_version,
    index_lock,
    not_found,
    publish,
    read_manifest,
    version_dir,
    version_ids,
)

logger = logging.getLogger(__name__)


def list_versions(index_dir: str | Path) -> list[dict]:
    """One row per version folder: id, current, created, parent, counts, encoder model (oldest first)."""
    d = Path(index_dir)
    if not (d / VERSIONS).is_dir():
        raise not_found(d)
    try:
        cur = current_version(d)
    except (IndexNotFound, IndexCorrupt):
        cur = None
    rows = []
    for vid in version_ids(d):
        row = {"version": vid, "current": vid == cur}
        try:
            m = read_manifest(version_dir(d, vid), d)
            row.update(
                created=m.get("created"),
                parent=m.get("parent"),
                counts=m.get("counts", {}),
                encoder=m.get("encoder", {}).get("model"),
                index_kind=m.get("index", {}).get("kind"),
                lexical=bool(m.get("lexical")),
            )
        except IndexCorrupt as e:
            row["error"] = str(e)
        rows.append(row)
    return rows


def rollback(index_dir: str | Path, vid: str) -> None:
    """Publish an older (or newer) version again, after checking that it opens."""
    d = Path(index_dir)
    if not (d / VERSIONS).is_dir():
        raise not_found(d)
    with index_lock(d):
        if vid not in version_ids(d):
            known = ", ".join(version_ids(d)) or "none"
            raise IndexNotFound(f"no version {vid!r} in {d}; versions: {known}")
        KnowledgeIndex.open(d, version=vid).close()
        publish(d, vid)


def add_lexical(index_dir: str | Path) -> str | None:
    """Publish the current version again with a lexical (BM25) part; None when it already has one.

    For indexes built before lexical parts existed: the chunks and vectors are copied, nothing is re-embedded."""
    from retriever.faiss_index import IndexOptions
    from retriever.writer import VersionWriter

    d = Path(index_dir)
    with index_lock(d):
        parent = KnowledgeIndex.open(d)
        try:
            if parent.has_lexical:
                return None
            m = parent.manifest
            opts = IndexOptions(**m["index"]["options"])
            writer = VersionWriter(d, parent.fingerprint, opts, parent=parent)
            try:
                kept = {k: m[k] for k in ("sources", "chunker") if k in m}
                return writer.publish(**kept, counts={})  # no document added, changed or removed
            except BaseException:
                writer.abort()
                raise
        finally:
            parent.close()


def prune(index_dir: str | Path, keep: int) -> list[str]:
    """Delete all but the `keep` newest versions (the current one is always kept); return the deleted ids."""
    if keep < 1:
        raise RagtuneError(f"--keep must be at least 1, got {keep}")
    d = Path(index_dir)
    if not (d / VERSIONS).is_dir():
        raise not_found(d)
    with index_lock(d):
        cur = current_version(d)
        ids = version_ids(d)
        keep_ids = set(ids[-keep:]) | {cur}
        gone = [v for v in ids if v not in keep_ids]
        for v in gone:
            shutil.rmtree(version_dir(d, v))
            logger.info("pruned version %s", v)
    return gone
