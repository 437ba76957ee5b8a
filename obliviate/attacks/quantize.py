"""Quantization attack (Zhang et al., 2024, "Catastrophic Failure of LLM Unlearning via Quantization",
arXiv:2410.16454): unlearning with a small learning rate moves weights by less than a quantization step, so
rounding the unlearned weights to 8 or 4 bits can land them back in the target's bins and restore the facts.

Every linear layer's weight except the output head is quantized (as weight-only LLM quantizers do), on a copy,
in plain torch on the CPU; the weights are stored dequantized, so the model runs as before. Schemes:

- ``8``, ``4`` (any 2..16): symmetric round-to-nearest (RTN) per output channel and group of input columns. The
  group is the largest power of two up to ``group_size`` that divides the layer's width (SmolLM2's 576-wide
  layers get 64), so no layer silently falls back to one scale per row;
- ``nf4``: 4-bit NormalFloat (Dettmers et al., 2023, "QLoRA", Sec. 3): 16 levels at the quantiles of a standard
  normal (the construction with offset 0.9677083, as bitsandbytes builds its table), absmax scaling over blocks of
  64 consecutive weights;
- ``fp4``: 4-bit float E2M1 (values ±{0, 0.5, 1, 1.5, 2, 3, 4, 6}, the OCP Microscaling FP4 element), absmax
  scaling over blocks of 64 (bitsandbytes' own FP4 uses another exponent bias: emulated, not bit-identical).

Diagnostics against the target, per scheme: the share of weights whose quantized value equals the target's
quantized value (they landed in the target's bin), and for RTN the median |Δw| / quantization step, Δw the
difference from the target's weights (below 0.5 the rounding can undo the unlearning).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from obliviate.evals.scoring import Scorer
from obliviate.core.options import Options, option
from obliviate.core.utils import ObliviateError
from obliviate.attacks.common import AttackResult, accuracy, ask, by_fact
from obliviate.evals.probes import forget_facts, probe_facts

CODEBOOK_BLOCK = 64  # bitsandbytes' default block size for NF4 / FP4
SCHEMES = ("nf4", "fp4")


def _scheme_check(value: str) -> str | None:
    for p in [x.strip() for x in str(value).split(",") if x.strip()] or [""]:
        if p not in SCHEMES and not (p.isdigit() and 2 <= int(p) <= 16):
            return f"a comma-separated list of bit widths 2..16 or {', '.join(SCHEMES)} ({p!r} is not one)"
    return None


@dataclass
class QuantizeConfig(Options):
    bits: str = option("8,4,nf4,fp4", "the schemes tried: RTN bit widths (2..16), nf4, fp4; the score is the best one",
                       check=_scheme_check)
    group_size: int = option(128, "RTN: input columns sharing one scale, at most (the largest power of two up to "
                                  "this that divides the layer's width); 0: one scale per output channel", ge=0)
    max_new_tokens: int = option(24, "greedy answer length", ge=1)


@lru_cache(maxsize=None)
def codebook(scheme: str) -> torch.Tensor:
    """The 16 levels of NF4 or FP4 in [-1, 1], sorted."""
    if scheme == "nf4":
        from scipy.stats import norm

        offset = 0.9677083  # QLoRA's offset: the normal quantiles' outermost probability
        pos = norm.ppf(np.linspace(offset, 0.5, 9)[:-1])
        neg = -norm.ppf(np.linspace(offset, 0.5, 8)[:-1])
        v = np.sort(np.concatenate([pos, [0.0], neg]))
        return torch.tensor(v / np.abs(v).max(), dtype=torch.float32)
    if scheme == "fp4":
        mags = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]) / 6.0
        return torch.tensor(np.unique(np.concatenate([-mags, mags])), dtype=torch.float32)
    raise ObliviateError(f"quantize: unknown scheme {scheme!r}")


def group_for(width: int, requested: int) -> int:
    """The RTN group: the largest power of two up to ``requested`` that divides ``width`` (the whole row when
    ``requested`` is 0, or when ``width`` is odd)."""
    if requested <= 0 or width <= requested:
        return width
    g = 1 << (requested.bit_length() - 1)
    while g > 1 and width % g:
        g //= 2
    return g if g > 1 else width


def quantize_tensor(w: torch.Tensor, scheme: str, group_size: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """(dequantized weight, integer bin index) of a 2-D weight under ``scheme`` (see the module docstring)."""
    w32 = w.float()
    out_f, in_f = w32.shape
    if scheme.isdigit():
        bits = int(scheme)
        if not 2 <= bits <= 16:
            raise ObliviateError(f"quantize: bits must be in 2..16, got {bits}")
        qmax = 2 ** (bits - 1) - 1
        g = group_for(in_f, group_size)
        wg = w32.reshape(out_f, in_f // g, g)
        scale = (wg.abs().amax(-1, keepdim=True) / qmax).clamp_min(1e-12)
        q = torch.round(wg / scale).clamp(-qmax - 1, qmax)
        return (q * scale).reshape(out_f, in_f).to(w.dtype), q.reshape(out_f, in_f).long()
    levels = codebook(scheme)
    flat = w32.reshape(-1)
    pad = (-flat.numel()) % CODEBOOK_BLOCK
    blocks = torch.cat([flat, flat.new_zeros(pad)]).reshape(-1, CODEBOOK_BLOCK)
    absmax = blocks.abs().amax(-1, keepdim=True).clamp_min(1e-12)
    idx = (blocks / absmax).unsqueeze(-1).sub(levels).abs().argmin(-1)  # (blocks, 64)
    deq = (levels[idx] * absmax).reshape(-1)[:flat.numel()].reshape(out_f, in_f)
    return deq.to(w.dtype), idx.reshape(-1)[:flat.numel()].reshape(out_f, in_f)


def _linears(model):
    head = model.get_output_embeddings()
    return [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and m is not head]


@torch.no_grad()
def quantize_model_(model, scheme: str, group_size: int = 128) -> int:
    """Quantize ``model``'s linear weights in place under ``scheme``; returns how many were quantized."""
    n = 0
    for _, mod in _linears(model):
        mod.weight.data = quantize_tensor(mod.weight.data, scheme, group_size)[0]
        n += 1
    return n


