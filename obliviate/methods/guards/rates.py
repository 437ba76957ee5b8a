"""What an inference-time guard's classifier lets through and what it blocks.

A guard (:mod:`obliviate.guarded`) is only as good as its prompt classifier, which is also its attack surface.
Two measurements, each with a 95 % interval from a bootstrap over subjects (:mod:`obliviate.evals.uncertainty`):

* **false-negative rate** per question form: the share of forget-fact prompts the classifier does *not* flag, for
  the plain question and every form the paraphrase and adversarial-prompt attacks put (paraphrased question,
  fill-in-the-blank, reversed question, RWKU's seven adversarial types). A miss answers with the unguarded model.
* **false-positive rate** on retain, neighbour, world and holdout prompts: the share flagged. A flagged harmless
  prompt is answered through the guard (corrupted or refused): a utility loss the exact-match columns only partly
  show.
"""
from __future__ import annotations

import numpy as np
import torch

from obliviate.data.format import format_prompt, uses_chat_template
from obliviate.evals.probes import FORMATS, adversarial_probes, forget_facts, paraphrase_probes
from obliviate.evals.uncertainty import bootstrap


@torch.no_grad()
def flags(guarded, tokenizer, prompts: list[str], batch_size: int = 32) -> list[bool]:
    """Whether the guard flags each prompt, tokenised as generation tokenises it."""
    special = not uses_chat_template(tokenizer)
    dev = next(guarded.parameters()).device
    out = []
    for s in range(0, len(prompts), batch_size):
        ids = [tokenizer(p, add_special_tokens=special)["input_ids"] for p in prompts[s:s + batch_size]]
        T = max(map(len, ids))
        x = torch.zeros((len(ids), T), dtype=torch.long)
        m = torch.zeros((len(ids), T), dtype=torch.long)
        for i, row in enumerate(ids):
            x[i, T - len(row):] = torch.tensor(row)
            m[i, T - len(row):] = 1
        x, m = x.to(dev), m.to(dev)
        out += guarded.guard.flag(guarded.inner, x, m, m.bool()).cpu().tolist()
    return out


def _rate(values: list[bool], subjects: list, seed: int) -> dict:
    arr = np.asarray(values, dtype=float)
    ci = bootstrap({"r": lambda idx: float(arr[idx["x"]].mean())}, {"x": subjects}, seed=seed)["r"]
    return {"rate": float(arr.mean()) if arr.size else None, "ci": ci, "n": int(arr.size)}


def classifier_rates(guarded, tokenizer, bench, seed: int = 0) -> dict:
    """``{"false_negative": {form: {rate, ci, n}}, "false_positive": {split: {rate, ci, n}}}``."""
    recs = forget_facts(bench)
    by_id = {r.id: r.subject or r.id for r in recs}
    forms = {"question": [(format_prompt(tokenizer, r.question), by_id[r.id]) for r in recs]}
    for group in (paraphrase_probes(tokenizer, bench, list(FORMATS)), adversarial_probes(tokenizer, bench)):
        for form, probes in group.items():
            forms[form] = [(p.prompt, by_id.get(p.fact_id, p.fact_id)) for p in probes]
    fn = {}
    for form, items in forms.items():
        if items:
            hit = flags(guarded, tokenizer, [p for p, _ in items])
            fn[form] = _rate([not h for h in hit], [s for _, s in items], seed)
    fp = {}
    for split in ("retain", "neighbours", "world", "holdout"):
        recs_s = getattr(bench, split)
        if recs_s:
            hit = flags(guarded, tokenizer, [format_prompt(tokenizer, r.question) for r in recs_s])
            fp[split] = _rate(hit, [r.subject or r.id for r in recs_s], seed)
    return {"false_negative": fn, "false_positive": fp}


def guard_evidence(model, info: dict, tokenizer, bench, seed: int) -> dict:
    """What a guard adds to its results (under ``guard``): its classifier's false-negative and false-positive rates, the forget text
    it keeps at inference, and the plain statement that its weights are the target's."""
    return {"guard": {
        "kind": model.guard.kind, "classifier_rates": classifier_rates(model, tokenizer, bench, seed),
        "retained_forget_text": info.get("retained_forget_text", []),
        "note": "weights untouched: the model's weights are the target's, so anyone who holds them recovers every "
                "forget fact by running them without the guard (the relearn attack drops it)"}}
