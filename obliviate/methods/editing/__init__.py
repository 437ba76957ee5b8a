"""The editing family: retrain-free weight edits (SSD, ROCR) and a located few-vector edit (Needle). Shared: locating
the subject's mentions and MLP keys (:mod:`.common`); the intrinsic, weight-level evidence (:mod:`.intrinsic`)."""
from obliviate.methods.registry import Family, register_family

FAMILY = register_family(Family("editing", "retrain-free weight edits (ssd, rocr) and a located few-vector edit (needle)",
                                   trains=False))

import obliviate.methods.editing.ssd as ssd  # noqa: E402,F401  (registers ssd)
import obliviate.methods.editing.rocr as rocr  # noqa: E402,F401  (registers rocr)
import obliviate.methods.editing.needle as needle  # noqa: E402,F401  (registers needle)
