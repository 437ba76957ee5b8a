"""Forget quality, membership-inference scores and PrivLeak.

Every MIA score here is oriented so that higher means "more member-like"; AUCs are forget (members) vs
holdout (non-members) and come from scikit-learn's ``roc_auc_score``. OpenUnlearning orients its scores the
other way and labels the forget set 0, so each score here is the negation of its ``src/evals/metrics/mia``
score and every AUC is the same number (``tests/test_parity.py``). Token sets follow it too: LOSS, zlib and
Reference read every answer token with the EOS (``evaluate_probability``); Min-K% and Min-K%++ drop the final
label position (``tokenwise_logprobs``).
"""
from __future__ import annotations

import numpy as np

from obliviate.evals.scoring import TokenScores

MIN_K = 0.4  # fraction of lowest-scoring tokens averaged (MUSE's and OpenUnlearning's setting)
EPS = 1e-10  # OpenUnlearning's guard in PrivLeak's denominator


def _lowest_mean(x: np.ndarray, k: float) -> float:
    """Mean of the ⌊k·n⌋ (at least one) smallest values; 0 for no values (OpenUnlearning's convention)."""
    if not len(x):
        return 0.0
    n = max(1, int(len(x) * k))
    return float(np.sort(x)[:n].mean())


def loss_score(ts: TokenScores) -> float:
    """LOSS attack (Yeom et al., 2018): negative mean token NLL."""
    return ts.mean_logp


def min_k_score(ts: TokenScores, k: float = MIN_K) -> float:
    """Min-K% Prob (Shi et al., 2024, arXiv:2310.16789, Eq. 1): mean log-prob of the k% least likely answer
    tokens (EOS excluded)."""
    return _lowest_mean(ts.answer().logp, k)


def min_k_plus_plus_score(ts: TokenScores, k: float = MIN_K) -> float:
    """Min-K%++ (Zhang et al., 2025, arXiv:2404.02936, Eq. 3): z_t = (log p_t - μ_t) / σ_t with μ_t, σ_t the
    mean and standard deviation of log p under the model's next-token distribution (σ² floored at 1e-6 as in
    OpenUnlearning); score = mean of the lowest k% of z_t over the answer tokens (EOS excluded)."""
    a = ts.answer()
    return _lowest_mean((a.logp - a.mu) / a.sigma, k)


def zlib_score(ts: TokenScores, text: str) -> float:
    """zlib attack (Carlini et al., 2021, arXiv:2012.07805, Sec. 6.1): the mean token NLL relative to the text's
    zlib-compressed length, negated so that higher is more member-like: -NLL / len(zlib.compress(text))."""
    import zlib

    return ts.mean_logp / max(1, len(zlib.compress(text.encode("utf-8"))))


def reference_scores(nll, reference_nll) -> np.ndarray:
    """Reference attack (Carlini et al., 2021, Sec. 6.1; the oracle or a user-given model as reference):
    NLL_reference - NLL_model per example, high when the model finds the text easier than the reference does."""
    return np.asarray(reference_nll, dtype=float) - np.asarray(nll, dtype=float)


def gradnorm_scores(model, tokenizer, examples, max_length: int = 2048) -> dict[str, list[float]]:
    """Gradient-norm attacks (evaluated on LLMs by Duan et al., 2024, arXiv:2402.17012, "Do Membership Inference
    Attacks Work on Large Language Models?"): members sit nearer a minimum, so a smaller gradient norm is more
    member-like. Two variants, each a backward pass per example (the model's gradients are left cleared):

    - ``gradnorm`` (OpenUnlearning's ``GradNormAttack``, p = 2): the model in train mode, the loss the mean NLL of
      the answer tokens without the EOS, score -mean over parameter tensors of ||∇_W||_2 (a per-tensor norm,
      averaged);
    - ``gradnorm_global`` (the paper's gradient norm): the model in eval mode, the loss the mean NLL of every
      answer token with the EOS, score -||∇_θ||_2 over all parameters at once.
    """
    import torch

    from obliviate.data.format import IGNORE, collate, encode, pad_id

    was_training = model.training
    params = [p for p in model.parameters() if p.requires_grad]
    dev = next(model.parameters()).device
    out: dict[str, list[float]] = {"gradnorm": [], "gradnorm_global": []}

    def grads(batch, drop_last: bool, train: bool):
        model.train(train)
        with torch.enable_grad():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            labels = batch["labels"][:, 1:]
            logp = torch.log_softmax(logits[:, :-1].float(), -1)
            mask = labels != IGNORE
            lp = logp[mask].gather(-1, labels[mask].unsqueeze(-1)).squeeze(-1)  # (n,) answer tokens in order
            if drop_last:
                lp = lp[:-1]
            loss = -lp.mean()
            return [g for g in torch.autograd.grad(loss, params, allow_unused=True) if g is not None]

    try:
        for ex in examples:
            b = {k: v.to(dev) for k, v in collate([encode(tokenizer, ex, max_length)], pad_id(tokenizer)).items()}
            per_tensor = grads(b, drop_last=True, train=True)
            out["gradnorm"].append(-float(torch.stack([g.detach().norm(2) for g in per_tensor]).mean()))
            whole = grads(b, drop_last=False, train=False)
            out["gradnorm_global"].append(-float(sum(g.detach().float().square().sum() for g in whole)) ** 0.5)
    finally:
        model.train(was_training)
    return out


def mia_auc(member_scores, nonmember_scores) -> float:
    """ROC AUC of separating members (label 1) from non-members (label 0) by score."""
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.ones(len(member_scores)), np.zeros(len(nonmember_scores))]
    return float(roc_auc_score(y, np.r_[member_scores, nonmember_scores]))


def ks_statistic(model_ratios, oracle_ratios) -> float:
    """The KS statistic D behind forget quality: the largest gap between the two truth-ratio ECDFs (0: the same
    distribution). Unlike the p-value it does not shrink with the number of facts, so forget sets of different
    sizes (MUSE's scalability and sustainability curves) compare on it."""
    from scipy.stats import ks_2samp

    return float(ks_2samp(np.asarray(model_ratios), np.asarray(oracle_ratios)).statistic)


def forget_quality(model_ratios, oracle_ratios) -> float:
    """TOFU forget quality: p-value of the two-sample KS test between the evaluated model's and the oracle's
    per-example truth ratios on the forget set (Maini et al., 2024, Sec. 2.5). High: indistinguishable."""
    from scipy.stats import ks_2samp

    return float(ks_2samp(np.asarray(model_ratios), np.asarray(oracle_ratios)).pvalue)


def privleak(auc: float, auc_oracle: float) -> float:
    """PrivLeak (Shi et al., 2024, "MUSE", arXiv:2407.06460, Sec. 3, C3) in MUSE's convention: MUSE's AUC treats the
    forget set as the *non-members*, i.e. it is 1 - AUC here, so

        PrivLeak = ((1 - AUC) - (1 - AUC_oracle)) / ((1 - AUC_oracle) + 1e-10) × 100

    (OpenUnlearning's ``privleak``, the same guard). 0 is ideal; a model that was never unlearned reads near
    -100 (its forget set is recognised as members: AUC near 1), an over-unlearned one reads positive (its forget
    set looks less familiar than text it never saw)."""
    mine, ref = 1.0 - auc, 1.0 - auc_oracle
    return (mine - ref) / (ref + EPS) * 100.0
