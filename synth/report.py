"""SynthReport: what a `synthesize` run did, written to synth_report.json and printed by the command."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class SynthReport:
    out_dir: str
    chunks: int = 0  # chunks asked about
    chunks_skipped: dict[str, int] = field(default_factory=dict)  # reason ("too_short", "no_span") -> n
    generated: int = 0  # pairs written: one per span asked (questions by any writer, checked)
    new: int = 0  # generator prompts run in this run
    generation_s: float = 0.0  # wall time of this run's generation
    read_backs: int = 0  # pairs read back (new + reused from the read-back file)
    read_backs_new: int = 0  # read back in this run
    read_back_s: float = 0.0  # wall time of this run's read-back
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> pairs dropped, all writers
    writers: dict[str, dict[str, Any]] = field(default_factory=dict)  # writer -> {"kept", "dropped"}
    replaced: dict[str, int] = field(default_factory=dict)  # writer auto: generator questions refused
    splits: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> {"pairs", "documents"}
    wall_s: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)
    generator: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def generated_per_min(self) -> float | None:
        return 60 * self.new / self.generation_s if self.new and self.generation_s > 0 else None

    @property
    def kept_per_min(self) -> float | None:
        """Kept pairs per minute of the whole run (model load included), when this run did all of its
        generation and read-back itself (a resumed run reuses work and would overstate it)."""
        reused = self.read_backs_new < self.read_backs or (self.new and self.new < self.generated)
        if reused or self.wall_s <= 0:
            return None
        return 60 * self.kept / self.wall_s

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items()}
        d["generated_per_min"], d["kept_per_min"] = self.generated_per_min, self.kept_per_min
        return d

    def summary(self) -> str:
        skipped = ", ".join(f"{k} {v}" for k, v in self.chunks_skipped.items() if v)
        head = (
            f"synth -> {self.out_dir}: {self.chunks} chunks{f' ({skipped} skipped)' if skipped else ''}, "
            f"{self.generated} pairs written ({self.new} generator prompts run now), {self.kept} kept"
        )
        lines = [head]
        dropped = ", ".join(f"{k} {v}" for k, v in self.dropped.items() if v)
        lines.append(f"  dropped: {dropped or 'none'}")
        for w, c in self.writers.items():
            drops = ", ".join(f"{k} {v}" for k, v in c["dropped"].items() if v)
            lines.append(f"  writer {w}: {c['kept']} kept, dropped: {drops or 'none'}")
        if any(self.replaced.values()):
            why = ", ".join(f"{k} {v}" for k, v in self.replaced.items() if v)
            lines.append(f"  generator questions replaced by the template's: {why}")
        if self.kept_per_min is not None:
            lines.append(
                f"  rate: {self.kept_per_min:.1f} kept/min over {self.wall_s:.0f} s ({self.new} generations in "
                f"{self.generation_s:.0f} s, {self.read_backs_new} read-backs in {self.read_back_s:.0f} s)"
            )
        for s, c in self.splits.items():
            lines.append(f"  {s + '.jsonl':<17} {c['pairs']} pairs from {c['documents']} documents")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)
