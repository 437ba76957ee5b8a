"""Rank-one concept redirection: a training-free edit that makes the model take the forget subject for another.

Ye, Zhang, Wu 2025, "LLM Unlearning Should Be Form-Independent" (arXiv:2506.07795), ROCR: the subject's key at
one MLP (the down-projection's input at the subject's last token) is mapped to the value that MLP produces for a
harmless replacement concept, with ROME's closed-form rank-one update (Meng et al. 2022, arXiv:2202.05262, Eq. 2):

    W' = W + (v* − W k*) (C⁻¹ k*)ᵀ / (k*ᵀ C⁻¹ k*)

* ``k*``: the mean key of the subject over its mentions (every mention in the forget data: prompts, answers and
  passages, cut after the mention), one constraint per way of naming it (the full name, or one of its words alone);
  ``v*``: the mean *value* (down-projection output) of the replacement concept in the same contexts with the
  subject renamed. ROME optimises v* by gradient descent towards a new object; ROCR redirects to the replacement
  concept's own representation, so no optimisation runs here. **Unverified against the paper:** only its abstract
  was readable offline, so this construction of v* and the layer rule follow the issue's statement of the method
  (redirect the subject's key to the harmless concept's value, ROME's closed form, layer by causal tracing).
* ``positions="all"`` (obliviate's addition, not the paper's): every token of a mention, each mapped to the value
  of the replacement's token at the same offset from the end, for models that read a name at all its tokens.
* ``C = E[k kᵀ]`` over the keys of generic text, here the retain data (the text the edit must leave alone), plus
  ``ridge · mean(diag C) · I`` so that it is invertible when the retain text has fewer tokens than keys.
* Several subjects (a forget set of several people): one rank-one constraint each, solved jointly so that every
  ``W' k*_s = v*_s`` holds exactly (``Δ = R (KᵀC⁻¹K)⁻¹ KᵀC⁻¹``, MEMIT's form for exact constraints; with one subject
  it is the equation above).
* Layer: by causal tracing (ROME, Sec. 2.1): the subject's token embeddings are corrupted with Gaussian noise
  (``noise`` × the embeddings' standard deviation; ROME: 3), then each layer's MLP output at the last subject
  token is restored from the clean run; the layer whose restoration recovers the most of the clean
  log-probability of what follows (the answer of a QA example, the next tokens of a passage) is edited.
* Replacement: ``replacement`` (a name) for every subject, or, by default, for each forget subject a different
  retain subject (seeded): a concept the model knows, so the redirect is measurable (``redirect_rate``: answers
  that become the replacement's facts — an oracle would never give them).
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass

import torch

from obliviate.data.format import Example, encode
from obliviate.core.options import Options, option
from obliviate.core.utils import ObliviateError
from obliviate.methods.common import UnlearnData
from obliviate.models.anatomy import down_projs
from obliviate.methods.editing.common import Mention, key_covariance, read_mlp, span_positions, subject_mentions, subject_spans
from obliviate.models.anatomy import mlp_modules
from obliviate.methods.editing import FAMILY
from obliviate.methods.registry import Method, register


@dataclass
class ROCRConfig(Options):
    layer: int | None = option(None, "the MLP to edit (default: chosen by causal tracing)", ge=0)
    replacement: str | None = option(None, "the harmless concept every subject is redirected to (default: a "
                                           "different retain subject for each forget subject)")
    subject: str | None = option(None, "the forget subject(s), comma-separated (default: the forget set's subjects)")
    noise: float = option(3.0, "causal tracing: subject-embedding noise in standard deviations of the embeddings "
                               "(ROME: 3)", gt=0)
    trace_examples: int = option(8, "causal tracing: examples per subject", ge=1)
    continuation: int = option(8, "causal tracing: tokens after a passage's mention that are scored", ge=1)
    positions: str = option("last", "last: the key at a mention's last token (the paper, after ROME); all: every token "
                                    "of the mention, each mapped to the replacement's aligned token (obliviate's "
                                    "addition, for models that read a name at all its tokens)",
                            choices=("last", "all"))
    ridge: float = option(1e-2, "added to C: ridge x mean(diag C) x I", gt=0)
    max_length: int = option(256, "tokens per example", ge=8)
    seed: int = option(0, "seeds the replacement choice and the tracing noise", ge=0)


def _subjects(data: UnlearnData, cfg: ROCRConfig) -> list[str]:
    if cfg.subject:
        return [s.strip() for s in cfg.subject.split(",") if s.strip()]
    subs = [s for s in data.subjects.get("forget", []) if s]
    if not subs:
        raise ObliviateError("rocr: the forget data names no subjects; give --set subject=NAME")
    return list(dict.fromkeys(subs))


def replacements(data: UnlearnData, subjects: list[str], cfg: ROCRConfig) -> dict[str, str]:
    if cfg.replacement:
        return {s: cfg.replacement for s in subjects}
    pool = sorted({s for s in data.subjects.get("retain", []) if s and s not in subjects})
    if len(pool) < len(subjects):
        raise ObliviateError(f"rocr: {len(subjects)} forget subjects but {len(pool)} retain subjects to redirect "
                             "them to; give --set replacement=NAME")
    return dict(zip(subjects, random.Random(cfg.seed).sample(pool, len(subjects))))


def _mentions(tokenizer, data: UnlearnData, subject: str, cfg: ROCRConfig) -> list[Mention]:
    subs = data.subjects.get("forget")
    aligned = subs if subs and len(subs) == len(data.forget) and subject in subs else None
    found = subject_mentions(tokenizer, data.forget, aligned, subject, cfg.max_length)
    if not found:
        raise ObliviateError(f"rocr: no forget example mentions {subject!r}")
    return found


def _rename(text: str, subject: str, other: str, end: int | None = None) -> tuple[str, tuple[int, int] | None]:
    """``text`` (cut at ``end``, the end of a mention) with every mention of ``subject`` replaced by ``other`` (a
    one-word mention by the word of ``other`` in the same place, when it has one), and the span of the replaced
    mention that now ends the text (``None`` without ``end``)."""
    text = text if end is None else text[:end]
    words = other.split()
    last = None
    for a, b, w in reversed(subject_spans(text, subject)):
        rep = words[w] if w is not None and w < len(words) else other
        text = text[:a] + rep + text[b:]
        last = last or len(rep)
    return text, ((len(text) - last, len(text)) if end is not None and last else None)


def _renamed(tokenizer, data: UnlearnData, m: Mention, subject: str, other: str,
             max_length: int) -> tuple[list[int], list[int]]:
    """The mention's context, cut after it, with the subject renamed: (ids, token positions of the renamed
    mention)."""
    ex = data.forget[m.example_index]
    if m.part == "prompt":
        text, span = _rename(ex.prompt, subject, other, m.span[1])
        new = Example(text, "")
    else:
        text, span = _rename(ex.target, subject, other, m.span[1])
        new = Example(_rename(ex.prompt, subject, other)[0] if ex.prompt else "", text)
    pos = span_positions(tokenizer, new, m.part, [span], max_length)[0]
    ids = encode(tokenizer, new, max_length)["input_ids"][:pos[-1] + 1]
    return ids, pos


def _scored(m: Mention, cfg: ROCRConfig) -> list[int]:
    """Positions whose tokens causal tracing scores: the answer after a prompt mention, else the next tokens."""
    last = m.positions[-1]
    if m.part == "prompt":
        after = [t for t in range(last + 1, len(m.input_ids)) if m.labels[t] != -100]
    else:
        after = list(range(last + 1, len(m.input_ids)))
    return after[:cfg.continuation]


@torch.no_grad()
def causal_trace(model, tokenizer, mentions: list[Mention], cfg: ROCRConfig) -> list[float]:
    """Per layer: the share of the clean log-probability of what follows a mention that restoring that layer's MLP
    output at the mention's last token recovers, in a run whose subject tokens (this mention and every earlier one
    in the example) carry Gaussian noise; averaged over ``trace_examples`` mentions."""
    mods = [m for _, m in mlp_modules(model, "rocr")]
    emb = model.get_input_embeddings()
    sd = float(emb.weight.float().std()) * cfg.noise
    g = torch.Generator().manual_seed(cfg.seed)
    dev = next(model.parameters()).device
    scores = torch.zeros(len(mods))
    used = 0
    by_example: dict[int, list[Mention]] = {}
    for m in mentions:
        by_example.setdefault(m.example_index, []).append(m)
    for m in [m for m in mentions if _scored(m, cfg)][:cfg.trace_examples]:
        scored = _scored(m, cfg)
        last = m.positions[-1]
        cut = scored[-1] + 1
        ids = torch.tensor([m.input_ids[:cut]], device=dev)
        noised = sorted({p for o in by_example[m.example_index] if o.positions[-1] <= last for p in o.positions})
        tgt = torch.tensor([m.input_ids[t] for t in scored], device=dev)
        noise = torch.randn(len(noised), emb.weight.shape[1], generator=g).to(dev) * sd

        def logp(logits):
            lp = torch.log_softmax(logits[0, [t - 1 for t in scored]].float(), -1)
            return float(lp.gather(-1, tgt[:, None]).sum())

        clean_out = {}
        hs = [mod.register_forward_hook(lambda _m, _i, o, i=i: clean_out.__setitem__(i, o.detach().clone()))
              for i, mod in enumerate(mods)]
        try:
            clean = logp(model(input_ids=ids).logits)
        finally:
            for h in hs:
                h.remove()

        def corrupt(_m, _i, out):
            out = out.clone()
            out[0, noised] += noise.to(out.dtype)
            return out

        he = emb.register_forward_hook(corrupt)
        try:
            low = logp(model(input_ids=ids).logits)
            if clean - low < 1e-3:
                continue  # the noise does not hurt this mention: it says nothing about where the fact is read
            for i, mod in enumerate(mods):
                def restore(_m, _i, out, i=i):
                    out = out.clone()
                    out[0, last] = clean_out[i][0, last]
                    return out
                h = mod.register_forward_hook(restore)
                try:
                    scores[i] += (logp(model(input_ids=ids).logits) - low) / (clean - low)
                finally:
                    h.remove()
        finally:
            he.remove()
        used += 1
    return (scores / max(used, 1)).tolist()


def rocr(model, tokenizer, data: UnlearnData, cfg: ROCRConfig) -> dict:
    if not data.forget:
        raise ObliviateError("rocr: the forget set is empty")
    if not data.retain:
        raise ObliviateError("rocr: needs retain data (the key covariance C is estimated on it)")
    t0 = time.time()
    model.eval()
    downs = down_projs(model, "rocr")
    subjects = _subjects(data, cfg)
    repl = replacements(data, subjects, cfg)
    mentions = {s: _mentions(tokenizer, data, s, cfg) for s in subjects}
    trace = None
    if cfg.layer is None:
        per = [causal_trace(model, tokenizer, mentions[s], cfg) for s in subjects]
        trace = [sum(p[i] for p in per) / len(per) for i in range(len(downs))]
        layer = max(range(len(downs)), key=lambda i: trace[i])
    else:
        layer = cfg.layer
        if layer >= len(downs):
            raise ObliviateError(f"rocr: layer must be in 0..{len(downs) - 1}, got {layer}")
    down = downs[layer]
    K, V, groups = [], [], []
    for s in subjects:  # one constraint per subject, way of naming it (full name or one word) and token offset
        for word in sorted({m.word for m in mentions[s]}, key=lambda w: -1 if w is None else w):
            ms = [m for m in mentions[s] if m.word == word]
            renamed = [_renamed(tokenizer, data, m, s, repl[s], cfg.max_length) for m in ms]
            depth = 1 if cfg.positions == "last" else max(len(m.positions) for m in ms)
            for j in range(depth):  # j tokens before the mention's last; the replacement's aligned token
                keys = [(m.input_ids, m.positions[-1 - j]) for m in ms if j < len(m.positions)]
                vals = [(ids, pos[max(len(pos) - 1 - j, 0)]) for (ids, pos), m in zip(renamed, ms)
                        if j < len(m.positions)]
                k, _ = read_mlp(model, down, keys)
                _, v = read_mlp(model, down, vals)
                K.append(k.mean(0))
                V.append(v.mean(0))
                groups.append({"subject": s, "word": word, "offset_from_last": j, "contexts": len(keys)})
    K, V = torch.stack(K, 1).double(), torch.stack(V, 1).double()  # (I, m), (H, m)
    C, n_tokens = key_covariance(model, tokenizer, down, data.retain, cfg.max_length)
    C = C + cfg.ridge * C.diagonal().mean().clamp_min(1e-12) * torch.eye(C.shape[0], dtype=C.dtype)
    W = down.weight.detach().double().cpu()
    CiK = torch.linalg.solve(C, K)  # (I, m)
    R = V - W @ K  # (H, m)
    delta = R @ torch.linalg.pinv(K.T @ CiK) @ CiK.T  # (H, I), rank <= m
    with torch.no_grad():
        down.weight += delta.to(down.weight.dtype).to(down.weight.device)
    name = {id(m): n for n, m in model.named_modules()}[id(down)]
    return {"layer": layer, "edited_parameter": f"{name}.weight", "replacements": repl,
            "causal_trace": trace, "covariance_tokens": n_tokens, "constraints": groups,
            "update_norm": float(delta.norm()), "relative_update_norm": float(delta.norm() / W.norm()),
            "seconds": round(time.time() - t0, 3)}


def redirect_rate(answers: dict[str, str], bench, mapping: dict[str, str]) -> dict:
    """Share of forget facts whose greedy answer (``answers[fact id]``) states the value the replacement subject
    has for the same attribute (facts where the two values differ, and the replacement has that attribute)."""
    by = {(r.subject, r.attribute): r.value for r in bench.retain + bench.forget if r.value}
    hits, n = [], 0
    for r in bench.forget:
        other = mapping.get(r.subject)
        v = by.get((other, r.attribute))
        if not other or not v or not r.value or v == r.value or r.id not in answers:
            continue
        n += 1
        hits.append(v.lower() in answers[r.id].lower())
    return {"redirect_rate": sum(hits) / n if n else None, "facts": n}


register(Method(
    "rocr", ROCRConfig, rocr,
    "rank-one concept redirection: no training; a closed-form rank-one edit of one MLP (causal tracing) maps "
    "the subject's key to a harmless concept's value (v* construction and layer rule ours, unverified against"
    " the paper)",
    family=FAMILY, lora=False))
