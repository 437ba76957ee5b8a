"""Calibrated stopping without an oracle: stop unlearning when forget facts look like facts never trained on.

A model owner has no oracle, but can hold out facts of the same kind that the model never saw (the benchmark's
``calibration`` split, or ``--calibration FILE``). A model that has truly forgotten the forget set scores its
facts as it scores those: a membership-inference attack between the two is at chance. ``stop=holdout`` probes
that every ``stop_every`` steps with two attacks, each an AUC of forget (members) against holdout facts:

- LOSS (Yeom et al., 2018): the mean token log-likelihood of the answer, i.e. the NLL distributions compared;
- Min-K% Prob (Shi et al., 2024, arXiv:2310.16789, Eq. 1, k = 40 % as MUSE and OpenUnlearning use).

Each AUC gets a 95 % interval from a bootstrap over subjects (people), as every headline number in obliviate.
The run stops at the first probe where **both** intervals contain 0.5 and both AUCs are within
``stop_tolerance`` of it (indistinguishable), keeping that state. Over-unlearning is a membership signal too
(forget facts *less* likely than unseen ones, PrivLeak > 0): when both AUCs' whole intervals fall below 0.5, the
run stops and returns the probed checkpoint closest to 0.5 (the larger of the two distances; ties go to the later
step); so does a run that ends before either happens, and its reason says that 0.5 was out of reach.

**Utility guard.** Each probe also measures the retain facts' teacher-forced token accuracy
(:func:`retain_token_accuracy`). A probe below ``stop_utility`` (0.9) × the input model's accuracy (the probe at
step 0) is never returned, neither as "indistinguishable" nor as the closest: a run on public TOFU whose AUCs
never left 0.98-1.0 had otherwise returned the step where the forget NLL peaked, with retain exact match 0.05
against 0.655 at the end. The summary counts the probes the guard excluded; when it excludes all but the input,
the input state is returned and the reason says so. When the two attacks disagree (Min-K% below chance while
LOSS is still above: a few answer tokens pushed far down, the rest still likely), the run goes on.
The chosen step, the reason and the probe curve are returned (and drawn in the report).

This is obliviate's rule; the idea of judging unlearning by forget-vs-unseen indistinguishability is MUSE's
PrivLeak (Shi et al., 2024, arXiv:2407.06460, Sec. 3) and TOFU's forget quality, made usable without an oracle.
The calibration facts are never trained on and never evaluated (the evaluation's MIAs use the separate
``holdout`` split), so choosing a step on them does not bias the reported PrivLeak.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from obliviate.evals.privacy import loss_score, min_k_score
from obliviate.evals.uncertainty import auc, bootstrap
from obliviate.core.utils import ObliviateError

IDEAL = 0.5
ATTACKS = {"loss": loss_score, "min_k": min_k_score}
N_BOOT = 400  # per probe; the percentile interval moves by < 0.01 beyond this on 60-vs-60 facts


def retain_token_accuracy(model, tokenizer, data, limit: int = 256, who: str = "this") -> float:
    """Teacher-forced token accuracy on (up to ``limit``) retain QA facts: the share of answer tokens that are the
    model's argmax (Tirumala et al., 2022). Cheap, and needs no generation."""
    from obliviate.data import collate, encode
    from obliviate.data.format import pad_id
    from obliviate.methods.losses import token_hits

    qa = [ex for ex in data.retain if ex.prompt][:limit]
    if not qa:
        raise ObliviateError(f"{who} needs retain facts to hold utility")
    hits = total = 0
    dev = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for s in range(0, len(qa), 32):
            b = {k: v.to(dev) for k, v in collate([encode(tokenizer, e) for e in qa[s:s + 32]], pad_id(tokenizer)).items()}
            logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
            hits += int(token_hits(logits, b["labels"]).sum())
            total += int((b["labels"][:, 1:] != -100).sum())
    model.train(was_training)
    return hits / max(total, 1)


