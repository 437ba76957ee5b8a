"""``obliviate codes``: list a bottlenecked model's code deletions, or write a copy with one request undone."""
from __future__ import annotations


def register(sub, p) -> None:
    cd = sub.add_parser("codes", parents=[p["common"], p["written"]],
                        help="list a bottlenecked model's code deletions, or undo one (--undo N --out DIR)")
    cd.add_argument("--model", required=True)
    cd.add_argument("--undo", type=int, help="the deletion request to undo")
    cd.add_argument("--out", help="where the model with that request undone is written")
    cd.set_defaults(fn=run)


def run(args) -> int:
    from obliviate.cli.common import check_models, inputs, wrote
    from obliviate.core.outputs import check_output
    from obliviate.core.utils import ObliviateError
    from obliviate.methods.bottleneck.build import code_deletions, undo_deletion

    check_models(("model", args.model))
    if args.undo is not None and not args.out:
        raise ObliviateError("codes --undo needs --out: the model with the deletion undone is written there "
                             "(the input model is never modified)")
    if args.out:
        check_output(args.out, overwrite=args.overwrite, inputs=inputs(args))
    if args.undo is None:
        entries = code_deletions(args.model)
        for d in entries:
            print(f"request {d['request']}: {len(d['codes'])} codes deleted ({d['rule']}, {d['forget_examples']} "
                  f"forget examples, {d['time']}): {d['codes'][:12]}{' ...' if len(d['codes']) > 12 else ''}")
        if not entries:
            print("no codes deleted")
        return 0
    entry = undo_deletion(args.model, args.undo, args.out, overwrite=args.overwrite, inputs=inputs(args))
    print(f"undid request {entry['request']}: {len(entry['codes'])} codes restored")
    wrote(args.out)
    return 0
