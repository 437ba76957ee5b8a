"""The unlearn workflow: one request against one model, written as a new model folder and a ledger entry.

    obliviate unlearn --model TARGET_DIR --method npo --out OUT

The input model is never modified; the new folder is written atomically (a failed run leaves nothing), the
request is appended to the ledger beside ``out`` (or the one named), and the damage to the utility sets is
measured against the input model (warnings on stderr, in the ledger and in the certificate).
"""
from __future__ import annotations

import sys
from pathlib import Path

from obliviate.core.outputs import check_output, weights_bytes
from obliviate.core.utils import versions
from obliviate.data.loaders import recorded_benchmark
from obliviate.methods import UnlearnData, get_method, method_config, unlearn
from obliviate.runs.common import RunResult, check_ledger, ledger_request


def unlearn_model(model: str, method: str, out, *, config: dict | None = None, bench=None, rwku: str | None = None,
                  probes: dict | None = None, ledger=None, ledger_text: bool = False, overwrite: bool = False,
                  inputs: list | None = None) -> RunResult:
    """Unlearn ``bench``'s forget set (or, with ``rwku``, a probe target's passages) from ``model`` with
    ``method`` and write the new model to ``out``. ``inputs``: ``(role, path)`` the output may not touch.
    Returns the new model's record (``obliviate.json``'s fields) and its ledger entry."""
    from obliviate.models import load_model, save_model  # looked up at call time, where a caller may have replaced it

    cfg = method_config(method, config)  # bad options fail before any loading
    inputs = list(inputs or [])
    check_output(out, overwrite=overwrite, inputs=inputs, need_bytes=int(1.05 * weights_bytes(model)))
    check_ledger(ledger, out)  # a bad or truncated ledger fails before any model work
    target, tok = load_model(model)
    data = UnlearnData.from_probes(rwku, tok, probes) if rwku else UnlearnData.from_benchmark(bench, tok)
    family = get_method(method).family
    if family.prepare is not None:  # what the method's family needs first (the exact family: the shards' rows)
        family.prepare(target, tok, bench)
    new, info = unlearn(target, tok, data, method, cfg)
    warnings = []
    if bench is not None and (bench.retain or bench.world or bench.neighbours):
        from obliviate.evals.damage import damage

        info["damage"] = damage(target, new, tok, bench, seed=cfg.seed)  # the input model against the new one
        warnings = info["damage"]["warnings"]
        for w in warnings:
            print(f"obliviate: warning: {w}", file=sys.stderr)
    if "stop" in info:
        st = info["stop"]
        print(f"obliviate: stop=holdout: returned step {st['chosen_step']} of {st['steps_run']} run ({st['reason']}; "
              f"AUC forget vs calibration: LOSS {st['loss_auc']:.2f}, Min-K% {st['min_k_auc']:.2f})", file=sys.stderr)
    from accelerate import PartialState

    state = PartialState()
    record = {"method": method, "base": str(model),
              "benchmark": bench.record() if bench is not None else recorded_benchmark(model), "rwku": rwku,
              "seed": cfg.seed, "unlearning": info, "processes": state.num_processes, "versions": versions()}
    entry = None
    if state.is_main_process:  # under `accelerate launch` / `torchrun`, one process writes
        save_model(new, tok, out, record, overwrite=overwrite, inputs=inputs)
        extra = {"warnings": warnings} if warnings else {}
        if "exact" in info:
            extra["exact"] = info["exact"]
        entry = ledger_request(ledger, out, method, info.get("config", {}), data.forget, model, extra=extra or None,
                               keep_text=ledger_text)
    state.wait_for_everyone()
    return RunResult({**record, "ledger_entry": entry}, Path(out))
