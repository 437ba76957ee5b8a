"""``obliviate certify``: a signed certificate (JSON + HTML) of one request's evidence."""
from __future__ import annotations


def register(sub, p) -> None:
    ce = sub.add_parser("certify", parents=[p["common"], p["written"]],
                        help="write a signed certificate (JSON + HTML) of one request's evidence")
    ce.add_argument("request", metavar="REQUEST_ID")
    ce.add_argument("--ledger", required=True, help="the ledger file")
    ce.add_argument("--out", required=True, help="the certificate folder")
    ce.add_argument("--key", help="the signing key (default: the local one, made if missing)")
    ce.set_defaults(fn=run)


def run(args) -> int:
    from obliviate.audit.certificate import certify
    from obliviate.audit.ledger import check
    from obliviate.cli.common import wrote
    from obliviate.core.utils import ObliviateError

    problems = check(args.ledger)
    if problems:
        raise ObliviateError("; ".join(problems))
    cert = certify(args.ledger, args.request, args.out, key=args.key)
    print(f"{cert['conclusion']}")
    for r in cert["reasons"]:
        print(f"  - {r}")
    wrote(args.out)
    return 0
