"""The method registry: a :class:`Method` is one file in its family's folder (``gradient/``, ``editing/``,
``guards/``, ``exact/``, ``bottleneck/``) that calls :func:`register`; a :class:`Family` is declared once, in its
folder's ``__init__.py``, with what is special about it. Nothing outside a family's folder branches on it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from obliviate.core.options import from_dict
from obliviate.core.registry import Registry
from obliviate.core.utils import ObliviateError
from obliviate.engine.plan import MemoryTerms


@dataclass(frozen=True)
class Family:
    """What a method family shares and what is special about it: whether its methods run gradient steps,
    whether ``run`` returns a new model with its info (a guard wraps the model instead of changing it), what the
    family needs done before a run (``prepare(model, tokenizer, bench)``: the exact family gives a loaded ensemble
    its shards' rows back), and the evidence it adds to an unlearned model's results (``evidence(model, info,
    tokenizer, bench, seed)``: the guards' classifier rates). Model kinds a family stores on disk are registered
    with :func:`obliviate.models.register_kind`."""

    name: str
    summary: str
    trains: bool = True
    returns_model: bool = False
    prepare: Callable | None = None
    evidence: Callable | None = None  # (model, info, tokenizer, bench, seed) -> entries added to the results


@dataclass(frozen=True)
class Method:
    """A registered method: its config dataclass (the paper's defaults), ``run(model, tokenizer, data, config)``,
    a one-line summary, its family, four capability flags and what it adds to ``obliviate plan``'s memory model."""

    name: str
    config: type
    run: Callable
    summary: str
    family: Family
    retain_term: bool = True  # whether the loss has a term that protects retain data
    scopeable: bool = False  # whether `localized` / `uoe` can run its loss on part of the model
    lora: bool = True  # whether it can train LoRA adapters instead of the weights
    moe_only: bool = False  # whether it needs a Mixture-of-Experts model
    memory: MemoryTerms = MemoryTerms()  # what it adds to obliviate plan's memory model

    @property
    def trains(self) -> bool:
        """Whether it runs gradient steps on the model (not an edit, a guard, a code deletion or a shard cut)."""
        return self.family.trains


FAMILIES: Registry[Family] = Registry("method family")
METHODS: Registry[Method] = Registry("method")


def register(method: Method) -> Method:
    """Register ``method`` under its name (once; its family must be registered)."""
    if FAMILIES.get(method.family.name) is not method.family:
        raise ValueError(f"method {method.name!r}: family {method.family.name!r} is not registered")
    return METHODS.register(method.name, method)


def register_family(family: Family) -> Family:
    return FAMILIES.register(family.name, family)


def get_method(name: str) -> Method:
    return METHODS.lookup(name)


def method_config(method: str, config=None):
    """The method's config dataclass from a dict of overrides (values may be text, as ``--set`` gives them);
    unknown keys and values that break an option's constraint are an error naming the method and option."""
    m = get_method(method)
    if config is None or isinstance(config, dict):
        return from_dict(m.config, config, f"method {method}")
    if not isinstance(config, m.config):
        raise ObliviateError(f"method {method!r} takes a {m.config.__name__}, got {type(config).__name__}")
    return config
