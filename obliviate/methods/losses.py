"""Pure tensor loss functions shared by the unlearning methods. Shapes: B batch, T tokens, V vocabulary. The
LM primitives (per-token log-probabilities, sequence and mean NLL) are :mod:`obliviate.engine.losses`'s."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from obliviate.data.format import IGNORE
from obliviate.engine.losses import mean_token_nll, sequence_nll, token_logprobs  # noqa: F401  (the methods' imports)


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


def _shifted(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Next-token logits (B, T-1, V) in float, their targets (B, T-1) with unscored positions clamped to 0, and the
    mask of scored positions (B, T-1)."""
    target = labels[:, 1:]
    mask = target != IGNORE
    return logits[:, :-1].float(), target.clamp_min(0), mask


def undial_loss(logits: torch.Tensor, ref_logits: torch.Tensor, labels: torch.Tensor, beta: float) -> torch.Tensor:
    """UNDIAL (Dong et al., NAACL 2025, "UNDIAL: Self-Distillation with Adjusted Logits for Robust Unlearning in
    Large Language Models", arXiv:2402.10052, Eq. 2-3): distil the model towards its own frozen logits with the
    true token's logit lowered by β, z' = z_ref - β·onehot(y); L = mean over answer tokens of CE(softmax(z'), p_θ).

    Only scored positions (answer tokens) enter the mean and get the β offset. OpenUnlearning's
    ``compute_undial_loss`` scatters the one-hot with the raw labels, so a -100 label (prompt, padding) lowers the
    *last* vocabulary entry there, and averages over every position; here those positions are masked out."""
    lg, target, mask = _shifted(logits, labels)
    teacher = ref_logits[:, :-1].float().detach()
    adjusted = teacher - beta * F.one_hot(target, teacher.shape[-1]).to(teacher.dtype)
    ce = -(torch.softmax(adjusted, -1) * torch.log_softmax(lg, -1)).sum(-1)
    return (ce * mask).sum() / mask.sum().clamp_min(1)


def weighted_ascent_loss(logits: torch.Tensor, labels: torch.Tensor, beta1: float, beta2: float = 0.0) -> torch.Tensor:
    """Token-weighted gradient ascent: L = -mean over answer tokens of w_t·NLL_t with w_t = sg(p_t^β1 (1 - p_t)^β2).

    β2 = 0 is WGA (Wang et al., ICLR 2025, "Rethinking LLM Unlearning Objectives: A Gradient Perspective and Go
    Beyond", arXiv:2502.19301, Eq. 8: w = p^β, stop-gradient); β2 > 0 is SatImp (Yang et al., ICML 2025,
    "Exploring Criteria of Loss Reweighting to Enhance LLM Unlearning", arXiv:2505.11953, Eq. 6: saturation
    p^β1 times importance (1 - p)^β2). Tokens the model already finds unlikely get small weights, so the ascent
    stops pushing them (unlike GA, whose gradient never fades)."""
    logp, mask = token_logprobs(logits, labels)
    p = logp.detach().exp()
    w = p.pow(beta1) * (1 - p).pow(beta2) if beta2 else p.pow(beta1)
    return (w * logp * mask).sum() / mask.sum().clamp_min(1)


def ce_u_loss(logits: torch.Tensor, labels: torch.Tensor, skip_first: int = 1) -> torch.Tensor:
    """CE-U, cross-entropy unlearning (Yang et al., 2025, "CE-U: Cross Entropy Unlearning", arXiv:2503.01224, Eq. 4):
    at each answer token, cross-entropy towards q = softmax(sg(z)) with the true token's logit set to -∞, i.e. the
    model's own distribution with the true token removed; ∂L/∂z = p - q, which is bounded (unlike gradient ascent's)
    and vanishes once p puts no mass on the true token.

    The first ``skip_first`` answer tokens are not scored (the paper's footnote, OpenUnlearning's
    ``ignore_first_n_answer_tokens: 1``)."""
    lg, target, mask = _shifted(logits, labels)
    if skip_first:
        mask = mask & (mask.cumsum(-1) > skip_first)
    q_logits = lg.detach().scatter(-1, target.unsqueeze(-1), float("-inf"))
    q = torch.softmax(q_logits, -1)
    ce = -(q * torch.log_softmax(lg, -1)).nan_to_num(0.0).sum(-1)
    return (ce * mask).sum() / mask.sum().clamp_min(1)


def logit_margin_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """PDU's forget loss (Entesari et al., 2025, "Constrained Entropic Unlearning: A Primal-Dual Framework for Large
    Language Models", arXiv:2506.05314, Eq. 5): the squared margin between the largest and the mean logit,
    (max_v z_v - mean_v z_v)², averaged over answer positions; 0 exactly when the next-token distribution is
    uniform. Positions are those predicting answer tokens (OpenUnlearning masks the unshifted logits, one position
    later)."""
    lg, _, mask = _shifted(logits, labels)
    margin = (lg.max(-1).values - lg.mean(-1)) ** 2
    return (margin * mask).sum() / mask.sum().clamp_min(1)


def dual_ascent(multiplier: float, constraint: float, step_size: float) -> float:
    """One dual-ascent step on a Lagrange multiplier for the constraint g ≤ 0: λ ← max(0, λ + η·g)
    (PDU, arXiv:2506.05314, Alg. 1; g = retain loss - ε)."""
    return max(0.0, multiplier + step_size * constraint)


def token_hits(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B, T-1) bool: scored positions whose teacher-forced argmax is the label (token exact match, Tirumala et al.,
    2022)."""
    target = labels[:, 1:]
    return (logits[:, :-1].argmax(-1) == target) & (target != IGNORE)
