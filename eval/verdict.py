"""The report's verdict: which system to deploy, read off the paired comparisons already in the results.

`compute_verdict(results)` returns plain data (JSON-ready); `verdict_blocks(v)` renders it into the report's
blocks. Per split (held-out "test" first, then "freshness", then any other):

- the verdict metric is the one asked for (`compute_verdict(results, metric)`), else the one
  results["config"] records (`ragtune eval --metric`), else eval.answers.DEFAULT_METRIC (contains);
  where the top two systems tie on it (paired difference exactly 0) F1 decides (EM when the metric is
  F1), and the split says so; where the best cannot be told apart on it from others (paired CI includes
  zero), F1 decides between them when it can: one of those that beats the best on F1 with a CI clear of
  zero is deployed, and where instead the best beats each of them on F1 with a CI clear of zero, the best
  stays and is compared on F1; the split says why: the verdict metric cannot separate them, F1 can (a terse
  right answer and a sentence around the same right answer both count as contained; F1 prefers the terse
  one, and only a CI clear of zero counts);
- a system whose contained-rate is FORMAT_GAP points or more above its EM knows answers it does not
  give in the expected form: the split's text says so (a fine-tune or a few-shot prompt fixes that);
- the best system is the one with the highest mean; the runner-up the next one (ties: the next metric,
  then the order the systems were listed in);
- best vs runner-up, best vs base, and the lists of systems the best beats or cannot be told apart
  from are the stored paired bootstrap comparisons (`splits[s]["comparisons"]`, diff = a − b),
  turned around (diff → −diff, [low, high] → [−high, −low]) when stored the other way; nothing is
  recomputed;
- one cost line per system: training time, latency p50 (held-out split), adapter size, and forgetting
  for the systems that run a model `results["forgetting"]` measured (eval/forget.py: one measurement per
  fine-tuned model; a model no system runs is stated apart).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eval.answers import DEFAULT_METRIC, GUARD_TEXT, VERDICT_METRICS, verdict_metric
from eval.verdict_costs import (
    cost_lines,
    cost_split,
    forgetting_measurements,
    forgetting_summary,
    forgetting_text,
    glance_table,
    metric_mean,
)

METRIC_NAMES = VERDICT_METRICS
FORMAT_GAP = 20.0  # contained-rate minus EM, in points, from which a system "knows but does not format"
SPLIT_LABELS = {
    "test": "held-out questions",
    "freshness": "changed facts after the index refresh",
    "user": "your own questions (ragtune run --qa)",
}
EPS = 1e-9


def comparison(split: Mapping[str, Any], x: str, y: str, metric: str) -> dict[str, Any] | None:
    """The stored paired comparison x − y on `metric` (turned around if stored as y − x); None if absent."""
    for c in split.get("comparisons") or []:
        if c["metric"] != metric:
            continue
        if (c["a"], c["b"]) == (x, y):
            return {k: c[k] for k in ("a", "b", "metric", "diff", "low", "high", "n", "significant")}
        if (c["a"], c["b"]) == (y, x):
            return {
                "a": x,
                "b": y,
                "metric": metric,
                "diff": 0.0 - c["diff"],
                "low": 0.0 - c["high"],
                "high": 0.0 - c["low"],
                "n": c["n"],
                "significant": c["significant"],
            }
    return None


def base_system(split: Mapping[str, Any]) -> str | None:
    """The system named `base`; else the one without retrieval or few-shot whose model the others name as base."""
    systems = split.get("systems") or {}
    if "base" in systems:
        return "base"
    bases = {s["spec"].get("base_model") for s in systems.values() if s.get("spec", {}).get("base_model")}
    for name, s in systems.items():
        spec = s.get("spec", {})
        if spec.get("model") in bases and not spec.get("retrieval") and not spec.get("fewshot"):
            return name
    return None


def chain(metric: str) -> tuple[str, str]:
    """The verdict metric, then what breaks a tie on it."""
    return (metric, "exact_match" if metric == "f1" else "f1")


def _ranked(split: Mapping[str, Any], metrics: tuple[str, ...]) -> list[str]:
    systems = split.get("systems") or {}
    names = [n for n in systems if metric_mean(systems[n], metrics[0]) is not None]
    order = {n: i for i, n in enumerate(names)}

    def key(n: str) -> tuple:
        return tuple(-round(metric_mean(systems[n], m) or 0.0, 9) for m in metrics) + (order[n],)

    return sorted(names, key=key)


def format_gaps(split: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Systems whose contained-rate is FORMAT_GAP points or more above their EM."""
    out = []
    for name, s in (split.get("systems") or {}).items():
        em, contained = metric_mean(s, "exact_match"), metric_mean(s, "contains")
        if em is not None and contained is not None and contained - em >= FORMAT_GAP:
            shots = bool((s.get("spec") or {}).get("fewshot"))
            out.append({"system": name, "exact_match": em, "contains": contained, "fewshot": shots})
    return out


