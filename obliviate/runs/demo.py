"""The end-to-end spine: data -> target and oracle -> unlearning -> evaluation -> results and report.

    obliviate demo --out demo_out          # the built-in default, offline, on a CPU

Everything is written to a temporary folder beside ``--out`` and renamed at the end, so a failed run
leaves no half-written output.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from obliviate.data import load_benchmark
from obliviate.evals.cache import evaluate_cached, evaluate_oracle
from obliviate.evals.damage import damage_from_evaluations
from obliviate.evals.suite import EvalConfig, evaluate
from obliviate.methods import DEFAULT_METHOD, UnlearnData, get_method, method_config, unlearn
from obliviate.models import SCRATCH_MODELS, save_model
from obliviate.report import results as build_results
from obliviate.report import write_results
from obliviate.runs.common import RunResult, result_entry, unlearning_summary
from obliviate.engine.training import TrainConfig, train_pair
from obliviate.core.options import Options, option
from obliviate.core.outputs import atomic_dir, check_output
from obliviate.core.utils import cache_dir, seed_everything, versions

# The demo's method settings on the built-in benchmark. NPO keeps the paper's β = 0.1; the retain weight
# (5 instead of 1) and 10 epochs instead of 5 were tuned on `tiny` so that retain accuracy stays within
# 5 points of the target's while forget accuracy reaches the oracle's (see bench/demo.py for the numbers).
DEMO_METHOD_CONFIG = {DEFAULT_METHOD: {"retain_weight": 5.0, "epochs": 10}}  # NPO, the default method


@dataclass
class DemoConfig(Options):
    model: str = option("tiny", "base model: a built-in name (`obliviate ls models`), a folder or a .gguf file")
    benchmark: str = option("people", "built-in benchmark (`obliviate ls benchmarks`) or a TOFU-format folder")
    benchmark_seed: int = option(0, "the built-in benchmark generator's seed (which invented people)", ge=0)
    method: str = option(DEFAULT_METHOD, "unlearning method (`obliviate ls methods`)")
    method_config: dict = option(help="overrides of the method's defaults", factory=dict)
    train: TrainConfig = option(help="the target's and oracle's training recipe", factory=TrainConfig)
    eval: EvalConfig = option(help="evaluation settings", factory=EvalConfig)
    seed: int = option(0, "seeds training, unlearning, evaluation and attacks", ge=0)
    save_model: bool = option(True, "write the unlearned model under OUT/models/<method>")
    attacks: str = option("all", "attacks run on the unlearned model, the target and the oracle (none to skip)")


def intrinsic_block(model, target, oracle, tok, bench, data: UnlearnData, seed: int) -> dict:
    """The ConceptVectors measurements of ``model`` (and of the oracle) on the target's concept vectors of the forget
    subjects, or why they do not apply."""
    from obliviate.methods.editing.intrinsic import applies, concept_vectors, intrinsic

    why = applies(target) or applies(model)  # an unmerged LoRA adapter has no plain down-projection to read
    if why is None and not any(r.subject for r in bench.forget):
        why = "the forget facts name no subjects"
    if why is not None:
        return {"skipped": why}
    vectors = concept_vectors(target, tok, data, seed=seed)
    return intrinsic(model, target, tok, vectors, oracle=oracle, seed=seed)


def run_demo(out: str | Path, cfg: DemoConfig | None = None, cache: str | Path | None = None,
             overwrite: bool = False) -> RunResult:
    """Run the whole spine and write ``out/results.json``, ``out/examples.jsonl`` and ``out/report.html``; returns
    the results.json document (a :class:`~obliviate.runs.common.RunResult`).
    An existing, non-empty ``out`` is an error unless ``overwrite`` is set and obliviate wrote it."""
    cfg = cfg or DemoConfig()
    method_cfg = {**DEMO_METHOD_CONFIG.get(cfg.method, {}), **cfg.method_config}
    if "seed" not in method_cfg:
        method_cfg["seed"] = cfg.seed
    method_cfg = method_config(cfg.method, method_cfg)  # unknown method or option: fail before any training
    cfg.train.seed = cfg.seed
    cfg.eval.seed = cfg.seed
    seed_everything(cfg.seed)
    timings: dict[str, float] = {}
    guard = [("cache", Path(cache or cache_dir()))]
    check_output(out, overwrite=overwrite, inputs=guard)
    bench = load_benchmark(cfg.benchmark, seed=cfg.benchmark_seed)
    from obliviate.models import load_model  # looked up at call time, where a caller may have replaced it

    with atomic_dir(out, overwrite=overwrite, inputs=guard) as tmp:
        t = time.time()
        paths = train_pair(cfg.model, bench, cfg.train, cache=cache)
        timings["data_and_training"] = time.time() - t

        target, tok = load_model(paths["target"])
        oracle, _ = load_model(paths["oracle"])
        t = time.time()
        oracle_res, _ = evaluate_oracle(oracle, tok, bench, cfg.eval, paths["oracle"])
        target_res, _ = evaluate_cached(target, tok, bench, cfg.eval, paths["target"], oracle=oracle_res,
                                        desc="evaluate target")
        timings["evaluate_target_and_oracle"] = time.time() - t

        t = time.time()
        data = UnlearnData.from_benchmark(bench, tok)
        new, info = unlearn(target, tok, data, cfg.method, method_cfg)
        timings[f"unlearn_{cfg.method}"] = time.time() - t
        t = time.time()
        new_res = evaluate(new, tok, bench, cfg.eval, oracle=oracle_res, desc=f"evaluate {cfg.method}")
        timings[f"evaluate_{cfg.method}"] = time.time() - t
        info["damage"] = damage_from_evaluations(target_res, new_res, seed=cfg.seed)  # the input against the new one

        t = time.time()
        weights = intrinsic_block(new, target, oracle, tok, bench, data, cfg.seed)
        timings["intrinsic"] = time.time() - t
        family = get_method(cfg.method).family  # what the method's family adds (a guard: its classifier's rates)
        evidence = family.evidence(new, info, tok, bench, cfg.seed) if family.evidence is not None else {}

        rows = {"target": target_res.rows, "oracle": oracle_res.rows, cfg.method: new_res.rows}
        robustness = None
        if cfg.attacks and cfg.attacks != "none":
            from obliviate.attacks import run_attacks

            t = time.time()
            rob = run_attacks({cfg.method: new}, tok, bench, target=target, oracle=oracle, attacks=cfg.attacks)
            timings["attacks"] = time.time() - t
            robustness = {k: rob[k] for k in ("attacks", "plain", "thresholds", "skipped")}
            for name, rs in rob["rows"].items():
                rows[name] = rows[name] + rs

        model_path = None
        if cfg.save_model:
            save_model(new, tok, tmp / "models" / cfg.method, {"method": cfg.method, "base": str(paths["target"]),
                                                              "benchmark": bench.record(), "unlearning": info,
                                                              "seed": cfg.seed, "versions": versions()})
            model_path = str(Path(out) / "models" / cfg.method)
        results = build_results(
            "demo", seed=cfg.seed,
            config={**asdict(cfg), "method_config": info["config"], "train": asdict(cfg.train.resolved(
                cfg.model in SCRATCH_MODELS,
                len(bench.training_qa(True, pretrained=cfg.model not in SCRATCH_MODELS)) + len(bench.training_texts(True)),
                model=cfg.model))},
            benchmark=bench.summary(),
            models={
                "target": result_entry(target_res, str(paths["target"])),
                "oracle": result_entry(oracle_res, str(paths["oracle"])),
                cfg.method: result_entry(new_res, model_path, unlearning={
                    "seconds": timings[f"unlearn_{cfg.method}"], **unlearning_summary(info)}, intrinsic=weights,
                    **evidence),
            },
            timings=timings)
        if robustness:
            results["robustness"] = robustness
        if info["damage"]["warnings"]:
            results["warnings"] = info["damage"]["warnings"]
        write_results(tmp, results, rows)
    return RunResult(results, out, rows)


def record_demo(results: dict, cfg: DemoConfig, out, ledger=None, ledger_text: bool = False) -> dict | None:
    """File the demo's request in the ledger (``ledger``, or beside ``out``) with the demo's evaluation and attacks
    as its evidence; None when the demo kept no model (``save_model`` off)."""
    from obliviate.audit.certificate import demo_evidence
    from obliviate.data.format import examples_from
    from obliviate.models import load_model
    from obliviate.runs.common import ledger_request

    model_dir = results["models"][cfg.method].get("path")
    if not model_dir:
        return None
    bench = load_benchmark(cfg.benchmark, seed=cfg.benchmark_seed)
    _, tok = load_model(model_dir)
    forget = examples_from(tok, bench.forget, bench.texts.get("forget", []))
    return ledger_request(ledger, out, cfg.method, results["config"]["method_config"], forget,
                          results["models"]["target"]["path"], demo_evidence(results, cfg.method),
                          extra={"warnings": results["warnings"]} if results.get("warnings") else None,
                          keep_text=ledger_text)
