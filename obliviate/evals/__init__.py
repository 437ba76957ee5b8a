"""Metrics. :data:`METRICS` is the one registry of aggregate metrics (names as they appear in results.json), each a
:class:`MetricSpec`: its description, which direction is better, and whether it needs an oracle."""
from __future__ import annotations

from dataclasses import dataclass

from obliviate.core.utils import ObliviateError
from obliviate.evals.scoring import Scorer, TokenScores
from obliviate.evals.suite import EvalConfig, EvalResult, compare_to_oracle, evaluate

_SPLIT_METRICS = {
    "prob": "mean answer probability exp(-mean token NLL), EOS included (option-normalised on neighbours and world)",
    "rougeL_recall": "ROUGE-L recall (stemmed) of the greedy answer (up to 200 tokens, stopping at EOS)",
    "truth_ratio": "truth ratio aggregate (forget/holdout: mean(min(R,1/R)); others: mean(max(0,1-R)))",
    "exact_match": "share of greedy answers that state the fact (its value; free-text rows: ROUGE-L recall >= 0.8)",
    "extraction_strength": "1 - k/|y| as OpenUnlearning computes it (k < |y|: a missed last token scores 1/|y|)",
    "extraction_strength_paper": "1 - k*/|y| as Wang et al. 2025 define it (k* = |y| when the last token is missed)",
    "exact_memorization": "share of answer tokens (EOS excluded) the teacher-forced argmax reproduces (Tirumala et al.)",
    "paraphrased_prob": "probability exp(-mean token NLL) of the paraphrased answer (OpenUnlearning's para-prob)",
    "truth_ratio_prob_mean": "OpenUnlearning's newer truth ratio (aggregator prob_mean): mean of p_true / (p_true + "
                             "p_false), paraphrased against perturbed answers; 1: holds the true fact, 0.5: cannot tell",
    "mc_accuracy": "multiple choice: share of facts whose true answer is likelier (per token) than every false one "
                   "(chance 1/(1 + false answers); a check that the benchmark does not leak)",
}
_MIA = {"loss": "LOSS (mean NLL, EOS included)", "zlib": "zlib (NLL / zlib length)",
        "min_k": "Min-K% (k = 0.4, EOS excluded)", "min_k_plus_plus": "Min-K%++ (k = 0.4, EOS excluded)",
        "reference": "Reference (NLL_oracle - NLL_model)",
        "gradnorm": "gradient norm as OpenUnlearning: mean per-tensor L2 norm, train mode (--gradnorm)",
        "gradnorm_global": "gradient norm over all parameters at once, eval mode (--gradnorm)"}
