"""MUSE's six-way evaluation on text corpora (Shi et al., 2024, "MUSE: Machine Unlearning Six-Way Evaluation for
Language Models", arXiv:2407.06460, Sec. 3), computed as MUSE's own code does (swj0419/muse_bench, ``metrics/``).

    from obliviate.evals.muse import load_muse, evaluate_muse
    data = load_muse("path/to/muse/news", limit=100)   # MUSE's public layout, JSON or JSON lines
    result = evaluate_muse(model, tok, data, oracle=evaluate_muse(oracle, tok, data))

Files (relative to the folder; each a JSON list or JSON lines; MUSE's own names are accepted):

* ``verbmem/forget.json``: rows ``prompt``, ``gt`` (C1, verbatim memorisation);
* ``knowmem/forget_qa.json`` and ``knowmem/retain_qa.json`` (or MUSE News's ``retain2_qa.json``): rows
  ``question``, ``answer`` (C2 and C4), each optionally with its few-shot file ``*_qa_icl.json``;
* ``privleak/forget.json``, ``privleak/holdout.json`` (and optionally ``privleak/retain.json``): texts, as
  strings or rows with ``text`` (C3).

C1 VerbMem: ROUGE-L F1 (no stemming) between the model's 128-token greedy continuation of each prompt (plain
text with the tokenizer's special tokens, no chat template) and the true continuation cut to 128 tokens.
C2 KnowMem (forget) and C4 utility (KnowMem on retain): ROUGE-L F1 of the greedy answer (32 tokens) to
``Question: {q}\nAnswer: `` after the few-shot examples ``Question: {q}\nAnswer: {a}\n\n``, cut before
"\n\n", "\nQuestion" or "Question:".
C3 PrivLeak: ((1 - AUC) - (1 - AUC_oracle)) / (1 - AUC_oracle) × 100 with Min-40% over the text tokens (texts cut
at 2,048 tokens, MUSE's length), forget (members) vs holdout; MUSE's AUC is 1 - AUC here (see
:func:`obliviate.evals.privacy.privleak`). MUSE divides by a published retrained model's AUC; here the oracle
is the retrained model.
C5 scalability and C6 sustainability: :func:`scalability` (the same method at growing forget sets) and
:func:`sustainability` (sequential requests, metrics after each).

Departures, stated: the Min-K% fraction keeps at least one token on texts shorter than three tokens (MUSE's
``int(0.4 n)`` would average nothing); generation is batched with left padding (MUSE generates one prompt at a
time; greedy decoding gives the same tokens up to floating-point ties).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from obliviate.data.format import Example
from obliviate.data.loaders import read_rows
from obliviate.core.utils import ObliviateError
from obliviate.evals.privacy import mia_auc, min_k_score, privleak
from obliviate.evals.scoring import Scorer

VERBMEM_TOKENS = 128  # MUSE's continuation length (verbmem_max_new_tokens)
KNOWMEM_TOKENS = 32  # MUSE's answer length (knowmem_max_new_tokens)
KNOWMEM_STOP = ("\n\n", "\nQuestion", "Question:")  # MUSE's knowmem cut
TEXT_TOKENS = 2048  # MUSE's max_len: PrivLeak texts are scored up to this many tokens


@dataclass
class MuseData:
    verbmem: list[tuple[str, str]]  # (prompt, true continuation)
    knowmem_forget: list[tuple[str, str]]  # (question, answer)
    knowmem_retain: list[tuple[str, str]]
    privleak: dict[str, list[str]] = field(default_factory=dict)  # forget / holdout (/ retain) texts
    name: str = "muse"
    icl_forget: list[tuple[str, str]] = field(default_factory=list)  # KnowMem few-shot examples
    icl_retain: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def from_benchmark(cls, bench, retain_size: int = 100, shots: int = 0) -> "MuseData":
        """MUSE's views of a QA benchmark with biographies (the built-in ``people``): VerbMem continues each
        forget biography from its first sentence; KnowMem asks the forget / retain questions, with ``shots``
        retain facts that are not asked as the few-shot examples; PrivLeak scores the biographies and
        "question answer" texts of the forget and holdout people. ``shots`` is 0 by default: the built-in models
        are trained from scratch and cannot learn in context (given MUSE's three examples, micro copies their
        answers), so their KnowMem is asked zero-shot; MUSE's public files bring their own few-shot examples."""
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
        icl = [(r.question, r.answer) for r in bench.retain[-shots:]] if shots else []  # never asked themselves
        asked = bench.retain[:min(retain_size, len(bench.retain) - len(icl))]
        return cls(verbmem=verb, knowmem_forget=[(r.question, r.answer) for r in bench.forget],
                   knowmem_retain=[(r.question, r.answer) for r in asked],
                   privleak={"forget": texts("forget"), "holdout": texts("holdout")}, name=f"{bench.name}-muse",
                   icl_forget=icl, icl_retain=icl)

    def write(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write the data in MUSE's public layout (JSON lists), atomically (``overwrite``: replace an earlier
        folder obliviate wrote)."""
        from obliviate.core.outputs import atomic_dir

        files = {"verbmem/forget.json": [{"prompt": p, "gt": g} for p, g in self.verbmem],
                 "knowmem/forget_qa.json": [{"question": q, "answer": a} for q, a in self.knowmem_forget],
                 "knowmem/retain_qa.json": [{"question": q, "answer": a} for q, a in self.knowmem_retain],
                 **{f"privleak/{k}.json": v for k, v in self.privleak.items()}}
        if self.icl_forget:
            files["knowmem/forget_qa_icl.json"] = [{"question": q, "answer": a} for q, a in self.icl_forget]
        if self.icl_retain:
            files["knowmem/retain_qa_icl.json"] = [{"question": q, "answer": a} for q, a in self.icl_retain]
        with atomic_dir(folder, overwrite=overwrite) as tmp:
            for rel, rows in files.items():
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                (tmp / rel).write_text(json.dumps(rows, indent=1), encoding="utf-8")
        return Path(folder)


def _rows(path: Path, fields: tuple[str, ...], limit: int = 0) -> list[tuple[str, ...]]:
    out = []
    for i, r in enumerate(read_rows(path), 1):
        for f in fields:
            if not isinstance(r.get(f), str) or not r[f].strip():
                raise ObliviateError(f"data file {path} row {i}: missing or empty field {f!r}")
        out.append(tuple(r[f] for f in fields))
        if limit and len(out) == limit:
            break
    return out


def _texts(path: Path, limit: int = 0) -> list[str]:
    """A JSON list of strings, or rows with ``text``."""
    if path.is_file() and path.read_text(encoding="utf-8").lstrip().startswith("["):
        try:
            items = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ObliviateError(f"data file {path} is not valid JSON: {e.msg} at line {e.lineno}") from None
        if items and all(isinstance(x, str) for x in items):
            if not all(x.strip() for x in items):
                raise ObliviateError(f"data file {path}: empty text at row {[x.strip() for x in items].index('') + 1}")
            return items[:limit] if limit else items
    return [t for (t,) in _rows(path, ("text",), limit)]


def load_muse(folder: str | Path, limit: int = 0) -> MuseData:
    """Read a MUSE corpus folder (see the module docstring); errors name the file, the row and the field.
    ``limit`` > 0 keeps the first ``limit`` rows of every file (a quick look before a full run)."""
    root = Path(folder)
    if not root.is_dir():
        raise ObliviateError(f"MUSE folder {root} does not exist")

    def find(*names: str, required: bool = True) -> Path | None:
        for rel in names:
            for p in (root / rel, (root / rel).with_suffix(".jsonl")):
                if p.is_file():
                    return p
        if required:
            raise ObliviateError(f"MUSE folder {root} lacks {' or '.join(names)} (or the .jsonl form)")
        return None

    priv = {"forget": _texts(find("privleak/forget.json"), limit), "holdout": _texts(find("privleak/holdout.json"), limit)}
    if (p := find("privleak/retain.json", required=False)) is not None:
        priv["retain"] = _texts(p, limit)
    retain_qa = find("knowmem/retain_qa.json", "knowmem/retain2_qa.json")
    icl = {k: find(f"knowmem/{k}_qa_icl.json", required=False) for k in ("forget", "retain")}
    if icl["retain"] is None and retain_qa.stem.startswith("retain2"):
        icl["retain"] = find("knowmem/retain2_qa_icl.json", required=False)
    return MuseData(verbmem=_rows(find("verbmem/forget.json"), ("prompt", "gt"), limit),
                    knowmem_forget=_rows(find("knowmem/forget_qa.json"), ("question", "answer"), limit),
                    knowmem_retain=_rows(retain_qa, ("question", "answer"), limit),
                    privleak=priv, name=root.name,
                    icl_forget=_rows(icl["forget"], ("question", "answer")) if icl["forget"] else [],
                    icl_retain=_rows(icl["retain"], ("question", "answer")) if icl["retain"] else [])


def rouge_l_f1(predictions: list[str], references: list[str]) -> list[float]:
    """ROUGE-L F1 (``rouge-score`` without stemming), MUSE's score for VerbMem and KnowMem (MUSE's
    ``RougeEvalLogger``; OpenUnlearning's MUSE port stems, and can differ on inflected words)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return [scorer.score(ref, pred)["rougeL"].fmeasure for pred, ref in zip(predictions, references)]


