"""What the weight-editing methods (``ssd``, ``rocr``, ``needle``) share: where a subject sits in the token
sequence, the MLP down-projections (key-value memories, Geva et al. 2021), and reading their inputs (keys) and
outputs (values) at chosen positions."""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from obliviate.data.format import encode, uses_chat_template
from obliviate.core.utils import ObliviateError


def subject_spans(text: str, subject: str) -> list[tuple[int, int, int | None]]:
    """Every mention of ``subject`` in ``text``: ``(start, end, word)`` character spans of the full name, then of
    each of its words of at least 4 letters standing alone (``word``: its index in the name; ``None`` for the full
    name), left to right. Passages and answers often name a person by one name."""
    spans = [(m.start(), m.end(), None) for m in re.finditer(re.escape(subject), text)]
    words = subject.split()
    for w_i, word in enumerate(words):
        if len(word) < 4 or len(words) < 2:
            continue
        for m in re.finditer(rf"\b{re.escape(word)}\b", text):
            if not any(a <= m.start() < b for a, b, _ in spans):
                spans.append((m.start(), m.end(), w_i))
    return sorted(spans)


@dataclass
class Mention:
    """One mention of a subject in an encoded example: the token ``positions`` of the mention (the last is where
    ROME and ROCR read the key), the ``input_ids``/``labels`` of the whole example, and where the mention is
    (``part``: prompt or target; ``span``: characters within that part; ``word``: see :func:`subject_spans`)."""

    input_ids: list[int]
    labels: list[int]
    positions: list[int]
    example_index: int
    part: str
    span: tuple[int, int]
    word: int | None


def _parts(tokenizer, ex) -> list[tuple[str, str, bool, int]]:
    """How :func:`encode` lays an example out: (part, text, add_special_tokens, first token index) per part."""
    chat = uses_chat_template(tokenizer)
    if ex.prompt:
        prompt_len = len(tokenizer(ex.prompt, add_special_tokens=not chat)["input_ids"])
        return [("prompt", ex.prompt, not chat, 0), ("target", ex.target, False, prompt_len)]
    return [("target", ex.target, False, len(tokenizer("", add_special_tokens=True)["input_ids"]))]


def span_positions(tokenizer, ex, part: str, spans: list[tuple[int, int]], max_length: int = 256) -> list[list[int]]:
    """Token positions (in the encoded example) of each character span of one part of ``ex``."""
    if not getattr(tokenizer, "is_fast", False):
        raise ObliviateError("subject positions need a fast tokenizer (offset mapping)")
    _, text, special, shift = next(p for p in _parts(tokenizer, ex) if p[0] == part)
    offsets = tokenizer(text, add_special_tokens=special, return_offsets_mapping=True)["offset_mapping"]
    n = len(encode(tokenizer, ex, max_length)["input_ids"])
    return [[p for p in (shift + j for j, (x, y) in enumerate(offsets) if y > x and x < b and y > a) if p < n]
            for a, b in spans]


def subject_mentions(tokenizer, examples, subjects: list | None, subject: str, max_length: int = 256) -> list[Mention]:
    """Every mention of ``subject`` in the examples about it (by ``subjects``, aligned with ``examples``; all when
    ``None``), in prompts and in answers/passages, with token positions as :func:`encode` lays the example out."""
    out = []
    for i, ex in enumerate(examples):
        if subjects is not None and subjects[i] != subject:
            continue
        enc = encode(tokenizer, ex, max_length)
        for part, text, _, _ in _parts(tokenizer, ex):
            spans = subject_spans(text, subject)
            if not spans:
                continue
            positions = span_positions(tokenizer, ex, part, [(a, b) for a, b, _ in spans], max_length)
            for (a, b, word), pos in zip(spans, positions):
                if pos:
                    out.append(Mention(enc["input_ids"], enc["labels"], pos, i, part, (a, b), word))
    return out


@torch.no_grad()
def read_mlp(model, down: torch.nn.Linear, items: list[tuple[list[int], int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(keys (n, I), values (n, H))``: the down-projection's input and output at one position of each
    ``(input_ids, position)`` (the sequence is cut after that position, so later tokens cannot matter)."""
    dev = next(model.parameters()).device
    keys, values = [], []
    seen = {}

    def hook(_m, inp, out):
        seen["k"], seen["v"] = inp[0][0, -1].float().cpu(), out[0, -1].float().cpu()

    h = down.register_forward_hook(hook)
    try:
        for ids, p in items:
            model(input_ids=torch.tensor([ids[:p + 1]], device=dev))
            keys.append(seen["k"])
            values.append(seen["v"])
    finally:
        h.remove()
    return torch.stack(keys), torch.stack(values)


@torch.no_grad()
def key_covariance(model, tokenizer, down: torch.nn.Linear, examples, max_length: int = 256,
                   batch_size: int = 16) -> tuple[torch.Tensor, int]:
    """``C = E[k kᵀ]`` over every real token of ``examples`` (ROME's second moment of the keys), and the count."""
    from obliviate.data.format import encoded_batches

    dev = next(model.parameters()).device
    acc = {"C": torch.zeros(down.in_features, down.in_features, dtype=torch.float64), "n": 0}

    def hook(_m, inp, _out):
        k = inp[0][acc["mask"]].double().cpu()
        acc["C"] += k.T @ k
        acc["n"] += k.shape[0]

    h = down.register_forward_hook(hook)
    try:
        for b in encoded_batches(tokenizer, examples, max_length, batch_size):
            acc["mask"] = b["attention_mask"].bool().to(dev)
            model(input_ids=b["input_ids"].to(dev), attention_mask=b["attention_mask"].to(dev))
    finally:
        h.remove()
    return acc["C"] / max(acc["n"], 1), acc["n"]
