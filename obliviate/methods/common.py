"""What gradient-based unlearning methods share: their data, their common config fields, and the
forget/retain batching around :func:`obliviate.engine.loop.optimize`."""
from __future__ import annotations

import gc
import math
import os
import random
import sys
from dataclasses import dataclass, field
from typing import Callable

import torch

from obliviate.data import Benchmark, Example, collate, encode, examples_from
from obliviate.data.format import pad_id
from obliviate.engine.loop import OptimConfig, optimize
from obliviate.core.options import OptionError, Options, comma_list, option
from obliviate.core.utils import ObliviateError, seed_everything
from obliviate.methods.calibrate import HoldoutStop
from obliviate.methods.losses import token_hits
from obliviate.models.anatomy import no_cache
from obliviate.engine.plan import REFERENCE_LOGITS_BYTES
from obliviate.methods.losses import mean_token_nll, sequence_nll, token_logprobs


@dataclass
class UnlearnData:
    """The unlearning request: examples to forget and (optionally) examples to keep in a retain loss.

    ``retrain_set`` is every training example outside the forget request, in the training recipe's order:
    what exact retraining (the ``retrain`` method) trains on; ``retrain_world`` are those of its world facts that
    only a model trained from scratch is trained on (a pretrained model knows them already). No unlearning method reads
    either (they hold the utility facts, which are evaluation-only).

    ``holdout``: facts of the forget set's kind that the model never saw, for oracle-free calibration
    (``stop=holdout``); never trained on. ``subjects[split]``: the subject (person) of each example of
    ``forget``, ``retain`` and ``holdout``, for intervals over subjects (``None``: the example is its own subject).
    ``alternates``: for each forget example, plausible false answers (AltPO's positive feedback), if the
    benchmark can supply them without evaluation text."""

    forget: list[Example]
    retain: list[Example] = field(default_factory=list)
    retrain_set: list[Example] = field(default_factory=list)
    retrain_world: list[Example] = field(default_factory=list)
    holdout: list[Example] = field(default_factory=list)
    subjects: dict[str, list] = field(default_factory=dict)
    alternates: list[list[Example]] = field(default_factory=list)

    def qa_part(self, keep_retain: bool = True) -> "UnlearnData":
        """The question-answer part of the forget request (passages dropped), its subjects and alternates aligned."""
        keep = [i for i, ex in enumerate(self.forget) if ex.prompt]
        subs = self.subjects.get("forget")
        return UnlearnData(forget=[self.forget[i] for i in keep], retain=self.retain if keep_retain else [],
                           holdout=self.holdout,
                           subjects={**self.subjects, **({"forget": [subs[i] for i in keep]} if subs else {})},
                           alternates=[self.alternates[i] for i in keep] if self.alternates else [])

    @classmethod
    def from_probes(cls, target: str, tokenizer, probes: dict | None = None) -> "UnlearnData":
        """A probe target's request (RWKU's setting, :mod:`obliviate.data.rwku`): its passages to forget, its
        neighbours' passages to retain."""
        from obliviate.data.rwku import get_target, load_probes

        probes = probes or load_probes()
        t = get_target(target, probes)
        if not t.passages:
            raise ObliviateError(f"probe target {target!r} has no passages to unlearn from")
        retain = [(n, p) for n in t.neighbours for p in get_target(n, probes).passages]
        return cls(forget=[Example("", p) for p in t.passages], retain=[Example("", p) for _, p in retain],
                   subjects={"forget": [t.name] * len(t.passages), "retain": [n for n, _ in retain]})

    @classmethod
    def from_benchmark(cls, bench: Benchmark, tokenizer, include_texts: bool = True) -> "UnlearnData":
        """Forget every training record of the forget split (QA and passages); retain the retain split's QA and
        passages only, as TOFU does: world and neighbour facts are evaluation (model utility), never retain data."""
        def texts(split):
            return bench.texts.get(split, []) if include_texts else []

        forget_texts = texts("forget")
        return cls(forget=examples_from(tokenizer, bench.forget, forget_texts),
                   retain=examples_from(tokenizer, bench.retain, texts("retain")),
                   retrain_set=examples_from(tokenizer, bench.training_qa(include_forget=False),
                                             texts("retain")),
                   retrain_world=examples_from(tokenizer, bench.world if bench.utility_trained else []),
                   holdout=examples_from(tokenizer, bench.calibration),
                   subjects={"forget": [r.subject for r in bench.forget] + [t.subject for t in forget_texts],
                             "retain": [r.subject for r in bench.retain] + [t.subject for t in texts("retain")],
                             "holdout": [r.subject for r in bench.calibration]},
                   alternates=swap_alternates(tokenizer, bench) + [[] for _ in forget_texts])


