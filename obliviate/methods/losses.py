"""Pure tensor loss functions shared by the unlearning methods. Shapes: B batch, T tokens, V vocabulary."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.format import IGNORE


def token_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each next label token and the mask of scored positions.

    logits (B, T, V), labels (B, T) with -100 on unscored positions -> logp (B, T-1), mask (B, T-1).
    """
    logits = logits[:, :-1].float()  # position t predicts token t+1
    target = labels[:, 1:]
    mask = target != IGNORE
    logp = torch.log_softmax(logits, dim=-1).gather(-1, target.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    return logp * mask, mask


def sequence_nll(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """Negative log-likelihood of each sequence's target tokens, (B,): their sum, or their mean (``"mean"``)."""
    logp, mask = token_logprobs(logits, labels)
    nll = -logp.sum(-1)
    if reduction == "sum":
        return nll
    if reduction == "mean":
        return nll / mask.sum(-1).clamp_min(1)
    raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")


def mean_token_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The standard LM loss: NLL averaged over every scored token of the batch (a scalar)."""
    logp, mask = token_logprobs(logits, labels)
    return -logp.sum() / mask.sum().clamp_min(1)


def npo_loss(nll_theta: torch.Tensor, nll_ref: torch.Tensor, beta: float) -> torch.Tensor:
    """Negative Preference Optimization (Zhang et al., 2024, arXiv:2404.05868, Eq. 3).

    L = -(2/β) · E[log σ(-β · log(π_θ(y|x) / π_ref(y|x)))] = -(2/β) · E[log σ(β · (NLL_θ - NLL_ref))],
    with sequence-level (summed) NLLs. Minimising it raises NLL_θ above the reference, with a gradient that
    vanishes as the forget answer becomes unlikely (unlike gradient ascent's, which never does).
    """
    return -(2.0 / beta) * F.logsigmoid(beta * (nll_theta - nll_ref)).mean()


def kl_to_ref(logits: torch.Tensor, ref_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over scored positions of KL(p_ref || p_θ) on the next-token distributions (GradDiff's KL retain term)."""
    mask = (labels[:, 1:] != IGNORE).float()
    logp = torch.log_softmax(logits[:, :-1].float(), -1)
    logq = torch.log_softmax(ref_logits[:, :-1].float(), -1)
    kl = (logq.exp() * (logq - logp)).sum(-1)
    return (kl * mask).sum() / mask.sum().clamp_min(1)


def simnpo_loss(nll_mean: torch.Tensor, beta: float, delta: float) -> torch.Tensor:
    """SimNPO (Fan et al., 2024, "Simplicity Prevails: Rethinking Negative Preference Optimization for LLM
    Unlearning", arXiv:2410.07163, Eq. 4): reference-free and length-normalised,
    L = -(2/β)·E[log σ(β·(NLL_θ(y|x)/|y| - δ))].

    The paper writes the margin as γ inside the sigmoid, σ(β·NLL/|y| - γ); this δ (OpenUnlearning's ``delta``)
    sits inside the bracket, so δ = γ/β: the paper's γ = 0 is δ = 0, and a paper's γ = 1 at β = 2.5 is
    δ = 0.4."""
    return -(2.0 / beta) * F.logsigmoid(beta * (nll_mean - delta)).mean()


def dpo_loss(nll_win: torch.Tensor, nll_win_ref: torch.Tensor, nll_lose: torch.Tensor, nll_lose_ref: torch.Tensor,
             beta: float) -> torch.Tensor:
    """DPO (Rafailov et al., 2023, Eq. 7) in NPO's scaling (as open-unlearning's IdkDPO):
    L = -(2/β)·E[log σ(β·((log π_θ - log π_ref)(y_win) - (log π_θ - log π_ref)(y_lose)))], with summed NLLs."""
    margin = (nll_win_ref - nll_win) - (nll_lose_ref - nll_lose)
    return -(2.0 / beta) * F.logsigmoid(beta * margin).mean()


def mean_token_prob(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Average over answer tokens of p(token), per sequence (B,)."""
    logp, mask = token_logprobs(logits, labels)
    return (logp.exp() * mask).sum(-1) / mask.sum(-1).clamp_min(1)


def flat_loss(p_template: torch.Tensor, p_forget: torch.Tensor, divergence: str = "kl") -> torch.Tensor:
    """FLAT (Wang et al., 2025, "LLM Unlearning via Loss Adjustment with Only Forget Data", arXiv:2410.11143,
    Eq. 4): the variational f-divergence loss L = -E[g(P_e)] + E[f*(g(P_f))] between template answers (P_e)
    and forget answers (P_f), P the mean token probability.
    TV: g(v) = tanh(v)/2, f*(t) = t;  KL: g(v) = v, f*(t) = exp(t - 1)."""
    if divergence == "tv":
        return (-torch.tanh(p_template) / 2 + torch.tanh(p_forget) / 2).mean()
    if divergence == "kl":
        return (-p_template + torch.exp(p_forget - 1)).mean()
    raise ValueError(f"divergence must be 'kl' or 'tv', got {divergence!r}")
