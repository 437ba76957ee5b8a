"""Gradient ascent and gradient difference, the two baselines of TOFU (Maini et al., 2024,
arXiv:2401.06121, Sec. 4).

    obliviate unlearn --method graddiff --model <target dir> --benchmark people
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from obliviate.core.options import option
from obliviate.methods.common import GradientConfig, Scope, UnlearnData, lm_logits, run_gradient_method
from obliviate.methods.losses import kl_to_ref, mean_token_nll
from obliviate.methods.gradient import FAMILY
from obliviate.methods.registry import Method, register
from obliviate.engine.plan import MemoryTerms


@dataclass
class GAConfig(GradientConfig):
    """Gradient ascent: maximise the forget NLL. No retain term, so utility is unprotected."""


def ga(model, tokenizer, data: UnlearnData, cfg: GAConfig, scope: Scope | None = None) -> dict:
    """GA (TOFU Sec. 4, "Gradient Ascent"): L = -NLL(forget), NLL averaged over answer tokens."""
    def loss(m, b):
        return -mean_token_nll(lm_logits(m, b["forget"]), b["forget"]["labels"])

    return run_gradient_method(model, tokenizer, data, cfg, loss, "unlearn ga", needs_retain=False, scope=scope)


@dataclass
class GradDiffConfig(GradientConfig):
    """Gradient difference: ascent on forget, descent on retain."""
    SEARCH = {**GradientConfig.SEARCH, "retain_weight": ("log", 0.5, 10.0), "retain_loss": ("cat", ("nll", "kl"))}

    retain_weight: float = option(1.0, "α, the weight of the retain term (OpenUnlearning's default)", ge=0)
    retain_loss: str = option("nll", "nll (TOFU) or kl: KL to the model before unlearning on retain tokens (TOFU's KL "
                                     "variant)", choices=("nll", "kl"))


def graddiff(model, tokenizer, data: UnlearnData, cfg: GradDiffConfig, scope: Scope | None = None) -> dict:
    """GradDiff (TOFU Sec. 4, "Gradient Difference"; Liu et al., 2022): L = -NLL(forget) + α·L_retain,
    L_retain = NLL(retain) or KL(p_ref || p_θ) on retain tokens."""
    ref = None
    if cfg.retain_loss == "kl":
        ref = copy.deepcopy(model).eval().requires_grad_(False)

    def loss(m, b):
        forget = -mean_token_nll(lm_logits(m, b["forget"]), b["forget"]["labels"])
        logits = lm_logits(m, b["retain"])
        if ref is None:
            keep = mean_token_nll(logits, b["retain"]["labels"])
        else:
            with torch.no_grad():
                ref_logits = lm_logits(ref, b["retain"])
            keep = kl_to_ref(logits, ref_logits, b["retain"]["labels"])
        return forget + cfg.retain_weight * keep

    return run_gradient_method(model, tokenizer, data, cfg, loss, "unlearn graddiff", needs_retain=True, scope=scope)


register(Method(
    "ga", GAConfig, ga,
    "gradient ascent on the forget set (TOFU baseline)",
    family=FAMILY, retain_term=False, scopeable=True, memory=MemoryTerms(rows=1)))
register(Method(
    "graddiff", GradDiffConfig, graddiff,
    "ascent on forget + descent (NLL or KL) on retain",
    family=FAMILY, scopeable=True))
