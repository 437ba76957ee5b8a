"""The unlearning methods, in one registry.

Each entry maps a name to its config dataclass (fields carry the paper's defaults) and a function
``run(model, tokenizer, data, config) -> info`` that unlearns ``model`` in place. The public
:func:`obliviate.unlearn` copies the model first, so callers' models are never modified.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Callable

from ..distributed import training_device
from ..utils import ObliviateError, seed_everything
from . import bottlenecked, lora  # noqa: F401  (bottlenecked registers its model kind)
from ..options import from_dict
from .codeunlearn import CodeUnlearnConfig, codeunlearn
from .common import GradientConfig, MemoryTerms, UnlearnData
from .eco import ECOConfig, eco
from .gradient import GAConfig, GradDiffConfig, ga, graddiff
from .guard import GUARDConfig, guard
from .icul import ICULConfig, icul
from .localized import LocalizedConfig, localized
from .needle import NeedleConfig, needle
from .npo import NPOConfig, SimNPOConfig, npo, simnpo
from .refusal import AltPOConfig, FLATConfig, IdkConfig, IdkDPOConfig, altpo, flat, idk, idkdpo
from .retrain import RetrainConfig, retrain
from .rmu import RMUConfig, rmu
from ..s3t import S3TUnlearnConfig, s3t_unlearn
from ..sisa import SisaUnlearnConfig, prepare_ensemble, sisa_unlearn
from .rocr import ROCRConfig, rocr
from .ssd import SSDConfig, ssd
from .task_vector import TaskVectorConfig, task_vector
from .tokenwise import CEUConfig, PDUConfig, SatImpConfig, UNDIALConfig, WGAConfig, ceu, pdu, satimp, undial, wga
from .uoe import UOEConfig, uoe
from .whp import WHPConfig, whp


@dataclass(frozen=True)
class Family:
    """What a method family shares and what is special about it: whether its methods run gradient steps,
    whether ``run`` returns a new model with its info (a guard wraps the model instead of changing it), and what
    the family needs done before a run (``prepare(model, tokenizer, bench)``: the exact family gives a loaded
    ensemble its shards' rows back). Model kinds a family stores on disk are registered with
    :func:`obliviate.models.register_kind`."""

    name: str
    summary: str
    trains: bool = True
    returns_model: bool = False
    prepare: Callable | None = None


GRADIENT = Family("gradient", "a loss optimised on the forget (and retain) data, on all weights, LoRA adapters or a "
                              "located part of the model")
EDITING = Family("editing", "retrain-free weight edits (ssd, rocr) and a located few-vector edit (needle)",
                 trains=False)
GUARDS = Family("guards", "inference-time guards: the weights stay; the returned model is the guarded one",
                trains=False, returns_model=True)
EXACT = Family("exact", "exact unlearning of a sharded ensemble (obliviate train --sharded): retrain or cut the "
                        "affected shards", trains=False, prepare=prepare_ensemble)
BOTTLENECK = Family("bottleneck", "CodeUnlearn: delete the codes of a discrete bottleneck (obliviate bottleneck); "
                                  "no gradient step", trains=False)
FAMILIES = {f.name: f for f in (GRADIENT, EDITING, GUARDS, EXACT, BOTTLENECK)}


@dataclass(frozen=True)
class Method:
    config: type
    run: Callable
    summary: str
    family: Family = GRADIENT
    retain_term: bool = True  # whether the loss has a term that protects retain data
    scopeable: bool = False  # whether `localized` / `uoe` can run its loss on part of the model
    lora: bool = True  # whether it can train LoRA adapters instead of the weights
    moe_only: bool = False  # whether it needs a Mixture-of-Experts model
    memory: MemoryTerms = MemoryTerms()  # what it adds to obliviate plan's memory model

    @property
    def trains(self) -> bool:
        """Whether it runs gradient steps on the model (not an edit, a guard, a code deletion or a shard cut)."""
        return self.family.trains


METHODS: dict[str, Method] = {
    "ga": Method(GAConfig, ga, "gradient ascent on the forget set (TOFU baseline)", retain_term=False,
                 scopeable=True, memory=MemoryTerms(rows=1)),
    "graddiff": Method(GradDiffConfig, graddiff, "ascent on forget + descent (NLL or KL) on retain", scopeable=True),
    "npo": Method(NPOConfig, npo, "Negative Preference Optimization, beta=0.1, + retain NLL (NPO-RT)",
                  scopeable=True, memory=MemoryTerms(reference_pass=True)),
    "simnpo": Method(SimNPOConfig, simnpo, "reference-free, length-normalised NPO (beta=4.5, delta=0) + retain NLL",
                     scopeable=True),
    "idk": Method(IdkConfig, idk, "fine-tune forget questions towards refusal answers + retain NLL", scopeable=True,
                  memory=MemoryTerms(reference_pass=True, rows=3)),
    "idkdpo": Method(IdkDPOConfig, idkdpo, "DPO: refusal preferred, forget answer rejected (beta=0.1) + retain NLL",
                     scopeable=True, memory=MemoryTerms(reference_pass=True, rows=4)),
    "flat": Method(FLATConfig, flat, "FLAT: f-divergence (KL or TV) between refusals and forget answers, forget data only",
                   retain_term=False, scopeable=True, memory=MemoryTerms(reference_pass=True, rows=3)),
    "altpo": Method(AltPOConfig, altpo, "AltPO: DPO preferring alternate answers over the forget answer (beta=0.1) "
                                        "+ retain NLL", scopeable=True,
                    memory=MemoryTerms(reference_pass=True, rows=4)),
    "undial": Method(UNDIALConfig, undial, "UNDIAL: self-distil towards own logits with the true token lowered by "
                                           "beta=3 (OpenUnlearning's README grid 3/10/30; its config: 10), forget data "
                                           "only", retain_term=False, scopeable=True,
                     memory=MemoryTerms(frozen_copies=1)),
    "wga": Method(WGAConfig, wga, "WGA: gradient ascent weighted per token by sg(p^beta) + retain NLL", scopeable=True),
    "satimp": Method(SatImpConfig, satimp, "SatImp: ascent weighted by sg(p^5 (1-p)) + 0.1 x retain NLL "
                                           "(OpenUnlearning's class defaults; its config: 0.1 x forget + retain)",
                     scopeable=True),
    "ceu": Method(CEUConfig, ceu, "CE-U: cross-entropy towards the model's own distribution without the true token, "
                                  "forget data only", retain_term=False, scopeable=True),
    "pdu": Method(PDUConfig, pdu, "PDU: flatten forget logits subject to retain NLL <= eps (primal-dual, "
                                  "Lagrange multiplier by dual ascent)", scopeable=True),
    "rmu": Method(RMUConfig, rmu, "RMU: steer layer-l activations on forget data to a random direction; "
                                  "updates MLP down-projections of layers l-2..l only",
                  memory=MemoryTerms(frozen_copies=1, stops_at_layer=True)),
    "whp": Method(WHPConfig, whp, "Who's Harry Potter: fine-tune towards generic labels from a reinforced model "
                                  "(+ optional anchor-term dictionary)", retain_term=False,
                  memory=MemoryTerms(frozen_copies=1)),
    "localized": Method(LocalizedConfig, localized, "locate the MLPs carrying the forget facts (attribution or "
                                                    "activation patching), run a chosen loss on them only"),
    "uoe": Method(UOEConfig, uoe, "MoE only: unlearn the forget set's most engaged expert + router anchor loss",
                  lora=False, moe_only=True),
    "codeunlearn": Method(CodeUnlearnConfig, codeunlearn, "CodeUnlearn: no gradient steps; delete the codes the forget "
                                                          "data fires in a codebook or TopK-SAE bottleneck",
                          lora=False, family=BOTTLENECK),
    "ssd": Method(SSDConfig, ssd, "Selective Synaptic Dampening: no training; shrink parameters far more important "
                                  "(diagonal Fisher) to the forget set than to all data (alpha=10, lambda=1)",
                  lora=False, family=EDITING),
    "rocr": Method(ROCRConfig, rocr, "rank-one concept redirection: no training; a closed-form rank-one edit of one "
                                     "MLP (causal tracing) maps the subject's key to a harmless concept's value "
                                     "(v* construction and layer rule ours, unverified against the paper)",
                   lora=False, family=EDITING),
    "needle": Method(NeedleConfig, needle, "ConceptVectors' Needle: locate the subject's MLP value vectors, noise "
                                           "them (sigma=0.1) and train only them with a forget loss (NPO)",
                     lora=False, family=EDITING),
    "eco": Method(ECOConfig, eco, "ECO: weights untouched; a classifier on the model's hidden states flags forget "
                                  "prompts, whose prompt embeddings get Gaussian noise (first dimension, as the "
                                  "official code; sigma by a search to the holdout level)", lora=False, family=GUARDS),
    "guard": Method(GUARDConfig, guard, "GUARD: weights untouched; flagged prompts are decoded by a beam search that "
                                        "prunes forbidden spans of the retrieved forget answers (keeps those answers)",
                    lora=False, family=GUARDS),
    "icul": Method(ICULConfig, icul, "in-context unlearning (Pawelczyk et al.): weights untouched; every prompt gets "
                                     "forget QA with false answers, then correct retain QA (mode=guardrail|system: "
                                     "RWKU's instruction baselines instead)",
                   lora=False, family=GUARDS),
    "sisa": Method(SisaUnlearnConfig, sisa_unlearn, "SISA, exact: retrain each affected shard of a sharded ensemble "
                                                   "(obliviate train --sharded) from the checkpoint before its first "
                                                   "affected slice", lora=False, family=EXACT),
    "s3t": Method(S3TUnlearnConfig, s3t_unlearn, "S3T, exact: cut each slice ordering of an S3T ensemble (obliviate "
                                                 "train --sharded --s3t) before its first affected slice and serve "
                                                 "the deepest surviving LoRA prefix; retrain only a shard left "
                                                 "without one", lora=False, family=EXACT),
    "task_vector": Method(TaskVectorConfig, task_vector, "fine-tune a copy on forget, subtract scale x (tuned - base)",
                          retain_term=False),
    "retrain": Method(RetrainConfig, retrain, "exact baseline: the oracle recipe on retain data only, from the base",
                      lora=False),
}
DEFAULT_METHOD = "npo"


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ObliviateError(f"unknown method {name!r}; expected one of {', '.join(sorted(METHODS))}")
    return METHODS[name]


def method_config(method: str, config: dict | GradientConfig | None = None):
    """The method's config dataclass from a dict of overrides (values may be text, as ``--set`` gives them);
    unknown keys and values that break an option's constraint are an error naming the method and option."""
    m = get_method(method)
    if config is None or isinstance(config, dict):
        return from_dict(m.config, config, f"method {method}")
    if not isinstance(config, m.config):
        raise ObliviateError(f"method {method!r} takes a {m.config.__name__}, got {type(config).__name__}")
    return config


def unlearn(model, tokenizer, data: UnlearnData, method: str = DEFAULT_METHOD, config: dict | GradientConfig | None = None):
    """Return ``(unlearned_model, info)``; ``model`` itself is left untouched (a deep copy is trained)."""
    m = get_method(method)
    cfg = method_config(method, config)
    use_lora = getattr(cfg, "lora_rank", 0) > 0
    if use_lora and not m.lora:
        raise ObliviateError(f"{method}: LoRA does not apply; this method trains the model's own weights")
    new = copy.deepcopy(model)
    if m.trains:  # on the device the loop trains on from the start: reference passes and frozen copies run there
        new = new.to(training_device(new))
    if use_lora:
        seed_everything(cfg.seed)  # the adapters' random initialisation: same seed, same adapters
        new = lora.wrap(new, cfg.lora_rank, cfg.lora_alpha, cfg.lora_targets)
    info = m.run(new, tokenizer, data, cfg)
    if m.family.returns_model:  # a guard: the weights stay; the returned model is the guarded one
        new, info = info
    if use_lora:
        new = lora.unwrap(new, cfg.lora_merge)
    new.eval()
    return new, {"method": method, "config": asdict(cfg), **info}


__all__ = ["DEFAULT_METHOD", "FAMILIES", "METHODS", "Family", "Method", "UnlearnData", "get_method", "method_config", "unlearn"]
