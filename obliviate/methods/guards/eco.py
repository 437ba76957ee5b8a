"""ECO: embedding-corrupted prompts, an inference-time guard that leaves the weights untouched.

Liu, Yao, Xu, Wang, Lipton, "Large Language Model Unlearning via Embedding-Corrupted Prompts" (NeurIPS 2024,
arXiv:2406.07933; code chrisliu298/llm-unlearn-eco). A prompt classifier decides whether a prompt is about the
forget set (probability > τ); on flagged prompts the prompt tokens' embeddings are corrupted before the model
reads them (Sec. 3.2: additive Gaussian noise), so the model answers as if it could not read the subject. Which
dimensions get the noise is ``dims``: the official code's default corruption (``rand_noise_first_n`` with
``dims: 1`` in its demo and first TOFU configuration) adds noise to the **first embedding dimension only**, and so
does obliviate by default; ``dims=0`` corrupts every dimension (obliviate's default before, and the paper's
``dims = embedding_dim`` ablation). The corruption strength σ is chosen by a zeroth-order search against a target
(Sec. 3.3).

Departures, stated:

* **Classifier.** The paper fine-tunes RoBERTa; no such weights are available offline. Ours is a logistic
  regression (scikit-learn, standardised features) on the guarded model's *own* hidden states at ``layer``,
  mean-pooled over the prompt tokens, trained on the forget prompts (positive) against the retain and calibration
  prompts (negative): training data only, never evaluation text. Its coefficients are stored as tensors.
* **Noise unit.** σ is in units of the embedding matrix's per-coordinate standard deviation (the official code
  gives the strength in absolute units; a per-model unit lets one search bracket serve every model). The bracket
  reaches 10⁵ so that the one-dimension default can reach the goal: one noisy coordinate out of hundreds needs a
  far larger σ than noise on all of them.
* **Target of the σ search.** The paper matches a retained model's forget metric; obliviate never uses the oracle
  for a method's choices, so σ is the smallest value (bisection on log σ, a zeroth-order search, ``search_steps``
  evaluations) at which the forget answers' mean NLL under corruption reaches the mean NLL of the calibration
  facts the model never saw (the holdout level). With ``sigma`` set, no search runs.

Unflagged prompts run the unguarded model unchanged (bit-identical logits: a test checks it).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from obliviate.data.format import encode
from obliviate.models.guarded import Guard, GuardedModel, register_guard
from obliviate.core.options import Options, option
from obliviate.core.utils import ObliviateError
from obliviate.methods.common import UnlearnData
from obliviate.methods.guards import FAMILY
from obliviate.methods.registry import Method, register


@dataclass
class ECOConfig(Options):
    tau: float = option(0.5, "flag a prompt when the classifier's probability exceeds this", gt=0, lt=1)
    layer: int = option(-1, "hidden-state layer the classifier reads (-1: the last)")
    sigma: float | None = option(None, "noise strength in embedding standard deviations (default: the zeroth-order "
                                       "search to the holdout level)", gt=0)
    dims: int = option(1, "embedding dimensions that get the noise, the first DIMS of them (1: the official code's "
                          "default, rand_noise_first_n with dims 1; 0: every dimension)", ge=0)
    search_steps: int = option(16, "evaluations of the sigma search (bisection on log sigma)", ge=2)
    sigma_range: str = option("0.01,100000", "the search's bracket LOW,HIGH")
    l2: float = option(1.0, "the classifier's inverse regularisation strength C (scikit-learn)", gt=0)
    max_length: int = option(256, "tokens per example", ge=8)
    batch_size: int = option(16, "examples per forward pass", ge=1)
    seed: int = option(0, "seeds the noise (the same seed corrupts a prompt the same way)", ge=0)


class ClassifierGuard(Guard):
    """A guard with a prompt classifier: logistic regression on the model's own hidden states at ``layer``,
    mean-pooled over the prompt tokens (standardised; coefficients kept as tensors)."""

    def __init__(self, dim: int, layer: int, tau: float):
        super().__init__()
        self.layer, self.tau = layer, tau
        for name in ("mean", "scale", "coef"):
            self.register_buffer(name, torch.zeros(dim))
        self.register_buffer("intercept", torch.zeros(1))

    def classifier_state(self) -> dict:
        return {"dim": int(self.coef.numel()), "layer": self.layer, "tau": self.tau}

    def pooled(self, hidden_states, attention_mask, prompt_mask) -> torch.Tensor:
        """The classifier's features from a pass's hidden states: layer ``layer``, mean over the prompt tokens."""
        h = hidden_states[self.layer].detach().float()
        m = (prompt_mask & attention_mask.bool()).unsqueeze(-1).float()
        return (h * m).sum(1) / m.sum(1).clamp_min(1)

    @torch.no_grad()
    def features(self, model, input_ids, attention_mask, prompt_mask) -> torch.Tensor:
        out = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        return self.pooled(out.hidden_states, attention_mask, prompt_mask)

    def prob_of(self, f: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(((f - self.mean) / self.scale) @ self.coef + self.intercept)

    @torch.no_grad()
    def probability(self, model, input_ids, attention_mask, prompt_mask) -> torch.Tensor:
        return self.prob_of(self.features(model, input_ids, attention_mask, prompt_mask))

    def flag(self, model, input_ids, attention_mask, prompt_mask) -> torch.Tensor:
        return self.probability(model, input_ids, attention_mask, prompt_mask) > self.tau


@register_guard
class ECOGuard(ClassifierGuard):
    kind = "eco"

    def __init__(self, dim: int, layer: int, tau: float, sigma: float, seed: int, dims: int = 0):
        super().__init__(dim, layer, tau)
        self.sigma, self.seed, self.dims = sigma, seed, dims
        self.register_buffer("emb_std", torch.ones(1))

    def state(self) -> dict:
        return {**self.classifier_state(), "sigma": self.sigma, "seed": self.seed, "dims": self.dims}

    @classmethod
    def from_state(cls, spec: dict) -> "ECOGuard":
        # a guard saved before ``dims`` existed corrupted every dimension (0)
        return cls(spec["dim"], spec["layer"], spec["tau"], spec["sigma"], spec["seed"], spec.get("dims", 0))

    def corrupt(self, model, input_ids, rows: torch.Tensor, prompt_mask: torch.Tensor) -> torch.Tensor:
        emb = model.get_input_embeddings()(input_ids)  # (B, T, H)
        g = torch.Generator().manual_seed(self.seed)
        noise = torch.randn(emb.shape, generator=g).to(emb.device, emb.dtype) * (self.sigma * float(self.emb_std))
        if self.dims:
            noise[..., self.dims:] = 0  # the official rand_noise_first_n: only the first ``dims`` coordinates
        where = (prompt_mask & rows[:, None]).unsqueeze(-1).to(emb.dtype)
        return emb + noise * where

    def run(self, model, input_ids, attention_mask, prompt_mask=None, **kw):
        """A forward pass: the model's own pass also gives the classifier its features, so an unflagged batch costs
        one pass; a batch with a flagged row is run again with that row's prompt embeddings corrupted."""
        prompt_mask = attention_mask.bool() if prompt_mask is None else prompt_mask
        want = kw.pop("output_hidden_states", False)
        out = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True, **kw)
        with torch.no_grad():
            flagged = self.prob_of(self.pooled(out.hidden_states, attention_mask, prompt_mask)) > self.tau
        if not bool(flagged.any()):
            if not want:
                out.hidden_states = None
            return out
        emb = self.corrupt(model, input_ids, flagged, prompt_mask & attention_mask.bool())
        return model(inputs_embeds=emb, attention_mask=attention_mask, output_hidden_states=want, **kw)

    def prepare(self, model, input_ids, attention_mask, prompt_mask):
        flagged = self.flag(model, input_ids, attention_mask, prompt_mask)
        if not bool(flagged.any()):
            return None
        return {"inputs_embeds": self.corrupt(model, input_ids, flagged, prompt_mask & attention_mask.bool())}