def swap_alternates(tokenizer, bench: Benchmark, k: int = 5, seed: int = 0) -> list[list[Example]]:
    """For each forget QA fact, up to ``k`` plausible false answers: the true answer with its value swapped for the
    value another *retain* fact of the same attribute has (so the model has seen every alternate value, and no
    alternate is one of the benchmark's false answers, which the truth ratio scores). Facts without a ``value``
    and ``attribute`` (a TOFU file) get none: AltPO then samples alternates from the model."""
    from obliviate.data.format import qa_example

    rng = random.Random(seed)
    pools: dict[str, list[str]] = {}
    for r in bench.retain:
        if r.value and r.attribute:
            pools.setdefault(r.attribute, [])
            if r.value not in pools[r.attribute]:
                pools[r.attribute].append(r.value)
    out = []
    for r in bench.forget:
        values = [v for v in pools.get(r.attribute or "", [])
                  if v != r.value and not any(v in p for p in r.perturbed_answers)]
        if not (r.value and r.value in r.answer and values):
            out.append([])
            continue
        picks = rng.sample(values, min(k, len(values)))
        out.append([qa_example(tokenizer, r.question, r.answer.replace(r.value, v)) for v in picks])
    return out


@dataclass
class GradientConfig(Options):
    """Fields every gradient-based method takes (each method's config adds its own)."""
    # the tuner's search space (obliviate tune), option -> ("lr", lo, hi: multiples of the default lr) |
    # ("log" | "float", lo, hi) | ("int", lo, hi) | ("cat", choices)
    SEARCH = {"lr": ("lr", 0.1, 10.0), "epochs": ("int", 1, 5)}

    lr: float | None = option(None, "learning rate (default: 1e-5 for pretrained models, TOFU's unlearning lr; "
                                    "1e-3 for the from-scratch built-ins)", gt=0)
    epochs: int = option(5, "passes over the forget set (TOFU: 5)", ge=1)
    max_steps: int = option(0, "if > 0, the number of optimiser steps (overrides epochs)", ge=0)
    step_ceiling: int = option(100_000, "a run planning more optimiser steps than this is refused before it starts "
                                        "(a typo such as epochs=1e9); raise it on purpose for a longer run", ge=1)
    batch_size: int = option(8, "forget examples per step (and as many retain examples)", ge=1)
    weight_decay: float = option(0.0, "AdamW weight decay", ge=0)
    warmup_ratio: float = option(0.0, "share of the steps spent warming the learning rate up", ge=0, lt=1)
    grad_clip: float = option(1.0, "gradient-norm clipping (0: none)", ge=0)
    max_length: int = option(256, "tokens per example (prompt + answer), longer ones are cut", ge=8)
    bf16: bool = option(False, "bfloat16 autocast for each step's forward passes and losses; weights, gradients, the "
                               "optimiser and a reference pass made once before the steps stay float32 (as the "
                               "target/oracle recipe's bf16; faster on GPUs and on CPUs with AVX512-BF16: "
                               "bench/unlearn_speed.py)")
    seed: int = option(0, "seeds batch order, refusal choice and every random draw of the method", ge=0)
    lora_rank: int = option(0, "> 0: train peft LoRA adapters of this rank instead of all parameters", ge=0)
    lora_alpha: float | None = option(None, "LoRA scaling alpha (default: 2 x rank)", gt=0)
    lora_targets: str = option("all-linear", "modules LoRA wraps: all-linear, or a comma list such as q_proj,v_proj",
                               check=comma_list())
    lora_merge: bool = option(True, "merge the adapters into the weights (false: save the adapter alone)")
    eval_every: int = option(0, "> 0: every N steps, probe forget/retain NLL and token exact match (a logged curve)",
                             ge=0)
    probe_size: int = option(16, "examples per side in that probe", ge=1)
    keep_best: str = option("none", "none: keep the last step; gap: the probed step with the largest retain-minus-"
                                    "forget token exact match (needs eval_every > 0)", choices=("none", "gap"))
    stop: str = option("none", "none: run the whole budget; holdout: stop when forget facts are indistinguishable "
                               "from never-trained calibration facts (LOSS and Min-K% AUC intervals contain 0.5), "
                               "else return the probed step closest to that", choices=("none", "holdout"))
    stop_every: int = option(0, "steps between stop=holdout probes (0: about 20 probes over the run)", ge=0)
    stop_tolerance: float = option(0.1, "stop=holdout also needs both AUCs within this of 0.5", gt=0, le=0.5)
    stop_utility: float = option(0.9, "stop=holdout never returns a probe whose retain token accuracy is below this "
                                      "share of the input model's (0: no guard)", ge=0, le=1)

    def check(self) -> None:
        if self.keep_best != "none" and self.eval_every <= 0:
            raise OptionError(f"keep_best={self.keep_best!r} needs eval_every > 0")
        if self.keep_best != "none" and self.stop != "none":
            raise OptionError("keep_best and stop=holdout both choose the returned step; set one of them")


