"""Load QA facts from files in TOFU's public format, and resolve benchmark names.

A TOFU-format file is a JSON list or JSON-lines of rows with ``question`` and ``answer`` and, optionally,
``paraphrased_answer``, ``perturbed_answer`` (a list), ``paraphrased_question``, ``value`` and ``subject``.

**Subjects.** Every interval obliviate reports resamples *subjects* (people, authors), not facts, and relearning's
held-out folds split by subject. A row's ``subject`` field names it. TOFU's files carry no such field: they hold
20 consecutive rows per fictitious author, so ``group="tofu"`` (``--group tofu``) gives rows 1-20 one subject,
rows 21-40 the next, and so on. ``group`` rules (:data:`GROUP_RULES`) apply to the rows without a ``subject``:
``tofu``, ``rows:N`` (N consecutive rows each), ``field:NAME`` (the value of another field), ``fact`` (each row its
own subject: a bootstrap over facts, stated as such). The rule groups the request's own files (data, forget,
retain, holdout, calibration); world and neighbour facts stay one row each. Without a rule and without
``subject`` fields, rows are their own subjects and the benchmark says so in ``meta["warnings"]`` (the CLI
prints it).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from obliviate.core.options import from_dict
from obliviate.core.utils import ObliviateError
from obliviate.data.people import FORGET_SPLITS, PeopleConfig, generate_people
from obliviate.data.records import Benchmark, QARecord

# The micro benchmark: the people generator at test size.
MICRO = {"n_people": 20, "n_holdout": 4, "n_calibration": 0, "n_attributes": 3, "n_cities": 8, "n_countries": 3, "n_world": 8}
GROUP_RULES = {
    "tofu": "TOFU's layout: 20 consecutive rows per author",
    "rows:N": "N consecutive rows per subject",
    "field:NAME": "the subject is the row's NAME field",
    "fact": "each row is its own subject (intervals over facts)",
}
TOFU_ROWS_PER_AUTHOR = 20
BUILTIN_BENCHMARKS = {
    "people": "the fictitious-people benchmark, forget10 (100 people, 6 facts each; default)",
    "micro": "a 20-person, 3-fact version for tests and smoke runs",
}


def read_rows(path: str | Path) -> list[dict]:
    """Read a JSON list or JSON-lines file of objects; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ObliviateError(f"data file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError as e:
        raise ObliviateError(f"data file {path} is not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start}); "
                             "save it as UTF-8") from None
    except OSError as e:
        raise ObliviateError(f"data file {path} cannot be read: {e.strerror}") from None
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


def _parse_group(group: str | None, where: str) -> tuple[str, object] | None:
    """``(kind, argument)`` of a grouping rule, or None; errors name the option."""
    if group is None:
        return None
    if group in ("tofu", "fact"):
        return ("rows", TOFU_ROWS_PER_AUTHOR) if group == "tofu" else ("fact", None)
    kind, _, arg = group.partition(":")
    if kind == "rows" and arg.isdigit() and int(arg) > 0:
        return "rows", int(arg)
    if kind == "field" and arg:
        return "field", arg
    raise ObliviateError(f"{where}: unknown grouping {group!r}; expected one of {', '.join(GROUP_RULES)}")


def _subject_of(row: dict, i: int, path: Path, rule: tuple[str, object] | None) -> str | None:
    """The subject of row ``i`` (1-based): its ``subject`` field, else the grouping rule's, else None."""
    if row.get("subject") is not None:
        return str(row["subject"])
    if rule is None or rule[0] == "fact":
        return None
    if rule[0] == "rows":
        n = rule[1]
        return f"{path.stem} rows {(i - 1) // n * n + 1}-{(i - 1) // n * n + n}"
    if row.get(rule[1]) in (None, ""):
        raise ObliviateError(f"data file {path} row {i}: missing field {rule[1]!r}, which --group field:{rule[1]} "
                             "takes the subject from")
    return str(row[rule[1]])


def load_qa_file(path: str | Path, group: str | None = None) -> list[QARecord]:
    """Read TOFU-format QA rows into :class:`QARecord` objects, checking every field; ``group`` (a
    :data:`GROUP_RULES` rule) gives subjects to rows without a ``subject`` field."""
    path = Path(path)
    rule = _parse_group(group, "--group")
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
            value=row.get("value"), subject=_subject_of(row, i, path, rule), attribute=row.get("attribute"),
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
                         world: str | Path | None = None, neighbours: str | Path | None = None,
                         drop_unmatched: bool = False, calibration: str | Path | None = None,
                         group: str | None = None) -> Benchmark:
    """A benchmark from a user's fine-tuning data and the forget request that names part of it.

    A forget request must be a subset of the data: each forget row is matched to a data row by its question,
    and their answers must agree. Rows that match no question in ``data`` are an error listing them (with
    ``drop_unmatched``, they are dropped and counted in ``meta``): otherwise the target would be trained on
    facts the user never trained on. ``retain`` is ``data`` minus the matched rows. ``group`` gives subjects to
    rows without one (see the module docstring); a forget row without a subject takes its data row's.
    """
    all_rows, forget_rows = load_qa_file(data, group), load_qa_file(forget, group)
    by_q = {r.question.strip(): r for r in all_rows}
    unmatched = [(i, r) for i, r in enumerate(forget_rows, 1) if r.question.strip() not in by_q]
    if unmatched and len(unmatched) == len(forget_rows):
        raise ObliviateError(f"forget set {forget} overlaps nothing in data {data}: "
                             "expected its questions to appear in the training data")
    if unmatched and not drop_unmatched:
        shown = "; ".join(f"row {i}: {r.question[:60]!r}" for i, r in unmatched[:3])
        more = f" and {len(unmatched) - 3} more" if len(unmatched) > 3 else ""
        raise ObliviateError(f"forget set {forget}: {len(unmatched)} row(s) match no question in data {data} "
                             f"({shown}{more}); a forget request must be part of the training data "
                             "(--drop-unmatched drops them)")
    forget_rows = [r for r in forget_rows if r.question.strip() in by_q]
    for i, r in enumerate(forget_rows, 1):
        trained = by_q[r.question.strip()]
        if trained.answer.strip() != r.answer.strip():
            raise ObliviateError(f"forget set {forget} row {i}: the answer differs from the one in data {data} for "
                                 f"the question {r.question[:60]!r}")
    # a forget row's subject is its own field's, else the one its data row has (the data file holds the layout)
    named = {str(row["question"]).strip() for row in read_rows(forget) if row.get("subject") is not None}
    forget_rows = [r if r.question.strip() in named else dataclasses.replace(r, subject=by_q[r.question.strip()].subject)
                   for r in forget_rows]
    forget_qs = {r.question.strip() for r in forget_rows}
    retain = [r for r in all_rows if r.question.strip() not in forget_qs]
    if not retain:
        raise ObliviateError(f"forget set {forget} covers all of data {data}: nothing is left to retain")
    paths = {"data": data, "forget": forget, "holdout": holdout, "world": world, "neighbours": neighbours,
             "calibration": calibration}
    source = {"kind": "files", **{k: str(Path(v).resolve()) for k, v in paths.items() if v},
              "drop_unmatched": drop_unmatched, **({"group": group} if group else {})}
    bench = Benchmark(
        name=f"{Path(data).stem}-{Path(forget).stem}", forget=forget_rows, retain=retain,
        holdout=load_qa_file(holdout, group) if holdout else [], world=load_qa_file(world) if world else [],
        neighbours=load_qa_file(neighbours) if neighbours else [], source=source,
        calibration=_calibration(calibration, all_rows, holdout, group),
        meta={"data": str(data), "forget": str(forget), "forget_matched": len(forget_rows),
              "forget_dropped": len(unmatched)})
    return _check_grouping(bench, group)


