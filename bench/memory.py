"""`obliviate plan`'s memory model against measured peaks: live tensor bytes of real ``obliviate.unlearn`` runs, 2
steps each, on passages cut to a fixed length so that every batch has the planned shape.

    python bench/memory.py [--models micro,tiny,smollm2-135m] [--methods ga,npo,rmu] [--batch-size 4]
                           [--max-length 64]

Prints, per model, method and LoRA rank: the predicted peak (and its phase), the measured peak and their ratio.
The measurement (:class:`LiveBytes`, the CPU analogue of ``torch.cuda.max_memory_allocated``) counts what
``unlearn`` allocates (its working copy, frozen copies, gradients, optimiser state, activations, temporaries), not
the caller's input model, as the plan counts one device's working set. torch's ``MemTracker`` was used first and
dropped: it counts the whole storage of a tensor that existed before it started each time an operator returns a
view of it (every ``weight.t()`` of a model built earlier adds that weight), which inflated small models' peaks.
"""
from __future__ import annotations

import argparse
import os
import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class LiveBytes(TorchDispatchMode):
    """Live tensor bytes, counted per storage: a storage is added when an operator returns one that none of its
    inputs holds (a new allocation, not a view or an in-place result) and removed when it is freed; storages that
    existed before (the caller's model) are never counted, however often they are viewed. Storage resizes (FSDP
    frees and re-gathers a layer's full weights by resizing their storage) change the count. Backward passes are
    counted as well (their operators go through the same dispatch)."""

    def __init__(self):
        super().__init__()
        self.current = self.peak = 0
        self._live: dict[int, int] = {}  # id of the storage object -> bytes

    def _add(self, st, nbytes: int) -> None:
        self._live[id(st)] = nbytes
        self.current += nbytes
        self.peak = max(self.peak, self.current)
        weakref.finalize(st, self._freed, id(st))

    def _freed(self, key: int) -> None:
        self.current -= self._live.pop(key, 0)

    def __enter__(self):
        original = self._resize = torch.UntypedStorage.resize_

        def resize_(st, nbytes):
            out = original(st, nbytes)
            if id(st) in self._live:
                self.current += nbytes - self._live[id(st)]
                self._live[id(st)] = nbytes
                self.peak = max(self.peak, self.current)
            elif nbytes:
                self._add(st, nbytes)
            return out

        torch.UntypedStorage.resize_ = resize_
        return super().__enter__()

    def __exit__(self, *exc):
        torch.UntypedStorage.resize_ = self._resize
        return super().__exit__(*exc)

    @staticmethod
    def _storage(t):
        """The tensor's storage (a DTensor's: its local shard's), or None (the meta device, another wrapper)."""
        if isinstance(t, torch.Tensor) and hasattr(t, "_local_tensor"):  # DTensor: this process holds its shard
            t = t._local_tensor
        if not isinstance(t, torch.Tensor) or t.device.type == "meta":
            return None
        st = t.untyped_storage()
        try:
            return st if st.data_ptr() else None
        except RuntimeError:  # a wrapper subclass's storage has no data
            return None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        held = {id(st) for st in map(self._storage, tree_flatten((args, kwargs))[0]) if st is not None}
        for st in map(self._storage, tree_flatten(out)[0]):
            if st is not None and id(st) not in held and id(st) not in self._live and st.nbytes():
                self._add(st, st.nbytes())
        return out


def measured_peak(fn) -> int:
    """Peak live tensor bytes allocated while ``fn`` runs (:class:`LiveBytes`)."""
    with LiveBytes() as live:
        fn()
    return live.peak


def training_peak(fn) -> int:
    """Under FSDP: the peak from the moment the training copy is sharded to the moment its weights are gathered
    back, i.e. what a GPU holds (the caller's model and its working copy stay in host memory, and the copy made
    from them is sharded straight onto the device; on CPU processes all of it is one memory, so the window
    separates them). Frozen copies made before the window (RMU's) count: they are alive in it."""
    import obliviate.engine.distributed as d

    init, finish = d.ShardedRun.__init__, d.ShardedRun.finish

    def start(run, *a, **k):
        init(run, *a, **k)
        live.peak = live.current

    def stop(run):
        live.window = live.peak
        finish(run)

    d.ShardedRun.__init__, d.ShardedRun.finish = start, stop
    try:
        with LiveBytes() as live:
            fn()
    finally:
        d.ShardedRun.__init__, d.ShardedRun.finish = init, finish
    return live.window


