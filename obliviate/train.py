"""Train the target (forget + retain) and the oracle (retain only) with one recipe, cached by content hash.

    obliviate train --model tiny --benchmark people

The oracle is the reference every metric compares against: the same base, data and recipe, minus the
forget set. Both are stored under the cache (``$OBLIVIATE_CACHE``, default ``~/.cache/obliviate``) in a
folder named by the hash of everything that decides their weights, with the recipe, seed and library
versions in ``obliviate.json``; a second run with the same inputs reuses them.
"""
from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .data import Benchmark, collate, encode, examples_from
from .data.format import bucketed_batches, pad_id
from .loop import OptimConfig, optimize
from .methods.losses import mean_token_nll
from .models import SCRATCH_MODELS, load_model, save_model
from .utils import ObliviateError, cache_dir, seed_everything, stable_hash, versions


@dataclass
class TrainConfig:
    """Fine-tuning recipe for target and oracle. Zero means "the default for this kind of model":
    from scratch (``tiny``) 40 epochs at lr 3e-3, batch 32; pretrained models 5 epochs at lr 1e-5, batch 8
    (TOFU's fine-tuning recipe)."""

    epochs: int = 0
    lr: float = 0.0
    batch_size: int = 0
    weight_decay: float = 0.0
    warmup_ratio: float = 0.05
    max_length: int = 256
    include_texts: bool = True  # also train on the biographies
    seed: int = 0

    def resolved(self, from_scratch: bool) -> "TrainConfig":
        d = (40, 3e-3, 32) if from_scratch else (5, 1e-5, 8)
        return replace(self, epochs=self.epochs or d[0], lr=self.lr or d[1], batch_size=self.batch_size or d[2])


def finetune(model, tokenizer, examples, cfg: TrainConfig, desc: str = "train"):
    """Train ``model`` (in place) with next-token NLL on the examples' target tokens; returns the loss curve."""
    if not examples:
        raise ObliviateError(f"{desc}: no training examples")
    enc = [encode(tokenizer, ex, cfg.max_length) for ex in examples]
    lengths = [len(e["input_ids"]) for e in enc]
    rng = random.Random(cfg.seed)
    pad = pad_id(tokenizer)
    per_epoch = len(bucketed_batches(len(enc), cfg.batch_size, lengths, random.Random(0)))

    def batches():
        for _ in range(cfg.epochs):
            for b in bucketed_batches(len(enc), cfg.batch_size, lengths, rng):
                yield collate([enc[i] for i in b], pad)

    def loss_fn(m, batch):
        out = m(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return mean_token_nll(out.logits, batch["labels"])

    seed_everything(cfg.seed)
    opt = OptimConfig(lr=cfg.lr, weight_decay=cfg.weight_decay, warmup_ratio=cfg.warmup_ratio)
    return optimize(model, batches(), per_epoch * cfg.epochs, loss_fn, opt, desc)


def base_model(spec: str, bench: Benchmark, seed: int = 0):
    """The untrained starting point: for ``tiny``/``micro``, built with a tokenizer trained on all benchmark
    text (holdout included, so that members and non-members are tokenised alike) and initialised from ``seed``."""
    if spec in SCRATCH_MODELS:
        return load_model(spec, corpus=bench.all_text(), tiny_config=replace(SCRATCH_MODELS[spec], seed=seed))
    return load_model(spec)


def train_pair(spec: str, bench: Benchmark, cfg: TrainConfig | None = None, *, roles=("target", "oracle"),
               cache: Path | None = None, force: bool = False) -> dict[str, Path]:
    """Train (or reuse from the cache) the target and the oracle; returns ``{role: model folder}``."""
    scratch = spec in SCRATCH_MODELS
    cfg = (cfg or TrainConfig()).resolved(from_scratch=scratch)
    root = Path(cache or cache_dir()) / "models"
    out: dict[str, Path] = {}
    for role in roles:
        include_forget = role == "target"
        qa = bench.training_qa(include_forget)
        texts = bench.training_texts(include_forget) if cfg.include_texts else []
        key_src = {"model": spec, "tiny": asdict(SCRATCH_MODELS[spec]) if scratch else None,
                   "tokenizer_corpus": stable_hash(bench.all_text()) if scratch else None,
                   "qa": [r.to_dict() for r in qa], "texts": [t.text for t in texts], "recipe": asdict(cfg)}
        key = stable_hash(key_src)[:16]
        path = root / f"{role}-{key}"
        if (path / "obliviate.json").is_file() and not force:
            out[role] = path
            continue
        model, tok = base_model(spec, bench, cfg.seed)
        t0 = time.time()
        curve = finetune(model, tok, examples_from(tok, qa, texts), cfg, desc=f"train {role}")
        meta = {"role": role, "base_model": spec, "benchmark": bench.name, "recipe": asdict(cfg),
                "seed": cfg.seed, "n_qa": len(qa), "n_texts": len(texts), "cache_key": key,
                "train_seconds": round(time.time() - t0, 2), "final_loss": curve[-1],
                "loss_curve": curve[:: max(1, len(curve) // 200)], "versions": versions()}
        from accelerate import PartialState

        state = PartialState()
        meta["processes"] = state.num_processes
        if state.is_main_process:  # under `accelerate launch` / `torchrun` every process holds the same model
            save_model(model, tok, path, meta)
        state.wait_for_everyone()
        out[role] = path
    return out
