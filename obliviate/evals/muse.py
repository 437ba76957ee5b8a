"""MUSE's six-way evaluation on text corpora (Shi et al., 2024, "MUSE: Machine Unlearning Six-Way Evaluation for
Language Models", arXiv:2407.06460, Sec. 3).

    from obliviate.evals.muse import load_muse, evaluate_muse
    data = load_muse("path/to/muse/news")          # MUSE's public layout, JSON or JSON lines
    result = evaluate_muse(model, tok, data, oracle=evaluate_muse(oracle, tok, data))

Files (relative to the folder; each JSON list or JSON lines):

* ``verbmem/forget.json``: rows ``prompt``, ``gt`` (C1, verbatim memorisation);
* ``knowmem/forget_qa.json``, ``knowmem/retain_qa.json``: rows ``question``, ``answer`` (C2 and C4);
* ``privleak/forget.json``, ``privleak/holdout.json`` (and optionally ``privleak/retain.json``): texts, as
  strings or rows with ``text`` (C3).

C1 VerbMem: ROUGE-L F1 between the model's 128-token greedy continuation of each prompt and the true one.
C2 KnowMem (forget) and C4 utility (KnowMem on retain): ROUGE-L F1 of the greedy answer to each question.
C3 PrivLeak: (AUC - AUC_oracle) / AUC_oracle × 100 with Min-K% (k = 0.4), forget vs holdout texts.
C5 scalability and C6 sustainability: :func:`scalability` (the same method at growing forget sets) and
:func:`sustainability` (sequential requests, metrics after each).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..data.format import Example, format_prompt
from ..data.loaders import read_rows
from ..utils import ObliviateError
from .privacy import mia_auc, min_k_score, privleak
from .scoring import Scorer

VERBMEM_TOKENS = 128  # MUSE's continuation length


@dataclass
class MuseData:
    verbmem: list[tuple[str, str]]  # (prompt, true continuation)
    knowmem_forget: list[tuple[str, str]]  # (question, answer)
    knowmem_retain: list[tuple[str, str]]
    privleak: dict[str, list[str]] = field(default_factory=dict)  # forget / holdout (/ retain) texts
    name: str = "muse"

    @classmethod
    def from_benchmark(cls, bench, retain_size: int = 100) -> "MuseData":
        """MUSE's views of a QA benchmark with biographies (the built-in ``people``): VerbMem continues each
        forget biography from its first sentence; KnowMem asks the forget / retain questions; PrivLeak scores
        the biographies and "question answer" texts of the forget and holdout people."""
        verb = []
        for t in bench.texts.get("forget", []):
            head, sep, rest = t.text.partition(". ")
            if sep and rest.strip():
                verb.append((head + ".", rest))
        if not verb:
            raise ObliviateError(f"benchmark {bench.name}: no forget passages to build MUSE's VerbMem from")

        def texts(split):
            return [t.text for t in bench.texts.get(split, [])] + [f"{r.question} {r.answer}"
                                                                     for r in getattr(bench, split)]
        return cls(verbmem=verb, knowmem_forget=[(r.question, r.answer) for r in bench.forget],
                   knowmem_retain=[(r.question, r.answer) for r in bench.retain[:retain_size]],
                   privleak={"forget": texts("forget"), "holdout": texts("holdout")}, name=f"{bench.name}-muse")

    def write(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write the data in MUSE's public layout (JSON lists), atomically (``overwrite``: replace an earlier
        folder obliviate wrote)."""
        from ..outputs import atomic_dir

        files = {"verbmem/forget.json": [{"prompt": p, "gt": g} for p, g in self.verbmem],
                 "knowmem/forget_qa.json": [{"question": q, "answer": a} for q, a in self.knowmem_forget],
                 "knowmem/retain_qa.json": [{"question": q, "answer": a} for q, a in self.knowmem_retain],
                 **{f"privleak/{k}.json": v for k, v in self.privleak.items()}}
        with atomic_dir(folder, overwrite=overwrite) as tmp:
            for rel, rows in files.items():
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                (tmp / rel).write_text(json.dumps(rows, indent=1), encoding="utf-8")
        return Path(folder)


def _rows(path: Path, fields: tuple[str, ...]) -> list[tuple[str, ...]]:
    out = []
    for i, r in enumerate(read_rows(path), 1):
        for f in fields:
            if not isinstance(r.get(f), str) or not r[f].strip():
                raise ObliviateError(f"data file {path} row {i}: missing or empty field {f!r}")
        out.append(tuple(r[f] for f in fields))
    return out


def _texts(path: Path) -> list[str]:
    """A JSON list of strings, or rows with ``text``."""
    if path.is_file() and path.read_text(encoding="utf-8").lstrip().startswith("["):
        try:
            items = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ObliviateError(f"data file {path} is not valid JSON: {e.msg} at line {e.lineno}") from None
        if items and all(isinstance(x, str) for x in items):
            if not all(x.strip() for x in items):
                raise ObliviateError(f"data file {path}: empty text at row {[x.strip() for x in items].index('') + 1}")
            return items
    return [t for (t,) in _rows(path, ("text",))]


