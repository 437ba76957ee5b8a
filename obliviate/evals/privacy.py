"""Forget quality, membership-inference scores and PrivLeak.

Every MIA score here is oriented so that higher means "more member-like"; AUCs are forget (members)
vs holdout (non-members) and come from scikit-learn's ``roc_auc_score``.
"""
from __future__ import annotations

import numpy as np

from .scoring import TokenScores

MIN_K = 0.4  # fraction of lowest-scoring tokens averaged (MUSE's setting; Min-K% paper sweeps 0.1..0.5)


def _lowest_mean(x: np.ndarray, k: float) -> float:
    n = max(1, int(len(x) * k))
    return float(np.sort(x)[:n].mean())


def loss_score(ts: TokenScores) -> float:
    """LOSS attack (Yeom et al., 2018): negative mean token NLL."""
    return ts.mean_logp


def min_k_score(ts: TokenScores, k: float = MIN_K) -> float:
    """Min-K% Prob (Shi et al., 2024, arXiv:2310.16789, Eq. 1): mean log-prob of the k% least likely tokens."""
    return _lowest_mean(ts.logp, k)


def min_k_plus_plus_score(ts: TokenScores, k: float = MIN_K) -> float:
    """Min-K%++ (Zhang et al., 2025, arXiv:2404.02936, Eq. 3): z_t = (log p_t - μ_t) / σ_t with μ_t, σ_t the
    mean and standard deviation of log p under the model's next-token distribution; score = mean of the
    lowest k% of z_t."""
    return _lowest_mean((ts.logp - ts.mu) / ts.sigma, k)


def zlib_score(ts: TokenScores, text: str) -> float:
    """zlib attack (Carlini et al., 2021, arXiv:2012.07805, Sec. 6.1): the mean token NLL relative to the text's
    zlib-compressed length, negated so that higher is more member-like: -NLL / len(zlib.compress(text))."""
    import zlib

    return ts.mean_logp / max(1, len(zlib.compress(text.encode("utf-8"))))


def reference_scores(nll, reference_nll) -> np.ndarray:
    """Reference attack (Carlini et al., 2021, Sec. 6.1; the oracle or a user-given model as reference):
    NLL_reference - NLL_model per example, high when the model finds the text easier than the reference does."""
    return np.asarray(reference_nll, dtype=float) - np.asarray(nll, dtype=float)


def gradnorm_scores(model, tokenizer, examples, max_length: int = 512) -> list[float]:
    """Gradient-norm attack (as evaluated on LLMs by Duan et al., 2024, arXiv:2402.17012, "Do Membership
    Inference Attacks Work on Large Language Models?"): -||∇_θ mean-token NLL(y | x)||_2 per example (training
    members sit nearer a minimum). One backward pass per example; the model's gradients are left cleared."""
    import torch

    from ..data.format import collate, encode, pad_id
    from ..methods.losses import mean_token_nll

    was_training = model.training
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    dev = next(model.parameters()).device
    out = []
    try:
        for ex in examples:
            b = {k: v.to(dev) for k, v in collate([encode(tokenizer, ex, max_length)], pad_id(tokenizer)).items()}
            with torch.enable_grad():
                loss = mean_token_nll(model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits,
                                      b["labels"])
                grads = torch.autograd.grad(loss, params, allow_unused=True)
            sq = sum(float(g.float().square().sum()) for g in grads if g is not None)
            out.append(-sq ** 0.5)
    finally:
        model.train(was_training)
    return out


def mia_auc(member_scores, nonmember_scores) -> float:
    """ROC AUC of separating members (label 1) from non-members (label 0) by score."""
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.ones(len(member_scores)), np.zeros(len(nonmember_scores))]
    return float(roc_auc_score(y, np.r_[member_scores, nonmember_scores]))


def forget_quality(model_ratios, oracle_ratios) -> float:
    """TOFU forget quality: p-value of the two-sample KS test between the evaluated model's and the oracle's
    per-example truth ratios on the forget set (Maini et al., 2024, Sec. 2.5). High: indistinguishable."""
    from scipy.stats import ks_2samp

    return float(ks_2samp(np.asarray(model_ratios), np.asarray(oracle_ratios)).pvalue)


def privleak(auc: float, auc_oracle: float) -> float:
    """MUSE PrivLeak (Shi et al., 2024, arXiv:2407.06460, Sec. 3): (AUC - AUC_oracle) / AUC_oracle × 100.
    0 is ideal; positive means the model still marks forget data as members, negative over-unlearning."""
    return (auc - auc_oracle) / auc_oracle * 100.0
