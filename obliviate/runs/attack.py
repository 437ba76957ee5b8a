"""The attack workflow: unlearned models, and the target and oracle under the same attacks; each attack's gain
judged against the oracle's (:mod:`obliviate.attacks.common`), and the verdicts filed as evidence for the requests
that wrote the models.

    obliviate attack --model OUT --target T --oracle O --out A
"""
from __future__ import annotations

import sys
from pathlib import Path

from obliviate.attacks import applicable, run_attacks
from obliviate.core.outputs import atomic_dir, check_output
from obliviate.core.utils import ObliviateError
from obliviate.report import results as build_results
from obliviate.report import write_results
from obliviate.runs.common import RunResult, evidence_request, ledger_evidence


def attack_models(models: list, out, bench, *, attacks: list[str], configs: dict | None = None, target=None,
                  oracle=None, budget_minutes: float | None = None, request: str | None = None, seed: int = 0,
                  overwrite: bool = False, inputs: list | None = None) -> RunResult:
    """Run ``attacks`` (names, with their ``configs``) on each of ``models`` (folders or names), and on ``target``
    and ``oracle`` when given (then judged). Attacks that do not apply to ``bench`` are skipped with a note, before
    any model is loaded; ``budget_minutes`` stops starting attacks once spent."""
    from obliviate.models import load_model  # looked up at call time, where a caller may have replaced it

    configs = configs or {}
    names, skipped = applicable(attacks, bench)  # decided from the data, before any model is loaded
    for n, why in skipped.items():
        print(f"obliviate: note: attack {n} does not apply to benchmark {bench.name}: {why}; skipped", file=sys.stderr)
    if not names:
        raise ObliviateError(f"none of the attacks asked for applies to benchmark {bench.name}")
    if not (target and oracle):
        print("obliviate: note: without --target and --oracle the attacks are run but not judged", file=sys.stderr)
    if budget_minutes is not None and budget_minutes <= 0:
        raise ObliviateError(f"--budget {budget_minutes:g}: give a positive number of minutes")
    if request and len(models) > 1:
        raise ObliviateError("--request names the request of one --model; attack one model at a time with it")
    filed = {str(m): evidence_request(m, request) for m in models} if target and oracle else {}
    inputs = list(inputs or [])
    check_output(out, overwrite=overwrite, inputs=inputs)
    with atomic_dir(out, overwrite=overwrite, inputs=inputs) as tmp:
        loaded, tok = {}, None
        for path in models:
            m, t = load_model(path)
            if tok is not None and t.get_vocab() != tok.get_vocab():
                raise ObliviateError(f"model {path} has another tokenizer than {models[0]}")
            tok = tok or t
            loaded[Path(str(path)).name or str(path)] = m
        refs = {}
        for role, path in (("target", target), ("oracle", oracle)):
            if path:
                m, t = load_model(path)
                if t.get_vocab() != tok.get_vocab():
                    raise ObliviateError(f"{role} {path} and model {models[0]} have different tokenizers")
                refs[role] = m
        res = run_attacks(loaded, tok, bench, attacks=names, configs=configs,
                          budget=None if budget_minutes is None else 60 * budget_minutes, **refs)
        skipped = {**skipped, **res["skipped"]}
        for n in res["skipped"]:
            print(f"obliviate: note: attack {n} skipped: {res['skipped'][n]}", file=sys.stderr)
        results = build_results("attack", seed=seed,
                                config={"models": [str(m) for m in models], "target": target,
                                        "oracle": oracle, "benchmark": bench.name, "budget_minutes": budget_minutes,
                                        "attacks": {n: e["config"] for n, e in res["attacks"].items()}},
                                benchmark=bench.summary(),
                                robustness={"attacks": res["attacks"], "plain": res["plain"],
                                            "thresholds": res["thresholds"], "skipped": skipped})
        write_results(tmp, results, res["rows"])
    if target and oracle:  # judged verdicts are evidence for the requests that wrote these models
        for path in models:
            key = Path(str(path)).name or str(path)
            verdicts = {a: {"verdict": e["verdicts"][key]["verdict"], "gain_over_oracle":
                            e["verdicts"][key].get("gain_over_oracle"), "interval": e["verdicts"][key].get("interval")}
                        for a, e in res["attacks"].items() if key in e.get("verdicts", {})}
            ledger_evidence(path, {"source": "attack", "attacks": verdicts}, filed[str(path)])
    return RunResult(results, Path(out), res["rows"])
