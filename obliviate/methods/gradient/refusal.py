"""Methods that steer forget questions towards refusals: IdK fine-tuning, IdkDPO and FLAT.

    obliviate unlearn --method idkdpo --model <target dir> --benchmark people

The refusal losses need a question to refuse, so they run on the question-answer part of the forget request.
A forget passage (a biography, a book excerpt) has no question: so that these methods honour the same request
as every other method, passages get an NPO term (Zhang et al., 2024, Eq. 3; β = ``passage_beta``, weight
``passage_weight``, reference NLLs taken before unlearning). NPO is used rather than gradient ascent because it is
bounded; ``passage_weight=0`` gives the papers' methods on QA alone.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from obliviate.data.format import retarget
from obliviate.core.options import option
from obliviate.core.utils import ObliviateError
from obliviate.methods.common import (GradientConfig, Scope, UnlearnData, forward_nll, lm_logits, reference_nll,
                                      run_gradient_method, with_retain_nll)
from obliviate.methods.losses import dpo_loss, flat_loss, mean_token_nll, mean_token_prob, npo_loss
from obliviate.methods.gradient import FAMILY
from obliviate.methods.registry import Method, register
from obliviate.engine.plan import MemoryTerms

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


@dataclass
class RefusalConfig(GradientConfig):
    """Fields the refusal methods share: the NPO term on forget passages."""

    passage_weight: float = option(1.0, "weight of the NPO term on forget passages, which have no question to refuse "
                                        "(0: QA only, as in the papers)", ge=0)
    passage_beta: float = option(0.1, "β of that NPO term (NPO's default)", gt=0)


class RefusalRequest:
    """A forget request as the refusal methods see it: QA examples with a seeded refusal each, and passages with
    the NPO term that unlearns them."""

    def __init__(self, model, tokenizer, data: UnlearnData, cfg: RefusalConfig, desc: str, keep_retain: bool = True):
        qa = [ex for ex in data.forget if ex.prompt]
        self.passages = [ex for ex in data.forget if not ex.prompt] if cfg.passage_weight > 0 else []
        if not qa:
            raise ObliviateError(f"{desc}: needs question-answer forget examples; the forget set has only passages")
        rng = random.Random(cfg.seed)
        self.refusals = [retarget(tokenizer, ex, rng.choice(REFUSALS)) for ex in qa]
        self.qa = data.qa_part(keep_retain)
        self.cfg = cfg
        self.ref = reference_nll(model, tokenizer, self.passages, cfg.max_length) if self.passages else None

    def passage_term(self, m, b):
        """``passage_weight`` · NPO loss on this step's passages (0 without passages)."""
        if self.ref is None or "passages" not in b:
            return 0.0
        nll = forward_nll(m, b["passages"])
        return self.cfg.passage_weight * npo_loss(nll, self.ref.to(nll.device)[b["passages_idx"]], self.cfg.passage_beta)

    def run(self, model, tokenizer, loss, desc: str, scope: Scope | None, paired: dict | None = None) -> dict:
        out = run_gradient_method(model, tokenizer, self.qa, self.cfg, lambda m, b: loss(m, b) + self.passage_term(m, b),
                                  desc, needs_retain=False, scope=scope, paired=paired or {"refusal": self.refusals},
                                  side={"passages": self.passages})
        return {**out, "forget_qa": len(self.qa.forget), "forget_passages": len(self.passages)}


@dataclass
class IdkConfig(RefusalConfig):
    """Fine-tune forget questions towards refusals (TOFU's "IDK" baseline), with a retain NLL term."""
    SEARCH = {**GradientConfig.SEARCH, "retain_weight": ("log", 0.5, 10.0)}

    retain_weight: float = option(1.0, "α on the retain NLL (0: none)", ge=0)


def idk(model, tokenizer, data: UnlearnData, cfg: IdkConfig, scope: Scope | None = None) -> dict:
    """L = NLL(refusal | forget question) + α·NLL(retain) (+ the passage term)  (Maini et al., 2024, TOFU Sec. 4,
    "Preference Optimization" baseline with the refusal as the only target)."""
    req = RefusalRequest(model, tokenizer, data, cfg, "idk")

    def loss(m, b):
        refuse = mean_token_nll(lm_logits(m, b["refusal"]), b["refusal"]["labels"])
        return with_retain_nll(m, b, refuse, cfg.retain_weight)

    return req.run(model, tokenizer, loss, "unlearn idk", scope)


