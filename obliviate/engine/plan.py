"""A memory model for unlearning runs: the expected peak memory per device, term by term, and the configurations
that fit.

    obliviate plan --model smollm2-135m --method npo --gpus 1 --gpu-memory 24
    obliviate plan --model llama-3.1-8b --method rmu --gpus 4 --gpu-memory 80 --batch-size 4 --max-length 512

Terms (bytes per device, ``b`` bytes per weight, ``P`` parameters, ``P_t`` trainable ones, ``N`` processes):

- weights ``P·b``; gradients ``P_t·b``; AdamW's two moments ``2·P_t·b`` and, during its (foreach) step, one more
  ``P_t·b`` of temporaries;
- frozen copies ``k·P·b``: k = 1 for RMU (the frozen model), UNDIAL (the teacher) and WHP (the reinforced model,
  trained before unlearning), 0 for the NPO family (reference NLLs are computed once before training, in
  batches of at most 32 rows and 256 MiB of logits: that pass is its own phase, the weights, sharded under FSDP,
  plus its no-grad activations);
- activations of one step: ``rows · T`` tokens, where rows = the batch size times the batches in the loss (1 for
  ga, 2 with a retain term, 3 for the preference methods with two answers), at
  ``4·V + L·(16·I + 32·H + 8·K) + 12·H`` bytes per token in float32 (V vocabulary, L layers, H hidden, I MLP,
  K key-value width): each batch's log-softmax and, per decoder layer, the tensors an eager Llama block saves for
  backward with SDPA attention (no T² term); plus ``8·V`` per token of one batch for the two copies the
  gather's backward holds at the start of backward (its zeros and the scattered gradient). A no-grad pass keeps
  ``8·V + 8·L·H + 8·H`` per token.
- LoRA in 16-bit: peft keeps the adapters in float32, so every wrapped linear's input is also kept as a float32
  copy for its adapter's gradient: ``4·(6·H + I)`` more per token and layer (q, k, v, o, gate and up read H, down
  reads I; for RMU only its updated down-projections, ``4·I`` each).
- RMU: its forward stops at the steered layer l (``obliviate.models.anatomy.stop_after``) and only the
  down-projections of layers l-2..l train, so two passes (forget, retain) keep, per token, ``4·I`` for each
  updated down-projection's input and ``12·I + 16·H + 8·K`` for each updated block above the first (a block with
  frozen weights whose input needs a gradient); nothing below, no logits. Its peak comes in the frozen model's
  no-grad retain pass, which adds ``12·I + 12·H`` per token.

The constants were counted from the tensors autograd saves in Hugging Face Llama blocks on CPU and checked
against the whole run's live tensor bytes (``bench/memory.py``).

The peak is the largest phase: the reference pass; forward-then-backward (weights, frozen copies, moments,
activations, the tied embedding's gradient); the optimiser step (weights, frozen copies, gradients, moments,
temporaries). Under FSDP over N processes every weight, gradient, moment and frozen copy is divided by N, plus the
gathered root (embeddings, final norm, head) and two gathered decoder layers (the current one and the prefetched
one), for the trained copy and for each frozen copy; the batch is divided by N as well (data parallelism). With
full fine-tuning under FSDP one more phase, the end of backward: every sharded gradient exists and the root's
gradients are still whole (three root-sized buffers: the accumulated gradient, one being added, the
reduce-scatter input). LoRA makes ``P_t`` the adapters' parameters.

Not modelled: framework overhead (CUDA context ~0.5 GiB, allocator fragmentation; ``--headroom`` keeps 10 % free
by default), host memory (under FSDP or DeepSpeed every process holds the loaded model and ``unlearn``'s working
copy, 2·P·b, in host memory until the copy is sharded), mixed precision other than one dtype throughout, MoE
routing buffers, evaluation (bounded separately by the scorer's ``logits_bytes``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from obliviate.core.utils import ObliviateError

GIB = 2**30
REFERENCE_LOGITS_BYTES = 256 * 2**20  # the reference pass's bound on the logits it holds at once


@dataclass(frozen=True)
class MemoryTerms:
    """What a method adds to the memory model, declared beside the method in its registry entry (the planner
    names no method): ``frozen_copies`` whole frozen models kept beside the trained one (a teacher, a reinforced
    copy), ``reference_pass`` reference NLLs computed once before training, ``rows`` batches in one step's loss
    (forget + retain: 2; the refusal methods' counts read from their losses), ``stops_at_layer`` a loss that
    reads one layer's activations and stops the forward there (RMU)."""

    frozen_copies: int = 0
    reference_pass: bool = False
    rows: int = 2
    stops_at_layer: bool = False


# Public architectures (from their config.json files), so that a plan needs no download.
PRESETS = {
    "llama-3.2-1b": dict(model_type="llama", vocab_size=128256, hidden_size=2048, intermediate_size=8192,
                         num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
                         tie_word_embeddings=True),
    "llama-3.2-3b": dict(model_type="llama", vocab_size=128256, hidden_size=3072, intermediate_size=8192,
                         num_hidden_layers=28, num_attention_heads=24, num_key_value_heads=8,
                         tie_word_embeddings=True),
    "llama-2-7b": dict(model_type="llama", vocab_size=32000, hidden_size=4096, intermediate_size=11008,
                       num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                       tie_word_embeddings=False),
    "llama-3.1-8b": dict(model_type="llama", vocab_size=128256, hidden_size=4096, intermediate_size=14336,
                         num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                         tie_word_embeddings=False),
    "mistral-7b": dict(model_type="mistral", vocab_size=32000, hidden_size=4096, intermediate_size=14336,
                       num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                       tie_word_embeddings=False),
}

REFERENCE_BATCH = 32
RMU_TOKEN_H = 8  # RMU's per-token extras in units of H: the final norm's input and output, the MSE's difference


@dataclass
class Arch:
    vocab: int
    hidden: int
    inter: int
    layers: int
    heads: int
    kv_heads: int
    params: int
    layer_params: int
    root_params: int
    lora_params: dict = field(default_factory=dict)  # rank -> parameters of LoRA on every linear layer

    @property
    def kv_width(self) -> int:
        return self.hidden * self.kv_heads // self.heads


def _count(config) -> Arch:
    """Exact parameter counts from the model built on the meta device (no memory, no download)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    from obliviate.models.anatomy import decoder_layers

    params = sum(p.numel() for p in model.parameters())
    layers = decoder_layers(model)
    layer_params = max(sum(p.numel() for p in layer.parameters()) for layer in layers)
    linear = [(m.in_features, m.out_features) for n, m in layers.named_modules() if isinstance(m, torch.nn.Linear)]
    c = config
    heads = c.num_attention_heads
    return Arch(vocab=c.vocab_size, hidden=c.hidden_size, inter=c.intermediate_size, layers=c.num_hidden_layers,
                heads=heads, kv_heads=getattr(c, "num_key_value_heads", None) or heads, params=params,
                layer_params=layer_params, root_params=params - sum(sum(p.numel() for p in la.parameters())
                                                                    for la in layers),
                lora_params={"per_rank": sum(i + o for i, o in linear)})


def architecture(spec: str) -> Arch:
    """An :class:`Arch` from a preset name, a built-in model (``tiny``, ``micro``, ``smollm2-135m``, ...), a
    model folder or a ``config.json``."""
    from pathlib import Path

    from transformers import AutoConfig, CONFIG_MAPPING

    if spec in PRESETS:
        p = dict(PRESETS[spec])
        return _count(CONFIG_MAPPING[p.pop("model_type")](**p))
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".json":
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            return _count(CONFIG_MAPPING[d.pop("model_type")](**d))
        except (KeyError, ValueError, TypeError) as e:
            raise ObliviateError(f"plan: {path} is not a model config.json ({e})") from None
    if path.is_dir() and (path / "config.json").is_file():
        return _count(AutoConfig.from_pretrained(str(path)))
    from obliviate.models import SCRATCH_MODELS

    if spec in SCRATCH_MODELS:  # its vocabulary is the tokenizer trained on the benchmark
        from obliviate.data.loaders import load_benchmark
        from obliviate.engine.training import base_model

        model, _ = base_model(spec, load_benchmark("micro" if spec.startswith("micro") else "people"), 0)
        return _count(model.config)
    if spec in ("smollm2-135m", "gemma3-270m"):
        from obliviate.models import load_model

        model, _ = load_model(spec)
        return _count(model.config)
    raise ObliviateError(f"plan: unknown model {spec!r}; give a preset ({', '.join(sorted(PRESETS))}), a built-in "
                         "model, a model folder or a config.json")


def layer_token_bytes(a: Arch) -> int:
    """Activation bytes per token a trained decoder block keeps for backward (float32, SDPA)."""
    return 16 * a.inter + 32 * a.hidden + 8 * a.kv_width


def frozen_layer_token_bytes(a: Arch) -> int:
    """Activation bytes per token a decoder block keeps for backward when its weights are frozen and its input
    needs a gradient (RMU's blocks above the first updated one; float32, SDPA)."""
    return 12 * a.inter + 16 * a.hidden + 8 * a.kv_width


def nograd_token_bytes(a: Arch) -> int:
    return 8 * a.vocab + 8 * a.layers * a.hidden + 8 * a.hidden


def estimate(a: Arch, terms: MemoryTerms, batch_size: int, max_length: int, gpus: int = 1, fsdp: bool = False,
             lora_rank: int = 0, dtype_bytes: int = 4, forget_rows: int | None = None,
             method: str | None = None) -> dict:
    """Expected peak bytes per device, with every term (see the module docstring). ``terms``: what the method adds
    (its registry entry's ``memory``); ``method``: its name, recorded in the setting. ``forget_rows``: the size of
    the forget set, when smaller than the reference pass's batch of 32."""
    b, n = dtype_bytes, (gpus if fsdp else 1)
    scale = b / 4  # activations were counted in float32; the logits stay float32 in the loss
    per_batch = max(1, batch_size // max(1, gpus))
    rows = per_batch * terms.rows
    if terms.stops_at_layer:
        # the loss reads layer l's output and its forward stops there (obliviate.models.anatomy.stop_after): two
        # passes (forget, retain) of per_batch rows keep, per token, each updated down-projection's input (4·I)
        # and, in the updated blocks above the first (l-n+2..l), what a block with frozen weights keeps when its
        # input needs a gradient; the blocks below keep nothing (no input or weight of theirs needs a gradient)
        # and one position's logits are computed
        layer = 7 if a.layers > 8 else a.layers // 2
        updated = min(3, layer + 1)  # its n_updated_layers down-projections
        p_t = updated * (lora_rank * (a.inter + a.hidden) if lora_rank else a.inter * a.hidden)
        token = 4 * a.inter * updated + (updated - 1) * frozen_layer_token_bytes(a) + RMU_TOKEN_H * a.hidden
        token += 4 * a.inter * updated / scale if lora_rank and b < 4 else 0  # float32 adapter inputs (below)
        # the peak comes during the frozen model's no-grad retain pass, in block l's MLP: both graphs plus its
        # gate, up and activation outputs (3·I) and three residual-stream tensors (3·H), per token
        acts = per_batch * max_length * (2 * token + 12 * a.inter + 12 * a.hidden) * scale
    else:
        p_t = lora_rank * a.lora_params["per_rank"] if lora_rank else a.params
        # logits: each batch in the loss keeps its log-softmax for backward (4·V per row and token), and the
        # gather's backward holds two more copies for one batch (its zeros and the scattered gradient)
        logits = 4 * a.vocab * (rows + 2 * per_batch)
        acts = max_length * (logits + (rows * a.layers * layer_token_bytes(a) + rows * 12 * a.hidden) * scale)
        if lora_rank and b < 4:  # peft keeps adapters in float32 and casts each wrapped linear's input to it, and
            # lora_A keeps that copy for its gradient: q, k, v, o, gate, up read H, down reads I
            acts += max_length * rows * a.layers * 4 * (6 * a.hidden + a.inter)
    # FSDP2's gathered working set: the root (embeddings, final norm, head) and two decoder layers (the current
    # one and the prefetched one)
    sharding = fsdp and gpus > 1
    gathered = (a.root_params + 2 * a.layer_params) * b if sharding else 0
    weights = a.params * b / n + gathered
    grads, moments, temps = p_t * b / n, 2 * p_t * b / n, p_t * b / n
    # a sharded frozen copy gathers its own root and layers during its forward passes
    frozen = terms.frozen_copies * (a.params * b / n + gathered)
    tied_head = not lora_rank and not terms.stops_at_layer
    embed_grad = a.vocab * a.hidden * b / n if tied_head else 0
    # the reference pass runs before training, in batches of at most 32 rows and 256 MiB of float32 logits
    ref_rows = min(REFERENCE_BATCH, forget_rows or REFERENCE_BATCH,
                   max(1, REFERENCE_LOGITS_BYTES // (4 * a.vocab * max_length)))
    # under FSDP it runs on a sharded frozen copy (obliviate.methods.common.reference_nll): the sharded weights
    ref = ((weights if fsdp and gpus > 1 else a.params * b) + ref_rows * max_length * nograd_token_bytes(a) * scale
           if terms.reference_pass else 0)
    phases = {"reference pass": ref,
              "forward and backward": weights + frozen + moments + acts + embed_grad,
              "optimiser step": weights + frozen + grads + moments + temps}
    if sharding and not lora_rank and not terms.stops_at_layer:
        # FSDP reduce-scatters the root's gradients when its backward ends, last: by then every layer's sharded
        # gradient exists and the root's are still whole (the accumulated one, one more being added, the
        # reduce-scatter input)
        phases["end of backward (FSDP)"] = weights + frozen + moments + grads + 3 * a.root_params * b
    peak_phase = max(phases, key=phases.get)
    return {"terms": {"weights": weights, "gradients": grads, "optimizer": moments, "optimizer step temporaries": temps,
                      "frozen copies": frozen, "activations": acts, "reference pass": ref},
            "phases": phases, "peak": phases[peak_phase], "peak_phase": peak_phase,
            "setting": {"method": method, "batch_size": batch_size,
                        "max_length": max_length, "gpus": gpus,
                        "fsdp": fsdp, "lora_rank": lora_rank, "dtype_bytes": b, "rows_per_step": rows,
                        "trainable_parameters": p_t}}


def options(a: Arch, terms: MemoryTerms, batch_size: int, max_length: int, gpus: int, gpu_memory_gib: float,
            dtype_bytes: int = 2, headroom: float = 0.10, method: str | None = None) -> list[dict]:
    """Every configuration (full or LoRA r=16, with or without FSDP), its peak, and whether it fits."""
    out = []
    for lora in (0, 16):
        for fsdp in ((False, True) if gpus > 1 else (False,)):
            e = estimate(a, terms, batch_size, max_length, gpus, fsdp, lora, dtype_bytes, method=method)
            e["fits"] = e["peak"] <= gpu_memory_gib * GIB * (1 - headroom)
            out.append(e)
    return out
