"""Intrinsic (weight-level) evidence of unlearning: did the vectors that carry the forget subjects change?

Hong et al. 2024, "Intrinsic Evaluation of Unlearning Using Parametric Knowledge Traces" (arXiv:2406.11614,
ConceptVectors, Sec. 5): behavioural tests can pass while the knowledge stays in the weights, so they read the
*concept vectors* themselves (MLP value vectors whose vocabulary projection spells the concept) before and after
unlearning. For each concept vector v of the target and its counterpart v' in the model under test:

* ``concept_cosine``: cos(v, v');  ``concept_delta_norm``: ‖v' − v‖;  ``concept_relative_delta``: ‖v' − v‖ / ‖v‖;
* ``concept_jaccard``: the Jaccard overlap of the top-``top_k`` tokens of ``W_U v`` and ``W'_U v'`` (each model's
  own unembedding, as the official evaluation reads it).

The vectors are located once, on the target, by :func:`obliviate.methods.editing.needle.locate` (the location rule is
stated there), so every method is measured on the same vectors; intervals bootstrap over subjects. With an oracle
of the same architecture the same numbers are given for it against the target (``oracle``): what never having
seen the subjects looks like at those coordinates (a model trained separately from the same initialisation, so
the comparison is only indicative). Mixture-of-Experts models have no dense value vectors and are skipped.
"""
from __future__ import annotations

import numpy as np
import torch

from obliviate.methods.common import UnlearnData
from obliviate.models.anatomy import down_projs
from obliviate.methods.editing.needle import NeedleConfig, locate, vocab_topk
from obliviate.evals.uncertainty import bootstrap

METRICS = ("concept_cosine", "concept_delta_norm", "concept_relative_delta", "concept_jaccard")


def concept_vectors(target, tokenizer, data: UnlearnData, vectors_per_subject: int = 1, seed: int = 0) -> list[dict]:
    """The target's concept vectors of the forget subjects (no training: location and the noising check only)."""
    return locate(target, tokenizer, data, NeedleConfig(vectors_per_subject=vectors_per_subject, seed=seed))


@torch.no_grad()
def _rows(model, target, vectors: list[dict], top_k: int) -> list[dict]:
    dm, dt = down_projs(model, "intrinsic"), down_projs(target, "intrinsic")
    v = torch.stack([dt[r["layer"]].weight[:, r["column"]].float() for r in vectors])
    w = torch.stack([dm[r["layer"]].weight[:, r["column"]].float() for r in vectors])
    tv, tw = vocab_topk(target, v, top_k), vocab_topk(model, w, top_k)
    out = []
    for i, r in enumerate(vectors):
        a, b = set(tv[i].tolist()), set(tw[i].tolist())
        d = float((w[i] - v[i]).norm())
        out.append({"subject": r["subject"], "layer": r["layer"], "column": r["column"],
                    "concept_cosine": float(torch.nn.functional.cosine_similarity(v[i], w[i], dim=0)),
                    "concept_delta_norm": d, "concept_relative_delta": d / max(float(v[i].norm()), 1e-12),
                    "concept_jaccard": len(a & b) / len(a | b)})
    return out


def _summary(rows: list[dict], seed: int) -> dict:
    subs = [r["subject"] for r in rows]
    arrays = {k: np.asarray([r[k] for r in rows], dtype=float) for k in METRICS}
    stats = {k: (lambda idx, a=a: float(a[idx["v"]].mean())) for k, a in arrays.items()}
    return {"metrics": {k: float(a.mean()) for k, a in arrays.items()},
            "ci": bootstrap(stats, {"v": subs}, seed=seed), "vectors": rows}


def intrinsic(model, target, tokenizer, vectors: list[dict], oracle=None, top_k: int = 20, seed: int = 0) -> dict:
    """The four measurements over ``vectors`` (from :func:`concept_vectors`), with intervals over subjects; and
    the oracle's where its architecture matches the target's."""
    out = {"top_k": top_k, "model": _summary(_rows(model, target, vectors, top_k), seed)}
    if oracle is not None:
        shapes = [[d.weight.shape for d in down_projs(m, "intrinsic")] for m in (oracle, target)]
        same = shapes[0] == shapes[1]
        out["oracle"] = (_summary(_rows(oracle, target, vectors, top_k), seed) if same else
                         {"skipped": "the oracle's MLPs differ in shape from the target's"})
    return out


def applies(model) -> str | None:
    """None when the model has dense MLP value vectors; else why the intrinsic metrics are skipped."""
    from obliviate.core.utils import ObliviateError

    try:
        down_projs(model, "intrinsic")
    except ObliviateError as e:
        return str(e)
    return None