def load_muse(folder: str | Path) -> MuseData:
    """Read a MUSE corpus folder (see the module docstring); errors name the file, the row and the field."""
    root = Path(folder)
    if not root.is_dir():
        raise ObliviateError(f"MUSE folder {root} does not exist")

    def need(rel: str) -> Path:
        p = root / rel
        if not p.is_file() and p.with_suffix(".jsonl").is_file():
            p = p.with_suffix(".jsonl")
        if not p.is_file():
            raise ObliviateError(f"MUSE folder {root} lacks {rel} (or {Path(rel).with_suffix('.jsonl')})")
        return p

    priv = {"forget": _texts(need("privleak/forget.json")), "holdout": _texts(need("privleak/holdout.json"))}
    if (root / "privleak" / "retain.json").is_file():
        priv["retain"] = _texts(root / "privleak" / "retain.json")
    return MuseData(verbmem=_rows(need("verbmem/forget.json"), ("prompt", "gt")),
                    knowmem_forget=_rows(need("knowmem/forget_qa.json"), ("question", "answer")),
                    knowmem_retain=_rows(need("knowmem/retain_qa.json"), ("question", "answer")),
                    privleak=priv, name=root.name)


def rouge_l_f1(predictions: list[str], references: list[str]) -> list[float]:
    """ROUGE-L F1 (``rouge-score``, with stemming), MUSE's score for VerbMem and KnowMem."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return [scorer.score(ref, pred)["rougeL"].fmeasure for pred, ref in zip(predictions, references)]


@dataclass
class MuseResult:
    metrics: dict[str, float | None]
    rows: list[dict]
    auc: float | None = None
    notes: list[str] = field(default_factory=list)


def evaluate_muse(model, tokenizer, data: MuseData, oracle: MuseResult | None = None, batch_size: int = 16,
                  max_new_tokens: int = 32, scorer: Scorer | None = None) -> MuseResult:
    """C1-C4 on ``data``; PrivLeak needs the oracle's result (else it is None, with a note)."""
    scorer = scorer or Scorer(model, tokenizer, batch_size=batch_size)
    rows, metrics, notes = [], {}, []

    conts = scorer.generate([p for p, _ in data.verbmem], VERBMEM_TOKENS)
    f1 = rouge_l_f1(conts, [gt for _, gt in data.verbmem])
    rows += [{"split": "verbmem_forget", "prompt": p, "gt": gt, "generation": c, "rougeL_f1": s}
             for (p, gt), c, s in zip(data.verbmem, conts, f1)]
    metrics["muse_verbmem_forget"] = float(np.mean(f1))

    for split, qa in (("forget", data.knowmem_forget), ("retain", data.knowmem_retain)):
        answers = scorer.generate([format_prompt(tokenizer, q) for q, _ in qa], max_new_tokens)
        f1 = rouge_l_f1(answers, [a for _, a in qa])
        rows += [{"split": f"knowmem_{split}", "question": q, "answer": a, "generation": g, "rougeL_f1": s}
                 for (q, a), g, s in zip(qa, answers, f1)]
        metrics[f"muse_knowmem_{split}"] = float(np.mean(f1))
    metrics["muse_utility"] = metrics["muse_knowmem_retain"]

    scores = {}
    for split in ("forget", "holdout"):
        ts = scorer.score([Example("", t) for t in data.privleak[split]])
        scores[split] = [min_k_score(x) for x in ts]
        rows += [{"split": f"privleak_{split}", "text": t[:200], "mia_min_k": s}
                 for t, s in zip(data.privleak[split], scores[split])]
    auc = mia_auc(scores["forget"], scores["holdout"])
    metrics["muse_mia_min_k_auc"] = auc
    if oracle is None or oracle.auc is None:
        metrics["muse_privleak"] = None
        notes.append("no oracle given: muse_privleak needs the oracle's Min-K% AUC and is not computed")
    else:
        metrics["muse_privleak"] = privleak(auc, oracle.auc)
    return MuseResult(metrics=metrics, rows=rows, auc=auc, notes=notes)


def scalability(model, tokenizer, unlearn_fn: Callable, forget_sets: list, evaluate_fn: Callable) -> list[dict]:
    """C5: unlearn the *same* starting model with forget sets of growing size; ``unlearn_fn(model, forget)``
    returns the unlearned model, ``evaluate_fn(model, forget)`` a metrics dict. One row per size."""
    rows = []
    for forget in forget_sets:
        if not len(forget):
            raise ObliviateError("scalability: a forget set is empty")
        rows.append({"forget_size": len(forget), **evaluate_fn(unlearn_fn(model, forget), forget)})
    return rows


def sustainability(model, tokenizer, unlearn_fn: Callable, requests: list, evaluate_fn: Callable) -> list[dict]:
    """C6: sequential unlearning requests, each applied to the previous request's result; metrics after each
    (``evaluate_fn(model, request)``). Row 0 is the model before any request, evaluated with the first request."""
    if not requests:
        raise ObliviateError("sustainability: no requests")
    rows = [{"request": 0, "forget_size": 0, **evaluate_fn(model, requests[0])}]
    current = model
    for k, forget in enumerate(requests, 1):
        if not len(forget):
            raise ObliviateError(f"sustainability: request {k} is empty")
        current = unlearn_fn(current, forget)
        rows.append({"request": k, "forget_size": len(forget), **evaluate_fn(current, forget)})
    return rows