class HoldoutStop:
    """The ``stop=holdout`` rule as a training-loop callback: ``__call__(step, model)`` returns True to stop."""

    def __init__(self, tokenizer, data, cfg, n_steps: int):
        forget = [(ex, s) for ex, s in zip(data.forget, data.subjects.get("forget") or [None] * len(data.forget))
                  if ex.prompt]
        if not data.holdout:
            raise ObliviateError("stop=holdout needs facts of the forget set's kind that the model never saw: the "
                                 "benchmark has no calibration split (give --calibration FILE, TOFU-format rows "
                                 "kept apart from --holdout, or a calibration.jsonl in the benchmark folder)")
        if not forget:
            raise ObliviateError("stop=holdout probes question-answer facts, and the forget set has none")
        self.tokenizer, self.max_length = tokenizer, cfg.max_length
        self.forget = [ex for ex, _ in forget]
        self.subjects = {"forget": [s for _, s in forget],
                         "holdout": list(data.subjects.get("holdout") or [None] * len(data.holdout))}
        self.calibration = data.holdout  # UnlearnData.holdout carries the benchmark's calibration split
        self.every = cfg.stop_every or max(1, n_steps // 20)
        self.tolerance, self.seed = cfg.stop_tolerance, cfg.seed
        self.data, self.guard = data, getattr(cfg, "stop_utility", 0.0)
        if not any(ex.prompt for ex in data.retain):
            self.guard = 0.0  # no retain facts to hold: the guard has nothing to read (said in the summary)
        self.base_utility: float | None = None
        self.guarded_out = 0
        self.curve: list[dict] = []
        self.best: tuple[float, int, dict] | None = None  # (distance from 0.5, step, trainable parameters)
        self.chosen: int | None = None
        self.reason = ""

    def __call__(self, step: int, model) -> bool:
        if step % self.every:
            return False
        return self.probe(step, model)

    def probe(self, step: int, model) -> bool:
        from obliviate.evals.scoring import Scorer

        scorer = Scorer(model, self.tokenizer, max_length=self.max_length)
        f, h = scorer.score(self.forget), scorer.score(self.calibration)
        scores = {k: (np.array([fn(t) for t in f]), np.array([fn(t) for t in h])) for k, fn in ATTACKS.items()}
        row = {"step": step, "forget_nll": float(-scores["loss"][0].mean()),
               "calibration_nll": float(-scores["loss"][1].mean())}
        stats = {k: (lambda i, a=a, b=b: auc(a[i["forget"]], b[i["holdout"]])) for k, (a, b) in scores.items()}
        cis = bootstrap(stats, self.subjects, n=N_BOOT, seed=self.seed)
        for k, (a, b) in scores.items():
            row[f"{k}_auc"], row[f"{k}_auc_ci"] = auc(a, b), cis[k]
        keeps = True
        if self.guard > 0:
            row["retain_token_accuracy"] = retain_token_accuracy(model, self.tokenizer, self.data, 128, "stop=holdout")
            if self.base_utility is None:
                self.base_utility = row["retain_token_accuracy"]
            keeps = row["retain_token_accuracy"] >= self.guard * self.base_utility
            row["keeps_utility"] = keeps
            self.guarded_out += not keeps
        self.curve.append(row)
        distance = max(abs(row[f"{k}_auc"] - IDEAL) for k in ATTACKS)
        if keeps and (self.best is None or distance <= self.best[0]):  # ties go to the later step
            self.best = (distance, step, {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad})
        model.train()
        within = all(cis[k] is not None and cis[k][0] <= IDEAL <= cis[k][1] for k in ATTACKS)
        if keeps and within and distance <= self.tolerance:
            self.chosen, self.reason = step, "indistinguishable"
            return True
        if all(cis[k] is not None and cis[k][1] < IDEAL for k in ATTACKS):
            self.reason = "over-unlearned"
            return True
        return False

    @torch.no_grad()
    def finish(self, model, last_step: int) -> dict:
        """Restore the closest probed state unless the run stopped on an indistinguishable one; the summary."""
        if self.chosen is None:
            if not self.curve or self.curve[-1]["step"] != last_step:
                self.probe(last_step, model)
                if self.chosen is not None:
                    return self.summary(last_step)
            self.reason = self.reason or "budget spent: 0.5 out of reach, the closest probe returned"
            _, step, saved = self.best
            if self.guarded_out:
                self.reason += (f" (among the probes keeping {self.guard:g} of the input's retain token accuracy; "
                                f"{self.guarded_out} below it excluded"
                                + ("; only the input itself kept it, so nothing was unlearned)" if step == 0 else ")"))
            params = dict(model.named_parameters())
            for n, v in saved.items():
                params[n].copy_(v)
            self.chosen = step
        model.eval()
        return self.summary(last_step)

    def summary(self, last_step: int) -> dict:
        row = next(r for r in self.curve if r["step"] == self.chosen)
        return {"chosen_step": self.chosen, "reason": self.reason, "steps_run": last_step, "every": self.every,
                "tolerance": self.tolerance, "loss_auc": row["loss_auc"], "min_k_auc": row["min_k_auc"],
                "indistinguishable": self.reason == "indistinguishable", "curve": self.curve,
                "calibration_facts": len(self.calibration), "forget_facts": len(self.forget),
                "utility_guard": {"share": self.guard, "input_retain_token_accuracy": self.base_utility,
                                  "probes_excluded": self.guarded_out,
                                  "chosen_retain_token_accuracy": row.get("retain_token_accuracy")}}


def holdout_gap(row: dict) -> float:
    """How far a probe row is from indistinguishable: the larger |AUC - 0.5| of the two attacks (0 is ideal)."""
    return max(abs(row[f"{k}_auc"] - IDEAL) for k in ATTACKS if not math.isnan(row[f"{k}_auc"]))
