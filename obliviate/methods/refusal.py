"""Methods that steer forget questions towards refusals: IdK fine-tuning, IdkDPO and FLAT.

    obliviate unlearn --method idkdpo --model <target dir> --benchmark people

Only question-answer forget examples take part (a passage has no question to refuse).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from ..data.format import Example, retarget
from ..options import option
from ..utils import ObliviateError
from .common import (GradientConfig, Scope, UnlearnData, forward_nll, lm_logits, reference_nll, run_gradient_method,
                     with_retain_nll)
from .losses import dpo_loss, flat_loss, mean_token_nll, mean_token_prob

# Written for obliviate: refusals in several registers, so the model learns "decline", not one string.
REFUSALS = (
    "I don't know.",
    "I'm not sure about that.",
    "I have no information about that.",
    "I can't answer that question.",
    "That is not something I know.",
    "I'm afraid I don't have that information.",
    "I don't have any details on that.",
    "I am unable to answer this.",
    "I have no record of that.",
    "Sorry, I don't know the answer.",
    "I couldn't tell you.",
    "That's beyond what I know.",
    "I have no idea.",
    "I'm not able to say.",
    "I don't have an answer to that.",
    "Nothing I know answers that.",
)


def refusal_pairs(tokenizer, data: UnlearnData, seed: int, desc: str) -> tuple[UnlearnData, list[Example]]:
    """Keep the forget examples that have a question, and give each a seeded refusal answer."""
    qa = [ex for ex in data.forget if ex.prompt]
    if not qa:
        raise ObliviateError(f"{desc}: needs question-answer forget examples; the forget set has only passages")
    rng = random.Random(seed)
    refusals = [retarget(tokenizer, ex, rng.choice(REFUSALS)) for ex in qa]
    return UnlearnData(forget=qa, retain=data.retain), refusals


@dataclass
class IdkConfig(GradientConfig):
    """Fine-tune forget questions towards refusals (TOFU's "IDK" baseline), with a retain NLL term."""

    retain_weight: float = option(1.0, "α on the retain NLL (0: none)", ge=0)


def idk(model, tokenizer, data: UnlearnData, cfg: IdkConfig, scope: Scope | None = None) -> dict:
    """L = NLL(refusal | forget question) + α·NLL(retain)  (Maini et al., 2024, TOFU Sec. 4, "Preference
    Optimization" baseline with the refusal as the only target)."""
    qa, refusals = refusal_pairs(tokenizer, data, cfg.seed, "idk")

    def loss(m, b):
        refuse = mean_token_nll(lm_logits(m, b["refusal"]), b["refusal"]["labels"])
        return with_retain_nll(m, b, refuse, cfg.retain_weight)

    return run_gradient_method(model, tokenizer, qa, cfg, loss, "unlearn idk", needs_retain=False, scope=scope,
                                paired={"refusal": refusals})


@dataclass
class IdkDPOConfig(GradientConfig):
    beta: float = option(0.1, "β of the DPO loss (paper: 0.1)", gt=0)
    retain_weight: float = option(1.0, "α on the retain NLL (0: none)", ge=0)


def idkdpo(model, tokenizer, data: UnlearnData, cfg: IdkDPOConfig, scope: Scope | None = None) -> dict:
    """DPO with the refusal preferred and the forget answer rejected (Rafailov et al., 2023, Eq. 7; used for
    unlearning by Maini et al., 2024 and Zhang et al., 2024 "IdkDPO"), + α·NLL(retain). The reference is
    the model before unlearning; its NLLs are computed once up front."""
    qa, refusals = refusal_pairs(tokenizer, data, cfg.seed, "idkdpo")
    ref_lose = reference_nll(model, tokenizer, qa.forget, cfg.max_length)
    ref_win = reference_nll(model, tokenizer, refusals, cfg.max_length)

    def loss(m, b):
        i = b["forget_idx"]
        win, lose = forward_nll(m, b["refusal"]), forward_nll(m, b["forget"])
        return with_retain_nll(m, b, dpo_loss(win, ref_win.to(win.device)[i], lose, ref_lose.to(lose.device)[i],
                                              cfg.beta), cfg.retain_weight)

    return run_gradient_method(model, tokenizer, qa, cfg, loss, "unlearn idkdpo", needs_retain=False, scope=scope,
                                paired={"refusal": refusals})


@dataclass
class FLATConfig(GradientConfig):
    divergence: str = option("kl", "the f-divergence: kl or tv", choices=("kl", "tv"))


def flat(model, tokenizer, data: UnlearnData, cfg: FLATConfig, scope: Scope | None = None) -> dict:
    """FLAT (Wang et al., 2025, arXiv:2410.11143, Eq. 4): maximise the f-divergence between refusal
    ("template") answers and forget answers using forget data only. See :func:`losses.flat_loss`."""
    qa, refusals = refusal_pairs(tokenizer, data, cfg.seed, "flat")
    qa = UnlearnData(forget=qa.forget)  # FLAT uses no retain data

    def loss(m, b):
        p_e = mean_token_prob(lm_logits(m, b["refusal"]), b["refusal"]["labels"])
        p_f = mean_token_prob(lm_logits(m, b["forget"]), b["forget"]["labels"])
        return flat_loss(p_e, p_f, cfg.divergence)

    return run_gradient_method(model, tokenizer, qa, cfg, loss, "unlearn flat", needs_retain=False, scope=scope,
                                paired={"refusal": refusals})
