"""What every workflow shares: the typed result a run returns, results.json's model entries, and the ledger
evidence a run files about the request that wrote a model."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from obliviate.core.utils import ObliviateError
from obliviate.evals.suite import EvalResult


class RunResult(dict):
    """What a workflow returns: the document it wrote as ``results.json`` (the schema of
    :func:`obliviate.report.results`, with ``schema_version``; for ``unlearn``, the new model's record and its
    ledger entry), as a ``dict``, with ``out`` (the folder it wrote, None on a process that wrote nothing) and
    ``rows`` (the per-example rows of examples.jsonl)."""

    def __init__(self, results: dict, out=None, rows: dict | None = None):
        super().__init__(results)
        self.out = Path(out) if out is not None else None
        self.rows = rows or {}

    def to_json(self) -> dict:
        """The results.json document."""
        return dict(self)


def result_entry(res: EvalResult, path: str | None = None, **extra) -> dict:
    """A model's entry in results.json: metrics, their 95 % intervals (``metrics_ci``), notes, cost."""
    return {"path": path, "metrics": res.metrics, "metrics_ci": res.ci, "info": res.info, "notes": res.notes,
            "cost": res.cost, "forget_truth_ratios": res.arrays.get("forget", {}).get("truth_ratio", []), **extra}


def unlearning_summary(info: dict) -> dict:
    """What the report shows of an unlearning run: its loss curve and, when it probed, the probe curve (and the
    calibrated stop: the step chosen and the forget-vs-calibration AUC curve)."""
    return {k: info[k] for k in ("loss_curve", "probe", "best_step", "stop") if k in info}


def unlearning_of(model) -> dict:
    """The loss and probe curves that `obliviate unlearn` stored beside a model it wrote (empty otherwise)."""
    meta = Path(str(model)) / "obliviate.json"
    if not meta.is_file():
        return {}
    info = json.loads(meta.read_text()).get("unlearning")
    return {"unlearning": unlearning_summary(info)} if isinstance(info, dict) else {}


def input_of(model) -> str | None:
    """The input model of an unlearned folder (``base`` in its ``obliviate.json``) when it is a folder that is
    still here; None otherwise."""
    meta = Path(str(model)) / "obliviate.json"
    try:
        base = json.loads(meta.read_text(encoding="utf-8")).get("base") if meta.is_file() else None
    except (OSError, ValueError, AttributeError):
        return None
    return base if base and Path(base).is_dir() and Path(base).resolve() != Path(str(model)).resolve() else None


def ledger_request(ledger, out, method, config, forget, input_model, evidence=None, extra=None,
                   keep_text: bool = False) -> dict:
    """Append the request to the ledger (``ledger``, or beside the run's ``out``, where a later run with
    ``overwrite`` leaves it alone); returns its entry and the ledger path."""
    from obliviate.audit.ledger import default_path, record_request

    path = Path(ledger) if ledger else default_path(out)
    entry = record_request(path, method=method, config=config, forget=forget, input_model=input_model,
                           output_model=out, evidence=evidence, keep_text=keep_text, extra=extra)
    return {**entry, "ledger": str(path)}


def check_ledger(ledger, out) -> None:
    """A named ledger, or the one beside ``out`` if it exists, must be whole before any work (a truncated one is
    refused, and nothing is written)."""
    from obliviate.audit.ledger import default_path, ensure

    path = Path(ledger) if ledger else default_path(out)
    if ledger or path.is_file():
        ensure(path)


def evidence_request(model, request: str | None = None) -> tuple[Path, str | None] | None:
    """Where evidence about ``model`` goes: ``(ledger, request id)``, resolved before any work so that an
    ambiguous match fails first; None when no ledger records the folder (nothing is created). The ledger is
    the one the folder's request names, else the one beside it."""
    from obliviate.audit.ledger import REQUEST_FILE, default_path, request_for

    folder = Path(str(model))
    if not folder.is_dir():
        if request:
            raise ObliviateError(f"--request {request}: {model} is not a model folder a request wrote")
        return None
    path = default_path(folder)
    try:
        named = json.loads((folder / REQUEST_FILE).read_text(encoding="utf-8")).get("ledger")
        path = Path(named) if named and Path(named).is_file() else path
    except (OSError, ValueError, AttributeError):
        pass
    if not path.is_file():
        if request:
            raise ObliviateError(f"--request {request}: no ledger for {model} ({path} does not exist)")
        return None
    return path, request_for(path, folder, request)


def ledger_evidence(model, evidence: dict, where: tuple[Path, str | None] | None) -> None:
    """Append evidence about ``model`` under the request :func:`evidence_request` resolved."""
    from obliviate.audit.ledger import record_evidence

    if where is not None:
        path, rid = where
        e = record_evidence(path, model, evidence, rid)
        print(f"obliviate: ledger {path}: evidence for request {e['request_id'] or '(none matched)'}", file=sys.stderr)
