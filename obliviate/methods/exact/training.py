"""The exact family's training: a sharded ensemble of the target (SISA, or S3T with ``s3t``), beside the
target/oracle pair of :func:`obliviate.engine.training.train_pair`.

    obliviate train --model tiny --sharded 4 --slices 4 [--s3t [--budget B]] --out ENSEMBLE
"""
from __future__ import annotations

from dataclasses import asdict, replace
from obliviate.core.outputs import check_output
from obliviate.core.utils import ObliviateError, versions
from obliviate.data.format import examples_from
from obliviate.engine.training import TrainConfig, base_model
from obliviate.methods.exact.s3t import S3TConfig, train_s3t
from obliviate.methods.exact.sisa import SisaConfig, train_sisa
from obliviate.models import SCRATCH_MODELS, save_model


def train_ensemble(model: str, bench, out, cfg: TrainConfig, *, shards: int, slices: int, s3t: bool = False,
                   budget: int | None = None, overwrite: bool = False) -> dict:
    """Train a SISA (or S3T) ensemble of the target (all training rows) into ``out``; each slice gets
    ``epochs // slices`` epochs of the recipe unless ``cfg.epochs`` is set. Returns the record saved with it."""
    if not out:
        raise ObliviateError("train --sharded needs --out DIR (the ensemble's folder)")
    check_output(out, overwrite=overwrite)
    if budget is not None and not s3t:
        raise ObliviateError("train --budget applies to --s3t (orderings per shard)")
    if s3t:
        scfg = S3TConfig(shards=shards, slices=slices, budget=budget, seed=cfg.seed)
    else:
        scfg = SisaConfig(shards=shards, slices=slices, seed=cfg.seed)
    base, tok = base_model(model, bench, cfg.seed)
    examples = examples_from(tok, bench.training_qa(True, pretrained=model not in SCRATCH_MODELS), bench.training_texts(True) if cfg.include_texts else [])
    full = cfg.resolved(model in SCRATCH_MODELS, len(examples), model=model)
    per_slice = replace(full, epochs=max(1, full.epochs // scfg.slices)) if cfg.epochs is None else full
    train = train_s3t if s3t else train_sisa
    ens = train(base, tok, examples, scfg, asdict(per_slice))
    record = {"s3t" if s3t else "sisa": asdict(scfg), "train": asdict(per_slice), "benchmark": bench.record(),
              "role": "target", "seed": cfg.seed, "versions": versions()}
    save_model(ens, tok, out, record, overwrite=overwrite)
    return record
