"""A judge model that grades each answer against the gold answer (`ragtune eval --judge URL|FOLDER`).

The judge is any OpenAI-compatible chat endpoint (a URL: vLLM, llama.cpp's server, a ragtune server,
a hosted API) or a local Hugging Face model folder loaded in-process. It sees the question, the gold
answer(s) and the reply, and answers "yes" or "no"; its first word decides (anything else counts as
wrong and as unparsed). Greedy decoding, a few tokens. The prompt and every raw verdict go into
results.json (`splits[s]["judge"]` and each per-question row's `judge_raw`), so a reader can audit it.

Verdicts are cached in OUT/judge/<key>.jsonl, keyed by the judge, the prompt version and the
(question, gold, reply) triple: a rerun asks again only about new replies.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ragtune.errors import RagtuneError
from ragtune.records import QAExample, RecordError, iter_jsonl

logger = logging.getLogger(__name__)

PROMPT_VERSION = 1
SYSTEM = (
    "You grade answers to questions. Reply with one word: yes if the answer to grade states the gold "
    "answer (the same fact, in any wording), no if it does not or if it lists several candidates."
)
TEMPLATE = "Question: {question}\nGold answer: {gold}\nAnswer to grade: {prediction}\nCorrect (yes or no)?"
MAX_TOKENS = 4


def judge_messages(question: str, golds: Sequence[str], prediction: str) -> list[dict[str, str]]:
    """The chat the judge answers: the system message and one user turn (TEMPLATE)."""
    gold = " / ".join(golds)
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": TEMPLATE.format(question=question, gold=gold, prediction=prediction)},
    ]


def parse_verdict(raw: str) -> float | None:
    """1.0 for a reply that starts with yes, 0.0 for no, None for anything else."""
    words = raw.strip().lower().lstrip("*\"'`([").split()
    first = words[0].strip(".,:;!*\"'`)") if words else ""
    return 1.0 if first == "yes" else 0.0 if first == "no" else None


class _HttpJudge:
    """An OpenAI-compatible endpoint; a ragtune server is asked to skip retrieval and its RAG prompt."""

    def __init__(self, url: str, api_key: str | None):
        import httpx
        from openai import OpenAI

        base = url.rstrip("/").removesuffix("/v1")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        try:
            models = httpx.get(f"{base}/v1/models", timeout=10.0, headers=headers)
        except httpx.HTTPError as e:
            raise RagtuneError(
                f"judge {url} is unreachable ({e.__class__.__name__}); start it or fix --judge"
            ) from None
        if models.status_code == 401:
            raise RagtuneError(f"judge {url} wants an API key; pass --judge-api-key")
        if models.status_code != 200 or not models.json().get("data"):
            raise RagtuneError(
                f"judge {url}: GET /v1/models answered {models.status_code}; is it OpenAI-compatible?"
            )
        card = models.json()["data"][0]
        self.model_id = card["id"]
        self.extra = {"retrieval": False, "raw_prompt": True} if card.get("owned_by") == "ragtune" else {}
        self.name = f"{base} ({self.model_id})"
        self.client = OpenAI(base_url=f"{base}/v1", api_key=api_key or "none", max_retries=2, timeout=120.0)

    def ask(self, chats: Sequence[list[dict[str, str]]]) -> list[str]:
        from concurrent.futures import ThreadPoolExecutor

        def one(msgs: list[dict[str, str]]) -> str:
            r = self.client.chat.completions.create(
                model=self.model_id,
                messages=msgs,
                max_tokens=MAX_TOKENS,
                temperature=0,
                extra_body=self.extra or None,
            )
            return r.choices[0].message.content or ""

        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(one, chats))

    def close(self) -> None:
        self.client.close()


class _LocalJudge:
    """A model folder loaded in-process (serve.load_generator), asked in batches of 8."""

    def __init__(self, folder: str):
        from ragtune.hashing import folder_hash
        from ragtune.models import check_model_dir

        path = check_model_dir(folder, "--judge")
        from serve import load_generator

        self.generator = load_generator(str(path))
        self.name = f"{path.name} (sha256 {folder_hash(path)[:12]})"

    def ask(self, chats: Sequence[list[dict[str, str]]]) -> list[str]:
        out: list[str] = []
        for i in range(0, len(chats), 8):
            comps = self.generator.generate(list(chats[i : i + 8]), max_tokens=MAX_TOKENS, stop=None, seed=0)
            out.extend(c.text for c in comps)
        return out

    def close(self) -> None:
        self.generator.close()


class Judge:
    """Grades replies with a judge model; `score(examples, rows)` adds `judge` and `judge_raw` to each row."""

    def __init__(self, source: str, api_key: str | None = None, cache_dir: str | Path | None = None):
        is_url = source.startswith(("http://", "https://"))
        self._impl = _HttpJudge(source, api_key) if is_url else _LocalJudge(source)
        self.name = self._impl.name
        key = hashlib.sha256(f"{self.name}|{PROMPT_VERSION}".encode()).hexdigest()[:16]
        self.cache_path = Path(cache_dir) / "judge" / f"{key}.jsonl" if cache_dir else None
        self.cache = self._read_cache()

    def _read_cache(self) -> dict[str, str]:
        if self.cache_path is None or not self.cache_path.is_file():
            return {}
        cache: dict[str, str] = {}
        try:
            for _, row in iter_jsonl(self.cache_path):
                cache[row["key"]] = row["raw"]
        except RecordError:  # a run killed mid-write leaves a torn last line: keep what parsed
            logger.warning("ignoring a torn line at the end of %s", self.cache_path)
        return cache

    def describe(self) -> dict[str, Any]:
        return {
            "judge": self.name,
            "prompt_version": PROMPT_VERSION,
            "system": SYSTEM,
            "template": TEMPLATE,
            "max_tokens": MAX_TOKENS,
        }

    def score(self, examples: Sequence[QAExample], rows: Sequence[dict[str, Any]]) -> dict[str, int]:
        """Grade every non-empty reply (an empty one is wrong without asking); returns counts."""
        keys, todo = {}, {}
        for ex, row in zip(examples, rows):
            if not row["prediction"]:
                continue
            msgs = judge_messages(ex.question, list(ex.answers), row["prediction"])
            k = hashlib.sha256(json.dumps(msgs).encode()).hexdigest()
            keys[row["id"]] = k
            if k not in self.cache:
                todo[k] = msgs
        if todo:
            logger.info("judge %s: grading %d replies", self.name, len(todo))
            raws = self._impl.ask(list(todo.values()))
            self._remember(dict(zip(todo, raws)))
        unparsed = 0
        for row in rows:
            raw = self.cache.get(keys.get(row["id"], ""), "")
            verdict = parse_verdict(raw) if row["id"] in keys else 0.0
            unparsed += verdict is None
            row["judge"], row["judge_raw"] = verdict or 0.0, raw
        return {"asked": len(todo), "cached": len(keys) - len(todo), "unparsed": unparsed}

    def _remember(self, new: Mapping[str, str]) -> None:
        self.cache.update(new)
        if self.cache_path is None:
            return
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        with self.cache_path.open("a", encoding="utf-8") as f:
            f.writelines(json.dumps({"key": k, "raw": v}, ensure_ascii=False) + "\n" for k, v in new.items())

    def close(self) -> None:
        self._impl.close()
