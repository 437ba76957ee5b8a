"""Every registered method on the built-in benchmark (forget 10 %), one table: forget / retain exact match,
forget quality, model utility, wall time and wall time as a fraction of `retrain`'s.

    python bench/methods.py [--benchmark people] [--model tiny] [--moe-model tiny-moe] [--only npo,rmu]
                            [--tune 20] [--tune-methods npo,wga] [--tune-retain 100] [--tune-set bf16=true]
                            [--no-calibrate] [--tag T]

Each method runs with its defaults (the paper's, with lr 1e-3 on from-scratch models); rows marked
"tuned" use the overrides in TUNED, found by hand on `tiny` and stated beside the row. On a pretrained pair whose
recipe fine-tunes at another rate than TOFU's 1e-5, the methods of AT_RECIPE_LR get a second row at that rate: TOFU
unlearns at the rate it fine-tuned with, and the pretrained default (1e-5) is that rate only for TOFU's recipe.
`uoe` needs a Mixture-of-Experts model: it gets a second table on `tiny-moe` (its own target, oracle and retrain),
beside NPO on all of the MoE's weights, the comparison the UOE paper makes.

Rows marked "calibrated" add ``stop=holdout`` (stop when forget facts look like never-trained calibration facts,
no oracle involved). With ``--tune N``, each method of ``--tune-methods`` is tuned by ``obliviate tune`` (Optuna
TPE, N trials, objective forget quality subject to utility >= 0.95 x the target's; the study is cached, so a rerun
resumes it) and its best configuration gets a row; the tune's own wall time and the Pareto front are printed, and
are not counted in the row's time (which is the tuned configuration's unlearning run). ``--only none --tag tuned``
gives the tuned rows alone, in ``methods_MODEL_tuned.json``.
"""
from __future__ import annotations

import argparse
import os
import time

from common import say, table

# stop=holdout on these (every gradient method whose unlearned model is its trained model; not task_vector)
CALIBRATED = ["ga", "graddiff", "npo", "simnpo", "idkdpo", "altpo", "undial", "wga", "satimp", "ceu", "pdu"]
# TOFU fine-tunes and unlearns at one learning rate (1e-5); a pretrained pair fine-tuned at another rate gets these
# methods again at that rate, beside their defaults
AT_RECIPE_LR = ["npo", "simnpo", "graddiff", "pdu", "undial", "rmu"]
TUNE_METHODS = ["npo", "graddiff", "simnpo", "wga", "satimp", "undial", "altpo", "ceu", "pdu"]