def deepcopy_check() -> tuple[float, float]:
    """(the measured peak, the resident-memory growth) of deep-copying a 256 MiB parameter, in MiB."""
    import copy
    import resource

    p = torch.nn.Parameter(torch.ones(64 * 2**20))
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # first: the peak resident size only ever grows
    q = copy.deepcopy(p)
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - r0) / 1024
    del q
    return measured_peak(lambda: copy.deepcopy(p)) / 2**20, grown


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="micro,tiny,smollm2-135m")
    ap.add_argument("--methods", default="ga,npo,rmu")
    ap.add_argument("--lora", default="0,8")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                    help="the weights' dtype (the plan's --dtype-bytes 4 or 2)")
    ap.add_argument("--fsdp", type=int, default=0, metavar="N",
                    help="run under torchrun with N processes and FSDP (gloo, CPU); each process measures its own "
                         "peak during training (training_peak) and the largest is compared with the plan's "
                         "per-device peak for N devices")
    a = ap.parse_args()
    if a.fsdp > 1 and "LOCAL_RANK" not in os.environ:
        import subprocess
        import sys

        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(a.fsdp), "--master_port",
               "29517", __file__, *sys.argv[1:]]
        raise SystemExit(subprocess.call(cmd, env={**os.environ, "OBLIVIATE_FSDP": "1", "OMP_NUM_THREADS": "1"}))
    os.environ.setdefault("OBLIVIATE_QUIET", "1")
    import obliviate as ob
    from obliviate.data.format import Example, encode, examples_from
    from obliviate.models import SCRATCH_MODELS
    from obliviate.engine.plan import _count, estimate
    from obliviate.engine.training import base_model

    world = int(os.environ.get("WORLD_SIZE", "1"))
    lead = int(os.environ.get("RANK", "0")) == 0
    from common import say as record, table, write_result

    say = record if lead else (lambda *x, **k: None)
    bench = ob.load_benchmark("people")
    T, B = a.max_length, a.batch_size
    if world == 1:
        tracked, grown = deepcopy_check()
        say(f"calibration: deep copy of a 256 MiB parameter: measured {tracked:.0f} MiB, resident memory grows "
            f"{grown:.0f} MiB")
    say(f"batch {B}, {T} tokens per row, {a.dtype}, {world} process(es){', FSDP' if world > 1 else ''}, 2 steps; "
        "MiB" + (" per process (the largest)" if world > 1 else ""))
    rows = []
    measure = training_peak if world > 1 else measured_peak
    worst = 0.0
    for spec in a.models.split(","):
        model, tok = base_model(spec, bench, 0) if spec in SCRATCH_MODELS else ob.load_model(spec)
        model = model.to(getattr(torch, a.dtype))
        arch = _count(model.config)
        texts = examples_from(tok, [], bench.training_texts(True))
        long = [e for e in texts if len(encode(tok, e, 10**6)["input_ids"]) >= T]
        if len(long) < 4 * B:  # join consecutive passages until each reaches T tokens
            long, cur = [], None
            for e in texts:
                cur = e if cur is None else Example(cur.prompt, f"{cur.target} {e.target}")
                if len(encode(tok, cur, 10**6)["input_ids"]) >= T:
                    long.append(cur)
                    cur = None
            if len(long) < 4 * B:
                raise SystemExit(f"{spec}: only {len(long)} joined passages reach {T} tokens")
        data = ob.UnlearnData(forget=long[:2 * B], retain=long[2 * B:4 * B])
        for method in a.methods.split(","):
            for r in (int(x) for x in a.lora.split(",")):
                opts = {"max_steps": 2, "batch_size": B, "max_length": T, "lora_rank": r}
                got = measure(lambda: ob.unlearn(model, tok, data, method, opts))  # noqa: B023
                if world > 1:  # the largest process's peak
                    import torch.distributed as dist

                    peaks = [None] * world
                    dist.all_gather_object(peaks, got)
                    got = max(peaks)
                e = estimate(arch, ob.METHODS[method].memory, B, T, gpus=world, fsdp=world > 1, lora_rank=r,
                             dtype_bytes=torch.finfo(getattr(torch, a.dtype)).bits // 8, forget_rows=len(data.forget),
                             method=method)
                ratio = e["peak"] / got
                worst = max(worst, abs(ratio - 1))
                rows.append([spec, method, r, f"{e['peak'] / 2**20:.1f} ({e['peak_phase']})", f"{got / 2**20:.1f}",
                             f"{ratio:.2f}"])
                if lead:
                    print(" | ".join(map(str, rows[-1])), flush=True)
    say(f"largest deviation: {100 * worst:.0f} %")
    if lead:
        table(f"peak MiB{' per process (the largest)' if world > 1 else ''}: batch {B}, {T} tokens per row, {a.dtype}, "
              f"{world} process(es){', FSDP' if world > 1 else ''}, 2 steps",
              ["model", "method", "LoRA r", "predicted (phase)", "measured", "predicted / measured"], rows)
        write_result(f"memory_{a.dtype}_{world}proc", {"largest_deviation": round(worst, 3)}, vars(a))


if __name__ == "__main__":
    main()
