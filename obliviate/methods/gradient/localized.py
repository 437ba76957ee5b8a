"""Mechanistic (localised) unlearning: find the MLPs that carry the forget facts, then unlearn only there.

Guo et al., 2024, "Mechanistic Unlearning: Robust Knowledge Unlearning and Editing via Mechanistic
Localization" (arXiv:2410.12949) show that unlearning restricted to the fact-lookup MLPs is more robust to
relearning and to other prompt formats than unlearning everywhere. The localisation here scores each layer's
MLP output by its effect on the forget answers' NLL when it is mean-ablated (replaced by its mean over retain
data):

* ``locate="attribution"`` (default): attribution patching (Nanda, 2023; Syed et al., 2023,
  arXiv:2310.10348), the first-order estimate  effect_ℓ ≈ Σ_t (ā_ℓ - a_ℓ,t) · ∂NLL/∂a_ℓ,t,  one backward pass;
* ``locate="patching"``: activation patching, the exact NLL increase, one forward pass per layer.

With ``contrast`` (default) a layer's score is its effect on the forget answers minus its effect on retain
answers, so that layers every answer needs (the first MLP of a small model, say) are not mistaken for the
place where the forget facts live; the paper localises fact-lookup components the same way, by their
specific contribution to the target facts. The top ``n_components`` MLPs are then trained with a chosen loss (``loss``: ga, graddiff, npo, ...), every
other parameter frozen. The located components and every layer's score are part of the run's output.

    obliviate unlearn --method localized --model <target dir> --benchmark people --set loss=npo
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from obliviate.data.format import IGNORE, encode, encoded_batches
from obliviate.core.options import OptionError, option
from obliviate.core.utils import ObliviateError
from obliviate.methods.common import GradientConfig, Scope, UnlearnData, forward_nll
from obliviate.models.anatomy import mlp_modules
from obliviate.methods.gradient import FAMILY
from obliviate.methods.registry import Method, register


@dataclass
class ScopedLossConfig(GradientConfig):
    """Fields shared by the methods that run another method's loss on part of the model."""

    loss: str = option("npo", "the unlearning loss run on the located part: any method `obliviate ls methods` marks "
                              "scopeable (ga, graddiff, npo, simnpo, idk, idkdpo, flat, altpo, undial, wga, "
                              "satimp, ceu, pdu)")
    loss_options: dict = option(help="that loss's own options, e.g. {retain_weight: 2.0, beta: 0.1}", factory=dict)

    def check(self) -> None:
        inner_config(self)  # the inner loss and its options are checked with the rest, before any model work


def inner_config(cfg: ScopedLossConfig):
    """The config of the registered method whose loss ``cfg.loss`` names: the shared fields, then ``loss_options``."""
    from obliviate.methods.registry import METHODS, method_config

    allowed = sorted(n for n, m in METHODS.items() if m.scopeable)
    if cfg.loss not in allowed:
        raise OptionError(f"loss={cfg.loss!r}: must be one of {', '.join(allowed)}")
    shared = {f.name: getattr(cfg, f.name) for f in fields(GradientConfig)}
    try:
        return method_config(cfg.loss, {**shared, **cfg.loss_options})
    except ObliviateError as e:
        raise OptionError(f"loss_options for loss {cfg.loss}: {e}") from None


def inner_method(cfg: ScopedLossConfig):
    """The registered method whose loss ``owner`` runs, and its config."""
    from obliviate.methods.registry import METHODS

    return METHODS[cfg.loss].run, inner_config(cfg)


@dataclass
class LocalizedConfig(ScopedLossConfig):
    SEARCH = {**GradientConfig.SEARCH, "n_components": ("int", 1, 3)}
    locate: str = option("attribution", "attribution (attribution patching) or patching (activation patching)",
                         choices=("attribution", "patching"))
    n_components: int | None = option(None, "MLPs to unlearn (default: a quarter of the layers, at least one)", ge=1)
    locate_examples: int = option(64, "forget examples used to locate (and as many retain examples for the mean)",
                                  ge=1)
    contrast: bool = option(True, "score = effect on forget - effect on retain (false: effect on forget only)")


def _output(out):
    return out[0] if isinstance(out, tuple) else out


def _n_answer_tokens(tokenizer, examples, max_length: int) -> int:
    return sum(sum(1 for x in encode(tokenizer, e, max_length)["labels"][1:] if x != IGNORE) for e in examples)


@torch.no_grad()
def mean_mlp_outputs(model, tokenizer, examples, max_length: int) -> list[torch.Tensor]:
    """Each MLP's output averaged over the real tokens of ``examples``, [(D,)] per layer."""
    mods = mlp_modules(model, "localized")
    sums = [0.0] * len(mods)
    count = 0
    dev = next(model.parameters()).device

    for b in encoded_batches(tokenizer, examples, max_length):
        mask = b["attention_mask"].to(dev).unsqueeze(-1).float()
        handles = []
        for i, (_, m) in enumerate(mods):
            def hook(_m, _in, out, i=i, mask=mask):
                sums[i] = sums[i] + (_output(out).float() * mask).sum((0, 1))
            handles.append(m.register_forward_hook(hook))
        try:
            model(input_ids=b["input_ids"].to(dev), attention_mask=b["attention_mask"].to(dev))
        finally:
            for h in handles:
                h.remove()
        count += int(mask.sum())
    return [s / max(count, 1) for s in sums]