@dataclass
class IdkDPOConfig(RefusalConfig):
    SEARCH = {**GradientConfig.SEARCH, "beta": ("log", 0.05, 1.0), "retain_weight": ("log", 0.5, 10.0)}
    beta: float = option(0.1, "β of the DPO loss (paper: 0.1)", gt=0)
    retain_weight: float = option(1.0, "α on the retain NLL (0: none)", ge=0)


def idkdpo(model, tokenizer, data: UnlearnData, cfg: IdkDPOConfig, scope: Scope | None = None) -> dict:
    """DPO with the refusal preferred and the forget answer rejected (Rafailov et al., 2023, Eq. 7; used for
    unlearning by Maini et al., 2024 and Zhang et al., 2024 "IdkDPO"), + α·NLL(retain) (+ the passage term). The
    reference is the model before unlearning; its NLLs are computed once up front."""
    req = RefusalRequest(model, tokenizer, data, cfg, "idkdpo")
    ref_lose = reference_nll(model, tokenizer, req.qa.forget, cfg.max_length)
    ref_win = reference_nll(model, tokenizer, req.refusals, cfg.max_length)

    def loss(m, b):
        i = b["forget_idx"]
        win, lose = forward_nll(m, b["refusal"]), forward_nll(m, b["forget"])
        return with_retain_nll(m, b, dpo_loss(win, ref_win.to(win.device)[i], lose, ref_lose.to(lose.device)[i],
                                              cfg.beta), cfg.retain_weight)

    return req.run(model, tokenizer, loss, "unlearn idkdpo", scope)


@dataclass
class FLATConfig(RefusalConfig):
    SEARCH = {**GradientConfig.SEARCH, "divergence": ("cat", ("kl", "tv"))}
    divergence: str = option("kl", "the f-divergence: kl or tv", choices=("kl", "tv"))


def flat(model, tokenizer, data: UnlearnData, cfg: FLATConfig, scope: Scope | None = None) -> dict:
    """FLAT (Wang et al., 2025, arXiv:2410.11143, Eq. 4): maximise the f-divergence between refusal
    ("template") answers and forget answers using forget data only (+ the passage term, also forget data only).
    See :func:`losses.flat_loss`."""
    req = RefusalRequest(model, tokenizer, data, cfg, "flat", keep_retain=False)  # FLAT uses no retain data

    def loss(m, b):
        p_e = mean_token_prob(lm_logits(m, b["refusal"]), b["refusal"]["labels"])
        p_f = mean_token_prob(lm_logits(m, b["forget"]), b["forget"]["labels"])
        return flat_loss(p_e, p_f, cfg.divergence)

    return req.run(model, tokenizer, loss, "unlearn flat", scope)


@dataclass
class AltPOConfig(RefusalConfig):
    """AltPO with OpenUnlearning's TOFU recipe (DPO's β = 0.1, retain α = 1, 5 alternates per fact)."""
    SEARCH = {**GradientConfig.SEARCH, "beta": ("log", 0.05, 0.5), "retain_weight": ("log", 1.0, 5.0)}  # paper's grid

    beta: float = option(0.1, "β of the preference loss (OpenUnlearning's grid: 0.05, 0.1, 0.5)", gt=0)
    retain_weight: float = option(1.0, "α on the retain NLL (grid: 1, 2, 5)", ge=0)
    n_alternates: int = option(5, "alternate answers per forget fact (the paper's generated set: 5)", ge=1)
    alternates: str = option("auto", "where alternates come from: swap (the answer with another retain fact's value "
                                     "of the same attribute; needs records with value and attribute, as the built-in "
                                     "benchmarks have), sample (answers sampled from the model, the paper's recipe), "
                                     "auto (swap where possible, else sample)", choices=("auto", "swap", "sample"))
    temperature: float = option(1.0, "sampling temperature for alternates=sample", gt=0)


