"""Attacks on unlearned models, each judged against the oracle under the identical attack.

    obliviate attack --model UNLEARNED --target TARGET --oracle ORACLE --attack all --out ATTACK_DIR

    from obliviate.attacks import run_attacks
    res = run_attacks({"npo": model}, tok, bench, target=target, oracle=oracle, attacks=["relearn", "quantize"])
    res["attacks"]["relearn"]["verdicts"]["npo"]["verdict"]   # e.g. "knowledge recoverable"

:data:`ATTACKS` is the one registry. Every attack takes ``(model, tokenizer, benchmark, config, refs,
scorer=None)`` (``refs``: the target and oracle; ``scorer``: the model's shared :class:`Scorer`) and returns an
:class:`AttackResult`; it works on copies and never changes the model it is given (checked by
:func:`run_attacks` with a fingerprint of every parameter).
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable

from obliviate.core.options import from_dict
from obliviate.core.utils import ObliviateError
from obliviate.evals.scoring import Scorer
from obliviate.engine.loop import progress
from obliviate.attacks.common import (INFORMATIVE, N_BOOT, RECOVERABLE, SAME_AS_ORACLE, AttackResult, Refs, accuracy,
                                      ask, by_fact, fingerprint, judge)
from obliviate.evals.probes import forget_facts, probe_facts
from obliviate.attacks.prompts import (AdversarialConfig, InContextConfig, MultiHopConfig, ParaphraseConfig,
                                       adversarial_prompts, in_context, in_context_applies, multi_hop,
                                       multi_hop_applies, paraphrase, paraphrase_applies)
from obliviate.attacks.quantize import QuantizeConfig, quantize, quantize_tensor, rtn_quantize_
from obliviate.attacks.relearn import RelearnConfig, relearn, relearn_plan
from obliviate.attacks.representation import (ConceptTraceConfig, ProbeConfig, concept_trace, concept_trace_applies,
                                              linear_cka, probe, probe_applies)


@dataclass(frozen=True)
class Attack:
    config: type
    run: Callable
    summary: str
    kind: str = "gain"  # how it is judged: "gain" over the plain question, "level" (a read-out), "trace" (weights)
    applies: Callable | None = None  # applies(bench) -> None, or why the attack cannot run on this benchmark
    plan: Callable | None = None  # plan(cfg) -> the work it costs per model, in words (default: one pass)


def _relearn_applies(bench) -> str | None:
    n = len({r.subject or r.id for r in bench.forget})
    return None if n >= 2 else f"the forget set has {n} subject; relearning holds out folds of at least two"


ATTACKS: dict[str, Attack] = {
    "relearn": Attack(RelearnConfig, relearn, "fine-tune on some forget facts (or retain facts), test the held-out "
                                              "ones; best of a learning-rate sweep", applies=_relearn_applies,
                      plan=relearn_plan),
    "in_context": Attack(InContextConfig, in_context, "other facts about the subject placed in the prompt (copying the "
                                                      "fact itself is reported apart)",
                            applies=in_context_applies),
    "paraphrase": Attack(ParaphraseConfig, paraphrase, "paraphrased, fill-in-the-blank, reversed, multiple-choice forms",
                         applies=paraphrase_applies),
    "multi_hop": Attack(MultiHopConfig, multi_hop, "two-hop questions that depend on a forgotten fact",
                        applies=multi_hop_applies),
    "quantize": Attack(QuantizeConfig, quantize, "8- and 4-bit round-to-nearest, NF4 and FP4 weight quantization"),
    "adversarial_prompts": Attack(AdversarialConfig, adversarial_prompts, "RWKU's seven adversarial prompt types"),
    "probe": Attack(ProbeConfig, probe, "per-layer linear probes for the forgotten value (layer chosen on retain "
                                        "facts); CKA to target and oracle", kind="level", applies=probe_applies),
    "concept_trace": Attack(ConceptTraceConfig, concept_trace, "the target's concept vectors (MLP values whose "
                                                               "vocabulary projection is the forget facts' tokens)",
                            kind="trace", applies=concept_trace_applies),
}


def attack_config(name: str, overrides: dict | None = None):
    if name not in ATTACKS:
        raise ObliviateError(f"unknown attack {name!r}; `obliviate ls attacks` lists {', '.join(ATTACKS)}")
    return from_dict(ATTACKS[name].config, overrides, f"attack {name}")


def parse_attacks(spec: str | list[str]) -> list[str]:
    names = list(ATTACKS) if spec in ("all", ["all"]) else ([s.strip() for s in spec.split(",") if s.strip()]
                                                           if isinstance(spec, str) else list(spec))
    for n in names:
        attack_config(n)
    if not names:
        raise ObliviateError("--attack: name at least one attack (or 'all')")
    return names


def applicable(names: list[str], bench) -> tuple[list[str], dict[str, str]]:
    """The attacks that can run on ``bench``, and why the others cannot (decided from the data alone, before any
    model is loaded)."""
    skipped = {}
    for n in names:
        why = ATTACKS[n].applies(bench) if ATTACKS[n].applies else None
        if why:
            skipped[n] = why
    return [n for n in names if n not in skipped], skipped


def plan_lines(names: list[str], cfgs: dict, n_models: int) -> list[str]:
    """The planned work, one line per attack: what each costs per model, times the models it runs on."""
    return [f"{n}: {ATTACKS[n].plan(cfgs[n]) if ATTACKS[n].plan else 'one pass'} on each of {n_models} models"
            for n in names]


def run_attacks(models: dict, tok, bench, target=None, oracle=None, attacks="all",
                configs: dict[str, dict] | None = None, bootstrap: int = N_BOOT, seed: int = 0,
                budget: float | None = None) -> dict:
    """Run each attack on every model in ``models`` and on the target and the oracle, and judge each model.

    Returns ``{"attacks": {name: {"config", "summary", "kind", "unit", "models": {model: {score, curve, extra,
    seconds}}, "verdicts": {model: verdict}}}, "plain": {"models": {model: forget accuracy without any attack},
    "verdicts": ...}, "skipped": {name: reason}, "thresholds": {...}}`` and per-example rows under ``"rows"``
    (``{model: [row, ...]}``, each row naming its attack). Attacks that do not apply to ``bench`` are skipped with
    their reason; a verdict (:func:`~obliviate.attacks.common.judge`) compares the attack's gain on a model with
    its gain on the oracle, with a subject-level bootstrap interval (``bootstrap`` resamples, ``seed``). With a
    ``budget`` (seconds), the attacks not started when it is spent are skipped, and say so.
    """
    names, skipped = applicable(parse_attacks(attacks), bench)
    configs = configs or {}
    cfgs = {n: attack_config(n, configs.get(n)) for n in names}  # bad options fail before any work
    everyone = {**({"target": target} if target is not None else {}), **({"oracle": oracle} if oracle is not None else {}),
                **models}
    refs = Refs(target=target, oracle=oracle)  # its memo keeps what attacks compute on the references
    out, rows = {}, {m: [] for m in everyone}
    # one Scorer per model, shared by the attacks: the plain questions' answers are generated once, then reused
    scorers = {m: Scorer(model, tok) for m, model in everyone.items()}
    prints = {m: fingerprint(model) for m, model in everyone.items()}
    probes = probe_facts(tok, forget_facts(bench), "plain")
    plain_rows = {m: ask(scorers[m], probes) for m in everyone}
    plain_facts = {m: by_fact(r) for m, r in plain_rows.items()}
    subjects = {r.id: r.subject or r.id for r in bench.forget}
    plain = {"models": {m: accuracy(r) for m, r in plain_rows.items()}, "verdicts": {}}
    for m in everyone:
        if m in ("target", "oracle"):
            continue
        v = judge("level", plain_facts[m], plain_facts.get("target"), plain_facts.get("oracle"), subjects=subjects,
                  n=bootstrap, seed=seed)
        if v["verdict"].startswith(("knowledge recoverable", "partly recoverable")):
            v["verdict"] = "not removed: the plain question states the facts" if v["verdict"].startswith("knowledge") \
                else "partly removed: the plain question states some of the facts"
        plain["verdicts"][m] = v
    if os.environ.get("OBLIVIATE_QUIET") != "1":
        for line in plan_lines(names, cfgs, len(everyone)):
            print(f"obliviate: attack plan: {line}", file=sys.stderr)
    t0 = time.time()
    bar, task = progress("attacks", len(names) * len(everyone), announce=True)
    with bar:
        for n in names:
            if budget is not None and time.time() - t0 > budget:
                skipped[n] = f"the budget of {budget:.0f} s was spent before it started"
                continue
            out[n] = _run_one(n, cfgs[n], everyone, tok, bench, refs, scorers, prints, rows, bar, task)
            for m in out[n]["models"]:
                if m in ("target", "oracle"):
                    continue
                facts = {k: out[n]["models"][k]["per_fact"] for k in ("target", "oracle", m) if k in out[n]["models"]}
                plain_of = {"model": plain_facts[m], "target": plain_facts.get("target", {}),
                            "oracle": plain_facts.get("oracle", {})}
                out[n]["verdicts"][m] = judge(ATTACKS[n].kind, facts[m], facts.get("target"), facts.get("oracle"),
                                              plain=plain_of if ATTACKS[n].kind == "gain" else None,
                                              subjects=subjects, n=bootstrap, seed=seed)
            for v in out[n]["models"].values():
                v.pop("per_fact", None)
    return {"attacks": out, "rows": rows, "plain": plain, "skipped": skipped,
            "thresholds": {"informative": INFORMATIVE, "same_as_oracle": SAME_AS_ORACLE, "recoverable": RECOVERABLE,
                           "bootstrap": bootstrap}}


def _run_one(n, cfg, everyone, tok, bench, refs, scorers, prints, rows, bar, task) -> dict:
    """One attack on every model; advances the progress display per model."""
    entry = {"config": asdict(cfg), "summary": ATTACKS[n].summary, "kind": ATTACKS[n].kind, "models": {},
             "verdicts": {}}
    for m, model in everyone.items():
        bar.update(task, info=f"{n} on {m}")
        t = time.time()
        res: AttackResult = ATTACKS[n].run(model, tok, bench, cfg, refs, scorer=scorers[m])
        bar.update(task, advance=1)
        if fingerprint(model) != prints[m]:
            raise ObliviateError(f"attack {n} changed model {m}; attacks must work on copies")  # a bug, not input
        entry["unit"], entry["strength"] = res.unit, res.strength
        entry["models"][m] = {"score": res.score, "curve": res.curve, "extra": res.extra, "per_fact": res.per_fact,
                              "seconds": time.time() - t}
        rows[m] += [{"attack": n, **r} for r in res.rows]
    return entry


__all__ = ["ATTACKS", "Attack", "AttackResult", "applicable", "attack_config", "judge", "linear_cka",
           "parse_attacks", "quantize_tensor", "run_attacks", "rtn_quantize_"]