def split_verdict(split_name: str, split: Mapping[str, Any], metric: str) -> dict[str, Any] | None:
    """Best system of one split on `metric`, its runner-up, and how sure the paired comparisons are."""
    systems = split.get("systems") or {}
    metrics = chain(metric)
    ranked = _ranked(split, metrics)
    if not ranked:
        return None
    best = ranked[0]
    runner = ranked[1] if len(ranked) > 1 else None
    tied_on: list[str] = []
    metric = metrics[0]
    if runner is not None:  # the verdict metric steps down the chain while the top two tie on it
        for i, m in enumerate(metrics):
            c = comparison(split, best, runner, m)
            tied = c is not None and abs(c["diff"]) < EPS  # equal means, whatever the per-question spread
            metric = m
            if not tied or i == len(metrics) - 1:
                break
            tied_on.append(m)
    peers: list[str] = []
    first_best = ranked[0]
    sep = _separated_on_next(split, ranked, metrics)  # after an exact tie's F1 too
    if sep is not None and not (sep[0] == first_best and tied_on):  # (an exact tie already compares on F1)
        best, peers = sep
        metric, tied_on = metrics[1], [metrics[0]]
        # the runner-up: the system it displaced, or when the best stays, its closest peer on F1
        if best == first_best:
            runner = max(peers, key=lambda n: metric_mean(systems[n], metric) or 0.0)
        else:
            runner = first_best
        ranked = [best] + [n for n in ranked if n != best]
    out: dict[str, Any] = {
        "split": split_name,
        "label": SPLIT_LABELS.get(split_name, split_name),
        "n": (split.get("qa") or {}).get("n"),
        "metric": metric,
        "tied_on": tied_on,
        "not_separated": peers,
        "first_best": first_best,
        "best": best,
        "best_ci": _ci(systems[best], metric),
        "runner_up": runner,
        "runner_up_ci": _ci(systems[runner], metric) if runner else None,
        "vs_runner_up": comparison(split, best, runner, metric) if runner else None,
    }
    vs = out["vs_runner_up"]
    out["distinguishable"] = None if vs is None else bool(vs["significant"] and vs["diff"] > 0)
    others = [comparison(split, best, n, metric) for n in ranked if n != best]
    out["beats"] = [c["b"] for c in others if c and c["significant"] and c["diff"] > 0]
    out["not_distinguishable_from"] = [c["b"] for c in others if c and not c["significant"]]
    base = base_system(split)
    out["base"] = base
    out["vs_base"] = comparison(split, best, base, metric) if base and base != best else None
    if "freshness" in systems[best]:
        f = systems[best]["freshness"]
        out["freshness"] = {k: f.get(k) for k in ("new", "stale", "both", "neither", "n")}
    out["format_gaps"] = format_gaps(split)
    out["text"] = _split_text(out)
    return out


def _separated_on_next(
    split: Mapping[str, Any], ranked: list[str], metrics: tuple[str, ...]
) -> tuple[str, list[str]] | None:
    """Where the verdict metric cannot tell the best from others (paired CI includes zero) and the next metric
    can: the one of them that beats the best on it with a CI clear of zero (the highest such), else the best
    itself when it beats each of them so; with the systems the best could not be told from. None otherwise
    (no such systems, or the next metric cannot separate them either)."""
    top, first, second = ranked[0], metrics[0], metrics[1]
    peers = [
        n for n in ranked[1:] if (c := comparison(split, top, n, first)) is not None and not c["significant"]
    ]
    winners = []
    for n in peers:
        c = comparison(split, n, top, second)
        if c is not None and c["significant"] and c["diff"] > 0:
            winners.append((c["diff"], n))
    if winners:
        return max(winners)[1], peers
    if peers and all(
        (c := comparison(split, top, n, second)) is not None and c["significant"] and c["diff"] > 0
        for n in peers
    ):
        return top, peers
    return None


