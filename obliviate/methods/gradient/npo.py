"""Negative Preference Optimization (Zhang, Lin, Bai & Mei, 2024, "Negative Preference Optimization: From
Catastrophic Collapse to Effective Unlearning", arXiv:2404.05868).

    obliviate unlearn --method npo --model <target dir> --benchmark people
"""
from __future__ import annotations

from dataclasses import dataclass

from obliviate.core.options import option
from obliviate.methods.common import GradientConfig, Scope, UnlearnData, forward_nll, reference_nll, run_gradient_method, with_retain_nll
from obliviate.methods.losses import npo_loss, simnpo_loss
from obliviate.methods.gradient import FAMILY
from obliviate.methods.registry import Method, register
from obliviate.engine.plan import MemoryTerms


@dataclass
class NPOConfig(GradientConfig):
    """NPO with the retain term of the paper's NPO-RT variant (weight 0 gives plain NPO)."""
    SEARCH = {**GradientConfig.SEARCH, "beta": ("log", 0.05, 1.0), "retain_weight": ("log", 0.5, 10.0)}

    beta: float = option(0.1, "β, the inverse temperature (paper: 0.1)", gt=0)
    retain_weight: float = option(1.0, "α on the retain NLL (NPO-RT; OpenUnlearning's default; 0: plain NPO)", ge=0)


def npo(model, tokenizer, data: UnlearnData, cfg: NPOConfig, scope: Scope | None = None) -> dict:
    """L = -(2/β)·E_forget[log σ(β·(NLL_θ(y|x) - NLL_ref(y|x)))] + α·NLL(retain)  (paper Eq. 3 and Sec. 5).

    NLLs are summed over answer tokens; the reference is the model before unlearning, whose forget NLLs are
    computed once up front instead of keeping a second model in memory.

    Note the sign: written as σ(-β·(NLL_θ - NLL_ref)), with NLL = -log π, the loss would *reinforce* the forget
    data. The paper's σ(-β·log(π_θ/π_ref)) is σ(+β·(NLL_θ - NLL_ref)), used here (``tests/test_losses.py``).
    """
    ref = reference_nll(model, tokenizer, data.forget, cfg.max_length)  # (N,)

    def loss(m, b):
        nll = forward_nll(m, b["forget"])
        return with_retain_nll(m, b, npo_loss(nll, ref.to(nll.device)[b["forget_idx"]], cfg.beta), cfg.retain_weight)

    return run_gradient_method(model, tokenizer, data, cfg, loss, "unlearn npo", needs_retain=cfg.retain_weight > 0, scope=scope)


@dataclass
class SimNPOConfig(GradientConfig):
    """SimNPO with open-unlearning's TOFU defaults."""
    SEARCH = {**GradientConfig.SEARCH, "beta": ("log", 1.0, 10.0), "retain_weight": ("log", 0.5, 10.0)}

    beta: float = option(4.5, "β, the inverse temperature (OpenUnlearning's TOFU default)", gt=0)
    delta: float = option(0.0, "δ = γ/β: the paper's reward margin γ divided by β, as OpenUnlearning's delta "
                               "(default 0)")
    forget_weight: float = option(0.125, "weight of the forget term (OpenUnlearning's TOFU default)", gt=0)
    retain_weight: float = option(1.0, "α on the retain NLL (0: none)", ge=0)


def simnpo(model, tokenizer, data: UnlearnData, cfg: SimNPOConfig, scope: Scope | None = None) -> dict:
    """L = w_f·(-(2/β)·E[log σ(β·(NLL_θ/|y| - δ))]) + α·NLL(retain)  (SimNPO, arXiv:2410.07163, Eq. 4).

    No reference model: the length-normalised NLL replaces NPO's reference log-ratio."""
    def loss(m, b):
        forget = cfg.forget_weight * simnpo_loss(forward_nll(m, b["forget"], "mean"), cfg.beta, cfg.delta)
        return with_retain_nll(m, b, forget, cfg.retain_weight)

    return run_gradient_method(model, tokenizer, data, cfg, loss, "unlearn simnpo", needs_retain=cfg.retain_weight > 0, scope=scope)


register(Method(
    "npo", NPOConfig, npo,
    "Negative Preference Optimization, beta=0.1, + retain NLL (NPO-RT)",
    family=FAMILY, scopeable=True, memory=MemoryTerms(reference_pass=True)))
register(Method(
    "simnpo", SimNPOConfig, simnpo,
    "reference-free, length-normalised NPO (beta=4.5, delta=0) + retain NLL",
    family=FAMILY, scopeable=True))
