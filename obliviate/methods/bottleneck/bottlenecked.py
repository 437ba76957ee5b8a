"""A model with a sparse discrete bottleneck (CodeUnlearn's family): inserting it into a model and seeding its codes
from the model's own activations (for training, :mod:`obliviate.methods.bottleneck.build` and ``train_pair``), and loading a
bottlenecked folder, registered as a model kind so that :func:`obliviate.load_model` rebuilds it."""
from __future__ import annotations

import json
import random
from pathlib import Path

import torch

from obliviate.data import Example
from obliviate.data.format import encoded_batches
from obliviate.models.anatomy import stop_after
from obliviate.models.kinds import register_kind
from obliviate.models.loading import quiet_progress, with_pad
from obliviate.core.utils import ObliviateError
from obliviate.engine.training import register_joint_part
from obliviate.methods.bottleneck.codebook import Sparse
from obliviate.methods.bottleneck.config import BottleneckConfig
from obliviate.methods.bottleneck.sites import bottlenecks, capture, insert, rebuild, site_layer


def activation_sample(model, tok, examples, max_length: int, limit: int = 256, seed: int = 0):
    """Each site's incoming activations on up to ``limit`` of ``examples`` (real tokens only), ``{site: (M, D)}``.
    The layers above the last site do not run."""
    rng = random.Random(seed)
    pick = rng.sample(examples, min(limit, len(examples)))
    dev = next(model.parameters()).device
    last = max(site_layer(site) for site in bottlenecks(model))
    was = model.training
    model.eval()
    with capture(model) as acts, torch.no_grad(), stop_after(model, last):
        for b in encoded_batches(tok, pick, max_length, 32):
            mask = b["attention_mask"].bool().reshape(-1)
            model(input_ids=b["input_ids"].to(dev), attention_mask=b["attention_mask"].to(dev))
            for site in acts:
                acts[site][-1] = acts[site][-1][mask]  # real tokens only
    model.train(was)
    return {s: torch.cat(v) for s, v in acts.items()}


def prepare(model, tok, examples: list[Example], cfg: BottleneckConfig, max_length: int):
    """Insert the bottleneck into ``model`` and initialise its codes from the model's activations on
    ``examples`` (k-means or a random sample); returns the dead-code callback for training (or None)."""
    layers = insert(model, cfg)
    seed_codes(layers, activation_sample(model, tok, examples, max_length, seed=cfg.seed), cfg)
    for layer in layers.values():
        layer.track_aux = True
    if not cfg.replace_dead_every:
        return None

    def replace_dead(step: int, m) -> bool:
        if step % cfg.replace_dead_every == 0:
            fresh = activation_sample(model, tok, examples, max_length, limit=64, seed=cfg.seed + step)
            reseed_dead(bottlenecks(model), fresh.__getitem__, cfg.seed + step)
        return False
    return replace_dead


def seed_codes(layers: dict[str, Sparse], acts: dict[str, torch.Tensor], cfg: BottleneckConfig) -> None:
    for site, layer in layers.items():
        layer.seed_codes(acts[site], kmeans=cfg.init == "kmeans", seed=cfg.seed)


def reseed_dead(layers: dict[str, Sparse], sample, seed: int) -> None:
    """Re-seed each site's codes that have not fired since the last check (deleted ones stay) from the activations
    ``sample(site)`` returns (called only for a site that has such codes), then restart the count."""
    for site, layer in layers.items():
        dead = ((layer.usage == 0) & ~layer.deleted).nonzero()
        if len(dead):
            layer.reseed(dead, sample(site), seed=seed)
        layer.usage.zero_()


def load_bottlenecked(path: Path, dtype: torch.dtype = torch.float32):
    """A model with a codebook / SAE bottleneck (``obliviate bottleneck``): the architecture from its config, the
    bottleneck layers its ``obliviate_bottleneck`` entry describes, then every weight from the safetensors files
    (strictly: a weight the folder lacks, other than a tied output embedding, is an error)."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(path)
        with quiet_progress():
            tok = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise ObliviateError(f"could not load the bottlenecked model in {path}: {e}") from None
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    rebuild(model)
    if (path / "generation_config.json").is_file():
        from transformers import GenerationConfig

        model.generation_config = GenerationConfig.from_pretrained(path)
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise ObliviateError(f"model folder {path} has no .safetensors weights")
    state = {}
    for f in files:
        state.update(load_file(f))
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {"lm_head.weight"} if getattr(config.get_text_config(), "tie_word_embeddings", False) else set()
    missing = [k for k in missing if k not in tied]
    if missing or unexpected:
        raise ObliviateError(f"model folder {path}: its weights do not fit its bottleneck config "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.tie_weights()
    model.eval()
    return model, with_pad(tok)


def _is_bottlenecked(path: Path) -> bool:
    try:
        return "obliviate_bottleneck" in json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False


register_kind("bottlenecked", _is_bottlenecked, lambda path, dtype, trust_remote_code=False: load_bottlenecked(path, dtype))
register_joint_part(BottleneckConfig, prepare)  # train_pair(..., bottleneck=BottleneckConfig(...)) from scratch
