"""How many pairs `ragtune synth` keeps on real documents, how fast, and by which writer.

    .venv/bin/python bench/synth_yield.py --corpus tech  --work /tmp/synthyield    # package READMEs
    .venv/bin/python bench/synth_yield.py --corpus squad --work /tmp/synthyield    # SQuAD v1.1 dev articles
    .venv/bin/python bench/synth_yield.py --corpus squad --writers auto,template,generator --show 50

Corpora (written under WORK/CORPUS/docs, ingested into WORK/CORPUS/index once):
- tech: the long descriptions (READMEs, Markdown or reST) of 20 packages installed in this venv:
  real technical prose about APIs, options and behaviour;
- squad: the paragraphs of 10 SQuAD v1.1 dev articles (Amazon_rainforest .. Genghis_Khan) from
  ../shared/data/squad_v1.1/dev-v1.1.json, one .txt per article.

For each writer it runs `synthesize` with the default generator on the same seeded `--max-chunks`
sample, in a fresh output folder (nothing reused), and prints chunks, kept, kept/chunk, kept/min over the
whole run's wall time (model load included), drops by reason and writer. `--show N` prints N kept pairs
(a seeded sample) with their sentence, to read by hand.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sys
import time
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TECH_PACKAGES = [
    *("pydantic", "tqdm", "charset_normalizer", "regex", "openai", "defusedxml", "httpcore", "threadpoolctl"),
    *("torch", "python-dotenv", "pytest-timeout", "fastapi", "xxhash", "PySocks", "accelerate"),
    *("annotated-types", "rich", "transformers", "datasets", "peft"),
]
_CHANGES = re.compile(  # a README's changelog is release notes, not prose: cut at its heading
    r"^(?:#+\s*)?(?:change ?log|changes|release notes|release history|history|what's new)\b.*$",
    re.IGNORECASE | re.MULTILINE,
)
SQUAD = REPO.parent / "shared" / "data" / "squad_v1.1" / "dev-v1.1.json"
SQUAD_ARTICLES = range(16, 26)


def write_tech(docs: Path) -> None:
    for name in TECH_PACKAGES:
        meta = metadata.metadata(name)
        body = meta.get_payload() or meta.get("Description") or ""
        kind = (meta.get("Description-Content-Type") or "").split(";")[0]
        ext = ".rst" if "rst" in kind or "markdown" not in kind and ".. " in body else ".md"
        (docs / f"{name}{ext}").write_text(_CHANGES.split(body, 1)[0], encoding="utf-8")


def write_squad(docs: Path) -> None:
    data = json.loads(SQUAD.read_text(encoding="utf-8"))["data"]
    for i in SQUAD_ARTICLES:
        art = data[i]
        text = "\n\n".join(p["context"] for p in art["paragraphs"])
        (docs / f"{art['title']}.txt").write_text(text, encoding="utf-8")


def build_index(corpus: str, work: Path) -> Path:
    from ingest import ingest

    root = work / corpus
    index = root / "index"
    if index.is_dir():
        return index
    docs = root / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    (write_tech if corpus == "tech" else write_squad)(docs)
    ingest([str(docs)], str(index), show_progress=False)
    return index


def run(index: Path, out: Path, writer: str, args: argparse.Namespace) -> dict:
    from synth import SynthConfig, synthesize

    shutil.rmtree(out, ignore_errors=True)
    cfg = SynthConfig(
        index=str(index),
        out_dir=str(out),
        writer=writer,
        max_chunks=args.max_chunks,
        questions_per_chunk=args.n,
        read_back=not args.no_read_back,
        seed=args.seed,
    )
    t0 = time.perf_counter()
    report = synthesize(cfg, progress=False)
    wall = time.perf_counter() - t0
    return {
        "writer": writer,
        "chunks": report.chunks,
        "kept": report.kept,
        "kept_per_chunk": report.kept / report.chunks,
        "kept_per_min": 60 * report.kept / wall,
        "wall_s": wall,
        "generation_s": report.generation_s,
        "read_back_s": report.read_back_s,
        "dropped": {k: v for k, v in report.dropped.items() if v},
        "writers": {
            w: {"kept": c["kept"], "dropped": {k: v for k, v in c["dropped"].items() if v}}
            for w, c in report.writers.items()
        },
        "replaced": {k: v for k, v in report.replaced.items() if v},
        "skipped": report.chunks_skipped,
    }


def show(out: Path, n: int, seed: int) -> None:
    rows = [
        json.loads(line)
        for name in ("train", "validation", "test")
        for line in (out / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    for k, r in enumerate(sorted(random.Random(seed).sample(rows, min(n, len(rows))), key=lambda r: r["id"])):
        m = r["metadata"]
        print(f"{k + 1:>2}. [{m['writer']}/{m['span_type']}] Q: {r['question']}  A: {r['answer']}")
        print(f"    sentence: {m['sentence']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", choices=("tech", "squad"), required=True)
    ap.add_argument("--work", type=Path, default=Path("/tmp/synthyield"))
    ap.add_argument("--writers", default="auto", help="Comma-separated writers to run, in order.")
    ap.add_argument("--max-chunks", type=int, default=100)
    ap.add_argument("-n", type=int, default=2, help="Spans asked per chunk.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-read-back", action="store_true")
    ap.add_argument("--show", type=int, default=0, help="Print this many kept pairs of the first writer.")
    args = ap.parse_args()
    from ragtune.logs import quiet_libraries

    quiet_libraries()
    index = build_index(args.corpus, args.work)
    results = []
    for writer in args.writers.split(","):
        r = run(index, args.work / args.corpus / f"synth-{writer}", writer, args)
        results.append(r)
        print(json.dumps(r))
    print(f"\n{'writer':<10} {'chunks':>6} {'kept':>5} {'kept/chunk':>10} {'kept/min':>9} {'wall s':>7}")
    for r in results:
        print(
            f"{r['writer']:<10} {r['chunks']:>6} {r['kept']:>5} {r['kept_per_chunk']:>10.2f} "
            f"{r['kept_per_min']:>9.1f} {r['wall_s']:>7.0f}"
        )
    if args.show:
        print()
        show(args.work / args.corpus / f"synth-{results[0]['writer']}", args.show, args.seed)


if __name__ == "__main__":
    main()
