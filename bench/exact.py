"""SISA's and S3T's cost models and the utility cost of sharding, on the built-in benchmark (forget requests of one
person each, applied in sequence).

    python bench/exact.py [--model tiny] [--shards 2,4] [--slices 4] [--requests 5] [--s3t-shards 1,2] [--budget 4]

Work is counted in row-slices: one row trained for one slice's epochs (the recipe's epochs / R) is 1. Columns:
retraining with slicing (from the checkpoint before the first affected slice), measured and predicted; without
slicing (the whole affected shards, each row for all the recipe's epochs, i.e. R units: computed from the same
assignment); full retraining of the sliced ensemble; and one model retrained on all rows (R units per row). The
prediction is SISA's expectation with rows placed uniformly (Bourtoule et al. Sec. V): for a shard holding k of a
request's rows, the first affected slice f has P(first >= f) = ((R - f) / R)^k and the work from f is the
cumulative size of slices f..R-1. S3T (L = R layer groups, B orderings per shard): a request cuts orderings and
retrains nothing unless no ordering of an affected shard keeps ``min_depth`` groups; the prediction is the same
uniform-placement model, by Monte Carlo over where the request's rows fall (2,000 draws from the current depths).
Utility: each ensemble's exact match, after training and after the requests, against one model trained on all
data (the cached target) and against the oracle.

S3T fine-tunes LoRA adapters on a frozen, pretrained base; a from-scratch ``tiny`` base is random, and LoRA on it
learns nothing (loss stays at 6.6, exact match 0). ``--pretrained-base`` stands in for pretraining: every
ensemble (SISA and S3T) and a one-model comparator start from ``tiny`` trained (the full recipe) on a disjoint
population of fictitious people (the generator at seed 1; people whose names also occur at seed 0, and the
real-world facts, left out). That base is outside what exact unlearning can delete, as a real pretrained model is.
"""
from __future__ import annotations

import argparse
import copy
import os
import time
from dataclasses import asdict

from common import cell, pair, references, say, table, write_result


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


def predicted_s3t(k_by_shard: dict[int, int], depth: list[list[int]], order: list[list[list[int]]],
                  rows_per_shard: float, L: int, min_depth: int, draws: int = 2000) -> float:
    """Expected row passes of S3T retraining for a request with ``k`` rows in each affected shard: each row's
    slice uniform over L; the orderings cut at the first drawn slice; the deepest one retrained from its cut when
    no ordering keeps ``min_depth`` groups (work from step i: the i + 1 cumulative slices)."""
    import random

    rng, per_slice, total = random.Random(0), rows_per_shard / L, 0.0
    for s, k in k_by_shard.items():
        acc = 0.0
        for _ in range(draws):
            hit = {rng.randrange(L) for _ in range(k)}
            best = max(min(d, min(p.index(r) for r in hit)) for d, p in zip(depth[s], order[s]))
            if best < min_depth:
                acc += sum((i + 1) * per_slice for i in range(best, L))
        total += acc / draws
    return total


def _request(data_all, person):
    import obliviate as ob

    if person.startswith("row "):
        return ob.UnlearnData(forget=[data_all.forget[int(person.split()[1])]])
    idx = [j for j, s in enumerate(data_all.subjects["forget"]) if s == person]
    return ob.UnlearnData(forget=[data_all.forget[j] for j in idx])


