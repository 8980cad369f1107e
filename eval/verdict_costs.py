"""The verdict's costs: one line per system (training time, latency, adapter size, forgetting) and the
table at a glance that opens the verdict (system, verdict metric with CI, contained-rate, latency,
training time, forgetting). Forgetting is matched to the systems that run a model
`results["forgetting"]` measured (eval/forget.py: one measurement per fine-tuned model).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eval.answers import VERDICT_METRICS


def metric_mean(system: Mapping[str, Any], metric: str) -> float | None:
    v = (system.get("metrics") or {}).get(metric) or {}
    m = v.get("mean")
    return None if m is None or math.isnan(m) else float(m)


def name_of(path: Any) -> str | None:
    return Path(str(path)).name if path else None


def forgetting_measurements(results: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """`results["forgetting"]` as a list: one measurement per fine-tuned model (eval.forget.forgetting_of),
    or the single one `forgetting` and `ragtune eval --general-qa` write."""
    f = results.get("forgetting")
    if not f:
        return []
    return [f] if isinstance(f, Mapping) else [m for m in f if m]


def measurement_name(f: Mapping[str, Any]) -> str:
    return str(f.get("name") or name_of(f.get("ft_model")) or "the fine-tuned model")


def _runs(system: Mapping[str, Any], sha: str | None, path: str | None) -> bool:
    """Does `system` run the model folder `path` (content hash `sha`)? By hash, then folder path; over
    HTTP without a folder, by the served model id (a ragtune server names its model after the folder)."""
    spec, d = system.get("spec") or {}, system.get("describe") or {}
    if d.get("model_sha256"):
        return bool(sha) and d["model_sha256"] == sha
    if spec.get("model") and path:
        return Path(spec["model"]).resolve() == Path(path).resolve()
    return bool(not spec.get("model") and path and d.get("model_id") and d["model_id"] == name_of(path))


def forgetting_for(
    system: Mapping[str, Any], measurements: list[Mapping[str, Any]]
) -> tuple[str | None, Mapping[str, Any] | None]:
    """("tuned", its measurement) if `system` runs a fine-tuned model one of `measurements` measured,
    ("base", None) if it runs their base, else (None, None)."""
    for f in measurements:
        if _runs(system, f.get("ft_sha256"), f.get("ft_model")):
            return "tuned", f
    if any(_runs(system, f.get("base_sha256"), f.get("base_model")) for f in measurements):
        return "base", None
    return None, None


def forgetting_summary(f: Mapping[str, Any]) -> dict[str, Any]:
    g = f.get("forgetting") or {}
    out = {
        "name": measurement_name(f),
        "ft_model": f.get("ft_model"),
        "base_model": f.get("base_model"),
        "n": g.get("n") or (f.get("general_qa") or {}).get("n"),
        "f1_points": g.get("f1_points"),
        "f1_low": g.get("low"),
        "f1_high": g.get("high"),
        "contained_points": g.get("contained_points"),
        "contained_low": g.get("contained_low"),
        "contained_high": g.get("contained_high"),
    }
    for role in ("base", "ft"):
        if isinstance(f.get(role), Mapping):
            out[role] = {
                k: f[role][k] for k in ("perplexity", "exact_match", "f1", "contained") if k in f[role]
            }
    gate = f.get("gate") or {}
    if gate.get("max_forgetting") is not None:
        out["gate"] = {"max_forgetting": gate["max_forgetting"], "passed": gate.get("passed")}
    return out


def forgetting_text(s: Mapping[str, Any]) -> str:
    parts = []
    if s.get("f1_points") is not None:
        parts.append(f"{s['f1_points']:.1f} F1 points [{s['f1_low']:+.1f}, {s['f1_high']:+.1f}]")
    if s.get("contained_points") is not None:
        parts.append(
            f"{s['contained_points']:.1f} answer-contained points "
            f"[{s['contained_low']:+.1f}, {s['contained_high']:+.1f}]"
        )
    text = f"forgets {' and '.join(parts) or 'nothing measured'} vs its base on general QA (n={s['n']})"
    if "gate" in s:
        text += f", gate --max-forgetting {s['gate']['max_forgetting']}: {'passed' if s['gate']['passed'] else 'FAILED'}"
    return text


def cost_split(results: Mapping[str, Any]) -> str | None:
    splits = results.get("splits") or {}
    return "test" if "test" in splits else next(iter(splits), None)


def cost_lines(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per system: training time, latency p50 (held-out split), adapter size, forgetting where measured."""
    split_name = cost_split(results)
    if split_name is None:
        return []
    fs = forgetting_measurements(results)
    out = []
    for name, s in results["splits"][split_name]["systems"].items():
        c = s.get("cost") or {}
        role, f = forgetting_for(s, fs)
        line = {
            "system": name,
            "split": split_name,
            "train_time_s": c.get("train_time_s"),
            "latency_p50_s": c.get("latency_p50_s"),
            "adapter_bytes": c.get("adapter_bytes"),
            "forgetting": forgetting_summary(f) if f else None,
            "forgetting_role": role or ("unmeasured" if fs else None),
        }
        out.append({**line, "text": _cost_text(line)})
    return out


