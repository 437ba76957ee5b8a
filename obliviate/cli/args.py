"""Argument groups several verbs share (so that each is declared once, with one help text)."""
from __future__ import annotations

import argparse

from obliviate.cli.common import Parser, count


def parents() -> dict[str, Parser]:
    """``common`` (every verb: --cache), ``seeded`` (--seed) and ``written`` (--overwrite)."""
    common = Parser(add_help=False)
    common.add_argument("--cache", default=argparse.SUPPRESS,
                        help="cache folder for trained targets and oracles (default $OBLIVIATE_CACHE or "
                             "~/.cache/obliviate); accepted before or after the command")
    seeded = Parser(add_help=False)
    seeded.add_argument("--seed", type=count,
                        help="seeds the run: training, the method, evaluation samples and attacks (default 0); the same "
                             "seed on the same machine gives the same numbers. It does not change the data: see "
                             "--benchmark-seed")
    written = Parser(add_help=False)
    written.add_argument("--overwrite", action="store_true",
                         help="replace an existing, non-empty --out, if obliviate wrote it (never anything else, "
                              "nor a folder holding the run's inputs)")
    return {"common": common, "seeded": seeded, "written": written}


def add_data_args(p):
    p.add_argument("--benchmark", help="built-in benchmark name (`obliviate ls benchmarks`) or TOFU-format folder; "
                                       "default: the one the model was trained on")
    p.add_argument("--benchmark-seed", type=count, help="seed of the built-in benchmark generator (default 0)")
    p.add_argument("--data", help="TOFU-format training data (JSON/JSONL), with --forget")
    p.add_argument("--forget", help="TOFU-format rows of --data to forget")
    p.add_argument("--holdout", help="TOFU-format rows never trained on (MIA non-members)")
    p.add_argument("--calibration", help="more TOFU-format rows never trained on, kept apart from --holdout: what "
                                         "stop=holdout and tune --objective holdout_gap calibrate on")
    p.add_argument("--world", help="TOFU-format utility facts")
    p.add_argument("--drop-unmatched", action="store_true",
                   help="drop forget rows that match no row of --data (default: an error listing them)")
    p.add_argument("--group", metavar="RULE",
                   help="subjects for rows without a 'subject' field, which every interval resamples: tofu (TOFU's "
                        "20 consecutive rows per author), rows:N, field:NAME, or fact (each row its own subject)")


def add_ledger_args(p):
    p.add_argument("--ledger", help="the request ledger (default: obliviate-ledger.sqlite beside --out)")
    p.add_argument("--ledger-text", action="store_true",
                   help="also keep the forget rows' text in the ledger (default: their SHA-256 only)")


def add_rwku_args(p):
    p.add_argument("--rwku", metavar="TARGET", help="a real-knowledge target (`obliviate ls probes`): eval "
                                                    "scores its probes and its neighbours'; unlearn forgets "
                                                    "its passages")
    p.add_argument("--probes", help="a JSON probe file instead of the built-in probes")


def add_request_arg(p):
    p.add_argument("--request", metavar="REQUEST_ID",
                   help="the ledger request this evidence is about (default: the one the model folder names, "
                        "or the one request that wrote these weights)")


TRUSTED = ("the signer's public key (its .pub file, or a file holding its key id) to check signatures against "
           "(default: the local signing key's own)")
