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
from typing import Callable

from obliviate.data import Benchmark, collate, encode, examples_from
from obliviate.data.format import bucketed_batches, pad_id
from obliviate.engine.loop import OptimConfig, optimize
from obliviate.engine.losses import mean_token_nll
from obliviate.models import SCRATCH_MODELS, load_model, save_model, weights_digest
from obliviate.models import lora
from obliviate.core.options import Options, option
from obliviate.core.utils import ObliviateError, cache_dir, seed_everything, stable_hash, versions


# The recipe of other pretrained models: TOFU's (Maini et al., 2024, config/finetune.yaml: 5 epochs at lr 1e-5).
PRETRAINED_DEFAULTS = {"epochs": 5, "lr": 1e-5, "batch_size": 8, "lora_rank": 0}
# The built-in pretrained models' recipes, chosen by bench/pretrained_recipe.py (docs/results/pretrained.md): of the
# settings probed, the one at which the target states its fictitious facts (exact match >= 0.9) and keeps the most
# of the model's own knowledge; none kept all of it. TOFU's lr 1e-5 was set for a 7B model.
PRETRAINED_RECIPES: dict[str, dict] = {
    "smollm2-135m": {"epochs": 10, "lr": 1e-4},  # full fine-tuning, bf16 autocast
}


_LATER = ("bf16", "lora_rank", "lora_alpha")  # recipe options that enter the cache key only when set


