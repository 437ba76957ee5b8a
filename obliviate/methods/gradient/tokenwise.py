"""Token-level forget losses from OpenUnlearning's community methods: UNDIAL, WGA, SatImp, CE-U and PDU.

    obliviate unlearn --method wga --model <target dir> --benchmark people

Each config keeps the paper's (or its official code's) method constants; learning rate and epochs follow
obliviate's convention for every gradient method (1e-5 on pretrained models, TOFU's; 1e-3 on the from-scratch
built-ins; 5 epochs) unless the method's own recipe needs more, which the field's help says.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from obliviate.engine.distributed import frozen_copy
from obliviate.core.options import option
from obliviate.methods.common import GradientConfig, Scope, UnlearnData, lm_logits, run_gradient_method, with_retain_nll
from obliviate.methods.losses import (ce_u_loss, dual_ascent, logit_margin_loss, mean_token_nll, undial_loss,
                                      weighted_ascent_loss)
from obliviate.methods.gradient import FAMILY
from obliviate.methods.registry import Method, register
from obliviate.engine.plan import MemoryTerms


@dataclass
class UNDIALConfig(GradientConfig):
    """UNDIAL with β = 3, the low end of the grid (3, 10, 30) that OpenUnlearning's UNDIAL README suggests; not
    checked against the authors' own code (not found). OpenUnlearning's ``configs/trainer/UNDIAL.yaml`` runs β = 10
    and its class default is 1. No retain term, as the paper and that config."""
    SEARCH = {**GradientConfig.SEARCH, "beta": ("log", 3.0, 30.0)}  # OpenUnlearning's UNDIAL README grid: 3, 10, 30

    beta: float = option(3.0, "β, how far the true token's logit is lowered in the distillation target (3: the low "
                              "end of the 3, 10, 30 grid of OpenUnlearning's UNDIAL README; its config runs 10)",
                         gt=0)
    retain_weight: float = option(0.0, "α on the retain NLL (paper and OpenUnlearning: 0)", ge=0)


def undial(model, tokenizer, data: UnlearnData, cfg: UNDIALConfig, scope: Scope | None = None) -> dict:
    """L = CE(softmax(z_ref - β·onehot(y)), p_θ) on forget answer tokens + α·NLL(retain)  (arXiv:2402.10052, Eq. 3).

    The teacher is a frozen copy of the model before unlearning."""
    teacher = frozen_copy(model)  # sharded too under FSDP (obliviate.engine.distributed)

    def loss(m, b):
        f = b["forget"]
        with torch.no_grad():
            ref = lm_logits(teacher, f)
        return with_retain_nll(m, b, undial_loss(lm_logits(m, f), ref, f["labels"], cfg.beta), cfg.retain_weight)

    return run_gradient_method(model, tokenizer, data, cfg, loss, "unlearn undial", needs_retain=cfg.retain_weight > 0,
                               scope=scope)


@dataclass
class WGAConfig(GradientConfig):
    """WGA with OpenUnlearning's TOFU defaults (β = 1, forget weight γ = 1, retain weight α = 1)."""
    SEARCH = {**GradientConfig.SEARCH, "beta": ("float", 0.5, 3.0), "retain_weight": ("log", 0.5, 10.0)}

    beta: float = option(1.0, "β in the token weight sg(p^β) (paper and OpenUnlearning: 1)", ge=0)
    forget_weight: float = option(1.0, "γ on the forget term", gt=0)
    retain_weight: float = option(1.0, "α on the retain NLL (0: none)", ge=0)


def _weighted_ascent(model, tokenizer, data: UnlearnData, cfg, beta1: float, beta2: float, name: str,
                     scope: Scope | None) -> dict:
    """γ·(token-weighted ascent, :func:`losses.weighted_ascent_loss`) + α·NLL(retain): WGA and SatImp."""
    def loss(m, b):
        f = b["forget"]
        forget = cfg.forget_weight * weighted_ascent_loss(lm_logits(m, f), f["labels"], beta1, beta2)
        return with_retain_nll(m, b, forget, cfg.retain_weight)

    return run_gradient_method(model, tokenizer, data, cfg, loss, f"unlearn {name}", needs_retain=cfg.retain_weight > 0,
                               scope=scope)