def pretrained_base(model: str, bench, tok, recipe):
    """``model`` trained with ``recipe`` on the people generator's seed-1 population (no name shared with
    ``bench``, no real-world fact): the stand-in for a pretrained base."""
    from dataclasses import replace as dc_replace

    import obliviate as ob
    from obliviate.data.format import examples_from
    from obliviate.engine.training import base_model, finetune

    other = ob.load_benchmark("people", seed=1)
    taken = {w for t in bench.all_text() for w in t.split()}
    keep = {r.subject for r in other.training_qa(True)
            if r.subject and not r.id.startswith("world") and not set(r.subject.split()) & taken}
    qa = [r for r in other.training_qa(True) if r.subject in keep]
    texts = [t for t in other.training_texts(True) if t.subject in keep]
    base, _ = base_model(model, bench, 0)
    finetune(base, tok, examples_from(tok, qa, texts), dc_replace(recipe, seed=1), desc="pretrain the base")
    say(f"pretrained base: {model} on {len(keep)} other people ({len(qa)} QA rows, {len(texts)} passages)")
    return base


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--benchmark", default="people")
    ap.add_argument("--shards", default="2,4")
    ap.add_argument("--slices", type=int, default=4)
    ap.add_argument("--requests", type=int, default=5)
    ap.add_argument("--s3t-shards", default="1,2", help="S3T shard counts ('' to skip S3T)")
    ap.add_argument("--budget", type=int, default=None, help="S3T orderings per shard (default: --slices)")
    ap.add_argument("--unit", choices=("person", "row"), default="person",
                    help="a request forgets one person (all their rows) or one question-answer row")
    ap.add_argument("--skip-sisa", action="store_true")
    ap.add_argument("--pretrained-base", action="store_true", help="start every ensemble from tiny trained on other "
                                                                   "people (S3T needs a pretrained base)")
    a = ap.parse_args()
    os.environ.setdefault("OBLIVIATE_QUIET", "1")
    import obliviate as ob
    from obliviate.data.format import examples_from
    from obliviate.models import SCRATCH_MODELS
    from obliviate.methods.exact.s3t import S3TConfig, train_s3t
    from obliviate.methods.exact.sisa import SisaConfig, _key, assign, train_sisa
    from obliviate.engine.training import TrainConfig, base_model

    bench, target, oracle, tok, data_all, paths = pair(a.model, a.benchmark)
    rows = examples_from(tok, bench.training_qa(True), bench.training_texts(True))
    full = TrainConfig().resolved(a.model in SCRATCH_MODELS, len(rows))
    R = a.slices
    per_slice = TrainConfig(**{**asdict(full), "epochs": max(1, full.epochs // R)})
    o, t_res = references(target, oracle, tok, bench, paths)
    keys = ["forget_exact_match", "retain_exact_match", "world_exact_match", "model_utility"]
    say(f"{a.model} on {bench.name}: {len(rows)} training rows; one model: {full.epochs} epochs; each SISA slice: "
          f"{per_slice.epochs} epochs on the cumulative slices (R = {R})")
    utility = [("one model (the target)", t_res, None), ("oracle", o, None)]
    if a.unit == "person":
        people = sorted({r.subject for r in bench.forget})[:a.requests]
    else:  # one question-answer row per request, spread over people
        people = [f"row {j}" for j in range(0, len(data_all.forget), max(1, len(data_all.forget) // a.requests))]
        people = people[:a.requests]
    pre = pretrained_base(a.model, bench, tok, full) if a.pretrained_base else None

    def start():
        return copy.deepcopy(pre) if pre is not None else base_model(a.model, bench, 0)[0]

    if pre is not None and not a.skip_sisa:  # the comparator of the SISA table
        from obliviate.engine.training import finetune

        one = start()
        finetune(one, tok, rows, full, desc="one model from the pretrained base")
        utility.append(("one model from the pretrained base", ob.evaluate(one, tok, bench, oracle=o), None))
    for S in [] if a.skip_sisa else [int(x) for x in a.shards.split(",")]:
        base = start()
        t = time.time()
        ens = train_sisa(base, tok, rows, SisaConfig(shards=S, slices=R), asdict(per_slice))
        train_s = time.time() - t
        utility.append((f"SISA S={S}, R={R} ({train_s:.0f} s to train)", ob.evaluate(ens, tok, bench, oracle=o), S))
        lines = []
        model = ens
        for i, person in enumerate(people):
            req = _request(data_all, person)
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
            lines.append([f"{i + 1} ({person})", len(req.forget), f"{len(ex['shards_retrained'])} of {S}",
                          f"{ex['row_passes_retrained']} / {pred:.0f}", no_slicing, ex["row_passes_full_retraining"],
                          live * R, f"{time.time() - t:.1f}"])
        table(f"SISA, S = {S}: requests of one person each, in sequence (work in row-slices)",
              ["request", "rows", "shards retrained", "with slicing: measured / predicted", "without slicing",
               "full retraining of the ensemble", "one model from scratch", "seconds"], lines)
        utility.append((f"SISA S={S}, R={R} after {len(people)} requests", ob.evaluate(model, tok, bench, oracle=o), S))
    for S in [int(x) for x in a.s3t_shards.split(",") if x]:
        base = start()
        cfg = S3TConfig(shards=S, slices=R, budget=a.budget)
        t = time.time()
        ens = train_s3t(base, tok, rows, cfg, asdict(per_slice))
        train_s = time.time() - t
        B = len(ens.order[0])
        utility.append((f"S3T S={S}, L={R}, B={B} ({train_s:.0f} s to train)",
                        ob.evaluate(ens, tok, bench, oracle=o), S))
        lines = []
        model = ens
        for i, person in enumerate(people):
            req = _request(data_all, person)
            k_by_shard = {}
            for ex in req.forget:
                s = assign(_key(ex), "shard", S, cfg.seed)
                k_by_shard[s] = k_by_shard.get(s, 0) + 1
            live = sum(len(sl) for sh in model.slices for sl in sh)
            pred = predicted_s3t(k_by_shard, model.depth, model.order, live / S, R, cfg.min_depth)
            t = time.time()
            model, info = ob.unlearn(model, tok, req, "s3t", {})
            ex = info["exact"]
            depths = ", ".join("-" if v is None else str(v["depth"]) for v in ex["served"])
            lines.append([f"{i + 1} ({person})", len(req.forget), f"{len(ex['orderings_cut'])} of {S * B}", depths,
                          f"{ex['row_passes_retrained']} / {pred:.0f}", ex["row_passes_full_retraining"],
                          f"{time.time() - t:.1f}"])
        table(f"S3T, S = {S}, L = {R}, B = {B}, min_depth = {cfg.min_depth}: the same requests (work in row-steps: "
              "one row for one group's epochs)", ["request", "rows", "orderings cut", "served depths",
                                                  "retrained: measured / predicted",
                                                  "full retraining of the ensemble", "seconds"], lines)
        utility.append((f"S3T S={S}, L={R}, B={B} after {len(people)} requests",
                        ob.evaluate(model, tok, bench, oracle=o), S))
    table("utility of sharding: value [95 % interval over people]", ["model", *keys],
          [[name, *[cell(r.metrics, r.ci, k) for k in keys]] for name, r, _ in utility])
    write_result(f"exact_{a.model}" + ("_pretrained_base" if a.pretrained_base else ""), {}, vars(a))


if __name__ == "__main__":
    main()
