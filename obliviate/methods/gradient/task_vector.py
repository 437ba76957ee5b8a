"""Task-vector negation (Ilharco et al., 2023, "Editing Models with Task Arithmetic", arXiv:2212.04089,
Sec. 3; an unlearning baseline in MUSE, Shi et al., 2024).

    obliviate unlearn --method task_vector --model <target dir> --benchmark people --set scale=1.0

Fine-tune a copy on the forget set (descending its NLL), then move the model against that direction:
θ ← θ - α·(θ_forget-tuned - θ).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from obliviate.core.options import option
from obliviate.core.utils import ObliviateError
from obliviate.methods.common import GradientConfig, UnlearnData, lm_logits, run_gradient_method
from obliviate.methods.losses import mean_token_nll
from obliviate.methods.gradient import FAMILY
from obliviate.methods.registry import Method, register


@dataclass
class TaskVectorConfig(GradientConfig):
    SEARCH = {**GradientConfig.SEARCH, "epochs": ("int", 1, 10), "scale": ("float", 0.5, 3.0)}
    scale: float = option(1.0, "α: θ <- θ - α·(θ_tuned - θ)", gt=0)
    epochs: int = option(10, "fine-tuning epochs on the forget set (MUSE's reinforcement fine-tune)", ge=1)


def task_vector(model, tokenizer, data: UnlearnData, cfg: TaskVectorConfig) -> dict:
    if cfg.stop != "none":
        raise ObliviateError("task_vector: stop=holdout does not apply (its training run fine-tunes *towards* the "
                             "forget set; the unlearned model exists only after the subtraction)")
    tuned = copy.deepcopy(model)

    def loss(m, b):
        return mean_token_nll(lm_logits(m, b["forget"]), b["forget"]["labels"])

    out = run_gradient_method(tuned, tokenizer, data, cfg, loss, "unlearn task_vector (forget fine-tune)",
                              needs_retain=False)
    tuned_params = dict(tuned.named_parameters())
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            t = tuned_params[name]
            if "lora_A" in name:  # LoRA: ΔW = B·A with B starting at zero, so -α·ΔW = (-α·B_t)·A_t
                p.copy_(t)
            elif "lora_B" in name:
                p.copy_(-cfg.scale * t)
            else:
                p.sub_(cfg.scale * (t - p))
    return out


register(Method(
    "task_vector", TaskVectorConfig, task_vector,
    "fine-tune a copy on forget, subtract scale x (tuned - base)",
    family=FAMILY, retain_term=False))
