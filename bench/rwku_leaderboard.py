"""Real knowledge on real models: a leaderboard of unlearning methods on built-in RWKU-style targets, offline.

For each target (default: every built-in target of the model's set), each method unlearns the target's passages
from the pretrained model (its neighbours' passages are the retain set) and is scored on: the target's probes
(forget: lower is better), its neighbours' probes (keep), world facts (30 real capitals, generated answers) and an
offline lm-evaluation-harness task (the same capitals as four-way multiple choice, lm-eval's log-likelihood
``acc``). Probe and world intervals are 95 % bootstrap intervals over probes and facts; the lm-eval interval is
acc ± 1.96 × lm-eval's bootstrap standard error. Then each method's accuracies averaged over the targets (interval:
bootstrap over targets), every pair of methods compared by a paired bootstrap over targets, and the pairs that
differ named.

    python bench/rwku_leaderboard.py [--model smollm2-135m] [--targets "Albert Einstein,..."] [--methods npo,...]
    python bench/rwku_leaderboard.py --model gemma3-270m --methods npo,wga
    python bench/rwku_leaderboard.py --model gemma3-270m --check     # which built-in probes the model answers
    python bench/rwku_leaderboard.py --methods "rmu,rmu[lr=1e-3 adaptive_scale=5]" --tag rmu   # variants, own file

Every method runs ``--steps`` optimiser steps at ``--lr`` (1e-4: the methods' pretrained default of 1e-5 barely
moves a 135M model in 20 steps) with batch size 4, its other options at their defaults. Probes share no wording
with the passages (obliviate.data.rwku), so a method cannot pass by unlearning a sentence. A method written
``name[key=value ...]`` runs with those options on top (``lr`` and ``max_steps`` among them), under that label;
``--tag T`` writes ``rwku_leaderboard_MODEL_T.json`` instead of the default leaderboard's file.
"""
from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

DEFAULT_TARGETS = {"smollm2-135m": None, "gemma3-270m": None}  # None: every built-in target of the model's set
DEFAULT_METHODS = {"smollm2-135m": ["ga", "npo", "wga", "satimp", "undial", "ceu"], "gemma3-270m": ["npo", "wga"]}


def compare_methods(acc: dict, targets: list[str], methods: list[str]) -> dict:
    """Each method's forget and neighbour accuracy averaged over targets, and every pair of methods compared,
    each with a 95 % paired bootstrap interval over targets (the same resampled targets for both methods): a pair
    differs when the interval of its difference excludes 0. Prints both tables; returns their values."""
    import numpy as np

    from common import say, table
    from obliviate.evals.uncertainty import bootstrap

    idx = {"t": list(range(len(targets)))}
    sides = ("forget", "neighbour", "world", "lm_eval")
    arr = {(m, side): np.asarray([acc[(t, m)][side] for t in targets]) for m in ["(before)", *methods]
           for side in sides}
    mean_ci = {k: (float(v.mean()), bootstrap({"m": lambda i, v=v: float(v[i["t"]].mean())}, idx)["m"])
               for k, v in arr.items()}
    table(f"averaged over {len(targets)} targets: accuracy [95 % bootstrap interval over targets]",
          ["method", "forget probes", "neighbour probes", "world QA", "lm-eval capitals"],
          [[m, *[cell(*mean_ci[(m, side)]) for side in sides]] for m in ["(before)", *methods]])
    rows, pairs = [], {}
    for i, m1 in enumerate(methods):
        for m2 in methods[i + 1:]:
            row = [m1, m2]
            for side in ("forget", "neighbour"):
                d = arr[(m1, side)] - arr[(m2, side)]
                ci = bootstrap({"m": lambda i, d=d: float(d[i["t"]].mean())}, idx)["m"]
                differs = ci is not None and (ci[0] > 0 or ci[1] < 0)
                pairs[f"{m1} - {m2} {side}"] = {"value": float(d.mean()), "ci": ci, "differs": differs}
                row += [cell(float(d.mean()), ci, "+.2f"), "yes" if differs else "no"]
            rows.append(row)
    table("pairs of methods: difference in accuracy (first minus second) [95 % paired bootstrap interval over "
          "targets]; differs: the interval excludes 0", ["method", "other", "forget difference", "differs",
                                                         "neighbour difference", "differs"], rows)
    # forget: the lower accuracy is the better; neighbour: the higher
    for side, better, sign in (("forget", "forgets more than", -1),
                               ("neighbour", "keeps more neighbour probes than", 1)):
        found = [f"{m1} {better} {m2}" if sign * p["value"] > 0 else f"{m2} {better} {m1}"
                 for k, p in pairs.items() if p["differs"] and k.endswith(f" {side}")
                 for m1, m2 in [k[:-len(side) - 1].split(" - ")]]
        say(f"{side} probes: {len(found)} of {len(rows)} pairs of methods differ (paired interval over targets "
            f"excludes 0){': ' + '; '.join(found) if found else ''}")
    return {"means": {f"{m} {side}": {"value": v, "ci": ci} for (m, side), (v, ci) in mean_ci.items()},
            "pairs": pairs}


