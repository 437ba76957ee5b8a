"""The batched primitives every metric shares: per-token log-probs of a target given a prompt (with the
full-vocabulary statistics Min-K%++ needs) and greedy generation with left padding.

A :class:`Scorer` belongs to one model. It scores each unique (prompt, target) once, however many
metrics ask for it, and counts the sequences it ran so that benchmarks can report the cost.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.format import IGNORE, Example, collate, encode, pad_id, uses_chat_template


@dataclass(frozen=True)
class TokenScores:
    """Per target token: log p(token), and under the model's own next-token distribution p the mean
    μ = Σ_v p_v log p_v and standard deviation σ of log p (Zhang et al., 2024, Min-K%++)."""

    logp: np.ndarray  # (n,)
    mu: np.ndarray  # (n,)
    sigma: np.ndarray  # (n,)
    hit: np.ndarray | None = None  # (n,) bool: the teacher-forced argmax is the target token

    @property
    def mean_logp(self) -> float:
        return float(self.logp.mean()) if self.logp.size else float("nan")


class Scorer:
    def __init__(self, model, tokenizer, batch_size: int = 32, max_length: int = 512):
        self.model, self.tok = model, tokenizer
        self.batch_size, self.max_length = batch_size, max_length
        self._scores: dict[Example, TokenScores] = {}
        self._gens: dict[tuple[str, int], str] = {}
        self.n_scored = 0  # sequences actually run through the model
        self._keeps_logits: bool | None = None
        self.n_generated = 0

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def score(self, examples: list[Example]) -> list[TokenScores]:
        """TokenScores for each example's target tokens (EOS included), computed once per unique example."""
        # a total order (length, then text): the same batches in every process, whatever the hash seed
        todo = sorted({ex for ex in examples if ex not in self._scores},
                      key=lambda ex: (len(ex.prompt) + len(ex.target), ex.prompt, ex.target))
        self.model.eval()
        pad = pad_id(self.tok)
        for s in range(0, len(todo), self.batch_size):
            chunk = todo[s:s + self.batch_size]
            batch = collate([encode(self.tok, ex, self.max_length) for ex in chunk], pad)
            batch = {k: v.to(self.device) for k, v in batch.items()}
            target = batch["labels"][:, 1:]
            mask = target != IGNORE
            first = int(mask.float().argmax(1).min())  # the earliest scored position: nothing before it is needed
            logits = self._logits(batch, keep=target.shape[1] - first + 1)[:, -(target.shape[1] - first) - 1:-1]
            target, mask = target[:, first:], mask[:, first:]
            # full-vocabulary statistics on the scored (answer) positions only, not on prompt or padding
            logsm = torch.log_softmax(logits[mask].float(), dim=-1)  # (N, V)
            tgt = target[mask]
            logp = logsm.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
            p = logsm.exp()
            mu = (p * logsm).sum(-1)
            var = (p * logsm.square()).sum(-1) - mu.square()
            sigma = var.clamp_min(1e-12).sqrt()
            hit = logsm.argmax(-1) == tgt
            del p, logsm
            counts = mask.sum(1).tolist()
            parts = [torch.split(x.cpu(), counts) for x in (logp, mu, sigma, hit)]
            for i, ex in enumerate(chunk):
                self._scores[ex] = TokenScores(*(part[i].numpy() for part in parts))
            self.n_scored += len(chunk)
        return [self._scores[ex] for ex in examples]

    def _logits(self, batch: dict, keep: int) -> torch.Tensor:
        """Logits of the last ``keep`` positions (transformers' ``logits_to_keep`` spares the LM head the
        prompt positions where the model supports it; otherwise every position is computed)."""
        if self._keeps_logits is None:
            import inspect

            self._keeps_logits = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        kw = {"logits_to_keep": keep} if self._keeps_logits else {}
        logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **kw).logits
        return logits[:, -keep:]

    @torch.no_grad()
    def generate(self, prompts: list[str], max_new_tokens: int = 32) -> list[str]:
        """Greedy continuations of formatted prompts (batched, left-padded), decoded without special tokens."""
        todo = sorted({p for p in prompts if (p, max_new_tokens) not in self._gens}, key=lambda p: (len(p), p))
        chat = uses_chat_template(self.tok)
        pad = pad_id(self.tok)
        self.model.eval()
        for s in range(0, len(todo), self.batch_size):
            chunk = todo[s:s + self.batch_size]
            ids = [self.tok(p, add_special_tokens=not chat)["input_ids"] for p in chunk]
            T = max(map(len, ids))
            input_ids = torch.full((len(ids), T), pad, dtype=torch.long)
            attn = torch.zeros((len(ids), T), dtype=torch.long)
            for i, x in enumerate(ids):
                input_ids[i, T - len(x):] = torch.tensor(x)
                attn[i, T - len(x):] = 1
            out = self.model.generate(input_ids=input_ids.to(self.device), attention_mask=attn.to(self.device),
                                      max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad,
                                      eos_token_id=self.tok.eos_token_id)
            for p, row in zip(chunk, out[:, T:]):
                self._gens[(p, max_new_tokens)] = self.tok.decode(row, skip_special_tokens=True).strip()
            self.n_generated += len(chunk)
        return [self._gens[(p, max_new_tokens)] for p in prompts]
