"""The unlearning methods, in one registry.

Each entry maps a name to its config dataclass (fields carry the paper's defaults) and a function
``run(model, tokenizer, data, config) -> info`` that unlearns ``model`` in place. The public
:func:`obliviate.unlearn` copies the model first, so callers' models are never modified.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Callable

from ..utils import ObliviateError
from .common import GradientConfig, UnlearnData
from .gradient import GAConfig, GradDiffConfig, ga, graddiff
from .npo import NPOConfig, npo


@dataclass(frozen=True)
class Method:
    config: type
    run: Callable
    summary: str


METHODS: dict[str, Method] = {
    "ga": Method(GAConfig, ga, "gradient ascent on the forget set (TOFU baseline)"),
    "graddiff": Method(GradDiffConfig, graddiff, "ascent on forget + descent (NLL or KL) on retain"),
    "npo": Method(NPOConfig, npo, "Negative Preference Optimization, beta=0.1, + retain NLL (NPO-RT)"),
}
DEFAULT_METHOD = "npo"


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ObliviateError(f"unknown method {name!r}; expected one of {', '.join(sorted(METHODS))}")
    return METHODS[name]


def unlearn(model, tokenizer, data: UnlearnData, method: str = DEFAULT_METHOD, config: dict | GradientConfig | None = None):
    """Return ``(unlearned_model, info)``; ``model`` itself is left untouched (a deep copy is trained)."""
    m = get_method(method)
    cfg = config if isinstance(config, m.config) else m.config.from_dict(config if isinstance(config, dict) else None)
    new = copy.deepcopy(model)
    info = m.run(new, tokenizer, data, cfg)
    new.eval()
    return new, {"method": method, "config": asdict(cfg), **info}


__all__ = ["DEFAULT_METHOD", "METHODS", "Method", "UnlearnData", "get_method", "unlearn"]