def _check_grouping(bench: Benchmark, group: str | None) -> Benchmark:
    """Record the grouping rule in ``meta``, and warnings: when the forget rows have no subjects at all (every
    interval is then a bootstrap over facts, too narrow when facts of one person move together), and when a split
    holds the same question and answer more than once (trained on, and counted, that many times)."""
    bench.meta["grouping"] = group or "subject field"
    for split, recs in bench.qa_splits().items():
        seen: dict[tuple[str, str], int] = {}
        for r in recs:
            key = (r.question.strip(), r.answer.strip())
            seen[key] = seen.get(key, 0) + 1
        extra = sum(n - 1 for n in seen.values())
        if extra:
            bench.meta.setdefault("warnings", []).append(
                f"benchmark {bench.name}: {extra} duplicate row(s) in {split} (the same question and answer again); "
                f"each copy is trained on and counted as another fact: remove them unless that is meant")
    if group != "fact" and bench.forget and all(r.subject is None for r in bench.forget):
        bench.meta.setdefault("warnings", []).append(
            f"benchmark {bench.name}: its rows name no subject, so every interval resamples facts, not people (too "
            "narrow when one person's facts move together) and relearn's held-out folds split facts; add a 'subject' "
            "field or name the grouping with --group (tofu: TOFU's 20 rows per author; rows:N; field:NAME)")
    return bench


def _calibration(path, trained: list[QARecord], holdout, group: str | None = None) -> list[QARecord]:
    """Calibration rows from ``path`` (None: none). They must be facts the model never saw: a row whose question is
    in the training data, or in the holdout file (which evaluation scores), is an error naming the file and row."""
    if not path:
        return []
    rows = load_qa_file(path, group)
    taken = {r.question.strip(): "the training data" for r in trained}
    if holdout:
        taken |= {r.question.strip(): f"the holdout file {holdout}" for r in load_qa_file(holdout)}
    for i, r in enumerate(rows, 1):
        if r.question.strip() in taken:
            raise ObliviateError(f"calibration file {path} row {i}: its question is in {taken[r.question.strip()]}; "
                                 "calibration facts must be ones the model never saw and evaluation never scores")
    return rows


