"""The one optimisation loop behind training (target, oracle) and every gradient-based unlearning method.

It owns the optimiser, the warm-up/linear-decay schedule, gradient clipping, the progress bar, the
NaN guard and (through ``accelerate``) device placement and data-parallel processes.
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import torch

from obliviate.core.utils import ObliviateError


@dataclass
class OptimConfig:
    lr: float = 1e-5
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    grad_clip: float = 1.0
    bf16: bool = False  # run the forward and the loss under bfloat16 autocast (weights and optimiser stay float32)


def _to(x, device):
    """Move a (nested dict of) tensor(s) to ``device``."""
    if isinstance(x, dict):
        return {k: _to(v, device) for k, v in x.items()}
    return x.to(device) if torch.is_tensor(x) else x


def _shard(x, rank: int, world: int):
    """This process's contiguous share of every tensor's first dimension (a global batch split by rank). A batch
    with fewer rows than processes (an epoch's last, short batch) gives each process one row, repeating rows, so
    that every process takes part in the gradient average (a 1-row batch then trains as it would on one process)."""
    if isinstance(x, dict):
        return {k: _shard(v, rank, world) for k, v in x.items()}
    if not torch.is_tensor(x):
        return x
    n = x.shape[0]
    if n < world:
        return x[rank % n:rank % n + 1]
    size = -(-n // world)
    part = x[rank * size:(rank + 1) * size]
    return part if part.shape[0] else x[n - 1:]


class PlainProgress:
    """Progress as plain lines on stderr, for output that is not a terminal (CI logs, pipes, files), where a
    live bar shows nothing until it ends: a line when it starts, then at most every ``every`` seconds, then at
    the end. Same interface as the rich bar :func:`progress` returns."""

    def __init__(self, desc: str, total: int, every: float = 10.0, announce: bool = False):
        self.desc, self.total, self.every, self.announce = desc, total, every, announce
        self.done, self.info, self.t0, self.last = 0, "", 0.0, 0.0

    def __enter__(self):
        self.t0 = self.last = time.time()
        self._line("started")
        return self

    def __exit__(self, *exc):
        self._line("done" if exc[0] is None else "stopped")
        return False

    def update(self, task=None, advance: float = 0, info: str | None = None) -> None:
        self.done += advance
        changed = info is not None and info != self.info
        if info is not None:
            self.info = info
        if (self.announce and changed) or time.time() - self.last >= self.every:
            self._line()

    def _line(self, state: str = "") -> None:
        self.last = time.time()
        pct = f" ({100 * self.done / self.total:.0f} %)" if self.total else ""
        extra = "; ".join(x for x in (state, self.info) if x)
        spent = self.last - self.t0
        eta = ""
        if self.total and 0 < self.done < self.total and not state:
            eta = f", about {spent * (self.total - self.done) / self.done:.0f} s left"
        print(f"{self.desc}: {self.done:g}/{self.total}{pct}, {spent:.0f} s{eta}{'; ' + extra if extra else ''}",
              file=sys.stderr, flush=True)


def progress(desc: str, total: int, announce: bool = False):
    """A progress display on stderr (stdout stays clean for results): a rich bar on a terminal, plain lines
    otherwise (:class:`PlainProgress`; with ``announce``, also a line whenever the info text changes, e.g. the
    attack and model being worked on); nothing when ``OBLIVIATE_QUIET=1``. Returns ``(bar, task)``."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    disable = os.environ.get("OBLIVIATE_QUIET") == "1"
    console = Console(stderr=True)
    if not disable and not console.is_terminal:
        return PlainProgress(desc, total, announce=announce), None
    p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                 TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"), disable=disable,
                 transient=False, console=console)
    task = p.add_task(desc, total=total, info="")
    return p, task


def optimize(model: torch.nn.Module, batches: Iterable[dict], n_steps: int,
             loss_fn: Callable[[torch.nn.Module, dict], torch.Tensor], cfg: OptimConfig, desc: str,
             params: list[torch.nn.Parameter] | None = None,
             callback: Callable[[int, torch.nn.Module], None] | None = None) -> list[float]:
    """Run ``n_steps`` optimiser steps of ``loss_fn(model, batch)`` over ``batches``; returns the loss curve.
    ``callback(step, model)`` runs after every step (steps counted from 1); a callback that returns True stops
    the run there (early stopping), and the curve is then shorter than ``n_steps``.

    Under several processes (``accelerate launch`` or ``torchrun``), every process draws the same global
    batch and trains on its own slice; DDP averages the gradients, so the global batch size is unchanged.

    Raises :class:`ObliviateError` if the loss stops being finite: the caller's model is then not saved.
    """
    from accelerate import Accelerator

    from obliviate.engine.distributed import ShardedRun, ZeroRun, deepspeed_active, fsdp_active

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    if not params:
        raise ObliviateError("no trainable parameters")
    sharded = ShardedRun(model, params) if fsdp_active() else None  # FSDP2: see obliviate.engine.distributed
    zero = ZeroRun(model, params, cfg.grad_clip) if sharded is None and deepspeed_active() else None  # ZeRO
    run = sharded or zero  # the sharded copy the loop trains instead of ``model``, if any
    if run is not None:
        params = run.params
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    warm = int(cfg.warmup_ratio * n_steps)

    def schedule(step: int) -> float:  # linear warm-up, then linear decay to 10 % of lr
        if step < warm:
            return (step + 1) / warm
        return 1.0 - 0.9 * (step - warm) / max(1, n_steps - warm)

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    if zero is not None:  # DeepSpeed partitions the copy, averages the gradients, clips and steps
        wrapped = zero.start(opt)
    elif sharded is None:
        model.train()
        wrapped, opt = accelerator.prepare(model, opt)
    else:  # already sharded; gradients are reduce-scattered (averaged) by FSDP itself
        wrapped = sharded.work.train()
    world, rank = accelerator.num_processes, accelerator.process_index
    if zero is not None:  # accelerate's own state does not know DeepSpeed's processes here
        import torch.distributed as dist

        world, rank = dist.get_world_size(), dist.get_rank()
    curve: list[float] = []
    stopped = False
    bar, task = progress(desc, n_steps)
    with bar:
        for step, batch in zip(range(n_steps), batches):
            if world > 1:
                batch = _shard(batch, rank, world)
            with torch.autocast(accelerator.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                loss = loss_fn(wrapped, _to(batch, accelerator.device))
            if not torch.isfinite(loss):
                raise ObliviateError(f"{desc}: loss became {loss.item()} at step {step}; lower the learning rate")
            if zero is not None:
                wrapped.backward(loss)
                wrapped.step()  # clips (its gradient_clipping), steps and zeroes the gradients
            else:
                accelerator.backward(loss)
                if cfg.grad_clip and sharded is not None:
                    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)  # the global norm over the shards
                elif cfg.grad_clip:
                    accelerator.clip_grad_norm_(params, cfg.grad_clip)
                opt.step()
                opt.zero_grad(set_to_none=True)
            sched.step()
            curve.append(loss.item())
            bar.update(task, advance=1, info=f"loss {curve[-1]:.4f}")
            if callback is not None:
                live = model if run is None else run.work
                stopped = bool(callback(step + 1, live))
                live.train()
                if stopped:
                    break
    if run is not None:
        run.finish()
    model.eval()
    if len(curve) < n_steps and not stopped:
        raise ObliviateError(f"{desc}: the data ran out after {len(curve)} of {n_steps} steps")
    if not all(math.isfinite(x) for x in curve):
        raise ObliviateError(f"{desc}: non-finite loss")
    return curve
