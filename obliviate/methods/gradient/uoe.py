"""Unlearning One Expert (UOE; Zhuang, Zhang, Guo, Jia, Liu, Liu & Zhang, 2024, "UOE: Unlearning One Expert Is
Enough For Mixture-of-Experts LLMs", arXiv:2411.18797; published at ACL 2025 as SEUF).

Unlearning a Mixture-of-Experts model with a standard loss shifts the router away from the experts that hold
the forget knowledge, so other experts get damaged while the knowledge stays. UOE instead

1. attributes the forget set to experts by router statistics: an expert's affinity is its mean routing
   probability softmax(router logits)_e over the forget *answer* tokens (every token of a passage; the shared
   question template is left out, as it is routed alike for forget and retain questions), and the (layer,
   expert) with the highest affinity is chosen (``layer`` can fix the layer);
2. unlearns only that expert with a chosen loss (``loss``: ga, graddiff, npo, ...);
3. adds a router anchor loss, the cross-entropy of that layer's router towards the chosen expert on the
   forget answer tokens, L_anchor = -mean_t log softmax(r_t)_e*, so the expert keeps being selected while it is
   unlearned. The loss is L = L_unlearn + ``anchor_weight`` · L_anchor; the expert and its layer's router are
   the only parameters that change.

    obliviate unlearn --method uoe --model <moe target dir> --benchmark people --set loss=npo
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from obliviate.data.format import IGNORE, collate, encode, pad_id
from obliviate.core.options import option
from obliviate.core.utils import ObliviateError
from obliviate.methods.common import Scope, UnlearnData, lm_logits
from obliviate.methods.gradient.localized import ScopedLossConfig, inner_method
from obliviate.models.anatomy import decoder_layers
from obliviate.methods.gradient import FAMILY
from obliviate.methods.registry import Method, register


@dataclass
class UOEConfig(ScopedLossConfig):
    SEARCH = {**ScopedLossConfig.SEARCH, "anchor_weight": ("float", 0.0, 2.0)}
    anchor_weight: float = option(1.0, "weight of the router anchor loss (0 disables it)", ge=0)
    layer: int | None = option(None, "choose the expert within this layer (default: the layer whose best expert has "
                                     "the highest affinity)", ge=0)
    attribution_examples: int = option(64, "forget examples whose tokens give the router statistics", ge=1)


def moe_blocks(model) -> dict[int, torch.nn.Module]:
    """The sparse MoE block of each decoder layer that has one (a module with a ``gate`` router and ``experts``)."""
    out = {}
    for i, layer in enumerate(decoder_layers(model)):
        for child in layer.children():
            if hasattr(child, "gate") and hasattr(child, "experts"):
                out[i] = child
                break
    if not out:
        raise ObliviateError(f"uoe: {type(model).__name__} is a dense model; uoe needs a Mixture-of-Experts model "
                             f"(router + experts, e.g. Mixtral, Qwen2-MoE, the built-in tiny-moe)")
    return out


def n_experts(block) -> int:
    ex = block.experts
    if isinstance(ex, torch.nn.ModuleList):
        return len(ex)
    return int(getattr(ex, "num_experts", None) or block.gate.weight.shape[0])


def _router_logits(out) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


def answer_positions(batch: dict) -> torch.Tensor:
    """(B·T,) bool: the positions that hold answer tokens (labelled), flattened as routers see them."""
    return (batch["labels"] != IGNORE).reshape(-1)


@torch.no_grad()
def expert_affinity(model, tokenizer, examples, max_length: int) -> dict[int, torch.Tensor]:
    """Mean routing probability of every expert over the answer tokens of ``examples``: {layer: (E,)}."""
    blocks = moe_blocks(model)
    pad = pad_id(tokenizer)
    enc = [encode(tokenizer, e, max_length) for e in examples]
    dev = next(model.parameters()).device
    sums = {i: torch.zeros(n_experts(b)) for i, b in blocks.items()}
    count = 0
    model.eval()
    for s in range(0, len(enc), 16):
        b = collate(enc[s:s + 16], pad)
        keep = answer_positions(b)
        handles = []
        for i, blk in blocks.items():
            def hook(_m, _in, out, i=i):
                probs = torch.softmax(_router_logits(out).float(), -1).cpu()
                sums[i] += probs[keep].sum(0)
            handles.append(blk.gate.register_forward_hook(hook))
        try:
            model(input_ids=b["input_ids"].to(dev), attention_mask=b["attention_mask"].to(dev))
        finally:
            for h in handles:
                h.remove()
        count += int(keep.sum())
    return {i: v / max(count, 1) for i, v in sums.items()}


def expert_parameters(model, block, expert: int) -> tuple[list[tuple[str, torch.nn.Parameter]], dict[int, torch.Tensor]]:
    """The chosen expert's parameters and, for fused expert tensors (E, ...), a mask selecting its slice."""
    names = {id(p): n for n, p in model.named_parameters()}
    params, masks = [], {}
    if isinstance(block.experts, torch.nn.ModuleList):
        params = [(names[id(p)], p) for p in block.experts[expert].parameters()]
    else:
        for p in block.experts.parameters():
            if p.dim() == 0 or p.shape[0] != n_experts(block):
                raise ObliviateError(f"uoe: cannot split {names[id(p)]} {tuple(p.shape)} by expert")
            mask = torch.zeros_like(p, dtype=torch.bool)
            mask[expert] = True
            params.append((names[id(p)], p))
            masks[id(p)] = mask
    params += [(names[id(p)], p) for p in block.gate.parameters()]
    return params, masks


def uoe(model, tokenizer, data: UnlearnData, cfg: UOEConfig) -> dict:
    run, inner_cfg = inner_method(cfg)
    if not data.forget:
        raise ObliviateError("uoe: the forget set is empty")
    blocks = moe_blocks(model)
    if cfg.layer is not None and cfg.layer not in blocks:
        raise ObliviateError(f"uoe: layer {cfg.layer} has no MoE block; MoE layers are {sorted(blocks)}")
    affinity = expert_affinity(model, tokenizer, data.forget[:cfg.attribution_examples], cfg.max_length)
    candidates = [cfg.layer] if cfg.layer is not None else sorted(affinity)
    layer = max(candidates, key=lambda i: float(affinity[i].max()))
    expert = int(affinity[layer].argmax())
    block = blocks[layer]
    named, masks = expert_parameters(model, block, expert)

    def anchor(m, b):
        f = b["forget"]
        captured = {}
        handle = block.gate.register_forward_hook(lambda _m, _in, out: captured.update(r=_router_logits(out)))
        try:
            lm_logits(m, f)
        finally:
            handle.remove()
        keep = answer_positions(f)
        logits = captured["r"][keep.to(captured["r"].device)].float()
        target = torch.full((logits.shape[0],), expert, device=logits.device)
        return cfg.anchor_weight * F.cross_entropy(logits, target)

    scope = Scope(params=[p for _, p in named], grad_masks=masks, extra_loss=anchor if cfg.anchor_weight > 0 else None,
                  label=f"layer {layer} expert {expert}")
    out = run(model, tokenizer, data, inner_cfg, scope=scope)
    return {**out, "layer": layer, "expert": expert,
            "affinity": {str(i): [round(float(x), 6) for x in v] for i, v in affinity.items()},
            "updated_parameters": [n for n, _ in named]}


register(Method(
    "uoe", UOEConfig, uoe,
    "MoE only: unlearn the forget set's most engaged expert + router anchor loss",
    family=FAMILY, lora=False, moe_only=True))
