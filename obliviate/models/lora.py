"""LoRA (Hu et al., 2022, arXiv:2106.09685) for every gradient-based method, through ``peft``.

    obliviate unlearn --method npo --model <dir> --out <dir> --set lora_rank=8
    obliviate unlearn --method npo --model <dir> --out <dir> --set lora_rank=8 --set lora_merge=false  # adapter only
"""
from __future__ import annotations

from obliviate.core.utils import ObliviateError


def wrap(model, rank: int, alpha: float, targets: str, dropout: float = 0.0):
    """Freeze ``model`` and attach LoRA adapters of ``rank`` to ``targets`` (``all-linear`` or a comma list)."""
    from peft import LoraConfig, get_peft_model

    target_modules = targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()]
    cfg = LoraConfig(r=rank, lora_alpha=alpha or 2 * rank, lora_dropout=dropout, target_modules=target_modules,
                     task_type="CAUSAL_LM")
    try:
        return get_peft_model(model, cfg)
    except ValueError as e:
        raise ObliviateError(f"LoRA: no module of the model matches lora_targets={targets!r} ({e})") from None


def unwrap(model, merge: bool):
    """Merge the adapters into the weights and return a plain model (its weights trainable again, as a model
    loaded from disk would be; peft leaves them frozen), or keep the PEFT model (adapter only)."""
    if not merge:
        return model
    return model.merge_and_unload().requires_grad_(True)
