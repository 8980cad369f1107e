"""The run's report: eval's report (verdict first) with a section on the run itself: the serve command,
what the budget cut, how the questions were written and what each step cost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ragtune.winner import Winner


def write_run_report(results: dict[str, Any], run: Any, winner: Winner) -> dict[str, Path]:
    from eval import write_report

    qa = run.qa
    splits = ", ".join(
        f"{s} {c['pairs']} pairs / {c['documents']} documents" for s, c in qa["splits"].items()
    )
    lines = [
        f"Serve the winner ({winner.system}, chosen on {winner.won_on['questions']}): `{winner.serve_command}`",
        f"Questions given ({Path(qa['given']).name}/): {splits}"
        if qa.get("given")
        else f"Questions written from the documents: {qa['kept']} pairs kept from {qa['chunks']} chunks: {splits}",
    ]
    if "same_winner_on_synthetic_test" in winner.won_on:
        same = winner.won_on["same_winner_on_synthetic_test"]
        lines.append(
            f"The synthetic test split picked {winner.won_on['synthetic_test_winner']}: "
            + ("the same winner as your questions." if same else "another winner than your questions.")
        )
    lines += [f"Budget ({run.cfg.budget_minutes:g} min): {n}" for n in run.notes] or [
        f"Budget ({run.cfg.budget_minutes:g} min): nothing was cut."
    ]
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in run.steps.seconds().items())
    lines.append(f"Step times (last run of each): {steps}.")
    return write_report({**results, "run": {"lines": lines}}, Path(run.out) / "report")
