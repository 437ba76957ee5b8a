"""Scoring RWKU-style probes (Jin et al., 2024, arXiv:2406.10890, Sec. 3): forget-side fill-in-the-blank and
QA accuracy on a real target, and the same on its neighbours (related targets whose knowledge must survive).

A probe counts as answered when the answer appears (case-insensitively) in the greedy continuation;
RWKU scores with ROUGE-L recall against the answer, which for these one- or two-word answers is the same
test. Fill-in-the-blank prompts are continued as raw text; questions get the chat template.

    from obliviate.evals.rwku import evaluate_rwku
    before = evaluate_rwku(model, tok, "Albert Einstein")
    data = UnlearnData.from_probes("Albert Einstein", tok)  # obliviate.methods: its passages; neighbours' as retain
"""
from __future__ import annotations

import numpy as np

from obliviate.data.format import format_prompt
from obliviate.data.rwku import Target, get_target, load_probes
from obliviate.evals.scoring import Scorer
from obliviate.evals.uncertainty import bootstrap as boot


def _answered(generation: str, answer: str) -> float:
    return float(answer.lower() in generation.lower())


def evaluate_rwku(model, tokenizer, target: str, probes: dict[str, Target] | None = None,
                  max_new_tokens: int = 16, scorer: Scorer | None = None, bootstrap: int = 1000, seed: int = 0) -> dict:
    """``{"metrics": {...}, "ci": {...}, "rows": [...]}``: ``rwku_forget_{fill,qa}`` and ``rwku_neighbour_{fill,qa}``
    accuracies (no metric where a side has no probes of that kind), each with a 95 % interval from a bootstrap
    over its probes (each probe its own unit: a handful of probes gives a wide interval, and says so)."""
    probes = probes or load_probes()
    t = get_target(target, probes)
    scorer = scorer or Scorer(model, tokenizer, batch_size=16)
    sides = {"forget": [t], "neighbour": [get_target(n, probes) for n in t.neighbours]}
    metrics, rows, ci = {}, [], {}
    for side, targets in sides.items():
        for kind in ("fill", "qa"):
            items = [(x.name, p, a) for x in targets for p, a in getattr(x, kind)]
            if not items:
                continue
            prompts = [p if kind == "fill" else format_prompt(tokenizer, p) for _, p, _ in items]
            gens = scorer.generate(prompts, max_new_tokens)
            hits = [_answered(g, a) for (_, _, a), g in zip(items, gens)]
            metrics[f"rwku_{side}_{kind}"] = float(np.mean(hits))
            if bootstrap:
                arr = np.asarray(hits)
                ci[f"rwku_{side}_{kind}"] = boot({"m": lambda i, arr=arr: float(arr[i["x"]].mean())},
                                                 {"x": list(range(len(arr)))}, n=bootstrap, seed=seed)["m"]
            rows += [{"split": f"rwku_{side}_{kind}", "target": n, "prompt": p, "answer": a, "generation": g,
                      "correct": h} for (n, p, a), g, h in zip(items, gens, hits)]
    return {"metrics": metrics, "ci": ci, "rows": rows}
