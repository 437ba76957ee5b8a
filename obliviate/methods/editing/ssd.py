"""Selective Synaptic Dampening: a retrain-free edit from two diagonal Fisher estimates.

Foster, Schoepf, Brintrup, "Fast Machine Unlearning Without Retraining Through Selective Synaptic Dampening"
(AAAI 2024, arXiv:2308.07707; code if-loops/selective-synaptic-dampening). With ``[]_D`` the diagonal of the
Fisher information (importance) on the full training data D and ``[]_Df`` on the forget set (Sec. 3, Eq. 3–4):

    β = min(λ · []_D,i / []_Df,i , 1)     for every parameter i with  []_Df,i > α · []_D,i
    θ_i ← β · θ_i                           (every other parameter is left as it is)

An importance is the mean, over batches, of the squared gradient of the loss (here: the mean NLL of the answer
tokens), as the official code computes it. D is the forget set plus the retain set (the training data an
unlearning request can see; the utility facts are never read). Defaults: α = 10, λ = 1 (the paper's ResNet/ViT
settings). The paper evaluates vision classifiers only: on language models the rule is applied unchanged to every
parameter (embeddings included), and ``bench/editing.py`` reports how it behaves there.
"""
from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

import torch

from obliviate.data.format import encoded_batches
from obliviate.core.options import Options, option
from obliviate.core.utils import ObliviateError
from obliviate.methods.common import UnlearnData, lm_logits
from obliviate.methods.losses import mean_token_nll
from obliviate.methods.editing import FAMILY
from obliviate.methods.registry import Method, register


@dataclass
class SSDConfig(Options):
    alpha: float = option(10.0, "selection weighting: dampen a parameter when its forget importance exceeds alpha x "
                                "its full-data importance (paper: 10)", gt=0)
    dampening: float = option(1.0, "lambda: the dampened value is theta x min(lambda x I_D / I_f, 1) (paper: 1)",
                              gt=0)
    batch_size: int = option(8, "examples per gradient in the importance estimates", ge=1)
    max_length: int = option(256, "tokens per example", ge=8)
    seed: int = option(0, "unused by the rule (deterministic); kept for the record", ge=0)


def importance(model, tokenizer, examples, cfg: SSDConfig) -> dict[str, torch.Tensor]:
    """Diagonal Fisher estimate: mean over batches of the squared gradient of the answer-token NLL."""
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    imp = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
    dev = next(model.parameters()).device
    batches = 0
    model.eval()  # no dropout: the estimate is deterministic
    for b in encoded_batches(tokenizer, examples, cfg.max_length, cfg.batch_size):
        model.zero_grad(set_to_none=True)
        b = {k: v.to(dev) for k, v in b.items()}
        loss = mean_token_nll(lm_logits(model, b), b["labels"])
        loss.backward()
        for n, p in params.items():
            if p.grad is not None:
                imp[n] += p.grad.detach().float() ** 2
        batches += 1
    model.zero_grad(set_to_none=True)
    return {n: v / max(batches, 1) for n, v in imp.items()}


def _module_of(name: str) -> str:
    return name.rsplit(".", 1)[0]


def ssd(model, tokenizer, data: UnlearnData, cfg: SSDConfig) -> dict:
    if not data.forget:
        raise ObliviateError("ssd: the forget set is empty")
    if not data.retain:
        raise ObliviateError("ssd: needs retain data (the full-data importance is estimated on forget + retain)")
    t0 = time.time()
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    for p in model.parameters():
        p.requires_grad_(True)
    try:
        i_f = importance(model, tokenizer, data.forget, cfg)
        i_d = importance(model, tokenizer, data.forget + data.retain, cfg)
    finally:
        for n, p in model.named_parameters():
            p.requires_grad_(flags[n])
    shares, total, dampened, beta_sum = {}, 0, 0, 0.0
    per_module = defaultdict(lambda: [0, 0])
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n not in i_f:
                continue
            sel = i_f[n] > cfg.alpha * i_d[n]
            beta = (cfg.dampening * i_d[n] / i_f[n].clamp_min(1e-30)).clamp(max=1.0)
            p[sel] = (p[sel].float() * beta[sel]).to(p.dtype)
            k = int(sel.sum())
            per_module[_module_of(n)][0] += k
            per_module[_module_of(n)][1] += sel.numel()
            total += sel.numel()
            dampened += k
            beta_sum += float(beta[sel].sum())
    shares = {m: round(k / max(c, 1), 6) for m, (k, c) in per_module.items()}
    return {"dampened_share": dampened / max(total, 1), "dampened_parameters": dampened,
            "mean_beta": beta_sum / dampened if dampened else None,
            "dampened_share_by_module": dict(sorted(shares.items(), key=lambda kv: -kv[1])),
            "seconds": round(time.time() - t0, 3)}


register(Method(
    "ssd", SSDConfig, ssd,
    "Selective Synaptic Dampening: no training; shrink parameters far more important (diagonal Fisher) to the"
    " forget set than to all data (alpha=10, lambda=1)",
    family=FAMILY, lora=False))
