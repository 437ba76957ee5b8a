"""``obliviate tune``: search a method's hyperparameters with Optuna (resumable); writes the Pareto front."""
from __future__ import annotations

import os
import sys
import time

from obliviate.cli.args import add_data_args
from obliviate.cli.common import count
from obliviate.methods import DEFAULT_METHOD


def register(sub, p) -> None:
    tu = sub.add_parser("tune", parents=[p["common"], p["seeded"], p["written"]],
                        help="search a method's hyperparameters with Optuna (resumable); writes the Pareto front")
    tu.add_argument("--method", default=DEFAULT_METHOD, help="`obliviate ls methods`")
    tu.add_argument("--model", required=True, help="the target (a folder), or a built-in model name whose target and "
                                                   "oracle obliviate trains (cached)")
    tu.add_argument("--oracle", help="the oracle (needed by --objective forget_quality unless --model is built in)")
    tu.add_argument("--trials", type=count, default=20, help="completed trials the study should hold (default 20)")
    tu.add_argument("--objective", default="forget_quality", help="forget_quality (with the oracle) or holdout_gap "
                                                                  "(no oracle)")
    tu.add_argument("--utility-ratio", type=float, default=0.95,
                    help="feasible trials keep at least this share of the target's utility (default 0.95)")
    tu.add_argument("--retain-eval-size", type=int, default=0, metavar="N",
                    help="score each trial's utility on a seeded sample of N retain facts, the same for every trial "
                         "and the target (faster; 0, the default: every retain fact)")
    tu.add_argument("--study", help="the SQLite file of the study (default: in the cache, named by the run's inputs; "
                                    "run the same command again to resume)")
    tu.add_argument("--set", action="append", metavar="KEY=VALUE", help="fix a method option (left out of the search)")
    tu.add_argument("--out", required=True)
    add_data_args(tu)
    tu.set_defaults(fn=run)


def _progress(method: str):
    def progress(done, total, scores):
        if os.environ.get("OBLIVIATE_QUIET") != "1":
            extra = (f"forget quality {scores['forget_quality']:.3g}" if "forget_quality" in scores
                     else f"holdout gap {scores['holdout_gap']:.3f}")
            print(f"tune {method}: trial {done}/{total}: {extra}, ratio {scores['ratio']:.3f}, "
                  f"{scores['seconds']:.1f} s", file=sys.stderr, flush=True)
    return progress


def run(args) -> int:
    from obliviate.cli.common import benchmark, check_models, inputs, parse_sets, seed, wrote
    from obliviate.core.options import from_dict
    from obliviate.methods import get_method
    from obliviate.runs.tune import TuneConfig, builtin_pair, check_objective, search_space, tune_method

    get_method(args.method)
    cfg = from_dict(TuneConfig, {"trials": args.trials, "objective": args.objective,
                                 "utility_ratio": args.utility_ratio, "seed": seed(args),
                                 "retain_eval_size": args.retain_eval_size}, "tune")
    fixed = parse_sets(args.set)
    search_space(args.method, fixed)  # nothing to search is an error before any loading
    check_models(("model", args.model), ("oracle", args.oracle))
    check_objective(cfg, args.model, args.oracle)
    builtin = builtin_pair(args.model, args.oracle)
    bench = benchmark(args, [] if builtin else [("model", args.model), ("oracle", args.oracle)])
    t = time.time()
    res = tune_method(args.method, args.model, args.out, bench, oracle=args.oracle, cfg=cfg, fixed=fixed,
                      study=args.study, cache=args.cache, overwrite=args.overwrite, inputs=inputs(args),
                      progress=_progress(args.method))
    summary = res.to_json()["tune"]
    best = summary["best"]
    print(f"best (trial {best['number']}{'' if best['feasible'] else ', no trial met the constraint'}): "
          + " ".join(best["set"]))
    print(f"Pareto front: trials {', '.join(map(str, summary['pareto_front']))}")
    wrote(args.out, time.time() - t)
    return 0
