"""Sharded training: PyTorch FSDP2 (``fully_shard``) for the optimisation loop and the frozen models some methods
hold, and DeepSpeed ZeRO (:class:`ZeroRun`, ``OBLIVIATE_DEEPSPEED=1`` or accelerate's DeepSpeed launcher) for the
loop.

    OBLIVIATE_FSDP=1 torchrun --nproc_per_node 2 -m obliviate.cli unlearn --method npo ...
    accelerate launch --use_fsdp --num_processes 8 -m obliviate.cli unlearn --method rmu ...

FSDP is on when several processes run and either ``OBLIVIATE_FSDP=1`` or accelerate's launcher asked for it
(``ACCELERATE_USE_FSDP=true``, which ``accelerate launch --use_fsdp`` and an FSDP accelerate config set). The
launcher and the process group are accelerate's; the sharding is torch's ``fully_shard`` applied by obliviate (one
FSDP unit per decoder layer, then the root, as accelerate's FSDP2 preparation does) because accelerate shards
only on accelerators, and the same code then runs, and is tested, on CPU processes over gloo.

Each process holds 1/world of every weight, gradient and optimiser state; a layer's weights are gathered for its
forward and backward only. The caller's model is trained as usual from its point of view: the loop shards a copy
(:func:`sharded_copy`: built on the meta device and filled shard by shard, never a second full copy), moves the
original to the meta device (freeing it), and at the end gathers the weights back into it, one tensor at a time,
on every process, so the result saves as a normal Hugging Face folder. Frozen copies (RMU's frozen model,
UNDIAL's teacher, WHP's reinforced model) are sharded too (:func:`frozen_copy`), and their root reshards after
every forward pass; the NPO family's reference NLLs are computed once before training on a sharded frozen copy,
freed right after. Callbacks receive the sharded model; a bottleneck's auxiliary loss is not supported under
FSDP.
"""
from __future__ import annotations

import copy
import os

import torch



def fsdp_requested() -> bool:
    return (os.environ.get("OBLIVIATE_FSDP", "0") == "1"
            or os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true")


def group_initialized() -> bool:
    """Whether a torch.distributed process group exists in this process."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    import torch.distributed as dist

    if group_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def close(had_group: bool) -> None:
    """Destroy the process group if this run started it (under torchrun or accelerate launch; ``had_group``: one
    existed before the run, the caller's, which stays). PyTorch asks scripts to do this before they exit; a process
    that exits with the group alive leaves gloo's threads to static destructors."""
    import torch.distributed as dist

    if not had_group and group_initialized():
        dist.destroy_process_group()


def fsdp_active() -> bool:
    """Whether training shards with FSDP here: asked for, and more than one process."""
    return fsdp_requested() and world_size() > 1


def training_device(model) -> torch.device:
    """Where the training loop will run: this process's GPU when there is one and neither FSDP nor DeepSpeed is on
    (accelerate's ``prepare`` would move the model there; ``fully_shard`` and ZeRO move only each process's
    shards), else where the model is."""
    if torch.cuda.is_available() and not fsdp_active() and not deepspeed_active():
        from accelerate import PartialState

        return PartialState().device
    return next(model.parameters()).device


def _ensure_group() -> None:
    from accelerate import PartialState

    PartialState(cpu=not torch.cuda.is_available())  # initialises the process group under torchrun


def shard(model, frozen: bool = False) -> torch.nn.Module:
    """``fully_shard`` each decoder layer (found as every method finds them, :func:`obliviate.methods.gradient.rmu.
    decoder_layers`), then the root (in place); returns the model."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    from obliviate.models.anatomy import decoder_layers

    _ensure_group()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    mesh = init_device_mesh(device, (world_size(),))
    for layer in decoder_layers(model):
        fully_shard(layer, mesh=mesh)
    # a frozen model has no backward to keep the root's gathered weights for (FSDP keeps them by default): the
    # embeddings and head are freed after every forward pass
    fully_shard(model, mesh=mesh, reshard_after_forward=True if frozen else None)
    return model


def sharded_copy(model, frozen: bool = False) -> torch.nn.Module:
    """A copy of ``model`` sharded over the processes without ever holding a second full copy: the module is
    copied with its parameters and buffers on the meta device, sharded (:func:`shard`), given storage for this
    process's shards only, and filled from ``model``'s weights (each process slices its shards locally: every
    process holds the same full model, so no communication is needed). ``requires_grad`` flags are kept."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    memo = {}
    for p in model.parameters():
        memo[id(p)] = torch.nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
    for b in model.buffers():
        memo[id(b)] = torch.empty_like(b, device="meta")
    work = shard(copy.deepcopy(model, memo), frozen)
    device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    work.to_empty(device=device)
    params, buffers = dict(model.named_parameters()), dict(model.named_buffers())
    with torch.no_grad():
        for name, p in work.named_parameters():
            full = params[name].detach().to(device)
            if isinstance(p, DTensor):
                full = distribute_tensor(full, p.device_mesh, p.placements, src_data_rank=None).to_local()
                p.to_local().copy_(full)
            else:
                p.copy_(full)
        for name, b in work.named_buffers():  # rotary tables and other non-persistent buffers
            b.copy_(buffers[name])
    return work


def _chosen_names(model, params: list[torch.nn.Parameter]) -> set[str]:
    """The names of ``params`` in ``model``, to find the same parameters in a copy."""
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)] for p in params if id(p) in names}