def default_lr(model, cfg: GradientConfig) -> float:
    if cfg.lr is not None:
        return cfg.lr
    scratch = getattr(model.config, "obliviate_builtin", None) is not None
    return 1e-3 if scratch else 1e-5


@dataclass
class Scope:
    """Restricts a gradient method to part of the model (set by ``localized`` and ``uoe``).

    ``params``: the only parameters the optimiser updates. ``grad_masks``: for a parameter that holds several
    components at once (a fused tensor of all experts), a 0/1 mask of the entries that may change; every other
    entry's gradient is zeroed and its value is restored exactly after the run. ``extra_loss(model, batch)``
    is added to the method's loss (UOE's router anchor)."""

    params: list[torch.nn.Parameter]
    grad_masks: dict[int, torch.Tensor] = field(default_factory=dict)  # id(param) -> mask
    extra_loss: Callable | None = None
    label: str = ""


def run_gradient_method(model, tokenizer, data: UnlearnData, cfg: GradientConfig, loss_fn: Callable,
                        desc: str, needs_retain: bool, params=None, paired: dict[str, list[Example]] | None = None,
                        scope: Scope | None = None, side: dict[str, list[Example]] | None = None) -> dict:
    """Optimise ``loss_fn(model, batch)`` where ``batch`` has ``forget`` and ``retain`` sub-batches,
    ``forget_idx`` (positions in ``data.forget``, for per-example reference values) and, for each
    ``paired[name]`` (a list aligned with ``data.forget``), a sub-batch ``name`` of the same positions; for each
    ``side[name]`` (another list, e.g. the forget passages of a refusal method), a sampled sub-batch ``name`` and
    its positions ``name_idx``. ``scope`` restricts the update to part of the model (see :class:`Scope`).
    Returns ``{"loss_curve": [...]}``, plus ``probe`` (the probe curve) and ``best_step`` when probing."""
    if scope is not None:
        if params is not None:
            raise ObliviateError(f"{desc}: this method chooses its own parameters and cannot be restricted further")
        return _run_scoped(model, tokenizer, data, cfg, loss_fn, desc, needs_retain, paired, scope, side)
    if not data.forget:
        raise ObliviateError(f"{desc}: the forget set is empty")
    if needs_retain and not data.retain:
        raise ObliviateError(f"{desc}: this method needs retain data and none was given")
    seed_everything(cfg.seed)
    f_enc = [encode(tokenizer, ex, cfg.max_length) for ex in data.forget]
    r_enc = [encode(tokenizer, ex, cfg.max_length) for ex in data.retain]
    p_enc = {k: [encode(tokenizer, ex, cfg.max_length) for ex in v] for k, v in (paired or {}).items()}
    s_enc = {k: [encode(tokenizer, ex, cfg.max_length) for ex in v] for k, v in (side or {}).items() if v}
    for k, v in p_enc.items():
        if len(v) != len(f_enc):
            raise ValueError(f"paired examples {k!r} must align with the forget set")
    bs = min(cfg.batch_size, len(f_enc))
    n_steps = cfg.max_steps or cfg.epochs * math.ceil(len(f_enc) / bs)
    plan = (f"{n_steps:,} optimiser steps" + ("" if cfg.max_steps else
                                              f" ({cfg.epochs:,} epochs x {math.ceil(len(f_enc) / bs):,} batches)"))
    if n_steps > cfg.step_ceiling:
        raise ObliviateError(f"{desc}: {plan} planned, above step_ceiling={cfg.step_ceiling:,}; lower epochs or "
                             "max_steps, or raise --set step_ceiling=N on purpose")
    if os.environ.get("OBLIVIATE_QUIET") != "1":
        print(f"obliviate: {desc}: {plan} planned", file=sys.stderr, flush=True)
    pad = pad_id(tokenizer)
    rng = random.Random(cfg.seed)

    def batches():
        while True:
            order = list(range(len(f_enc)))
            rng.shuffle(order)
            for s in range(0, len(order), bs):
                idx = order[s:s + bs]
                b = {"forget": collate([f_enc[i] for i in idx], pad), "forget_idx": torch.tensor(idx)}
                b |= {k: collate([v[i] for i in idx], pad) for k, v in p_enc.items()}
                if r_enc:
                    b["retain"] = collate([r_enc[i] for i in rng.sample(range(len(r_enc)), min(bs, len(r_enc)))], pad)
                for k, v in s_enc.items():
                    pick = rng.sample(range(len(v)), min(bs, len(v)))
                    b[k], b[f"{k}_idx"] = collate([v[i] for i in pick], pad), torch.tensor(pick)
                yield b

    opt = OptimConfig(lr=default_lr(model, cfg), weight_decay=cfg.weight_decay, warmup_ratio=cfg.warmup_ratio,
                      grad_clip=cfg.grad_clip, bf16=cfg.bf16)
    tracker = ProbeTracker(tokenizer, data, cfg) if cfg.eval_every > 0 else None
    stopper = HoldoutStop(tokenizer, data, cfg, n_steps) if cfg.stop == "holdout" else None
    if tracker is not None:
        tracker(0, model)
    if stopper is not None and stopper.probe(0, model):  # already indistinguishable (or below chance): nothing to do
        return {"loss_curve": [], "stop": stopper.finish(model, 0)}

    def callback(step, m):
        if tracker is not None:
            tracker(step, m)
        return stopper is not None and stopper(step, m)

    curve = optimize(model, batches(), n_steps, loss_fn, opt, desc, params,
                     callback=callback if tracker is not None or stopper is not None else None)
    out = {"loss_curve": curve}
    if stopper is not None:
        out["stop"] = stopper.finish(model, len(curve))
    if tracker is not None:
        tracker.finish(model, len(curve))
        out |= {"probe": tracker.history, "best_step": tracker.best[1] if tracker.best is not None else len(curve)}
    return out


