"""`obliviate plan`'s memory model against measured peaks: live tensor bytes (torch's MemTracker, the CPU analogue
of ``torch.cuda.max_memory_allocated``) of real ``obliviate.unlearn`` runs, 2 steps each, on passages cut to a
fixed length so that every batch has the planned shape.

    python bench/memory.py [--models micro,tiny,smollm2-135m] [--methods ga,npo,rmu] [--batch-size 4]
                           [--max-length 64]

Prints, per model, method and LoRA rank: the predicted peak (and its phase), the measured peak and their ratio.
The measured run counts what ``unlearn`` allocates (its working copy, frozen copies, gradients, optimiser state,
activations, temporaries), not the caller's input model, as the plan counts one device's working set.

One correction, measured at the start of every run: MemTracker counts a deep-copied ``nn.Parameter`` twice (the
clone and the Parameter that wraps it) while the process's resident memory grows by one copy, so the weights of
``unlearn``'s working copy are subtracted once from its reading ("measured" below; "tracker" is the raw value).
"""
from __future__ import annotations

import argparse
import os


def measured_peak(fn) -> int:
    """Peak live tensor bytes while ``fn`` runs (MemTracker without its per-module statistics, which refuse
    repeated module calls)."""
    from torch.distributed._tools.mem_tracker import MemTracker

    mt = MemTracker()
    for hook in ("_pre_fw_hook", "_post_fw_hook", "_pre_bw_hook", "_post_bw_hook"):
        setattr(mt, hook, lambda *a, **k: None)
    with mt:
        fn()
    return int(sum(v["Total"] for v in mt.get_tracker_snapshot("peak").values()))


def deepcopy_artifact() -> tuple[float, float]:
    """(MemTracker's reading, the resident-memory growth) of deep-copying a 256 MiB parameter, in MiB."""
    import copy
    import resource

    import torch

    p = torch.nn.Parameter(torch.ones(64 * 2**20))
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # first: the peak resident size only ever grows
    q = copy.deepcopy(p)
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - r0) / 1024
    del q
    tracked = measured_peak(lambda: copy.deepcopy(p)) / 2**20
    return tracked, grown


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="micro,tiny,smollm2-135m")
    ap.add_argument("--methods", default="ga,npo,rmu")
    ap.add_argument("--lora", default="0,8")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=64)
    a = ap.parse_args()
    os.environ.setdefault("OBLIVIATE_QUIET", "1")
    import obliviate as ob
    from obliviate.data.format import encode, examples_from
    from obliviate.models import SCRATCH_MODELS
    from obliviate.plan import _count, estimate
    from obliviate.train import base_model

    bench = ob.load_benchmark("people")
    T, B = a.max_length, a.batch_size
    tracked, grown = deepcopy_artifact()
    print(f"deep copy of a 256 MiB parameter: MemTracker reads {tracked:.0f} MiB, resident memory grows "
          f"{grown:.0f} MiB")
    print(f"batch {B}, {T} tokens per row, float32, 1 process, 2 steps; MiB")
    print("model | method | LoRA r | predicted (phase) | tracker | measured | predicted / measured")
    worst = 0.0
    for spec in a.models.split(","):
        model, tok = base_model(spec, bench, 0) if spec in SCRATCH_MODELS else ob.load_model(spec)
        arch = _count(model.config)
        weights = sum(p.numel() * p.element_size() for p in model.parameters())
        texts = examples_from(tok, [], bench.training_texts(True))
        long = [e for e in texts if len(encode(tok, e, 10**6)["input_ids"]) >= T]
        if len(long) < 4 * B:
            raise SystemExit(f"{spec}: only {len(long)} passages reach {T} tokens")
        data = ob.UnlearnData(forget=long[:2 * B], retain=long[2 * B:4 * B])
        for method in a.methods.split(","):
            for r in (int(x) for x in a.lora.split(",")):
                opts = {"max_steps": 2, "batch_size": B, "max_length": T, "lora_rank": r}
                raw = measured_peak(lambda: ob.unlearn(model, tok, data, method, opts))  # noqa: B023
                got = raw - weights
                e = estimate(arch, method, B, T, lora_rank=r, forget_rows=len(data.forget))
                ratio = e["peak"] / got
                worst = max(worst, abs(ratio - 1))
                print(f"{spec} | {method} | {r} | {e['peak'] / 2**20:.1f} ({e['peak_phase']}) | {raw / 2**20:.1f} | "
                      f"{got / 2**20:.1f} | {ratio:.2f}", flush=True)
    print(f"largest deviation: {100 * worst:.0f} %")


if __name__ == "__main__":
    main()