def is_sharded(model) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def frozen_copy(model) -> torch.nn.Module:
    """A frozen copy of ``model`` for reference forwards: sharded under FSDP (every process runs its forwards in
    step with the others, as the training loop does), a whole copy on the training device otherwise."""
    if fsdp_active():
        return sharded_copy(model, frozen=True).eval().requires_grad_(False)
    frozen = copy.deepcopy(model).eval().requires_grad_(False)
    if deepspeed_active() and torch.cuda.is_available():  # the model waits on the host for ZeRO; batches are on the GPU
        frozen = frozen.to(torch.device("cuda", torch.cuda.current_device()))
    return frozen


class ShardedRun:
    """The loop's view of FSDP: ``work`` is a sharded copy of ``model`` (whose own storage is released); ``params``
    maps the caller's chosen parameters to the copy's by name; :meth:`finish` gathers the trained weights back
    into ``model`` on every process."""

    def __init__(self, model, params: list[torch.nn.Parameter]):
        chosen = _chosen_names(model, params)
        self.model, self.device = model, next(model.parameters()).device
        from obliviate.models.anatomy import decoder_layers

        n_layers = len(decoder_layers(model))
        self.work = sharded_copy(model)
        model.to("meta")
        import sys

        import torch.distributed as dist

        if dist.get_rank() == 0:
            print(f"obliviate: FSDP2: {n_layers} decoder layers and the root sharded over {world_size()} processes",
                  file=sys.stderr)
        self.params = [p for n, p in self.work.named_parameters() if n in chosen]

    def finish(self) -> None:
        """Gather the trained weights into ``model``, one tensor at a time (no process ever holds a second full
        copy, and a device holds at most one gathered tensor beyond its shards)."""
        from torch.distributed.tensor import DTensor

        self.model.to_empty(device=self.device)
        inner = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        if hasattr(inner, "tie_weights"):  # moving to meta gave tied weights separate parameters: tie them again
            inner.tie_weights()
        params = dict(self.model.named_parameters())
        trained = dict(self.work.named_parameters())
        if params.keys() != trained.keys():  # never hand back a model with weights left uninitialised
            raise RuntimeError(f"FSDP: the sharded copy's parameters differ from the model's: "
                               f"{sorted(params.keys() ^ trained.keys())[:5]}")
        with torch.no_grad():
            for name, p in trained.items():
                params[name].copy_((p.full_tensor() if isinstance(p, DTensor) else p).to(self.device))
        for b_name, buf in self.work.named_buffers():  # rotary tables and other non-persistent buffers
            owner, _, leaf = b_name.rpartition(".")
            mod = self.model.get_submodule(owner) if owner else self.model
            if leaf in mod._buffers:
                mod._buffers[leaf] = buf.detach().to(self.device).clone()
        del self.work


