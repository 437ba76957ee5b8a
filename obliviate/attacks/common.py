"""What every attack shares: its result type, forget-fact probes, and the judge that turns scores into verdicts.

An attack is judged by the **gain** it gives a model over the plain question, against the gain it gives the
oracle under the identical attack (the oracle never saw the forget set, so whatever an attack "recovers" from it
is the attack's own doing: copying from context, guessing a likely value). Every verdict carries a 95 % interval
from a bootstrap over the forget *subjects* (people), and a verdict is stated only when its interval clears the
threshold; otherwise the verdict says "inconclusive (too few facts)".
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch

from obliviate.evals.memorization import rouge_l_recall
from obliviate.evals.probes import Probe
from obliviate.evals.scoring import Scorer
from obliviate.evals.memorization import exact_match
from obliviate.evals.suite import MATCH_THRESHOLD
from obliviate.evals.uncertainty import SubjectResampler, interval

# Verdict thresholds, in the attack's own units (a share of facts for most attacks); stated with every verdict.
SAME_AS_ORACLE = 0.10  # an attack's extra gain over the oracle's at most this: nothing recovered beyond the oracle
INFORMATIVE = 0.10  # the attack must find more in the target than in the oracle by this much to judge anything
RECOVERABLE = 0.50  # (model - oracle) / (target - oracle) under the attack at least this: knowledge recoverable
N_BOOT = 1000


@dataclass
class AttackResult:
    """One attack on one model. ``per_fact`` maps each forget fact (or, for a weight statistic, each unit it
    reads) to what the attack recovered of it (1/0, or a share); ``score`` is their mean (higher = more forget
    knowledge recovered). ``curve`` is the score against attack strength (``{"strength": x, "score": y}``);
    ``rows`` are per-example."""

    score: float
    curve: list[dict]
    rows: list[dict] = field(default_factory=list)
    strength: str = "strength"
    unit: str = "forget accuracy"
    extra: dict = field(default_factory=dict)
    per_fact: dict[str, float] = field(default_factory=dict)


class Refs(dict):
    """The reference models (``target``, ``oracle``) every attack may compare with, and a memo of what attacks
    compute on them, so that a reference's hidden states or projections are computed once per run of
    :func:`obliviate.attacks.run_attacks`, not once for every model attacked."""

    def __init__(self, **models):
        super().__init__(**models)
        self._memo: dict = {}

    def memo(self, key, compute):
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]


def memo(refs, key, compute):
    """``compute()`` through ``refs``' memo when it has one (a plain dict of references has none)."""
    return refs.memo(key, compute) if isinstance(refs, Refs) else compute()


def ask(scorer: Scorer, probes: list[Probe], max_new_tokens: int = 24) -> list[dict]:
    """Greedy answers to ``probes`` and whether each states its fact: the value as a whole phrase, or for a
    free-text fact ROUGE-L recall of at least ``MATCH_THRESHOLD`` (generated to 200 tokens, stopping at EOS)."""
    short = [p for p in probes if p.answer is None]
    long = [p for p in probes if p.answer is not None]
    gens = dict(zip(short, scorer.generate([p.prompt for p in short], max_new_tokens)))
    if long:
        gens |= dict(zip(long, scorer.generate([p.prompt for p in long], 200)))
        recall = dict(zip(long, rouge_l_recall([gens[p] for p in long], [p.answer for p in long])))
    out = []
    for p in probes:
        g = gens[p]
        if p.answer is None:
            correct = exact_match(g, p.value, p.value)
        else:
            correct = float(recall[p] >= MATCH_THRESHOLD)
        out.append({"id": p.fact_id, "kind": p.kind, "prompt": p.prompt[-300:], "generation": g, "correct": correct})
    return out


def accuracy(rows: list[dict]) -> float:
    return float(np.mean([r["correct"] for r in rows])) if rows else float("nan")


def by_fact(rows: list[dict], key: str = "id") -> dict[str, float]:
    """Per fact, the best of its rows: a fact counts as recovered if any of its probes recovers it."""
    out: dict[str, float] = {}
    for r in rows:
        out[r[key]] = max(out.get(r[key], 0.0), float(r["correct"]))
    return out


def any_correct(rows: list[dict]) -> float:
    """Share of facts recovered by at least one of their probes (an attack succeeds on a fact if any prompt works)."""
    facts = by_fact(rows)
    return float(np.mean(list(facts.values()))) if facts else float("nan")


