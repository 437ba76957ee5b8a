"""MUSE's scalability (C5: growing forget sets) and sustainability (C6: sequential requests) curves of a method on a
built-in model and benchmark, through :func:`obliviate.runs.curve.run_curve` (what `obliviate curve` runs).

    python bench/curves.py [--model tiny] [--method npo] [--fractions 0.1,0.5,1.0] [--requests 3]

The method runs with the demo's settings. Each curve reports the KS statistic D against the oracle trained
without the whole forget set (an approximation for a part of it), not forget quality's p-value, which shrinks with
the number of facts.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from common import table, write_result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--benchmark", default="people")
    ap.add_argument("--method", default="npo")
    ap.add_argument("--fractions", default="0.1,0.5,1.0")
    ap.add_argument("--requests", type=int, default=3)
    a = ap.parse_args()
    os.environ.setdefault("OBLIVIATE_QUIET", "1")
    from obliviate.runs.curve import run_curve

    out = tempfile.mkdtemp(prefix="obliviate-curves-")
    values = {}
    for kind, points in (("scalability", a.fractions.split(",")), ("sustainability", a.requests)):
        t = time.time()
        res = run_curve(f"{out}/{kind}", kind, points, model=a.model, benchmark=a.benchmark, method=a.method)
        values[f"{kind}_seconds"] = round(time.time() - t, 1)
        curve = res["curves"][0]
        keys = [k for k in curve["rows"][0] if k != curve["x"]]
        table(f"{curve['title']} ({values[f'{kind}_seconds']:.0f} s)", [curve["x"], *keys],
              [[r[curve["x"]], *["n/a" if r.get(k) is None else f"{r[k]:.3g}" for k in keys]] for r in curve["rows"]])
    write_result(f"curves_{a.model}", values, vars(a))


if __name__ == "__main__":
    main()
