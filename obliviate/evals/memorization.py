"""Per-example memorisation metrics of TOFU (Maini et al., 2024, arXiv:2401.06121, Sec. 2.5)."""
from __future__ import annotations

import math
import re
import string

import numpy as np

from .scoring import TokenScores

_PUNCT = re.compile(f"[{re.escape(string.punctuation)}]")


def normalize(text: str) -> str:
    """Lower-case, drop punctuation, collapse whitespace (SQuAD-style answer normalisation)."""
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


def exact_match(generation: str, answer: str, value: str | None = None) -> float:
    """1.0 if the generated answer states the fact: the atomic ``value`` appears as a whole phrase in the
    normalised generation (or, without a value, the normalised generation equals the answer)."""
    g = f" {normalize(generation)} "
    if value:
        return float(f" {normalize(value)} " in g)
    return float(g.strip() == normalize(answer))


def length_normalised_prob(ts: TokenScores) -> float:
    """P(a|q)^(1/|a|) = exp(mean token log-prob): TOFU's "probability" on forget and retain."""
    return math.exp(ts.mean_logp)


def option_normalised_prob(answer: TokenScores, perturbed: list[TokenScores]) -> float:
    """P(a) / (P(a) + Σ P(ã)) with length-normalised P: TOFU's probability on Real Authors / World Facts."""
    pa = length_normalised_prob(answer)
    return pa / (pa + sum(length_normalised_prob(p) for p in perturbed))


def truth_ratio(paraphrased: TokenScores, perturbed: list[TokenScores]) -> float:
    """R = P(perturbed) / P(paraphrased), P = exp(-mean token NLL), the perturbed term a geometric mean over
    the perturbed answers (TOFU, Eq. 1). Small R: the model prefers the true fact."""
    log_pert = float(np.mean([p.mean_logp for p in perturbed]))
    return math.exp(log_pert - paraphrased.mean_logp)


def rouge_l_recall(predictions: list[str], references: list[str]) -> list[float]:
    """ROUGE-L recall of each greedy answer against the gold answer (``rouge-score`` with stemming)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return [scorer.score(ref, pred)["rougeL"].recall for pred, ref in zip(predictions, references)]


def forget_truth_ratio(ratios: np.ndarray) -> float:
    """Forget-side aggregate mean(min(R, 1/R)): 1 when the model cannot tell true from false."""
    r = np.asarray(ratios, dtype=float)
    return float(np.mean(np.minimum(r, 1.0 / r)))


def retain_truth_ratio(ratios: np.ndarray) -> float:
    """Utility-side aggregate mean(max(0, 1 - R)): 1 when the true answer dominates."""
    return float(np.mean(np.maximum(0.0, 1.0 - np.asarray(ratios, dtype=float))))


def exact_memorization(ts: TokenScores) -> float:
    """Exact memorisation (Tirumala et al., 2022, arXiv:2205.10770, Def. 1): the share of target tokens that
    the teacher-forced argmax reproduces."""
    if ts.hit is None or not ts.hit.size:
        return float("nan")
    return float(ts.hit.mean())


def extraction_strength(ts: TokenScores) -> float:
    """Extraction strength (Carlini et al., 2021, arXiv:2012.07805, the k-extractability idea, as defined for
    unlearning by Wang et al., 2025 / open-unlearning): ES = 1 - k*/|y|, k* the shortest prefix of the answer
    from which the teacher-forced argmax reproduces every remaining token (k* = |y| if the last is missed)."""
    if ts.hit is None or not ts.hit.size:
        return float("nan")
    misses = np.flatnonzero(~ts.hit)
    k_star = 0 if misses.size == 0 else int(misses[-1]) + 1
    return 1.0 - k_star / ts.hit.size
