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
from obliviate.evals.cache import evaluate_oracle
from obliviate.evals.damage import damage_from_evaluations
from obliviate.evals.suite import EvalConfig, EvalResult, evaluate
from obliviate.methods import DEFAULT_METHOD, UnlearnData, get_method, method_config, unlearn
from obliviate.models import SCRATCH_MODELS, load_model, save_model
from obliviate.report import results as build_results
from obliviate.report import write_results
from obliviate.engine.training import TrainConfig, train_pair
from obliviate.core.options import Options, option
from obliviate.core.outputs import atomic_dir, check_output
from obliviate.core.utils import cache_dir, seed_everything, versions

# The demo's method settings on the built-in benchmark. NPO keeps the paper's β = 0.1; the retain weight
# (5 instead of 1) and 10 epochs instead of 5 were tuned on `tiny` so that retain accuracy stays within
# 5 points of the target's while forget accuracy reaches the oracle's (see bench/demo.py for the numbers).
DEMO_METHOD_CONFIG = {"npo": {"retain_weight": 5.0, "epochs": 10}}


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


def result_entry(res: EvalResult, path: str | None = None, **extra) -> dict:
    """A model's entry in results.json: metrics, their 95 % intervals (``metrics_ci``), notes, cost."""
    return {"path": path, "metrics": res.metrics, "metrics_ci": res.ci, "info": res.info, "notes": res.notes,
            "cost": res.cost, "forget_truth_ratios": res.arrays.get("forget", {}).get("truth_ratio", []), **extra}


