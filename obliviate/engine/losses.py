"""The language-model loss primitives everything above shares (training, the methods' losses, evaluation):
per-token log-probabilities of the answer tokens, and the NLL built from them. Shapes: B batch, T tokens, V
vocabulary; labels hold -100 (``IGNORE``) where a position is not scored (the prompt, padding)."""
from __future__ import annotations

import torch

from obliviate.data.format import IGNORE


def token_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each next label token and the mask of scored positions.

    logits (B, T, V), labels (B, T) with -100 on unscored positions -> logp (B, T-1), mask (B, T-1).
    """
    logits = logits[:, :-1].float()  # position t predicts token t+1
    target = labels[:, 1:]
    mask = target != IGNORE
    logp = torch.log_softmax(logits, dim=-1).gather(-1, target.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    return logp * mask, mask


def sequence_nll(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """Negative log-likelihood of each sequence's target tokens, (B,): their sum, or their mean (``"mean"``)."""
    logp, mask = token_logprobs(logits, labels)
    nll = -logp.sum(-1)
    if reduction == "sum":
        return nll
    if reduction == "mean":
        return nll / mask.sum(-1).clamp_min(1)
    raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")


def mean_token_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The standard LM loss: NLL averaged over every scored token of the batch (a scalar)."""
    logp, mask = token_logprobs(logits, labels)
    return -logp.sum() / mask.sum().clamp_min(1)