def fingerprint(model) -> str:
    """A hash of every parameter and buffer: attacks check that the model they were given is unchanged."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------------- judging
RULE = {
    "gain": (f"gain = score under the attack - score of the plain question, per forget fact; informative when the "
             f"target scores more than {INFORMATIVE} above the oracle under the attack; 'not removed' when the plain "
             f"question already states more than {SAME_AS_ORACLE} more facts than the oracle and at least "
             f"{RECOVERABLE} of the target's lead; 'indistinguishable from "
             f"the oracle' when the model's gain is within {SAME_AS_ORACLE} of the oracle's *and* its score under "
             f"the attack is within {SAME_AS_ORACLE} of the oracle's; 'residual' when the attack adds no more than "
             f"it adds to the oracle but the model still states more than {SAME_AS_ORACLE} more facts than the "
             f"oracle under it; 'below the oracle' when it states less; 'knowledge "
             f"recoverable' when it exceeds it by more and the model recovers at least {RECOVERABLE} of the "
             f"target-oracle gap, (model - oracle) / (target - oracle) under the attack; 'partly recoverable' in "
             f"between; each only when its 95 % interval (subject-level bootstrap) clears the threshold, otherwise "
             f"'inconclusive (too few facts)'"),
    "level": (f"compares the score itself with the oracle's (no plain baseline): 'indistinguishable from the "
              f"oracle' within {SAME_AS_ORACLE}; 'knowledge recoverable' when the model scores more than "
              f"{SAME_AS_ORACLE} above the oracle and at least {RECOVERABLE} of the target-oracle gap; 'partly "
              f"recoverable' in between; each only when its 95 % interval clears the threshold"),
    "trace": (f"a weight statistic, not a recovery: over the target's strongest concept vectors, 'trace kept' when "
              f"the model keeps at least {RECOVERABLE} of the target-oracle difference, 'trace removed' when it "
              f"keeps less, each only when the 95 % interval (bootstrap over the vectors) is on one side"),
}


def _aligned(*dicts: dict[str, float]) -> list[str]:
    keys = set(dicts[0])
    for d in dicts[1:]:
        keys &= set(d)
    return sorted(keys)


def judge(kind: str, model: dict[str, float], target: dict[str, float] | None, oracle: dict[str, float] | None,
          plain: dict[str, dict[str, float]] | None = None, subjects: dict[str, str] | None = None,
          n: int = N_BOOT, seed: int = 0) -> dict:
    """The verdict on one model under one attack (see ``RULE[kind]``), from per-fact recoveries of the model, the
    target and the oracle under the identical attack. ``kind``: "gain" (prompt and weight attacks, with ``plain``
    per-fact accuracies of the three models), "level" (a read-out without a plain baseline: the probe) or "trace"
    (a weight statistic: concept_trace). Intervals resample ``subjects`` (fact -> subject), or the units
    themselves for "trace"."""
    base = {"rule": RULE[kind], "interval": None, "gain_over_oracle": None, "recovered_share": None}
    if target is None or oracle is None:
        return {**base, "verdict": "no oracle or target under the same attack: not judged"}
    keys = _aligned(model, target, oracle, *(plain.values() if plain else []))
    if not keys:
        return {**base, "verdict": "no facts in common with the target and the oracle: not judged"}
    arr = {name: np.array([d[k] for k in keys], dtype=float) for name, d in
           (("m", model), ("t", target), ("o", oracle))}
    if plain:
        arr |= {f"p{name}": np.array([plain[role][k] for k in keys], dtype=float)
                for name, role in (("m", "model"), ("t", "target"), ("o", "oracle"))}
    groups = [subjects.get(k, k) for k in keys] if subjects and kind != "trace" else keys
    sampler = SubjectResampler({"x": groups}, seed)

    def stats(i):
        m, t, o = arr["m"][i].mean(), arr["t"][i].mean(), arr["o"][i].mean()
        out = {"informative": t - o, "share": (m - o) / (t - o) if t - o > 1e-12 else np.nan}
        if kind == "gain":
            pm, po, pt = arr["pm"][i].mean(), arr["po"][i].mean(), arr["pt"][i].mean()
            out |= {"plain": pm - po, "plain_share": (pm - po) / (pt - po) if pt - po > 1e-12 else np.nan,
                    "gain": (m - pm) - (o - po), "level": m - o}
        else:
            out["gain"] = m - o
        return out

    full = stats(np.arange(len(keys)))
    draws = [stats(sampler.draw()["x"]) for _ in range(n)]
    ci = {k: interval([d[k] for d in draws]) or [np.nan, np.nan] for k in full}
    res = {**base, "gain_over_oracle": float(full["gain"]), "interval": ci["gain"],
           "recovered_share": None if np.isnan(full["share"]) else float(full["share"]),
           "share_interval": ci["share"], "facts": len(keys), "subjects": len(set(groups))}
    lo, hi = ci["gain"]
    s_lo, s_hi = ci["share"]
    if kind == "trace":
        if not ci["informative"][0] > 0:
            res["verdict"] = "uninformative: the target's vectors carry the concept no more than the oracle's"
        elif s_lo >= RECOVERABLE:
            res["verdict"] = "trace kept"
        elif s_hi < RECOVERABLE:
            res["verdict"] = "trace removed"
        else:
            res["verdict"] = "inconclusive (too few vectors)"
        return res
    if kind == "gain" and ci["plain"][0] > SAME_AS_ORACLE and ci["plain_share"][0] >= RECOVERABLE:
        res["verdict"] = "not removed: the plain question already recovers it"
    elif not ci["informative"][0] > INFORMATIVE:
        res["verdict"] = ("uninformative: the attack scores the target and the oracle alike"
                          if ci["informative"][1] <= INFORMATIVE else "inconclusive (too few facts)")
    elif lo > SAME_AS_ORACLE:
        res["verdict"] = "knowledge recoverable" if s_lo >= RECOVERABLE else (
            "partly recoverable" if s_hi < RECOVERABLE else "partly recoverable or more (interval spans the threshold)")
    elif kind == "gain":
        res["verdict"] = _gain_verdict(lo, hi, float(full["level"]), ci["level"])
    elif hi <= SAME_AS_ORACLE and lo >= -SAME_AS_ORACLE:
        res["verdict"] = "indistinguishable from the oracle"
    elif hi < -SAME_AS_ORACLE:
        res["verdict"] = "below the oracle"
    else:
        res["verdict"] = "inconclusive (too few facts)"
    if kind == "gain":
        res["level_over_oracle"], res["level_interval"] = float(full["level"]), ci["level"]
    return res


def _gain_verdict(lo: float, hi: float, level: float, level_ci: list[float]) -> str:
    """The verdict of a "gain" attack whose gain over the oracle's is not above the threshold (``[lo, hi]`` its
    interval). A model that still states, under the attack, more than the oracle does is never "like the oracle",
    whatever the attack adds: the level (model - oracle under the attack) must be within the threshold too."""
    l_lo, l_hi = level_ci
    if l_lo > SAME_AS_ORACLE:
        adds = ("the attack adds no more than it adds to the oracle" if hi <= SAME_AS_ORACLE else
                "whether the attack adds to it is inconclusive")
        return (f"residual: states {level:+.2f} [{l_lo:+.2f}, {l_hi:+.2f}] of the forget facts more than the oracle "
                f"under the attack; {adds}")
    if hi > SAME_AS_ORACLE or l_hi > SAME_AS_ORACLE:
        return "inconclusive (too few facts)"
    if lo >= -SAME_AS_ORACLE and l_lo >= -SAME_AS_ORACLE:
        return "indistinguishable from the oracle"
    if hi < -SAME_AS_ORACLE or l_hi < -SAME_AS_ORACLE:
        return "below the oracle"
    return "inconclusive (too few facts)"


# ------------------------------------------------------------------------------------------------- hidden states
@torch.no_grad()
def hidden_states(model, tok, texts: list[str], batch_size: int = 32) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per layer (embeddings excluded), the last token's hidden state and the mean over tokens, for each text:
    two lists of ``(N, H)`` tensors."""
    from obliviate.data.format import pad_id

    model.eval()
    device = next(model.parameters()).device
    last, mean = None, None
    for s in range(0, len(texts), batch_size):
        enc = [tok(t)["input_ids"] for t in texts[s:s + batch_size]]
        T = max(map(len, enc))
        ids = torch.full((len(enc), T), pad_id(tok), dtype=torch.long)
        attn = torch.zeros((len(enc), T), dtype=torch.long)
        for i, x in enumerate(enc):  # right padding: the last real token is at len - 1
            ids[i, :len(x)] = torch.tensor(x)
            attn[i, :len(x)] = 1
        hs = model(input_ids=ids.to(device), attention_mask=attn.to(device), output_hidden_states=True).hidden_states[1:]
        lens = attn.sum(1).to(device)
        m = attn.to(device).unsqueeze(-1).float()
        l_b = [h[torch.arange(len(enc), device=device), lens - 1].float().cpu() for h in hs]  # (B, H)
        m_b = [((h.float() * m).sum(1) / m.sum(1)).cpu() for h in hs]
        last = l_b if last is None else [torch.cat([a, b]) for a, b in zip(last, l_b)]
        mean = m_b if mean is None else [torch.cat([a, b]) for a, b in zip(mean, m_b)]
    return last, mean
