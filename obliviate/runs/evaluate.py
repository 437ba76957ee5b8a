"""The evaluate workflow: a model against its oracle (scored once per oracle and cached), beside the model it was
unlearned from, with MUSE's, RWKU's and lm-evaluation-harness's evaluations when asked; results.json,
examples.jsonl and report.html, and the comparison filed as evidence for the request that wrote the model.

    obliviate eval --model OUT --oracle ORACLE_DIR --out EVAL_DIR [--muse FOLDER] [--rwku TARGET] [--lm-eval TASKS]
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

from obliviate.core.outputs import atomic_dir, check_output
from obliviate.core.utils import ObliviateError
from obliviate.evals import EvalConfig, EvalResult, evaluate
from obliviate.evals.cache import evaluate_oracle
from obliviate.report import results as build_results
from obliviate.report import write_results
from obliviate.runs.common import (RunResult, evidence_request, input_of, ledger_evidence, result_entry, unlearning_of)


@dataclass
class Extra:
    """An evaluation beside the QA suite: ``config`` (recorded in results.json) and ``run(model, tokenizer, ref)``,
    ``ref`` being the same evaluation of the oracle (or None); it returns an object with ``metrics`` (and
    optionally ``ci``, ``rows``, ``notes``)."""

    config: dict
    run: Callable


def extra_evaluations(bench=None, *, muse: str | None = None, muse_limit: int | None = None, rwku: str | None = None,
                      probes: dict | None = None, probes_file: str | None = None, lm_eval: str | None = None,
                      lm_eval_include: str | None = None, lm_eval_limit: int | None = None,
                      lm_eval_fewshot: int | None = None, seed: int = 0) -> list[Extra]:
    """MUSE's C1-C4 (``muse``: a folder in MUSE's layout, or ``"benchmark"``), RWKU's probes of ``rwku`` and its
    neighbours, lm-eval tasks (a comma list). Inputs are checked here, before any model is loaded."""
    out = []
    if muse:
        from obliviate.evals.muse import MuseData, evaluate_muse, load_muse

        if muse == "benchmark":
            if bench is None:
                raise ObliviateError("--muse benchmark needs a QA benchmark (--benchmark, or a model that records one)")
            data = MuseData.from_benchmark(bench)
        else:
            data = load_muse(muse, limit=muse_limit or 0)
        out.append(Extra({"muse": muse, "muse_limit": muse_limit},
                         lambda m, t, ref: evaluate_muse(m, t, data, oracle=ref)))
    if rwku:
        from obliviate.evals.rwku import evaluate_rwku

        out.append(Extra({"rwku": rwku, "probes": probes_file},
                         lambda m, t, ref: SimpleNamespace(**evaluate_rwku(m, t, rwku, probes))))
    if lm_eval:
        from obliviate.evals.lm_eval import check_tasks, run_lm_eval

        tasks = [x.strip() for x in lm_eval.split(",") if x.strip()]
        tm = check_tasks(tasks, lm_eval_include)
        opts = {"tasks": tasks, "include_path": lm_eval_include, "limit": lm_eval_limit, "num_fewshot": lm_eval_fewshot}
        out.append(Extra({"lm_eval": opts}, lambda m, t, ref: run_lm_eval(m, t, seed=seed, task_manager=tm, **opts)))
    return out


def _merge(res, extra):
    """Add an extra evaluation's metrics, rows and notes (any object with those attributes) to ``res``."""
    res.metrics |= extra.metrics
    res.ci |= getattr(extra, "ci", None) or {}
    res.rows += getattr(extra, "rows", [])
    res.notes += getattr(extra, "notes", [])
    return extra