@dataclass
class TrainConfig(Options):
    """Fine-tuning recipe for target and oracle. None means "the default for this kind of model":
    from scratch (``tiny``) 40 epochs at lr 3e-3, batch 32 (smaller for small data sets, so that an epoch has at
    least 10 steps: ``micro`` gets 9); the built-in pretrained models the recipe measured for them
    (:data:`PRETRAINED_RECIPES`); other pretrained models 5 epochs at lr 1e-5, batch 8 (TOFU's fine-tuning recipe:
    Maini et al., 2024, its ``config/finetune.yaml``, which uses batch 16 on Llama-2-7B)."""

    epochs: int | None = option(None, "training epochs (default: 40 from scratch, 5 for pretrained models, the "
                                      "measured recipe for the built-in ones)", ge=1)
    lr: float | None = option(None, "learning rate (default: 3e-3 from scratch, 1e-5 for pretrained models, the "
                                    "measured recipe for the built-in ones)", gt=0)
    batch_size: int | None = option(None, "batch size (default: 32 from scratch, down to 8 for small data sets; 8 for "
                                          "pretrained models)", ge=1)
    weight_decay: float = option(0.0, "AdamW weight decay", ge=0)
    warmup_ratio: float = option(0.05, "share of the steps spent warming the learning rate up", ge=0, lt=1)
    max_length: int = option(256, "tokens per example, longer ones are cut", ge=8)
    include_texts: bool = option(True, "also train on the passages (biographies)")
    seed: int = option(0, "initialisation (built-in models) and batch-order seed", ge=0)
    lora_rank: int | None = option(None, "0: full fine-tuning; r: LoRA adapters of rank r on every linear layer, merged "
                                         "into the weights after training, so that the saved target and oracle are "
                                         "plain models (default: the model's recipe; 0 from scratch)", ge=0)
    lora_alpha: float | None = option(None, "LoRA scaling numerator (default: 2 x lora_rank)", gt=0)
    bf16: bool | None = option(None, "bfloat16 autocast for the forward pass and loss, float32 weights and optimiser "
                                     "(default: on for pretrained models, faster on CPUs with AVX512-BF16 (measured by "
                                     "bench/pretrained_recipe.py) and standard on GPUs; off from scratch)")

    def resolved(self, from_scratch: bool, n_examples: int | None = None, model: str | None = None) -> "TrainConfig":
        """Defaults filled in. ``n_examples``: the size of the full training set (the target's, so that target and
        oracle share one recipe), which sets the from-scratch batch size; ``model``: the base model's name, which
        picks a built-in pretrained model's measured recipe."""
        batch = max(8, min(32, n_examples // 10)) if n_examples else 32
        d = {"epochs": 40, "lr": 3e-3, "batch_size": batch, "lora_rank": 0, "bf16": False} if from_scratch else \
            {**PRETRAINED_DEFAULTS, "bf16": True, **PRETRAINED_RECIPES.get(str(model), {})}
        return replace(self, **{k: d[k] if getattr(self, k) is None else getattr(self, k) for k in d})


def finetune(model, tokenizer, examples, cfg: TrainConfig, desc: str = "train", callback=None):
    """Train ``model`` (in place) with next-token NLL on the examples' target tokens; returns the loss curve. A
    model whose modules add training-only terms (a bottleneck's reconstruction terms,
    :func:`obliviate.models.anatomy.pop_aux_losses`) adds them to the loss."""
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

    from obliviate.models.anatomy import no_cache, pop_aux_losses

    def loss_fn(m, batch):
        out = m(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **no_cache(m))
        loss = mean_token_nll(out.logits, batch["labels"])
        aux = pop_aux_losses(model)
        return loss if aux is None else loss + aux

    seed_everything(cfg.seed)
    opt = OptimConfig(lr=cfg.lr, weight_decay=cfg.weight_decay, warmup_ratio=cfg.warmup_ratio, bf16=bool(cfg.bf16))
    return optimize(model, batches(), per_epoch * cfg.epochs, loss_fn, opt, desc, callback=callback)


def train_model(model, tokenizer, examples, cfg: TrainConfig, desc: str = "train"):
    """:func:`finetune` with the recipe's LoRA (Hu et al., 2022, arXiv:2106.09685: adapters of ``cfg.lora_rank`` on
    every linear layer, merged into the weights after training) or without; returns ``(model, loss curve)``: the
    model is a plain one either way."""
    if not cfg.lora_rank:
        return model, finetune(model, tokenizer, examples, cfg, desc=desc)
    wrapped = lora.wrap(model, cfg.lora_rank, cfg.lora_alpha, "all-linear")
    curve = finetune(wrapped, tokenizer, examples, cfg, desc=desc)
    return lora.unwrap(wrapped, merge=True), curve


def base_model(spec: str, bench: Benchmark, seed: int = 0):
    """The untrained starting point: for ``tiny``/``micro``, built with a tokenizer trained on all benchmark
    text (holdout included, so that members and non-members are tokenised alike) and initialised from ``seed``."""
    if spec in SCRATCH_MODELS:
        return load_model(spec, corpus=bench.all_text(), tiny_config=replace(SCRATCH_MODELS[spec], seed=seed))
    return load_model(spec)


def cache_hit(path: Path, key: str) -> bool:
    """Whether the cache entry at ``path`` holds what its manifest says: the recipe's key and the weights whose
    SHA-256 it recorded. An entry that fails (tampered with, half-replaced, written by an older version) is
    trained again, with a note on stderr."""
    import json
    import sys

    meta_file = path / "obliviate.json"
    if not meta_file.is_file():
        return False
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = {}
    why = None
    if meta.get("cache_key") != key:
        why = "its recipe key differs"
    elif not meta.get("weights_sha256"):
        why = "it has no weights manifest (written by an older version)"
    elif weights_digest(path) != meta["weights_sha256"]:
        why = "its weights are not the ones it was trained to"
    if why:
        print(f"obliviate: note: cache entry {path} does not match its manifest ({why}); training it again",
              file=sys.stderr)
        return False
    return True


_JOINT_PARTS: dict[type, Callable] = {}


def register_joint_part(config_type: type, attach: Callable) -> None:
    """Let ``train_pair(..., bottleneck=config)`` train a part jointly with a from-scratch model: ``attach(model,
    tokenizer, examples, config, max_length)`` inserts it (returning a training callback or None). ``config`` is a
    dataclass with ``epochs``, ``lr``, ``from_start`` and ``joint_epochs()``. The bottleneck family registers its
    :class:`~obliviate.methods.bottleneck.config.BottleneckConfig` here."""
    if config_type in _JOINT_PARTS:
        raise ValueError(f"{config_type.__name__} is registered as a joint part twice")
    _JOINT_PARTS[config_type] = attach


def joint_part(config) -> Callable:
    if type(config) not in _JOINT_PARTS:
        raise ObliviateError(f"train_pair: bottleneck={type(config).__name__} is no registered part to train "
                             f"jointly ({', '.join(c.__name__ for c in _JOINT_PARTS) or 'none registered'})")
    return _JOINT_PARTS[type(config)]


def train_pair(spec: str, bench: Benchmark, cfg: TrainConfig | None = None, *, roles=("target", "oracle"),
               cache: Path | None = None, force: bool = False,
               bottleneck=None) -> dict[str, Path]:
    """Train (or reuse from the cache) the target and the oracle; returns ``{role: model folder}``. With
    ``bottleneck`` (from-scratch models only), each role's plain model is trained first, then the bottleneck is
    inserted (codes initialised from its activations) and trained jointly with it on the same role's data for
    ``bottleneck.epochs`` at ``bottleneck.lr``: the oracle never sees the forget set. With ``bottleneck.from_start``
    the bottleneck is inserted into the untrained model (codes from its activations) and the two train together
    from the first step; tiny memorises that way too (at lr 1e-3; target and oracle alike at a reconstruction weight
    of 0.1), but its codes are harder to delete (docs/families/bottleneck.md)."""
    if bottleneck is not None and spec not in SCRATCH_MODELS:
        raise ObliviateError(f"train_pair: a bottleneck is trained with the model only from scratch ({spec!r} is "
                             "pretrained: `obliviate bottleneck` freezes it and trains the bottleneck alone)")
    if bottleneck is not None:  # resolved, so that the cache key and the saved recipe name the epochs run
        attach = joint_part(bottleneck)
        bottleneck = replace(bottleneck, epochs=bottleneck.joint_epochs())
        # from_start enters the key only when set, so that the keys of models built before it existed stay valid
        bottleneck_key = {k: v for k, v in asdict(bottleneck).items() if k != "from_start" or bottleneck.from_start}
    scratch = spec in SCRATCH_MODELS
    n_full = len(bench.training_qa(True, pretrained=not scratch)) + (
        len(bench.training_texts(True)) if (cfg or TrainConfig()).include_texts else 0)
    cfg = (cfg or TrainConfig()).resolved(from_scratch=scratch, n_examples=n_full, model=spec)
    root = Path(cache or cache_dir()) / "models"
    out: dict[str, Path] = {}
    for role in roles:
        include_forget = role == "target"
        qa = bench.training_qa(include_forget, pretrained=not scratch)
        texts = bench.training_texts(include_forget) if cfg.include_texts else []
        key_src = {"model": spec, "benchmark_version": bench.meta.get("version"),
                   "tiny": asdict(SCRATCH_MODELS[spec]) if scratch else None,
                   "tokenizer_corpus": stable_hash(bench.all_text()) if scratch else None,
                   "qa": [r.to_dict() for r in qa], "texts": [t.text for t in texts],
                   # options added later enter the key only when set, so that older models' keys stay what they were
                   "recipe": {k: v for k, v in asdict(cfg).items() if k not in _LATER or v}}
        if bottleneck is not None:  # only then, so that the keys of plain models stay what they were
            key_src["bottleneck"] = bottleneck_key
        key = stable_hash(key_src)[:16]
        path = root / f"{role}-{key}"
        if not force and cache_hit(path, key):
            out[role] = path
            continue
        t0 = time.time()
        if bottleneck is not None:  # this role's plain model (from_start: the untrained one), then with the bottleneck
            if bottleneck.from_start:
                model, tok = base_model(spec, bench, cfg.seed)
            else:
                model, tok = load_model(train_pair(spec, bench, cfg, roles=(role,), cache=cache)[role])
            examples = examples_from(tok, qa, texts)
            callback = attach(model, tok, examples, bottleneck, cfg.max_length)
            joint = replace(cfg, epochs=bottleneck.epochs, lr=bottleneck.lr)
            curve = finetune(model, tok, examples, joint, desc=f"train {role} with bottleneck", callback=callback)
        else:
            model, tok = base_model(spec, bench, cfg.seed)
            model, curve = train_model(model, tok, examples_from(tok, qa, texts), cfg, desc=f"train {role}")
        import torch

        meta = {"role": role, "base_model": spec, **({"bottleneck": asdict(bottleneck)} if bottleneck else {}),
                "benchmark": bench.record(), "recipe": asdict(cfg),
                "seed": cfg.seed, "n_qa": len(qa), "n_texts": len(texts), "cache_key": key,
                "train_seconds": round(time.time() - t0, 2), "threads": torch.get_num_threads(),
                "final_loss": curve[-1], "loss_curve": curve[:: max(1, len(curve) // 200)], "versions": versions()}
        from accelerate import PartialState

        state = PartialState()
        meta["processes"] = state.num_processes
        if state.is_main_process:  # under `accelerate launch` / `torchrun` every process holds the same model
            save_model(model, tok, path, meta, overwrite=True)
        state.wait_for_everyone()
        out[role] = path
    return out
