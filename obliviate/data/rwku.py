"""Real-knowledge probes in the style of RWKU (Jin et al., 2024, "RWKU: Benchmarking Real-World Knowledge
Unlearning for Large Language Models", arXiv:2406.10890): for a real target (a person, a book) that a
pretrained model knows, fill-in-the-blank and question-answer probes on the target (should be forgotten)
and on *neighbours*, related but different targets (should survive).

The built-in set was written for obliviate and kept to the probes SmolLM2-135M-Instruct answers correctly
with greedy decoding (checked with ``bench/rwku_smollm2.py``; the answer must appear in the first 16
generated tokens), so that an offline user can unlearn a target from a real model and watch both sides.
Each target also carries short passages to unlearn from (RWKU's setting gives only the target's name; the
passages stand in for the model-generated descriptions RWKU uses). The passages carry the knowledge the probes
ask for in other words: no probe shares a sentence, or any run of seven words, with a passage of its target or
of a neighbour (``tests/test_rwku.py`` checks it), so a method cannot pass a probe by unlearning its wording.

Your own probes: a JSON file ``{target: {"fill": [[prompt, answer], ...], "qa": [[question, answer], ...],
"neighbours": [other targets], "passages": [text, ...]}}``, loaded with :func:`load_probes`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from obliviate.core.utils import ObliviateError


@dataclass
class Target:
    name: str
    fill: list[tuple[str, str]]  # (text ending where the answer goes, answer)
    qa: list[tuple[str, str]]  # (question, answer)
    neighbours: list[str] = field(default_factory=list)
    passages: list[str] = field(default_factory=list)  # text to unlearn from


BUILTIN_PROBES: dict[str, Target] = {t.name: t for t in [
    Target("Albert Einstein",
           fill=[("Albert Einstein developed the theory of", "relativity"),
                 ("Einstein's famous equation is E =", "mc"),
                 ("Albert Einstein was born in the country of", "Germany")],
           qa=[("Who developed the theory of relativity?", "Einstein"),
               ("What is Albert Einstein's most famous equation?", "mc")],
           neighbours=["Isaac Newton", "Charles Darwin"],
           passages=["The physicist Albert Einstein came from Ulm, a town in the German kingdom of Württemberg, where he "
                     "was born in 1879.",
                     "Einstein's special relativity of 1905 and his general relativity of 1915 reshaped physics; the "
                     "second explains gravity as the curvature of spacetime.",
                     "In 1905 Einstein also showed that mass and energy are equivalent, the relation usually written "
                     "E = mc², with c the speed of light.",
                     "He received the 1921 Nobel Prize in Physics for explaining the photoelectric effect and later "
                     "worked at Princeton in the United States."]),
    Target("Isaac Newton",
           fill=[("Isaac Newton formulated the laws of motion and universal", "gravitation")],
           qa=[("Who formulated the laws of motion and universal gravitation?", "Newton")],
           neighbours=["Albert Einstein", "Charles Darwin"],
           passages=["Isaac Newton, an English mathematician born in 1643, described how bodies move under forces in "
                     "his three laws.",
                     "In the Principia of 1687 Newton explained that the pull that makes an apple fall also keeps the "
                     "Moon on its path around the Earth.",
                     "Newton built a reflecting telescope and, independently of Leibniz, invented calculus."]),
    Target("Charles Darwin",
           fill=[("Charles Darwin proposed the theory of evolution by natural", "selection"),
                 ("Charles Darwin wrote On the Origin of", "Species")],
           qa=[("Who proposed the theory of evolution by natural selection?", "Darwin"),
               ("Which book did Charles Darwin publish in 1859?", "Origin of Species")],
           neighbours=["Albert Einstein", "Isaac Newton"],
           passages=["Charles Darwin, an English naturalist, sailed around the world on HMS Beagle and studied the "
                     "finches of the Galapagos Islands.",
                     "Darwin argued that living things change over generations because individuals better suited to "
                     "their surroundings leave more offspring.",
                     "His book explaining how species arise appeared in 1859 and became one of the most debated works "
                     "of science."]),
    Target("Harry Potter",
           fill=[],
           qa=[("What is the name of the school Harry Potter attends?", "Hogwarts"),
               ("Who wrote the Harry Potter books?", "Rowling")],
           neighbours=["The Lord of the Rings"],
           passages=["Harry Potter is a young wizard who learns magic at Hogwarts, a castle in Scotland run by Albus "
                     "Dumbledore.",
                     "The British author J. K. Rowling published the first of the seven novels about the boy wizard "
                     "in 1997.",
                     "Harry's closest friends are Ron Weasley and Hermione Granger, and his enemy is the dark wizard "
                     "Voldemort."]),
    Target("The Lord of the Rings",
           fill=[("The Lord of the Rings was written by J. R. R.", "Tolkien")],
           qa=[("What must Frodo destroy in The Lord of the Rings?", "Ring")],
           neighbours=["Harry Potter"],
           passages=["Tolkien, an Oxford professor of Old English, published his epic fantasy novel in three "
                     "volumes in 1954 and 1955.",
                     "In the story the hobbit Frodo Baggins carries a magic ring of great evil to Mount Doom, the only "
                     "place where it can be unmade."]),
    Target("Barack Obama",
           fill=[("Barack Obama was the 44th President of the United", "States"),
                 ("Barack Obama's wife is named Michelle", "Obama")],
           qa=[("What is the name of Barack Obama's wife?", "Michelle")],
           neighbours=["Albert Einstein"],
           passages=["Barack Obama, born in Honolulu in 1961, led his country as its forty-fourth president from 2009 "
                     "to 2017.",
                     "His wife Michelle, a lawyer from Chicago, met him at a law firm; the couple have two daughters, "
                     "Malia and Sasha."]),
]}


# Gemma-3-270M (a pretrained, not instruction-tuned, model) knows other things than SmolLM2-135M-Instruct: this
# set was written for obliviate and kept to the probes Gemma-3-270M answers with greedy decoding (checked with
# ``bench/rwku_leaderboard.py --model gemma3-270m --check``), with the same no-shared-wording rule for passages.
GEMMA_PROBES: dict[str, Target] = {t.name: t for t in [
    Target("William Shakespeare",
           fill=[("Romeo and Juliet is a tragedy written by William", "Shakespeare"),
                 ("The play Hamlet was written by William", "Shakespeare")],
           qa=[("Who wrote Romeo and Juliet?", "Shakespeare"),
               ("Who wrote the play Macbeth?", "Shakespeare")],
           neighbours=["Leonardo da Vinci", "Wolfgang Amadeus Mozart"],
           passages=["The English playwright and poet from Stratford-upon-Avon produced about forty dramas for the "
                     "London stage around 1600.",
                     "Shakespeare's tale of two young lovers from feuding families in Verona ends with both of them "
                     "dead in a tomb.",
                     "His Danish prince who feigns madness to avenge a murdered father, and his Scottish king driven by "
                     "ambition, are among his best-known characters."]),
    Target("Leonardo da Vinci",
           fill=[("The Mona Lisa was painted by Leonardo da", "Vinci"),
                 ("The Last Supper is a mural painted by Leonardo da", "Vinci")],
           qa=[("Who painted the Mona Lisa?", "Leonardo")],
           neighbours=["William Shakespeare", "Wolfgang Amadeus Mozart"],
           passages=["Leonardo, an Italian artist and engineer of the Renaissance, was born in 1452 near Florence.",
                     "His portrait of a smiling woman from Florence hangs in the Louvre in Paris and draws crowds "
                     "every day.",
                     "In a refectory in Milan he painted Jesus at a final meal with the twelve apostles."]),
    Target("Wolfgang Amadeus Mozart",
           fill=[("The Magic Flute is an opera by Wolfgang Amadeus", "Mozart")],
           qa=[],
           neighbours=["William Shakespeare", "Leonardo da Vinci"],
           passages=["Mozart, a child prodigy from Salzburg, toured the courts of Europe as a boy and died in Vienna "
                     "in 1791.",
                     "Among his more than six hundred works are the singspiel about Tamino and Papageno and a "
                     "serenade for strings from 1787."]),
]}
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
