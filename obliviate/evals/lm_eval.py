"""General-utility benchmarks through EleutherAI's lm-evaluation-harness (Gao et al., "The Language Model
Evaluation Harness", https://github.com/EleutherAI/lm-evaluation-harness), called through its Python API with
the model object obliviate already has in memory, so an unlearned model is never written to disk first.

    obliviate eval --model OUT --out EVAL --lm-eval arc_easy,mmlu              # tasks need their datasets
    obliviate eval --model OUT --out EVAL --lm-eval my_task --lm-eval-include tasks/  # local task YAMLs

    from obliviate.evals.lm_eval import run_lm_eval
    res = run_lm_eval(model, tok, ["my_task"], include_path="tasks/", limit=100)
    res.metrics   # {"lm_eval_my_task_acc": 0.61, "lm_eval_my_task_acc_stderr": 0.04, ...}

lm-eval is an optional dependency (``pip install "obliviate[lm-eval]"``). Hub-hosted tasks (MMLU, ARC, ...)
need their datasets, either downloaded or in the Hugging Face datasets cache; a task YAML whose
``dataset_path`` is ``json`` with local ``data_files`` runs fully offline.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from obliviate.core.utils import ObliviateError


@dataclass
class LmEvalResult:
    metrics: dict[str, float]  # lm_eval_<task>_<metric>[_stderr]
    results: dict  # lm-eval's own per-task dictionary, unchanged
    config: dict = field(default_factory=dict)  # what was run: tasks, few-shot, limit, lm-eval version


def _import():
    try:
        import lm_eval  # noqa: F401
        from lm_eval import evaluator
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager
    except ImportError:
        raise ObliviateError("--lm-eval needs EleutherAI's lm-evaluation-harness: "
                             "pip install 'obliviate[lm-eval]' (or pip install lm_eval)") from None
    return evaluator, HFLM, TaskManager


def check_tasks(tasks: list[str], include_path: str | Path | None = None):
    """The :class:`lm_eval.tasks.TaskManager` for ``tasks``; an unknown task name is an error that names it (checked
    before any model work)."""
    _, _, TaskManager = _import()
    if include_path is not None and not Path(include_path).is_dir():
        raise ObliviateError(f"--lm-eval-include {include_path}: no such folder of task YAMLs")
    tm = TaskManager(include_path=str(include_path) if include_path else None)
    if not tasks:
        raise ObliviateError("--lm-eval: give at least one task name")
    known = set(tm.all_tasks)
    unknown = [t for t in tasks if t not in known]
    if unknown:
        raise ObliviateError(f"--lm-eval: unknown task(s) {', '.join(unknown)} (lm-eval knows {len(known)} tasks"
                             + (f", including those under {include_path}" if include_path else "") + ")")
    return tm


def run_lm_eval(model, tokenizer, tasks: list[str], include_path: str | Path | None = None, limit: int | None = None,
                num_fewshot: int | None = None, batch_size: int = 8, seed: int = 0,
                bootstrap_iters: int = 100000, task_manager=None) -> LmEvalResult:
    """Run lm-eval ``tasks`` on an in-memory causal LM and return its aggregate metrics, flattened.

    The model is wrapped by lm-eval's own ``HFLM`` (log-likelihood and generation requests as the harness
    defines them) and put back in its original train/eval mode afterwards; its weights are not touched.
    ``task_manager``: the one :func:`check_tasks` returned, to skip indexing the task registry again.
    """
    evaluator, HFLM, _ = _import()
    tm = task_manager or check_tasks(tasks, include_path)
    was_training = model.training
    device = str(next(model.parameters()).device)
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=device)
    try:
        out = evaluator.simple_evaluate(model=lm, tasks=list(tasks), task_manager=tm, limit=limit,
                                        num_fewshot=num_fewshot, log_samples=False, random_seed=seed,
                                        numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed,
                                        bootstrap_iters=bootstrap_iters)
    finally:
        model.train(was_training)
    if out is None:  # lm-eval returns None on non-main processes
        return LmEvalResult(metrics={}, results={})
    metrics = {}
    for task, vals in out["results"].items():
        for key, v in vals.items():
            if key in ("alias", "sample_len") or not isinstance(v, (int, float)):
                continue
            name, _, filt = key.partition(",")  # "acc,none" -> acc; "exact_match,strict-match" keeps the filter
            name = name.replace("_stderr", "") + ("" if filt in ("", "none") else f"_{filt}") + \
                ("_stderr" if "_stderr" in key else "")
            metrics[f"lm_eval_{task}_{name}".replace("-", "_")] = None if math.isnan(float(v)) else float(v)
    import lm_eval

    cfg = {"tasks": list(tasks), "include_path": str(include_path) if include_path else None, "limit": limit,
           "num_fewshot": num_fewshot, "batch_size": batch_size, "lm_eval": lm_eval.__version__,
           "n_samples": out.get("n-samples", {})}
    return LmEvalResult(metrics=metrics, results=out["results"], config=cfg)


_MC_TASK = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
output_type: multiple_choice
test_split: test
doc_to_text: "{{{{question}}}}"
doc_to_target: "{{{{label}}}}"
doc_to_choice: "{{{{choices}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def write_multiple_choice_task(folder: str | Path, name: str, docs: list[dict]) -> Path:
    """A local, offline lm-eval multiple-choice task: ``docs`` (rows with ``question``, ``choices`` and the index
    ``label`` of the true choice) as ``{name}.jsonl`` and its YAML ``{name}.yaml`` in ``folder`` (pass the folder
    as ``--lm-eval-include``). lm-eval scores each choice by its summed log-likelihood after the question."""
    import json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / f"{name}.jsonl"
    data.write_text("\n".join(json.dumps(d) for d in docs), encoding="utf-8")
    (folder / f"{name}.yaml").write_text(_MC_TASK.format(name=name, data=data), encoding="utf-8")
    return folder
