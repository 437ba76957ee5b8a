"""Load QA facts from files in TOFU's public format, and resolve benchmark names.

A TOFU-format file is a JSON list or JSON-lines of rows with ``question`` and ``answer`` and, optionally,
``paraphrased_answer``, ``perturbed_answer`` (a list), ``paraphrased_question`` and ``value``.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..utils import ObliviateError
from .people import FORGET_SPLITS, PeopleConfig, generate_people
from .records import Benchmark, QARecord

BUILTIN_BENCHMARKS = {
    "people": "the fictitious-people benchmark, forget10 (100 people, 6 facts each; default)",
    "micro": "a 20-person, 3-fact version for tests and smoke runs",
}


def read_rows(path: str | Path) -> list[dict]:
    """Read a JSON list or JSON-lines file of objects; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ObliviateError(f"data file {path} does not exist")
    text = path.read_text(encoding="utf-8").strip()
    if not text:
        raise ObliviateError(f"data file {path} is empty; expected JSON or JSON-lines rows")
    if text.startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as e:
            raise ObliviateError(f"data file {path} is not valid JSON: {e.msg} at line {e.lineno}") from None
    else:
        rows = []
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ObliviateError(f"data file {path} line {i} is not valid JSON: {e.msg}") from None
    if not rows:
        raise ObliviateError(f"data file {path} holds no rows")
    for i, r in enumerate(rows, 1):
        if not isinstance(r, dict):
            raise ObliviateError(f"data file {path} row {i} is {type(r).__name__}, expected an object")
    return rows


def load_qa_file(path: str | Path) -> list[QARecord]:
    """Read TOFU-format QA rows into :class:`QARecord` objects, checking every field."""
    path = Path(path)
    records = []
    for i, row in enumerate(read_rows(path), 1):
        for key in ("question", "answer"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise ObliviateError(f"data file {path} row {i}: missing or empty field {key!r}")
        pert = row.get("perturbed_answer", [])
        if isinstance(pert, str):
            pert = [pert]
        if not isinstance(pert, list) or not all(isinstance(p, str) for p in pert):
            raise ObliviateError(f"data file {path} row {i}: field 'perturbed_answer' must be a list of strings")
        for key in ("paraphrased_answer", "paraphrased_question", "value"):
            if key in row and not isinstance(row[key], str):
                raise ObliviateError(f"data file {path} row {i}: field {key!r} must be a string")
        records.append(QARecord(
            question=row["question"], answer=row["answer"], paraphrased_answer=row.get("paraphrased_answer"),
            perturbed_answers=tuple(pert), paraphrased_question=row.get("paraphrased_question"),
            value=row.get("value"), subject=row.get("subject"), attribute=row.get("attribute"),
            id=str(row.get("id", f"{path.stem}-{i}"))))
    counts = {len(r.perturbed_answers) for r in records if r.perturbed_answers}
    if len(counts) > 1:  # truth ratios over different numbers of options are not comparable (TOFU uses a fixed 5)
        first = next(r for r in records if r.perturbed_answers)
        odd = next(i for i, r in enumerate(records, 1)
                   if r.perturbed_answers and len(r.perturbed_answers) != len(first.perturbed_answers))
        raise ObliviateError(f"data file {path} row {odd}: {len(records[odd - 1].perturbed_answers)} perturbed answers, "
                             f"but earlier rows have {len(first.perturbed_answers)}; every row needs the same number")
    return records


def benchmark_from_files(data: str | Path, forget: str | Path, holdout: str | Path | None = None,
                         world: str | Path | None = None, neighbours: str | Path | None = None) -> Benchmark:
    """A benchmark from a user's fine-tuning data and the forget request that names part of it.

    ``retain`` is ``data`` minus the forget rows (matched by question). A forget file that matches no
    question in ``data`` is an error: it would train an oracle identical to the target.
    """
    all_rows, forget_rows = load_qa_file(data), load_qa_file(forget)
    forget_qs = {r.question.strip() for r in forget_rows}
    retain = [r for r in all_rows if r.question.strip() not in forget_qs]
    matched = len(all_rows) - len(retain)
    if matched == 0:
        raise ObliviateError(f"forget set {forget} overlaps nothing in data {data}: "
                             "expected its questions to appear in the training data")
    if not retain:
        raise ObliviateError(f"forget set {forget} covers all of data {data}: nothing is left to retain")
    return Benchmark(
        name=Path(data).stem, forget=forget_rows, retain=retain,
        holdout=load_qa_file(holdout) if holdout else [], world=load_qa_file(world) if world else [],
        neighbours=load_qa_file(neighbours) if neighbours else [],
        meta={"data": str(data), "forget": str(forget), "forget_matched": matched})


def load_benchmark(name: str = "people", seed: int = 0, **overrides) -> Benchmark:
    """Resolve a benchmark by name.

    - ``people`` / ``people:forget05`` etc.: the built-in fictitious-people benchmark;
    - ``micro``: a small version for tests;
    - a directory holding ``forget.json(l)`` and ``retain.json(l)`` (plus optional ``holdout``, ``world``,
      ``neighbours``) in TOFU's format.
    """
    base, _, split = name.partition(":")
    if base in ("people", "micro"):
        cfg = PeopleConfig(seed=seed)
        if base == "micro":
            cfg = PeopleConfig(n_people=20, n_holdout=4, n_attributes=3, n_cities=8, n_countries=3,
                               n_world=8, seed=seed)
        if split:
            if split not in FORGET_SPLITS:
                raise ObliviateError(f"unknown forget split {split!r} in benchmark {name!r}; "
                                     f"expected one of {sorted(FORGET_SPLITS)}")
            cfg.forget_split = split
        for k, v in overrides.items():
            if not hasattr(cfg, k):
                raise ObliviateError(f"unknown benchmark option {k!r}")
            setattr(cfg, k, v)
        return generate_people(cfg)
    path = Path(name)
    if path.is_dir():
        def find(stem: str, required: bool):
            for ext in (".jsonl", ".json"):
                if (path / f"{stem}{ext}").is_file():
                    return path / f"{stem}{ext}"
            if required:
                raise ObliviateError(f"benchmark directory {path} has no {stem}.jsonl or {stem}.json")
            return None
        parts = {s: find(s, s in ("forget", "retain")) for s in ("forget", "retain", "holdout", "world", "neighbours")}
        loaded = {s: load_qa_file(p) if p else [] for s, p in parts.items()}
        return Benchmark(name=path.name, **loaded, meta={"directory": str(path)})
    raise ObliviateError(f"unknown benchmark {name!r}; expected one of {sorted(BUILTIN_BENCHMARKS)} "
                         "(optionally with :forget01/:forget05/:forget10) or a directory of TOFU-format files")
