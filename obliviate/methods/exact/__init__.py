"""The exact family: a sharded ensemble (SISA, S3T; ``obliviate train --sharded``) forgets by retraining or
cutting the shards that saw the forget rows. Its ensembles are model kinds of their own on disk."""
from obliviate.methods.registry import Family, register_family


def _prepare(model, tokenizer, bench) -> None:
    """Give a loaded ensemble its shards' rows back (:func:`obliviate.methods.exact.sisa.prepare_ensemble`)."""
    from obliviate.methods.exact.sisa import prepare_ensemble

    prepare_ensemble(model, tokenizer, bench)


FAMILY = register_family(Family("exact", "exact unlearning of a sharded ensemble (obliviate train --sharded): retrain or cut the "
                                "affected shards", trains=False, prepare=_prepare))

import obliviate.methods.exact.sisa as sisa  # noqa: E402,F401  (registers sisa)
import obliviate.methods.exact.s3t as s3t  # noqa: E402,F401  (registers s3t)
