"""The unlearning methods, one registry (:mod:`.registry`) filled by the family folders.

Each method maps a name to its config dataclass (fields carry the paper's defaults) and a function
``run(model, tokenizer, data, config) -> info`` that unlearns ``model`` in place. The public
:func:`obliviate.unlearn` copies the model first, so callers' models are never modified. A family is a folder:
``gradient/``, ``editing/``, ``guards/``, ``exact/``, ``bottleneck/`` (see ``docs/contributing.md``).
"""
from __future__ import annotations

import copy
from dataclasses import asdict

import obliviate.models.lora as lora
from obliviate.core.utils import ObliviateError, seed_everything
from obliviate.engine.distributed import training_device
from obliviate.methods.common import GradientConfig, UnlearnData
from obliviate.methods.registry import FAMILIES, METHODS, Family, Method, get_method, method_config

import obliviate.methods.gradient  # noqa: E402,F401  (each family folder registers its methods, in this order)
import obliviate.methods.editing  # noqa: E402,F401
import obliviate.methods.guards  # noqa: E402,F401
import obliviate.methods.exact  # noqa: E402,F401
import obliviate.methods.bottleneck  # noqa: E402,F401

DEFAULT_METHOD = "npo"


def unlearn(model, tokenizer, data: UnlearnData, method: str = DEFAULT_METHOD, config: dict | GradientConfig | None = None):
    """Return ``(unlearned_model, info)``; ``model`` itself is left untouched (a deep copy is trained)."""
    m = get_method(method)
    cfg = method_config(method, config)
    use_lora = getattr(cfg, "lora_rank", 0) > 0
    if use_lora and not m.lora:
        raise ObliviateError(f"{method}: LoRA does not apply; this method trains the model's own weights")
    new = copy.deepcopy(model)
    if m.trains:  # on the device the loop trains on from the start: reference passes and frozen copies run there
        new = new.to(training_device(new))
    if use_lora:
        seed_everything(cfg.seed)  # the adapters' random initialisation: same seed, same adapters
        new = lora.wrap(new, cfg.lora_rank, cfg.lora_alpha, cfg.lora_targets)
    info = m.run(new, tokenizer, data, cfg)
    if m.family.returns_model:  # a guard: the weights stay; the returned model is the guarded one
        new, info = info
    if use_lora:
        new = lora.unwrap(new, cfg.lora_merge)
    new.eval()
    return new, {"method": method, "config": asdict(cfg), **info}


__all__ = ["DEFAULT_METHOD", "FAMILIES", "METHODS", "Family", "Method", "UnlearnData", "get_method", "method_config",
           "unlearn"]
