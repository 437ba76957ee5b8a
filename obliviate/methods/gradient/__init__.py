"""The gradient family: a loss optimised on the forget (and retain) data, on all weights, LoRA adapters or a located
part of the model. Shared machinery: :mod:`obliviate.methods.common` (the loop, the retain term, the stopping rule)
and :mod:`obliviate.methods.losses`."""
from obliviate.methods.registry import Family, register_family

FAMILY = register_family(Family("gradient", "a loss optimised on the forget (and retain) data, on all weights, LoRA adapters or a "
                                   "located part of the model"))

import obliviate.methods.gradient.ascent as ascent  # noqa: E402,F401  (registers ascent)
import obliviate.methods.gradient.npo as npo  # noqa: E402,F401  (registers npo)
import obliviate.methods.gradient.refusal as refusal  # noqa: E402,F401  (registers refusal)
import obliviate.methods.gradient.tokenwise as tokenwise  # noqa: E402,F401  (registers tokenwise)
import obliviate.methods.gradient.rmu as rmu  # noqa: E402,F401  (registers rmu)
import obliviate.methods.gradient.whp as whp  # noqa: E402,F401  (registers whp)
import obliviate.methods.gradient.localized as localized  # noqa: E402,F401  (registers localized)
import obliviate.methods.gradient.uoe as uoe  # noqa: E402,F401  (registers uoe)
import obliviate.methods.gradient.task_vector as task_vector  # noqa: E402,F401  (registers task_vector)
import obliviate.methods.gradient.retrain as retrain  # noqa: E402,F401  (registers retrain)
