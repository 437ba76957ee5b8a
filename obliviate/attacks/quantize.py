"""Quantization attack (Zhang et al., 2024, "Catastrophic Failure of LLM Unlearning via Quantization",
arXiv:2410.16454): unlearning with a small learning rate moves weights by less than a quantization step, so
rounding the unlearned weights to 8 or 4 bits can land them back on the target's grid and restore the facts.

Round-to-nearest (RTN), symmetric, per output channel and group of input columns, applied to every linear
layer's weight except the output head (as weight-only LLM quantizers do), on a copy, in plain torch on the
CPU. The quantized weights are stored dequantized, so the model runs as before.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from ..evals.scoring import Scorer
from ..options import Options, comma_list, option
from ..utils import ObliviateError
from .common import AttackResult, accuracy, ask, forget_facts, probe_facts


@dataclass
class QuantizeConfig(Options):
    bits: str = option("8,4", "the precisions tried (2..16 bits); the score is the highest forget accuracy among them",
                       check=comma_list(int, ge=2, le=16))
    group_size: int = option(128, "input columns sharing one scale (0: one scale per output channel)", ge=0)
    max_new_tokens: int = option(24, "greedy answer length", ge=1)


@torch.no_grad()
def rtn_quantize_(model, bits: int, group_size: int = 128) -> int:
    """Quantize ``model``'s linear weights in place to ``bits`` (symmetric RTN); returns how many were quantized."""
    if not 2 <= bits <= 16:
        raise ObliviateError(f"quantize: bits must be in 2..16, got {bits}")
    qmax = 2 ** (bits - 1) - 1
    head = model.get_output_embeddings()
    n = 0
    for mod in model.modules():
        if not isinstance(mod, torch.nn.Linear) or mod is head:
            continue
        w = mod.weight.data
        out_f, in_f = w.shape
        g = group_size if group_size and in_f % group_size == 0 else in_f
        wg = w.float().reshape(out_f, in_f // g, g)
        scale = wg.abs().amax(-1, keepdim=True).clamp_min(1e-12) / qmax
        mod.weight.data = (torch.round(wg / scale).clamp(-qmax - 1, qmax) * scale).reshape(out_f, in_f).to(w.dtype)
        n += 1
    return n


def quantize(model, tok, bench, cfg: QuantizeConfig, refs=None, scorer: Scorer | None = None) -> AttackResult:
    """Score: the highest forget accuracy over the quantized copies. Curve: accuracy at full precision and at
    each bit width."""
    bits = sorted({int(b) for b in str(cfg.bits).split(",") if b.strip()}, reverse=True)
    probes = probe_facts(tok, forget_facts(bench))
    base = ask(scorer or Scorer(model, tok), probes, cfg.max_new_tokens)
    rows = [{**r, "bits": "full"} for r in base]
    curve = [{"strength": "full", "score": accuracy(base)}]
    for b in bits:
        q = copy.deepcopy(model)
        n = rtn_quantize_(q, b, cfg.group_size)
        if not n:
            raise ObliviateError(f"quantize: {type(model).__name__} has no linear layers to quantize")
        r = ask(Scorer(q, tok), probes, cfg.max_new_tokens)
        rows += [{**x, "bits": b} for x in r]
        curve.append({"strength": f"{b}-bit", "score": accuracy(r)})
        del q
    return AttackResult(score=max(c["score"] for c in curve[1:]), curve=curve, rows=rows, strength="precision",
                        extra={"group_size": cfg.group_size, "method": "RTN, symmetric"})
