"""Representation Misdirection for Unlearning (Li et al., 2024, "The WMDP Benchmark: Measuring and Reducing
Malicious Use With Unlearning", arXiv:2403.03218, Sec. 5, Eq. 1-2).

    obliviate unlearn --method rmu --model <target dir> --benchmark people --set layer=2

L = mean ||h_ℓ(x_f) - c·u||² + α · mean ||h_ℓ(x_r) - h_ℓ^frozen(x_r)||², u a fixed random unit vector,
h_ℓ the residual stream after decoder layer ℓ, averaged over the tokens that carry the data: the answer tokens
of a question-answer example, every token of a passage (RMU's WMDP corpora are plain text, where this is every
token). Averaging over the prompt too would push the shared "Question: ... Answer:" template to c·u on forget
data and pin it on retain data, which says nothing about the facts. Only the MLP down-projections of layers
ℓ-2..ℓ are updated, as in the paper's official code.

c = 6.5 was chosen for Zephyr-7B's layer-7 activations; on another model its size relative to the activations is
arbitrary. ``adaptive_scale=β`` sets c = β · the mean norm of the input model's layer-ℓ activations on the forget
tokens instead (Adaptive RMU: Dang et al., 2025, "On Effects of Steering Latent Representation for Large Language
Model Unlearning", AAAI, arXiv:2408.06223, Sec. 4; their code's default β = 5, with the norm read off the first
forget batch; here it is averaged over the whole forget set, so that it does not depend on the batch order).
"""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass

import torch

from obliviate.data.format import IGNORE, encoded_batches
from obliviate.engine.distributed import frozen_copy
from obliviate.core.options import option
from obliviate.core.utils import ObliviateError
from obliviate.models.anatomy import decoder_layers, no_cache, stop_after, unwrapped
from obliviate.methods.common import GradientConfig, UnlearnData, run_gradient_method
from obliviate.methods.gradient import FAMILY
from obliviate.methods.registry import Method, register
from obliviate.engine.plan import MemoryTerms

DOWN_PROJ_NAMES = ("mlp.down_proj", "mlp.c_proj", "mlp.fc2", "mlp.dense_4h_to_h")


@dataclass
class RMUConfig(GradientConfig):
    """Defaults from the official code for Zephyr-7B (c = 6.5, α = 1200, layer 7, layers 5-7 updated). Departures:
    the rate and length are every gradient method's (lr 1e-5 on a pretrained model, ``epochs`` over the forget set)
    where the official command runs 150 batches of 4 at lr 5e-5 (``--set lr=5e-5 max_steps=150`` for that)."""
    # c is searched relative to the model's own activations (adaptive_scale), so that its range means the same on
    # any model; the rate reaches 100× the default, since RMU on SmolLM2 moved at 100× and not at 10×
    # (bench/results/rwku_leaderboard_smollm2-135m_rmu.json)
    SEARCH = {**GradientConfig.SEARCH, "lr": ("lr", 0.1, 100.0), "alpha": ("log", 1.0, 1200.0),
              "adaptive_scale": ("log", 0.05, 10.0)}

    layer: int | None = option(None, "ℓ, the steered layer (default: 7 for models deeper than 8 layers, else half "
                                     "the depth)", ge=0)
    n_updated_layers: int = option(3, "MLP down-projections updated: layers ℓ-n+1..ℓ (paper: 3)", ge=1)
    steering_coeff: float = option(6.5, "c, the norm of the steering target c·u (paper: 6.5 for Zephyr-7B)", gt=0)
    alpha: float = option(1200.0, "α, the weight of the retain activation term (paper: 1200)", ge=0)
    adaptive_scale: float | None = option(
        None, "β: c = β × the mean norm of the model's layer-ℓ activations on the forget tokens, instead of "
              "steering_coeff (Adaptive RMU; its code: 5)", gt=0)