def attribution_scores(model, tokenizer, forget, means, max_length: int) -> list[float]:
    """Attribution patching: per layer, Σ_t (ā - a_t)·∂NLL/∂a_t, in nats per answer token."""
    mods = mlp_modules(model, "localized")
    scores = torch.zeros(len(mods))
    dev = next(model.parameters()).device
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        for b in encoded_batches(tokenizer, forget, max_length):
            b = {k: v.to(dev) for k, v in b.items()}
            acts = {}
            handles = []
            for i, (_, m) in enumerate(mods):
                def hook(_m, _in, out, i=i):
                    a = _output(out)
                    if not a.requires_grad:  # frozen parameters: make the activation a leaf that takes a gradient
                        a = a.detach().requires_grad_(True)
                        acts[i] = a
                        return (a, *out[1:]) if isinstance(out, tuple) else a
                    acts[i] = a
                    a.retain_grad()
                handles.append(m.register_forward_hook(hook))
            try:
                with torch.enable_grad():
                    forward_nll(model, b).sum().backward()
            finally:
                for h in handles:
                    h.remove()
            mask = b["attention_mask"].unsqueeze(-1).float()
            for i, a in acts.items():
                delta = means[i].to(a.dtype) - a.detach()
                scores[i] += float((delta * a.grad * mask).sum())
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)
    return (scores / max(1, _n_answer_tokens(tokenizer, forget, max_length))).tolist()


@torch.no_grad()
def patching_scores(model, tokenizer, forget, means, max_length: int) -> list[float]:
    """Activation patching: per layer, the increase of the NLL (nats per answer token) when that MLP is
    mean-ablated."""
    mods = mlp_modules(model, "localized")
    dev = next(model.parameters()).device

    def total_nll(ablate: int | None) -> float:
        handle = None
        if ablate is not None:
            def hook(_m, _in, out):
                a = _output(out)
                rep = means[ablate].to(a.dtype).expand_as(a)
                return (rep, *out[1:]) if isinstance(out, tuple) else rep
            handle = mods[ablate][1].register_forward_hook(hook)
        try:
            return sum(float(forward_nll(model, {k: v.to(dev) for k, v in b.items()}).sum())
                       for b in encoded_batches(tokenizer, forget, max_length))
        finally:
            if handle is not None:
                handle.remove()

    clean, n = total_nll(None), max(1, _n_answer_tokens(tokenizer, forget, max_length))
    return [(total_nll(i) - clean) / n for i in range(len(mods))]


def locate(model, tokenizer, data: UnlearnData, cfg: LocalizedConfig) -> list[dict]:
    """Every layer's MLP with its score, highest first."""
    if not data.retain:
        raise ObliviateError("localized: needs retain data (the mean activation that ablation patches in)")
    n = cfg.locate_examples
    forget, retain = data.forget[:n], data.retain[:n]
    model.eval()
    means = mean_mlp_outputs(model, tokenizer, retain, cfg.max_length)
    score_fn = attribution_scores if cfg.locate == "attribution" else patching_scores
    on_forget = score_fn(model, tokenizer, forget, means, cfg.max_length)
    on_retain = score_fn(model, tokenizer, retain, means, cfg.max_length) if cfg.contrast else [0.0] * len(on_forget)
    rows = [{"layer": i, "module": name, "score": f - r, "forget_effect": f, "retain_effect": r}
            for i, ((name, _), f, r) in enumerate(zip(mlp_modules(model, "localized"), on_forget, on_retain))]
    return sorted(rows, key=lambda r: -r["score"])


def localized(model, tokenizer, data: UnlearnData, cfg: LocalizedConfig) -> dict:
    run, inner_cfg = inner_method(cfg)
    if not data.forget:
        raise ObliviateError("localized: the forget set is empty")
    ranked = locate(model, tokenizer, data, cfg)
    k = cfg.n_components if cfg.n_components is not None else max(1, math.ceil(len(ranked) / 4))
    if not 1 <= k <= len(ranked):
        raise ObliviateError(f"localized: n_components must be in 1..{len(ranked)}, got {cfg.n_components}")
    chosen = ranked[:k]
    prefixes = tuple(r["module"] + "." for r in chosen)
    lora = any("lora_" in n for n, _ in model.named_parameters())
    params = [(n, p) for n, p in model.named_parameters()
              if n.startswith(prefixes) and (("lora_" in n) if lora else True)]
    if not params:
        hint = " (with LoRA, lora_targets must include the MLP projections)" if lora else ""
        raise ObliviateError(f"localized: the located modules {[r['module'] for r in chosen]} have no trainable "
                             f"parameters{hint}")
    scope = Scope(params=[p for _, p in params], label=f"{k} located MLP(s)")
    out = run(model, tokenizer, data, inner_cfg, scope=scope)
    return {**out, "located": chosen, "layer_scores": sorted(ranked, key=lambda r: r["layer"]),
            "updated_parameters": [n for n, _ in params]}


register(Method(
    "localized", LocalizedConfig, localized,
    "locate the MLPs carrying the forget facts (attribution or activation patching), run a chosen loss on "
    "them only",
    family=FAMILY))
