"""Durability of feedback under load: every 2xx-acknowledged rating is in the database afterwards.

    flock /tmp/heavy.lock .venv/bin/python bench/feedback_load.py --out bench-out/feedback-load

A tiny real generator (2 layers, built here: the point is the storage path, not the answers) serves the demo
world's index with `--feedback-db`. 16 client threads for 60 s each loop: a chat completion, then a rating
of it (up or down, a correction on every third). Meanwhile the index is refreshed twice (documents changed,
a new version published; the server swaps to it) and the server is killed with SIGKILL once and restarted
on the same port and database. Afterwards: the acknowledged ratings against the rows (each acked row id
must be present; rows committed whose 2xx never reached the client, in flight at the kill, are counted
apart), PRAGMA integrity_check, and every row's answer and JSON columns readable.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import sys
import threading
import time
from pathlib import Path

# run as a script, bench/ would come first on sys.path and its ingest.py would shadow the ingest stage
REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO), *(p for p in sys.path if Path(p or ".").resolve() != REPO / "bench")]

API_KEY = "bench-load-key"


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("bench-out/feedback-load"))
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--swaps-at", type=float, nargs="*", default=[12.0, 42.0])
    p.add_argument("--kill-at", type=float, default=27.0)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def tiny_model(out: Path, texts: list[str]) -> Path:
    from tuner.base_model import TinyModelConfig, build_untrained

    if (out / "config.json").is_file():
        return out
    cfg = TinyModelConfig(
        vocab_size=800,
        hidden_size=64,
        num_layers=2,
        num_heads=4,
        intermediate_size=128,
        max_position_embeddings=4096,
    )
    return build_untrained(texts, out, cfg, seed=0)


class Clients:
    """The load: `n` threads of chat → rating, against whatever URL is current; acked ratings recorded."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed = n, seed
        self.url: str | None = None
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked: dict[int, str] = {}  # feedback row id -> response id, from 2xx answers
        self.counts = {
            "chats_ok": 0,
            "chat_errors": 0,
            "feedback_2xx": 0,
            "feedback_errors": 0,
            "feedback_4xx": 0,
        }

    def _count(self, key: str) -> None:
        with self.lock:
            self.counts[key] += 1

    def run(self, i: int, questions: list[str]) -> None:
        import httpx

        rng = random.Random(f"{self.seed}:{i}")
        headers = {"Authorization": f"Bearer {API_KEY}"}
        with httpx.Client(timeout=30) as http:
            while not self.stop.is_set():
                url = self.url
                question = {"role": "user", "content": rng.choice(questions)}
                try:
                    r = http.post(
                        f"{url}/v1/chat/completions",
                        headers=headers,
                        json={"model": "tiny", "messages": [question], "max_tokens": 4},
                    )
                except httpx.HTTPError:  # the server is down (killed, restarting)
                    self._count("chat_errors")
                    time.sleep(0.1)
                    continue
                if r.status_code != 200:
                    self._count("chat_errors")
                    time.sleep(0.05)
                    continue
                self._count("chats_ok")
                rid = r.json()["id"]
                body = {"response_id": rid, "rating": rng.choice(["up", "down"])}
                if rng.random() < 1 / 3:
                    body["correction"] = f"the right answer {rng.randrange(1000)}"
                try:
                    f = http.post(f"{url}/v1/feedback", headers=headers, json=body)
                except httpx.HTTPError:  # no answer: maybe stored, never acknowledged
                    self._count("feedback_errors")
                    continue
                if 200 <= f.status_code < 300:
                    with self.lock:
                        self.counts["feedback_2xx"] += 1
                        self.acked[f.json()["id"]] = rid
                else:
                    self._count("feedback_4xx" if f.status_code < 500 else "feedback_errors")


def served_version(url: str, want: str, timeout: float = 15.0) -> str | None:
    """The index version /readyz reports once it is `want` (or whatever it is after `timeout` s)."""
    import httpx

    deadline, now = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            now = httpx.get(f"{url}/readyz", timeout=2).json().get("index_version")
        except httpx.HTTPError:
            now = None
        if now == want:
            break
        time.sleep(0.2)
    return now


def refresh(index: Path, docs: Path, work: Path, n: int) -> str:
    """Change one sentence of every document and publish a new index version; return its id."""
    from ingest import ingest
    from ragtune.records import iter_jsonl, write_jsonl

    rows = [o for _, o in iter_jsonl(docs)]
    for o in rows:
        o["text"] += f" Revision {n}."
    src = work / "knowledge"
    src.mkdir(exist_ok=True)
    write_jsonl(src / "people.jsonl", rows)
    rep = ingest([src], index, show_progress=False)
    return rep.version


