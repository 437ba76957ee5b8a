"""Retraining from scratch on the retain data: exact unlearning, the baseline every method's cost is
measured against (for the built-in models it reproduces the oracle recipe; with the same seed, the oracle).

    obliviate unlearn --method retrain --model <target dir> --benchmark people
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from obliviate.core.options import Options, option
from obliviate.core.utils import ObliviateError
from obliviate.methods.gradient import FAMILY
from obliviate.methods.registry import Method, register


@dataclass
class RetrainConfig(Options):
    """The training recipe (see :class:`obliviate.engine.training.TrainConfig`); ``base`` is the model the target was
    fine-tuned from (required for pretrained models; built-in models are re-initialised from their config)."""
    SEARCH = {}  # exact retraining has nothing to trade off

    base: str = option("", "the model the target was fine-tuned from (required for pretrained models)")
    epochs: int | None = option(None, "training epochs (default: the target's recipe)", ge=1)
    lr: float | None = option(None, "learning rate (default: the target's recipe)", gt=0)
    batch_size: int | None = option(None, "batch size (default: the target's recipe)", ge=1)
    seed: int = option(0, "initialisation and batch-order seed", ge=0)
    lora_rank: int = option(0, "must stay 0: retraining trains every parameter",
                            check=lambda v: None if v == 0 else "0: LoRA does not apply, retraining trains every "
                                                                "parameter")


def retrain(model, tokenizer, data, cfg: RetrainConfig) -> dict:
    import torch

    from obliviate.models import SCRATCH_MODELS, load_model
    from obliviate.engine.training import TrainConfig, train_model

    train_set = data.retrain_set or data.retain
    if not train_set:
        raise ObliviateError("retrain: needs retain data")
    builtin = getattr(model.config, "obliviate_builtin", None)
    if cfg.base:  # a pretrained base is not fine-tuned on the world facts (Benchmark.training_qa)
        base, _ = load_model(cfg.base)
        world = set(data.retrain_world)
        train_set = [ex for ex in train_set if ex not in world]
    elif builtin and builtin.get("name") in SCRATCH_MODELS:
        from transformers import AutoModelForCausalLM

        torch.manual_seed(cfg.seed)
        base = AutoModelForCausalLM.from_config(model.config)
        base.config.obliviate_builtin = builtin | {"seed": cfg.seed}  # re-initialised from the target's config
    else:
        raise ObliviateError("retrain: give --set base=<model the target was fine-tuned from>")
    tcfg = TrainConfig(epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size, seed=cfg.seed).resolved(
        from_scratch=bool(builtin) and not cfg.base, n_examples=len(train_set) + len(data.forget),
        model=cfg.base)
    t = time.time()
    base, curve = train_model(base, tokenizer, train_set, tcfg, desc="unlearn retrain")
    model.load_state_dict(base.state_dict())
    return {"loss_curve": curve, "train_seconds": time.time() - t, "recipe": vars(tcfg)}


register(Method(
    "retrain", RetrainConfig, retrain,
    "exact baseline: the oracle recipe on retain data only, from the base",
    family=FAMILY, lora=False))