@contextlib.contextmanager
def _scratch_dir():
    """A temporary folder, removed afterwards: where a non-main process writes what only the main one keeps."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="obliviate-rank-") as d:
        yield Path(d)


def evaluate_model(model, out, *, oracle=None, bench=None, cfg: EvalConfig | None = None, metrics: list | None = None,
                   extras: list[Extra] = (), request: str | None = None, with_input: bool = True,
                   overwrite: bool = False, inputs: list | None = None) -> RunResult:
    """Evaluate ``model`` (against ``oracle``, when given) on ``bench`` and the ``extras``; write results.json,
    examples.jsonl and report.html to ``out``. The model it was unlearned from is evaluated beside it when its
    folder is here (``with_input``). The comparison is filed in the ledger that records the model (``request``:
    which of its requests). Under torchrun every process evaluates its share; the main one writes."""
    from obliviate.models import load_model  # looked up at call time, where a caller may have replaced it

    cfg = cfg or EvalConfig()
    filed = evidence_request(model, request)  # an ambiguous request fails before the work too
    inputs = list(inputs or [])
    check_output(out, overwrite=overwrite, inputs=inputs)
    from accelerate import PartialState

    import torch

    # under torchrun / accelerate launch: the process group the scorer splits batches over (on CPU too)
    state = PartialState(cpu=not torch.cuda.is_available())
    with (atomic_dir(out, overwrite=overwrite, inputs=inputs) if state.is_main_process
          else _scratch_dir()) as tmp:  # every process evaluates its share; the main one writes
        m, tok = load_model(model)
        name = Path(str(model)).name or "model"
        entries, rows, timings = {}, {}, {}
        oracle_res, refs, cached = None, [None] * len(extras), None
        if oracle:
            om, otok = load_model(oracle)
            if otok.get_vocab() != tok.get_vocab():
                raise ObliviateError(f"model {model} and oracle {oracle} have different tokenizers")
            t1 = time.time()
            if bench is not None:  # scored once per oracle, benchmark and config (obliviate.evals.cache)
                oracle_res, cached = evaluate_oracle(om, otok, bench, cfg, oracle)
            else:
                oracle_res, cached = EvalResult(metrics={}, rows=[]), False
            timings["evaluate_oracle"] = time.time() - t1
            refs = []
            for x in extras:
                t1 = time.time()
                refs.append(_merge(oracle_res, x.run(om, otok, None)))
                timings[f"{next(iter(x.config))}_oracle"] = time.time() - t1
            entries["oracle"], rows["oracle"] = result_entry(oracle_res, oracle), oracle_res.rows
        t1 = time.time()
        res = (evaluate(m, tok, bench, cfg, oracle=oracle_res, desc=f"evaluate {name}") if bench is not None
               else EvalResult(metrics={}, rows=[], notes=["no QA benchmark named or recorded: only the evaluations "
                                                            "asked for beside it were run"]))
        timings[f"evaluate_{name}"] = time.time() - t1
        before = input_of(model) if bench is not None and with_input else None
        input_entry, warnings = None, []
        if before is not None:  # the model it was unlearned from, recorded in its folder: shown beside it
            from obliviate.evals.damage import damage_from_evaluations

            t1 = time.time()
            im, itok = load_model(before)
            input_res = evaluate(im, itok, bench, cfg, oracle=oracle_res, desc="evaluate the input model")
            timings["evaluate_input"] = time.time() - t1
            input_entry = result_entry(input_res, str(before))
            warnings = damage_from_evaluations(input_res, res, seed=cfg.seed)["warnings"]
            del im
        for x, ref in zip(extras, refs):
            t1 = time.time()
            _merge(res, x.run(m, tok, ref))
            timings[f"{next(iter(x.config))}_{name}"] = time.time() - t1
        if metrics:
            res.metrics = {k: v for k, v in res.metrics.items() if k in metrics}
            res.ci = {k: v for k, v in res.ci.items() if k in metrics}
        entries[name], rows[name] = result_entry(res, str(model), **unlearning_of(model)), res.rows
        results = build_results("eval", seed=cfg.seed,
                                config={"model": str(model), "oracle": oracle,
                                        "benchmark": bench.name if bench else None, "eval": vars(cfg),
                                        **{k: v for x in extras for k, v in x.config.items()}},
                                benchmark=bench.summary() if bench else {}, models=entries, timings=timings,
                                **({"oracle_scores": "read from the cache" if cached else "scored"} if oracle
                                   else {}),
                                **({"input_model": input_entry} if input_entry else {}),
                                **({"warnings": warnings} if warnings else {}))
        write_results(tmp, results, rows)
    if not state.is_main_process:
        return RunResult(results, None, rows)
    e = entries[name]
    if oracle:  # an oracle comparison is evidence for the request that wrote this model
        o = entries["oracle"]
        ledger_evidence(model, {"source": "eval", "metrics": e["metrics"], "ci": e["metrics_ci"],
                                "oracle_metrics": o["metrics"], "oracle_ci": o["metrics_ci"]}, filed)
    else:  # without an oracle: the holdout comparison
        ledger_evidence(model, {"source": "eval", "metrics": e["metrics"], "ci": e["metrics_ci"]}, filed)
    return RunResult(results, Path(out), rows)
