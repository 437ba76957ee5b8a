"""The oracle's scores, computed once: a content-addressed cache of evaluation results.

Every ``obliviate eval --oracle O`` compares a model with the oracle's per-example scores (truth ratios, MIA
scores, token probabilities). Those depend only on the oracle's files, the benchmark and the evaluation config,
so evaluating three unlearned models against one oracle need score the oracle once, as OpenUnlearning reuses its
retain model's logs (``retain_logs_path``) instead of re-evaluating the retain model.

The key is the SHA-256 of: every weight file (``*.safetensors``) and every JSON file but ``obliviate.json`` (the
config, the tokenizer, a guard) in the oracle's folder, the benchmark's :meth:`~obliviate.data.Benchmark.fingerprint`,
the resolved :class:`~obliviate.evals.EvalConfig`, the torch version and obliviate's own source (every ``.py`` file
of the package: a release number does not change when the code that scores does). A changed byte in any of them is
another key. Entries live under ``$OBLIVIATE_CACHE/scores/KEY.json`` (written atomically), and only a
model given as a folder is cached (a built-in name is a recipe, not weights).

:func:`evaluate_cached` does the same for any saved model scored against an oracle's result (the target before
unlearning, a second oracle): the oracle's whole result joins the key, so a re-scored oracle re-scores them too.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from pathlib import Path

from obliviate.core.utils import cache_dir, stable_hash
from obliviate.evals.suite import EvalConfig, EvalResult, evaluate


def content_key(folder: str | os.PathLike, bench, cfg: EvalConfig, against: EvalResult | None = None) -> str:
    """The cache key of one evaluation of the model in ``folder`` (see the module docstring); ``against``: the
    oracle's result the model is compared with (its whole content is part of the key), none for the oracle itself."""
    import torch

    folder = Path(folder)
    files = {}
    for f in sorted(folder.rglob("*")):
        if f.is_file() and (f.suffix == ".safetensors" or (f.suffix == ".json" and f.name != "obliviate.json")):
            h = hashlib.sha256()
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            files[f.relative_to(folder).as_posix()] = h.hexdigest()
    key = {"files": files, "benchmark": bench.fingerprint(), "eval": dataclasses.asdict(cfg),
           "obliviate_source": _source_digest(), "torch": torch.__version__}
    if against is not None:
        key["against"] = stable_hash(against.to_dict())
    return stable_hash(key)


@functools.lru_cache(maxsize=1)
def _source_digest() -> str:
    """SHA-256 of the package's source, read once per process (the code this process runs)."""
    h = hashlib.sha256()
    package = Path(__file__).resolve().parent.parent
    for f in sorted(package.rglob("*.py")):
        h.update(f.relative_to(package).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def evaluate_oracle(model, tokenizer, bench, cfg: EvalConfig, folder: str | os.PathLike | None,
                    desc: str = "evaluate oracle") -> tuple[EvalResult, bool]:
    """``(result, from_cache)``: the oracle's evaluation (``evaluate(..., is_oracle=True)``), read from the cache
    when this folder, benchmark and config were scored before, else computed and stored."""
    return evaluate_cached(model, tokenizer, bench, cfg, folder, desc=desc)


def evaluate_cached(model, tokenizer, bench, cfg: EvalConfig, folder: str | os.PathLike | None,
                    oracle: EvalResult | None = None, desc: str = "evaluate") -> tuple[EvalResult, bool]:
    """``(result, from_cache)``: ``evaluate(model, ..., oracle=oracle)`` of the model saved in ``folder``, or the
    oracle's own evaluation (``is_oracle=True``) when ``oracle`` is None; read from the cache when the same files,
    benchmark, config and oracle result were scored before, else computed and stored. Without a folder (a model
    only in memory), always computed."""
    def run() -> EvalResult:
        return evaluate(model, tokenizer, bench, cfg, oracle=oracle, desc=desc, is_oracle=oracle is None)

    if folder is None or not Path(str(folder)).is_dir():
        return run(), False
    path = cache_dir() / "scores" / f"{content_key(folder, bench, cfg, oracle)}.json"
    if path.is_file():
        try:
            return EvalResult(**json.loads(path.read_text(encoding="utf-8"))), True
        except (OSError, ValueError, TypeError):
            pass  # a damaged entry is scored again and replaced
    result = run()
    if os.environ.get("RANK", "0") == "0":  # under torchrun every process scores its share; one writes
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps(result.to_dict()), encoding="utf-8")
        os.replace(tmp, path)
    return result, False


__all__ = ["content_key", "evaluate_cached", "evaluate_oracle"]