def load_benchmark(name: str = "people", seed: int = 0, group: str | None = None, **overrides) -> Benchmark:
    """Resolve a benchmark by name.

    - ``people`` / ``people:forget05`` etc.: the built-in fictitious-people benchmark;
    - ``micro``: a small version for tests;
    - a directory holding ``forget.json(l)`` and ``retain.json(l)`` (plus optional ``holdout``, ``world``,
      ``neighbours``) in TOFU's format; ``group`` gives subjects to rows without one (module docstring).
    """
    base, _, split = name.partition(":")
    if base in ("people", "micro"):
        if group:
            raise ObliviateError(f"--group applies to data files; the built-in benchmark {base} names its people")
        fields = dict(MICRO) if base == "micro" else {}
        if split:
            if split not in FORGET_SPLITS:
                raise ObliviateError(f"unknown forget split {split!r} in benchmark {name!r}; "
                                     f"expected one of {sorted(FORGET_SPLITS)}")
            fields["forget_split"] = split
        cfg = from_dict(PeopleConfig, {**fields, **overrides, "seed": seed}, f"benchmark {base}")
        bench = generate_people(cfg)
        label = f"{base}-{cfg.forget_split}" + (f"-seed{seed}" if seed else "")
        if overrides:
            label += "(" + ",".join(f"{k}={v}" for k, v in sorted(overrides.items())) + ")"
        return dataclasses.replace(bench, name=label, source={"kind": "builtin", "spec": f"{base}:{cfg.forget_split}",
                                                              "seed": seed, "overrides": dict(sorted(overrides.items()))})
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
        # world and neighbour facts are about other entities, one row each: the rule groups the request's people
        loaded = {s: load_qa_file(p, None if s in ("world", "neighbours") else group) if p else []
                  for s, p in parts.items()}
        cal = find("calibration", False)
        bench = Benchmark(name=path.resolve().name, **loaded, meta={"directory": str(path)},
                          calibration=_calibration(cal, loaded["forget"] + loaded["retain"], parts["holdout"], group),
                          source={"kind": "directory", "path": str(path.resolve()), **({"group": group} if group else {})})
        return _check_grouping(bench, group)
    raise ObliviateError(f"unknown benchmark {name!r}; expected one of {sorted(BUILTIN_BENCHMARKS)} "
                         "(optionally with :forget01/:forget05/:forget10) or a directory of TOFU-format files")


def rebuild(source: dict) -> Benchmark:
    """The benchmark a :attr:`Benchmark.source` describes (as recorded in a model folder)."""
    kind = source.get("kind")
    if kind == "builtin":
        return load_benchmark(source["spec"], seed=source.get("seed", 0), **source.get("overrides", {}))
    if kind == "directory":
        return load_benchmark(source["path"], group=source.get("group"))
    if kind == "files":
        return benchmark_from_files(source["data"], source["forget"], source.get("holdout"), source.get("world"),
                                    source.get("neighbours"), drop_unmatched=source.get("drop_unmatched", False),
                                    calibration=source.get("calibration"), group=source.get("group"))
    raise ObliviateError(f"cannot rebuild a benchmark from the record {source!r}")


def recorded_benchmark(model: str | Path | None) -> dict | None:
    """The benchmark record (:meth:`Benchmark.record`) stored in a model folder's ``obliviate.json``, if any."""
    if model is None:
        return None
    meta = Path(str(model)).expanduser() / "obliviate.json"
    if not meta.is_file():
        return None
    try:
        rec = json.loads(meta.read_text(encoding="utf-8")).get("benchmark")
    except (OSError, ValueError, AttributeError):
        return None
    return rec if isinstance(rec, dict) and "family" in rec and "source" in rec else None


def resolve_benchmark(explicit: Benchmark | None, models: list[tuple[str, str | Path | None]]) -> Benchmark:
    """The benchmark a command runs on, given the one the user named (or None) and the ``(role, path)`` of each
    model it loads. Each model folder records the benchmark it was trained (or unlearned) on:

    - named explicitly: every recorded benchmark must hold the same data (same :meth:`Benchmark.family`; another
      forget split of it is fine), else an error naming both;
    - not named: the first record is rebuilt (and must still match its fingerprint: data files may have
      changed since), and the others must agree with it;
    - neither: an error asking for one.
    """
    records = [(role, path, rec) for role, path in models if (rec := recorded_benchmark(path))]
    if explicit is None:
        if not records:
            roles = ", ".join(f"{role} {path}" for role, path in models) or "the model"
            raise ObliviateError(f"{roles} records no benchmark; name one with --benchmark (or --data and --forget)")
        role, path, rec = records[0]
        bench = rebuild(rec["source"])
        if bench.fingerprint() != rec["fingerprint"]:
            raise ObliviateError(f"the benchmark {role} {path} was trained on ({rec['name']}) has changed since: its "
                                 f"files no longer give the same facts; name the benchmark explicitly")
    else:
        bench = explicit
    for role, path, rec in records:
        if rec["family"] != bench.family():
            raise ObliviateError(f"{role} {path} was trained on benchmark {rec['name']}, not {bench.name}; use it "
                                 f"with the data it was trained on (leave --benchmark out to use {rec['name']})")
    return bench
