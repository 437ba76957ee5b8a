"""Real-knowledge probes in the style of RWKU (Jin et al., 2024, "RWKU: Benchmarking Real-World Knowledge
Unlearning for Large Language Models", arXiv:2406.10890): for a real target (a person, a book) that a
pretrained model knows, fill-in-the-blank and question-answer probes on the target (should be forgotten)
and on *neighbours*, related but different targets (should survive).

The built-in targets were written for obliviate (scientists, artists, leaders, explorers, stories, places:
:data:`WRITTEN`); each model's set keeps the probes that model answers correctly with greedy decoding (checked
with ``bench/rwku_leaderboard.py --check``: the answer must appear in the first 16 generated tokens), at least 5 per
target, with neighbours whose probes number at least 5 too: 20 targets for SmolLM2-135M-Instruct (the default
set), 23 for Gemma-3-270M, so that an offline user can unlearn a target from a real model, watch both sides, and
compare methods over many targets.
Each target also carries short passages to unlearn from (RWKU's setting gives only the target's name; the
passages stand in for the model-generated descriptions RWKU uses). The passages carry the knowledge the probes
ask for in other words: no probe shares a sentence, or any run of seven words, with a passage of its target or
of a neighbour (``tests/test_rwku.py`` checks it), so a method cannot pass a probe by unlearning its wording.

Your own probes: a JSON file ``{target: {"fill": [[prompt, answer], ...], "qa": [[question, answer], ...],
"neighbours": [other targets], "passages": [text, ...]}}``, loaded with :func:`load_probes`.
"""
from __future__ import annotations

import json
from pathlib import Path

from obliviate.core.utils import ObliviateError
from obliviate.data.rwku_written import WRITTEN, Target


def _answered_by(flag: str) -> dict[str, Target]:
    """The targets of :data:`WRITTEN` a model answers at least 5 probes of (``flag``: its letter), with those
    probes and the neighbours that are targets of the set too."""
    def kept(probes):
        return [(p, a) for p, a, who in probes if flag in who]

    names = {n for n, t in WRITTEN.items() if len(kept(t.fill)) + len(kept(t.qa)) >= 5}
    return {n: Target(n, kept(t.fill), kept(t.qa), [x for x in t.neighbours if x in names], t.passages)
            for n, t in WRITTEN.items() if n in names}


BUILTIN_PROBES = _answered_by("s")  # SmolLM2-135M-Instruct's set, the default
GEMMA_PROBES = _answered_by("g")
PROBE_SETS = {"smollm2-135m": BUILTIN_PROBES, "gemma3-270m": GEMMA_PROBES}

def load_probes(path: str | Path | None = None) -> dict[str, Target]:
    """The built-in probes (SmolLM2's), a built-in set by model name (``gemma3-270m``), or those of a JSON file (see
    the module docstring); errors name the target and field."""
    if path is None:
        return BUILTIN_PROBES
    if str(path) in PROBE_SETS:
        return PROBE_SETS[str(path)]
    path = Path(path)
    if not path.is_file():
        raise ObliviateError(f"probe file {path} does not exist")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ObliviateError(f"probe file {path} is not valid JSON: {e.msg} at line {e.lineno}") from None
    if not isinstance(raw, dict) or not raw:
        raise ObliviateError(f"probe file {path}: expected an object mapping target names to probes")
    out = {}
    for name, t in raw.items():
        pairs = {}
        for kind in ("fill", "qa"):
            items = t.get(kind, [])
            if not all(isinstance(x, list) and len(x) == 2 and all(isinstance(s, str) and s for s in x)
                       for x in items):
                raise ObliviateError(f"probe file {path}, target {name!r}: {kind!r} must be a list of "
                                     f"[prompt, answer] pairs of non-empty strings")
            pairs[kind] = [tuple(x) for x in items]
        if not pairs["fill"] and not pairs["qa"]:
            raise ObliviateError(f"probe file {path}, target {name!r}: no 'fill' or 'qa' probes")
        out[name] = Target(name, pairs["fill"], pairs["qa"], list(t.get("neighbours", [])),
                           list(t.get("passages", [])))
    for t in out.values():
        missing = [n for n in t.neighbours if n not in out]
        if missing:
            raise ObliviateError(f"probe file {path}, target {t.name!r}: neighbour(s) {missing} are not targets")
    return out


def get_target(name: str, probes: dict[str, Target]) -> Target:
    if name not in probes:
        raise ObliviateError(f"unknown probe target {name!r}; expected one of {', '.join(sorted(probes))}")
    return probes[name]
