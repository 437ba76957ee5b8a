"""Model anatomy every part of obliviate shares: where a causal LM keeps its decoder blocks, how to run only the
first ones, and whether its forward takes ``use_cache`` (methods, evaluation, distributed runs and the memory
planner read a model through these, never through their own attribute paths)."""
from __future__ import annotations

import contextlib
import functools

import torch

from obliviate.core.utils import ObliviateError


def unwrapped(model) -> torch.nn.Module:
    """The transformers model inside a DDP / DeepSpeed wrapper and a peft model."""
    base = getattr(model, "module", model)
    return base.get_base_model() if hasattr(base, "get_base_model") else base


def decoder_stack(model) -> tuple[torch.nn.Module, str]:
    """(the module holding the decoder blocks, the attribute name of their ModuleList)."""
    base = unwrapped(model)
    for path in ("model.layers", "model.decoder.layers", "transformer.h", "gpt_neox.layers"):
        *owner_path, attr = path.split(".")
        owner = base
        for part in owner_path:
            owner = getattr(owner, part, None)
            if owner is None:
                break
        if owner is not None and isinstance(getattr(owner, attr, None), torch.nn.ModuleList):
            return owner, attr
    raise ObliviateError(f"cannot find the decoder layers of {type(base).__name__}")


def decoder_layers(model) -> torch.nn.ModuleList:
    """The list of transformer blocks of a causal LM (Llama-, Qwen-, Mistral-, GPT-2-style)."""
    owner, attr = decoder_stack(model)
    return getattr(owner, attr)


@contextlib.contextmanager
def stop_after(model, layer: int):
    """Run only decoder layers 0..``layer`` while the context is open (the blocks above are taken out of the
    stack and put back on exit), so that a forward pass computes, and autograd keeps, nothing above ``layer``."""
    owner, attr = decoder_stack(model)
    full = getattr(owner, attr)
    setattr(owner, attr, torch.nn.ModuleList(list(full)[:layer + 1]))
    try:
        yield
    finally:
        setattr(owner, attr, full)


def no_cache(model) -> dict:
    """``{"use_cache": False}`` for a model whose forward takes it (a no-grad pass would otherwise keep every
    layer's keys and values until it returns), else nothing (a custom wrapper). Decided once per model class."""
    return {"use_cache": False} if _takes_use_cache(type(model)) else {}


@functools.lru_cache(maxsize=None)
def _takes_use_cache(cls) -> bool:
    import inspect

    try:
        params = inspect.signature(cls.forward).parameters
    except (TypeError, ValueError, AttributeError):
        return False
    return "use_cache" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def pop_aux_losses(model) -> torch.Tensor | None:
    """The training-only loss terms the model's modules added during the last forward pass, summed, and reset.
    A module that has one (a bottleneck's reconstruction terms) keeps it in its ``aux_loss`` attribute; training
    adds it to the language-model loss."""
    total = None
    for module in model.modules():
        aux = getattr(module, "aux_loss", None)
        if isinstance(aux, torch.Tensor):
            total = aux if total is None else total + aux
            module.aux_loss = None
    return total


def mlp_modules(model, who: str) -> list[tuple[str, torch.nn.Module]]:
    """(qualified name, module) of each decoder layer's MLP block (a Mixture-of-Experts block counts as one); a
    model without one is an error naming ``who`` needed it."""
    names = {id(m): n for n, m in model.named_modules()}
    out = []
    for i, layer in enumerate(decoder_layers(model)):
        mlp = getattr(layer, "mlp", None) or getattr(layer, "block_sparse_moe", None)
        if mlp is None:
            raise ObliviateError(f"{who}: decoder layer {i} of {type(model).__name__} has no MLP block")
        out.append((names[id(mlp)], mlp))
    return out


def down_projs(model, who: str) -> list[torch.nn.Linear]:
    """Each decoder layer's MLP down-projection (``W_out``: (hidden, intermediate)); its columns are the value
    vectors. Mixture-of-Experts models have no single one per layer: a clear error."""
    out = []
    for name, mlp in mlp_modules(model, who):
        down = getattr(mlp, "down_proj", None)
        if not isinstance(down, torch.nn.Linear):
            raise ObliviateError(f"{who}: {name} has no dense down_proj (Mixture-of-Experts models are not supported)")
        out.append(down)
    return out


def held_weights(model) -> tuple[torch.nn.Module, str | None]:
    """The module holding the weights ``model`` runs on, and what is dropped by taking it. A model kind that wraps
    its weights in inference-time behaviour (a guarded model) says so with ``weights_of()``; any other model is
    its own weights. An attack that fine-tunes (relearning) works on these weights, as whoever holds them would."""
    of = getattr(model, "weights_of", None)
    return of() if callable(of) else (model, None)