def _prompt_batches(tokenizer, examples, cfg):
    """Encoded batches with their prompt masks (a passage's whole text is its prompt)."""
    from obliviate.data.format import collate, pad_id

    pad = pad_id(tokenizer)
    for s in range(0, len(examples), cfg.batch_size):
        chunk = examples[s:s + cfg.batch_size]
        enc = [encode(tokenizer, e if e.prompt else type(e)(e.target, ""), cfg.max_length) for e in chunk]
        b = collate(enc, pad)
        yield b, (b["labels"] == -100) & b["attention_mask"].bool()


def fit_classifier(guard: ClassifierGuard, model, tokenizer, positives, negatives, cfg) -> dict:
    """Fit the guard's classifier: forget prompts (positive) against retain and calibration prompts (negative).
    ``cfg`` needs ``l2``, ``tau``, ``batch_size`` and ``max_length``."""
    from sklearn.linear_model import LogisticRegression

    dev = next(model.parameters()).device
    feats = []
    for group in (positives, negatives):
        rows = []
        for b, pm in _prompt_batches(tokenizer, group, cfg):
            rows.append(guard.features(model, b["input_ids"].to(dev), b["attention_mask"].to(dev), pm.to(dev)).cpu())
        feats.append(torch.cat(rows).numpy())
    X = np.concatenate(feats)
    y = np.r_[np.ones(len(feats[0])), np.zeros(len(feats[1]))]
    mean, scale = X.mean(0), X.std(0) + 1e-6
    clf = LogisticRegression(C=cfg.l2, max_iter=2000, class_weight="balanced").fit((X - mean) / scale, y)
    guard.mean.copy_(torch.tensor(mean))
    guard.scale.copy_(torch.tensor(scale))
    guard.coef.copy_(torch.tensor(clf.coef_[0]))
    guard.intercept.copy_(torch.tensor(clf.intercept_))
    p = clf.predict_proba((X - mean) / scale)[:, 1]
    flagged = p > cfg.tau
    return {"train_positives": int(y.sum()), "train_negatives": int((1 - y).sum()),
            "train_true_positive_rate": float(flagged[y == 1].mean()),
            "train_false_positive_rate": float(flagged[y == 0].mean())}


