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

import time
from dataclasses import asdict, dataclass
from typing import Callable

from ..options import from_dict
from ..utils import ObliviateError
from ..evals.scoring import Scorer
from ..loop import progress
from .common import (INFORMATIVE, RECOVERABLE, SAME_AS_ORACLE, AttackResult, Refs, accuracy, ask, fingerprint,
                     forget_facts, probe_facts, verdict)
from .prompts import (AdversarialConfig, InContextConfig, MultiHopConfig, ParaphraseConfig, adversarial_prompts,
                      in_context, multi_hop, paraphrase)
from .quantize import QuantizeConfig, quantize, rtn_quantize_
from .relearn import RelearnConfig, relearn
from .representation import ConceptTraceConfig, ProbeConfig, concept_trace, linear_cka, probe


@dataclass(frozen=True)
class Attack:
    config: type
    run: Callable
    summary: str


ATTACKS: dict[str, Attack] = {
    "relearn": Attack(RelearnConfig, relearn, "fine-tune on some forget facts (or retain facts), test the held-out ones"),
    "in_context": Attack(InContextConfig, in_context, "the forgotten fact and related facts placed in the prompt"),
    "paraphrase": Attack(ParaphraseConfig, paraphrase, "paraphrased, fill-in-the-blank, reversed, multiple-choice forms"),
    "multi_hop": Attack(MultiHopConfig, multi_hop, "two-hop questions composing a forgotten and a retained fact"),
    "quantize": Attack(QuantizeConfig, quantize, "round-to-nearest weight quantization to 8 and 4 bits"),
    "adversarial_prompts": Attack(AdversarialConfig, adversarial_prompts, "RWKU's seven adversarial prompt types"),
    "probe": Attack(ProbeConfig, probe, "per-layer linear probes for the true answer; CKA to target and oracle"),
    "concept_trace": Attack(ConceptTraceConfig, concept_trace, "MLP value vectors whose vocabulary projection is the "
                                                               "forget facts' tokens (ConceptVectors)"),
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


def run_attacks(models: dict, tok, bench, target=None, oracle=None, attacks="all",
                configs: dict[str, dict] | None = None) -> dict:
    """Run each attack on every model in ``models`` and on the target and the oracle, and judge each model.

    Returns ``{"attacks": {name: {"config", "summary", "unit", "strength", "models": {model: {score, curve,
    extra, seconds}}, "verdicts": {model: verdict}}}, "plain": {"models": {model: forget accuracy without any
    attack}, "verdicts": ...}, "thresholds": {...}}`` and per-example rows under ``"rows"`` (``{model: [row,
    ...]}``, each row naming its attack). A model that is recoverable without any attack gets "(never removed
    ...)" added to its "knowledge recoverable" verdicts.
    """
    names = parse_attacks(attacks)
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
    plain = {"models": {m: accuracy(ask(scorers[m], probes)) for m in everyone}}
    plain["verdicts"] = {m: verdict(v, plain["models"].get("target"), plain["models"].get("oracle"))
                         for m, v in plain["models"].items() if m not in ("target", "oracle")}
    bar, task = progress("attacks", len(names) * len(everyone), announce=True)
    with bar:
        for n in names:
            out[n] = _run_one(n, cfgs[n], everyone, tok, bench, refs, scorers, prints, rows, plain, bar, task)
    return {"attacks": out, "rows": rows, "plain": plain,
            "thresholds": {"informative": INFORMATIVE, "same_as_oracle": SAME_AS_ORACLE, "recoverable": RECOVERABLE}}


def _run_one(n, cfg, everyone, tok, bench, refs, scorers, prints, rows, plain, bar, task) -> dict:
    """One attack on every model, judged; advances the progress display per model."""
    entry = {"config": asdict(cfg), "summary": ATTACKS[n].summary, "models": {}, "verdicts": {}}
    for m, model in everyone.items():
        bar.update(task, info=f"{n} on {m}")
        t = time.time()
        res: AttackResult = ATTACKS[n].run(model, tok, bench, cfg, refs, scorer=scorers[m])
        bar.update(task, advance=1)
        if fingerprint(model) != prints[m]:
            raise ObliviateError(f"attack {n} changed model {m}; attacks must work on copies")  # a bug, not input
        entry["unit"], entry["strength"] = res.unit, res.strength
        entry["models"][m] = {"score": res.score, "curve": res.curve, "extra": res.extra,
                              "seconds": time.time() - t}
        rows[m] += [{"attack": n, **r} for r in res.rows]
    t_score = entry["models"].get("target", {}).get("score")
    o_score = entry["models"].get("oracle", {}).get("score")
    entry["verdicts"] = {m: verdict(v["score"], t_score, o_score) for m, v in entry["models"].items()
                         if m not in ("target", "oracle")}
    for m, v in entry["verdicts"].items():
        if v["verdict"] == "knowledge recoverable" and plain["verdicts"][m]["verdict"] == "knowledge recoverable":
            v["verdict"] += " (never removed: the plain question recovers it too)"
    return entry


__all__ = ["ATTACKS", "Attack", "AttackResult", "attack_config", "linear_cka", "parse_attacks", "run_attacks",
           "rtn_quantize_", "verdict"]
