"""Small shared helpers: errors, seeding, hashing, atomic writes, version capture."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import random
import tempfile
from pathlib import Path
from typing import Any


class ObliviateError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits with status 2."""


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so that the same seed on the same machine gives the same numbers."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def stable_hash(obj: Any) -> str:
    """SHA-256 of the canonical JSON form of ``obj`` (dataclasses and paths are converted first)."""
    blob = json.dumps(obj, sort_keys=True, default=_json_default, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _json_default(o: Any) -> Any:
    import dataclasses

    if dataclasses.is_dataclass(o):
        return dataclasses.asdict(o)
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    if hasattr(o, "item"):  # numpy / torch scalars
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def to_jsonable(obj: Any) -> Any:
    """Plain JSON values: dataclasses, numpy scalars and paths converted; NaN and infinities become None
    (strict JSON has no NaN)."""
    def clean(x):
        if isinstance(x, float) and (x != x or x in (float("inf"), float("-inf"))):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list):
            return [clean(v) for v in x]
        return x

    return clean(json.loads(json.dumps(obj, default=_json_default)))


def package_version() -> str:
    """obliviate's own version (0.0.0 when run from a source tree without an install)."""
    import importlib.metadata as md

    try:
        return md.version("obliviate")
    except md.PackageNotFoundError:
        return "0.0.0"


def versions() -> dict[str, str]:
    """Versions of Python, the platform and the libraries that decide the numbers."""
    import importlib.metadata as md

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in ("obliviate", "torch", "transformers", "tokenizers", "peft", "accelerate",
                 "numpy", "scipy", "scikit-learn", "rouge-score", "gguf"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, default=_json_default, ensure_ascii=False)
            f.write("\n")
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def cache_dir() -> Path:
    """Where trained targets and oracles are cached: ``$OBLIVIATE_CACHE`` or ``~/.cache/obliviate``."""
    root = os.environ.get("OBLIVIATE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "obliviate")
    return Path(root)