@torch.no_grad()
def _mean_nll(model, tokenizer, examples, cfg: ECOConfig, guard: ECOGuard | None = None, sigma=None) -> float:
    """Mean answer NLL per token; with ``guard``, every prompt corrupted at ``sigma`` (flags forced on)."""
    from obliviate.methods.losses import mean_token_nll

    dev = next(model.parameters()).device
    total, n = 0.0, 0
    for b, pm in _prompt_batches(tokenizer, [e for e in examples if e.prompt], cfg):
        b = {k: v.to(dev) for k, v in b.items()}
        if guard is None:
            logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
        else:
            old, guard.sigma = guard.sigma, sigma
            emb = guard.corrupt(model, b["input_ids"], torch.ones(len(pm), dtype=torch.bool, device=dev), pm.to(dev))
            guard.sigma = old
            logits = model(inputs_embeds=emb, attention_mask=b["attention_mask"]).logits
        k = int((b["labels"][:, 1:] != -100).sum())
        total += float(mean_token_nll(logits, b["labels"])) * k
        n += k
    return total / max(n, 1)


def search_sigma(guard: ECOGuard, model, tokenizer, data: UnlearnData, cfg: ECOConfig) -> tuple[float, list]:
    """Smallest σ (bisection on log σ) whose corrupted forget NLL reaches the calibration facts' NLL."""
    goal = _mean_nll(model, tokenizer, data.holdout, cfg)
    lo, hi = (float(x) for x in cfg.sigma_range.split(","))
    curve = []

    def f(s):
        v = _mean_nll(model, tokenizer, data.forget, cfg, guard, s)
        curve.append({"sigma": s, "forget_nll": v, "goal": goal})
        return v

    if f(hi) < goal:
        return hi, curve  # even the largest σ does not reach the goal: the bracket's end, recorded as such
    for _ in range(cfg.search_steps - 1):
        mid = math.sqrt(lo * hi)
        if f(mid) >= goal:
            hi = mid
        else:
            lo = mid
    return hi, curve


def eco(model, tokenizer, data: UnlearnData, cfg: ECOConfig) -> tuple[GuardedModel, dict]:
    if not data.forget:
        raise ObliviateError("eco: the forget set is empty")
    negatives = list(data.retain) + list(data.holdout)
    if not negatives:
        raise ObliviateError("eco: needs retain or calibration prompts (the classifier's negatives)")
    if cfg.sigma is None and not data.holdout:
        raise ObliviateError("eco: sigma is unset and its search needs calibration facts (the holdout level); give "
                             "--set sigma=S or a benchmark with a calibration split")
    try:
        lo, hi = (float(x) for x in cfg.sigma_range.split(","))
        assert 0 < lo < hi
    except (ValueError, AssertionError):
        raise ObliviateError(f"eco: sigma_range must be 'LOW,HIGH' with 0 < LOW < HIGH, got {cfg.sigma_range!r}")
    t0 = time.time()
    model.eval()
    dim = model.config.hidden_size
    if cfg.dims > model.get_input_embeddings().weight.shape[1]:
        raise ObliviateError(f"eco: dims={cfg.dims} exceeds the embedding width "
                             f"{model.get_input_embeddings().weight.shape[1]}")
    guard = ECOGuard(dim, cfg.layer, cfg.tau, cfg.sigma or 1.0, cfg.seed, cfg.dims)
    guard.emb_std.fill_(float(model.get_input_embeddings().weight.detach().float().std()))
    guard.to(next(model.parameters()).device)
    info = {"classifier": fit_classifier(guard, model, tokenizer, data.forget, negatives, cfg)}
    if cfg.sigma is None:
        guard.sigma, info["sigma_search"] = search_sigma(guard, model, tokenizer, data, cfg)
    for p in model.parameters():
        p.requires_grad_(False)
    info |= {"sigma": guard.sigma, "guard": {"kind": "eco", **guard.state()}, "retained_forget_text": [],
             "seconds": round(time.time() - t0, 3)}
    return GuardedModel(model, guard), info


register(Method(
    "eco", ECOConfig, eco,
    "ECO: weights untouched; a classifier on the model's hidden states flags forget prompts, whose prompt "
    "embeddings get Gaussian noise (first dimension, as the official code; sigma by a search to the holdout "
    "level)",
    family=FAMILY, lora=False))