def wga(model, tokenizer, data: UnlearnData, cfg: WGAConfig, scope: Scope | None = None) -> dict:
    """L = γ·(-mean_t sg(p_t^β)·NLL_t) + α·NLL(retain)  (arXiv:2502.19301, Eq. 8)."""
    return _weighted_ascent(model, tokenizer, data, cfg, cfg.beta, 0.0, "wga", scope)


@dataclass
class SatImpConfig(GradientConfig):
    """SatImp with the paper's β1 = 5, β2 = 1 and the weights of OpenUnlearning's ``SatImp`` class defaults
    (``src/trainer/unlearn/satimp.py``: forget γ = 1, retain α = 0.1). OpenUnlearning's experiment config
    (``configs/trainer/SatImp.yaml``) runs the reverse, γ = 0.1 and α = 1 at lr 1e-5 for 5 epochs, and its
    community ``run.sh`` sweeps α over 1, 0.1, 0.01. obliviate keeps the class defaults, under which every
    recorded SatImp measurement was made; ``--set forget_weight=0.1 retain_weight=1`` gives the config's."""
    SEARCH = {**GradientConfig.SEARCH, "beta1": ("float", 1.0, 8.0), "beta2": ("float", 0.5, 3.0),
              "retain_weight": ("log", 0.05, 5.0)}

    beta1: float = option(5.0, "β1, the saturation exponent on p (paper: 5)", ge=0)
    beta2: float = option(1.0, "β2, the importance exponent on 1 - p (paper: 1)", gt=0)
    forget_weight: float = option(1.0, "γ on the forget term (OpenUnlearning's class default 1; its config 0.1)",
                                  gt=0)
    retain_weight: float = option(0.1, "α on the retain NLL (OpenUnlearning's class default 0.1; its config 1)",
                                  ge=0)


def satimp(model, tokenizer, data: UnlearnData, cfg: SatImpConfig, scope: Scope | None = None) -> dict:
    """L = γ·(-mean_t sg(p_t^β1 (1 - p_t)^β2)·NLL_t) + α·NLL(retain)  (arXiv:2505.11953, Eq. 6)."""
    return _weighted_ascent(model, tokenizer, data, cfg, cfg.beta1, cfg.beta2, "satimp", scope)


@dataclass
class CEUConfig(GradientConfig):
    """CE-U on forget data alone, as the paper and OpenUnlearning run it."""
    SEARCH = GradientConfig.SEARCH

    skip_first: int = option(1, "answer tokens left unscored at the start of each answer (paper's footnote: 1)", ge=0)
    retain_weight: float = option(0.0, "α on the retain NLL (paper and OpenUnlearning: 0)", ge=0)


def ceu(model, tokenizer, data: UnlearnData, cfg: CEUConfig, scope: Scope | None = None) -> dict:
    """L = mean_t CE(q_t, p_θ), q = softmax(sg(z)) with the true token masked out  (arXiv:2503.01224, Eq. 4)."""
    def loss(m, b):
        f = b["forget"]
        return with_retain_nll(m, b, ce_u_loss(lm_logits(m, f), f["labels"], cfg.skip_first), cfg.retain_weight)

    return run_gradient_method(model, tokenizer, data, cfg, loss, "unlearn ceu", needs_retain=cfg.retain_weight > 0,
                               scope=scope)


