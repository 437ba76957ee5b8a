"""``obliviate ledger``: list a ledger's unlearning requests and check its chain and signed checkpoint."""
from __future__ import annotations

import sys
from pathlib import Path

from obliviate.cli.args import TRUSTED


def register(sub, p) -> None:
    lg = sub.add_parser("ledger", parents=[p["common"]], help="list the unlearning requests of a ledger and check its "
                                                              "chain and signed checkpoint")
    lg.add_argument("ledger", help="the ledger file (obliviate-ledger.sqlite beside an unlearned model)")
    lg.add_argument("--public-key", help=TRUSTED)
    lg.set_defaults(fn=run)


def run(args) -> int:
    from obliviate.audit.ledger import check, entries
    from obliviate.core.utils import ObliviateError

    path = Path(args.ledger)
    if not path.is_file():
        raise ObliviateError(f"{path}: no ledger there (obliviate unlearn writes {path.name} beside its --out)")
    problems = check(path, args.public_key)
    for e in entries(path):
        if e["kind"] == "request":
            print(f"{e['request_id']}  {e['time']}  {e['method']:<12} {e['forget_rows']:>5} forget rows  "
                  f"-> {e['output_model']}{'  (evidence recorded)' if e.get('evidence') else ''}")
        else:
            print(f"  evidence {e['time']} for {e['request_id'] or 'no recorded request'}: {e['model']}")
    for p in problems:
        print(f"obliviate: {p}", file=sys.stderr)
    return 1 if problems else 0
