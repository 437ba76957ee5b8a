"""SISA's cost model and the utility cost of sharding, on the built-in benchmark (forget requests of one person
each, applied in sequence).

    python bench/exact.py [--model tiny] [--shards 2,4] [--slices 4] [--requests 5]

Work is counted in row-slices: one row trained for one slice's epochs (the recipe's epochs / R) is 1. Columns:
retraining with slicing (from the checkpoint before the first affected slice), measured and predicted; without
slicing (the whole affected shards, each row for all the recipe's epochs, i.e. R units: computed from the same
assignment); full retraining of the sliced ensemble; and one model retrained on all rows (R units per row). The
prediction is SISA's expectation with rows placed uniformly (Bourtoule et al. Sec. V): for a shard holding k of a
request's rows, the first affected slice f has P(first >= f) = ((R - f) / R)^k and the work from f is the
cumulative size of slices f..R-1. Utility: the ensemble's exact match against one model trained on all data
(the cached target) and against the oracle.
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import asdict

from common import cell, pair


def predicted(k_by_shard: dict[int, int], rows_per_shard: float, R: int) -> float:
    """Expected row passes of retraining for a request with ``k`` rows in each affected shard."""
    per_slice = rows_per_shard / R
    cost_from = [sum((r + 1) * per_slice for r in range(f, R)) for f in range(R)]
    total = 0.0
    for k in k_by_shard.values():
        for f in range(R):
            p = ((R - f) / R) ** k - ((R - f - 1) / R) ** k  # P(first affected slice == f)
            total += p * cost_from[f]
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--benchmark", default="people")
    ap.add_argument("--shards", default="2,4")
    ap.add_argument("--slices", type=int, default=4)
    ap.add_argument("--requests", type=int, default=5)
    a = ap.parse_args()
    os.environ.setdefault("OBLIVIATE_QUIET", "1")
    import obliviate as ob
    from obliviate.data.format import examples_from
    from obliviate.models import SCRATCH_MODELS
    from obliviate.sisa import SisaConfig, _key, assign, train_sisa
    from obliviate.train import TrainConfig, base_model

    bench, target, oracle, tok, data_all = pair(a.model, a.benchmark)
    rows = examples_from(tok, bench.training_qa(True), bench.training_texts(True))
    full = TrainConfig().resolved(a.model in SCRATCH_MODELS, len(rows))
    R = a.slices
    per_slice = TrainConfig(**{**asdict(full), "epochs": max(1, full.epochs // R)})
    o = ob.evaluate(oracle, tok, bench, is_oracle=True)
    t_res = ob.evaluate(target, tok, bench, oracle=o)
    keys = ["forget_exact_match", "retain_exact_match", "world_exact_match", "model_utility"]
    print(f"{a.model} on {bench.name}: {len(rows)} training rows; one model: {full.epochs} epochs; each SISA slice: "
          f"{per_slice.epochs} epochs on the cumulative slices (R = {R})")
    utility = [("one model (the target)", t_res, None), ("oracle", o, None)]
    people = sorted({r.subject for r in bench.forget})[:a.requests]
    for S in [int(x) for x in a.shards.split(",")]:
        base, _ = base_model(a.model, bench, 0)
        t = time.time()
        ens = train_sisa(base, tok, rows, SisaConfig(shards=S, slices=R), asdict(per_slice))
        train_s = time.time() - t
        utility.append((f"SISA S={S}, R={R} ({train_s:.0f} s to train)", ob.evaluate(ens, tok, bench, oracle=o), S))
        print(f"\nS = {S}: requests of one person each, in sequence (work in row-slices)")
        print("request | rows | shards retrained | with slicing: measured / predicted | without slicing | "
              "full retraining of the ensemble | one model from scratch | seconds")
        model = ens
        for i, person in enumerate(people):
            idx = [j for j, s in enumerate(data_all.subjects["forget"]) if s == person]
            req = ob.UnlearnData(forget=[data_all.forget[j] for j in idx])
            k_by_shard: dict[int, int] = {}
            for ex in req.forget:
                s = assign(_key(ex), "shard", S, 0)
                k_by_shard[s] = k_by_shard.get(s, 0) + 1
            live = sum(len(sl) for sh in model.slices for sl in sh)
            pred = predicted(k_by_shard, live / S, R)
            no_slicing = sum(sum(len(sl) for sl in model.slices[s]) * R for s in k_by_shard)
            t = time.time()
            model, info = ob.unlearn(model, tok, req, "sisa", {})
            ex = info["exact"]
            print(f"{i + 1} ({person}) | {len(req.forget)} | {len(ex['shards_retrained'])} of {S} | "
                  f"{ex['row_passes_retrained']} / {pred:.0f} | {no_slicing} | {ex['row_passes_full_retraining']} | "
                  f"{live * R} | {time.time() - t:.1f}")
    print("\nutility of sharding: value [95 % interval over people]")
    print(" | ".join(["model", *keys]))
    for name, r, _ in utility:
        print(" | ".join([name, *[cell(r.metrics, r.ci, k) for k in keys]]))


if __name__ == "__main__":
    main()
