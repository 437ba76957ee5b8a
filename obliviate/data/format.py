"""Turn records into token sequences: prompt formatting, encoding with label masks, padding, batching.

A training or scoring unit is an :class:`Example`: a prompt (no loss) and a target (loss / score). Chat
models get their chat template; base models get ``Question: ...\\nAnswer:``.
"""
from __future__ import annotations

import hashlib

import random
from dataclasses import dataclass

import torch

from obliviate.data.records import QARecord, TextRecord

IGNORE = -100


@dataclass(frozen=True)
class Example:
    prompt: str
    target: str

    def sha256(self) -> str:
        """The row's identity: SHA-256 of prompt and target joined by a NUL byte (what the ledger records of a
        forget row, and how an ensemble finds the shard that trained on it)."""
        return hashlib.sha256(f"{self.prompt}\0{self.target}".encode("utf-8")).hexdigest()


def uses_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def format_prompt(tokenizer, question: str) -> str:
    if uses_chat_template(tokenizer):
        return tokenizer.apply_chat_template([{"role": "user", "content": question}],
                                             add_generation_prompt=True, tokenize=False)
    return f"Question: {question}\nAnswer:"


def qa_example(tokenizer, question: str, answer: str) -> Example:
    """The (prompt, target) pair a model is trained or scored on for one QA fact."""
    target = answer if uses_chat_template(tokenizer) else " " + answer
    return Example(format_prompt(tokenizer, question), target)


def retarget(tokenizer, ex: Example, answer: str) -> Example:
    """The same prompt with another answer (e.g. a refusal), formatted as :func:`qa_example` would."""
    return Example(ex.prompt, answer if uses_chat_template(tokenizer) else " " + answer)


def examples_from(tokenizer, qa: list[QARecord] = (), texts: list[TextRecord] = ()) -> list[Example]:
    return [qa_example(tokenizer, r.question, r.answer) for r in qa] + [Example("", t.text) for t in texts]


def encode(tokenizer, ex: Example, max_length: int = 512) -> dict[str, list[int]]:
    """Token ids and labels (prompt positions masked with -100); the target ends with EOS.

    Prompt and target are tokenised separately so that every metric sees the same target tokens,
    whatever prompt precedes them.
    """
    chat = uses_chat_template(tokenizer)
    if ex.prompt:
        prompt_ids = tokenizer(ex.prompt, add_special_tokens=not chat)["input_ids"]
    else:
        prompt_ids = tokenizer("", add_special_tokens=True)["input_ids"]
    target_ids = tokenizer(ex.target, add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        target_ids = target_ids + [tokenizer.eos_token_id]
    ids = (prompt_ids + target_ids)[:max_length]
    labels = ([IGNORE] * len(prompt_ids) + target_ids)[:max_length]
    return {"input_ids": ids, "labels": labels}


def pad_id(tokenizer) -> int:
    if tokenizer.pad_token_id is not None:
        return tokenizer.pad_token_id
    return tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0


def collate(items: list[dict[str, list[int]]], pad: int) -> dict[str, torch.Tensor]:
    """Right-pad a list of encoded examples into ``input_ids``, ``attention_mask``, ``labels`` (B, T)."""
    T = max(len(x["input_ids"]) for x in items)
    ids = torch.full((len(items), T), pad, dtype=torch.long)
    labels = torch.full((len(items), T), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(items), T), dtype=torch.long)
    for i, x in enumerate(items):
        n = len(x["input_ids"])
        ids[i, :n] = torch.tensor(x["input_ids"])
        labels[i, :n] = torch.tensor(x["labels"])
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def bucketed_batches(n: int, batch_size: int, lengths: list[int], rng: random.Random) -> list[list[int]]:
    """Shuffled batches of indices whose members have similar lengths (less padding, same epoch)."""
    idx = list(range(n))
    rng.shuffle(idx)
    chunk = batch_size * 16
    batches = []
    for s in range(0, n, chunk):
        part = sorted(idx[s:s + chunk], key=lambda i: lengths[i])
        batches += [part[j:j + batch_size] for j in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def encoded_batches(tokenizer, examples: list[Example], max_length: int, batch_size: int = 16):
    """The examples encoded and collated, ``batch_size`` at a time, in order (for forward passes that read
    activations or counts rather than train)."""
    pad = pad_id(tokenizer)
    enc = [encode(tokenizer, e, max_length) for e in examples]
    for s in range(0, len(enc), batch_size):
        yield collate(enc[s:s + batch_size], pad)
