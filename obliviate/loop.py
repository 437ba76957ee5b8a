"""The one optimisation loop behind training (target, oracle) and every gradient-based unlearning method.

It owns the optimiser, the warm-up/linear-decay schedule, gradient clipping, the progress bar, the
NaN guard and (through ``accelerate``) device placement and data-parallel processes.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable, Iterable

import torch

from .utils import ObliviateError


@dataclass
class OptimConfig:
    lr: float = 1e-5
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    grad_clip: float = 1.0


def _to(x, device):
    """Move a (nested dict of) tensor(s) to ``device``."""
    if isinstance(x, dict):
        return {k: _to(v, device) for k, v in x.items()}
    return x.to(device) if torch.is_tensor(x) else x


def _shard(x, rank: int, world: int):
    """This process's contiguous share of every tensor's first dimension (a global batch split by rank)."""
    if isinstance(x, dict):
        return {k: _shard(v, rank, world) for k, v in x.items()}
    if not torch.is_tensor(x):
        return x
    size = -(-x.shape[0] // world)
    part = x[rank * size:(rank + 1) * size]
    if part.shape[0] == 0:
        raise ObliviateError(f"a batch of {x.shape[0]} cannot be split over {world} processes; raise batch_size")
    return part


def progress(desc: str, total: int):
    """A rich progress bar (quiet when OBLIVIATE_QUIET=1)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    disable = os.environ.get("OBLIVIATE_QUIET") == "1"
    p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                 TextColumn("{task.fields[info]}"), disable=disable, transient=False)
    task = p.add_task(desc, total=total, info="")
    return p, task


def optimize(model: torch.nn.Module, batches: Iterable[dict], n_steps: int,
             loss_fn: Callable[[torch.nn.Module, dict], torch.Tensor], cfg: OptimConfig, desc: str,
             params: list[torch.nn.Parameter] | None = None,
             callback: Callable[[int, torch.nn.Module], None] | None = None) -> list[float]:
    """Run ``n_steps`` optimiser steps of ``loss_fn(model, batch)`` over ``batches``; returns the loss curve.
    ``callback(step, model)`` runs after every step (steps counted from 1).

    Under several processes (``accelerate launch`` or ``torchrun``), every process draws the same global
    batch and trains on its own slice; DDP averages the gradients, so the global batch size is unchanged.

    Raises :class:`ObliviateError` if the loss stops being finite: the caller's model is then not saved.
    """
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    if not params:
        raise ObliviateError("no trainable parameters")
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    warm = int(cfg.warmup_ratio * n_steps)

    def schedule(step: int) -> float:  # linear warm-up, then linear decay to 10 % of lr
        if step < warm:
            return (step + 1) / warm
        return 1.0 - 0.9 * (step - warm) / max(1, n_steps - warm)

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    model.train()
    wrapped, opt = accelerator.prepare(model, opt)
    world, rank = accelerator.num_processes, accelerator.process_index
    curve: list[float] = []
    bar, task = progress(desc, n_steps)
    with bar:
        for step, batch in zip(range(n_steps), batches):
            if world > 1:
                batch = _shard(batch, rank, world)
            loss = loss_fn(wrapped, _to(batch, accelerator.device))
            if not torch.isfinite(loss):
                raise ObliviateError(f"{desc}: loss became {loss.item()} at step {step}; lower the learning rate")
            accelerator.backward(loss)
            if cfg.grad_clip:
                accelerator.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            curve.append(loss.item())
            bar.update(task, advance=1, info=f"loss {curve[-1]:.4f}")
            if callback is not None:
                callback(step + 1, model)
                model.train()
    model.eval()
    if len(curve) < n_steps:
        raise ObliviateError(f"{desc}: the data ran out after {len(curve)} of {n_steps} steps")
    if not all(math.isfinite(x) for x in curve):
        raise ObliviateError(f"{desc}: non-finite loss")
    return curve
