"""Did the unlearning break the model? The input model against the unlearned one on what both should keep.

An unlearning run can "succeed" by destroying the model: a default NPO run on a 32-row data set took retain exact
match from 1.00 to 0.00 and exited 0. After every unlearning, :func:`damage` asks both models the retain questions
(and the world and neighbour questions, where the benchmark has them; at most ``limit`` facts each, a seeded
sample) and compares the share each states (exact match, as :func:`obliviate.evals.evaluate` scores it). A drop
is a **warning** only when its whole 95 % interval (bootstrap over subjects, paired: the same facts for both
models) lies above ``threshold`` (0.10): the CLI prints it, the ledger request and its certificate carry it, and
the report opens with it.
"""
from __future__ import annotations

import random

import numpy as np

from obliviate.data import format_prompt
from obliviate.evals.memorization import rouge_l_recall
from obliviate.evals.scoring import Scorer
from obliviate.evals.suite import MATCH_THRESHOLD, stated
from obliviate.evals.uncertainty import bootstrap

THRESHOLD = 0.10
SPLITS = ("retain", "world", "neighbours")


def _stated(model, tokenizer, recs) -> np.ndarray:
    """1/0 per fact: the greedy answer states it (short answers: 32 tokens; free text: 200, as the suite)."""
    tokens = 32 if all(r.value for r in recs) else 200
    gens = Scorer(model, tokenizer).generate([format_prompt(tokenizer, r.question) for r in recs], tokens)
    rouge = rouge_l_recall(gens, [r.answer for r in recs])
    return np.array([stated(g, r, rl, MATCH_THRESHOLD) for g, r, rl in zip(gens, recs, rouge)], dtype=float)


def damage(before, after, tokenizer, bench, limit: int = 200, seed: int = 0, threshold: float = THRESHOLD,
           n_boot: int = 1000) -> dict:
    """``{"splits": {split: {"before", "after", "drop", "interval", "facts"}}, "warnings": [...], "threshold"}``
    for the retain, world and neighbour splits the benchmark has."""
    facts = {}
    for split in SPLITS:
        recs = list(getattr(bench, split, []) or [])
        if len(recs) > limit:
            recs = random.Random(seed).sample(recs, limit)
        if recs:
            subjects = [r.subject or r.id for r in recs]
            facts[split] = (subjects, _stated(before, tokenizer, recs), _stated(after, tokenizer, recs))
    return _compare(facts, threshold, n_boot, seed) | {"limit": limit}


def damage_from_evaluations(before, after, threshold: float = THRESHOLD, n_boot: int = 1000, seed: int = 0) -> dict:
    """The same comparison from two :class:`~obliviate.evals.EvalResult` of one benchmark (the demo has them
    already): their per-fact exact match on retain, world and neighbours, no generation repeated."""
    facts = {}
    for split in SPLITS:
        b = [r for r in before.rows if r["split"] == split]
        a = {r["id"]: r["exact_match"] for r in after.rows if r["split"] == split}
        b = [r for r in b if r["id"] in a]
        if b:
            facts[split] = ([r["subject"] for r in b], np.array([r["exact_match"] for r in b], dtype=float),
                            np.array([a[r["id"]] for r in b], dtype=float))
    return _compare(facts, threshold, n_boot, seed)


def _compare(facts: dict, threshold: float, n_boot: int, seed: int) -> dict:
    """``facts[split] = (subjects, before 1/0, after 1/0)``, paired by position."""
    out = {"threshold": threshold, "splits": {}, "warnings": []}
    for split, (subjects, b, a) in facts.items():
        ci = bootstrap({"drop": lambda i: float(b[i["x"]].mean() - a[i["x"]].mean())}, {"x": subjects},
                       n=n_boot, seed=seed)["drop"]
        row = {"before": float(b.mean()), "after": float(a.mean()), "drop": float(b.mean() - a.mean()),
               "interval": ci, "facts": len(b)}
        out["splits"][split] = row
        if ci is not None and ci[0] > threshold:
            out["warnings"].append(
                f"{split} exact match fell from {row['before']:.2f} to {row['after']:.2f} (drop {row['drop']:.2f} "
                f"[{ci[0]:.2f}, {ci[1]:.2f}] on {len(b)} facts): the unlearning damaged what the model should keep")
    return out


__all__ = ["THRESHOLD", "damage", "damage_from_evaluations"]
