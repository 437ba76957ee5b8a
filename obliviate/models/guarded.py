"""A guarded model: a causal LM whose weights are untouched, plus an inference-time guard.

:class:`GuardedModel` behaves like the model it wraps everywhere obliviate reads a model (scoring, generation,
hidden states, ``parameters()``, ``save_pretrained``), with the guard applied on the way in or out. Guards are
registered methods (``obliviate unlearn --method eco``); the returned model saves as a normal model folder plus
``obliviate_guard.json`` (kind, config, and every forget-set text the guard keeps) and
``obliviate_guard.safetensors`` (its tensors), and :func:`obliviate.load_model` rebuilds it. No pickle.

Scoring passes ``prompt_mask`` (True on prompt tokens), so a guard that changes the prompt (ECO corrupts the prompt
embeddings) leaves the answer tokens as a teacher-forced pass would see them in generation; a caller that does not
pass it gets every token treated as prompt.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from obliviate.models.kinds import register_kind

GUARD_JSON = "obliviate_guard.json"
GUARD_TENSORS = "obliviate_guard.safetensors"


class Guard(torch.nn.Module):
    """What a guard implements: ``prepare(model, input_ids, attention_mask, prompt_mask)`` returns the forward
    keyword arguments that replace ``input_ids`` (or ``None`` to leave the pass alone); ``state()`` is the
    JSON-able part of the guard (its tensors are its buffers)."""

    kind = "guard"

    def prepare(self, model, input_ids, attention_mask, prompt_mask):  # pragma: no cover - interface
        raise NotImplementedError

    def state(self) -> dict:  # pragma: no cover - interface
        raise NotImplementedError

    def flag(self, model, input_ids, attention_mask, prompt_mask) -> torch.Tensor:  # pragma: no cover - interface
        """(B,) bool: which prompts the guard treats as about the forget set."""
        raise NotImplementedError

    def retained_text(self) -> list[str]:
        """Forget-set text the guard keeps at inference (so the owner knows what the deployment retains)."""
        return []


class GuardedModel(torch.nn.Module):
    """``inner`` (a transformers causal LM) behind ``guard``."""

    takes_prompt_mask = True

    def __init__(self, inner, guard: Guard):
        super().__init__()
        self.inner = inner
        self.guard = guard

    @property
    def config(self):
        return self.inner.config

    def weights_of(self) -> tuple[torch.nn.Module, str]:
        """The weights this model runs on (the target's) and what whoever fine-tunes them drops (the guard)."""
        return self.inner, "the guard is dropped: relearning needs the weights, which are the target's"

    @property
    def generation_config(self):
        return self.inner.generation_config

    def get_base_model(self):
        """The unguarded model (weights are read through it: layers, value vectors, quantization)."""
        return self.inner

    def get_input_embeddings(self):
        return self.inner.get_input_embeddings()

    def get_output_embeddings(self):
        return self.inner.get_output_embeddings()

    def forward(self, input_ids=None, attention_mask=None, prompt_mask=None, **kw):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if prompt_mask is None:
            prompt_mask = attention_mask.bool()
        if hasattr(self.guard, "run"):  # a guard that runs the pass itself (ECO: one pass; ICUL: a prefix)
            return self.guard.run(self.inner, input_ids, attention_mask, prompt_mask=prompt_mask, **kw)
        change = self.guard.prepare(self.inner, input_ids, attention_mask, prompt_mask)
        if change is None:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, **kw)
        return self.inner(attention_mask=attention_mask, **change, **kw)

    @torch.no_grad()
    def generate(self, input_ids=None, attention_mask=None, **kw):
        """Generation with the guard on the prefill pass (the prompt); later steps see the cache it produced."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if hasattr(self.guard, "generate"):  # a decoding-time guard (GUARD) decodes itself
            return self.guard.generate(self.inner, input_ids, attention_mask, **kw)
        change = self.guard.prepare(self.inner, input_ids, attention_mask, attention_mask.bool())
        if change is None:
            return self.inner.generate(input_ids=input_ids, attention_mask=attention_mask, **kw)
        emb = self.inner.get_input_embeddings()
        corrupted = change["inputs_embeds"]
        state = {"done": False}

        def hook(_m, inp, out):  # the prefill pass embeds the whole prompt once; replace it by the guarded one
            if not state["done"] and out.shape[:2] == corrupted.shape[:2]:
                state["done"] = True
                return corrupted.to(out.dtype)
            return out

        h = emb.register_forward_hook(hook)
        try:
            return self.inner.generate(input_ids=input_ids, attention_mask=attention_mask, **kw)
        finally:
            h.remove()

    def save_pretrained(self, path, **kw):
        from safetensors.torch import save_file

        path = Path(path)
        self.inner.save_pretrained(path, **kw)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.guard.state_dict().items()}
        save_file(tensors, str(path / GUARD_TENSORS))
        (path / GUARD_JSON).write_text(json.dumps({"kind": self.guard.kind, **self.guard.state(),
                                                   "retained_forget_text": self.guard.retained_text()}, indent=1),
                                       encoding="utf-8")


def is_guarded_folder(path: Path) -> bool:
    return (Path(path) / GUARD_JSON).is_file()


def load_guarded(path: Path, inner, tokenizer=None) -> GuardedModel:
    """Rebuild the guard saved beside ``inner``'s weights (tensors strictly from safetensors)."""
    from safetensors.torch import load_file

    from obliviate.core.utils import ObliviateError

    path = Path(path)
    spec = json.loads((path / GUARD_JSON).read_text(encoding="utf-8"))
    kinds = guard_kinds()
    if spec.get("kind") not in kinds:
        raise ObliviateError(f"{path / GUARD_JSON}: unknown guard kind {spec.get('kind')!r}; expected one of "
                             f"{', '.join(sorted(kinds))}")
    guard = kinds[spec["kind"]].from_state(spec)
    tensors = load_file(str(path / GUARD_TENSORS))
    missing = set(guard.state_dict()) ^ set(tensors)
    if missing:
        raise ObliviateError(f"{path / GUARD_TENSORS}: tensors do not match a {spec['kind']} guard ({sorted(missing)})")
    guard.load_state_dict(tensors)
    if hasattr(guard, "tokenizer"):
        guard.tokenizer = tokenizer
    return GuardedModel(inner, guard)


GUARD_KINDS: dict[str, type] = {}


def register_guard(cls: type) -> type:
    """Class decorator: a guard family registers each guard class under its ``kind``, which is what a saved
    guard's ``obliviate_guard.json`` names (a second class under one kind is an error)."""
    from obliviate.core.utils import ObliviateError

    if GUARD_KINDS.get(cls.kind, cls) is not cls:
        raise ObliviateError(f"guard kind {cls.kind!r} is registered twice ({GUARD_KINDS[cls.kind].__name__}, "
                             f"{cls.__name__})")
    GUARD_KINDS[cls.kind] = cls
    return cls


def guard_kinds() -> dict[str, type]:
    """The registered guard classes by kind (the guard methods register theirs when :mod:`obliviate.methods`
    is imported, as ``import obliviate`` does)."""
    return dict(GUARD_KINDS)


def _load_guarded_folder(path: Path, dtype, trust_remote_code: bool = False):
    from obliviate.models.loading import load_plain

    inner, tok = load_plain(path, dtype, trust_remote_code)
    return load_guarded(path, inner, tok), tok


register_kind("guarded", is_guarded_folder, _load_guarded_folder)  # an inference-time guard beside the weights
