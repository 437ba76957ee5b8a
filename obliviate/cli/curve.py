"""``obliviate curve``: MUSE's scalability (growing forget sets) or sustainability (sequential requests)."""
from __future__ import annotations

import time

from obliviate.cli.common import count
from obliviate.methods import DEFAULT_METHOD


def register(sub, p) -> None:
    c = sub.add_parser("curve", parents=[p["common"], p["seeded"], p["written"]],
                       help="MUSE's scalability (growing forget sets) or sustainability (sequential requests) of a "
                            "method, on a built-in model and benchmark")
    c.add_argument("kind", choices=["scalability", "sustainability"])
    c.add_argument("--model", default="tiny")
    c.add_argument("--benchmark", help="built-in benchmark (default people)")
    c.add_argument("--benchmark-seed", type=count, help="seed of the built-in benchmark generator (default 0)")
    c.add_argument("--method", default=DEFAULT_METHOD)
    c.add_argument("--fractions", default="0.1,0.5,1.0", help="scalability: fractions of the forget set's subjects")
    c.add_argument("--requests", type=count, default=3, help="sustainability: how many sequential requests")
    c.add_argument("--out", required=True)
    c.add_argument("--set", action="append", metavar="KEY=VALUE", help="method option, e.g. --set lr=5e-4")
    c.set_defaults(fn=run)


def run(args) -> int:
    from obliviate.cli.common import check_models, parse_sets, seed, wrote
    from obliviate.methods import get_method
    from obliviate.report.console import curve_table
    from obliviate.runs.curve import run_curve

    get_method(args.method)
    check_models(("model", args.model))
    points = args.fractions.split(",") if args.kind == "scalability" else args.requests
    t = time.time()
    res = run_curve(args.out, args.kind, points, model=args.model, benchmark=args.benchmark or "people",
                    method=args.method, method_cfg=parse_sets(args.set), seed=seed(args), cache=args.cache,
                    overwrite=args.overwrite, benchmark_seed=args.benchmark_seed or 0)
    curve_table(res["curves"][0])
    wrote(args.out, time.time() - t)
    return 0
