"""RMU's forward pass stopping at the steered layer against running the whole model: wall time of the same
unlearning run both ways, in one process, and whether the two give the same loss curve and weights.

    python bench/rmu_forward.py [--model smollm2-135m] [--steps 4] [--batch-size 4] [--max-length 64] [--repeat 2]

"Whole model" puts back what RMU did before (every decoder block, all positions' logits) by replacing
``stop_after`` with a no-op and withholding ``logits_to_keep``; prints the best of ``--repeat`` runs each way
(alternating, so that the machine's state favours neither) and their ratio.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    os.environ.setdefault("OBLIVIATE_QUIET", "1")
    import torch

    import obliviate as ob
    from obliviate.data.format import encode, examples_from
    from obliviate.models import SCRATCH_MODELS
    from obliviate.engine.training import base_model

    rmu = importlib.import_module("obliviate.methods.gradient.rmu")
    bench = ob.load_benchmark("people")
    model, tok = base_model(a.model, bench, 0) if a.model in SCRATCH_MODELS else ob.load_model(a.model)
    texts = examples_from(tok, [], bench.training_texts(True))
    long = [e for e in texts if len(encode(tok, e, 10**6)["input_ids"]) >= a.max_length]
    n = 4 * a.batch_size
    if len(long) < 2 * n:
        raise SystemExit(f"{a.model}: only {len(long)} passages reach {a.max_length} tokens")
    data = ob.UnlearnData(forget=long[:n], retain=long[n:2 * n])
    opts = {"max_steps": a.steps, "batch_size": a.batch_size, "max_length": a.max_length}
    stop, keep = rmu.stop_after, rmu._takes_logits_to_keep
    times: dict[str, list[float]] = {}
    results = {}
    for _ in range(a.repeat):
        for mode in ("stop at layer", "whole model"):
            if mode == "whole model":
                rmu.stop_after = lambda m, layer: contextlib.nullcontext()
                rmu._takes_logits_to_keep = lambda cls: False
            try:
                t = time.perf_counter()
                new, info = ob.unlearn(model, tok, data, "rmu", opts)
                times.setdefault(mode, []).append(time.perf_counter() - t)
            finally:
                rmu.stop_after, rmu._takes_logits_to_keep = stop, keep
            results[mode] = (info["loss_curve"], {k: v.clone() for k, v in new.state_dict().items()})
    (c1, w1), (c2, w2) = results["stop at layer"], results["whole model"]
    same = c1 == c2 and all(torch.equal(w1[k], w2[k]) for k in w1)
    best = {k: min(v) for k, v in times.items()}
    from common import table, write_result

    table(f"{a.model}, rmu layer {info['layer']} of {len(rmu.decoder_layers(model))}, {a.steps} steps, batch "
          f"{a.batch_size} x {a.max_length} tokens, {torch.get_num_threads()} threads (best of {a.repeat})",
          ["forward", "seconds"], [[mode, f"{s:.2f}"] for mode, s in best.items()])
    write_result(f"rmu_forward_{a.model}", {"whole_over_stop": round(best["whole model"] / best["stop at layer"], 2),
                                            "identical_loss_and_weights": same}, vars(a))


if __name__ == "__main__":
    main()
