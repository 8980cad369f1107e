"""write_report: results.json, report.md (+ charts/*.png), one self-contained report.html, disagreements.md.

The report is built once as a list of blocks (heading, paragraph, table, chart) and rendered twice,
so the Markdown and the HTML always say the same thing.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eval import charts
from eval.answers import GUARD_TEXT, VERDICT_METRICS
from eval.report_paths import portable, portable_blocks
from eval.report_tables import (
    NAMES,
    comparison_table,
    config_table,
    cost_table,
    disagreement_table,
    findings,
    forgetting_table,
    freshness_table,
    system_table,
)
from eval.verdict import base_system, compute_verdict, verdict_blocks
from eval.verdict_costs import forgetting_measurements, measurement_name

Block = (
    tuple  # ("h1"|"h2"|"h3"|"p", text) | ("ul", [text]) | ("table", header, rows) | ("img", name, png, alt)
)


def _blocks(
    results: Mapping[str, Any], max_disagreements: int = 20, v: Mapping[str, Any] | None = None
) -> list[Block]:
    """The report: the verdict first (eval/verdict.py), then per split its tables and charts, then forgetting."""
    cfg = results.get("config", {})
    v = compute_verdict(results) if v is None else v
    out: list[Block] = [
        ("h1", "ragtune evaluation report"),
        *verdict_blocks(v),
        *_run_blocks(results.get("run")),
        ("h2", "Method"),
        (
            "p",
            (
                f"Greedy decoding, seed {cfg.get('seed')}; every interval is a "
                f"{int(100 * cfg.get('ci', 0.95))}% percentile bootstrap over questions "
                f"({cfg.get('n_resamples')} resamples, seeded). Answer metrics in percent "
                f"(SQuAD v1.1 normalisation), retrieval metrics on 0–1 against gold document ids. "
                f"Contains: {GUARD_TEXT}."
            ),
        ),
        *_judge_blocks(results),
    ]
    for split, s in results.get("splits", {}).items():
        out += _split_blocks(split, s, cfg, v, max_disagreements)
    fs = forgetting_measurements(results)
    if fs:
        out += _forgetting_blocks(fs)
    return out


def _judge_blocks(results: Mapping[str, Any]) -> list[Block]:
    """Which judge graded the replies, its prompt, and how many of its verdicts did not parse."""
    judged = [(n, s["judge"]) for n, s in results.get("splits", {}).items() if s.get("judge")]
    if not judged:
        return []
    j = judged[0][1]
    unparsed = sum(c.get("unparsed", 0) for _, jj in judged for c in jj.get("per_system", {}).values())
    return [
        (
            "p",
            (
                f"Judge: {j['judge']}, greedy, at most {j['max_tokens']} tokens; a reply starting with yes is "
                f"correct, anything but yes or no counts as wrong ({unparsed} such). System prompt: "
                f'"{j["system"]}" User turn: "{j["template"]}". Each raw verdict is in results.json '
                f"(`per_question[system][i].judge_raw`)."
            ),
        )
    ]


def _run_blocks(run: Mapping[str, Any] | None) -> list[Block]:
    """`ragtune run`'s own lines (serve command, budget cuts, step times), when the results come from one."""
    return [("h2", "This run"), ("ul", list(run["lines"]))] if run and run.get("lines") else []


def _split_blocks(
    split: str, s: Mapping[str, Any], cfg: Mapping[str, Any], v: Mapping[str, Any], max_disagreements: int
) -> list[Block]:
    """One split's findings, tables and charts: systems, differences, freshness, retrieval, cost, config."""
    return [
        *_system_blocks(split, s, v),
        *_freshness_retrieval_blocks(split, s),
        *_cost_blocks(split, s, cfg),
        *_config_blocks(s, max_disagreements),
    ]


def _system_blocks(split: str, s: Mapping[str, Any], v: Mapping[str, Any]) -> list[Block]:
    """The split's heading, findings, system table and chart, and the paired differences."""
    out: list[Block] = []
    out.append(("h2", f"{split} (n={s['qa']['n']})"))
    out.extend(("p", line) for line in findings(s))
    out.append(("table", *system_table(s)))
    png = charts.metric_by_system(s)
    if png:
        out.append(("img", f"{split}_metrics", png, "answer metrics by system with 95% CIs"))
    if s["comparisons"]:
        keep = [n for n in ((v["splits"].get(split) or {}).get("best"), base_system(s)) if n]
        shown = list(dict.fromkeys((v["metric"], "exact_match", "f1", "ndcg@10")))
        names = ", ".join(NAMES.get(m, m) for m in shown[:-1])
        out.append(("h3", "Differences between systems (paired bootstrap)"))
        out.append(
            (
                "p",
                (
                    f"Each system against {' and against '.join(keep) or 'each other'}; {names} in points, "
                    f"nDCG@10 on 0–1. Every pair, and every other metric, is in results.json (`comparisons`)."
                ),
            )
        )
        out.append(("table", *comparison_table(s, keep, shown)))
    return out


def _freshness_retrieval_blocks(split: str, s: Mapping[str, Any]) -> list[Block]:
    """Freshness table and chart when measured; the recall@k chart when there is one."""
    out: list[Block] = []
    if any("freshness" in r for r in s["systems"].values()):
        out.append(("h3", "Freshness: answers after the index refresh"))
        out.append(("table", *freshness_table(s)))
        png = charts.freshness(s)
        out.append(("img", f"{split}_freshness", png, "new vs stale answers"))
    png = charts.recall_curve(s)
    if png:
        out.append(("h3", "Retrieval"))
        out.append(("img", f"{split}_recall", png, "recall@k"))
    return out


