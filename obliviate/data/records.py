"""Record types and the :class:`Benchmark` that groups them into forget / retain / holdout splits."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass(frozen=True)
class QARecord:
    """One question-answer fact, in TOFU's shape.

    ``perturbed_answers`` are false answers written in the same form as ``paraphrased_answer`` (TOFU's
    convention), so the truth ratio compares like with like. ``value`` is the atomic fact (a city, a year)
    that exact-match scoring looks for in a generated answer; when absent, the whole answer is used.
    """

    question: str
    answer: str
    paraphrased_answer: str | None = None
    perturbed_answers: tuple[str, ...] = ()
    paraphrased_question: str | None = None
    value: str | None = None
    subject: str | None = None
    attribute: str | None = None
    id: str = ""

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["perturbed_answer"] = list(d.pop("perturbed_answers"))
        return {k: v for k, v in d.items() if v not in (None, "")}


@dataclass(frozen=True)
class TextRecord:
    """A passage of text (a biography, a book excerpt) trained on as plain language modelling."""

    text: str
    subject: str | None = None
    id: str = ""


@dataclass
class Benchmark:
    """Everything one unlearning experiment needs.

    - ``forget``: facts to remove; ``retain``: facts trained on that must survive;
    - ``holdout``: facts of the same kind never trained on (membership-inference non-members, and the
      accuracy a model that never saw a fact gets by guessing);
    - ``world`` and ``neighbours``: utility facts (``neighbours`` are facts about entities the forget records
      mention, the knowledge most at risk of collateral damage). They are evaluation-only in unlearning: never in
      a retain loss. ``utility_trained`` says whether target and oracle are fine-tuned on them (the built-in
      benchmarks, whose from-scratch models have no other source of that knowledge) or not (TOFU's world facts
      and a user's ``--world`` file: knowledge the pretrained model already has). A pretrained model is never
      fine-tuned on the world facts, whatever the benchmark: they are its own knowledge, which fine-tuning and
      unlearning must keep (TOFU's protocol); the neighbours (invented places) are trained when ``utility_trained``;
    - ``texts``: passages per split (biographies), trained on alongside the QA of the same split;
    - ``multi_hop``: two-hop questions composing a forget fact with a retained one (for attacks);
    - ``calibration``: more facts of the holdout's kind, never trained on and never evaluated: what a model owner
      without an oracle calibrates on (``stop=holdout``, ``tune --objective holdout_gap``). Keeping it apart from
      ``holdout`` keeps the membership-inference numbers free of selection on their own data. It is not part of
      :meth:`fingerprint` or :meth:`family` (no model is trained or scored on it), but it is part of
      :meth:`all_text`, so that a built-in tokenizer splits it as it splits the holdout.
    """

    name: str
    forget: list[QARecord]
    retain: list[QARecord]
    holdout: list[QARecord] = field(default_factory=list)
    world: list[QARecord] = field(default_factory=list)
    neighbours: list[QARecord] = field(default_factory=list)
    texts: dict[str, list[TextRecord]] = field(default_factory=dict)
    multi_hop: list[QARecord] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)  # how to build it again (see obliviate.data.loaders.rebuild)
    utility_trained: bool = False  # whether target and oracle are fine-tuned on world and neighbour facts
    calibration: list[QARecord] = field(default_factory=list)
    calibration_texts: list[TextRecord] = field(default_factory=list)  # tokenizer corpus only

    def qa_splits(self) -> dict[str, list[QARecord]]:
        return {"forget": self.forget, "retain": self.retain, "holdout": self.holdout,
                "world": self.world, "neighbours": self.neighbours}

    def training_qa(self, include_forget: bool = True, pretrained: bool = False) -> list[QARecord]:
        """QA the target is trained on; the oracle gets the same minus the forget set. World and neighbour facts
        are included only when ``utility_trained``, and the world facts only into a model trained from scratch
        (``pretrained=False``)."""
        forget = self.forget if include_forget else []
        world = self.world if not pretrained else []
        utility = [*world, *self.neighbours] if self.utility_trained else []
        return [*forget, *self.retain, *utility]

    def training_texts(self, include_forget: bool = True) -> list[TextRecord]:
        forget = self.texts.get("forget", []) if include_forget else []
        return [*forget, *self.texts.get("retain", [])]

    def all_text(self) -> list[str]:
        """Every string of the benchmark, calibration facts included (used to train the built-in model's tokenizer,
        so that facts never trained on are tokenised as trained ones are)."""
        out: list[str] = []
        for recs in [*self.qa_splits().values(), self.multi_hop, self.calibration]:
            for r in recs:
                out += [r.question, r.answer, *(r.perturbed_answers)]
                out += [s for s in (r.paraphrased_answer, r.paraphrased_question) if s]
        for recs in [*self.texts.values(), self.calibration_texts]:
            out += [t.text for t in recs]
        return out

    def fingerprint(self) -> str:
        """SHA-256 of everything in the benchmark, splits included: equal fingerprints, identical benchmarks."""
        from obliviate.core.utils import stable_hash

        return stable_hash({"qa": {k: [r.to_dict() for r in v] for k, v in self.qa_splits().items()},
                            "texts": {k: [(t.id, t.subject, t.text) for t in v] for k, v in sorted(self.texts.items())},
                            "multi_hop": [r.to_dict() for r in self.multi_hop]})

    def family(self) -> str:
        """SHA-256 of the records regardless of which split holds them: the same data cut into another forget
        split (people:forget05 vs people:forget10) has the same family; other people or other files do not."""
        from obliviate.core.utils import stable_hash

        qa = sorted(stable_hash(r.to_dict()) for recs in self.qa_splits().values() for r in recs)
        texts = sorted(stable_hash([t.id, t.subject, t.text]) for v in self.texts.values() for t in v)
        return stable_hash({"qa": qa, "texts": texts})

    def record(self) -> dict:
        """What a model folder stores about the benchmark it was trained or unlearned on."""
        return {"name": self.name, "source": self.source, "fingerprint": self.fingerprint(), "family": self.family()}

    def summary(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "sizes": {k: len(v) for k, v in self.qa_splits().items()}
            | {f"texts_{k}": len(v) for k, v in self.texts.items()} | {"multi_hop": len(self.multi_hop)}
            | ({"calibration": len(self.calibration)} if self.calibration else {}),
            "meta": self.meta,
        }