_DESCRIPTIONS: dict[str, str] = {
    **{f"{s}_{m}": f"{d} on {s}" for s in ("forget", "retain", "holdout", "neighbours", "world")
       for m, d in _SPLIT_METRICS.items()},
    "model_utility": "harmonic mean of prob, ROUGE-L recall and truth ratio on retain, neighbours and world (TOFU)",
    "memorization_score": "OpenUnlearning's memorisation aggregate HM(1 - ES, 1 - EM, 1 - para-prob, 1 - truth ratio "
                          "prob_mean) on forget (1: nothing memorised)",
    "privacy_score": "HM over LOSS, zlib, Min-K%, Min-K%++ of 1 - |AUC - AUC_oracle| / max(AUC_oracle, 1 - AUC_oracle) "
                     "(MIA AUCs relative to the oracle's as OpenUnlearning aggregates them; the normalisation is "
                     "obliviate's)",
    "overall_score": "HM(memorization_score, privacy_score, model_utility), OpenUnlearning's overall aggregate",
    "forget_quality": "KS-test p-value of forget truth ratios against the oracle's (TOFU)",
    "forget_ks_d": "KS statistic D of forget truth ratios against the oracle's (0 ideal; comparable across forget-set "
                   "sizes, unlike the p-value)",
    **{f"mia_{k}_auc": f"{d}: membership-inference AUC, forget (members) vs holdout" for k, d in _MIA.items()},
    "privleak": "MUSE's PrivLeak with Min-K%: ((1-AUC) - (1-AUC_oracle)) / (1-AUC_oracle) x 100; never unlearned "
                "reads near -100, 0 is ideal, over-unlearning positive",
    **{f"privleak_{k}": f"PrivLeak with {d.split(' (')[0]}" for k, d in _MIA.items() if k != "min_k"},
    "muse_verbmem_forget": "MUSE C1: ROUGE-L F1 of 128-token greedy continuations of forget passages (--muse)",
    "muse_knowmem_forget": "MUSE C2: ROUGE-L F1 of few-shot greedy answers to forget questions (--muse)",
    "muse_knowmem_retain": "MUSE C4: ROUGE-L F1 of few-shot greedy answers to retain questions (--muse)",
    "muse_utility": "MUSE utility: muse_knowmem_retain (--muse)",
    "muse_mia_min_k_auc": "MUSE: Min-40% AUC, forget vs holdout texts (--muse)",
    "muse_privleak": "MUSE C3: PrivLeak with Min-40% on texts (--muse)",
    **{f"rwku_{side}_{kind}": f"share of {kind} probes answered on the {side} side of an RWKU-style target (--rwku)"
       for side in ("forget", "neighbour") for kind in ("fill", "qa")},    "concept_cosine": "intrinsic (ConceptVectors): cosine of each forget subject's concept vector to the target's",
    "concept_delta_norm": "intrinsic (ConceptVectors): L2 norm of the change of each concept vector",
    "concept_relative_delta": "intrinsic (ConceptVectors): that change over the target vector's norm",
    "concept_jaccard": "intrinsic (ConceptVectors): Jaccard overlap of the top-20 vocabulary-projection tokens "
                       "before and after",
}


DIRECTIONS = ("higher", "lower", "match oracle", "near 0")
NEEDS_ORACLE = {"forget_quality", "forget_ks_d", "privacy_score", "overall_score", "mia_reference_auc", "muse_privleak"}
HIGHER = {"model_utility", "memorization_score", "privacy_score", "overall_score", "forget_quality",
          "muse_knowmem_retain", "muse_utility"}


@dataclass(frozen=True)
class MetricSpec:
    """One aggregate metric: ``better`` is the direction a good unlearned model moves it ("higher", "lower",
    "match oracle": as the oracle reads it, "near 0": PrivLeak's ideal); ``needs_oracle``: computed only against
    one (``null`` with a note otherwise)."""

    name: str
    description: str
    better: str
    needs_oracle: bool = False

    def __str__(self) -> str:
        return f"{self.description} [better: {self.better}" + ("; needs an oracle]" if self.needs_oracle else "]")


def _spec(name: str, description: str) -> MetricSpec:
    if name.startswith("privleak") or name == "muse_privleak":
        better = "near 0"
    elif name == "forget_ks_d" or name.startswith("rwku_forget"):
        better = "lower"
    elif name in HIGHER or name.startswith(("retain_", "neighbours_", "world_", "rwku_neighbour")):
        better = "higher"
    else:  # forget and holdout split metrics, membership AUCs, MUSE's forget criteria, concept vectors
        better = "match oracle"
    oracle = name in NEEDS_ORACLE or name.startswith("privleak")
    return MetricSpec(name, description, better, oracle)


METRICS: dict[str, MetricSpec] = {name: _spec(name, d) for name, d in _DESCRIPTIONS.items()}


def check_metrics(names: list[str]) -> list[str]:
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ObliviateError(f"unknown metric(s) {', '.join(unknown)}; `obliviate ls metrics` lists the "
                             f"{len(METRICS)} known ones")
    return names


__all__ = ["METRICS", "MetricSpec", "EvalConfig", "EvalResult", "Scorer", "TokenScores", "check_metrics", "compare_to_oracle", "evaluate"]