TUNED = [
    ("npo", {"retain_weight": 5.0, "epochs": 10}),  # the demo's setting
    # alpha = 1200 pins a 1M-parameter model's activations; re-tuned on people v2 with answer-token masks
    ("rmu", {"alpha": 10.0, "lr": 1e-2, "steering_coeff": 20.0, "epochs": 10}),
    ("whp", {"alpha": 20.0}),  # alpha = 5 leaves 68 % of the forget facts
    # within the 2 %-of-retraining budget (2 epochs = 18 steps on tiny), the highest forget quality found ...
    ("graddiff", {"epochs": 2, "lr": 5e-3, "retain_weight": 5.0}),
    # ... and the best utility among runs that forget most facts
    ("graddiff", {"epochs": 2, "lr": 3e-3, "retain_weight": 5.0, "retain_loss": "kl"}),
    ("localized", {"loss": "graddiff", "locate": "patching", "n_components": 2, "epochs": 2, "lr": 1e-2,
                   "loss_options": {"retain_weight": 3.0}}),
    ("uoe", {"lr": 1e-2}),  # one expert of a 1M-parameter MoE needs a larger step to forget
    ("uoe", {"lr": 1e-2, "anchor_weight": 0.0}),  # the same without the router anchor
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--benchmark", default="people")
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--moe-model", default="tiny-moe")
    ap.add_argument("--only", default="")
    ap.add_argument("--tune", type=int, default=0, help="trials per tuned method (0: no tuning)")
    ap.add_argument("--tune-methods", default=",".join(TUNE_METHODS))
    ap.add_argument("--tune-retain", type=int, default=0, metavar="N",
                    help="trials score utility on a seeded sample of N retain facts (obliviate tune "
                         "--retain-eval-size); the tuned row is evaluated in full")
    ap.add_argument("--tune-set", action="append", default=[], metavar="KEY=VALUE",
                    help="an option fixed for every tuned method, left out of the search (e.g. bf16=true)")
    ap.add_argument("--no-calibrate", action="store_true")
    ap.add_argument("--tag", help="write methods_MODEL_TAG.json (e.g. the tuned rows alone: --only none --tune 20)")
    a = ap.parse_args()
    os.environ.setdefault("OBLIVIATE_QUIET", "1")
    from obliviate.methods import METHODS

    # codeunlearn needs a bottlenecked target and oracle: bench/codeunlearn.py; sisa a sharded ensemble (its own
    # tests); the editing methods and the guards have their own benches (bench/editing.py, bench/guards.py)
    from obliviate.models import SCRATCH_MODELS

    scratch = a.model in SCRATCH_MODELS
    # a pretrained model's "time / retrain" is against the oracle's own training (the same recipe on the retain
    # data), read from its manifest, instead of training it a second time as the `retrain` row
    dense = [(m, {}, "defaults") for m in METHODS
             if not METHODS[m].moe_only and METHODS[m].trains and (scratch or m != "retrain")]
    if scratch:  # TUNED was found by hand on tiny
        dense += [(m, c, f"tuned {c}") for m, c in TUNED if not METHODS[m].moe_only]
    else:
        from obliviate import TrainConfig

        lr = TrainConfig().resolved(from_scratch=False, model=a.model).lr
        if lr != 1e-5:
            dense += [(m, {"lr": lr}, f"lr {lr:g}, the pair's fine-tuning rate") for m in AT_RECIPE_LR]
    if not a.no_calibrate:
        dense += [(m, {"stop": "holdout"}, "calibrated (stop=holdout)") for m in CALIBRATED]
        dense += [("npo", {"retain_weight": 5.0, "epochs": 10, "stop": "holdout"},
                   "calibrated (stop=holdout), the demo's setting")]
    moe = [(m, {}, "defaults") for m in METHODS if METHODS[m].moe_only]
    moe += [(m, c, f"tuned {c}") for m, c in TUNED if METHODS[m].moe_only]
    moe += [("npo", {}, "defaults, all weights"), ("retrain", {}, "defaults")]
    if a.only:  # in the order given (a long run records its rows as they finish)
        order = [m for m in a.only.split(",") if m] + (["retrain"] if scratch else [])
        dense = sorted((r for r in dense if r[0] in order), key=lambda r: order.index(r[0]))
        moe = [r for r in moe if r[0] in order] if any(METHODS[m].moe_only for m in order) else []
    tune = [m for m in a.tune_methods.split(",") if m] if a.tune else []
    from obliviate.cli.common import parse_sets

    fixed = parse_sets(a.tune_set, flag="--tune-set")
    t0 = time.time()
    from common import write_result

    config = {"benchmark": a.benchmark, "model": a.model, "moe_model": a.moe_model if moe and scratch else None,
              "only": a.only or None, "tune_trials": a.tune, "tune_methods": tune, "calibrate": not a.no_calibrate,
              **({"tune_retain_eval_size": a.tune_retain} if a.tune_retain else {}),
              **({"tune_fixed": fixed} if fixed else {})}

    def write(done: int, planned: int) -> None:  # after every row: a run stopped midway keeps what it measured
        write_result(f"methods_{a.model}" + (f"_{a.tag}" if a.tag else ""),
                     {"seconds": round(time.time() - t0), "rows_done": done, "rows_planned": planned}, config)

    method_table(a.benchmark, a.model, dense, tune, a.tune, write, a.tune_retain, fixed)
    if moe and scratch:
        method_table(a.benchmark, a.moe_model, moe, write=write)


def tune_rows(method: str, trials: int, target, tok, bench, ref, base, paths, retain: int = 0,
              fixed: dict | None = None) -> tuple[dict, str]:
    """Tune ``method`` (forget quality subject to utility >= 0.95 x target's; with ``retain``, utility on a sample
    of that many retain facts; ``fixed``: options left out of the search); print its Pareto front."""
    from obliviate.runs.tune import TuneConfig, Tuner

    t = time.time()
    tuner = Tuner(method, target, tok, bench, TuneConfig(trials=trials, retain_eval_size=retain), fixed,
                  oracle_result=ref,
                  reference=None if retain else {"utility": base.metrics["model_utility"]},
                  key={"bench": "methods.py", "target": str(paths["target"]), "benchmark": bench.fingerprint()})
    s = tuner.run()
    secs = time.time() - t
    front = sorted((r for r in s["trials"] if r["number"] in s["pareto_front"]), key=lambda r: r["ratio"])
    pts = ", ".join(f"({r['forget_quality']:.2g}, {r['ratio']:.2f})" for r in front)
    say(f"tune {method}: {len(s['trials'])} trials in {secs:.0f} s; Pareto front (forget quality, utility / "
        f"target's): {pts}; best feasible: {'yes' if s['best']['feasible'] else 'none'}")
    shown = {k: float(f"{v:.3g}") if isinstance(v, float) else v for k, v in s["best"]["config"].items()}
    return s["best"]["config"], f"tuned ({len(s['trials'])} trials) {shown}"


def method_table(benchmark: str, model: str, runs: list[tuple[str, dict, str]], tune: list[str] = (),
                 trials: int = 0, write=None, tune_retain: int = 0, tune_fixed: dict | None = None) -> None:
    """Unlearn the pair's target with each of ``runs`` (rows cached by :func:`common.cached_row`, so a stopped
    run resumes), print the table and the goal lines after every row and ``write(done, planned)`` them."""
    import json
    from types import SimpleNamespace

    import torch
    from common import RECORD, cached_row, pair, references

    import obliviate as ob
    from obliviate.evals.cache import evaluate_cached
    from obliviate.models import SCRATCH_MODELS

    print(f"\n== {model} on {benchmark} ==", flush=True)
    bench, target, oracle, tok, data, paths = pair(model, benchmark)
    ref, base = references(target, oracle, tok, bench, paths)
    second = None
    if model not in SCRATCH_MODELS:  # the second oracle: how far two retrainings differ
        from dataclasses import replace

        recipe = ob.TrainConfig(**json.loads((paths["oracle"] / "obliviate.json").read_text())["recipe"])
        folder = ob.train_pair(model, bench, replace(recipe, seed=1), roles=("oracle",))["oracle"]
        o2, _ = ob.load_model(folder)
        second, _ = evaluate_cached(o2, tok, bench, ob.EvalConfig(), folder, oracle=ref, desc="evaluate oracle seed 1")
        del o2
    for m in tune:
        cfg, label = tune_rows(m, trials, target, tok, bench, ref, base, paths, tune_retain, tune_fixed)
        runs = [*runs, (m, {k: (round(v, 6) if isinstance(v, float) else v) for k, v in cfg.items()}, label)]
    mark = {k: len(v) for k, v in RECORD.items()}

    def one(name: str, cfg: dict) -> dict:
        t = time.time()
        new, _ = ob.unlearn(target, tok, data, name, cfg)
        secs = time.time() - t
        r = ob.evaluate(new, tok, bench, oracle=ref)
        # the threads the row ran with: a wall time compares with the oracle's only at the same count
        return {"metrics": r.metrics, "ci": r.ci, "seconds": secs, "threads": torch.get_num_threads()}

    rows = []
    for name, cfg, label in runs:
        got = cached_row({"bench": "methods.py", "target": str(paths["target"]), "oracle": str(paths["oracle"]),
                          "benchmark": bench.fingerprint(), "method": name, "config": cfg}, lambda: one(name, cfg))
        rows.append((name, label, SimpleNamespace(metrics=got["metrics"], ci=got["ci"]), got["seconds"]))
        print(f"  {name:<12} {label:<40} done in {got['seconds']:.0f} s", flush=True)
        for k, n in mark.items():  # this table's lines are printed again with every row
            del RECORD[k][n:]
        summarise(benchmark, model, rows, base, ref, second, paths)
        if write is not None:
            write(len(rows), len(runs))


def summarise(benchmark: str, model: str, rows: list, base, ref, second, paths) -> None:
    """The method table and its goal lines, for the rows measured so far."""
    import json

    if any(n == "retrain" for n, _, _, _ in rows):
        retrain_s, retrain_name = next(s for n, _, _, s in rows if n == "retrain"), "retrain"
    else:  # the oracle's own training time, from its manifest
        retrain_s = json.loads((paths["oracle"] / "obliviate.json").read_text())["train_seconds"]
        retrain_name = "the oracle's training"
        say(f"{model}: the oracle trained in {retrain_s:.0f} s; times below are fractions of that")

    def cell(r, key, fmt):
        v, ci = r.metrics.get(key), r.ci.get(key)
        if v is None:
            return "n/a"
        return format(v, fmt) + (f" [{format(ci[0], fmt)}, {format(ci[1], fmt)}]" if ci else "")

    def row(name, label, r, secs):
        return [name, label, cell(r, "forget_exact_match", ".2f"), cell(r, "retain_exact_match", ".2f"),
                cell(r, "forget_quality", ".2g"), cell(r, "model_utility", ".3f"), cell(r, "privleak", ".0f"),
                "-" if secs is None else f"{secs:.1f}", "-" if secs is None else f"{secs / retrain_s:.1%}"]

    table(f"{model} on {benchmark}: value [95 % interval over people]",
          ["method", "config", "forget EM", "retain EM", "forget quality", "utility", "PrivLeak", "wall s",
           "time / retrain" if retrain_name == "retrain" else "time / oracle's training"],
          [row("target", "before unlearning", base, None),
           row("oracle", "trained without the forget set (PrivLeak: against the ideal AUC 0.5)", ref, None),
           *([row("oracle seed 1", "trained again with seed 1: the noise floor", second, None)] if second else []),
           *[row(*r) for r in rows]])
    target_u = base.metrics["model_utility"]
    if second is None:
        goal = [n for n, _, r, s in rows if n != "retrain" and (r.metrics["forget_quality"] or 0) >= 0.5
                and r.metrics["model_utility"] >= 0.95 * target_u and s <= 0.05 * retrain_s]
        say(f"{model}: forget quality >= 0.5, utility >= 0.95 x target's, <= 5 % of retrain's time: "
            f"{', '.join(goal) or 'none'}")
    else:  # the precision goal on a pretrained model: reach the noise floor of retraining
        floor, floor_ci = second.metrics["forget_quality"], second.ci.get("forget_quality") or [None, None]
        low, high = (floor if v is None else v for v in floor_ci)
        goal = [f"{n} ({label})" for n, label, r, s in rows if (r.metrics["forget_quality"] or 0) >= low
                and r.metrics["model_utility"] >= 0.95 * ref.metrics["model_utility"] and s <= 0.10 * retrain_s]
        say(f"{model}: noise floor: a second oracle (seed 1) reads forget quality {floor:.3g} [{low:.2g}, {high:.2g}] "
            "against the first. Reaching at least its interval's low end at utility >= 0.95 x the oracle's within "
            f"10 % of the oracle's training time: {', '.join(goal) or 'none'} (the relearn and quantize verdicts "
            "of the goal are measured by bench/attacks.py)")
    for n, label, r, _ in rows:
        if n == "npo" and label.startswith("calibrated"):
            ci = r.ci.get("privleak")
            say(f"{model}: NPO {label}: PrivLeak {r.metrics['privleak']:.0f} {ci}: interval contains 0: "
                f"{ci is not None and ci[0] <= 0 <= ci[1]}")


if __name__ == "__main__":
    main()
