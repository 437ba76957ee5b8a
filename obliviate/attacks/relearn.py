"""Relearning attacks (Deeb & Roger, 2024, "Do Unlearning Methods Remove Information from Language Model
Weights?", arXiv:2410.08827): fine-tune briefly on *some* forget facts and measure the *held-out* ones. If
unlearning only hid the knowledge, a few steps on related facts bring the held-out facts back; a model that
never knew them (the oracle) cannot answer them after the same fine-tuning.

The ``retain`` variant fine-tunes on retain facts only (unrelated to the held-out facts) and watches forget
accuracy: the "benign fine-tuning" recovery.
"""
from __future__ import annotations

import copy
import random
from dataclasses import dataclass

import numpy as np

from obliviate.data import examples_from
from obliviate.data.format import bucketed_batches, collate, encode, pad_id
from obliviate.evals.scoring import Scorer
from obliviate.engine.loop import OptimConfig, optimize
from obliviate.engine.losses import mean_token_nll
from obliviate.models.anatomy import held_weights
from obliviate.core.options import Options, comma_list, option
from obliviate.core.utils import ObliviateError, seed_everything
from obliviate.attacks.common import AttackResult, accuracy, ask, by_fact
from obliviate.evals.probes import forget_facts, probe_facts


@dataclass
class RelearnConfig(Options):
    folds: int = option(2, "forget subjects split into this many folds; each fold is held out once", ge=2)
    steps: str = option("0,10,25,50", "checkpoints (optimiser steps) at which the held-out fold is measured",
                        check=comma_list(int, ge=0))
    variant: str = option("folds", "folds: train on the other folds' facts; retain: train on retain facts only",
                          choices=("folds", "retain"))
    lrs: str | None = option(None, "the attacker's learning rates; it keeps the one that recovers most, per model "
                                   "(default 3e-4,1e-3,3e-3 for the built-in from-scratch models, 1e-5,3e-5,1e-4 for "
                                   "pretrained ones)", check=comma_list(float, gt=0))
    batch_size: int = option(8, "facts per step", ge=1)
    lora_rank: int = option(0, "> 0: relearn through LoRA adapters of this rank (the weights stay frozen)", ge=0)
    max_new_tokens: int = option(24, "greedy answer length", ge=1)
    seed: int = option(0, "seeds the folds and the batch order", ge=0)


SCRATCH_LRS = "3e-4,1e-3,3e-3"
PRETRAINED_LRS = "1e-5,3e-5,1e-4"


def relearn_plan(cfg: RelearnConfig) -> str:
    """The work one model costs: fine-tuning runs of the longest checkpoint's steps (the learning rates are the
    defaults' count when unset)."""
    n_lrs = len((cfg.lrs or SCRATCH_LRS).split(","))
    runs = n_lrs * (1 if cfg.variant == "retain" else cfg.folds)
    top = max(int(x) for x in str(cfg.steps).split(",") if x.strip())
    return f"{runs} fine-tuning runs of {top} steps ({n_lrs} learning rates x " + (
        "retain facts)" if cfg.variant == "retain" else f"{cfg.folds} folds)")


def _folds(recs, k: int, seed: int) -> list[list]:
    subjects = sorted({r.subject or r.id for r in recs})
    if not 2 <= k <= len(subjects):
        raise ObliviateError(f"relearn: folds must be in 2..{len(subjects)} (the forget set's subjects), got {k}")
    random.Random(seed).shuffle(subjects)
    groups = [set(subjects[i::k]) for i in range(k)]
    return [[r for r in recs if (r.subject or r.id) in g] for g in groups]


def relearn(model, tok, bench, cfg: RelearnConfig, refs=None, scorer: Scorer | None = None) -> AttackResult:
    """Fine-tune a copy on some forget facts (or retain facts), then ask the held-out forget facts, at each
    learning rate of the sweep; the attacker keeps the learning rate whose last checkpoint recovers most.

    Score: held-out forget accuracy at the last checkpoint with that learning rate, every fold held out once.
    Curve: accuracy against steps at that learning rate. ``extra["lr_sweep"]``: the last-checkpoint accuracy at
    each learning rate."""
    recs = forget_facts(bench)
    model, dropped = held_weights(model)  # fine-tuning needs the weights; whoever holds them runs them bare
    scorer = None if dropped else scorer
    steps = sorted({int(s) for s in str(cfg.steps).split(",") if s.strip()})
    folds = _folds(recs, cfg.folds, cfg.seed) if cfg.variant == "folds" else [recs]
    scratch = getattr(model.config, "obliviate_builtin", None) is not None
    lrs = [float(x) for x in (cfg.lrs or (SCRATCH_LRS if scratch else PRETRAINED_LRS)).split(",") if x.strip()]
    runs = {lr: _relearn_at(model, tok, bench, recs, folds, steps, lr, cfg, scorer) for lr in lrs}
    best = max(lrs, key=lambda lr: (runs[lr]["score"], -lr))  # ties: the gentlest learning rate
    run = runs[best]
    return AttackResult(score=run["score"], curve=run["curve"], rows=run["rows"], strength="fine-tuning steps",
                        per_fact=run["per_fact"],
                        extra={"variant": cfg.variant, "folds": len(folds), "best_lr": best,
                               "lr_sweep": {str(lr): r["score"] for lr, r in runs.items()},
                               "trained_on": "other forget folds" if cfg.variant == "folds" else "retain facts",
                               **({"guard": dropped} if dropped else {})})


def _relearn_at(model, tok, bench, recs, folds, steps, lr: float, cfg: RelearnConfig, scorer) -> dict:
    by_step: dict[int, list[float]] = {s: [] for s in steps}
    rows, last = [], {}
    for fi, held in enumerate(folds):
        train_recs = [r for r in recs if r not in held] if cfg.variant == "folds" else \
            random.Random(cfg.seed).sample(bench.retain, min(len(bench.retain), 4 * len(recs)))
        copy_ = copy.deepcopy(model).requires_grad_(True)  # the attack trains a copy; the caller's is never touched
        if cfg.lora_rank:
            from obliviate.models import lora

            copy_ = lora.wrap(copy_, cfg.lora_rank, 0.0, "all-linear")
        probes = probe_facts(tok, held, f"fold{fi}")

        def measure(step: int, m) -> None:
            if step in by_step:  # before any step the copy is the model: its scorer's answers are reused
                r = ask((scorer or Scorer(model, tok)) if step == 0 else Scorer(m, tok), probes, cfg.max_new_tokens)
                by_step[step].append(accuracy(r))
                rows.extend({**x, "fold": fi, "step": step, "lr": lr} for x in r)
                if step == steps[-1]:
                    last.update(by_fact(r))

        measure(0, copy_)
        if steps[-1] > 0:
            enc = [encode(tok, ex) for ex in examples_from(tok, train_recs)]
            rng = random.Random(cfg.seed + fi)
            pad = pad_id(tok)

            def batches():
                while True:
                    for b in bucketed_batches(len(enc), cfg.batch_size, [len(e["input_ids"]) for e in enc], rng):
                        yield collate([enc[i] for i in b], pad)

            def loss_fn(m, batch):
                return mean_token_nll(m(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits,
                                      batch["labels"])

            seed_everything(cfg.seed + fi)
            optimize(copy_, batches(), steps[-1], loss_fn, OptimConfig(lr=lr), f"relearn lr {lr:g} fold {fi}",
                     callback=measure)
        del copy_
    curve = [{"strength": s, "score": float(np.mean(v))} for s, v in by_step.items()]
    return {"score": float(np.mean(list(last.values()))), "curve": curve, "rows": rows, "per_fact": last}