def _cost_text(c: Mapping[str, Any]) -> str:
    lat = c["latency_p50_s"]
    parts = [
        f"latency p50 {lat * 1000:.0f} ms" if lat is not None and not math.isnan(lat) else "latency p50 –",
        f"training {c['train_time_s']:.0f} s"
        if c["train_time_s"] is not None
        else "training time not recorded",
        f"adapter {c['adapter_bytes'] / 1e6:.2f} MB"
        if c["adapter_bytes"] is not None
        else "no adapter recorded",
    ]
    if c["forgetting_role"] == "tuned":
        parts.append(forgetting_text(c["forgetting"]))
    elif c["forgetting_role"] == "base":
        parts.append("runs the base model (the forgetting reference)")
    elif c["forgetting_role"] == "unmeasured":
        parts.append("forgetting not measured")
    return f"{c['system']}: " + "; ".join(parts)


def _ci_text(v: Mapping[str, Any] | None) -> str:
    if not v or v.get("mean") is None or math.isnan(v["mean"]):
        return "–"
    return f"{v['mean']:.1f} [{v['low']:.1f}, {v['high']:.1f}]"


def _forgetting_cell(c: Mapping[str, Any]) -> str:
    role = c["forgetting_role"]
    if role == "tuned":  # points lost: answer-contained (what a loss of knowledge moves), else F1
        f = c["forgetting"]
        if f.get("contained_points") is not None:
            return f"{f['contained_points']:.1f} contained pts [{f['contained_low']:+.1f}, {f['contained_high']:+.1f}]"
        if f.get("f1_points") is None:
            return "measured, no F1"
        return f"{f['f1_points']:.1f} F1 pts [{f['f1_low']:+.1f}, {f['f1_high']:+.1f}]"
    return {"base": "base model", "unmeasured": "not measured"}.get(role or "", "–")


def glance_table(results: Mapping[str, Any], metric: str, costs: list[dict[str, Any]]) -> dict[str, Any]:
    """The verdict's opening table: per system the verdict metric with CI, the contained-rate (EM when
    the metric is contains), latency p50, training time and forgetting, on the cost split."""
    split = cost_split(results)
    if split is None:
        return {"header": [], "rows": []}
    second = "exact_match" if metric == "contains" else "contains"
    systems = results["splits"][split]["systems"]
    header = [
        "system",
        f"{VERDICT_METRICS[metric]} [95% CI]",
        f"{VERDICT_METRICS[second]} %",
        "latency p50",
        "training",
        "forgetting (vs base, general QA)",
    ]
    rows = []
    for c in costs:
        m = systems[c["system"]].get("metrics") or {}
        sec = metric_mean(systems[c["system"]], second)
        lat, train = c["latency_p50_s"], c["train_time_s"]
        rows.append(
            [
                c["system"],
                _ci_text(m.get(metric)),
                "–" if sec is None else f"{sec:.1f}",
                "–" if lat is None or math.isnan(lat) else f"{lat * 1000:.0f} ms",
                "–" if train is None else f"{train:.0f} s",
                _forgetting_cell(c),
            ]
        )
    return {"split": split, "header": header, "rows": rows}
