"""The evaluation suite: score a model on every QA split once, then derive all metrics from those scores.

    from obliviate import evaluate
    result = evaluate(model, tok, bench)                      # no oracle: forget quality left out, and said so
    result = evaluate(model, tok, bench, oracle=oracle_result)
    result.metrics["forget_quality"], result.ci["forget_quality"]   # the value and its 95 % interval

Metric names (flat, snake_case) are listed in :data:`obliviate.evals.METRICS`. Every metric the field shares
equals TOFU's / OpenUnlearning's value on the same log-probabilities (``tests/test_parity.py``); where obliviate
adds a variant, its name says so (``extraction_strength_paper``, ``mia_gradnorm_global_auc``). Every metric
computed from per-fact values carries a 95 % interval from a subject-level bootstrap (:mod:`.uncertainty`).
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

import numpy as np

from obliviate.data import Benchmark, QARecord, format_prompt, qa_example
from obliviate.engine.loop import progress
from obliviate.core.options import Options, option
from obliviate.core.utils import ObliviateError
from obliviate.evals.memorization import (exact_match, exact_memorization, extraction_strength,
                                          extraction_strength_paper, forget_truth_ratio, harmonic_mean,
                                          length_normalised_prob, option_normalised_prob, retain_truth_ratio,
                                          rouge_l_recall, truth_ratio, truth_ratio_prob_mean)
from obliviate.evals.privacy import (forget_quality, gradnorm_scores, ks_statistic, loss_score, mia_auc,
                                     min_k_plus_plus_score, min_k_score, privleak, reference_scores, zlib_score)
from obliviate.evals.scoring import Scorer
from obliviate.evals.uncertainty import auc as fast_auc
from obliviate.evals.uncertainty import bootstrap

UTILITY_SPLITS = ("retain", "neighbours", "world")
UTILITY_PARTS = ("prob", "rougeL_recall", "truth_ratio")
FORGET_SIDE = ("forget", "holdout")  # truth ratio aggregated as mean(min(R, 1/R))
# score(token scores, answer text) for each attack that needs only the model's own log-probs
MIA_SCORES = {"loss": lambda ts, _: loss_score(ts), "min_k": lambda ts, _: min_k_score(ts),
              "min_k_plus_plus": lambda ts, _: min_k_plus_plus_score(ts), "zlib": zlib_score}
# attacks that need more: gradnorm (backward passes, EvalConfig.gradnorm), reference (the oracle)
GRADNORM = ("gradnorm", "gradnorm_global")
MIA_ALL = (*MIA_SCORES, *GRADNORM, "reference")
# PrivLeak per attack; the headline `privleak` uses Min-K% as MUSE and OpenUnlearning do
PRIVLEAK = {"min_k": "privleak", **{k: f"privleak_{k}" for k in MIA_ALL if k != "min_k"}}
MATCH_THRESHOLD = 0.8  # a fact without a value counts as stated when its answer's ROUGE-L recall reaches this
IDEAL_AUC = 0.5  # the AUC of a model that cannot tell forget from holdout facts (OpenUnlearning's ref_value)
PER_FACT = ("prob", "rougeL_recall", "exact_match", "extraction_strength", "extraction_strength_paper",
            "exact_memorization", "mc_accuracy", "paraphrased_prob", "truth_ratio_prob_mean")
# OpenUnlearning's aggregates (arXiv:2506.12618, Sec. 5): memorisation from four forget-split metrics (each as 1 - x),
# privacy from four MIA AUCs relative to the oracle's, and the overall harmonic mean with model utility
MEMORIZATION_TERMS = ("extraction_strength", "exact_memorization", "paraphrased_prob", "truth_ratio_prob_mean")
PRIVACY_MIAS = ("loss", "zlib", "min_k", "min_k_plus_plus")


@dataclass
class EvalConfig(Options):
    batch_size: int = option(32, "sequences per forward pass (fewer for long texts: see Scorer)", ge=1)
    max_new_tokens: int = option(200, "greedy answer length; generation stops at EOS (TOFU / OpenUnlearning: 200)",
                                 ge=1)
    retain_eval_size: int = option(0, "0: every retain fact; N: a seeded sample of N retain facts (faster)", ge=0)
    match_threshold: float = option(MATCH_THRESHOLD, "a fact without a value (free-text answers, as in TOFU) counts "
                                                     "as stated when the greedy answer's ROUGE-L recall is at least "
                                                     "this", gt=0, le=1)
    share_prompts: bool = option(True, "score a question's answers from one pass over its prompt (its keys and "
                                       "values reused); off: every sequence whole (the scores differ by rounding)")
    gradnorm: bool = option(False, "also the gradient-norm MIAs on forget and holdout (backward passes per fact)")
    bootstrap: int = option(1000, "subject-level bootstrap resamples for the 95 % intervals (0: no intervals)",
                            ge=0)
    seed: int = option(0, "seeds the retain sample, the bootstrap and every other random draw", ge=0)


@dataclass
class EvalResult:
    """Aggregate metrics, their 95 % intervals (``ci``), per-example rows, and the raw per-example arrays oracle
    comparisons need. ``info`` says how some metrics were formed (utility terms, the exact-match rule)."""

    metrics: dict[str, float | None]
    rows: list[dict]
    arrays: dict[str, dict[str, list]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cost: dict[str, int] = field(default_factory=dict)
    ci: dict[str, list[float] | None] = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def stated(generation: str, r: QARecord, rouge: float, threshold: float) -> float:
    """Whether a greedy answer states the fact: its value as a whole phrase when the record has one (the built-in
    benchmarks), else ROUGE-L recall against the gold answer of at least ``threshold`` (free-text answers such as
    TOFU's, whose ~60 tokens no short value captures)."""
    if r.value:
        return exact_match(generation, r.answer, r.value)
    return float(rouge >= threshold)


def _score_split(scorer: Scorer, tok, recs: list[QARecord], split: str, cfg: EvalConfig) -> tuple[list[dict], dict]:
    ans = [qa_example(tok, r.question, r.answer) for r in recs]
    para = [qa_example(tok, r.question, r.paraphrased_answer or r.answer) for r in recs]
    pert = [[qa_example(tok, r.question, p) for p in r.perturbed_answers] for r in recs]
    scorer.score(ans + para + [e for ps in pert for e in ps])  # one batched pass over unique sequences
    gens = scorer.generate([format_prompt(tok, r.question) for r in recs], cfg.max_new_tokens)
    rouge = rouge_l_recall(gens, [r.answer for r in recs])
    keys = ("subject", *PER_FACT, "truth_ratio", "nll", *MIA_SCORES)
    rows, arr = [], {k: [] for k in keys}
    for r, a, p, ps, g, rl in zip(recs, ans, para, pert, gens, rouge):
        ts_a, = scorer.score([a])
        ts_ps = scorer.score(ps)
        if split in UTILITY_SPLITS[1:] and ts_ps:
            prob = option_normalised_prob(ts_a, ts_ps)
        else:
            prob = length_normalised_prob(ts_a)
        ts_p = scorer.score([p])[0]
        tr = truth_ratio(ts_p, ts_ps) if ts_ps else float("nan")
        tr_pm = truth_ratio_prob_mean(ts_p, ts_ps) if ts_ps else float("nan")
        # multiple choice among the true (paraphrased) answer and the false ones, by length-normalised probability
        mc = float(ts_p.mean_logp > max(t.mean_logp for t in ts_ps)) if ts_ps else float("nan")
        row = {"split": split, "id": r.id, "subject": r.subject or r.id, "question": r.question, "answer": r.answer,
               "generation": g, "prob": prob, "truth_ratio": tr, "rougeL_recall": rl,
               "exact_match": stated(g, r, rl, cfg.match_threshold),
               "extraction_strength": extraction_strength(ts_a), "extraction_strength_paper": extraction_strength_paper(ts_a),
               "exact_memorization": exact_memorization(ts_a), "mc_accuracy": mc, "nll": -ts_a.mean_logp,
               "paraphrased_prob": length_normalised_prob(ts_p), "truth_ratio_prob_mean": tr_pm}
        row |= {f"mia_{k}": fn(ts_a, a.target) for k, fn in MIA_SCORES.items()}
        rows.append(row)
        for k in arr:
            arr[k].append(row[f"mia_{k}"] if k in MIA_SCORES else row[k])
    return rows, arr


def facts_by_subject(rows: list[dict], split: str = "forget") -> list[dict]:
    """Per subject of ``split``, in order of first appearance: how many facts it has, how many of them the greedy
    answer still states (``exact_match``), and their mean answer probability. A request names people, so its owner
    needs each person's count, not only the mean; counts only, since a handful of facts per subject carries no
    useful interval."""
    out: dict[str, dict] = {}
    for row in rows:
        if row["split"] != split:
            continue
        s = out.setdefault(str(row["subject"]), {"subject": str(row["subject"]), "facts": 0, "stated": 0, "prob": 0.0})
        s["facts"] += 1
        s["stated"] += int(row["exact_match"] >= 0.5)
        s["prob"] += float(row["prob"])
    for s in out.values():
        s["prob"] = round(s["prob"] / s["facts"], 6)
    return list(out.values())


def _mean(values) -> float:
    v = np.asarray(values, dtype=float)
    return float(np.nanmean(v)) if v.size and not np.isnan(v).all() else float("nan")


def _truth_ratio_agg(split: str, ratios) -> float | None:
    tr = np.asarray(ratios, dtype=float)
    tr = tr[~np.isnan(tr)]
    if not tr.size:
        return None
    return (forget_truth_ratio if split in FORGET_SIDE else retain_truth_ratio)(tr)


def memorization_score(forget: dict[str, float | None]) -> float | None:
    """OpenUnlearning's memorisation aggregate (arXiv:2506.12618, Sec. 5): HM(1 - ES, 1 - EM, 1 - para-prob,
    1 - TR) over the forget split's means of extraction strength, exact memorisation, the paraphrased answer's
    probability and the ``prob_mean`` truth ratio. Higher is better (1: nothing memorised)."""
    return harmonic_mean([None if forget.get(k) is None else 1.0 - forget[k] for k in MEMORIZATION_TERMS])


def privacy_score(aucs: dict[str, float | None], oracle_aucs: dict[str, float | None]) -> float | None:
    """Privacy aggregate: the harmonic mean, over the LOSS, zlib, Min-K% and Min-K%++ attacks, of
    ``1 - |AUC - AUC_oracle| / max(AUC_oracle, 1 - AUC_oracle)`` (1: the attack sees the model as it sees the
    oracle; 0: as far from it as an AUC can be). OpenUnlearning's paper aggregates MIA AUCs relative to the retain
    model; its exact normalisation could not be read offline, so this one, the largest possible distance, is
    obliviate's choice."""
    terms = []
    for k in PRIVACY_MIAS:
        a, o = aucs.get(k), oracle_aucs.get(k)
        if a is None or o is None:
            return None
        terms.append(1.0 - abs(a - o) / max(o, 1.0 - o))
    return harmonic_mean(terms)


def _utility(terms: dict[str, float | None]) -> float | None:
    """TOFU's model utility: the harmonic mean of the available terms (0 if any is 0)."""
    parts = [v for v in terms.values() if v is not None and not np.isnan(v)]
    if not parts:
        return None
    from scipy.stats import hmean

    return 0.0 if min(parts) <= 0 else float(hmean(parts))


def evaluate(model, tokenizer, bench: Benchmark, cfg: EvalConfig | None = None, oracle: EvalResult | None = None,
             scorer: Scorer | None = None, desc: str = "evaluate", is_oracle: bool = False) -> EvalResult:
    """Evaluate ``model`` on ``bench``; with an ``oracle`` result, also forget quality and PrivLeak. Pass
    ``is_oracle=True`` when ``model`` is the oracle itself (its comparisons with itself are left out)."""
    cfg = cfg or EvalConfig()
    if not bench.forget:
        raise ObliviateError(f"benchmark {bench.name}: the forget split is empty")
    scorer = scorer or Scorer(model, tokenizer, batch_size=cfg.batch_size, share_prompts=cfg.share_prompts)
    retain = bench.retain
    if cfg.retain_eval_size and len(retain) > cfg.retain_eval_size:
        retain = random.Random(cfg.seed).sample(retain, cfg.retain_eval_size)
    splits = {"forget": bench.forget, "retain": retain, "holdout": bench.holdout,
              "neighbours": bench.neighbours, "world": bench.world}
    rows, arrays, metrics, notes = [], {}, {}, []
    info = {"retain_evaluated": len(retain), "retain_total": len(bench.retain),
            "exact_match_rule": "the greedy answer states the fact's value (as a whole phrase) when the fact has one; "
                                f"otherwise its ROUGE-L recall against the gold answer is at least {cfg.match_threshold}"}
    if len(retain) < len(bench.retain):
        notes.append(f"retain metrics on a seeded sample of {len(retain)} of {len(bench.retain)} retain facts")
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
            for k in PER_FACT:
                metrics[f"{split}_{k}"] = _mean(a[k])
            tr = _truth_ratio_agg(split, a["truth_ratio"])
            if tr is not None:
                metrics[f"{split}_truth_ratio"] = tr
            else:
                notes.append(f"split {split!r} has no perturbed answers: no truth ratio")

    info["forget_by_subject"] = facts_by_subject(rows)
    if all(r.subject is None for r in bench.forget):
        notes.append("the forget rows name no subject: intervals resample facts, not people (too narrow when one "
                     "person's facts move together); give the rows a subject or load them with a grouping rule")
    if "forget" in arrays:
        metrics["memorization_score"] = memorization_score({k: metrics.get(f"forget_{k}") for k in MEMORIZATION_TERMS})
    terms = {f"{s}_{m}": metrics.get(f"{s}_{m}") for s in UTILITY_SPLITS if s in arrays for m in UTILITY_PARTS}
    terms = {k: v for k, v in terms.items() if v is not None}
    if terms:
        metrics["model_utility"] = _utility(terms)
        info["model_utility_terms"] = list(terms)
        if len(terms) < 9:
            notes.append(f"model_utility is the harmonic mean of {len(terms)} terms, not TOFU's 9: {', '.join(terms)}")
    if "holdout" in arrays:
        if cfg.gradnorm:
            for split in FORGET_SIDE:
                exs = [qa_example(tokenizer, r.question, r.answer) for r in splits[split]]
                for k, scores in gradnorm_scores(model, tokenizer, exs, scorer.max_length).items():
                    arrays[split][k] = scores
                    for row, sc in zip((x for x in rows if x["split"] == split), scores):
                        row[f"mia_{k}"] = sc
        for k in (*MIA_SCORES, *GRADNORM):
            if k in arrays["forget"]:
                metrics[f"mia_{k}_auc"] = mia_auc(arrays["forget"][k], arrays["holdout"][k])
    else:
        notes.append("no holdout split: membership-inference AUCs are left out")

    result = EvalResult(metrics=metrics, rows=rows, arrays=arrays, notes=notes, info=info,
                        cost={"sequences_scored": scorer.n_scored, "prompts_generated": scorer.n_generated})
    if is_oracle:
        result.metrics["forget_quality"] = result.metrics["mia_reference_auc"] = None
        result.metrics["forget_ks_d"] = None
        result.metrics["privleak_reference"] = None
        result.metrics["privacy_score"] = result.metrics["overall_score"] = None
        for k, name in PRIVLEAK.items():
            if result.metrics.get(f"mia_{k}_auc") is not None:
                result.metrics[name] = privleak(result.metrics[f"mia_{k}_auc"], IDEAL_AUC)
        result.notes.append("this is the oracle: forget_quality and the reference MIA compare a model with it; its own "
                            "PrivLeak is measured against the ideal AUC 0.5 (OpenUnlearning's ref_value), so an interval "
                            "containing 0 says that forget and holdout facts look alike to a model that saw neither")
    else:
        compare_to_oracle(result, oracle)
    if cfg.bootstrap:
        result.ci = intervals(result, None if is_oracle else oracle, cfg.bootstrap, cfg.seed)
    return result


def compare_to_oracle(result: EvalResult, oracle: EvalResult | None) -> EvalResult:
    """Add forget quality (KS p-value of forget truth ratios vs the oracle's) and PrivLeak for every MIA."""
    if oracle is None:
        result.metrics["forget_quality"] = None
        result.metrics["privleak"] = None
        result.metrics["mia_reference_auc"] = None
        result.metrics["privacy_score"] = result.metrics["overall_score"] = None
        result.notes.append("no oracle given: forget_quality, privleak, privacy_score, overall_score and the "
                            "reference MIA need one and are not computed")
        return result
    mine = np.asarray(result.arrays["forget"]["truth_ratio"], dtype=float)
    theirs = np.asarray(oracle.arrays["forget"]["truth_ratio"], dtype=float)
    if np.isnan(mine).all() or np.isnan(theirs).all():
        result.metrics["forget_quality"] = None
        result.notes.append("forget set has no perturbed answers: forget_quality needs truth ratios")
    else:
        result.metrics["forget_quality"] = forget_quality(mine[~np.isnan(mine)], theirs[~np.isnan(theirs)])
        result.metrics["forget_ks_d"] = ks_statistic(mine[~np.isnan(mine)], theirs[~np.isnan(theirs)])
    add_reference_mia(result, oracle)
    _privacy_and_overall(result, oracle)
    for k, name in PRIVLEAK.items():
        a, b = result.metrics.get(f"mia_{k}_auc"), oracle.metrics.get(f"mia_{k}_auc")
        if k == "reference" and a is not None:
            b = 0.5  # the oracle as its own reference: NLL_oracle - NLL_oracle is 0 for every text
        if a is None and k in GRADNORM:
            continue
        result.metrics[name] = privleak(a, b) if a is not None and b is not None else None
    return result


def _privacy_and_overall(result: EvalResult, oracle: EvalResult) -> None:
    """``privacy_score`` against the oracle's AUCs, and ``overall_score`` = HM(memorisation, privacy, utility)."""
    auc = {k: result.metrics.get(f"mia_{k}_auc") for k in PRIVACY_MIAS}
    result.metrics["privacy_score"] = privacy_score(auc, {k: oracle.metrics.get(f"mia_{k}_auc") for k in PRIVACY_MIAS})
    result.metrics["overall_score"] = harmonic_mean([result.metrics.get(k) for k in
                                                     ("memorization_score", "privacy_score", "model_utility")])


def add_reference_mia(result: EvalResult, reference: EvalResult) -> None:
    """The Reference attack's per-example scores (rows ``mia_reference``) and ``mia_reference_auc``, forget vs
    holdout, with ``reference`` (the oracle, or any model evaluated on the same benchmark) as the reference."""
    if "holdout" not in result.arrays or "holdout" not in reference.arrays:
        result.metrics["mia_reference_auc"] = None
        return
    scores = {}
    for split in FORGET_SIDE:
        mine, theirs = result.arrays[split]["nll"], reference.arrays[split]["nll"]
        if len(mine) != len(theirs):
            raise ObliviateError(f"the reference model was evaluated on a different {split} split "
                                 f"({len(theirs)} facts, not {len(mine)}); evaluate both on the same benchmark")
        scores[split] = reference_scores(mine, theirs)
        result.arrays[split]["reference"] = scores[split].tolist()
        for row, sc in zip((x for x in result.rows if x["split"] == split), scores[split]):
            row["mia_reference"] = float(sc)
    result.metrics["mia_reference_auc"] = mia_auc(scores["forget"], scores["holdout"])


def intervals(result: EvalResult, oracle: EvalResult | None, n: int, seed: int) -> dict[str, list[float] | None]:
    """95 % intervals of every metric computed from per-fact values, by a subject-level bootstrap
    (:func:`obliviate.evals.uncertainty.bootstrap`); the oracle's facts are resampled with the model's."""
    A = {s: {k: np.asarray(v, dtype=float) for k, v in a.items() if k != "subject"} for s, a in result.arrays.items()}
    O = ({s: {k: np.asarray(v, dtype=float) for k, v in a.items() if k != "subject"} for s, a in oracle.arrays.items()}
         if oracle is not None else None)
    stats = {}
    for s, a in A.items():
        for k in PER_FACT:
            stats[f"{s}_{k}"] = lambda i, s=s, k=k: _mean(A[s][k][i[s]])
        if f"{s}_truth_ratio" in result.metrics:
            stats[f"{s}_truth_ratio"] = lambda i, s=s: _truth_ratio_agg(s, A[s]["truth_ratio"][i[s]])
    if result.metrics.get("model_utility") is not None:
        def utility(i):
            terms = {}
            for s in UTILITY_SPLITS:
                if s in A:
                    terms[f"{s}_prob"] = _mean(A[s]["prob"][i[s]])
                    terms[f"{s}_rougeL_recall"] = _mean(A[s]["rougeL_recall"][i[s]])
                    terms[f"{s}_truth_ratio"] = _truth_ratio_agg(s, A[s]["truth_ratio"][i[s]])
            return _utility({k: v for k, v in terms.items() if k in result.info.get("model_utility_terms", [])})
        stats["model_utility"] = utility
    if result.metrics.get("memorization_score") is not None:
        stats["memorization_score"] = lambda i: memorization_score(
            {k: _mean(A["forget"][k][i["forget"]]) for k in MEMORIZATION_TERMS})
    if "holdout" in A:
        for k in MIA_ALL:
            if f"mia_{k}_auc" in result.metrics and result.metrics[f"mia_{k}_auc"] is not None and k in A["forget"]:
                stats[f"mia_{k}_auc"] = lambda i, k=k: fast_auc(A["forget"][k][i["forget"]], A["holdout"][k][i["holdout"]])
    if oracle is None and result.metrics.get("privleak") is not None and "holdout" in A:  # the oracle itself
        for k, name in PRIVLEAK.items():
            if result.metrics.get(name) is not None and k in A["forget"]:
                stats[name] = lambda i, k=k: privleak(fast_auc(A["forget"][k][i["forget"]],
                                                               A["holdout"][k][i["holdout"]]), IDEAL_AUC)
    if O is not None and "forget" in O:
        if len(O["forget"]["truth_ratio"]) != len(A["forget"]["truth_ratio"]):
            raise ObliviateError("the oracle was evaluated on another forget split; evaluate both on the same benchmark")
        if result.metrics.get("forget_quality") is not None:
            def fq(i):
                mine, theirs = A["forget"]["truth_ratio"][i["forget"]], O["forget"]["truth_ratio"][i["forget"]]
                return forget_quality(mine[~np.isnan(mine)], theirs[~np.isnan(theirs)])
            stats["forget_quality"] = fq

            def ks_d(i):
                mine, theirs = A["forget"]["truth_ratio"][i["forget"]], O["forget"]["truth_ratio"][i["forget"]]
                return ks_statistic(mine[~np.isnan(mine)], theirs[~np.isnan(theirs)])
            stats["forget_ks_d"] = ks_d
        if result.metrics.get("privacy_score") is not None:
            def privacy(i):
                def aucs(X):
                    return {k: fast_auc(X["forget"][k][i["forget"]], X["holdout"][k][i["holdout"]]) for k in PRIVACY_MIAS}
                return privacy_score(aucs(A), aucs(O))
            stats["privacy_score"] = privacy
            if result.metrics.get("overall_score") is not None:
                stats["overall_score"] = lambda i: harmonic_mean([stats["memorization_score"](i), privacy(i),
                                                                   stats["model_utility"](i)])
        for k, name in PRIVLEAK.items():
            if result.metrics.get(name) is None or "holdout" not in A or k not in A["forget"]:
                continue
            if k == "reference":
                stats[name] = lambda i: privleak(fast_auc(A["forget"]["reference"][i["forget"]],
                                                          A["holdout"]["reference"][i["holdout"]]), 0.5)
            elif k in O.get("forget", {}):
                stats[name] = lambda i, k=k: privleak(
                    fast_auc(A["forget"][k][i["forget"]], A["holdout"][k][i["holdout"]]),
                    fast_auc(O["forget"][k][i["forget"]], O["holdout"][k][i["holdout"]]))
    subjects = {s: list(a["subject"]) for s, a in result.arrays.items()}
    return bootstrap(stats, subjects, n=n, seed=seed)
