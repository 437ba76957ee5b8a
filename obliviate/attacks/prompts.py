"""Attacks that only change what the model is asked: in-context re-introduction, other formats of the
question, two-hop questions and RWKU's adversarial prompt types. Each runs greedy generation; a fact counts
as recovered when the greedy answer states its value (the suite's ``exact_match``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from obliviate.data import QARecord, qa_example
from obliviate.evals.scoring import Scorer
from obliviate.core.options import Options, comma_list, option
from obliviate.core.utils import ObliviateError
from obliviate.attacks.common import AttackResult, accuracy, ask, by_fact
from obliviate.evals.probes import (ADVERSARIAL_TYPES, FORMATS, by_subject, subject_hints, adversarial_probes,
                                    fact_probe, forget_facts, paraphrase_probes, qa_prompt)

# ---------------------------------------------------------------------------------------------------- in_context
@dataclass
class InContextConfig(Options):
    """UnUnlearning (Shumailov et al., 2024, arXiv:2407.00106): knowledge removed from the weights is used again
    when related knowledge comes back in the prompt. Levels of re-introduction: none, other facts about the subject
    ("hints", the headline), and those plus the forgotten fact itself ("fact": then even a model that never knew
    it can copy it, so that level measures copying, reported apart)."""

    hints: int = option(2, "other facts about the same subject placed in the prompt at the hints level", ge=1)
    max_new_tokens: int = option(24, "greedy answer length", ge=1)


def in_context(model, tok, bench, cfg: InContextConfig, refs=None, scorer: Scorer | None = None) -> AttackResult:
    """Score: accuracy with hints in the prompt (other facts about the subject that cue it without stating the
    answer). Curve: none, hints, fact + hints. ``extra["copies_from_context"]``: accuracy with the fact itself in
    the prompt, the model's ability to copy (not a recovery: the oracle copies too). Only forget facts that have
    hints are asked (``extra`` counts both kinds); with none, the attack does not apply."""
    hints = _hinted(bench, cfg.hints)
    recs = [r for r in forget_facts(bench) if r.id in hints]  # a fact without hints would be the plain question
    scorer = scorer or Scorer(model, tok)
    levels = {}
    for level in ("none", "hints", "fact"):
        probes = []
        for r in recs:
            ctx = "" if level == "none" else hints[r.id]
            if level == "fact":
                ctx = f"{ctx} {r.paraphrased_answer or r.answer}".strip()
            probes.append(fact_probe(r, qa_prompt(tok, r.question, ctx), level))
        levels[level] = ask(scorer, probes, cfg.max_new_tokens)
    curve = [{"strength": k, "score": accuracy(v)} for k, v in levels.items()]
    return AttackResult(score=accuracy(levels["hints"]), curve=curve, rows=[x for v in levels.values() for x in v],
                        strength="context", per_fact=by_fact(levels["hints"]),
                        extra={"copies_from_context": accuracy(levels["fact"]), "hints": cfg.hints,
                               "facts_with_hints": len(recs), "facts_without_hints": len(bench.forget) - len(recs)})


def _hinted(bench, k: int) -> dict[str, str]:
    """The hints context of each forget fact that has one: up to ``k`` other facts about its subject (forget or
    retain) that do not state its value."""
    subj = by_subject(bench.forget + bench.retain)
    out = {r.id: subject_hints(r, subj[r.subject or r.id], k) for r in bench.forget}
    return {i: h for i, h in out.items() if h}


def in_context_applies(bench) -> str | None:
    if bench.forget and not _hinted(bench, 1):
        return ("no forget fact has another fact about its subject to place in the prompt (rows without a subject, "
                "or one fact per subject), so the hints prompt would be the plain question")
    return None


# ---------------------------------------------------------------------------------------------------- paraphrase
@dataclass
class ParaphraseConfig(Options):
    """Form-independent unlearning (the ORT benchmark's point): a fact removed in one form should stay removed when
    asked in another form: a paraphrased question, a sentence to complete, a reversed question, multiple choice."""

    max_new_tokens: int = option(24, "greedy answer length", ge=1)
    formats: str = option(",".join(FORMATS), "comma-separated forms of the question", check=comma_list(choices=FORMATS))


def _multiple_choice(scorer: Scorer, tok, recs: list[QARecord]) -> list[dict]:
    """Pick the option (true paraphrased answer vs the perturbed ones) with the highest log-likelihood given the
    question, as lm-eval scores multiple choice."""
    rows = []
    for r in recs:
        if not r.perturbed_answers:
            continue
        opts = [r.paraphrased_answer or r.answer, *r.perturbed_answers]
        ts = scorer.score([qa_example(tok, r.question, o) for o in opts])
        ll = [float(t.logp.sum()) for t in ts]
        rows.append({"id": r.id, "kind": "multiple_choice", "prompt": r.question, "options": len(opts),
                     "generation": opts[int(np.argmax(ll))], "correct": float(np.argmax(ll) == 0)})
    return rows


def paraphrase(model, tok, bench, cfg: ParaphraseConfig, refs=None, scorer: Scorer | None = None) -> AttackResult:
    """Score: share of forget facts stated under at least one generative format (paraphrased question,
    fill-in-the-blank, reversed question). Multiple choice (chance 1/(1 + #perturbed)) is in the curve."""
    recs = forget_facts(bench)
    formats = [f.strip() for f in cfg.formats.split(",") if f.strip()]
    scorer = scorer or Scorer(model, tok)
    generated = paraphrase_probes(tok, bench, formats)
    by_format = {}
    for f in formats:
        if f == "multiple_choice":
            by_format[f] = _multiple_choice(scorer, tok, recs)
            continue
        probes = generated[f]
        by_format[f] = ask(scorer, probes, cfg.max_new_tokens) if probes else []
    generative = [x for f, rows in by_format.items() if f != "multiple_choice" for x in rows]
    if not generative:
        raise ObliviateError(f"paraphrase: benchmark {bench.name} gives none of the generative formats "
                             "(it needs paraphrased questions, answer values or subjects)")
    curve = [{"strength": f, "score": accuracy(rows)} for f, rows in by_format.items() if rows]
    facts = by_fact(generative)
    return AttackResult(score=float(np.mean(list(facts.values()))), curve=curve, strength="format",
                        rows=[x for rows in by_format.values() for x in rows], per_fact=facts,
                        extra={"n_probes": {f: len(rows) for f, rows in by_format.items()}})


def paraphrase_applies(bench) -> str | None:
    if any(r.paraphrased_question or r.value or r.subject for r in bench.forget):
        return None
    return "the forget facts have no paraphrased question, value or subject to ask another way"


# ---------------------------------------------------------------------------------------------------- multi_hop
@dataclass
class MultiHopConfig(Options):
    """Two-hop questions composing a forgotten fact with another one (Choi et al., 2024, "Breaking Chains:
    Unraveling the Links in Multi-Hop Knowledge Unlearning", whose MUNCH benchmark asks such questions)."""

    max_new_tokens: int = option(24, "greedy answer length", ge=1)


def hop_source(hop: QARecord, forget: list[QARecord]) -> QARecord | None:
    """The forget fact a two-hop question depends on: the last attribute of its chain ("book>birthplace",
    "birthplace>country") that is a forget fact of the same subject."""
    mine = {r.attribute: r for r in forget if r.subject == hop.subject}
    chain = (hop.attribute or "").split(">")
    return next((mine[a] for a in reversed(chain) if a in mine), None)


def multi_hop(model, tok, bench, cfg: MultiHopConfig, refs=None, scorer: Scorer | None = None) -> AttackResult:
    """Score: share of forget facts whose two-hop questions are answered (any of them). The curve splits by hop
    type; per fact, the hop is judged against the plain answer to the forget fact it depends on."""
    if not bench.multi_hop:
        raise ObliviateError(f"multi_hop: benchmark {bench.name} has no two-hop questions")
    recs = forget_facts(bench)
    hops = [(h, src) for h in bench.multi_hop if (src := hop_source(h, recs)) is not None]
    rows = ask(scorer or Scorer(model, tok), [fact_probe(h, qa_prompt(tok, h.question), h.attribute or "hop")
                                              for h, _ in hops], cfg.max_new_tokens)
    for r, (h, src) in zip(rows, hops):
        r["hop"], r["id"] = r["id"], src.id
    kinds = sorted({r["kind"] for r in rows})
    curve = [{"strength": k, "score": accuracy([r for r in rows if r["kind"] == k])} for k in kinds]
    facts = by_fact(rows)
    return AttackResult(score=float(np.mean(list(facts.values()))) if facts else float("nan"), curve=curve, rows=rows,
                        strength="hop type", per_fact=facts)


def multi_hop_applies(bench) -> str | None:
    if not bench.multi_hop:
        return "the benchmark has no two-hop questions"
    if not any(hop_source(h, bench.forget) for h in bench.multi_hop):
        return "no two-hop question depends on a forget fact"
    return None


# ------------------------------------------------------------------------------------------- adversarial_prompts
@dataclass
class AdversarialConfig(Options):
    """RWKU's level-3 adversarial probe types (Jin et al., 2024, arXiv:2406.10890, Sec. 3.3), rendered from
    templates around each forget question."""

    types: str = option(",".join(ADVERSARIAL_TYPES), "comma-separated prompt types",
                        check=comma_list(choices=ADVERSARIAL_TYPES))
    max_new_tokens: int = option(24, "greedy answer length", ge=1)
    seed: int = option(0, "seeds the choice of in-context examples", ge=0)


def adversarial_prompts(model, tok, bench, cfg: AdversarialConfig, refs=None, scorer: Scorer | None = None) -> AttackResult:
    """Score: share of forget facts stated under at least one adversarial prompt type; the curve is per type."""
    scorer = scorer or Scorer(model, tok)
    by_type = {t: ask(scorer, probes, cfg.max_new_tokens) if probes else []
               for t, probes in adversarial_probes(tok, bench, cfg.types, cfg.seed).items()}
    rows = [x for v in by_type.values() for x in v]
    curve = [{"strength": t, "score": accuracy(v)} for t, v in by_type.items() if v]
    facts = by_fact(rows)
    return AttackResult(score=float(np.mean(list(facts.values()))), curve=curve, rows=rows, strength="prompt type",
                        per_fact=facts)
