"""CodeUnlearn: honour a forget request with no gradient steps, by deleting the codes the forget data activates.

    obliviate bottleneck --model tiny --benchmark people --out cb            # once: the amortised part
    obliviate unlearn --model cb/target --method codeunlearn --out u         # each request: seconds

Wu, Dossou, Liu 2024, "CodeUnlearn: Amortized Zero-Shot Machine Unlearning in Language Models Using Discrete
Concept" (arXiv:2410.10866, Sec. 3): the model carries a sparse discrete bottleneck (:mod:`.codebook`); the codes
that fire on the forget data far more often than on other data are located and removed, so the information they
carried can no longer pass. The paper's claim is a topic-versus-non-topic drop (BLEU, METEOR, BERTScore on
topic and other inputs; no retrained oracle); obliviate's benches also hold it to the stricter oracle goal (forget
exact match inside the oracle's interval), which is ours, not the paper's. The paper ranks codes by how much more often the forget topic activates them than the
rest of the data; obliviate states its rule as the precision and recall of a code's activations:

* ``f_c``, ``r_c``: the number of token positions of the forget / contrast data (``contrast``: the retain set, or
  the calibration holdout) at which code c is among the k chosen, over ``F`` and ``R`` positions in all. Positions
  are those that predict an answer token (``tokens="answer"``; a passage's every token is its answer) or every real
  token (``tokens="all"``).
* balanced precision ``p_c = (f_c/F) / (f_c/F + r_c/R)`` (the share of the code's firing rate that is the forget
  data's, as if both sides had as many tokens); recall ``q_c = f_c / F``.
* ``rule="precision"`` (default): the codes with ``p_c >= min_precision`` and ``f_c >= min_count``, ranked by
  recall; ``rule="difference"``: ranked by ``f_c/F - r_c/R`` (the paper's frequency contrast), ``f_c >= min_count``.

The top ``n`` are deleted: ``deletion="fill"`` (default) sets their scores to −∞, so the next best codes fill the k
slots; ``deletion="zero"`` leaves them choosable but drops their contribution (:mod:`.codebook` says which the
codebook-features code does by default, and why fill can change nothing in a large codebook). CodeUnlearn builds on
that code; its default, fill, stays obliviate's. With ``n`` unset, n is
chosen by obliviate's holdout rule (:mod:`.calibrate`; no oracle): deletions grow along a doubling grid, and the
first n at which the forget facts are indistinguishable from never-trained calibration facts (LOSS and Min-K% AUC
intervals contain 0.5) is kept; otherwise the n closest to that.

``control=true`` deletes as many *random* codes instead, each drawn from the codes whose firing count (forget plus
contrast) is closest to that of a code the rule chose: the control that tells a located deletion from damage.

In an SAE with an error term (``BottleneckConfig.error_term``, for pretrained models) a deletion removes the
deleted latents' contributions from an activation the model otherwise keeps whole; information the SAE does not
reconstruct passes any deletion, so there deletion is feature ablation, not CodeUnlearn's hard bottleneck.

Deletions compose: codes a previous request deleted never fire, so the next request deletes others; each request
is recorded in the model config with its codes and their statistics, and :func:`undo` restores one.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from types import SimpleNamespace

import torch

from obliviate.data.format import IGNORE, encoded_batches
from obliviate.core.options import Options, option
from obliviate.core.utils import ObliviateError
import obliviate.methods.bottleneck.sites as sites
from obliviate.methods.common import UnlearnData
from obliviate.methods.bottleneck import FAMILY
from obliviate.methods.registry import Method, register


@dataclass
class CodeUnlearnConfig(Options):
    """Which codes a request deletes (no training: every option is about selection)."""

    n: int | None = option(None, "codes to delete (default: chosen by the holdout rule; needs calibration facts)",
                           ge=1)
    rule: str = option("precision", "precision: codes with balanced precision >= min_precision, most forget tokens "
                                     "first; difference: by forget rate minus contrast rate",
                       choices=("precision", "difference"))
    min_precision: float = option(0.7, "rule=precision: least share of a code's firing rate on the forget side "
                                       "(0.7: fires at least 2.3 x as often on forget as on contrast positions)",
                                  gt=0.5, le=1)
    min_count: int = option(2, "a code must fire on at least this many forget positions", ge=1)
    tokens: str = option("answer", "answer (positions predicting an answer token) or all (every real token)",
                         choices=("answer", "all"))
    contrast: str = option("retain", "what the forget data is contrasted with: retain (the retain set) or holdout "
                                     "(the calibration facts)", choices=("retain", "holdout"))
    max_n: int = option(512, "the holdout rule's largest n", ge=1)
    control: bool = option(False, "delete n random codes of matched firing frequency instead (a control)")
    deletion: str = option("fill", "fill: a deleted code's slot goes to the next best code (codebook-features' "
                                   "default); zero: the code may still be chosen, its contribution is dropped",
                           choices=("fill", "zero"))
    max_length: int = option(256, "tokens per example", ge=8)
    batch_size: int = option(32, "examples per forward pass", ge=1)
    seed: int = option(0, "seeds the control's draw and the holdout rule's bootstrap", ge=0)
    stop_tolerance: float = option(0.1, "holdout rule: both AUCs within this of 0.5", gt=0, le=0.5)


@torch.no_grad()
def firing_counts(model, tokenizer, examples, tokens: str, max_length: int, batch_size: int = 32):
    """``(counts (C,), positions)``: how many selected positions each global code fires on."""
    counts = torch.zeros(sites.code_count(model))
    offsets = sites.offsets(model)
    dev = next(model.parameters()).device
    total = 0
    model.eval()
    for b in encoded_batches(tokenizer, examples, max_length, batch_size):
        if tokens == "answer":
            mask = torch.zeros_like(b["labels"], dtype=torch.bool)
            mask[:, :-1] = b["labels"][:, 1:] != IGNORE  # the position that predicts an answer token
        else:
            mask = b["attention_mask"].bool()
        with sites.recording(model) as rec:
            model(input_ids=b["input_ids"].to(dev), attention_mask=b["attention_mask"].to(dev))
        for site, calls in rec.items():
            ids = calls[-1][mask]  # (M, G, k) local ids, -1 where an SAE latent was inactive
            ids = ids[ids >= 0].long() + offsets[site]
            counts += torch.bincount(ids.reshape(-1), minlength=len(counts)).float()
        total += int(mask.sum())
    return counts, total


def rank_codes(f, F, r, R, cfg: CodeUnlearnConfig, deleted: torch.Tensor):
    """Candidate codes, best first, with their statistics."""
    rf, rr = f / max(F, 1), r / max(R, 1)
    precision = rf / (rf + rr).clamp_min(1e-12)
    ok = (f >= cfg.min_count) & ~deleted
    if cfg.rule == "precision":
        ok &= precision >= cfg.min_precision
        key = rf + 1e-6 * precision
    else:
        key = rf - rr
        ok &= key > 0
    order = [int(i) for i in torch.argsort(key, descending=True) if ok[i]]
    stats = {i: {"forget_count": int(f[i]), "contrast_count": int(r[i]), "precision": round(float(precision[i]), 4),
                 "recall": round(float(rf[i]), 4)} for i in order}
    return order, stats


def _matched_random(chosen, f, r, deleted, seed: int) -> list[int]:
    """For each chosen code, a random other code with the nearest total firing count (never chosen, not deleted)."""
    g = torch.Generator().manual_seed(seed)
    total = (f + r).double()
    unavailable = deleted.clone()
    unavailable[chosen] = True
    out = []
    for c in chosen:
        gap = (total - total[c]).abs().masked_fill(unavailable, float("inf"))
        free = int((~unavailable).sum())
        if not free:
            raise ObliviateError("codeunlearn control: not enough codes left to draw from")
        # the 10 closest in frequency (ties by id, as a stable sort gives them)
        near = torch.sort(gap, stable=True).indices[:min(10, free)]
        pick = int(near[int(torch.randint(len(near), (1,), generator=g))])
        unavailable[pick] = True
        out.append(pick)
    return out


def choose_n(model, tokenizer, data: UnlearnData, order: list[int], cfg: CodeUnlearnConfig, pick) -> tuple[int, dict]:
    """The holdout rule over n (1, 2, 4, ...): the first n whose forget facts are indistinguishable from the
    calibration facts, else the probed n closest to that."""
    from obliviate.methods.calibrate import HoldoutStop

    stopper = HoldoutStop(tokenizer, data, SimpleNamespace(max_length=cfg.max_length, stop_every=1,
                                                           stop_tolerance=cfg.stop_tolerance, seed=cfg.seed), 1)
    grid, n = [], 1
    while n < min(len(order), cfg.max_n):
        grid.append(n)
        n *= 2
    grid.append(min(len(order), cfg.max_n))
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)  # the rule keeps no parameter copies: n alone decides the state
    try:
        for n in [0] + grid:
            codes = pick(n)
            sites.set_deleted(model, codes, True, zero=cfg.deletion == "zero")
            done = stopper.probe(n, model)
            sites.set_deleted(model, codes, False)
            if done:
                break
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)
    summary = stopper.finish(model, stopper.curve[-1]["step"])
    model.eval()
    return summary["chosen_step"], {**summary, "grid": [0] + grid}


def codeunlearn(model, tokenizer, data: UnlearnData, cfg: CodeUnlearnConfig) -> dict:
    if not sites.bottlenecks(model):
        raise ObliviateError("codeunlearn needs a model with a codebook or SAE bottleneck; build one once with "
                             "`obliviate bottleneck --model M --benchmark B --out DIR` and unlearn DIR/target")
    if not data.forget:
        raise ObliviateError("codeunlearn: the forget set is empty")
    contrast = data.retain if cfg.contrast == "retain" else data.holdout
    if not contrast:
        raise ObliviateError(f"codeunlearn: contrast={cfg.contrast} needs {cfg.contrast} data")
    t0 = time.time()
    f, F = firing_counts(model, tokenizer, data.forget, cfg.tokens, cfg.max_length, cfg.batch_size)
    r, R = firing_counts(model, tokenizer, contrast, cfg.tokens, cfg.max_length, cfg.batch_size)
    deleted = sites.deleted_mask(model)
    order, stats = rank_codes(f, F, r, R, cfg, deleted)
    if not order:
        raise ObliviateError(f"codeunlearn: no code meets rule={cfg.rule} (min_precision={cfg.min_precision}, "
                             f"min_count={cfg.min_count}); lower them or use rule=difference")

    def pick(n: int) -> list[int]:
        chosen = order[:n]
        return _matched_random(chosen, f, r, deleted, cfg.seed) if cfg.control else chosen

    calibration = None
    if cfg.n is None:
        if not data.holdout:
            raise ObliviateError("codeunlearn: n is unset, and choosing it by the holdout rule needs calibration facts "
                                 "(the benchmark's calibration split or --calibration FILE); else give --set n=N")
        n, calibration = choose_n(model, tokenizer, data, order, cfg, pick)
    else:
        n = min(cfg.n, len(order))
    codes = pick(n)
    sites.set_deleted(model, codes, True, zero=cfg.deletion == "zero")
    spec = sites.spec_of(model)
    request = max([d["request"] for d in spec["deletions"]], default=0) + 1
    rows = []
    for c in codes:
        site, head, index = sites.split_id(model, c)
        rows.append({"code": c, "site": site, "head": head, "index": index,
                     **(stats.get(c) or {"forget_count": int(f[c]), "contrast_count": int(r[c])})})
    entry = {"request": request, "codes": codes, "rule": "control (matched random)" if cfg.control else cfg.rule,
             "n": n, "deletion": cfg.deletion, "forget_examples": len(data.forget),
             "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    spec["deletions"] = [*spec["deletions"], entry]
    out = {"deleted": rows, "request": request, "n": n, "deletion": cfg.deletion, "candidates": len(order),
           "forget_positions": F, "contrast_positions": R, "seconds": round(time.time() - t0, 3),
           "codes_total": len(deleted), "codes_deleted_total": int(sites.deleted_mask(model).sum())}
    if calibration is not None:
        out["stop"] = {**calibration, "chosen_step": n}
    return out


def deletions(model) -> list[dict]:
    """The requests that deleted codes from ``model``, oldest first."""
    spec = sites.spec_of(model)
    if not spec:
        raise ObliviateError("this model has no bottleneck, so no code deletions")
    return list(spec["deletions"])


def undo(model, request: int) -> dict:
    """Restore the codes request ``request`` deleted (in place) and drop it from the record; returns its entry."""
    entries = deletions(model)
    hit = [d for d in entries if d["request"] == request]
    if not hit:
        raise ObliviateError(f"no deletion request {request}; the model records {[d['request'] for d in entries]}")
    sites.set_deleted(model, hit[0]["codes"], False)
    sites.spec_of(model)["deletions"] = [d for d in entries if d["request"] != request]
    return hit[0]


register(Method(
    "codeunlearn", CodeUnlearnConfig, codeunlearn,
    "CodeUnlearn: no gradient steps; delete the codes the forget data fires in a codebook or TopK-SAE "
    "bottleneck",
    family=FAMILY, lora=False))