def check(db: Path, acked: dict[int, str]) -> dict:
    with sqlite3.connect(db) as c:
        integrity = c.execute("PRAGMA integrity_check").fetchone()[0]
        rows = dict(c.execute("SELECT id, response_id FROM feedback").fetchall())
        answers = c.execute("SELECT count(*) FROM answers").fetchone()[0]
        corrupt = 0
        for rid, req, prompt, passages in c.execute(
            "SELECT id, request_messages, prompt_messages, passages FROM answers"
        ):
            try:
                json.loads(req), json.loads(prompt), json.loads(passages)
            except (TypeError, ValueError):
                corrupt += 1
        orphans = c.execute(
            "SELECT count(*) FROM feedback f LEFT JOIN answers a ON a.id = f.response_id WHERE a.id IS NULL"
        ).fetchone()[0]
    missing = [i for i, rid in acked.items() if rows.get(i) != rid]
    return {
        "integrity_check": integrity,
        "feedback_rows": len(rows),
        "answer_rows": answers,
        "acked": len(acked),
        "acked_missing": len(missing),
        "rows_without_ack": len(set(rows) - set(acked)),
        "corrupt_rows": corrupt + orphans,
    }


def main() -> None:
    args = parse()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    from demo.world import make_world, write_world
    from ingest import ingest
    from ragtune.records import iter_jsonl
    from serve import start_server

    paths = write_world(make_world(16, seed=args.seed), out / "world", n_test=16)
    docs = [o for _, o in iter_jsonl(paths["documents"])]
    model = tiny_model(out / "tiny", [d["text"] for d in docs] * 4)
    index, db = out / "index", out / "feedback.db"
    for p in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        p.unlink(missing_ok=True)
    src = out / "knowledge"  # the folder the index follows; refresh() rewrites its file
    src.mkdir(exist_ok=True)
    shutil.copy(paths["documents"], src / "people.jsonl")
    shutil.rmtree(index, ignore_errors=True)
    ingest([src], index, show_progress=False)
    questions = [o["question"] for _, o in iter_jsonl(paths["train"])]
    flags = ["--model-id", "tiny", "--backend", "transformers", "--poll-interval", "0.5", "--top-k", "2"]
    flags += ["--feedback-db", str(db), "--max-tokens-cap", "8", "--torch-threads", "1"]
    server = start_server(model, index, api_key=API_KEY, extra_args=flags)
    port = server.port
    load = Clients(args.clients, args.seed)
    load.url = server.url
    threads = [
        threading.Thread(target=load.run, args=(i, questions), daemon=True) for i in range(args.clients)
    ]
    events: list[dict] = []
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    plan = sorted([(s, "swap") for s in args.swaps_at] + [(args.kill_at, "kill")])
    for n, (at, what) in enumerate(plan, 1):
        time.sleep(max(0.0, at - (time.perf_counter() - t0)))
        if what == "swap":
            version = refresh(index, paths["documents"], out, n)
            seen = served_version(server.url, version)
            events.append(
                {
                    "t": round(time.perf_counter() - t0, 1),
                    "event": "index swapped",
                    "version": version,
                    "served": seen,
                }
            )
        else:
            server.proc.kill()  # SIGKILL: no shutdown code runs
            server.proc.wait(10)
            events.append({"t": round(time.perf_counter() - t0, 1), "event": "kill -9"})
            server = start_server(model, index, api_key=API_KEY, port=port, extra_args=flags)
            events.append({"t": round(time.perf_counter() - t0, 1), "event": "restarted"})
    time.sleep(max(0.0, args.seconds - (time.perf_counter() - t0)))
    load.stop.set()
    for t in threads:
        t.join(60)
    wall = round(time.perf_counter() - t0, 1)
    server.stop()
    result = {
        "clients": args.clients,
        "seconds": wall,
        "events": events,
        "counts": load.counts,
        "db": check(db, load.acked),
    }
    (out / "result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    ok = result["db"]["acked_missing"] == 0 and result["db"]["integrity_check"] == "ok"
    print("every acknowledged rating is stored" if ok else "LOST ACKNOWLEDGED RATINGS")


if __name__ == "__main__":
    main()
