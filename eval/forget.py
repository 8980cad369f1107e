"""Forgetting: the fine-tuned generator vs its base on a general held-out set.

Two measures, each with a paired bootstrap 95% CI over the same questions:
- perplexity of the reference answer given the prompt (the ONE prompt function; the example's
  `context`, if any, as its passage), pooled over tokens: exp(Σ NLL / Σ tokens);
- QA accuracy (EM, F1 and answer-contained of greedy answers, in percent). A fine-tune that teaches
  short answers changes EM and F1 by its format alone; `contained` (a gold answer occurs in the reply)
  is what a change of knowledge moves, so it is the one to read for forgetting.
`forgetting` (F1 points lost: base − fine-tuned) is what `--max-forgetting` gates; `contained_points`
beside it is the same for answer-contained.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eval.answers import answer_contained
from eval.squad import exact_match, token_f1
from eval.stats import paired_bootstrap
from ragtune.hashing import folder_hash
from ragtune.models import check_model_dir
from ragtune.prompt import build_messages
from ragtune.records import QAExample

logger = logging.getLogger(__name__)

# 50 general-knowledge questions the default base model mostly answers (capitals, authors, elements, ...):
# what a fine-tune on one body of knowledge might overwrite. Ships with the package (package-data).
GENERAL_QA = Path(__file__).parent / "data" / "general_knowledge.jsonl"


def _messages(ex: QAExample) -> list[dict[str, str]]:
    return build_messages(ex.question, [ex.context] if ex.context else None)


def answer_nll(
    model_dir: str | Path, examples: Sequence[QAExample], batch_size: int = 8, progress: bool = False
) -> np.ndarray:
    """[n, 2] array: summed NLL (nats) of each reference answer (with its end token) and its token count."""
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), local_files_only=True, dtype=torch.float32)
    model.eval()
    out = np.zeros((len(examples), 2))
    for i in tqdm(range(len(examples)), desc=f"perplexity {Path(model_dir).name}", disable=not progress):
        ex = examples[i]
        msgs = _messages(ex)
        prompt = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True, return_dict=False)
        full = tok.apply_chat_template(
            msgs + [{"role": "assistant", "content": ex.answer}], tokenize=True, return_dict=False
        )
        if hasattr(prompt, "input_ids"):
            prompt, full = prompt["input_ids"], full["input_ids"]
        n_prompt = len(prompt)
        if full[:n_prompt] != list(prompt) or len(full) <= n_prompt:
            raise ValueError(f"{model_dir}: the chat template does not extend the prompt with the answer")
        ids = torch.tensor([full])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, :-1].float()
        targets = ids[0, 1:]
        logp = torch.log_softmax(logits, dim=-1).gather(1, targets[:, None])[:, 0]
        ans = logp[n_prompt - 1 :]
        out[i] = (-float(ans.sum()), len(ans))
    return out


def _ppl(x: np.ndarray) -> float:
    return math.exp(x[:, 0].sum() / max(x[:, 1].sum(), 1))


def forgetting(
    ft_model: str | Path,
    base_model: str | Path,
    general_qa: str | Path | Sequence[QAExample],
    **options: Any,
) -> dict[str, Any]:
    """Perplexity and QA accuracy of `ft_model` vs `base_model` on `general_qa`, with paired CIs (the
    options of `forgetting_of`)."""
    return forgetting_of({"ft": ft_model}, base_model, general_qa, **options)[0]


def forgetting_of(
    tuned: Mapping[str, str | Path],
    base_model: str | Path,
    general_qa: str | Path | Sequence[QAExample],
    *,
    seed: int = 0,
    n_resamples: int = 1000,
    batch_size: int = 8,
    max_tokens: int = 32,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """`forgetting` of each fine-tuned model in `tuned` (name → folder) against the one base, which is
    scored once; one measurement per model, in `tuned`'s order, each named (`name`). Stored in results as
    `{"forgetting": [...]}` (eval/verdict_costs.py reads a single measurement as a list of one)."""
    from eval.compare import load_examples

    base = check_model_dir(base_model, "the base model")
    folders = {name: check_model_dir(p, f"the fine-tuned model {name}") for name, p in tuned.items()}
    examples, desc = load_examples(general_qa, "general QA")
    common = {"batch_size": batch_size, "max_tokens": max_tokens, "seed": seed, "progress": progress}
    base_scores, base_summary = _score_model("base", base, examples, **common)
    base_sha = folder_hash(base)
    out = []
    for name, ft in folders.items():
        scores, summary = _score_model(name, ft, examples, **common)
        res: dict[str, Any] = {
            "name": name,
            "general_qa": desc,
            "ft_model": str(ft),
            "base_model": str(base),
            "ft_sha256": folder_hash(ft),
            "base_sha256": base_sha,
            "seed": seed,
            "base": base_summary,
            "ft": summary,
            "delta": _deltas(base_scores, scores, n_resamples, seed),
        }
        d, c = res["delta"]["f1"], res["delta"]["contained"]
        res["forgetting"] = {
            "f1_points": 0.0 - d["diff"],
            "low": 0.0 - d["high"],
            "high": 0.0 - d["low"],
            "n": d["n"],
            "contained_points": 0.0 - c["diff"],
            "contained_low": 0.0 - c["high"],
            "contained_high": 0.0 - c["low"],
        }
        out.append(res)
    return out


def _score_model(
    name: str,
    path: Path,
    examples: Sequence[QAExample],
    *,
    batch_size: int,
    max_tokens: int,
    seed: int,
    progress: bool,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Answer the general QA with one model: (per-question scores, its summary with the predictions)."""
    from tqdm.auto import tqdm

    from serve import load_generator

    gen = load_generator(str(path))
    preds: list[str] = []
    for i in tqdm(range(0, len(examples), batch_size), desc=f"general QA {name}", disable=not progress):
        batch = examples[i : i + batch_size]
        comps = gen.generate([_messages(e) for e in batch], max_tokens=max_tokens, stop=None, seed=seed)
        preds.extend(c.text.strip() for c in comps)
    nll = answer_nll(path, examples, batch_size, progress)
    scores = {
        "em": np.array([exact_match(p, e.answers) for p, e in zip(preds, examples)]),
        "f1": np.array([token_f1(p, e.answers) for p, e in zip(preds, examples)]),
        "contained": np.array([answer_contained(p, e.answers) for p, e in zip(preds, examples)]),
        "nll": nll,
    }
    summary = {
        "perplexity": _ppl(nll),
        "exact_match": 100 * scores["em"].mean(),
        "f1": 100 * scores["f1"].mean(),
        "contained": 100 * scores["contained"].mean(),
        "predictions": preds,
    }
    return scores, summary