def _cost_blocks(split: str, s: Mapping[str, Any], cfg: Mapping[str, Any]) -> list[Block]:
    """How latency is measured, the cost table and the latency chart."""
    out: list[Block] = []
    out.append(("h3", "Cost"))
    out.append(
        (
            "p",
            (
                f"Latency is wall time per question including retrieval: over HTTP with "
                f"{cfg.get('batch_size')} requests in flight at once, each timed from request to answer; "
                f"in-process in batches of {cfg.get('batch_size')}, where each question counts its batch's "
                f"time. Training figures come from each model's ragtune.json, where recorded."
            ),
        )
    )
    out.append(("table", *cost_table(s)))
    png = charts.latency(s)
    if png:
        out.append(("img", f"{split}_latency", png, "latency p50/p95"))
    return out


def _config_blocks(s: Mapping[str, Any], max_disagreements: int) -> list[Block]:
    """The configuration table and the first disagreements."""
    out: list[Block] = []
    out.append(("h3", "Configuration"))
    out.append(("table", *config_table(s)))
    if s["disagreements"]:
        shown = s["disagreements"][:max_disagreements]
        out.append(
            (
                "h3",
                (
                    f"Disagreements ({len(s['disagreements'])} questions; first {len(shown)} here, "
                    f"all in disagreements.md)"
                ),
            )
        )
        out.append(("table", *disagreement_table(shown)))
    return out


def _forgetting_blocks(fs: list[Mapping[str, Any]]) -> list[Block]:
    """Each fine-tuned model against its base on general questions, and the gate when one was set."""
    out: list[Block] = []
    out.append(("h2", f"Forgetting (general held-out set, n={fs[0]['general_qa']['n']})"))
    out.append(("table", *forgetting_table(fs)))
    png = charts.forgetting(fs)
    if png:
        out.append(("img", "forgetting", png, "forgetting"))
    for f in fs:
        g = f.get("gate") or {}
        if g.get("max_forgetting") is not None:
            gate = f"Gate --max-forgetting {g['max_forgetting']}: {'passed' if g['passed'] else 'FAILED'}"
            out.append(("p", f"{gate} ({measurement_name(f)})." if len(fs) > 1 else f"{gate}."))
    return out


def _md_cell(v: Any) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def _render_md(blocks: list[Block], chart_dir: str) -> str:
    lines: list[str] = []
    for b in blocks:
        if b[0] in ("h1", "h2", "h3"):
            lines += ["#" * int(b[0][1]) + " " + b[1], ""]
        elif b[0] == "p":
            lines += [b[1], ""]
        elif b[0] == "ul":
            lines += [f"- {item}" for item in b[1]] + [""]
        elif b[0] == "table":
            header, rows = b[1], b[2]
            lines.append("| " + " | ".join(map(_md_cell, header)) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(map(_md_cell, r)) + " |" for r in rows]
            lines.append("")
        elif b[0] == "img":
            lines += [f"![{b[3]}]({chart_dir}/{b[1]}.png)", ""]
    return "\n".join(lines)


CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;"
    "text-align:left;vertical-align:top}th{background:#f3f3f3}img{max-width:100%;display:block;margin:1em 0}"
)


def _render_html(blocks: list[Block]) -> str:
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>ragtune evaluation report</title>",
        f"<style>{CSS}</style></head><body>",
    ]
    for b in blocks:
        if b[0] in ("h1", "h2", "h3"):
            parts.append(f"<{b[0]}>{html.escape(b[1])}</{b[0]}>")
        elif b[0] == "p":
            parts.append(f"<p>{html.escape(b[1])}</p>")
        elif b[0] == "ul":
            parts.append("<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in b[1]) + "</ul>")
        elif b[0] == "table":
            head = "".join(f"<th>{html.escape(str(h))}</th>" for h in b[1])
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in b[2]
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif b[0] == "img":
            data = base64.b64encode(b[2]).decode()
            parts.append(f"<img alt='{html.escape(b[3])}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _jsonable(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if hasattr(o, "item"):  # numpy scalars
        return _jsonable(o.item())
    return o


def write_report(
    results: Mapping[str, Any], out_dir: str | Path, metric: str | None = None
) -> dict[str, Path]:
    """Write results.json (with the verdict), report.md, charts/*.png, report.html and disagreements.md.

    `metric`: the verdict's (compute_verdict's argument). No absolute path of this machine is written:
    paths become relative to `out_dir` or `~` (eval/report_paths.py)."""
    out = Path(out_dir)
    (out / "charts").mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / "results.json",
        "md": out / "report.md",
        "html": out / "report.html",
        "disagreements": out / "disagreements.md",
    }
    v = compute_verdict(results, metric)
    paths["json"].write_text(
        json.dumps(_jsonable(portable({**results, "verdict": v}, out)), indent=1, sort_keys=False),
        encoding="utf-8",
    )
    blocks = portable_blocks(_blocks(results, v=v), out)
    for b in blocks:
        if b[0] == "img":
            (out / "charts" / f"{b[1]}.png").write_bytes(b[2])
    paths["md"].write_text(_render_md(blocks, "charts"), encoding="utf-8")
    paths["html"].write_text(_render_html(blocks), encoding="utf-8")
    name = VERDICT_METRICS.get(results.get("config", {}).get("metric", "exact_match"), "exact match")
    dis: list[Block] = [("h1", f"Questions the systems disagree on ({name})")]
    for split, s in results.get("splits", {}).items():
        dis += [
            ("h2", f"{split}: {len(s['disagreements'])} of {s['qa']['n']}"),
            ("table", *disagreement_table(s["disagreements"])),
        ]
    paths["disagreements"].write_text(_render_md(portable_blocks(dis, out), "charts"), encoding="utf-8")
    return paths
