"""``obliviate unlearn``: unlearn the forget set from a model; writes a new model folder and a ledger entry."""
from __future__ import annotations

import sys

from obliviate.cli.args import add_data_args, add_ledger_args, add_rwku_args
from obliviate.methods import DEFAULT_METHOD


def register(sub, p) -> None:
    u = sub.add_parser("unlearn", parents=[p["common"], p["seeded"], p["written"]],
                       help="unlearn the forget set from a model; writes a new model folder")
    u.add_argument("--model", required=True, help="the model to unlearn from (it is never modified)")
    u.add_argument("--method", default=DEFAULT_METHOD, help="`obliviate ls methods`; `obliviate ls npo` lists its options")
    u.add_argument("--out", required=True, help="the new model folder")
    u.add_argument("--set", action="append", metavar="KEY=VALUE", help="method option, e.g. --set beta=0.1")
    add_data_args(u)
    add_ledger_args(u)
    add_rwku_args(u)
    u.set_defaults(fn=run)


def run(args) -> int:
    from dataclasses import fields

    from obliviate.cli.common import benchmark, check_models, inputs, parse_sets, probes, with_seed, wrote
    from obliviate.methods import get_method, method_config
    from obliviate.runs.unlearn import unlearn_model

    sets = parse_sets(args.set)
    names = {f.name for f in fields(get_method(args.method).config)}
    config = with_seed(sets, args.seed, names)
    method_config(args.method, config)  # bad options fail before any loading
    check_models(("model", args.model))
    found = probes(args)
    bench = None if found else benchmark(args, [("model", args.model)])
    res = unlearn_model(args.model, args.method, args.out, config=config, bench=bench,
                        rwku=args.rwku if found else None, probes=found, ledger=args.ledger,
                        ledger_text=args.ledger_text, overwrite=args.overwrite, inputs=inputs(args))
    entry = res["ledger_entry"]
    if entry is not None:  # the main process, which wrote
        wrote(args.out)
        print(f"obliviate: ledger {entry['ledger']}: request {entry['request_id']}", file=sys.stderr)
    return 0
