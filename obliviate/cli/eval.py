"""``obliviate eval``: evaluate a model (optionally against an oracle), with MUSE, RWKU and lm-eval beside it."""
from __future__ import annotations

import time

from obliviate.cli.args import add_data_args, add_request_arg, add_rwku_args
from obliviate.cli.common import count


def register(sub, p) -> None:
    e = sub.add_parser("eval", parents=[p["common"], p["seeded"], p["written"]],
                       help="evaluate a model (optionally against an oracle)")
    e.add_argument("--model", required=True)
    e.add_argument("--oracle", help="the model trained without the forget set")
    e.add_argument("--out", required=True)
    e.add_argument("--metrics", help="comma-separated subset of `obliviate ls metrics`")
    e.add_argument("--gradnorm", action="store_true", help="also the gradient-norm MIA (a backward pass per fact)")
    e.add_argument("--no-input", action="store_true", help="do not evaluate the model it was unlearned from (by "
                                                           "default evaluated beside it when its folder is here)")
    add_rwku_args(e)
    e.add_argument("--muse", help="also MUSE's C1-C4: a folder in MUSE's public layout, or 'benchmark' for the "
                                  "benchmark's own passages and questions")
    e.add_argument("--muse-limit", type=count, metavar="N", help="at most N rows of each MUSE file (a quick look; "
                                                                 "the full News set takes hours on a CPU)")
    e.add_argument("--lm-eval", metavar="TASKS", help="also these comma-separated lm-evaluation-harness tasks "
                                                      "(needs `pip install 'obliviate[lm-eval]'` and the tasks' data)")
    e.add_argument("--lm-eval-include", metavar="DIR", help="a folder of extra lm-eval task YAMLs (local tasks)")
    e.add_argument("--lm-eval-limit", type=count, metavar="N", help="at most N documents per lm-eval task")
    e.add_argument("--lm-eval-fewshot", type=count, metavar="K", help="lm-eval few-shot examples (default: the task's)")
    add_data_args(e)
    add_request_arg(e)
    e.set_defaults(fn=run)


def run(args) -> int:
    from obliviate.cli.common import benchmark, check_models, inputs, probes, seed, wrote
    from obliviate.core.options import from_dict
    from obliviate.evals import EvalConfig, check_metrics
    from obliviate.report.console import summary
    from obliviate.runs.evaluate import evaluate_model, extra_evaluations

    wanted = check_metrics(args.metrics.split(",")) if args.metrics else None
    cfg = from_dict(EvalConfig, {"seed": seed(args), "gradnorm": args.gradnorm}, "eval")
    check_models(("model", args.model), ("oracle", args.oracle))
    standalone = bool((args.muse and args.muse != "benchmark") or args.rwku or args.lm_eval)
    bench = benchmark(args, [("model", args.model), ("oracle", args.oracle)], optional=standalone)
    # bad MUSE files, probe targets or task names fail before any model work
    extras = extra_evaluations(bench, muse=args.muse, muse_limit=args.muse_limit, rwku=args.rwku, probes=probes(args),
                               probes_file=args.probes, lm_eval=args.lm_eval, lm_eval_include=args.lm_eval_include,
                               lm_eval_limit=args.lm_eval_limit, lm_eval_fewshot=args.lm_eval_fewshot, seed=seed(args))
    t = time.time()
    res = evaluate_model(args.model, args.out, oracle=args.oracle, bench=bench, cfg=cfg, metrics=wanted, extras=extras,
                         request=args.request, with_input=not args.no_input, overwrite=args.overwrite,
                         inputs=inputs(args))
    if res.out is not None:  # the main process, which wrote
        summary(res.to_json())
        wrote(args.out, time.time() - t)
    return 0
