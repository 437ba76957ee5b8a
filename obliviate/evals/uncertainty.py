"""Confidence intervals by a subject-level bootstrap.

The facts of one person (one book, one city) are not independent evidence: a model that forgot a person tends
to forget all of that person's facts. Intervals therefore resample **subjects**, not facts (Efron's
percentile bootstrap over clusters): each resample draws as many subjects as the split has, with replacement,
takes every fact of each drawn subject, and recomputes the metric; the interval is the 2.5th and 97.5th
percentile over ``N_BOOT`` resamples (seeded, so the same seed gives the same interval).

Splits are resampled independently of each other (forget, holdout and the utility splits are different people),
and a model and its oracle are resampled together (they are evaluated on the same facts), so that forget
quality and PrivLeak, which compare the two, see the same facts on both sides.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

N_BOOT = 1000
LEVEL = 0.95


def auc(members, nonmembers) -> float:
    """ROC AUC of members (label 1) against non-members by score, ties counting one half: the Mann-Whitney
    statistic, equal to scikit-learn's ``roc_auc_score`` (a test checks it), fast enough to bootstrap."""
    from scipy.stats import rankdata

    m, n = np.asarray(members, dtype=float), np.asarray(nonmembers, dtype=float)
    if not m.size or not n.size:
        return float("nan")
    ranks = rankdata(np.r_[m, n])
    return float((ranks[:m.size].sum() - m.size * (m.size + 1) / 2) / (m.size * n.size))


class SubjectResampler:
    """Row indices of each split for a resample of its subjects. ``subjects[split]`` gives the subject of each
    row of that split (a row without a subject is its own subject)."""

    def __init__(self, subjects: dict[str, list], seed: int = 0):
        self.groups = {}
        for split, subs in subjects.items():
            by: dict = {}
            for i, s in enumerate(subs):
                by.setdefault(s if s is not None else ("row", i), []).append(i)
            self.groups[split] = [np.asarray(v) for _, v in sorted(by.items(), key=lambda kv: str(kv[0]))]
        self.rng = np.random.default_rng(seed)

    def draw(self) -> dict[str, np.ndarray]:
        out = {}
        for split, groups in self.groups.items():
            pick = self.rng.integers(0, len(groups), len(groups)) if groups else []
            out[split] = np.concatenate([groups[i] for i in pick]) if len(pick) else np.zeros(0, dtype=int)
        return out


def interval(values: list[float], level: float = LEVEL) -> list[float] | None:
    """The percentile interval of bootstrap values (NaNs dropped); None if none is finite."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    v = v[np.isfinite(v)]
    if not v.size:
        return None
    a = (1 - level) / 2
    return [float(np.quantile(v, a)), float(np.quantile(v, 1 - a))]


def bootstrap(statistics: dict[str, Callable[[dict[str, np.ndarray]], float]], subjects: dict[str, list],
              n: int = N_BOOT, seed: int = 0, level: float = LEVEL) -> dict[str, list[float] | None]:
    """``{name: [low, high]}`` for each ``statistics[name](indices)``, where ``indices`` maps each split to the
    row indices of one subject-level resample (the same resample for every statistic)."""
    sampler = SubjectResampler(subjects, seed)
    values: dict[str, list[float]] = {k: [] for k in statistics}
    for _ in range(n):
        idx = sampler.draw()
        for k, fn in statistics.items():
            try:
                values[k].append(fn(idx))
            except (ValueError, ZeroDivisionError, FloatingPointError):
                values[k].append(float("nan"))
    return {k: interval(v, level) for k, v in values.items()}


__all__ = ["LEVEL", "N_BOOT", "SubjectResampler", "auc", "bootstrap", "interval"]
