"""``obliviate verify``: re-check a certificate's signature, the model files and the ledger; exit 1 on a mismatch."""
from __future__ import annotations

import sys

from obliviate.cli.args import TRUSTED


def register(sub, p) -> None:
    ve = sub.add_parser("verify", parents=[p["common"]],
                        help="re-check a certificate's signature, the model files and the ledger; exits 1 on any "
                             "mismatch")
    ve.add_argument("certificate", help="certificate.json or its folder")
    ve.add_argument("--model", help="the model folder (default: the one the certificate names)")
    ve.add_argument("--ledger", help="the ledger (default: the one the certificate names, if it is here)")
    ve.add_argument("--public-key", help=TRUSTED)
    ve.set_defaults(fn=run)


def run(args) -> int:
    from obliviate.audit.certificate import verify_details

    res = verify_details(args.certificate, args.model, args.ledger, args.public_key)
    for h in res["held"]:
        print(f"holds: {h}")
    for p in res["problems"]:
        print(f"obliviate: verify FAILED: {p}", file=sys.stderr)
    verdict = "the certificate does NOT hold" if res["problems"] else "the certificate holds"
    print(f"{verdict}; it concludes: {res['conclusion']}")
    return 1 if res["problems"] else 0
