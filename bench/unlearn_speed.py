"""Unlearning under bfloat16 autocast against float32, on a pretrained pair: the gradient methods' ``bf16`` option.

    python bench/unlearn_speed.py --model smollm2-135m [--methods npo,graddiff,rmu] [--steps 6] [--lr 1e-4]

For each method, ``--steps`` optimiser steps from the cached target (``obliviate train --model MODEL``), once in
float32 and once with ``bf16=true``, same seed, batches and learning rate (``--lr``; default each method's), one
after the other in this process: the wall time of each, their ratio, and the forget and retain NLL each run leaves
(autocast should change the speed, not where the steps take the model). Writes
``bench/results/unlearn_speed_MODEL.json``.
"""
from __future__ import annotations

import argparse
import time

from common import pair, say, table, write_result


def nll(model, tok, examples) -> float:
    """Mean over ``examples`` of each one's mean answer-token NLL (float32, no autocast)."""
    from obliviate.methods.common import reference_nll

    return reference_nll(model, tok, examples, 256, reduction="mean").mean().item()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--benchmark", default="people")
    ap.add_argument("--methods", default="npo,graddiff,rmu")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--lr", type=float, help="every method's learning rate (default: its own; the pair's fine-tuning "
                                             "rate moves the model further in a few steps)")
    a = ap.parse_args()

    import obliviate as ob

    bench, target, _, tok, data, _ = pair(a.model, a.benchmark)
    values, rows = {}, []
    for method in a.methods.split(","):
        runs = {}
        for name, bf16 in (("float32", False), ("bf16_autocast", True)):
            t = time.time()
            opts = {"max_steps": a.steps, "bf16": bf16, **({"lr": a.lr} if a.lr else {})}
            new, info = ob.unlearn(target, tok, data, method, opts)
            runs[name] = {"seconds": time.time() - t, "steps": len(info["loss_curve"]),
                          "forget_nll": nll(new, tok, data.forget), "retain_nll": nll(new, tok, data.retain[:64])}
            del new
        runs["bf16_speedup"] = runs["float32"]["seconds"] / runs["bf16_autocast"]["seconds"]
        values[method] = runs
        f, b = runs["float32"], runs["bf16_autocast"]
        rows.append([method, f"{f['seconds']:.1f}", f"{b['seconds']:.1f}", f"{runs['bf16_speedup']:.2f}",
                     f"{f['forget_nll']:.3f} / {b['forget_nll']:.3f}",
                     f"{f['retain_nll']:.3f} / {b['retain_nll']:.3f}"])
    values["target"] = {"forget_nll": nll(target, tok, data.forget), "retain_nll": nll(target, tok, data.retain[:64])}
    table(f"{a.model}: {a.steps} unlearning steps at {f'lr {a.lr:g}' if a.lr else 'each default lr'} in float32 "
          f"and under bf16 autocast (same seed and batches; "
          f"target's forget NLL {values['target']['forget_nll']:.3f}, retain NLL {values['target']['retain_nll']:.3f})",
          ["method", "float32 s", "bf16 s", "bf16 speed-up", "forget NLL f32 / bf16", "retain NLL f32 / bf16"], rows)
    say("retain NLL over the first 64 retain examples; the seconds include each run's copy of the model")
    write_result(f"unlearn_speed_{a.model}", values,
                 {"model": a.model, "benchmark": a.benchmark, "methods": a.methods, "steps": a.steps, "lr": a.lr})


if __name__ == "__main__":
    main()