@dataclass
class PDUConfig(GradientConfig):
    """PDU with the recipe of the authors' TOFU runs (OpenUnlearning ``community/methods/PDU/run.sh``): initial
    multiplier 100, dual step 5, 5 warm-up epochs of 10."""
    SEARCH = {**GradientConfig.SEARCH, "epochs": ("int", 2, 10), "dual_warmup_epochs": ("int", 0, 5),
              "multiplier": ("log", 1.0, 200.0), "dual_step": ("log", 0.5, 10.0)}

    epochs: int = option(10, "passes over the forget set (the authors' TOFU runs: 10)", ge=1)
    retain_eps: float | None = option(None, "ε, the bound on the retain NLL (default: 1.2 x the model's retain NLL "
                                            "before unlearning; the authors use 0.3 on TOFU's Llama models)", ge=0)
    multiplier: float = option(100.0, "λ0, the initial Lagrange multiplier on the retain constraint (authors: 100)",
                               ge=0)
    dual_step: float = option(5.0, "η, the dual-ascent step size (authors: 5)", ge=0)
    dual_warmup_epochs: int = option(5, "epochs before the multiplier starts moving (authors: 5)", ge=0)
    forget_weight: float = option(1.0, "γ on the forget loss", gt=0)


def pdu(model, tokenizer, data: UnlearnData, cfg: PDUConfig, scope: Scope | None = None) -> dict:
    """Primal-dual unlearning (Entesari et al., 2025, arXiv:2506.05314, Eq. 4 and Alg. 1):

        min_θ max_{λ≥0}  γ·L_margin(forget) + λ·(NLL(retain) - ε),

    primal: one optimiser step on the Lagrangian; dual: λ ← max(0, λ + η·(NLL(retain) - ε)) after each step once
    the warm-up epochs are over (``dual_ascent``). The multiplier's trajectory is returned (``multiplier_curve``)."""
    from obliviate.methods.common import reference_nll

    eps = cfg.retain_eps
    if eps is None:
        eps = 1.2 * float(reference_nll(model, tokenizer, data.retain, cfg.max_length, reduction="mean").mean())
    state = {"lam": cfg.multiplier, "step": 0}
    per_epoch = math.ceil(len(data.forget) / min(cfg.batch_size, len(data.forget)))
    curve: list[float] = []

    def loss(m, b):
        f, r = b["forget"], b["retain"]
        retain = mean_token_nll(lm_logits(m, r), r["labels"])
        value = cfg.forget_weight * logit_margin_loss(lm_logits(m, f), f["labels"]) + state["lam"] * (retain - eps)
        curve.append(state["lam"])
        if state["step"] >= cfg.dual_warmup_epochs * per_epoch:
            state["lam"] = dual_ascent(state["lam"], float(retain.detach()) - eps, cfg.dual_step)
        state["step"] += 1
        return value

    out = run_gradient_method(model, tokenizer, data, cfg, loss, "unlearn pdu", needs_retain=True, scope=scope)
    return {**out, "retain_eps": eps, "multiplier_curve": curve, "final_multiplier": state["lam"]}


register(Method(
    "undial", UNDIALConfig, undial,
    "UNDIAL: self-distil towards own logits with the true token lowered by beta=3 (OpenUnlearning's README "
    "grid 3/10/30; its config: 10), forget data only",
    family=FAMILY, retain_term=False, scopeable=True, memory=MemoryTerms(frozen_copies=1)))
register(Method(
    "wga", WGAConfig, wga,
    "WGA: gradient ascent weighted per token by sg(p^beta) + retain NLL",
    family=FAMILY, scopeable=True))
register(Method(
    "satimp", SatImpConfig, satimp,
    "SatImp: ascent weighted by sg(p^5 (1-p)) + 0.1 x retain NLL (OpenUnlearning's class defaults; its "
    "config: 0.1 x forget + retain)",
    family=FAMILY, scopeable=True))
register(Method(
    "ceu", CEUConfig, ceu,
    "CE-U: cross-entropy towards the model's own distribution without the true token, forget data only",
    family=FAMILY, retain_term=False, scopeable=True))
register(Method(
    "pdu", PDUConfig, pdu,
    "PDU: flatten forget logits subject to retain NLL <= eps (primal-dual, Lagrange multiplier by dual "
    "ascent)",
    family=FAMILY, scopeable=True))