def _ci(system: Mapping[str, Any], metric: str) -> dict[str, float] | None:
    v = (system.get("metrics") or {}).get(metric)
    return {k: v[k] for k in ("mean", "low", "high")} if v else None


def _diff(c: Mapping[str, Any], unit: str) -> str:
    return f"{c['diff']:+.1f} {unit} [{c['low']:+.1f}, {c['high']:+.1f}]"


def _split_text(v: Mapping[str, Any]) -> str:
    name = METRIC_NAMES.get(v["metric"], v["metric"])
    unit = f"{name} points"
    ci = v["best_ci"]
    head = (
        f"For {v['label']} ({v['split']}, n={v['n']}) deploy {v['best']}: {name} {ci['mean']:.1f} "
        f"[{ci['low']:.1f}, {ci['high']:.1f}]"
    )
    if v.get("not_separated"):
        first = METRIC_NAMES.get(v["tied_on"][0], v["tied_on"][0])
        head += (
            f" ({first} cannot tell {v['first_best']}, the best on {first}, from "
            f"{' or '.join(v['not_separated'])}: the CIs include zero; {name} can, so {name} decides)"
        )
    elif v["tied_on"]:
        tied = " and ".join(METRIC_NAMES.get(m, m) for m in v["tied_on"])
        head += (
            f" ({tied} tie{'s' if len(v['tied_on']) == 1 else ''} with {v['runner_up']}; compared on {name})"
        )
    if v["runner_up"] is None:
        return head + "; the only system evaluated."
    vs = v["vs_runner_up"]
    if vs is None:
        parts = [f"no paired comparison with runner-up {v['runner_up']} in the results"]
    elif v["distinguishable"]:
        parts = [f"beats runner-up {v['runner_up']} by {_diff(vs, unit)}"]
    else:
        parts = [f"not distinguishable from {v['runner_up']} ({_diff(vs, unit)}: the CI includes zero)"]
    more = [n for n in v["not_distinguishable_from"] if n != v["runner_up"]]
    if more:
        parts.append("nor from " + ", ".join(more))
    beaten = [n for n in v["beats"] if n != v["runner_up"]]
    if beaten:
        parts.append(("also beats " if v["distinguishable"] else "beats ") + ", ".join(beaten))
    if v["vs_base"] is not None and v["base"] != v["runner_up"]:
        parts.append(f"vs {v['base']} {_diff(v['vs_base'], unit)}")
    text = head + "; " + "; ".join(parts) + "."
    if not v["distinguishable"] and vs is not None:
        text += " Choose on cost (below)."
    f = v.get("freshness")
    if f:
        text += f" It answers {f['new']} of {f['n']} changed facts with the new value, {f['stale']} with the stale one."
    return text + "".join(" " + _gap_text(g) for g in v.get("format_gaps") or [])


def _gap_text(g: Mapping[str, Any]) -> str:
    return (
        f"{g['system']} contains the answer in {g['contains']:.1f}% of its replies but matches it exactly in "
        f"{g['exact_match']:.1f}%: it knows the answer but not the format; "
        + (
            "a fine-tune fixes that cheaply."
            if g.get("fewshot")
            else "a fine-tune or a few-shot prompt fixes that cheaply."
        )
    )


def _has_metric(splits: Mapping[str, Any], metric: str) -> bool:
    return any(
        metric_mean(s, metric) is not None
        for sp in splits.values()
        for s in (sp.get("systems") or {}).values()
    )


