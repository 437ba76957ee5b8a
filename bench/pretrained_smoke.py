"""The pretrained-model path end to end on a small budget: fine-tune SmolLM2-135M-Instruct (GGUF, chat
template) as target and oracle on the micro benchmark, unlearn with NPO, evaluate. Prints wall times and
the headline metrics. On a CPU this takes a few minutes; it checks the path works, not that the numbers
are tuned (use --epochs and the full `people` benchmark on a GPU for that).

    python bench/pretrained_smoke.py --model smollm2-135m --epochs 3
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--benchmark", default="micro")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--unlearn-steps", type=int, default=10)
    a = ap.parse_args()
    os.environ.setdefault("OBLIVIATE_CACHE", tempfile.mkdtemp(prefix="obliviate-smoke-"))
    import obliviate as ob

    bench = ob.load_benchmark(a.benchmark)
    t = time.time()
    paths = ob.train_pair(a.model, bench, ob.TrainConfig(epochs=a.epochs, lr=a.lr))
    train_s = time.time() - t
    target, tok = ob.load_model(paths["target"])
    oracle, _ = ob.load_model(paths["oracle"])
    t = time.time()
    ref = ob.evaluate(oracle, tok, bench, desc="evaluate oracle", is_oracle=True)
    res_t = ob.evaluate(target, tok, bench, oracle=ref, desc="evaluate target")
    eval_s = (time.time() - t) / 2
    t = time.time()
    new, _ = ob.unlearn(target, tok, ob.UnlearnData.from_benchmark(bench, tok), "npo",
                        {"max_steps": a.unlearn_steps, "lr": 1e-5})
    unlearn_s = time.time() - t
    res_u = ob.evaluate(new, tok, bench, oracle=ref, desc="evaluate npo")
    keys = ["forget_exact_match", "retain_exact_match", "holdout_exact_match", "world_exact_match",
            "forget_quality", "model_utility", "mia_min_k_plus_plus_auc"]
    print(f"train target+oracle {train_s:.0f} s, one evaluation {eval_s:.0f} s, unlearning {unlearn_s:.0f} s")
    print(f"{'metric':<26} {'target':>8} {'oracle':>8} {'npo':>8}")
    for k in keys:
        vals = [r.metrics.get(k) for r in (res_t, ref, res_u)]
        print(f"{k:<26} " + " ".join("     n/a" if v is None else f"{v:8.3f}" for v in vals))
    print("example:", res_t.rows[0]["question"], "->", res_t.rows[0]["generation"])


if __name__ == "__main__":
    main()