def _run_scoped(model, tokenizer, data, cfg, loss_fn, desc, needs_retain, paired, scope: Scope, side=None) -> dict:
    chosen = {id(p) for p in scope.params}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    saved = {id(p): p.detach().clone() for p in scope.params if id(p) in scope.grad_masks}
    hooks = []
    for p in model.parameters():
        p.requires_grad_(id(p) in chosen)
        if id(p) in scope.grad_masks:
            mask = scope.grad_masks[id(p)].to(p.device, p.dtype)
            hooks.append(p.register_hook(lambda g, m=mask: g * m))

    def scoped_loss(m, b):
        value = loss_fn(m, b)
        return value + scope.extra_loss(m, b) if scope.extra_loss is not None else value

    try:
        out = run_gradient_method(model, tokenizer, data, cfg, scoped_loss, f"{desc} [{scope.label}]", needs_retain,
                                  params=scope.params, paired=paired, side=side)
    finally:
        for h in hooks:
            h.remove()
        for n, p in model.named_parameters():
            p.requires_grad_(flags[n])
    with torch.no_grad():  # masked-out entries: exactly as before (also undoes any weight decay on them)
        for p in scope.params:
            if id(p) in saved:
                keep = scope.grad_masks[id(p)].to(p.device) == 0
                p[keep] = saved[id(p)][keep]
    return out


