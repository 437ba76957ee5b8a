"""Metrics. :data:`METRICS` is the one registry of aggregate metric names (as they appear in results.json)."""
from __future__ import annotations

from ..utils import ObliviateError
from .scoring import Scorer, TokenScores
from .suite import EvalConfig, EvalResult, compare_to_oracle, evaluate

_SPLIT_METRICS = {
    "prob": "mean answer probability (length-normalised; option-normalised on neighbours and world)",
    "rougeL_recall": "ROUGE-L recall of the greedy answer against the gold answer",
    "truth_ratio": "truth ratio aggregate (forget/holdout: mean(min(R,1/R)); others: mean(max(0,1-R)))",
    "exact_match": "fraction of greedy answers that state the fact",
    "extraction_strength": "mean of 1 - k*/|y|, k* the answer prefix after which teacher-forced argmax reproduces the rest",
    "exact_memorization": "mean share of answer tokens the teacher-forced argmax reproduces (Tirumala et al. 2022)",
}
METRICS: dict[str, str] = {
    **{f"{s}_{m}": f"{d} on {s}" for s in ("forget", "retain", "holdout", "neighbours", "world")
       for m, d in _SPLIT_METRICS.items()},
    "model_utility": "harmonic mean of prob, ROUGE-L recall and truth ratio on retain, neighbours and world (TOFU)",
    "forget_quality": "KS-test p-value of forget truth ratios against the oracle's (TOFU); needs an oracle",
    "mia_loss_auc": "LOSS membership-inference AUC, forget vs holdout",
    "mia_min_k_auc": "Min-K% membership-inference AUC, forget vs holdout (k = 0.4)",
    "mia_min_k_plus_plus_auc": "Min-K%++ membership-inference AUC, forget vs holdout (k = 0.4)",
    "mia_zlib_auc": "zlib membership-inference AUC (NLL / zlib length), forget vs holdout",
    "mia_gradnorm_auc": "gradient-norm membership-inference AUC, forget vs holdout (EvalConfig.gradnorm / --gradnorm)",
    "mia_reference_auc": "Reference membership-inference AUC (NLL_oracle - NLL_model), forget vs holdout; needs an oracle",
    "privleak_zlib": "PrivLeak with zlib; needs an oracle",
    "privleak_gradnorm": "PrivLeak with the gradient-norm attack; needs an oracle and --gradnorm",
    "muse_verbmem_forget": "MUSE C1: ROUGE-L F1 of 128-token greedy continuations of forget passages (--muse)",
    "muse_knowmem_forget": "MUSE C2: ROUGE-L F1 of greedy answers to forget questions (--muse)",
    "muse_knowmem_retain": "MUSE C4: ROUGE-L F1 of greedy answers to retain questions (--muse)",
    "muse_utility": "MUSE utility: muse_knowmem_retain (--muse)",
    "muse_mia_min_k_auc": "MUSE: Min-K% AUC, forget vs holdout texts (--muse)",
    "muse_privleak": "MUSE C3: PrivLeak with Min-K% on texts; needs an oracle (--muse)",
    **{f"rwku_{side}_{kind}": f"share of {kind} probes answered on the {side} side of an RWKU-style target (--rwku)"
       for side in ("forget", "neighbour") for kind in ("fill", "qa")},
    "privleak": "(AUC - AUC_oracle) / AUC_oracle x 100 with Min-K%++ (MUSE); needs an oracle",
    "privleak_loss": "PrivLeak with the LOSS attack; needs an oracle",
    "privleak_min_k": "PrivLeak with Min-K%; needs an oracle",
}


def check_metrics(names: list[str]) -> list[str]:
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ObliviateError(f"unknown metric(s) {', '.join(unknown)}; `obliviate ls metrics` lists the "
                             f"{len(METRICS)} known ones")
    return names


__all__ = ["METRICS", "EvalConfig", "EvalResult", "Scorer", "TokenScores", "check_metrics", "compare_to_oracle", "evaluate"]
