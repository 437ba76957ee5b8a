"""Representation-level evidence: is the forgotten knowledge still readable inside the model?

- ``probe`` ("Are We Truly Forgetting? A Critical Re-examination of Machine Unlearning Evaluation Protocols",
  Kim et al., 2025): per layer, a logistic-regression probe (scikit-learn) learns from retain facts to read a
  fact's value from the hidden state just before the value, and is tested on the forget facts. A model that
  still encodes the forget facts lets the probe read them, even where its output no longer states them; a model
  that never saw them (the oracle) does not.
  Beside it, linear CKA (Kornblith et al., 2019, Eq. 5) between this model's and the target's / oracle's
  representations of forget and retain texts.
- ``concept_trace`` (Hong et al., 2024, "Intrinsic Evaluation of Unlearning Using Parametric Knowledge
  Traces", ConceptVectors): MLP value vectors (columns of each layer's down-projection) are read through the
  unembedding; vectors whose top tokens are the forget facts' own tokens are the knowledge's parametric trace.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch

from obliviate.data import format_prompt
from obliviate.core.options import Options, comma_list, option
from obliviate.core.utils import ObliviateError
from obliviate.attacks.common import AttackResult, hidden_states, memo
from obliviate.evals.probes import forget_facts


@dataclass
class ProbeConfig(Options):
    C: float = option(1.0, "inverse L2 strength of the logistic regression (scikit-learn's default)", gt=0)
    max_texts: int = option(200, "forget and retain texts for CKA", ge=2)
    seed: int = option(0, "seeds the sample of texts", ge=0)


def _before_value(tok, r) -> str | None:
    """The question and the answer up to the fact's value: the position from which the model must produce it."""
    if not r.value or r.value not in r.answer or r.answer.index(r.value) == 0:
        return None
    return f"{format_prompt(tok, r.question)} {r.answer[:r.answer.index(r.value)].rstrip()}"


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA of two (N, D) representation matrices (Kornblith et al., 2019): ||Yc^T Xc||_F^2 /
    (||Xc^T Xc||_F ||Yc^T Yc||_F) with column-centred Xc, Yc."""
    x = x - x.mean(0)
    y = y - y.mean(0)
    num = np.linalg.norm(y.T @ x) ** 2
    den = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(num / den) if den > 0 else float("nan")


def _cv_accuracy(x: np.ndarray, y: np.ndarray, cfg: ProbeConfig) -> float:
    """Cross-validated accuracy of the probe on retain facts (stratified 5-fold when every value has five facts,
    plain 5-fold otherwise)."""
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

    counts = np.unique(y, return_counts=True)[1]
    k = int(min(5, len(y)))
    cv = (StratifiedKFold(k, shuffle=True, random_state=cfg.seed) if counts.min() >= k
          else KFold(k, shuffle=True, random_state=cfg.seed))
    return float(cross_val_score(_classifier(cfg), x, y, cv=cv).mean())


def _classifier(cfg: ProbeConfig):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=cfg.C, max_iter=3000, random_state=cfg.seed))


def probe(model, tok, bench, cfg: ProbeConfig, refs=None, scorer=None) -> AttackResult:
    """Per layer, a multinomial logistic regression reads the fact's value (a city, a year, an occupation) from
    the hidden state at the last token before the value in the answer. It is trained on retain facts whose
    values also occur among the forget facts; the layer is chosen by cross-validation **on those retain facts**
    (never on the forget facts it is tested on); then the probe is tested on the forget facts.

    Score: that layer's accuracy on forget facts (chance: 1 / number of values). Curve: forget accuracy per layer
    (for reading only; ``extra["cv_accuracy"]`` is what chose the layer). Extra: linear CKA per layer with each
    reference model (``refs``: target, oracle) on forget and retain texts.
    """
    recs = forget_facts(bench)
    values = {r.value for r in recs if _before_value(tok, r)}
    train = [(t, r.value) for r in bench.retain if r.value in values and (t := _before_value(tok, r))]
    classes = {v for _, v in train}
    test = [(t, r.value, r.id) for r in recs if r.value in classes and (t := _before_value(tok, r))]
    if len(classes) < 2 or not test or len(train) < 5:
        raise ObliviateError(f"probe: benchmark {bench.name} has too few forget values that retain facts share "
                             "(the probe learns to read values from retain facts and tests on forget facts)")
    h_train, _ = hidden_states(model, tok, [t for t, _ in train])
    h_test, _ = hidden_states(model, tok, [t for t, _, _ in test])
    y_train, y_test = np.array([v for _, v in train]), np.array([v for _, v, _ in test])
    cv = [_cv_accuracy(a.numpy(), y_train, cfg) for a in h_train]
    layer = int(np.argmax(cv))
    curve, preds = [], {}
    for i, (a, b) in enumerate(zip(h_train, h_test)):
        clf = _classifier(cfg).fit(a.numpy(), y_train)
        preds[i] = clf.predict(b.numpy())
        curve.append({"strength": i, "score": float((preds[i] == y_test).mean())})
    pred = preds[layer]
    rows = [{"id": i, "text": t[-200:], "value": v, "layer": layer, "read": str(p), "correct": float(p == v)}
            for (t, v, i), p in zip(test, pred)]
    rng = random.Random(cfg.seed)
    texts = {"forget": [format_prompt(tok, r.question) + " " + r.answer for r in recs][:cfg.max_texts],
             "retain": [format_prompt(tok, r.question) + " " + r.answer
                        for r in rng.sample(bench.retain, min(cfg.max_texts, len(bench.retain)))]}
    cka = {}
    for name, ref in (refs or {}).items():
        if ref is None or ref is model:
            continue
        cka[name] = {}
        for split, xs in texts.items():
            _, mine = hidden_states(model, tok, xs)
            _, theirs = memo(refs, ("cka", name, split, cfg.max_texts, cfg.seed), lambda: hidden_states(ref, tok, xs))
            cka[name][split] = [linear_cka(a.numpy(), b.numpy()) for a, b in zip(mine, theirs)]
    return AttackResult(score=float((pred == y_test).mean()), curve=curve, rows=rows, strength="layer",
                        unit="probe accuracy on forget values", per_fact={r["id"]: r["correct"] for r in rows},
                        extra={"layer": layer, "layer_chosen_by": "5-fold cross-validation on retain facts",
                               "cv_accuracy": cv, "chance": 1 / len(classes), "classes": len(classes),
                               "train": len(train), "cka": cka})


def probe_applies(bench) -> str | None:
    values = {r.value for r in bench.forget if r.value and r.value in r.answer}
    if not values:
        return "the forget facts have no values to read (free-text answers)"
    if len({r.value for r in bench.retain if r.value in values}) < 2:
        return "fewer than two forget values also occur among retain facts, where the probe learns to read them"
    return None


@dataclass
class ConceptTraceConfig(Options):
    top_k: int = option(20, "tokens read from each value vector's vocabulary projection", ge=1)
    n_vectors: str = option("1,5,10,20", "the curve: mean concept share of this many strongest value vectors",
                            check=comma_list(int, ge=1))
    headline: int = option(10, "the score: mean concept share of this many strongest value vectors", ge=1)


def _concept_tokens(tok, bench) -> set[int]:
    """Token ids of the forget facts' answers and subjects (with and without a leading space) that no retain answer
    uses: the forget people's names, titles and values, not the shared template words."""
    def ids(recs):
        out = set()
        for r in recs:
            for text in (r.answer, r.value, r.subject):
                for s in (text, " " + text) if text else ():
                    out.update(tok(s, add_special_tokens=False)["input_ids"])
        return out

    return ids(forget_facts(bench)) - ids(bench.retain) - set(tok.all_special_ids)