def knowmem_prompt(question: str, shots: list[tuple[str, str]]) -> str:
    """MUSE's KnowMem prompt: the few-shot examples, then the question."""
    return "".join(f"Question: {q}\nAnswer: {a}\n\n" for q, a in shots) + f"Question: {question}\nAnswer: "


def _cut(tokenizer, text: str, n: int) -> str:
    """The text's first ``n`` tokens (special tokens counted, as MUSE cuts VerbMem's ground truth), decoded."""
    ids = tokenizer(text, add_special_tokens=True)["input_ids"][:n]
    return tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True)


@dataclass
class MuseResult:
    metrics: dict[str, float | None]
    rows: list[dict]
    auc: float | None = None
    notes: list[str] = field(default_factory=list)
    ci: dict[str, list[float] | None] = field(default_factory=dict)
    scores: dict[str, list[float]] = field(default_factory=dict)  # per-text Min-K% scores, forget and holdout


def _in_steps(fn, items: list, bar, task, size: int) -> list:
    """``fn(items)`` a chunk at a time, advancing the progress display (with its ETA) after each chunk."""
    out = []
    for s in range(0, len(items), size):
        out += fn(items[s:s + size])
        bar.update(task, advance=len(items[s:s + size]))
    return out


def evaluate_muse(model, tokenizer, data: MuseData, oracle: MuseResult | None = None, batch_size: int = 16,
                  scorer: Scorer | None = None, bootstrap_n: int = 1000, seed: int = 0) -> MuseResult:
    """C1-C4 on ``data`` as MUSE computes them; PrivLeak needs the oracle's result (else it is None, with a
    note). Memory stays bounded on long texts (see :class:`Scorer`). Every metric gets a 95 % interval from a
    bootstrap over MUSE's rows (its texts and questions carry no subjects; the PrivLeak interval resamples the
    model's and the oracle's scores of the same texts together). A progress line with an ETA advances every
    ``batch_size`` rows."""
    from obliviate.engine.loop import progress
    from obliviate.evals.uncertainty import auc as fast_auc
    from obliviate.evals.uncertainty import bootstrap

    scorer = scorer or Scorer(model, tokenizer, batch_size=batch_size, max_length=TEXT_TOKENS)
    rows, metrics, notes = [], {}, []
    total = (len(data.verbmem) + len(data.knowmem_forget) + len(data.knowmem_retain)
             + sum(len(v) for v in data.privleak.values()))
    bar, task = progress("MUSE", total)
    per_row: dict[str, np.ndarray] = {}
    with bar:
        bar.update(task, info="verbmem")
        conts = _in_steps(lambda xs: scorer.generate(xs, VERBMEM_TOKENS, raw=True), [p for p, _ in data.verbmem],
                          bar, task, batch_size)
        gts = [_cut(tokenizer, gt, VERBMEM_TOKENS) for _, gt in data.verbmem]
        f1 = rouge_l_f1(conts, gts)
        rows += [{"split": "verbmem_forget", "prompt": p, "gt": gt, "generation": c, "rougeL_f1": s}
                 for (p, _), gt, c, s in zip(data.verbmem, gts, conts, f1)]
        metrics["muse_verbmem_forget"] = float(np.mean(f1))
        per_row["muse_verbmem_forget"] = np.asarray(f1, dtype=float)

        for split, qa, shots in (("forget", data.knowmem_forget, data.icl_forget),
                                 ("retain", data.knowmem_retain, data.icl_retain)):
            bar.update(task, info=f"knowmem {split}")
            answers = _in_steps(lambda xs: scorer.generate(xs, KNOWMEM_TOKENS, raw=True, stop=KNOWMEM_STOP),
                                [knowmem_prompt(q, shots) for q, _ in qa], bar, task, batch_size)
            f1 = rouge_l_f1(answers, [a for _, a in qa])
            rows += [{"split": f"knowmem_{split}", "question": q, "answer": a, "generation": g, "rougeL_f1": s}
                     for (q, a), g, s in zip(qa, answers, f1)]
            metrics[f"muse_knowmem_{split}"] = float(np.mean(f1))
            per_row[f"muse_knowmem_{split}"] = np.asarray(f1, dtype=float)
            if not shots:
                notes.append(f"knowmem_{split}: no few-shot file (knowmem/{split}_qa_icl.json), so the questions "
                             "are asked zero-shot; MUSE's published numbers use its few-shot examples")
        metrics["muse_utility"] = metrics["muse_knowmem_retain"]

        scores = {}
        for split in ("forget", "holdout"):
            bar.update(task, info=f"privleak {split}")
            ts = _in_steps(lambda xs: scorer.score([Example("", t) for t in xs]), data.privleak[split], bar, task,
                           batch_size)
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

    groups = {k: list(range(len(v))) for k, v in per_row.items()}
    groups |= {f"privleak_{k}": list(range(len(v))) for k, v in scores.items()}
    sc = {k: np.asarray(v, dtype=float) for k, v in scores.items()}
    stats = {k: (lambda i, k=k: float(per_row[k][i[k]].mean())) for k in per_row}
    stats["muse_utility"] = stats["muse_knowmem_retain"]
    stats["muse_mia_min_k_auc"] = lambda i: fast_auc(sc["forget"][i["privleak_forget"]],
                                                     sc["holdout"][i["privleak_holdout"]])
    if metrics["muse_privleak"] is not None and oracle.scores:
        osc = {k: np.asarray(v, dtype=float) for k, v in oracle.scores.items()}
        stats["muse_privleak"] = lambda i: privleak(
            fast_auc(sc["forget"][i["privleak_forget"]], sc["holdout"][i["privleak_holdout"]]),
            fast_auc(osc["forget"][i["privleak_forget"]], osc["holdout"][i["privleak_holdout"]]))
    ci = bootstrap(stats, groups, n=bootstrap_n, seed=seed) if bootstrap_n else {}
    notes.append("MUSE intervals: a bootstrap over MUSE's texts and questions (they name no subjects)")
    return MuseResult(metrics=metrics, rows=rows, auc=auc, notes=notes, ci=ci, scores=scores)


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
