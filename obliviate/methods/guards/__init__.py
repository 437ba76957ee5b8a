"""The guards family: inference-time guards. The weights stay; ``run`` returns the guarded model (a model kind of
its own on disk, :mod:`obliviate.models.guarded`), and each guard's results carry its classifier's rates
(:mod:`.rates`)."""
from obliviate.methods.registry import Family, register_family
from obliviate.methods.guards.rates import guard_evidence

FAMILY = register_family(Family("guards", "inference-time guards: the weights stay; the returned model is the guarded one",
                                   trains=False, returns_model=True, evidence=guard_evidence))

import obliviate.methods.guards.eco as eco  # noqa: E402,F401  (registers eco)
import obliviate.methods.guards.guard as guard  # noqa: E402,F401  (registers guard)
import obliviate.methods.guards.icul as icul  # noqa: E402,F401  (registers icul)