def altpo(model, tokenizer, data: UnlearnData, cfg: AltPOConfig, scope: Scope | None = None) -> dict:
    """Alternate Preference Optimization (Mekala et al., COLING 2025, arXiv:2409.13474, Eq. 4): DPO's loss with a
    plausible *alternate* answer a preferred over the forget answer y, averaged over the alternates of each fact,
    + α·NLL(retain) (+ the passage term):

        L = -(2/β)·E_x (1/|A|) Σ_a log σ(β·[(log π_θ - log π_ref)(a|x) - (log π_θ - log π_ref)(y|x)]) + α·NLL(retain).

    The paper samples alternates from the model being unlearned (``alternates=sample``). A model that memorised
    its forget set (the from-scratch ``tiny``) only repeats the answer, so on the built-in benchmarks alternates are
    the answer with its value swapped for another *retain* person's value (``swap``): values the model has seen,
    and never the benchmark's false answers, which the truth ratio scores (training on those would leak evaluation
    text into unlearning). OpenUnlearning's TOFU runs use generated alternates too."""
    req = RefusalRequest(model, tokenizer, data, cfg, "altpo")
    alts, source = _alternates(model, tokenizer, req.qa, cfg)
    paired = {f"alt{j}": [a[j % len(a)] for a in alts] for j in range(cfg.n_alternates)}
    ref_lose = reference_nll(model, tokenizer, req.qa.forget, cfg.max_length)
    ref_win = {k: reference_nll(model, tokenizer, v, cfg.max_length) for k, v in paired.items()}

    def loss(m, b):
        i = b["forget_idx"]
        lose = forward_nll(m, b["forget"])
        terms = []
        for k, ref in ref_win.items():
            win = forward_nll(m, b[k])
            terms.append(dpo_loss(win, ref.to(win.device)[i], lose, ref_lose.to(lose.device)[i], cfg.beta))
        return with_retain_nll(m, b, torch.stack(terms).mean(), cfg.retain_weight)

    out = req.run(model, tokenizer, loss, "unlearn altpo", scope, paired=paired)
    return {**out, "alternates_from": source, "alternate_examples": [a[0].target for a in alts[:3]]}


@torch.no_grad()
def _alternates(model, tokenizer, qa: UnlearnData, cfg: AltPOConfig) -> tuple[list[list], dict]:
    """``n_alternates`` alternate examples per forget QA fact, and how many facts got them by swap and by sample."""
    from obliviate.data.format import encode, retarget

    have = qa.alternates if qa.alternates else [[] for _ in qa.forget]
    out, counts = [], {"swap": 0, "sample": 0}
    gen = torch.Generator().manual_seed(cfg.seed)
    for ex, swapped in zip(qa.forget, have):
        if swapped and cfg.alternates in ("auto", "swap"):
            out.append(list(swapped[:cfg.n_alternates]))
            counts["swap"] += 1
            continue
        if cfg.alternates == "swap":
            raise ObliviateError("altpo: alternates=swap needs forget records with a value and an attribute (as the "
                                 "built-in benchmarks have); use alternates=sample for this data")
        ids = torch.tensor([encode(tokenizer, ex, cfg.max_length)["input_ids"][:-len(
            tokenizer(ex.target, add_special_tokens=False)["input_ids"]) - 1]])
        dev = next(model.parameters()).device
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        seqs = model.generate(input_ids=ids.to(dev), attention_mask=torch.ones_like(ids).to(dev), do_sample=True,
                              temperature=cfg.temperature, max_new_tokens=64, num_return_sequences=2 * cfg.n_alternates,
                              pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
        texts = {tokenizer.decode(s[ids.shape[1]:], skip_special_tokens=True).strip() for s in seqs}
        texts = sorted(t for t in texts if t and t != ex.target.strip())
        if not texts:
            raise ObliviateError("altpo: every answer sampled for a forget question repeats the forget answer (a "
                                 f"model that memorised it: {ex.prompt[-60:]!r}); raise temperature or use data "
                                 "whose records carry value and attribute (alternates=swap)")
        out.append([retarget(tokenizer, ex, t) for t in texts[:cfg.n_alternates]])
        counts["sample"] += 1
    model.eval()
    return out, counts


register(Method(
    "idk", IdkConfig, idk,
    "fine-tune forget questions towards refusal answers + retain NLL",
    family=FAMILY, scopeable=True, memory=MemoryTerms(reference_pass=True, rows=3)))
register(Method(
    "idkdpo", IdkDPOConfig, idkdpo,
    "DPO: refusal preferred, forget answer rejected (beta=0.1) + retain NLL",
    family=FAMILY, scopeable=True, memory=MemoryTerms(reference_pass=True, rows=4)))
register(Method(
    "flat", FLATConfig, flat,
    "FLAT: f-divergence (KL or TV) between refusals and forget answers, forget data only",
    family=FAMILY, retain_term=False, scopeable=True, memory=MemoryTerms(reference_pass=True, rows=3)))
register(Method(
    "altpo", AltPOConfig, altpo,
    "AltPO: DPO preferring alternate answers over the forget answer (beta=0.1) + retain NLL",
    family=FAMILY, scopeable=True, memory=MemoryTerms(reference_pass=True, rows=4)))
