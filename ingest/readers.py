"""Sources → Documents: walk folders (include/exclude globs), read .txt .md .html .pdf .jsonl and BEIR corpora.

Bad files never stop a run: each is returned as a Skipped with the reason. Symlinks and paths that
leave the source root are refused. A document's `source` is its path relative to the source root (a
file's own name when the source is a file; `name.jsonl:LINE` for a .jsonl line), never a server path.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ragtune.errors import RagtuneError
from ragtune.records import Document

logger = logging.getLogger(__name__)

TEXT_EXTS = {".txt", ".md", ".markdown", ".rst"}
HTML_EXTS = {".html", ".htm"}
SUPPORTED = TEXT_EXTS | HTML_EXTS | {".pdf", ".jsonl"}
MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass
class Loaded:
    """Documents read from one source argument (its `origin`), plus what was skipped."""

    origin: str
    is_folder: bool
    documents: list[Document] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


class SkipFile(Exception):
    """Raised by a reader: this file is skipped for the given reason."""


def _decode(data: bytes) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 with a byte-order mark (Windows editors)
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise SkipFile("mis-encoded UTF-16 text; convert it to UTF-8") from None
    if b"\x00" in data[:8192]:
        raise SkipFile("binary file (NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SkipFile(f"not UTF-8 text (bad byte at offset {e.start}); convert it to UTF-8") from None
    bad = sum(1 for ch in text[:4096] if ord(ch) < 32 and ch not in "\n\r\t\f")
    if bad > 16:
        raise SkipFile("binary file (control characters)")
    return text


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def read_text(path: Path) -> tuple[str, str]:
    text = _normalise(_decode(path.read_bytes()))
    title = ""
    if path.suffix.lower() in (".md", ".markdown"):
        m = re.search(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.MULTILINE)
        title = m.group(1) if m else ""
    return text, title


_BLOCKS = [
    "p",
    "div",
    "section",
    "article",
    "main",
    "header",
    "footer",
    "nav",
    "aside",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "li",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "table",
    "tr",
    "pre",
    "blockquote",
    "figcaption",
    "hr",
]
_PARA, _LINE = "\u2029", "\u2028"


def read_html(path: Path) -> tuple[str, str]:
    """Visible text: block elements become paragraphs, inline ones flow, scripts and styles are dropped."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_decode(path.read_bytes()), "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    if soup.head:
        soup.head.decompose()
    if not title and soup.h1:
        title = soup.h1.get_text(" ", strip=True)
    for tag in soup.find_all(_BLOCKS):
        tag.insert_before(_PARA)
        tag.insert_after(_PARA)
    for tag in soup.find_all(["br", "td", "th"]):
        tag.insert_after(_LINE if tag.name == "br" else " ")
    flat = re.sub(r"[ \t\n\r\f\v\xa0]+", " ", soup.get_text(""))  # source layout whitespace, not the markers
    paras = ["\n".join(x.strip() for x in p.split(_LINE) if x.strip()) for p in flat.split(_PARA)]
    return "\n\n".join(p for p in paras if p), title


def read_pdf(path: Path) -> tuple[str, str]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            raise SkipFile("encrypted PDF; decrypt it first")
        pages = [(p.extract_text() or "").strip() for p in reader.pages]
        title = (reader.metadata.title if reader.metadata and reader.metadata.title else "") or ""
    except SkipFile:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as e:
        raise SkipFile(f"unreadable PDF ({type(e).__name__}: {e})") from None
    text = _normalise("\n\n".join(p for p in pages if p))
    if not text:
        raise SkipFile("PDF has no extractable text (scanned images?); OCR it first")
    return text, str(title)


def read_jsonl(path: Path, skipped: list[Skipped], rel: str) -> list[Document]:
    """One document per line: {"id"|"_id", "text", "title"?, "metadata"?}; bad lines are skipped.
    `rel`: the file's path relative to the source root, which each document's source names."""
    docs = []
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise SkipFile("binary file (NUL bytes)")
    try:
        lines = data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        raise SkipFile(f"not UTF-8 text (bad byte at offset {e.start})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            skipped.append(Skipped(where, f"not valid JSON ({e.msg})"))
            continue
        if not isinstance(obj, dict):
            skipped.append(Skipped(where, f"expected a JSON object, got {type(obj).__name__}"))
            continue
        doc_id = obj.get("id", obj.get("_id"))
        text = obj.get("text")
        if not isinstance(doc_id, (str, int)) or str(doc_id) == "":
            skipped.append(Skipped(where, "no `id` (or BEIR `_id`)"))
            continue
        if not isinstance(text, str) or not text.strip():
            skipped.append(Skipped(where, f"document {doc_id}: empty or missing `text`"))
            continue
        meta = obj.get("metadata") or {}
        if not isinstance(meta, dict):
            skipped.append(Skipped(where, f"document {doc_id}: `metadata` must be an object"))
            continue
        title = obj.get("title") or ""
        docs.append(
            Document(
                id=str(doc_id),
                text=text.strip(),
                title=str(title).strip(),
                source=f"{rel}:{n}",
                metadata=meta,
            )
        )
    if not docs and not skipped:
        raise SkipFile("empty file")
    return docs


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in patterns)


