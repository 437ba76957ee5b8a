"""``obliviate attack``: attack unlearned models, and the target and oracle under the same attacks."""
from __future__ import annotations

import time

from obliviate.cli.args import add_data_args, add_request_arg


def register(sub, p) -> None:
    a = sub.add_parser("attack", parents=[p["common"], p["seeded"], p["written"]],
                       help="attack unlearned models, and the target and oracle under the same attacks")
    a.add_argument("--model", action="append", required=True, help="an unlearned model (repeat for several)")
    a.add_argument("--target", help="the model before unlearning")
    a.add_argument("--oracle", help="the model trained without the forget set")
    a.add_argument("--attack", default="all", help="comma-separated names from `obliviate ls attacks`, or all")
    a.add_argument("--out", required=True)
    a.add_argument("--set", action="append", metavar="ATTACK.KEY=VALUE",
                   help="attack option, e.g. --set relearn.steps=0,10 (`obliviate ls relearn` lists them)")
    a.add_argument("--budget", type=float, metavar="MINUTES",
                   help="stop starting attacks once this much time is spent; the rest are skipped and say so")
    add_data_args(a)
    add_request_arg(a)
    a.set_defaults(fn=run)


def run(args) -> int:
    from dataclasses import fields

    from obliviate.attacks import ATTACKS, attack_config, parse_attacks
    from obliviate.cli.common import benchmark, check_models, inputs, parse_sets, seed, with_seed, wrote
    from obliviate.core.utils import ObliviateError
    from obliviate.report.console import attack_summary
    from obliviate.runs.attack import attack_models

    names = parse_attacks(args.attack)
    configs: dict[str, dict] = {}
    for key, value in parse_sets(args.set).items():
        attack, dot, opt = key.partition(".")
        if not dot or attack not in names:
            raise ObliviateError(f"--set {key}=...: expected ATTACK.OPTION with ATTACK among {', '.join(names)}")
        configs.setdefault(attack, {})[opt] = value
    for n in names:  # --seed seeds every attack that draws at random; unknown or bad options fail before any loading
        configs[n] = with_seed(configs.get(n, {}), args.seed, {f.name for f in fields(ATTACKS[n].config)})
        attack_config(n, configs[n])
    check_models(("model", args.model), ("target", args.target), ("oracle", args.oracle))
    bench = benchmark(args, [("model", m) for m in args.model] + [("target", args.target), ("oracle", args.oracle)])
    t0 = time.time()
    res = attack_models(args.model, args.out, bench, attacks=names, configs=configs, target=args.target,
                        oracle=args.oracle, budget_minutes=args.budget, request=args.request, seed=seed(args),
                        overwrite=args.overwrite, inputs=inputs(args))
    attack_summary(res.to_json()["robustness"])
    wrote(args.out, time.time() - t0)
    return 0