def cell(v, ci, fmt=".2f") -> str:
    if v is None:
        return "n/a"
    return f"{v:{fmt}} [{ci[0]:{fmt}}, {ci[1]:{fmt}}]" if ci else f"{v:{fmt}}"


class Utility:
    """World capitals as generated QA (accuracy with a bootstrap interval over facts) and as an lm-eval task."""

    def __init__(self, tok):
        from obliviate.data.people import WORLD_CAPITALS
        from obliviate.evals.lm_eval import check_tasks, write_multiple_choice_task

        self.facts = [(f"What is the capital of {country}?", capital) for country, capital in WORLD_CAPITALS[:30]]
        caps = [c for _, c in WORLD_CAPITALS[:30]]
        docs = []
        for i, (q, a) in enumerate(self.facts):
            rng = random.Random(i)
            choices = [a, *rng.sample([c for c in caps if c != a], 3)]
            rng.shuffle(choices)
            docs.append({"question": q, "choices": choices, "label": choices.index(a)})
        self.folder = Path(tempfile.mkdtemp(prefix="obliviate-rwku-lm-eval-"))
        write_multiple_choice_task(self.folder, "obliviate_world_capitals", docs)
        self.tm = check_tasks(["obliviate_world_capitals"], self.folder)
        self.tok = tok

    def __call__(self, model) -> dict:
        import numpy as np

        from obliviate.data.format import format_prompt
        from obliviate.evals.lm_eval import run_lm_eval
        from obliviate.evals.scoring import Scorer
        from obliviate.evals.uncertainty import bootstrap

        gens = Scorer(model, self.tok, batch_size=16).generate([format_prompt(self.tok, q) for q, _ in self.facts], 16)
        hits = np.array([float(a.lower() in g.lower()) for (_, a), g in zip(self.facts, gens)])
        ci = bootstrap({"m": lambda i: float(hits[i["x"]].mean())}, {"x": list(range(len(hits)))})["m"]
        lm = run_lm_eval(model, self.tok, ["obliviate_world_capitals"], self.folder, task_manager=self.tm,
                         bootstrap_iters=1000).metrics
        acc, se = lm["lm_eval_obliviate_world_capitals_acc"], lm.get("lm_eval_obliviate_world_capitals_acc_stderr")
        return {"world": (float(hits.mean()), ci),
                "lm_eval": (acc, [max(0.0, acc - 1.96 * se), min(1.0, acc + 1.96 * se)] if se is not None else None)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m", choices=sorted(DEFAULT_TARGETS))
    ap.add_argument("--targets", default="")
    ap.add_argument("--methods", default="")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--check", action="store_true", help="only print which built-in probes the model answers")
    ap.add_argument("--tag", default="", help="results file rwku_leaderboard_MODEL_TAG.json (default: no tag)")
    a = ap.parse_args()
    os.environ.setdefault("OBLIVIATE_QUIET", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import numpy as np

    import obliviate as ob
    from obliviate.data.rwku import PROBE_SETS
    from obliviate.evals.uncertainty import bootstrap
    from obliviate.evals.rwku import evaluate_rwku
    from obliviate.methods import UnlearnData

    from common import cached_row, method_spec

    probes = PROBE_SETS[a.model]
    t0 = time.time()
    model, tok = ob.load_model(a.model)
    print(f"loaded {a.model} in {time.time() - t0:.0f} s", flush=True)
    if a.check:
        for name in probes:
            r = evaluate_rwku(model, tok, name, probes)
            for row in r["rows"]:
                if row["split"].startswith("rwku_forget"):
                    print(f"  {name:<24} {int(row['correct'])}  {row['prompt'][-60:]!r} -> {row['generation'][:50]!r}")
        return
    targets = a.targets.split(",") if a.targets else (DEFAULT_TARGETS[a.model] or list(probes))
    methods = a.methods.split(",") if a.methods else DEFAULT_METHODS[a.model]
    for m in methods:  # a malformed variant fails here, not after an hour of other cells
        method_spec(m, "--methods")
    utility = Utility(tok)
    base_u = utility(model)
    lines = []

    acc: dict[tuple[str, str], dict[str, float]] = {}  # (target, method or "(before)") -> side -> accuracy

    def probe_cells(r, target, method):
        """Forget and neighbour accuracy over all their probes (fill and QA together), bootstrap over probes."""
        out = []
        for side in ("forget", "neighbour"):
            keys = [k for k in (f"rwku_{side}_fill", f"rwku_{side}_qa") if k in r["metrics"]]
            arr = np.asarray([x["correct"] for x in r["rows"] if x["split"] in keys], dtype=float)
            ci = bootstrap({"m": lambda i, arr=arr: float(arr[i["x"]].mean())}, {"x": list(range(len(arr)))})["m"]
            out.append(cell(float(arr.mean()), ci) + f" n={len(arr)}")
            acc.setdefault((target, method), {})[side] = float(arr.mean())
        return out

    def cached(target: str, method: str, run) -> dict:
        """One cell (a target's probes before unlearning, or after one method), cached by its inputs and the
        library's source: a run stopped midway resumes where it stopped."""
        return cached_row({"bench": "rwku_leaderboard.py", "model": a.model, "target": target, "method": method,
                           "steps": a.steps, "lr": a.lr, "probes": repr(sorted(probes.items()))}, run)

    def probes_of(m) -> dict:
        r = evaluate_rwku(m, tok, target, probes)
        return {"metrics": r["metrics"], "rows": r["rows"]}

    for target in targets:
        f, n = probe_cells(cached(target, "(before)", lambda: {"rwku": probes_of(model)})["rwku"], target, "(before)")
        acc[(target, "(before)")].update(world=base_u["world"][0], lm_eval=base_u["lm_eval"][0])
        lines.append([target, "(before)", f, n, cell(*base_u["world"]), cell(*base_u["lm_eval"]), "-"])
    from common import RECORD, table, write_result

    mark, unlearn_s = {k: len(v) for k, v in RECORD.items()}, 0.0
    for done, m in enumerate(methods, 1):  # method by method: the results file is written after each one
        for target in targets:
            def run() -> dict:  # the request is built only for a cell not in the cache
                data = UnlearnData.from_probes(target, tok, probes)
                t = time.time()
                name, extra = method_spec(m, "--methods")
                opts = {"max_steps": a.steps, "lr": a.lr, "batch_size": 4, **extra}
                new, _ = ob.unlearn(model, tok, data, name, opts)
                secs = time.time() - t
                return {"rwku": probes_of(new), "utility": utility(new), "seconds": secs}

            got = cached(target, m, run)
            unlearn_s += got["seconds"]
            f, n = probe_cells(got["rwku"], target, m)
            u = got["utility"]
            acc[(target, m)].update(world=u["world"][0], lm_eval=u["lm_eval"][0])
            lines.append([target, m, f, n, cell(*u["world"]), cell(*u["lm_eval"]), f"{got['seconds']:.0f}"])
            print(" | ".join(lines[-1]), flush=True)
        for k, n in mark.items():  # the tables are printed again, with every method measured so far
            del RECORD[k][n:]
        table(f"{a.model}: {a.steps} steps at lr {a.lr}, batch 4; 95 % intervals (probes: bootstrap over probes; world "
              f"QA: over facts; lm-eval: acc +- 1.96 x its bootstrap standard error); unlearn s: each cell's own run",
              ["target", "method", "forget probes", "neighbour probes", "world QA", "lm-eval capitals", "unlearn s"],
              sorted(lines, key=lambda r: targets.index(r[0])))
        values = compare_methods(acc, targets, methods[:done])
        # seconds: this process (a resumed run reads finished cells from the cache); unlearn_seconds: every cell's own
        write_result(f"rwku_leaderboard_{a.model}" + (f"_{a.tag}" if a.tag else ""),
                     {"seconds": round(time.time() - t0), "unlearn_seconds": round(unlearn_s), "methods_done": done,
                      "methods_planned": len(methods), **values},
                     {"model": a.model, "targets": targets, "methods": methods, "steps": a.steps, "lr": a.lr})


if __name__ == "__main__":
    main()