def resolve_metric(results: Mapping[str, Any], metric: str | None = None) -> tuple[str, str | None]:
    """The verdict metric (asked for, else results["config"]["metric"], else the default) and, when the
    results do not hold it (results written before it existed, no judge), the note on what decides instead."""
    asked = verdict_metric(metric or (results.get("config") or {}).get("metric") or DEFAULT_METRIC)
    splits = results.get("splits") or {}
    if _has_metric(splits, asked) or not splits:
        return asked, None
    fallback = next((m for m in (DEFAULT_METRIC, "exact_match", "f1") if _has_metric(splits, m)), asked)
    return fallback, f"the results hold no {METRIC_NAMES[asked]} scores, so {METRIC_NAMES[fallback]} decides"


def _metric_text(metric: str, tie_broken: list[str], note: str | None) -> str:
    name = METRIC_NAMES[metric]
    what = {
        "exact_match": "exact match (EM, in points)",
        "f1": "token F1 (in points)",
        "contains": f"the gold answer contained in the reply (in points; {GUARD_TEXT})",
        "judge": "a judge model's yes/no on each reply against the gold (in points; prompt and raw verdicts "
        "in results.json)",
    }[metric]
    text = f"Verdict metric: {what}"
    if note:
        text += f" ({note})"
    text += "; paired bootstrap 95% CIs of the differences as stored in results.json (`comparisons`)"
    tie = METRIC_NAMES[chain(metric)[1]]
    rule = (
        f"where the top two tie on {name}, or where {name} cannot tell the best from other systems and {tie} "
        f"can (one beats the best, or the best beats each, with a CI clear of zero), {tie} decides"
    )
    if tie_broken:
        return text + f"; {rule} ({', '.join(tie_broken)})."
    return text + f"; {rule} (no split here)."


def compute_verdict(results: Mapping[str, Any], metric: str | None = None) -> dict[str, Any]:
    """What to deploy, per split, with CIs and costs (JSON-ready; `text` fields are the report's sentences).

    `metric`: em (or exact_match), f1, contains or judge; default: results["config"]["metric"], else
    contains (eval.answers.DEFAULT_METRIC)."""
    splits = results.get("splits") or {}
    metric, note = resolve_metric(results, metric)
    order = [s for s in ("test", "freshness") if s in splits] + [
        s for s in splits if s not in ("test", "freshness")
    ]
    per_split = {s: v for s in order if (v := split_verdict(s, splits[s], metric)) is not None}
    fs = forgetting_measurements(results)
    costs = cost_lines(results)
    matched = {c["forgetting"]["ft_model"] for c in costs if c["forgetting"]}
    unmatched = [forgetting_summary(f) for f in fs if f.get("ft_model") not in matched]
    tie_broken = [v["split"] for v in per_split.values() if v["tied_on"]]
    out: dict[str, Any] = {
        "metric": metric,
        "fallback": chain(metric)[1],
        "metric_text": _metric_text(metric, tie_broken, note),
        "splits": per_split,
        "costs": costs,
        "forgetting": [forgetting_summary(f) for f in fs] or None,
        "cost_split": cost_split(results),
        "table": glance_table(results, metric, costs),
    }
    if unmatched:  # measured models no compared system runs: stated apart
        out["forgetting_text"] = " ".join(
            f"Forgetting of {u['name']}: {forgetting_text(u)}." for u in unmatched
        )
    return out


Block = tuple


def verdict_blocks(v: Mapping[str, Any]) -> list[Block]:
    """The verdict as report blocks (see eval/report.py): heading, the table at a glance, one sentence per
    split, the metric, cost lines."""
    if not v.get("splits"):
        return []
    out: list[Block] = [("h2", "Verdict")]
    t = v.get("table") or {}
    if t.get("rows"):
        out.append(("table", t["header"], t["rows"]))
    out.extend(("p", s["text"]) for s in v["splits"].values())
    out.append(("p", v["metric_text"]))
    if v["costs"]:
        out.append(
            (
                "p",
                (
                    f"Cost per system (latency on the {v['cost_split']} split; training time and adapter "
                    f"size from each model's ragtune.json, where recorded):"
                ),
            )
        )
        out.append(("ul", [c["text"] for c in v["costs"]]))
    if v.get("forgetting_text"):
        out.append(("p", v["forgetting_text"]))
    return out