def rtn_quantize_(model, bits: int, group_size: int = 128) -> int:
    """Quantize ``model``'s linear weights in place to ``bits`` (symmetric RTN); returns how many were quantized."""
    if not 2 <= bits <= 16:
        raise ObliviateError(f"quantize: bits must be in 2..16, got {bits}")
    return quantize_model_(model, str(bits), group_size)


@torch.no_grad()
def diagnostics(model, target, scheme: str, group_size: int) -> dict:
    """Share of weights in the target's bin and (RTN) the median |Δw| / step, over every quantized layer."""
    theirs = dict(_linears(target))
    same, total, ratios = 0, 0, []
    for name, mod in _linears(model):
        if name not in theirs or theirs[name].weight.shape != mod.weight.shape:
            continue
        w, t = mod.weight.float(), theirs[name].weight.float()
        same += int((quantize_tensor(w, scheme, group_size)[1] == quantize_tensor(t, scheme, group_size)[1]).sum())
        total += w.numel()
        if scheme.isdigit():
            out_f, in_f = w.shape
            g = group_for(in_f, group_size)
            step = (t.reshape(out_f, in_f // g, g).abs().amax(-1, keepdim=True) / (2 ** (int(scheme) - 1) - 1))
            r = ((w - t).abs().reshape(out_f, in_f // g, g) / step.clamp_min(1e-12)).reshape(-1)
            ratios.append(r[torch.randperm(r.numel(), generator=torch.Generator().manual_seed(0))[:20000]])
    out = {"share_in_target_bin": same / total if total else None}
    if ratios:
        out["median_dw_over_step"] = float(torch.cat(ratios).median())
    return out


def quantize(model, tok, bench, cfg: QuantizeConfig, refs=None, scorer: Scorer | None = None) -> AttackResult:
    """Score: forget accuracy of the best quantized copy (the scheme an attacker would keep). Curve: accuracy at
    full precision and under each scheme. Extra: the diagnostics against the target, per scheme."""
    schemes = [b.strip() for b in str(cfg.bits).split(",") if b.strip()]
    probes = probe_facts(tok, forget_facts(bench))
    base = ask(scorer or Scorer(model, tok), probes, cfg.max_new_tokens)
    rows = [{**r, "bits": "full"} for r in base]
    curve = [{"strength": "full", "score": accuracy(base)}]
    results, diag = {}, {}
    target = (refs or {}).get("target")
    groups = sorted({(m.in_features, group_for(m.in_features, cfg.group_size)) for _, m in _linears(model)})
    for b in schemes:
        q = copy.deepcopy(model)
        if not quantize_model_(q, b, cfg.group_size):
            raise ObliviateError(f"quantize: {type(model).__name__} has no linear layers to quantize")
        r = ask(Scorer(q, tok), probes, cfg.max_new_tokens)
        rows += [{**x, "bits": b} for x in r]
        label = f"{b}-bit" if b.isdigit() else b
        curve.append({"strength": label, "score": accuracy(r)})
        results[label] = r
        if target is not None and target is not model:
            diag[label] = diagnostics(model, target, b, cfg.group_size)
        del q
    best = max(results, key=lambda k: accuracy(results[k]))
    return AttackResult(score=accuracy(results[best]), curve=curve, rows=rows, strength="precision",
                        per_fact=by_fact(results[best]),
                        extra={"best": best, "rtn_groups": {str(w): g for w, g in groups}, "against_target": diag})


def below_half_a_step(model, tokenizer, examples, scheme: str = "4", group_size: int = 128, fraction: float = 0.45):
    """A positive control for this attack: a copy of ``model`` on its own ``scheme`` grid, plus a signed
    perturbation of ``fraction`` of a quantization step (``fraction`` < 0.5) in the direction that raises the NLL
    of ``examples``, left at zero on each group's largest weight so that the scales stay. The copy can forget
    ``examples``, yet quantizing it under ``scheme`` lands every weight back in the original's bin: the case
    Zhang et al. (2024) describe, by construction. RTN schemes only."""
    from obliviate.data import collate, encode
    from obliviate.data.format import pad_id
    from obliviate.methods.common import forward_nll

    if not scheme.isdigit():
        raise ObliviateError(f"quantize: the positive control needs an RTN bit width, got {scheme!r}")
    if not 0 < fraction < 0.5:
        raise ObliviateError(f"quantize: fraction must be in (0, 0.5), got {fraction}")
    qmax = 2 ** (int(scheme) - 1) - 1
    m = copy.deepcopy(model).requires_grad_(True)
    with torch.no_grad():
        for _, lin in _linears(m):
            lin.weight.data = quantize_tensor(lin.weight.data, scheme, group_size)[0]
    m.train()
    b = collate([encode(tokenizer, e) for e in examples], pad_id(tokenizer))
    dev = next(m.parameters()).device
    forward_nll(m, {k: v.to(dev) for k, v in b.items()}).mean().backward()
    with torch.no_grad():
        for _, lin in _linears(m):
            w = lin.weight
            out_f, in_f = w.shape
            g = group_for(in_f, group_size)
            wg = w.reshape(out_f, in_f // g, g)
            top = wg.abs().amax(-1, keepdim=True)
            d = fraction * top / qmax * torch.sign(w.grad.reshape(out_f, in_f // g, g))
            d[wg.abs() == top] = 0
            w.add_(d.reshape(out_f, in_f))
    m.zero_grad(set_to_none=True)
    return m.eval()
