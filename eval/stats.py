"""Seeded bootstrap confidence intervals and latency percentiles.

Hand-written (a dozen numpy lines): scipy.stats.bootstrap handles paired samples only through its
`paired=True` resampling of a statistic over several arrays, with BCa by default; the issue asks
for the plain paired percentile bootstrap with a fixed seed, which is clearer to state in a report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

N_RESAMPLES = 1000
ALPHA = 0.05


def _indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(n_resamples, n))


def bootstrap_mean(
    values: Sequence[float], n_resamples: int = N_RESAMPLES, seed: int = 0, scale: float = 1.0
) -> dict[str, float]:
    """Mean with a percentile bootstrap 95% CI: {"mean", "low", "high", "n"}."""
    x = np.asarray(values, dtype=float) * scale
    n = len(x)
    if n == 0:
        return {"mean": float("nan"), "low": float("nan"), "high": float("nan"), "n": 0}
    means = x[_indices(n, n_resamples, seed)].mean(axis=1)
    lo, hi = np.quantile(means, [ALPHA / 2, 1 - ALPHA / 2])
    return {"mean": float(x.mean()), "low": float(lo), "high": float(hi), "n": n}


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    scale: float = 1.0,
    statistic: Callable[[np.ndarray, np.ndarray], float] | None = None,
) -> dict[str, float]:
    """Difference a − b on the same questions with a paired percentile bootstrap 95% CI.

    Resamples question indices (the same for both systems) `n_resamples` times with a seeded
    generator. `statistic(a_sample, b_sample)` defaults to mean(a) − mean(b); pass another for
    ratio statistics such as perplexity. Returns {"diff", "low", "high", "n", "p_le_0"} where
    `p_le_0` is the share of resamples whose difference is ≤ 0 (a one-sided bootstrap p-value).
    """
    x, y = np.asarray(a, dtype=float) * scale, np.asarray(b, dtype=float) * scale
    if x.shape != y.shape:
        raise ValueError(
            f"paired samples differ in length ({len(x)} vs {len(y)}); score both systems on the same questions"
        )
    n = len(x)
    if n == 0:
        return {
            "diff": float("nan"),
            "low": float("nan"),
            "high": float("nan"),
            "n": 0,
            "p_le_0": float("nan"),
        }
    idx = _indices(n, n_resamples, seed)
    if statistic is None:
        d = x - y
        point = float(d.mean())
        boots = d[idx].mean(axis=1)
    else:
        point = float(statistic(x, y))
        boots = np.array([statistic(x[i], y[i]) for i in idx])
    lo, hi = np.quantile(boots, [ALPHA / 2, 1 - ALPHA / 2])
    return {"diff": point, "low": float(lo), "high": float(hi), "n": n, "p_le_0": float((boots <= 0).mean())}


def percentiles(values: Sequence[float], qs: Sequence[float] = (50, 95)) -> dict[str, float]:
    """{"p50": ..., "p95": ...} of a list (numpy's linear interpolation); NaN when empty."""
    if len(values) == 0:
        return {f"p{int(q)}": float("nan") for q in qs}
    arr = np.percentile(np.asarray(values, dtype=float), list(qs))
    return {f"p{int(q)}": float(v) for q, v in zip(qs, arr)}
