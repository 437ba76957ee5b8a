"""The bottleneck family: CodeUnlearn. ``obliviate bottleneck`` puts a discrete bottleneck (:mod:`.codebook`, placed by
:mod:`.sites`) into the model once; each request deletes the codes its forget data fires (:mod:`.codeunlearn`),
with no gradient step. Bottlenecked models are a model kind of their own on disk (:mod:`.bottlenecked`)."""
from obliviate.methods.registry import Family, register_family

FAMILY = register_family(Family("bottleneck", "CodeUnlearn: delete the codes of a discrete bottleneck (obliviate bottleneck); "
                                     "no gradient step", trains=False))

import obliviate.methods.bottleneck.bottlenecked as bottlenecked  # noqa: E402,F401  (registers bottlenecked)
import obliviate.methods.bottleneck.codeunlearn as codeunlearn  # noqa: E402,F401  (registers codeunlearn)
