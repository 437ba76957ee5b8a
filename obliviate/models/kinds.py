"""Model kinds on disk: what a folder obliviate wrote holds beyond a plain Hugging Face model (a guard, a sharded
ensemble, a bottleneck), each a detector and a loader that the family writing it registers. :func:`load_model`
asks the registered kinds in turn and falls back to a plain model, so adding a family that stores a new kind of
model touches its own folder only."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from obliviate.core.utils import ObliviateError


@dataclass(frozen=True)
class ModelKind:
    name: str
    detect: Callable[[Path], bool]  # detect(folder) -> whether the folder holds this kind
    load: Callable[..., tuple]  # load(folder, dtype, trust_remote_code) -> (model, tokenizer)


MODEL_KINDS: dict[str, ModelKind] = {}


def register_kind(name: str, detect: Callable[[Path], bool], load: Callable[..., tuple]) -> ModelKind:
    """Register a kind of model folder (a second registration under one name is an error)."""
    if name in MODEL_KINDS:
        raise ObliviateError(f"model kind {name!r} is registered twice")
    MODEL_KINDS[name] = kind = ModelKind(name, detect, load)
    return kind


def kind_of(folder: Path) -> ModelKind | None:
    """The registered kind whose detector recognises ``folder``; None for a plain model folder."""
    found = [k for k in MODEL_KINDS.values() if k.detect(folder)]
    if len(found) > 1:
        raise ObliviateError(f"{folder} looks like several kinds of model at once ({', '.join(k.name for k in found)})")
    return found[0] if found else None


__all__ = ["MODEL_KINDS", "ModelKind", "kind_of", "register_kind"]