def deepspeed_requested() -> bool:
    return (os.environ.get("OBLIVIATE_DEEPSPEED", "0") == "1"
            or os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true")


def deepspeed_active() -> bool:
    """Whether training partitions with DeepSpeed ZeRO here: asked for, and more than one process."""
    return deepspeed_requested() and world_size() > 1


def zero_config(model, grad_clip: float) -> dict:
    """The DeepSpeed configuration: the file accelerate's launcher names (``ACCELERATE_DEEPSPEED_CONFIG_FILE``,
    from an accelerate config's ``deepspeed_config_file``) or ``OBLIVIATE_DEEPSPEED_CONFIG``, else ZeRO stage 3
    (or accelerate's ``zero_stage`` and offload devices); ``"auto"`` fields are resolved as obliviate trains: one
    optimiser step per batch, its gradient clipping, the model's dtype, a torch optimiser."""
    import json

    path = os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE") or os.environ.get("OBLIVIATE_DEEPSPEED_CONFIG")
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                cfg = json.load(f)
        except (OSError, ValueError) as e:
            from obliviate.core.utils import ObliviateError

            raise ObliviateError(f"DeepSpeed: cannot read the config {path}: {e}") from None
    else:
        cfg = {}
    zero = cfg.setdefault("zero_optimization", {})
    if zero.get("stage", "auto") == "auto":
        zero["stage"] = int(os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", "3"))
    for env, key in (("ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE", "offload_param"),
                     ("ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE", "offload_optimizer")):
        device = os.environ.get(env, "none")
        if device != "none":
            zero.setdefault(key, {"device": device})
    dtype = next(model.parameters()).dtype
    for key, on in (("bf16", dtype == torch.bfloat16), ("fp16", dtype == torch.float16)):
        if cfg.get(key, {}).get("enabled", "auto") == "auto":
            cfg[key] = {**cfg.get(key, {}), "enabled": on}
    for key, value in {"train_micro_batch_size_per_gpu": 1, "gradient_accumulation_steps": 1,
                       "gradient_clipping": float(grad_clip or 0.0)}.items():
        if cfg.get(key, "auto") == "auto":
            cfg[key] = value
    if cfg.get("train_batch_size") == "auto":
        del cfg["train_batch_size"]
    cfg.setdefault("zero_allow_untested_optimizer", True)  # obliviate's AdamW and its learning-rate schedule
    cfg.setdefault("zero_force_ds_cpu_optimizer", False)
    return cfg


class ZeroRun:
    """The loop's view of DeepSpeed ZeRO (stage 3 by default): ``work`` is a copy of ``model`` that
    ``deepspeed.initialize`` partitions over the processes (each holds 1/world of every weight, gradient and
    optimiser state); :meth:`start` wraps it with the loop's optimiser; :meth:`finish` gathers the trained weights
    back into ``model``, one tensor at a time, on every process. Frozen copies (RMU, UNDIAL) are not partitioned."""

    def __init__(self, model, params: list[torch.nn.Parameter], grad_clip: float):
        chosen = _chosen_names(model, params)
        self.model, self.grad_clip = model, grad_clip
        self.work = copy.deepcopy(model)
        self.params = [p for n, p in self.work.named_parameters() if n in chosen]
        self.engine = None

    def start(self, optimizer):
        import deepspeed

        config = zero_config(self.work, self.grad_clip)
        self.engine, *_ = deepspeed.initialize(model=self.work, optimizer=optimizer, config=config)
        import sys

        import torch.distributed as dist

        if dist.get_rank() == 0:
            print(f"obliviate: DeepSpeed ZeRO stage {config['zero_optimization']['stage']} over {world_size()} "
                  "processes", file=sys.stderr)
        self.engine.train()  # DeepSpeedEngine.train returns nothing
        return self.engine

    def finish(self) -> None:
        import deepspeed

        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, p in self.work.named_parameters():
                with deepspeed.zero.GatheredParameters([p]):
                    params[name].copy_(p.data.to(params[name].device))
        self.engine.destroy()
        self.engine = self.work = None
