"""The ``obliviate`` command line: one short file per verb (``register`` declares its arguments, ``run`` parses
them into a library call and prints); the workflows live in :mod:`obliviate.runs`.

    obliviate demo --out demo_out                                  # everything, on the built-in default
    obliviate train --model tiny --benchmark people                # target + oracle (cached)
    obliviate unlearn --model TARGET_DIR --method npo --out OUT    # a new model folder
    obliviate eval --model OUT --oracle ORACLE_DIR --out EVAL_DIR  # results.json + examples.jsonl + report.html
    obliviate attack --model OUT --target T --oracle O --out A     # relearn, quantize, probes ... vs the oracle
    obliviate curve scalability --method npo --out C     # MUSE C5 (C6: sustainability --requests 3)
    obliviate ls methods|metrics|models|benchmarks|probes|attacks  # or `obliviate ls npo`: a method's options

The error and exit-code policy is here, in :func:`main`, and nowhere else: every bad input (an option, a file, a
model, an output folder) stops with one line ``obliviate: error: ...`` and exit code 2 before any model is loaded,
and nothing is written. Outputs never replace a file or folder obliviate did not write (see
:mod:`obliviate.core.outputs`).
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from obliviate.cli import (attack, bottleneck, certify, codes, curve, demo, eval, keygen, ledger, ls, plan, train, tune,
                           unlearn, verify)
from obliviate.cli.args import parents
from obliviate.cli.common import Parser
from obliviate.cli.ls import LS_TABLES
from obliviate.core.outputs import Terminated, request_termination, reset_termination
from obliviate.core.utils import ObliviateError

VERBS = (demo, train, unlearn, bottleneck, codes, eval, attack, tune, curve, plan, keygen, ledger, certify, verify, ls)


def build_parser() -> Parser:
    p = parents()
    parser = Parser(prog="obliviate", description="Machine unlearning for language models.", parents=[p["common"]])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for verb in VERBS:
        verb.register(sub, p)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # argparse's own exits (--help, one-line usage errors)
        return int(e.code or 0)
    args.cache = getattr(args, "cache", None)
    if args.cache:
        os.environ["OBLIVIATE_CACHE"] = args.cache
        args.cache = Path(args.cache)
    import obliviate.engine.distributed as distributed

    had_group = distributed.group_initialized()  # a caller's own group, which obliviate leaves alone
    previous = _on_sigterm()
    try:
        return args.fn(args)
    except Terminated:
        print("obliviate: terminated; no output was written", file=sys.stderr)
        return 143
    except ObliviateError as e:
        print(f"obliviate: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`obliviate ls | head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:  # a full disk, a folder that vanished: one line, and no output (outputs are atomic)
        if os.environ.get("OBLIVIATE_DEBUG"):
            raise
        where = f" ({e.filename})" if e.filename else ""
        print(f"obliviate: error: {e.strerror or e}{where}; nothing was written", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("obliviate: interrupted; no output was written", file=sys.stderr)
        return 130
    finally:
        distributed.close(had_group)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
            reset_termination()  # the library, used on in this process, is not stopped by this run's signal


def _on_sigterm():
    """Turn SIGTERM into :class:`~obliviate.core.outputs.Terminated` for this run (recorded too, see
    :func:`~obliviate.core.outputs.request_termination`); the previous handler, or None off the main thread."""
    reset_termination()

    def raise_terminated(signum, frame):
        request_termination()

    try:
        return signal.signal(signal.SIGTERM, raise_terminated)
    except ValueError:  # not the main thread (a caller running obliviate in a worker thread)
        return None


__all__ = ["LS_TABLES", "VERBS", "build_parser", "main"]