def resolve_layers(model, cfg: RMUConfig) -> tuple[int, list[int]]:
    n = len(decoder_layers(model))
    layer = cfg.layer if cfg.layer is not None else (7 if n > 8 else n // 2)
    if not 0 <= layer < n:
        raise ObliviateError(f"rmu: layer {cfg.layer} is out of range; the model has layers 0..{n - 1}")
    return layer, list(range(max(0, layer - cfg.n_updated_layers + 1), layer + 1))


def updated_parameters(model, ids: list[int]) -> list[tuple[str, torch.nn.Parameter]]:
    """The down-projection weights of layers ``ids`` (or, under LoRA, their adapter weights)."""
    lora = any("lora_" in n for n, _ in model.named_parameters())
    out = []
    for name, p in model.named_parameters():
        in_layer = any(f".{i}.{d}." in name for i in ids for d in DOWN_PROJ_NAMES)
        if in_layer and (("lora_" in name) if lora else name.endswith("weight")):
            out.append((name, p))
    if not out:
        hint = " (with LoRA, lora_targets must include the down-projections)" if lora else ""
        raise ObliviateError(f"rmu: found no MLP down-projection in layers {ids}{hint}")
    return out


@functools.lru_cache(maxsize=None)
def _takes_logits_to_keep(cls) -> bool:
    return "logits_to_keep" in inspect.signature(cls.forward).parameters


def _activations(model, batch, layer: int) -> torch.Tensor:
    """The residual stream output by decoder layer ``layer``, (B, T, D), captured with a hook (transformers'
    ``hidden_states[-1]`` is taken after the final norm, which would pin its scale). The blocks above ``layer``
    do not run (:func:`stop_after`) and, where the model takes ``logits_to_keep``, one position's logits are
    computed instead of T: the loss reads only this layer, so the value and its gradient are those of a full
    forward pass (the official code runs the whole model), at (ℓ+1)/L of its layer work and activation memory."""
    captured = {}

    def hook(_module, _inputs, output):
        captured["h"] = output[0] if isinstance(output, tuple) else output

    handle = decoder_layers(model)[layer].register_forward_hook(hook)
    extra = {"logits_to_keep": 1} if _takes_logits_to_keep(type(unwrapped(model))) else {}
    try:
        with stop_after(model, layer):
            model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **no_cache(model), **extra)
    finally:
        handle.remove()
    return captured["h"]


def data_tokens(batch: dict) -> torch.Tensor:
    """(B, T) 0/1: the positions holding answer tokens (every text token of a passage), as labelled."""
    return (batch["labels"] != IGNORE).long()


def _token_mse(h: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the masked tokens and hidden units of (h - target)²."""
    m = mask.unsqueeze(-1).to(h.dtype)
    return ((h - target).square() * m).sum() / (m.sum() * h.shape[-1]).clamp_min(1)


@torch.no_grad()
def forget_activation_norm(model, tokenizer, data: UnlearnData, cfg: RMUConfig, layer: int) -> float:
    """The mean L2 norm of the model's layer-``layer`` activations over every forget data token (Adaptive RMU's
    reference scale), read in eval mode so that dropout does not blur it."""
    total, count = 0.0, 0
    device, training = next(model.parameters()).device, model.training
    model.eval()
    try:
        for batch in encoded_batches(tokenizer, data.forget, cfg.max_length, cfg.batch_size):
            batch = {k: v.to(device) for k, v in batch.items()}
            norms = _activations(model, batch, layer).float().norm(dim=-1)
            mask = data_tokens(batch).to(norms.dtype)
            total, count = total + float((norms * mask).sum()), count + int(mask.sum())
    finally:
        model.train(training)
    if count == 0:
        raise ObliviateError("rmu: the forget set has no labelled token to read activations from")
    return total / count


def rmu(model, tokenizer, data: UnlearnData, cfg: RMUConfig) -> dict:
    layer, ids = resolve_layers(model, cfg)
    named = updated_parameters(model, ids)
    params = [p for _, p in named]
    chosen = {id(p) for p in params}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    coeff = cfg.steering_coeff
    if cfg.adaptive_scale is not None:
        coeff = cfg.adaptive_scale * forget_activation_norm(model, tokenizer, data, cfg, layer)
    frozen = frozen_copy(model)  # sharded too under FSDP (obliviate.engine.distributed)
    for p in model.parameters():  # no gradients for what RMU does not update
        p.requires_grad_(id(p) in chosen)
    g = torch.Generator().manual_seed(cfg.seed)
    hidden = model.config.hidden_size if hasattr(model.config, "hidden_size") else model.config.n_embd
    u = torch.rand(hidden, generator=g)  # as the official code: uniform [0, 1), then unit norm
    control = coeff * u / u.norm()

    def loss(m, b):
        f = b["forget"]
        h_f = _activations(m, f, layer)
        value = _token_mse(h_f, control.to(h_f.device, h_f.dtype), data_tokens(f))
        if "retain" in b and cfg.alpha > 0:
            r = b["retain"]
            h_r = _activations(m, r, layer)
            with torch.no_grad():
                h_ref = _activations(frozen, r, layer)
            value = value + cfg.alpha * _token_mse(h_r, h_ref, data_tokens(r))
        return value

    try:
        out = run_gradient_method(model, tokenizer, data, cfg, loss, "unlearn rmu", needs_retain=cfg.alpha > 0,
                                  params=params)
    finally:
        for n, p in model.named_parameters():
            p.requires_grad_(flags[n])
    return {**out, "layer": layer, "updated_layers": ids, "updated_parameters": [n for n, _ in named],
            "steering_coeff": coeff}


register(Method(
    "rmu", RMUConfig, rmu,
    "RMU: steer layer-l activations on forget data to a random direction; updates MLP down-projections of "
    "layers l-2..l only",
    family=FAMILY, memory=MemoryTerms(frozen_copies=1, stops_at_layer=True)))