@torch.no_grad()
def _concept_shares(model, cmask: torch.Tensor, top_k: int) -> torch.Tensor:
    """(L, I): for each layer's MLP value vector (a column of its down-projection) read through the unembedding,
    the share of its ``top_k`` tokens that are concept tokens. One layer's (V, I) projection at a time."""
    from obliviate.models.anatomy import mlp_modules

    W_U = model.get_output_embeddings().weight  # (V, H)
    out = []
    for name, mlp in mlp_modules(model, "concept_trace"):
        down = getattr(mlp, "down_proj", None)
        if not isinstance(down, torch.nn.Linear):
            raise ObliviateError(f"concept_trace: {name} has no dense down_proj (Mixture-of-Experts models are not "
                                 "supported)")
        top = (W_U.float() @ down.weight.float()).topk(top_k, dim=0).indices.cpu()  # (k, I)
        out.append(cmask[top].float().mean(0))  # (I,)
    return torch.stack(out)


@torch.no_grad()
def concept_trace(model, tok, bench, cfg: ConceptTraceConfig, refs=None, scorer=None) -> AttackResult:
    """A weight statistic, not a recovery (ConceptVectors; Hong et al., 2024): the concept share of an MLP value
    vector is the fraction of its top-k vocabulary-projection tokens that are forget-only answer tokens.

    The vectors are chosen on the **target** (its ``headline`` vectors with the largest share), so that the
    statistic does not pick its own vectors; the score is this model's mean share over those same vectors, and
    ``per_fact`` holds each vector's share (the judge bootstraps over them). Without a target among ``refs`` the
    vectors are this model's own strongest (stated in ``extra``). Curve: the mean share of the n strongest vectors
    of this model itself; extra: their cosine to the target's."""
    concept = _concept_tokens(tok, bench)
    if not concept:
        raise ObliviateError(f"concept_trace: the forget values of {bench.name} share all their tokens with retain values")
    ns = sorted({int(n) for n in str(cfg.n_vectors).split(",")} | {cfg.headline})
    cmask = torch.zeros(model.get_output_embeddings().weight.shape[0], dtype=torch.bool)
    cmask[list(concept)] = True

    mine = _concept_shares(model, cmask, cfg.top_k)  # (L, I)
    own = mine.flatten().sort(descending=True)
    curve = [{"strength": n, "score": float(own.values[:n].mean())} for n in ns]
    L, I = mine.shape
    target = (refs or {}).get("target")
    if target is not None:
        theirs = memo(refs, ("concept_shares", cfg.top_k), lambda: _concept_shares(target, cmask, cfg.top_k))
        idx = theirs.flatten().argsort(descending=True)[:cfg.headline]
        selected_on = "target"
    else:
        idx, selected_on = own.indices[:cfg.headline], "this model (no target given)"
    shares = mine.flatten()[idx]
    per_vector = {f"L{int(i) // I}:{int(i) % I}": float(v) for i, v in zip(idx, shares)}
    rows = [{"id": k, "layer": int(k[1:].split(":")[0]), "vector": int(k.split(":")[1]), "concept_share": v,
             "correct": v} for k, v in per_vector.items()]
    extra = {"concept_tokens": len(concept), "vectors_selected_on": selected_on}
    if target is not None and target is not model:
        from obliviate.models.anatomy import mlp_modules

        def vecs(m):
            return torch.stack([mlp.down_proj.weight.float().T for _, mlp in mlp_modules(m, "concept_trace")]).reshape(L * I, -1)

        extra["cosine_to_target"] = float(torch.nn.functional.cosine_similarity(vecs(model)[idx], vecs(target)[idx]).mean())
    return AttackResult(score=float(shares.mean()), curve=curve, rows=rows, strength="value vectors",
                        unit=f"concept share of the target's {cfg.headline} strongest value vectors", extra=extra,
                        per_fact=per_vector)


def concept_trace_applies(bench) -> str | None:
    return None if bench.retain else "the benchmark has no retain facts to tell forget-only tokens apart"
