"""The batched primitives every metric shares: per-token log-probs of a target given a prompt (with the
full-vocabulary statistics Min-K%++ needs) and greedy generation with left padding.

A :class:`Scorer` belongs to one model. It scores each unique (prompt, target) once, however many
metrics ask for it, and counts the sequences it ran so that benchmarks can report the cost. Memory is
bounded whatever the text length: batches are cut so that their logits fit ``logits_bytes``, and the
full-vocabulary statistics are computed a slice of positions at a time (MUSE's 2,048-token texts on a
49k-token vocabulary would otherwise need gigabytes per batch).

Under several processes (``torchrun`` / ``accelerate launch``), each process runs every ``world``-th batch of the
one-process batching and the rows are gathered to every process: the numbers equal the one-process run's exactly
(the same batches, so the same padding and arithmetic; ``tests/test_distributed.py``), each process doing 1/world
of the forward passes.

Which tokens a metric reads is the metric's business (see :meth:`TokenScores.answer`): the scorer keeps every
target token, the final EOS included.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from obliviate.data.format import IGNORE, Example, collate, encode, pad_id, uses_chat_template

MIN_VARIANCE = 1e-6  # the floor on Var[log p] in Min-K%++ (OpenUnlearning's clamp; the paper gives none)
STAT_CHUNK_BYTES = 64 * 2**20  # full-vocabulary statistics are computed this many bytes of log-probs at a time


@dataclass(frozen=True)
class TokenScores:
    """Per target token: log p(token), and under the model's own next-token distribution p the mean
    μ = Σ_v p_v log p_v and standard deviation σ of log p (Zhang et al., 2024, Min-K%++); ``hit``: the
    teacher-forced argmax is the target token. Every target token is kept, the final one (EOS) included."""

    logp: np.ndarray  # (n,)
    mu: np.ndarray  # (n,)
    sigma: np.ndarray  # (n,)
    hit: np.ndarray | None = None  # (n,) bool

    @property
    def mean_logp(self) -> float:
        """Mean log-prob over every target token, EOS included (OpenUnlearning's ``evaluate_probability``)."""
        return float(self.logp.mean()) if self.logp.size else float("nan")

    def answer(self) -> "TokenScores":
        """The tokens the token-wise metrics read (Min-K%, Min-K%++, exact memorisation, extraction strength):
        every target token but the final one, the EOS, as OpenUnlearning's ``tokenwise_logprobs`` drops the
        final label position and MUSE scores a text without one."""
        return TokenScores(self.logp[:-1], self.mu[:-1], self.sigma[:-1],
                           None if self.hit is None else self.hit[:-1])


def token_statistics(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(logp, μ, σ, hit) for ``targets`` (N,) under ``logits`` (N, V) of the positions that predict them,
    a slice of rows at a time so that memory stays at ``STAT_CHUNK_BYTES`` beyond the logits. σ is the square
    root of max(Var[log p], ``MIN_VARIANCE``)."""
    n, v = logits.shape
    step = max(1, STAT_CHUNK_BYTES // (4 * max(1, v)))
    parts = []
    for s in range(0, n, step):
        logsm = torch.log_softmax(logits[s:s + step].float(), dim=-1)  # (n', V)
        tgt = targets[s:s + step]
        logp = logsm.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
        p = logsm.exp()
        mu = (p * logsm).sum(-1)
        var = (p * logsm.square()).sum(-1) - mu.square()
        parts.append((logp, mu, var.clamp_min(MIN_VARIANCE).sqrt(), logsm.argmax(-1) == tgt))
        del logsm, p
    if not parts:
        empty = torch.zeros(0)
        return empty, empty, empty, torch.zeros(0, dtype=torch.bool)
    return tuple(torch.cat(x) for x in zip(*parts))


def scores_from_logits(logits: torch.Tensor, labels: torch.Tensor) -> list[TokenScores]:
    """:class:`TokenScores` of each row of a batch: ``logits`` (B, T, V) for input positions, ``labels`` (B, T)
    with ``IGNORE`` on prompt and padding positions (the logits at position t predict the label at t + 1)."""
    target = labels[:, 1:]
    mask = target != IGNORE
    stats = token_statistics(logits[:, :-1][mask], target[mask])
    counts = mask.sum(1).tolist()
    parts = [torch.split(x.cpu(), counts) for x in stats]
    return [TokenScores(*(part[i].numpy() for part in parts)) for i in range(len(counts))]


def process_share() -> tuple[int, int]:
    """(rank, world) of an initialised process group, else (0, 1)."""
    import torch.distributed as dist

    from obliviate.engine.distributed import group_initialized

    if group_initialized() and dist.get_world_size() > 1:
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _gather(local: dict, world: int) -> dict:
    """Every process's ``{index: value}`` merged, on every process."""
    import torch.distributed as dist

    if world == 1:
        return local
    parts: list = [None] * world
    dist.all_gather_object(parts, local)
    return {k: v for p in parts for k, v in p.items()}


def _prompt_length(e: dict) -> int:
    """How many leading positions of an encoded example are prompt (labelled ``IGNORE``)."""
    n = 0
    for label in e["labels"]:
        if label != IGNORE:
            break
        n += 1
    return n


def _select(cache, rows: torch.Tensor):
    """A model's keys and values for ``rows`` of its batch (a transformers ``Cache`` or the legacy tuples)."""
    if hasattr(cache, "reorder_cache"):
        cache.reorder_cache(rows)
        return cache
    return tuple(tuple(t.index_select(0, rows) for t in layer) for layer in cache)


class Scorer:
    """Scores and generations of one model, each computed once.

    ``batch_size`` caps sequences per forward pass; ``logits_bytes`` caps the logits a pass may hold (long texts
    get smaller batches); ``max_length`` cuts longer sequences (and never exceeds the model's own context);
    ``share_prompts``: sequences with the same prompt share one pass over it where the model allows (see
    :meth:`_score_shared`)."""

    def __init__(self, model, tokenizer, batch_size: int = 32, max_length: int = 2048, logits_bytes: int = 256 * 2**20,
                 share_prompts: bool = True):
        self.model, self.tok = model, tokenizer
        self.batch_size, self.logits_bytes = batch_size, logits_bytes
        limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
        self.max_length = min(max_length, limit) if isinstance(limit, int) and limit > 0 else max_length
        self._scores: dict[Example, TokenScores] = {}
        self._gens: dict[tuple, str] = {}
        self.n_scored = 0  # sequences actually run through the model
        self.n_generated = 0
        self._keeps_logits: bool | None = None
        self._shares: bool | None = None if share_prompts else False
        self._cache_kw = "past_key_values"

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _vocab(self) -> int:
        head = self.model.get_output_embeddings() if hasattr(self.model, "get_output_embeddings") else None
        return int(head.weight.shape[0]) if head is not None else len(self.tok)

    def _batches(self, encoded: list[dict]) -> list[list[int]]:
        """Consecutive groups (the input is sorted by length) within ``batch_size`` and ``logits_bytes``."""
        per_token = 4 * self._vocab()
        out, cur, longest = [], [], 0
        for i, e in enumerate(encoded):
            n = len(e["input_ids"])
            if cur and (len(cur) == self.batch_size or (len(cur) + 1) * max(longest, n) * per_token > self.logits_bytes):
                out.append(cur)
                cur, longest = [], 0
            cur.append(i)
            longest = max(longest, n)
        return out + ([cur] if cur else [])

    @torch.no_grad()
    def score(self, examples: list[Example]) -> list[TokenScores]:
        """TokenScores for each example's target tokens (EOS included), computed once per unique example."""
        # a total order (length, then text): the same batches in every process, whatever the hash seed
        todo = sorted({ex for ex in examples if ex not in self._scores},
                      key=lambda ex: (len(ex.prompt) + len(ex.target), ex.prompt, ex.target))
        self.model.eval()
        encoded = [encode(self.tok, ex, self.max_length) for ex in todo]
        shared = [i for i, e in enumerate(encoded)
                  if 0 < _prompt_length(e) < len(e["input_ids"])] if self._shares_prompts() else []
        plain = sorted(set(range(len(todo))) - set(shared))
        mine = self._score_plain(encoded, plain) | self._score_shared(encoded, shared)
        for i, t in _gather(mine, process_share()[1]).items():
            self._scores[todo[i]] = t
        return [self._scores[ex] for ex in examples]

    def _shares_prompts(self) -> bool:
        """Whether a prompt runs once for all its targets (its keys and values reused): for a transformers model,
        or a PEFT model of one, whose prompt the scorer does not pass separately. Other wrappers (an ensemble,
        a bottleneck, a guard that reads the prompt) see each whole sequence."""
        if self._shares is None:
            from transformers import PreTrainedModel

            kinds: tuple = (PreTrainedModel,)
            try:
                from peft import PeftModel

                kinds += (PeftModel,)
            except ImportError:  # peft is a dependency; a trimmed environment still scores
                pass
            self._shares = isinstance(self.model, kinds) and not getattr(self.model, "takes_prompt_mask", False)
            if self._shares:  # transformers 5 renamed ``past_key_values`` to ``cache``
                import inspect

                base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
                self._cache_kw = "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"
        return self._shares

    def _score_plain(self, encoded: list[dict], idx: list[int]) -> dict[int, TokenScores]:
        """Each sequence run whole, right-padded, in batches of similar length."""
        pad = pad_id(self.tok)
        order = sorted(idx, key=lambda i: (len(encoded[i]["input_ids"]), i))
        rank, world = process_share()
        mine: dict[int, TokenScores] = {}
        for b, group in enumerate(self._batches([encoded[i] for i in order])):
            if b % world != rank:  # another process runs this batch
                continue
            rows = [order[g] for g in group]
            batch = {k: v.to(self.device) for k, v in collate([encoded[i] for i in rows], pad).items()}
            labels = batch["labels"]
            mask = labels[:, 1:] != IGNORE
            first = int(mask.float().argmax(1).min()) if mask.any() else labels.shape[1] - 1
            keep = labels.shape[1] - first  # positions first .. T-1: every scored position and the last
            logits = self._logits(batch, keep)  # (B, keep, V)
            mine.update(zip(rows, scores_from_logits(logits, labels[:, -keep:])))
            self.n_scored += len(rows)
            del logits
        return mine

    def _score_shared(self, encoded: list[dict], idx: list[int]) -> dict[int, TokenScores]:
        """Sequences that share their prompt's tokens (a question's answer, paraphrase and perturbed answers): each
        batch runs prompts of one length once, then every target from its prompt's keys and values. The same
        positions and attention as a whole-sequence pass, at the cost of the targets alone (under a chat template,
        with its system prompt, the prompts are most of the tokens)."""
        pad = pad_id(self.tok)
        rank, world = process_share()
        mine: dict[int, TokenScores] = {}
        for b, units in enumerate(self._prompt_batches(encoded, idx)):
            if b % world != rank:
                continue
            n_prompt = len(units[0][0])
            prompts = torch.tensor([u[0] for u in units], device=self.device)
            kw = {"logits_to_keep": 1} if self._takes_logits_to_keep() else {}
            out = self.model(input_ids=prompts, attention_mask=torch.ones_like(prompts), use_cache=True, **kw)
            owner = torch.tensor([k for k, u in enumerate(units) for _ in u[1]], device=self.device)
            rows = [i for u in units for i in u[1]]
            targets = [encoded[i]["input_ids"][n_prompt:] for i in rows]
            width = max(map(len, targets))
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), n_prompt + width), dtype=torch.long)
            labels = torch.full((len(rows), 1 + width), IGNORE, dtype=torch.long)
            mask[:, :n_prompt] = 1
            for r, t in enumerate(targets):
                ids[r, :len(t)] = torch.tensor(t)
                mask[r, n_prompt:n_prompt + len(t)] = 1
                labels[r, 1:1 + len(t)] = torch.tensor(t)
            cache = _select(getattr(out, self._cache_kw), owner)
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                use_cache=True, **{self._cache_kw: cache}).logits
            # the prompt's last position predicts the first target token
            logits = torch.cat([out.logits[:, -1:].index_select(0, owner), logits], dim=1)
            mine.update(zip(rows, scores_from_logits(logits, labels.to(self.device))))
            self.n_scored += len(rows)
            del logits, cache, out
        return mine

    def _prompt_batches(self, encoded: list[dict], idx: list[int]) -> list[list[tuple[list[int], list[int]]]]:
        """Batches of (prompt ids, the examples that share them), one prompt length per batch, within
        ``batch_size`` targets and ``logits_bytes``; a prompt with more targets than a batch holds is split."""
        groups: dict[tuple, list[int]] = {}
        for i in idx:
            groups.setdefault(tuple(encoded[i]["input_ids"][:_prompt_length(encoded[i])]), []).append(i)
        units = []
        for prompt, members in groups.items():
            members.sort(key=lambda i: (len(encoded[i]["input_ids"]), i))
            units += [(list(prompt), members[s:s + self.batch_size]) for s in range(0, len(members), self.batch_size)]
        # a total order: the same batches in every process
        units.sort(key=lambda u: (len(u[0]), len(encoded[u[1][-1]]["input_ids"]), u[0], u[1]))
        per_token = 4 * self._vocab()
        out, cur, rows, longest = [], [], 0, 0
        for u in units:
            n = len(encoded[u[1][-1]]["input_ids"]) - len(u[0]) + 1
            wide = max(longest, n)
            if cur and (len(cur[0][0]) != len(u[0]) or rows + len(u[1]) > self.batch_size
                        or (rows + len(u[1])) * wide * per_token > self.logits_bytes):
                out.append(cur)
                cur, rows, wide = [], 0, n
            cur.append(u)
            rows, longest = rows + len(u[1]), wide
        return out + ([cur] if cur else [])

    def _takes_logits_to_keep(self) -> bool:
        if self._keeps_logits is None:
            import inspect

            self._keeps_logits = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        return self._keeps_logits

    def _logits(self, batch: dict, keep: int) -> torch.Tensor:
        """Logits of the last ``keep`` positions (transformers' ``logits_to_keep`` spares the LM head the
        prompt positions where the model supports it; otherwise every position is computed)."""
        kw = {"logits_to_keep": keep} if self._takes_logits_to_keep() else {}
        if getattr(self.model, "takes_prompt_mask", False):  # a guard that acts on the prompt only
            kw["prompt_mask"] = (batch["labels"] == IGNORE) & batch["attention_mask"].bool()
        from obliviate.models.anatomy import no_cache

        kw.update(no_cache(self.model))
        logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **kw).logits
        return logits[:, -keep:]

    @torch.no_grad()
    def generate(self, prompts: list[str], max_new_tokens: int = 200, raw: bool = False,
                 stop: tuple[str, ...] = ()) -> list[str]:
        """Greedy continuations of prompts (batched, left-padded), decoded without special tokens, stopping at
        EOS or after ``max_new_tokens``. Prompts are already formatted; ``raw`` tokenises them with the
        tokenizer's special tokens even for chat models (MUSE's plain-text prompts). A continuation is cut
        before the first of the ``stop`` strings."""
        key = (max_new_tokens, raw, tuple(stop))
        todo = sorted({p for p in prompts if (p, *key) not in self._gens}, key=lambda p: (len(p), p))
        special = raw or not uses_chat_template(self.tok)
        pad = pad_id(self.tok)
        self.model.eval()
        rank, world = process_share()
        mine: dict[str, str] = {}
        for b, s in enumerate(range(0, len(todo), self.batch_size)):
            if b % world != rank:
                continue
            chunk = todo[s:s + self.batch_size]
            ids = [self.tok(p, add_special_tokens=special)["input_ids"][-self.max_length:] for p in chunk]
            T = max(map(len, ids))
            input_ids = torch.full((len(ids), T), pad, dtype=torch.long)
            attn = torch.zeros((len(ids), T), dtype=torch.long)
            for i, x in enumerate(ids):
                input_ids[i, T - len(x):] = torch.tensor(x)
                attn[i, T - len(x):] = 1
            room = max(1, min(max_new_tokens, self.max_length - T))  # never past the model's context
            out = self.model.generate(input_ids=input_ids.to(self.device), attention_mask=attn.to(self.device),
                                      max_new_tokens=room, do_sample=False, pad_token_id=pad,
                                      eos_token_id=self.tok.eos_token_id)
            for p, row in zip(chunk, out[:, T:]):
                text = self.tok.decode(row, skip_special_tokens=True)
                for word in stop:
                    text = text.split(word)[0]
                mine[p] = text.strip()
            self.n_generated += len(chunk)
        for p, text in _gather(mine, world).items():
            self._gens[(p, *key)] = text
        return [self._gens[(p, *key)] for p in prompts]