def _read_file(path: Path, rel: str, out: Loaded) -> None:
    """Read `path` into `out`; `rel` (its path relative to the source root) is its id and source."""
    ext = path.suffix.lower()
    try:
        if path.stat().st_size > MAX_BYTES:
            raise SkipFile(f"larger than {MAX_BYTES // 2**20} MiB")
        if ext == ".jsonl":
            out.documents += read_jsonl(path, out.skipped, rel)
            return
        if ext in TEXT_EXTS:
            text, title = read_text(path)
        elif ext in HTML_EXTS:
            text, title = read_html(path)
        elif ext == ".pdf":
            text, title = read_pdf(path)
        else:
            raise SkipFile(
                f"unsupported file type {ext or '(none)'}; supported: {', '.join(sorted(SUPPORTED))}"
            )
        if not text.strip():
            raise SkipFile("empty (no text)")
        out.documents.append(Document(id=rel, text=text, title=title, source=rel))
    except SkipFile as e:
        out.skipped.append(Skipped(str(path), str(e)))
    except PermissionError:
        out.skipped.append(Skipped(str(path), "unreadable (permission denied)"))
    except OSError as e:
        out.skipped.append(Skipped(str(path), f"unreadable ({e.strerror or e})"))


def _is_beir(folder: Path) -> bool:
    return (folder / "corpus.jsonl").is_file() and (
        (folder / "queries.jsonl").is_file() or (folder / "qrels").is_dir()
    )


def read_source(source: str | Path, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> Loaded:
    """Read one source argument: a file, a folder (walked, sorted) or a BEIR folder (its corpus.jsonl only)."""
    src = Path(source)
    if src.is_symlink():
        raise RagtuneError(
            f"source {src} is a symlink; symlinks are refused, pass the real path {src.resolve()} instead"
        )
    if not src.exists():
        raise RagtuneError(f"source {src} does not exist; pass an existing file or folder")
    root = src.resolve()
    if src.is_file():
        out = Loaded(origin=str(root), is_folder=False)
        _read_file(root, root.name, out)
        return out
    out = Loaded(origin=str(root), is_folder=True)
    if _is_beir(root):
        _read_file(root / "corpus.jsonl", "corpus.jsonl", out)
        return out
    files: list[tuple[Path, str]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            p = here / d
            rel = p.relative_to(root).as_posix()
            if d.startswith("."):
                continue
            if p.is_symlink():
                out.skipped.append(Skipped(str(p), "symlink refused (folder)"))
            elif not _matches(rel, exclude):
                keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            p = here / name
            rel = p.relative_to(root).as_posix()
            if name.startswith(".") or _matches(rel, exclude) or (include and not _matches(rel, include)):
                continue
            if p.is_symlink():
                out.skipped.append(Skipped(str(p), "symlink refused"))
            elif not p.resolve().is_relative_to(root):
                out.skipped.append(Skipped(str(p), f"path leaves the source root {root}; refused"))
            else:
                files.append((p, rel))
    from tqdm.auto import tqdm

    for p, rel in tqdm(files, desc=f"reading {src.name or src}", unit="file", disable=len(files) < 200):
        _read_file(p, rel, out)
    return out


def read_sources(
    sources: Iterable[str | Path], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> list[Loaded]:
    """Read every source; a document id seen twice keeps its first occurrence (the rest are skipped)."""
    loaded, seen = [], {}
    for s in sources:
        part = read_source(s, include, exclude)
        unique = []
        for d in part.documents:
            if d.id in seen:
                part.skipped.append(
                    Skipped(d.source, f"duplicate document id {d.id!r} (first in {seen[d.id]})")
                )
            else:
                seen[d.id] = d.source
                unique.append(d)
        part.documents = unique
        loaded.append(part)
    return loaded


def load_documents(
    paths: Iterable[str | Path], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> list[Document]:
    """Every readable document in `paths` (files, folders, .jsonl, BEIR folders); bad files are logged."""
    docs = []
    for part in read_sources(paths, include, exclude):
        for s in part.skipped:
            logger.warning("skipped %s: %s", s.path, s.reason)
        docs += part.documents
    return docs