def _deltas(
    b: dict[str, np.ndarray], f: dict[str, np.ndarray], n_resamples: int, seed: int
) -> dict[str, dict[str, Any]]:
    """Paired-bootstrap differences ft - base of perplexity, exact match, F1 and contained."""
    return {
        "perplexity": paired_bootstrap(
            f["nll"], b["nll"], n_resamples, seed, statistic=lambda x, y: _ppl(x) - _ppl(y)
        ),
        "exact_match": paired_bootstrap(f["em"], b["em"], n_resamples, seed, scale=100.0),
        "f1": paired_bootstrap(f["f1"], b["f1"], n_resamples, seed, scale=100.0),
        "contained": paired_bootstrap(f["contained"], b["contained"], n_resamples, seed, scale=100.0),
    }


def gate(result: dict[str, Any], max_forgetting: float | None) -> tuple[bool, str]:
    """(passed, message) for `--max-forgetting POINTS` (F1 points the fine-tune may lose vs its base)."""
    f = result["forgetting"]
    msg = (
        f"forgetting: base − fine-tuned F1 = {f['f1_points']:.2f} points "
        f"(95% CI {f['low']:.2f} .. {f['high']:.2f}, n={f['n']})"
    )
    if max_forgetting is None:
        return True, msg
    ok = f["f1_points"] <= max_forgetting
    return ok, msg + (f" ≤ {max_forgetting}: pass" if ok else f" > --max-forgetting {max_forgetting}: FAIL")