def unlearning_summary(info: dict) -> dict:
    """What the report shows of an unlearning run: its loss curve and, when it probed, the probe curve (and the
    calibrated stop: the step chosen and the forget-vs-calibration AUC curve)."""
    return {k: info[k] for k in ("loss_curve", "probe", "best_step", "stop") if k in info}


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
             overwrite: bool = False) -> dict:
    """Run the whole spine and write ``out/results.json``, ``out/examples.jsonl`` and ``out/report.html``.
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
    with atomic_dir(out, overwrite=overwrite, inputs=guard) as tmp:
        t = time.time()
        paths = train_pair(cfg.model, bench, cfg.train, cache=cache)
        timings["data_and_training"] = time.time() - t

        target, tok = load_model(paths["target"])
        oracle, _ = load_model(paths["oracle"])
        t = time.time()
        oracle_res, _ = evaluate_oracle(oracle, tok, bench, cfg.eval, paths["oracle"])
        target_res = evaluate(target, tok, bench, cfg.eval, oracle=oracle_res, desc="evaluate target")
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
                cfg.model in SCRATCH_MODELS, len(bench.training_qa(True)) + len(bench.training_texts(True))))},
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
    return results


# The metrics a scalability / sustainability curve reports per point.
# forget_ks_d, not forget_quality: the KS p-value shrinks with the number of facts, so on growing forget sets the
# curve would show n, not forgetting; D does not.
CURVE_METRICS = ("forget_exact_match", "forget_rougeL_recall", "forget_ks_d", "retain_exact_match",
                 "model_utility", "mia_min_k_auc")


def forget_subsets(bench, kind: str, points) -> list[tuple[int, object]]:
    """Sub-benchmarks whose forget split is part of ``bench.forget``, cut by subject (whole people, never half a
    person). ``kind="scalability"``: ``points`` are fractions of the forget subjects, nested prefixes (TOFU's
    forget01 ⊂ forget05 ⊂ forget10). ``kind="sustainability"``: ``points`` is the number of requests; request k
    is the k-th disjoint chunk, and its sub-benchmark holds everything requested so far."""
    import dataclasses

    from obliviate.core.utils import ObliviateError

    subjects = list(dict.fromkeys(r.subject or r.id for r in bench.forget))
    if kind == "scalability":
        try:
            fracs = [float(p) for p in points]
        except ValueError:
            fracs = []
        if not fracs or any(not 0 < f <= 1 for f in fracs) or fracs != sorted(fracs):
            raise ObliviateError(f"--points for scalability: increasing fractions in (0, 1], got {list(points)}")
        cuts = [max(1, round(f * len(subjects))) for f in fracs]
    elif kind == "sustainability":
        k = int(points)
        if not 2 <= k <= len(subjects):
            raise ObliviateError(f"--requests: between 2 and {len(subjects)} (the forget set's subjects), got {k}")
        cuts = [round(len(subjects) * (i + 1) / k) for i in range(k)]
    else:
        raise ObliviateError(f"unknown curve {kind!r}; expected scalability or sustainability")
    out = []
    for i, c in enumerate(cuts):
        keep = set(subjects[:c])
        out.append((i, dataclasses.replace(
            bench, forget=[r for r in bench.forget if (r.subject or r.id) in keep],
            texts={**bench.texts, "forget": [t for t in bench.texts.get("forget", []) if (t.subject or t.id) in keep]})))
    return out


def run_curve(out: str | Path, kind: str, points, model: str = "tiny", benchmark: str = "people",
              method: str = DEFAULT_METHOD, method_cfg: dict | None = None, seed: int = 0,
              cache: str | Path | None = None, overwrite: bool = False, benchmark_seed: int = 0) -> dict:
    """MUSE's C5 scalability and C6 sustainability (Shi et al., 2024, Sec. 3) on a built-in model and benchmark.

    - ``scalability``: the target is unlearned, each time from scratch, with growing forget sets;
    - ``sustainability``: the forget set arrives as ``points`` sequential requests, each unlearned from the
      previous result; after each, the model is evaluated on everything requested so far.

    The oracle is the one trained without the whole forget set. For a part of the forget set that is an
    approximation (a true oracle would have seen the other forget people), and it is stated in the notes.
    """
    from obliviate.evals.muse import scalability, sustainability

    cfg_dict = {**DEMO_METHOD_CONFIG.get(method, {}), **(method_cfg or {})}
    cfg_dict.setdefault("seed", seed)
    mcfg = method_config(method, cfg_dict)
    seed_everything(seed)
    guard = [("cache", Path(cache or cache_dir()))]
    check_output(out, overwrite=overwrite, inputs=guard)
    bench = load_benchmark(benchmark, seed=benchmark_seed)
    subsets = forget_subsets(bench, kind, points)
    with atomic_dir(out, overwrite=overwrite, inputs=guard) as tmp:
        paths = train_pair(model, bench, TrainConfig(seed=seed), cache=cache)
        target, tok = load_model(paths["target"])
        oracle, _ = load_model(paths["oracle"])
        ecfg = EvalConfig(seed=seed)
        oracle_res = {i: evaluate(oracle, tok, b, ecfg, desc=f"evaluate oracle ({len(b.forget)} forget facts)")
                      for i, b in subsets}
        parts = [_Part(i, b, subsets[i - 1][1] if kind == "sustainability" and i else None, tok) for i, b in subsets]
        t0 = time.time()

        def unlearn_fn(m, part):
            return unlearn(m, tok, part.data, method, mcfg)[0]

        def eval_fn(m, part):  # on everything requested so far
            r = evaluate(m, tok, part.bench, ecfg, oracle=oracle_res[part.index],
                         desc=f"evaluate ({len(part.bench.forget)} forget facts)")
            return {"forget_total": len(part.bench.forget), **{k: r.metrics.get(k) for k in CURVE_METRICS}}

        curve = scalability if kind == "scalability" else sustainability
        rows = curve(target, tok, unlearn_fn, parts, eval_fn)
        results = build_results(
            kind, seed=seed, config={"model": model, "benchmark": benchmark, "method": method,
                                     "method_config": asdict(mcfg), "points": points},
            benchmark=bench.summary(),
            curves=[{"title": f"MUSE {'C5 scalability' if kind == 'scalability' else 'C6 sustainability'}"
                              f": {method} on {model}", "x": "forget_size" if kind == "scalability" else "request",
                     "rows": rows, "keys": list(CURVE_METRICS)}],
            notes=["forget_ks_d per point is measured against the oracle trained without the whole forget set (an "
                   "approximation for a part of it)"],
            timings={"total": time.time() - t0})
        write_results(tmp, results)
    return results


class _Part(list):
    """One point of a curve: the forget facts of this request (a list, so ``len`` is its size), the
    sub-benchmark to evaluate on (everything requested so far) and the :class:`UnlearnData` to unlearn with."""

    def __init__(self, index: int, bench, previous, tok):
        from obliviate.data.format import examples_from

        seen = set()
        if previous is not None:  # sustainability: only what this request adds
            seen = {r.id for r in previous.forget} | {t.id for t in previous.texts.get("forget", [])}
        facts = [r for r in bench.forget if r.id not in seen]
        super().__init__(facts)
        self.index, self.bench = index, bench
        self.data = UnlearnData.from_benchmark(bench, tok)
        self.data.forget = examples_from(tok, facts, [t for t in bench.texts.get("forget", []) if t.id not in seen])
