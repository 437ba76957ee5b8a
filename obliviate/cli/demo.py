"""``obliviate demo``: data -> target + oracle -> unlearn -> evaluate -> attack -> report, on the built-in default."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from obliviate.cli.args import add_ledger_args
from obliviate.cli.common import count, parse_sets, seed, wrote
from obliviate.methods import DEFAULT_METHOD


def register(sub, p) -> None:
    d = sub.add_parser("demo", parents=[p["common"], p["seeded"], p["written"]],
                       help="data -> target + oracle -> unlearn -> evaluate -> attack -> report, on the built-in default")
    d.add_argument("--out", default="demo_out", help="output folder (results.json, report.html, the unlearned model)")
    d.add_argument("--model", default="tiny", help="base model: built-in name (`obliviate ls models`), folder or .gguf")
    d.add_argument("--benchmark", help="built-in benchmark (`obliviate ls benchmarks`, default people) or a "
                                       "TOFU-format folder")
    d.add_argument("--benchmark-seed", type=count, help="seed of the built-in benchmark generator (default 0)")
    d.add_argument("--method", default=DEFAULT_METHOD, help="unlearning method (`obliviate ls methods`; "
                                                   "`obliviate ls npo` lists its options)")
    d.add_argument("--set", action="append", metavar="KEY=VALUE", help="method option, e.g. --set lr=5e-4")
    d.add_argument("--attacks", default="all", help="attacks on the unlearned model (`obliviate ls attacks`), or none")
    add_ledger_args(d)
    d.set_defaults(fn=run)


def run(args) -> int:
    from obliviate.cli.common import check_models
    from obliviate.core.outputs import check_output
    from obliviate.core.utils import cache_dir
    from obliviate.data import load_benchmark
    from obliviate.methods import get_method
    from obliviate.report.console import attack_summary, summary
    from obliviate.runs.common import check_ledger
    from obliviate.runs.demo import DemoConfig, record_demo, run_demo

    get_method(args.method)
    if args.attacks != "none":
        from obliviate.attacks import parse_attacks

        parse_attacks(args.attacks)
    check_models(("model", args.model))
    check_ledger(args.ledger, args.out)  # a bad or truncated ledger fails before any training
    cfg = DemoConfig(model=args.model, benchmark=args.benchmark or "people", benchmark_seed=args.benchmark_seed or 0,
                     method=args.method, method_config=parse_sets(args.set), seed=seed(args), attacks=args.attacks)
    load_benchmark(cfg.benchmark, seed=cfg.benchmark_seed)  # a bad benchmark or output fails before the plan is told
    check_output(args.out, overwrite=args.overwrite, inputs=[("cache", Path(args.cache or cache_dir()))])
    print(f"obliviate demo: trains (or reuses from the cache) a target and an oracle {args.model} on "
          f"{cfg.benchmark}, evaluates both, unlearns with {args.method}, evaluates the result against the oracle"
          + (f", runs the attacks ({args.attacks})" if args.attacks != "none" else "")
          + " and writes the report; with the built-in tiny model on a 2-core CPU, about 5 minutes the first time "
            "(the pair is trained) and under 2 once it is cached", file=sys.stderr)
    t = time.time()
    res = run_demo(args.out, cfg, cache=args.cache, overwrite=args.overwrite)
    entry = record_demo(res, cfg, args.out, args.ledger, args.ledger_text)
    if entry:
        print(f"obliviate: ledger {entry['ledger']}: request {entry['request_id']} (obliviate certify "
              f"{entry['request_id']} --ledger {entry['ledger']} --out CERT_DIR)", file=sys.stderr)
    summary(res)
    if res.get("robustness"):
        attack_summary(res["robustness"])
    wrote(args.out, time.time() - t)
    return 0
