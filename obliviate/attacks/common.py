"""What every attack shares: its result type, greedy forget accuracy, the oracle comparison and its verdict."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch

from ..data import QARecord, format_prompt
from ..evals.memorization import exact_match
from ..evals.scoring import Scorer
from ..utils import ObliviateError

# Verdict thresholds, in the attack's own score units (a share of facts for most attacks); stated with every verdict.
INFORMATIVE = 0.10  # the attack must separate the target from the oracle by this much to judge anything
SAME_AS_ORACLE = 0.10  # |model - oracle| at most this: indistinguishable from the oracle
RECOVERABLE = 0.50  # (model - oracle) / (target - oracle) at least this: knowledge recoverable


@dataclass
class AttackResult:
    """One attack on one model. ``score`` is the headline (higher = more forget knowledge recovered); ``curve``
    is the score against attack strength (``{"strength": x, "score": y}``); ``rows`` are per-example."""

    score: float
    curve: list[dict]
    rows: list[dict] = field(default_factory=list)
    strength: str = "strength"
    unit: str = "forget accuracy"
    extra: dict = field(default_factory=dict)


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


@dataclass(frozen=True)
class Probe:
    """One question put to a model: a prompt (already formatted), and the phrase whose presence in the greedy
    continuation counts as recovering the fact ``fact_id``."""

    prompt: str
    value: str
    fact_id: str
    kind: str = ""


def qa_prompt(tok, question: str, context: str = "") -> str:
    """The model's QA prompt, with ``context`` placed before the question inside the user turn."""
    return format_prompt(tok, f"{context} {question}".strip())


def probe_facts(tok, recs: list[QARecord], kind: str = "question") -> list[Probe]:
    return [Probe(qa_prompt(tok, r.question), r.value or r.answer, r.id, kind) for r in recs]


def ask(scorer: Scorer, probes: list[Probe], max_new_tokens: int = 24) -> list[dict]:
    """Greedy answers to ``probes`` and whether each states its value (:func:`exact_match`)."""
    gens = scorer.generate([p.prompt for p in probes], max_new_tokens)
    return [{"id": p.fact_id, "kind": p.kind, "prompt": p.prompt[-300:], "generation": g,
             "correct": exact_match(g, p.value, p.value)} for p, g in zip(probes, gens)]


def accuracy(rows: list[dict]) -> float:
    return float(np.mean([r["correct"] for r in rows])) if rows else float("nan")


def any_correct(rows: list[dict]) -> float:
    """Share of facts recovered by at least one of their probes (an attack succeeds on a fact if any prompt works)."""
    by_fact: dict[str, float] = {}
    for r in rows:
        by_fact[r["id"]] = max(by_fact.get(r["id"], 0.0), r["correct"])
    return float(np.mean(list(by_fact.values()))) if by_fact else float("nan")


def forget_facts(bench) -> list[QARecord]:
    if not bench.forget:
        raise ObliviateError(f"benchmark {bench.name}: the forget split is empty; attacks need forget facts")
    return bench.forget


def fingerprint(model) -> str:
    """A hash of every parameter and buffer: attacks check that the model they were given is unchanged."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def verdict(score: float, target: float | None, oracle: float | None) -> dict:
    """Judge one model's attack score against the target's (before unlearning) and the oracle's (never saw the
    forget set) under the identical attack.

    - ``uninformative``: the attack does not separate target from oracle by ``INFORMATIVE``;
    - ``indistinguishable from the oracle``: |score − oracle| ≤ ``SAME_AS_ORACLE``;
    - ``knowledge recoverable``: the recovered share (score − oracle)/(target − oracle) ≥ ``RECOVERABLE``;
    - ``partly recoverable`` in between (and ``less than the oracle`` below it).
    """
    rule = (f"informative if target - oracle > {INFORMATIVE}; indistinguishable if |model - oracle| <= "
            f"{SAME_AS_ORACLE}; recoverable if (model - oracle)/(target - oracle) >= {RECOVERABLE}")
    if oracle is None or target is None or any(np.isnan(x) for x in (score, target, oracle)):
        return {"verdict": "no oracle or target under the same attack: not judged", "recovered_share": None,
                "gap_to_oracle": None, "rule": rule}
    gap = score - oracle
    span = target - oracle
    share = gap / span if span > 0 else None
    if span <= INFORMATIVE:
        v = "uninformative: the attack scores the target and the oracle alike"
    elif abs(gap) <= SAME_AS_ORACLE:
        v = "indistinguishable from the oracle"
    elif share >= RECOVERABLE:
        v = "knowledge recoverable"
    elif gap > 0:
        v = "partly recoverable"
    else:
        v = "below the oracle"
    return {"verdict": v, "recovered_share": share, "gap_to_oracle": gap, "rule": rule}


@torch.no_grad()
def hidden_states(model, tok, texts: list[str], batch_size: int = 32) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per layer (embeddings excluded), the last token's hidden state and the mean over tokens, for each text:
    two lists of ``(N, H)`` tensors."""
    from ..data.format import pad_id

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