class ProbeTracker:
    """Every ``eval_every`` steps: NLL and teacher-forced token exact match (the share of answer tokens
    whose argmax is the label, Tirumala et al., 2022) on a fixed forget/retain probe; optionally keeps the
    best state by the retain-minus-forget gap. ``history`` is the logged curve."""

    def __init__(self, tokenizer, data: UnlearnData, cfg: GradientConfig):
        pad = pad_id(tokenizer)
        pick = random.Random(cfg.seed + 1)
        sides = {"forget": data.forget, "retain": data.retain}
        self.batches = {k: collate([encode(tokenizer, e, cfg.max_length)
                                    for e in pick.sample(v, min(cfg.probe_size, len(v)))], pad)
                        for k, v in sides.items() if v}
        self.every, self.keep_best = cfg.eval_every, cfg.keep_best
        self.history: list[dict] = []
        self.best: tuple[float, int, dict] | None = None

    def __call__(self, step: int, model) -> None:
        if step % self.every == 0:
            self.probe(step, model)

    @torch.no_grad()
    def probe(self, step: int, model) -> None:
        model.eval()
        dev = next(model.parameters()).device
        row = {"step": step}
        for side, b in self.batches.items():
            b = {k: v.to(dev) for k, v in b.items()}
            logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
            logp, mask = token_logprobs(logits, b["labels"])  # (B, T-1)
            hits = token_hits(logits, b["labels"])
            row[f"{side}_nll"] = float(-logp.sum() / mask.sum())
            row[f"{side}_token_em"] = float(hits.sum() / mask.sum())
        self.history.append(row)
        if self.keep_best == "gap" and step > 0:
            score = row.get("retain_token_em", 0.0) - row.get("forget_token_em", 0.0)
            if self.best is None or score > self.best[0]:
                self.best = (score, step, {k: v.detach().clone() for k, v in model.state_dict().items()})

    def finish(self, model, n_steps: int) -> None:
        """Probe the last step too (when ``eval_every`` does not divide the run), then load the best state."""
        if self.history[-1]["step"] != n_steps:
            self.probe(n_steps, model)
        if self.best is not None:
            model.load_state_dict(self.best[2])



def lm_logits(model, batch: dict) -> torch.Tensor:
    """Logits (B, T, V) of a collated batch, without a KV cache."""
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **no_cache(model)).logits


def with_retain_nll(model, batch: dict, forget_term: torch.Tensor, weight: float) -> torch.Tensor:
    """``forget_term + weight · NLL(retain)`` when the step has a retain batch and ``weight > 0``."""
    if weight > 0 and "retain" in batch:
        return forget_term + weight * mean_token_nll(lm_logits(model, batch["retain"]), batch["retain"]["labels"])
    return forget_term


def forward_nll(model, batch: dict, reduction: str = "sum") -> torch.Tensor:
    """Per-sequence NLL (B,) of a collated batch's target tokens."""
    return sequence_nll(lm_logits(model, batch), batch["labels"], reduction)




@torch.no_grad()
def reference_nll(model, tokenizer, examples: list[Example], max_length: int, batch_size: int = 32,
                  reduction: str = "sum", logits_bytes: int = REFERENCE_LOGITS_BYTES) -> torch.Tensor:
    """NLL of each example under ``model`` as it is now (the reference for NPO-style losses), (N,): summed over its
    answer tokens, or their mean (``reduction="mean"``). Batches hold at most ``batch_size`` rows and
    ``logits_bytes`` of float32 logits at the longest row's length (a 128k vocabulary at 512 tokens: 1 row per
    256 MiB), so the pass never needs more memory than a training step. Under FSDP the pass runs on a sharded
    frozen copy (every process runs every batch, in step), so no device holds the whole model."""
    from obliviate.engine.distributed import frozen_copy, fsdp_active, is_sharded

    if fsdp_active() and not is_sharded(model):  # the caller's unsharded model: shard a copy for the pass
        sharded = frozen_copy(model)
        try:
            return reference_nll(sharded, tokenizer, examples, max_length, batch_size, reduction, logits_bytes)
        finally:
            del sharded
            gc.collect()  # FSDP's hooks make the copy part of a reference cycle: free its shards now
    model.eval()
    pad = pad_id(tokenizer)
    enc = [encode(tokenizer, ex, max_length) for ex in examples]
    vocab = model.get_output_embeddings().weight.shape[0] if hasattr(model, "get_output_embeddings") else 1
    longest = max((len(e["input_ids"]) for e in enc), default=1)
    batch_size = max(1, min(batch_size, logits_bytes // (4 * vocab * longest)))
    dev = next(model.parameters()).device
    out = []
    for s in range(0, len(enc), batch_size):
        b = {k: v.to(dev) for k, v in collate(enc[s:s + batch_size], pad).items()}
        out.append(forward_nll(model, b, reduction).float().cpu())
    return torch.cat(out)
