"""The evaluation suite: score a model on every QA split once, then derive all metrics from those scores.

    from obliviate import evaluate
    result = evaluate(model, tok, bench)                      # no oracle: forget quality left out, and said so
    result = evaluate(model, tok, bench, oracle=oracle_result)

Metric names (flat, snake_case) are listed in :data:`obliviate.evals.METRICS`.
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

import numpy as np

from ..data import Benchmark, QARecord, format_prompt, qa_example
from ..loop import progress
from ..options import Options, option
from ..utils import ObliviateError
from .memorization import (exact_match, exact_memorization, extraction_strength, forget_truth_ratio,
                           length_normalised_prob, option_normalised_prob, retain_truth_ratio, rouge_l_recall,
                           truth_ratio)
from .privacy import (forget_quality, gradnorm_scores, loss_score, mia_auc, min_k_plus_plus_score, min_k_score,
                      privleak, reference_scores, zlib_score)
from .scoring import Scorer

UTILITY_SPLITS = ("retain", "neighbours", "world")
FORGET_SIDE = ("forget", "holdout")  # truth ratio aggregated as mean(min(R, 1/R))
# score(token scores, answer text) for each attack that needs only the model's own log-probs
MIA_SCORES = {"loss": lambda ts, _: loss_score(ts), "min_k": lambda ts, _: min_k_score(ts),
              "min_k_plus_plus": lambda ts, _: min_k_plus_plus_score(ts), "zlib": zlib_score}
# attacks that need more: gradnorm (a backward pass per example, EvalConfig.gradnorm), reference (the oracle)
MIA_ALL = (*MIA_SCORES, "gradnorm", "reference")


@dataclass
class EvalConfig(Options):
    batch_size: int = option(32, "sequences per forward pass", ge=1)
    max_new_tokens: int = option(32, "greedy answer length", ge=1)
    retain_eval_size: int = option(60, "retain facts evaluated, a seeded sample (0: all)", ge=0)
    gradnorm: bool = option(False, "also the gradient-norm MIA on forget and holdout (one backward pass per fact)")
    seed: int = option(0, "seeds the retain sample and every other random draw of the evaluation", ge=0)


@dataclass
class EvalResult:
    """Aggregate metrics, per-example rows, and the raw per-example arrays oracle comparisons need."""

    metrics: dict[str, float | None]
    rows: list[dict]
    arrays: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cost: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _score_split(scorer: Scorer, tok, recs: list[QARecord], split: str, cfg: EvalConfig) -> tuple[list[dict], dict]:
    ans = [qa_example(tok, r.question, r.answer) for r in recs]
    para = [qa_example(tok, r.question, r.paraphrased_answer or r.answer) for r in recs]
    pert = [[qa_example(tok, r.question, p) for p in r.perturbed_answers] for r in recs]
    scorer.score(ans + para + [e for ps in pert for e in ps])  # one batched pass over unique sequences
    gens = scorer.generate([format_prompt(tok, r.question) for r in recs], cfg.max_new_tokens)
    rouge = rouge_l_recall(gens, [r.answer for r in recs])
    keys = ("prob", "truth_ratio", "rougeL_recall", "exact_match", "extraction_strength", "exact_memorization",
            "nll", *MIA_SCORES)
    rows, arr = [], {k: [] for k in keys}
    for r, a, p, ps, g, rl in zip(recs, ans, para, pert, gens, rouge):
        ts_a, = scorer.score([a])
        ts_ps = scorer.score(ps)
        if split in UTILITY_SPLITS[1:] and ts_ps:
            prob = option_normalised_prob(ts_a, ts_ps)
        else:
            prob = length_normalised_prob(ts_a)
        tr = truth_ratio(scorer.score([p])[0], ts_ps) if ts_ps else float("nan")
        row = {"split": split, "id": r.id, "question": r.question, "answer": r.answer, "generation": g,
               "prob": prob, "truth_ratio": tr, "rougeL_recall": rl, "exact_match": exact_match(g, r.answer, r.value),
               "extraction_strength": extraction_strength(ts_a), "exact_memorization": exact_memorization(ts_a),
               "nll": -ts_a.mean_logp}
        row |= {f"mia_{k}": fn(ts_a, a.target) for k, fn in MIA_SCORES.items()}
        rows.append(row)
        for k in arr:
            arr[k].append(row[f"mia_{k}"] if k in MIA_SCORES else row[k])
    return rows, arr


def evaluate(model, tokenizer, bench: Benchmark, cfg: EvalConfig | None = None,
             oracle: EvalResult | None = None, scorer: Scorer | None = None, desc: str = "evaluate") -> EvalResult:
    """Evaluate ``model`` on ``bench``; with an ``oracle`` result, also forget quality and PrivLeak."""
    cfg = cfg or EvalConfig()
    if not bench.forget:
        raise ObliviateError(f"benchmark {bench.name}: the forget split is empty")
    scorer = scorer or Scorer(model, tokenizer, batch_size=cfg.batch_size)
    retain = bench.retain
    if cfg.retain_eval_size and len(retain) > cfg.retain_eval_size:
        retain = random.Random(cfg.seed).sample(retain, cfg.retain_eval_size)
    splits = {"forget": bench.forget, "retain": retain, "holdout": bench.holdout,
              "neighbours": bench.neighbours, "world": bench.world}
    rows, arrays, metrics, notes = [], {}, {}, []
    bar, task = progress(desc, sum(len(r) for r in splits.values()))
    with bar:
        for split, recs in splits.items():
            if not recs:
                notes.append(f"split {split!r} is empty: its metrics are left out")
                continue
            bar.update(task, info=split)
            r, a = _score_split(scorer, tokenizer, recs, split, cfg)
            bar.update(task, advance=len(recs))
            rows += r
            arrays[split] = a
            tr = np.asarray(a["truth_ratio"], dtype=float)
            tr = tr[~np.isnan(tr)]
            metrics[f"{split}_prob"] = float(np.mean(a["prob"]))
            metrics[f"{split}_rougeL_recall"] = float(np.mean(a["rougeL_recall"]))
            metrics[f"{split}_exact_match"] = float(np.mean(a["exact_match"]))
            metrics[f"{split}_extraction_strength"] = float(np.nanmean(a["extraction_strength"]))
            metrics[f"{split}_exact_memorization"] = float(np.nanmean(a["exact_memorization"]))
            if tr.size:
                agg = forget_truth_ratio if split in FORGET_SIDE else retain_truth_ratio
                metrics[f"{split}_truth_ratio"] = agg(tr)
            else:
                notes.append(f"split {split!r} has no perturbed answers: no truth ratio")

    parts = [metrics.get(f"{s}_{m}") for s in UTILITY_SPLITS if s in arrays
             for m in ("prob", "rougeL_recall", "truth_ratio")]
    parts = [p for p in parts if p is not None]
    if parts:
        from scipy.stats import hmean

        metrics["model_utility"] = 0.0 if min(parts) <= 0 else float(hmean(parts))
        if len(parts) < 9:
            notes.append(f"model_utility is the harmonic mean of {len(parts)} numbers, not TOFU's 9")
    if "holdout" in arrays:
        if cfg.gradnorm:
            for split in ("forget", "holdout"):
                recs = splits[split]
                scores = gradnorm_scores(model, tokenizer, [qa_example(tokenizer, r.question, r.answer) for r in recs])
                arrays[split]["gradnorm"] = scores
                for row, sc in zip((x for x in rows if x["split"] == split), scores):
                    row["mia_gradnorm"] = sc
        for k in (*MIA_SCORES, "gradnorm"):
            if k in arrays["forget"]:
                metrics[f"mia_{k}_auc"] = mia_auc(arrays["forget"][k], arrays["holdout"][k])
    else:
        notes.append("no holdout split: membership-inference AUCs are left out")

    result = EvalResult(metrics=metrics, rows=rows, arrays=arrays, notes=notes,
                        cost={"sequences_scored": scorer.n_scored, "prompts_generated": scorer.n_generated})
    compare_to_oracle(result, oracle)
    return result


def compare_to_oracle(result: EvalResult, oracle: EvalResult | None) -> EvalResult:
    """Add forget quality (KS p-value of forget truth ratios vs the oracle's) and PrivLeak for every MIA."""
    if oracle is None:
        result.metrics["forget_quality"] = None
        result.metrics["privleak"] = None
        result.metrics["mia_reference_auc"] = None
        result.notes.append("no oracle given: forget_quality, privleak and the reference MIA need one and are not "
                            "computed")
        return result
    mine = np.asarray(result.arrays["forget"]["truth_ratio"], dtype=float)
    theirs = np.asarray(oracle.arrays["forget"]["truth_ratio"], dtype=float)
    if np.isnan(mine).all() or np.isnan(theirs).all():
        result.metrics["forget_quality"] = None
        result.notes.append("forget set has no perturbed answers: forget_quality needs truth ratios")
    else:
        result.metrics["forget_quality"] = forget_quality(mine[~np.isnan(mine)], theirs[~np.isnan(theirs)])
    for k in (*MIA_SCORES, "gradnorm"):
        a, b = result.metrics.get(f"mia_{k}_auc"), oracle.metrics.get(f"mia_{k}_auc")
        if k == "gradnorm" and a is None:
            continue
        name = "privleak" if k == "min_k_plus_plus" else f"privleak_{k}"
        result.metrics[name] = privleak(a, b) if a is not None and b is not None and b > 0 else None
    add_reference_mia(result, oracle)
    return result


def add_reference_mia(result: EvalResult, reference: EvalResult) -> None:
    """The Reference attack's per-example scores (rows ``mia_reference``) and ``mia_reference_auc``, forget vs
    holdout, with ``reference`` (the oracle, or any model evaluated on the same benchmark) as the reference."""
    if "holdout" not in result.arrays or "holdout" not in reference.arrays:
        result.metrics["mia_reference_auc"] = None
        return
    scores = {}
    for split in ("forget", "holdout"):
        mine, theirs = result.arrays[split]["nll"], reference.arrays[split]["nll"]
        if len(mine) != len(theirs):
            raise ObliviateError(f"the reference model was evaluated on a different {split} split "
                                 f"({len(theirs)} facts, not {len(mine)}); evaluate both on the same benchmark")
        scores[split] = reference_scores(mine, theirs)
        result.arrays[split]["reference"] = scores[split].tolist()
        for row, sc in zip((x for x in result.rows if x["split"] == split), scores[split]):
            row["mia_reference"] = float(sc)
    result.metrics["mia_reference_auc"] = mia_auc(scores["forget"], scores["holdout"])

